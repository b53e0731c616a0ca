// Arena: reserve once, grow in place, base never moves.
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "arena/arena.h"
#include "support/temp_dir.h"

namespace atomap::internal {
namespace {

TEST_CASE("anonymous arena grows in place and keeps its base", "[arena]") {
  auto arena = Arena::Anonymous(std::uint64_t{1} << 30, 4096);
  REQUIRE(arena.ok());
  std::uint8_t* base = (*arena)->base();
  std::memset(base, 0xAB, 4096);
  REQUIRE((*arena)->Grow(3 * Arena::kGrowChunk).ok());
  CHECK((*arena)->base() == base);
  CHECK((*arena)->mapped_size() >= 3 * Arena::kGrowChunk);
  base[3 * Arena::kGrowChunk - 1] = 1;  // the grown range is writable
  CHECK(base[0] == 0xAB);
}

TEST_CASE("growth past the maximum size is ResourceExhausted and changes nothing", "[arena]") {
  auto arena = Arena::Anonymous(Arena::kGrowChunk * 2, 4096);
  REQUIRE(arena.ok());
  const std::uint64_t before = (*arena)->mapped_size();
  absl::Status s = (*arena)->Grow(Arena::kGrowChunk * 3);
  CHECK(s.code() == absl::StatusCode::kResourceExhausted);
  CHECK((*arena)->mapped_size() == before);
}

TEST_CASE("a file arena sees growth made through another process's mapping", "[arena]") {
  TempDir dir;
  const std::string path = dir.File("grow.bin");
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(ftruncate(fd, 4096) == 0);
  auto arena = Arena::MapFile(fd, path, std::uint64_t{1} << 30, true);
  REQUIRE(arena.ok());
  (*arena)->BindSizeWord((*arena)->At<SharedU64>(0));
  *(*arena)->At<std::uint64_t>(0) = 4096;
  std::uint8_t* base = (*arena)->base();

  pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    int cfd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    auto c = Arena::MapFile(cfd, path, std::uint64_t{1} << 30, true);
    if (!c.ok()) _exit(2);
    (*c)->BindSizeWord((*c)->At<SharedU64>(0));
    // The grow lock lives on a lock file of its own, never on the mapped file.
    const int lock_fd = open((path + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    (*c)->SetLockFile(lock_fd, path + ".lock", absl::Seconds(10));
    if (!(*c)->Grow(2 * Arena::kGrowChunk).ok()) _exit(3);
    *(*c)->At<std::uint64_t>(2 * Arena::kGrowChunk - 8) = 0x5EED;
    _exit(0);
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);

  CHECK((*arena)->mapped_size() == 4096);
  REQUIRE((*arena)->Refresh().ok());
  CHECK((*arena)->base() == base);
  CHECK((*arena)->mapped_size() >= 2 * Arena::kGrowChunk);
  CHECK(*(*arena)->At<std::uint64_t>(2 * Arena::kGrowChunk - 8) == 0x5EED);
}

// The VmFlags line of the mapping in /proc/self/smaps that contains `p` ("" if none).
std::string VmFlagsOf(const void* p) {
  std::FILE* f = std::fopen("/proc/self/smaps", "r");
  if (f == nullptr) return "";
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  bool inside = false;
  std::string flags;
  char line[512];
  while (std::fgets(line, sizeof line, f) != nullptr) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
      inside = lo <= addr && addr < hi;
    } else if (inside && std::strncmp(line, "VmFlags:", 8) == 0) {
      flags = line + 8;
      break;
    }
  }
  std::fclose(f);
  return flags;
}

bool KernelHasThp() { return access("/sys/kernel/mm/transparent_hugepage/enabled", F_OK) == 0; }

// Issue 14: in-process and tmpfs (shared-memory) mappings are advised MADV_HUGEPAGE ("hg" in
// VmFlags); files on other file systems are not.
TEST_CASE("in-process and tmpfs mappings are advised huge pages, other files not", "[arena]") {
  if (!KernelHasThp()) {
    WARN("kernel without transparent huge pages: nothing to advise");
    return;
  }
  auto anonymous = Arena::Anonymous(std::uint64_t{1} << 30, 4 * Arena::kGrowChunk);
  REQUIRE(anonymous.ok());
  CHECK(VmFlagsOf((*anonymous)->base()).find(" hg") != std::string::npos);
  REQUIRE((*anonymous)->Grow(16 * Arena::kGrowChunk).ok());
  CHECK(VmFlagsOf((*anonymous)->base() + 12 * Arena::kGrowChunk).find(" hg") != std::string::npos);

  const auto map = [](const std::string& path) {
    const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(ftruncate(fd, 4 * Arena::kGrowChunk) == 0);
    auto arena = Arena::MapFile(fd, path, std::uint64_t{1} << 30, true);
    REQUIRE(arena.ok());
    return std::move(*arena);
  };
  const std::string shm = "/dev/shm/atomap-arena-test-" + std::to_string(getpid());
  {
    const std::unique_ptr<Arena> on_tmpfs = map(shm);
    CHECK(VmFlagsOf(on_tmpfs->base()).find(" hg") != std::string::npos);
  }
  unlink(shm.c_str());
  TempDir dir;
  struct statfs fs;
  REQUIRE(statfs(dir.path().c_str(), &fs) == 0);
  if (fs.f_type == TMPFS_MAGIC) {
    WARN("the temporary directory is itself on tmpfs: no unadvised file to check");
    return;
  }
  const std::unique_ptr<Arena> on_disk = map(dir.File("data"));
  const std::string flags = VmFlagsOf(on_disk->base());
  CHECK_FALSE(flags.empty());
  CHECK(flags.find(" hg") == std::string::npos);
}

}  // namespace
}  // namespace atomap::internal

// Arena: reserve once, grow in place, base never moves.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
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

}  // namespace
}  // namespace atomap::internal

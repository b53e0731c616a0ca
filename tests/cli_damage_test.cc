// The atomap tool on damaged files: it reports the damage (exit 3, one line naming the file and
// what is wrong) and never hangs. Runs the built binary in a child with a deadline.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "alloc/allocator_state.h"
#include "atomap/domain.h"
#include "file/header.h"
#include "support/deadline.h"
#include "support/filled_domain.h"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

constexpr int kDeadlineMs = 30000;

// Runs the tool with `args`; its stdout and stderr together.
BoundedRun RunTool(const std::vector<std::string>& args) {
  return RunBounded(
      [&](int fd) -> int {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
        ExecProgram(ATOMAP_TOOL_PATH, args);
      },
      kDeadlineMs);
}

// Makes the first non-empty shared free list of the (closed) domain at `path` cyclic, by
// editing the file: its first batch becomes its own next batch.
void MakeFreeListCyclic(const std::string& path) {
  const int fd = open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  struct stat st;
  REQUIRE(fstat(fd, &st) == 0);
  void* map = mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ | PROT_WRITE,
                   MAP_SHARED, fd, 0);
  REQUIRE(map != MAP_FAILED);
  auto* base = static_cast<char*>(map);
  const auto* header = reinterpret_cast<const internal::Header*>(base);
  auto* state = reinterpret_cast<internal::AllocatorState*>(base + header->allocator_state_offset);
  bool damaged = false;
  for (const internal::FreeListHead& head : state->heads) {
    if (head.offset == internal::kNullOffset) continue;
    *reinterpret_cast<internal::Offset*>(base + head.offset) = head.offset;
    damaged = true;
    break;
  }
  munmap(map, static_cast<std::size_t>(st.st_size));
  close(fd);
  REQUIRE(damaged);
}

TEST_CASE("stat on a file whose free list is cyclic exits 3 with one line", "[cli][damage]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  FillDomain(path);
  REQUIRE(RunTool({"stat", path}).exit_code == 0);
  MakeFreeListCyclic(path);
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"stat", path},
        std::vector<std::string>{"stat", path, "--read-only"},
        std::vector<std::string>{"stat", path, "--json"}}) {
    const BoundedRun run = RunTool(args);
    INFO(args.back() << ": " << run.output);
    REQUIRE_FALSE(run.hung);
    CHECK(run.exit_code == 3);
    CHECK(run.output.find('\n') == run.output.size() - 1);  // one line
    CHECK_THAT(run.output, Catch::Contains(path) && Catch::Contains("shared free list") &&
                               Catch::Contains("cycle"));
  }
}

TEST_CASE("stat --prometheus on a damaged file prints what it has, atomap_damage 1, exits 3",
          "[cli][damage]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  FillDomain(path);
  MakeFreeListCyclic(path);
  const BoundedRun run = RunTool({"stat", path, "--prometheus"});
  INFO(run.output);
  REQUIRE_FALSE(run.hung);
  CHECK(run.exit_code == 3);
  CHECK_THAT(run.output,
             Catch::Contains(std::string("atomap_damage{path=\"").append(path).append("\"} 1\n")) &&
                 Catch::Contains("atomap_size_bytes{") && Catch::Contains("atomap_atom_entries{") &&
                 Catch::Contains("shared free list"));  // the one-line message
}

}  // namespace
}  // namespace atomap

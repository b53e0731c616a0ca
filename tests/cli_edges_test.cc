// The atomap tool at the edges of trust: a domain another user planted (docs/cli.md, "Exit codes
// and errors"). Runs the built binary (ATOMAP_TOOL_PATH) as root; not root: warns and passes.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "atomap/domain.h"
#include "support/process.h"
#include "support/scratch_fs.h"
#include "support/temp_dir.h"

#ifndef ATOMAP_TOOL_PATH
#error "ATOMAP_TOOL_PATH must name the atomap binary (tests/CMakeLists.txt)"
#endif

namespace atomap {
namespace {

constexpr uid_t kNobody = 65534;

ProgramResult Tool(std::vector<std::string> args) {
  args.insert(args.begin(), ATOMAP_TOOL_PATH);
  return RunProgram(args);
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// User nobody runs `atomap create PATH` and `atomap put PATH planted yes`, the file mode 0666
// (the tool creates 0600: nobody widens it, as a planter would).
void PlantAsNobody(const std::vector<std::string>& where, const std::string& file) {
  const pid_t pid = ForkChild([&] {
    if (!BecomeUser(kNobody)) return 1;
    std::vector<std::string> create = {"create"};
    create.insert(create.end(), where.begin(), where.end());
    std::vector<std::string> put = {"put"};
    put.insert(put.end(), where.begin(), where.end());
    put.insert(put.end(), {"planted", "yes"});
    if (Tool(create).status != 0 || Tool(put).status != 0) return 2;
    return chmod(file.c_str(), 0666) == 0 ? 0 : 3;
  });
  REQUIRE(WaitChild(pid) == 0);
}

void ExpectCliRefuses(const std::vector<std::string>& where, const std::string& file) {
  auto with = [&](std::vector<std::string> args, std::vector<std::string> flags = {}) {
    args.insert(args.begin() + 1, where.begin(), where.end());
    args.insert(args.end(), flags.begin(), flags.end());
    return Tool(args);
  };
  const std::string before = ReadBytes(file);
  const ProgramResult refused = with({"put", "secret", "s3cr3t"});
  INFO("put: exit " << refused.status << ", stderr: " << refused.err);
  CHECK(refused.status == 3);
  CHECK(refused.err.rfind("atomap: " + file + ": owned by another user (uid 65534, mode 0666)",
                          0) == 0);
  CHECK(refused.err.find('\n') == refused.err.size() - 1);  // one line
  CHECK(ReadBytes(file) == before);

  const ProgramResult get = with({"get", "planted"}, {"--read-only"});
  CHECK(get.status == 0);
  CHECK(get.out == "yes\n");

  CHECK(with({"put", "secret", "s3cr3t"}, {"--allow-foreign"}).status == 0);
  CHECK(with({"get", "secret"}, {"--read-only"}).out == "s3cr3t\n");
}

TEST_CASE("the tool refuses to write into a domain another user owns", "[cli][foreign_owner]") {
  if (!IsRoot()) {
    WARN("skipped: not running as root, so no file of another user can be planted");
    return;
  }
  SECTION("a file") {
    TempDir dir;
    REQUIRE(chmod(dir.path().c_str(), 0777) == 0);
    const std::string path = dir.File("planted");
    PlantAsNobody({path}, path);
    ExpectCliRefuses({path}, path);
  }
  SECTION("shared memory") {
    const std::string name = "cli-edges-test-" + std::to_string(getpid());
    const std::string file = "/dev/shm/atomap." + name;
    struct Remove {
      std::string file;
      ~Remove() { unlink(file.c_str()); }
    } remove{file};
    PlantAsNobody({name, "--shm"}, file);
    ExpectCliRefuses({name, "--shm"}, file);
  }
}

}  // namespace
}  // namespace atomap

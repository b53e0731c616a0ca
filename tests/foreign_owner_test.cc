// A writer never writes into a file that someone else planted (docs/reliability.md, "Full disks
// and planted files"; the rule is at Options::allow_foreign_owner).
//
// As root, user nobody (65534) creates a domain file in a directory open to everyone and a
// shared-memory domain in /dev/shm; root's writable open of either is PermissionDenied naming
// the file, the owner and the mode, and changes nothing; with allow_foreign_owner it works; a
// read-only open always works. Not root: warns and passes.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <string>

#include "atomap/domain.h"
#include "support/process.h"
#include "support/scratch_fs.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

constexpr uid_t kNobody = 65534;

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

absl::Status PutKey(Domain& domain, const std::string& key, const std::string& value) {
  absl::StatusOr<Atom> atom = domain.atom("a");
  if (!atom.ok()) return atom.status();
  return atom->swap([&](Transaction& tx) { return tx.set(key, value); }).status();
}

// Creates the domain as user nobody, with `mode`, holding a=planted. Returns its file path.
std::string PlantAsNobody(const std::string& name, DomainKind kind, std::uint32_t mode) {
  ReportPipe report;
  const pid_t pid = ForkChild([&] {
    if (!BecomeUser(kNobody)) return 1;
    Options options = SmallOptions(16, 64, kind);
    options.permissions = mode;
    absl::StatusOr<Domain> domain = Domain::Open(name, options);
    if (!domain.ok() || !PutKey(*domain, "planted", "by nobody").ok()) return 2;
    char path[256] = {};
    domain->path().copy(path, sizeof path - 1);
    report.Send(path, sizeof path);
    return 0;
  });
  char path[256] = {};
  const bool got = report.Receive(path, sizeof path);
  REQUIRE(WaitChild(pid) == 0);
  REQUIRE(got);
  struct stat st;
  REQUIRE(stat(path, &st) == 0);
  REQUIRE(st.st_uid == kNobody);
  REQUIRE((st.st_mode & 07777) == mode);
  return path;
}

// Root's opens of nobody's domain `name` (file path or shared-memory name).
void ExpectRefusedForWriting(const std::string& name, const std::string& file, DomainKind kind,
                             std::uint32_t mode) {
  const std::string before = ReadBytes(file);
  Options options = SmallOptions(16, 64, kind);
  absl::StatusOr<Domain> refused = Domain::Open(name, options);
  REQUIRE_FALSE(refused.ok());
  INFO(refused.status().ToString());
  CHECK(absl::IsPermissionDenied(refused.status()));
  const std::string message(refused.status().message());
  CHECK(message.find(file) != std::string::npos);
  CHECK(message.find("uid 65534") != std::string::npos);
  char octal[8];
  std::snprintf(octal, sizeof octal, "%04o", mode);
  CHECK(message.find(std::string("mode ") + octal) != std::string::npos);
  CHECK(ReadBytes(file) == before);  // nothing written: not even a slot claimed

  options.read_only = true;
  absl::StatusOr<Domain> reader = Domain::Open(name, options);
  REQUIRE(reader.ok());
  absl::StatusOr<Atom> atom = reader->atom("a");
  REQUIRE(atom.ok());
  absl::StatusOr<Snapshot> snap = atom->load();
  REQUIRE(snap.ok());
  CHECK(snap->map().get("planted") == std::optional<std::string_view>("by nobody"));

  options.read_only = false;
  options.allow_foreign_owner = true;
  absl::StatusOr<Domain> allowed = Domain::Open(name, options);
  REQUIRE(allowed.ok());
  CHECK(PutKey(*allowed, "root", "wrote").ok());
}

bool SkipUnlessRoot() {
  if (IsRoot()) return false;
  WARN("skipped: not running as root, so no file of another user can be planted");
  return true;
}

TEST_CASE("a domain file another user owns is refused for writing", "[foreign_owner]") {
  if (SkipUnlessRoot()) return;
  for (const std::uint32_t mode : {0666u, 0644u, 0600u}) {
    INFO("mode " << std::oct << mode);
    TempDir dir;
    REQUIRE(chmod(dir.path().c_str(), 0777) == 0);  // nobody may create there
    const std::string path = dir.File("planted");
    REQUIRE(PlantAsNobody(path, DomainKind::kFile, mode) == path);
    ExpectRefusedForWriting(path, path, DomainKind::kFile, mode);
  }
}

TEST_CASE("a shared-memory domain another user owns is refused for writing", "[foreign_owner]") {
  if (SkipUnlessRoot()) return;
  const std::string name = "foreign-owner-test-" + std::to_string(getpid());
  const std::string file = "/dev/shm/atomap." + name;
  struct Remove {
    std::string file;
    ~Remove() { unlink(file.c_str()); }
  } remove{file};
  REQUIRE(PlantAsNobody(name, DomainKind::kSharedMemory, 0666) == file);
  ExpectRefusedForWriting(name, file, DomainKind::kSharedMemory, 0666);
}

TEST_CASE("a domain the opener owns opens for writing whatever its mode", "[foreign_owner]") {
  TempDir dir;
  const std::string path = dir.File("mine");
  Options options = SmallOptions();
  options.permissions = 0666;
  REQUIRE(Domain::Open(path, options).ok());
  absl::StatusOr<Domain> again = Domain::Open(path, options);
  REQUIRE(again.ok());
  CHECK(PutKey(*again, "k", "v").ok());
}

}  // namespace
}  // namespace atomap

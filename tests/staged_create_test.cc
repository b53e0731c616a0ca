// Staged creation (Domain::CreateUnpublished, then Publish): a domain built and filled under no
// name appears at its path complete, or not at all, and never replaces anything there.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "atomap/domain.h"
#include "file/domain_file.h"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

std::set<std::string> DirectoryEntries(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

// Puts k=v into atom "a" of `domain`.
void Fill(Domain& domain) {
  absl::StatusOr<Atom> atom = domain.atom("a");
  REQUIRE(atom.ok());
  REQUIRE(atom->swap([](Transaction& tx) { return tx.set("k", "v"); }).ok());
}

// Restores the O_TMPFILE path for the rest of the run, even when a REQUIRE fails.
struct NamedTempFiles {
  explicit NamedTempFiles(bool force) { internal::ForceNamedTempFileForTesting(force); }
  ~NamedTempFiles() { internal::ForceNamedTempFileForTesting(false); }
};

TEST_CASE("an unpublished domain is invisible until Publish, then complete at its path",
          "[domain]") {
  const bool named = GENERATE(false, true);  // O_TMPFILE, and the named fallback
  const NamedTempFiles fallback(named);
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  absl::StatusOr<Domain> domain = Domain::CreateUnpublished(path, SmallOptions());
  REQUIRE(domain.ok());
  CHECK(domain->path() == path);
  Fill(*domain);
  CHECK_FALSE(std::filesystem::exists(path));
  Options no_create = SmallOptions();
  no_create.create_if_missing = false;
  CHECK(absl::IsNotFound(Domain::Open(path, no_create).status()));

  REQUIRE(domain->Publish().ok());
  CHECK(DirectoryEntries(dir.path()) ==
        std::set<std::string>{"d.atomap", "d.atomap.lock", "d.atomap.readers"});
  CHECK(absl::IsFailedPrecondition(domain->Publish()));
  absl::StatusOr<Domain> other = Domain::Open(path, no_create);
  REQUIRE(other.ok());
  absl::StatusOr<Atom> atom = other->atom("a");
  REQUIRE(atom.ok());
  absl::StatusOr<Snapshot> snapshot = atom->load();
  REQUIRE(snapshot.ok());
  CHECK(snapshot->map().get("k") == std::optional<std::string_view>("v"));
  CHECK(other->check()->problems.empty());
}

TEST_CASE("Publish never replaces what is at the path; a dropped unpublished domain leaves nothing",
          "[domain]") {
  const bool named = GENERATE(false, true);
  const NamedTempFiles fallback(named);
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  {
    absl::StatusOr<Domain> domain = Domain::CreateUnpublished(path, SmallOptions());
    REQUIRE(domain.ok());
    Fill(*domain);
    std::ofstream(path) << "someone else's file";
    const absl::Status published = domain->Publish();
    CHECK(absl::IsAlreadyExists(published));
    CHECK(std::string(published.message()).find(path) != std::string::npos);
  }
  std::ifstream in(path);
  CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "someone else's file");
  CHECK(DirectoryEntries(dir.path()) == std::set<std::string>{"d.atomap"});
  std::filesystem::remove(path);
  {
    absl::StatusOr<Domain> dropped = Domain::CreateUnpublished(path, SmallOptions());
    REQUIRE(dropped.ok());
    Fill(*dropped);
  }
  CHECK(DirectoryEntries(dir.path()).empty());
}

TEST_CASE("a process killed before Publish leaves nothing at the path", "[domain]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  const pid_t child = ForkChild([&] {
    absl::StatusOr<Domain> domain = Domain::CreateUnpublished(path, SmallOptions());
    if (!domain.ok()) return 1;
    absl::StatusOr<Atom> atom = domain->atom("a");
    if (!atom.ok() || !atom->swap([](Transaction& tx) { return tx.set("k", "v"); }).ok()) return 2;
    raise(SIGKILL);
    return 3;
  });
  CHECK(WaitChild(child) == 128 + SIGKILL);
  CHECK(DirectoryEntries(dir.path()).empty());  // the unnamed file died with the process
}

TEST_CASE("CreateUnpublished refuses in-process and read-only domains", "[domain]") {
  TempDir dir;
  Options options = SmallOptions(16, 64, DomainKind::kInProcess);
  CHECK(absl::IsInvalidArgument(Domain::CreateUnpublished("label", options).status()));
  options = SmallOptions();
  options.read_only = true;
  CHECK(absl::IsInvalidArgument(Domain::CreateUnpublished(dir.File("d"), options).status()));
  CHECK(DirectoryEntries(dir.path()).empty());
}

}  // namespace
}  // namespace atomap

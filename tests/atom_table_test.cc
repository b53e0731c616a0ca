// The atom table: find-or-create by name, race-free across processes and threads; name limits;
// a full table; colliding hashes; persistence.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "atomap/domain.h"
#include "common/hash.h"
#include "common/shared_atomic.h"
#include "domain/domain_impl.h"
#include "file/domain_file.h"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

using internal::Access;

std::string SharedName(int i) { return "shared/" + std::to_string(i); }
std::string OwnName(int process, int i) {
  return "own/" + std::to_string(process) + "/" + std::to_string(i);
}

TEST_CASE("processes creating the same and different names agree on every atom", "[atoms][race]") {
  TempDir dir;
  const std::string path = dir.File("atoms.atomap");
  {
    REQUIRE(Domain::Open(path, SmallOptions(16, 256)).ok());
  }
  constexpr int kProcesses = 6;
  constexpr int kShared = 50;
  constexpr int kOwn = 20;
  struct Report {
    std::int32_t process;
    std::int32_t name;  // < kShared: SharedName(name); else OwnName(process, name - kShared)
    std::int64_t atom;  // -1 on error
  };
  Gate start;
  ReportPipe reports;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    children.push_back(ForkChild([&, p] {
      start.Wait();
      absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(16, 256));
      if (!domain.ok()) return 1;
      internal::AtomTable& atoms = Access(*domain).atoms();
      for (int i = 0; i < kShared + kOwn; ++i) {
        // Interleave: shared names in an order that differs per process.
        const std::string name =
            i < kShared ? SharedName((i * 7 + p * 13) % kShared) : OwnName(p, i - kShared);
        absl::StatusOr<std::uint32_t> atom = atoms.FindOrCreate(name);
        const int id = i < kShared ? (i * 7 + p * 13) % kShared : i;
        reports.Send(Report{p, id, atom.ok() ? std::int64_t{*atom} : -1});
      }
      return 0;
    }));
  }
  start.Open();
  std::map<int, std::int64_t> shared_atoms;
  std::map<std::int64_t, std::string> owner_of_atom;
  for (int i = 0; i < kProcesses * (kShared + kOwn); ++i) {
    std::optional<Report> report = reports.Receive<Report>();
    REQUIRE(report.has_value());
    REQUIRE(report->atom >= 0);
    const std::string name = report->name < kShared
                                 ? SharedName(report->name)
                                 : OwnName(report->process, report->name - kShared);
    if (report->name < kShared) {
      auto [it, inserted] = shared_atoms.emplace(report->name, report->atom);
      CHECK(it->second == report->atom);  // everyone got the same atom for a shared name
    }
    auto [it, inserted] = owner_of_atom.emplace(report->atom, name);
    CHECK(it->second == name);  // no atom number serves two names
  }
  for (pid_t child : children) CHECK(WaitChild(child) == 0);

  absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(16, 256));
  REQUIRE(domain.ok());
  internal::AtomTable& atoms = Access(*domain).atoms();
  CHECK(atoms.Count() == kShared + kProcesses * kOwn);
  CHECK(domain->info().atom_count == kShared + kProcesses * kOwn);
  for (const auto& [atom, name] : owner_of_atom) {
    absl::StatusOr<std::uint32_t> found = atoms.Find(name);
    REQUIRE(found.ok());
    CHECK(*found == atom);
    CHECK(atoms.Name(*found) == name);
  }
}

void CreateFromThreads(Domain& domain) {
  constexpr int kThreads = 4;
  constexpr int kNames = 100;
  std::vector<std::vector<std::int64_t>> seen(kThreads, std::vector<std::int64_t>(kNames, -1));
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kNames; ++i) {
        const int name = (i + t * 17) % kNames;
        absl::StatusOr<std::uint32_t> atom = Access(domain).atoms().FindOrCreate(SharedName(name));
        if (atom.ok()) seen[t][name] = *atom;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kNames; ++i) {
    CHECK(seen[0][i] >= 0);
    for (int t = 1; t < kThreads; ++t) CHECK(seen[t][i] == seen[0][i]);
  }
  CHECK(Access(domain).atoms().Count() == kNames);
}

TEST_CASE("threads creating the same names agree (file)", "[atoms][threads]") {
  TempDir dir;
  absl::StatusOr<Domain> domain = Domain::Open(dir.File("threads.atomap"), SmallOptions(16, 128));
  REQUIRE(domain.ok());
  CreateFromThreads(*domain);
}

TEST_CASE("threads creating the same names agree (in-process)", "[atoms][threads]") {
  Options options = SmallOptions(16, 128);
  options.kind = DomainKind::kInProcess;
  absl::StatusOr<Domain> domain = Domain::Open("atoms", options);
  REQUIRE(domain.ok());
  CreateFromThreads(*domain);
}

TEST_CASE("names have 1 to 255 bytes, any bytes", "[atoms]") {
  TempDir dir;
  absl::StatusOr<Domain> domain = Domain::Open(dir.File("names.atomap"), SmallOptions(16, 16));
  REQUIRE(domain.ok());
  internal::AtomTable& atoms = Access(*domain).atoms();
  const std::string longest(255, 'n');
  absl::StatusOr<std::uint32_t> atom = atoms.FindOrCreate(longest);
  REQUIRE(atom.ok());
  CHECK(atoms.Name(*atom) == longest);
  const std::string binary("a\0b\xff", 4);
  REQUIRE(atoms.FindOrCreate(binary).ok());
  CHECK(atoms.Name(*atoms.Find(binary)) == binary);
  CHECK(atoms.Find(std::string("a", 1)).status().code() == absl::StatusCode::kNotFound);
  for (const std::string& bad : {std::string(), std::string(256, 'n')}) {
    CHECK(atoms.FindOrCreate(bad).status().code() == absl::StatusCode::kInvalidArgument);
    CHECK(atoms.Find(bad).status().code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK(atoms.Count() == 2);
}

TEST_CASE("a full atom table is ResourceExhausted; existing names still resolve", "[atoms]") {
  TempDir dir;
  absl::StatusOr<Domain> domain = Domain::Open(dir.File("full.atomap"), SmallOptions(16, 8));
  REQUIRE(domain.ok());
  internal::AtomTable& atoms = Access(*domain).atoms();
  for (int i = 0; i < 8; ++i) REQUIRE(atoms.FindOrCreate(SharedName(i)).ok());
  absl::Status full = atoms.FindOrCreate("one too many").status();
  CHECK(full.code() == absl::StatusCode::kResourceExhausted);
  CHECK(full.message().find("capacity 8") != std::string::npos);
  for (int i = 0; i < 8; ++i) CHECK(atoms.FindOrCreate(SharedName(i)).ok());
}

TEST_CASE("colliding hashes (test-weak kind) still keep names apart", "[atoms]") {
  TempDir dir;
  Options options = SmallOptions(16, 128);
  internal::SetCreatedHashKindForTesting(internal::HashKind::kTestWeak);
  absl::StatusOr<Domain> domain = Domain::Open(dir.File("weak.atomap"), options);
  internal::SetCreatedHashKindForTesting(internal::HashKind::kXxh3);
  REQUIRE(domain.ok());
  CHECK(Access(*domain).hasher().kind() == internal::HashKind::kTestWeak);
  internal::AtomTable& atoms = Access(*domain).atoms();
  // Names that differ only in the low 4 bits of the last byte share all 64 hash bits.
  std::vector<std::string> names;
  for (int hi = 0; hi < 6; ++hi) {
    for (int lo = 0; lo < 16; ++lo)
      names.push_back("key" + std::string(1, static_cast<char>(0x40 + hi * 16 + lo)));
  }
  std::map<std::string, std::uint32_t> created;
  for (const std::string& name : names) {
    absl::StatusOr<std::uint32_t> atom = atoms.FindOrCreate(name);
    REQUIRE(atom.ok());
    created[name] = *atom;
  }
  for (const std::string& name : names) {
    absl::StatusOr<std::uint32_t> atom = atoms.Find(name);
    REQUIRE(atom.ok());
    CHECK(*atom == created[name]);
  }
  CHECK(atoms.Count() == names.size());
}

TEST_CASE("atoms persist, start empty, and are listed in record order", "[atoms]") {
  TempDir dir;
  const std::string path = dir.File("persist.atomap");
  {
    absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(16, 16));
    REQUIRE(domain.ok());
    internal::AtomTable& atoms = Access(*domain).atoms();
    for (const char* name : {"zeta", "alpha", "mid"}) {
      absl::StatusOr<std::uint32_t> atom = atoms.FindOrCreate(name);
      REQUIRE(atom.ok());
      CHECK(atoms.Root(*atom).LoadAcquire() == 0);
      CHECK(atoms.ChangeCounter(*atom).LoadAcquire() == 0);
      CHECK(atoms.Waiters(*atom).LoadRelaxed() == 0);
    }
    atoms.Root(*atoms.Find("mid")).StoreRelease(4096);
  }
  absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(16, 16));
  REQUIRE(domain.ok());
  internal::AtomTable& atoms = Access(*domain).atoms();
  std::vector<std::string> listed;
  atoms.ForEach([&](std::uint32_t atom, std::string_view name) {
    CHECK(atom == listed.size());
    listed.emplace_back(name);
  });
  CHECK(listed == std::vector<std::string>{"zeta", "alpha", "mid"});
  CHECK(atoms.Root(*atoms.Find("mid")).LoadAcquire() == 4096);
}

}  // namespace
}  // namespace atomap

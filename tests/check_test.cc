// Domain::check(): structure and space accounting of healthy, leaking and damaged domains, and
// repair (by hand, and the sweep a lone opener runs after a crash).
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"

#include "alloc/allocator_state.h"
#include "alloc/size_classes.h"
#include "atomap/check.h"
#include "atomap/domain.h"
#include "domain/domain_impl.h"
#include "hamt/node.h"
#include "intent/intent_record.h"
#include "intent/owned_lane.h"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

void Fill(Domain& domain, const std::string& atom_name, int keys, int value_bytes) {
  Atom atom = *domain.atom(atom_name);
  for (int i = 0; i < keys; ++i) {
    REQUIRE(atom.swap([&](Transaction& tx) {
                  return tx.set("key-" + std::to_string(i),
                                std::string(value_bytes, static_cast<char>('a' + i % 26)));
                })
                .ok());
  }
}

std::uint64_t Accounted(const CheckReport& r) {
  return r.reachable_bytes + r.free_bytes + r.pending_bytes + r.unused_bytes + r.in_flight_bytes +
         r.leaked_bytes;
}

std::string Joined(const CheckReport& r) {
  std::string out;
  for (const std::string& p : r.problems) out += p + "\n";
  return out;
}

// A child that opens the domain, starts a swap, and dies inside it (after the transaction has
// allocated its new path): what it allocated is reachable from nothing.
void DieMidSwap(const std::string& path) {
  const int rc = WaitChild(ForkChild([&] {
    absl::StatusOr<Domain> d =
        Domain::Open(path, SmallOptions(16, 16, DomainKind::kFile, std::uint64_t{256} << 20));
    if (!d.ok()) return 1;
    Atom atom = *d->atom("victim");
    (void)atom.swap([&](Transaction& tx) -> absl::Status {
      for (int i = 0; i < 50; ++i) (void)tx.set("lost-" + std::to_string(i), std::string(40, 'x'));
      (void)tx.size();  // builds the deferred sets (the atom was empty): now they are in the file
      _exit(0);  // killed mid-swap, as by SIGKILL: no destructor runs
    });
    return 2;
  }));
  REQUIRE(rc == 0);
}

// Dies with one more transaction open than a thread has lanes: the last one's blocks are recorded
// nowhere, so only the sweep can find them.
void DieWithUnrecordedTransaction(const std::string& path) {
  const int rc = WaitChild(ForkChild([&] {
    absl::StatusOr<Domain> d =
        Domain::Open(path, SmallOptions(16, 16, DomainKind::kFile, std::uint64_t{256} << 20));
    if (!d.ok()) return 1;
    Atom atom = *d->atom("victim");
    absl::StatusOr<Snapshot> base = atom.load();
    if (!base.ok()) return 1;
    std::vector<Transaction> open;
    for (std::uint32_t t = 0; t <= internal::kLanesPerSlot; ++t) {
      open.push_back(*atom.begin(*base));
      for (int i = 0; i < 20; ++i)
        (void)open.back().set(absl::StrCat("t", t, "-", i), std::string(40, 'x'));
      (void)open.back().size();  // builds the deferred sets into the file
    }
    _exit(0);  // killed with every transaction open
  }));
  REQUIRE(rc == 0);
}

TEST_CASE("a healthy domain checks clean and its space adds up", "[check]") {
  TempDir dir;
  Domain domain = *Domain::Open(dir.File("d.atomap"),
                                SmallOptions(16, 16, DomainKind::kFile, std::uint64_t{256} << 20));
  Fill(domain, "small", 200, 4);
  Fill(domain, "blobs", 50, 300);
  absl::StatusOr<CheckReport> report = domain.check();
  REQUIRE(report.ok());
  INFO(Joined(*report));
  CHECK(report->ok());
  CHECK(report->leaked_bytes == 0);
  CHECK(report->reachable_bytes > 50 * 300);
  CHECK(Accounted(*report) == domain.stats().data_bytes);
}

TEST_CASE("an in-process domain checks clean", "[check]") {
  Options options = SmallOptions(16, 16, DomainKind::kFile, std::uint64_t{256} << 20);
  options.kind = DomainKind::kInProcess;
  Domain domain = *Domain::Open("mem", options);
  Fill(domain, "a", 100, 20);
  absl::StatusOr<CheckReport> report = domain.check();
  REQUIRE(report.ok());
  INFO(Joined(*report));
  CHECK(report->ok());
  CHECK(Accounted(*report) == domain.stats().data_bytes);
}

TEST_CASE(
    "a writer killed mid-swap leaks nothing: check counts its work in flight, a takeover frees it",
    "[check]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  Domain domain = *Domain::Open(
      path, SmallOptions(16, 16, DomainKind::kFile,
                         std::uint64_t{256} << 20));  // held open: the child is not alone
  Fill(domain, "kept", 100, 30);
  DieMidSwap(path);

  absl::StatusOr<CheckReport> found = domain.check();
  REQUIRE(found.ok());
  INFO(Joined(*found));
  CHECK(found->ok());
  CHECK(found->leaked_bytes == 0);
  CHECK(found->in_flight_bytes >= 50 * 40);  // its lane lists what the open transaction built
  CHECK(Accounted(*found) == domain.stats().data_bytes);

  absl::StatusOr<CheckReport> repaired = domain.check({.repair = true});  // takes the slot over
  REQUIRE(repaired.ok());
  INFO(Joined(*repaired));
  CHECK(repaired->ok());
  CHECK(repaired->leaked_bytes == 0);
  CHECK(repaired->in_flight_bytes == internal::kOwnedBatchBytes);  // this thread's idle lane
  CHECK(repaired->reachable_bytes == found->reachable_bytes);
  CHECK(Accounted(*repaired) == domain.stats().data_bytes);
}

// A child that loads `entries` entries into an empty atom with a loop of sets (deferred: built
// bottom up by the transaction's next other call, here size()) and is SIGKILLed by the parent
// once the build is done, its transaction still open. (A kill inside the build is
// crash_points_test's "a writer killed inside a bulk build".)
void KilledAfterBulkBuild(const std::string& path, int entries) {
  ReportPipe built;
  const pid_t pid = ForkChild([&] {
    absl::StatusOr<Domain> d =
        Domain::Open(path, SmallOptions(16, 16, DomainKind::kFile, std::uint64_t{256} << 20));
    if (!d.ok()) return 1;
    Atom atom = *d->atom(absl::StrCat("bulk-", entries));
    (void)atom.swap([&](Transaction& tx) -> absl::Status {
      for (int i = 0; i < entries; ++i) (void)tx.set(absl::StrCat("bulk-", i), "0123456789abcdef");
      (void)tx.size();  // builds them
      built.Send(std::uint64_t{1});
      for (;;) pause();  // killed here, the transaction open
    });
    return 2;
  });
  built.CloseWriteEnd();
  REQUIRE(built.Receive<std::uint64_t>().has_value());
  kill(pid, SIGKILL);
  REQUIRE(WaitChild(pid) == 128 + SIGKILL);
}

TEST_CASE("a writer killed after a bulk build leaks nothing: a takeover frees what it built",
          "[check]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  Domain domain = *Domain::Open(
      path, SmallOptions(16, 16, DomainKind::kFile,
                         std::uint64_t{256} << 20));  // held open: the child is not alone
  Fill(domain, "kept", 50, 30);
  for (int entries : {20000, 60000, 120000}) {
    INFO(entries << " entries");
    KilledAfterBulkBuild(path, entries);
    absl::StatusOr<CheckReport> found = domain.check();
    REQUIRE(found.ok());
    INFO(Joined(*found));
    CHECK(found->ok());
    CHECK(Accounted(*found) == domain.stats().data_bytes);
    CHECK(found->in_flight_bytes >= static_cast<std::uint64_t>(entries) * 16);  // what it built
    // A takeover frees what the lane lists: all of it.
    absl::StatusOr<CheckReport> repaired = domain.check({.repair = true});
    REQUIRE(repaired.ok());
    INFO(Joined(*repaired));
    CHECK(repaired->ok());
    CHECK(repaired->leaked_bytes == 0);
    CHECK(repaired->in_flight_bytes == internal::kOwnedBatchBytes);  // this thread's idle lane
    CHECK(Accounted(*repaired) == domain.stats().data_bytes);
    CHECK(domain.atom(absl::StrCat("bulk-", entries))->load()->map().size() == 0);
  }
}

TEST_CASE("check finds what an unrecorded transaction leaked, and repair frees it", "[check]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  Domain domain = *Domain::Open(
      path, SmallOptions(16, 16, DomainKind::kFile,
                         std::uint64_t{256} << 20));  // held open: the child is not alone
  Fill(domain, "kept", 100, 30);
  DieWithUnrecordedTransaction(path);

  absl::StatusOr<CheckReport> found = domain.check();
  REQUIRE(found.ok());
  CHECK(found->leaked_bytes >= 20 * 40);
  CHECK_FALSE(found->ok());  // alone now: the leak is a problem
  CHECK(Accounted(*found) == domain.stats().data_bytes);

  absl::StatusOr<CheckReport> repaired = domain.check({.repair = true});
  REQUIRE(repaired.ok());
  INFO(Joined(*repaired));
  CHECK(repaired->ok());
  CHECK(repaired->leaked_bytes == 0);
  CHECK(repaired->in_flight_bytes == internal::kOwnedBatchBytes);  // this thread's idle lane
  CHECK(repaired->reachable_bytes == found->reachable_bytes);

  Atom kept = *domain.atom("kept");
  absl::StatusOr<Snapshot> snap = kept.load();
  REQUIRE(snap.ok());
  CHECK(snap->map().size() == 100);
  CHECK(snap->map().get("key-7") == std::string(30, 'h'));
  Fill(domain, "after", 300, 40);  // the rebuilt free lists serve new allocations
  absl::StatusOr<CheckReport> again = domain.check();
  REQUIRE(again.ok());
  INFO(Joined(*again));
  CHECK(again->ok());
  CHECK(Accounted(*again) == domain.stats().data_bytes);
}

TEST_CASE("a lone opener after a crash sweeps what the dead writer leaked", "[check]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  {
    Domain domain =
        *Domain::Open(path, SmallOptions(16, 16, DomainKind::kFile, std::uint64_t{256} << 20));
    Fill(domain, "kept", 100, 30);
  }
  DieWithUnrecordedTransaction(path);
  Domain domain =
      *Domain::Open(path, SmallOptions(16, 16, DomainKind::kFile, std::uint64_t{256} << 20));
  CHECK_FALSE(domain.info().clean);
  absl::StatusOr<CheckReport> report = domain.check();
  REQUIRE(report.ok());
  INFO(Joined(*report));
  CHECK(report->ok());
  CHECK(report->leaked_bytes == 0);
  CHECK((*domain.atom("kept")).load()->map().size() == 100);
}

TEST_CASE("repair is refused while another handle is attached, and on a read-only handle",
          "[check]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  Domain domain =
      *Domain::Open(path, SmallOptions(16, 16, DomainKind::kFile, std::uint64_t{256} << 20));
  Fill(domain, "a", 10, 4);
  Gate opened, done;
  const pid_t child = ForkChild([&] {
    absl::StatusOr<Domain> other =
        Domain::Open(path, SmallOptions(16, 16, DomainKind::kFile, std::uint64_t{256} << 20));
    if (!other.ok()) return 1;
    opened.Open();
    done.Wait();
    return 0;
  });
  opened.Wait();
  absl::StatusOr<CheckReport> refused = domain.check({.repair = true});
  CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<CheckReport> plain = domain.check();
  REQUIRE(plain.ok());
  CHECK(plain->ok());
  done.Open();
  REQUIRE(WaitChild(child) == 0);

  Options read_only = SmallOptions(16, 16, DomainKind::kFile, std::uint64_t{256} << 20);
  read_only.read_only = true;
  Domain reader = *Domain::Open(path, read_only);
  CHECK(reader.check({.repair = true}).status().code() == absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<CheckReport> read = reader.check();
  REQUIRE(read.ok());
  CHECK(read->ok());
}

// Damage written straight into the mapping; check must report it, never crash.
TEST_CASE("check reports a damaged trie without crashing", "[check]") {
  TempDir dir;
  Domain domain = *Domain::Open(dir.File("d.atomap"),
                                SmallOptions(16, 16, DomainKind::kFile, std::uint64_t{256} << 20));
  Fill(domain, "victim", 200, 4);
  internal::DomainImpl& impl = internal::Access(domain);
  internal::SharedU64& root = impl.atoms().Root(0);
  const std::uint64_t good_root = root.LoadAcquire();
  auto* version = impl.arena().At<internal::hamt::VersionRecord>(good_root);
  auto* node = impl.arena().At<internal::hamt::NodeHeader>(version->root_node);
  auto* child = reinterpret_cast<std::uint64_t*>(node + 1);

  SECTION("root word far outside the file") {
    root.StoreRelease(std::uint64_t{1} << 45);
    absl::StatusOr<CheckReport> r = domain.check();
    REQUIRE(r.ok());
    REQUIRE_FALSE(r->ok());
    CHECK_THAT(r->problems[0], Catch::Contains("atom 0 'victim'"));
  }
  SECTION("misaligned child offset") {
    const std::uint64_t saved = child[0];
    child[0] = saved + 3;
    absl::StatusOr<CheckReport> r = domain.check();
    REQUIRE(r.ok());
    CHECK_FALSE(r->ok());
    CHECK_THAT(Joined(*r), Catch::Contains("not an aligned block"));
    CHECK(domain.check({.repair = true})->leaked_bytes > 0);  // damaged version: nothing freed
    child[0] = saved;
  }
  SECTION("overlapping bitmaps") {
    const std::uint32_t saved = node->datamap;
    node->datamap |= node->nodemap;
    CHECK_THAT(Joined(*domain.check()), Catch::Contains("share bits"));
    node->datamap = saved;
  }
  SECTION("wrong entry count") {
    version->entry_count += 1;
    CHECK_THAT(Joined(*domain.check()), Catch::Contains("says 201 entries, the trie holds 200"));
    version->entry_count -= 1;
  }
  SECTION("a cycle") {
    const std::uint64_t saved = child[0];
    child[0] = version->root_node;
    absl::StatusOr<CheckReport> r = domain.check();
    REQUIRE(r.ok());
    CHECK_THAT(Joined(*r), Catch::Contains("reached twice"));
    child[0] = saved;
  }
  root.StoreRelease(good_root);
  CHECK(domain.check()->ok());
}

TEST_CASE("repair rebuilds damaged free lists from the versions alone", "[check]") {
  TempDir dir;
  Domain domain = *Domain::Open(dir.File("d.atomap"),
                                SmallOptions(16, 16, DomainKind::kFile, std::uint64_t{256} << 20));
  Fill(domain, "kept", 300, 30);
  for (int i = 0; i < 100; ++i) {  // garbage to free: free lists of several classes
    REQUIRE(
        (*domain.atom("kept"))
            .swap([&](Transaction& tx) { return tx.erase("key-" + std::to_string(i)).status(); })
            .ok());
  }
  internal::DomainImpl& impl = internal::Access(domain);
  auto* state = impl.allocator_state();
  const std::uint64_t version = impl.atoms().Root(0).LoadAcquire();
  // A shared list now claims the version record, which the atom's root reaches.
  const auto c = internal::size_classes::ClassOf(sizeof(internal::hamt::VersionRecord));
  state->heads[c].offset = version;
  absl::StatusOr<CheckReport> damaged = domain.check();
  REQUIRE(damaged.ok());
  CHECK_THAT(Joined(*damaged), Catch::Contains("overlaps"));

  absl::StatusOr<CheckReport> repaired = domain.check({.repair = true});
  REQUIRE(repaired.ok());
  INFO(Joined(*repaired));
  CHECK(repaired->ok());
  CHECK(repaired->leaked_bytes == 0);
  CHECK(repaired->pending_bytes == 0);  // alone: all garbage was freed
  absl::StatusOr<Snapshot> snap = (*domain.atom("kept")).load();
  REQUIRE(snap.ok());
  CHECK(snap->map().size() == 200);
  CHECK(snap->map().get("key-150") == std::string(30, 'u'));
  snap = absl::StatusOr<Snapshot>(absl::UnknownError("dropped"));
  Fill(domain, "more", 200, 50);
  CHECK(domain.check()->ok());
  CHECK((*domain.atom("kept")).load()->map().get("key-299") == std::string(30, 'n'));
}

}  // namespace
}  // namespace atomap

// Combining (atom/combine.h, docs/design.md "Combining"): a writer's batch applied by whichever
// writer publishes next. Posters killed at each step of the protocol (crash points: skipped
// where they are not compiled in), and processes whose adds must each come back with a value
// of their own. Processes synchronise on pipes and on their own exits only.
#include <signal.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "atom/combine.h"
#include "atomap/atom.h"
#include "atomap/check.h"
#include "atomap/codec.h"
#include "atomap/domain.h"
#include "atomap/ops.h"
#include "atomap/typed_map.h"
#include "common/crash_point.h"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kScale = 10;
#else
constexpr int kScale = 1;
#endif

using internal::CrashSite;

// Two slots: a later opener of the file must take a dead poster's slot over (SlotTable).
Options TwoSlots() { return SmallOptions(2, 4); }

std::uint64_t Counter(Atom& atom, std::string_view key = "hot") {
  absl::StatusOr<Snapshot> now = atom.load();
  REQUIRE(now.ok());
  return TypedMap<std::string, std::uint64_t>(now->map()).get(std::string(key)).value_or(0);
}

std::uint64_t VersionOf(Atom& atom) {
  absl::StatusOr<std::uint64_t> v = atom.version();
  REQUIRE(v.ok());
  return *v;
}

void CheckClean(Domain& domain) {
  absl::StatusOr<CheckReport> check = domain.check();
  REQUIRE(check.ok());
  for (const std::string& problem : check->problems) INFO(problem);
  CHECK(check->problems.empty());
  CHECK(check->leaked_bytes == 0);
}

// A child that opens the file, arms `site` (hit 1), runs `ops` once and must die there.
int PostAndDie(const std::string& path, CrashSite site, absl::Span<const Op> ops) {
  absl::StatusOr<Domain> domain = Domain::Open(path, TwoSlots());
  if (!domain.ok()) return 90;
  absl::StatusOr<Atom> atom = domain->atom("c");
  if (!atom.ok()) return 91;
  internal::PostNextBatches(1);  // alone, the batch would run as a swap and never be posted
  internal::ArmCrashPoint(site, 1);
  (void)atom->apply(ops);
  return 92;  // not killed: the site was not reached
}

// A child that opens the file (taking the dead poster's slot over: there are two slots and the
// parent holds the other) and adds `delta`; exits 0 if the add returned `expect`.
int AddExpecting(const std::string& path, std::uint64_t delta, std::uint64_t expect) {
  absl::StatusOr<Domain> domain = Domain::Open(path, TwoSlots());
  if (!domain.ok()) return 90;
  absl::StatusOr<Atom> atom = domain->atom("c");
  if (!atom.ok()) return 91;
  absl::StatusOr<std::uint64_t> n = atom->add("hot", delta);
  if (!n.ok()) return 92;
  return *n == expect ? 0 : 93;
}

bool CrashPointsMissing() {
  if (internal::CrashPointsCompiledIn()) return false;
  WARN("crash points are not compiled in (the debug, asan and tsan presets have them): skipped");
  return true;
}

// The parent of a dead-poster case: its domain and atom (its slot claimed first, so the child
// takes the other), and a child killed at `site` while applying `ops`.
struct DeadPosterCase {
  TempDir dir;
  std::string path = dir.File("c.atomap");
  Domain domain = *Domain::Open(path, TwoSlots());
  Atom atom = *domain.atom("c");

  DeadPosterCase() { REQUIRE(atom.add("warm", 1).ok()); }
  void KillPoster(CrashSite site, absl::Span<const Op> ops) {
    REQUIRE(WaitChild(ForkChild([&] { return PostAndDie(path, site, ops); })) == 128 + SIGKILL);
  }
  // A child that opens the file (taking the dead poster's slot over) and adds 1 gets `expect`.
  void NextOwnerAdds(std::uint64_t expect) {
    CHECK(WaitChild(ForkChild([&] { return AddExpecting(path, 1, expect); })) == 0);
  }
};

TEST_CASE("a poster killed after posting: the next writer applies its batch once, in its version",
          "[combine][crash]") {
  if (CrashPointsMissing()) return;
  DeadPosterCase f;
  const std::uint64_t before = VersionOf(f.atom);
  const Op posted[] = {Op::AddU64("hot", 1)};
  f.KillPoster(CrashSite::kCombineAfterPost, posted);
  // Its batch waits in its mailbox: this add, posted (as after contention: alone, an add
  // reads no mailbox), applies it too, after its own, in one version.
  internal::PostNextBatches(1);
  CHECK(f.atom.add("hot", 10).value_or(0) == 10);
  CHECK(Counter(f.atom) == 11);
  CHECK(VersionOf(f.atom) == before + 1);
  // Never again: the version's table says the dead poster's batch was applied.
  CHECK(f.atom.add("hot", 100).value_or(0) == 111);
  CHECK(Counter(f.atom) == 111);
  CheckClean(f.domain);
  // The next owner of the dead slot starts above the dead poster's sequence numbers.
  f.NextOwnerAdds(112);
  CHECK(f.atom.add("hot", 1).value_or(0) == 113);
  CheckClean(f.domain);
}

TEST_CASE("a poster killed while writing its batch: nothing of it is applied, ever",
          "[combine][crash]") {
  if (CrashPointsMissing()) return;
  DeadPosterCase f;
  const Op posted[] = {Op::AddU64("hot", 1)};
  f.KillPoster(CrashSite::kCombineMidPost, posted);
  internal::PostNextBatches(1);  // combines, and skips the half-written batch
  CHECK(f.atom.add("hot", 10).value_or(0) == 10);
  CHECK(Counter(f.atom) == 10);
  f.NextOwnerAdds(11);
  CHECK(f.atom.add("hot", 1).value_or(0) == 12);
  CheckClean(f.domain);
}

TEST_CASE("a poster killed after its batch was published, before it acknowledged: applied once",
          "[combine][crash]") {
  if (CrashPointsMissing()) return;
  DeadPosterCase f;
  const Op posted[] = {Op::AddU64("hot", 1)};
  f.KillPoster(CrashSite::kCombineBeforeAck, posted);
  CHECK(Counter(f.atom) == 1);
  // Its entry, never acknowledged, is carried from version to version and keeps it applied once,
  // by writers that combine (they read its mailbox) and by writers alone alike.
  for (std::uint64_t i = 2; i <= 5; ++i) {
    if (i % 2 == 0) internal::PostNextBatches(1);
    CHECK(f.atom.add("hot", 1).value_or(0) == i);
  }
  CheckClean(f.domain);
  f.NextOwnerAdds(6);
  CHECK(f.atom.add("hot", 1).value_or(0) == 7);
  CheckClean(f.domain);
}

TEST_CASE("a dead poster's batch that its combiner refuses: refused once, the rest applied",
          "[combine][crash]") {
  if (CrashPointsMissing()) return;
  DeadPosterCase f;
  const Op setup[] = {Op::Set("text", "abc")};
  REQUIRE(f.atom.apply(setup).ok());
  const Op posted[] = {Op::Set("first", "1"), Op::AddU64("text", 1)};  // all or nothing
  f.KillPoster(CrashSite::kCombineAfterPost, posted);
  internal::PostNextBatches(1);  // so that this add combines the dead poster's batch
  CHECK(f.atom.add("hot", 3).value_or(0) == 3);
  absl::StatusOr<Snapshot> now = f.atom.load();
  REQUIRE(now.ok());
  CHECK(now->map().get("first") == std::nullopt);
  CHECK(now->map().get("text") == std::optional<std::string_view>("abc"));
  CHECK(f.atom.add("hot", 3).value_or(0) == 6);
  CheckClean(f.domain);
}

// Adds `adds` ones to "hot", sending each returned value.
int AddAndReport(const std::string& path, int adds, Gate& start, ReportPipe& out) {
  absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(16, 4));
  if (!domain.ok()) return 90;
  absl::StatusOr<Atom> atom = domain->atom("c");
  if (!atom.ok()) return 91;
  start.Wait();
  for (int i = 0; i < adds; ++i) {
    absl::StatusOr<std::uint64_t> n = atom->add("hot", 1);
    if (!n.ok()) return 92;
    out.Send(*n);
  }
  return 0;
}

TEST_CASE("combined adds from several processes: every add has a value of its own", "[combine]") {
  constexpr int kProcesses = 4;
  const int adds = 10000 / kScale;
  TempDir dir;
  const std::string path = dir.File("c.atomap");
  Gate start;
  ReportPipe values;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    children.push_back(ForkChild([&] { return AddAndReport(path, adds, start, values); }));
  }
  values.CloseWriteEnd();
  start.Open();
  absl::flat_hash_set<std::uint64_t> seen;
  std::uint64_t max = 0;
  while (std::optional<std::uint64_t> n = values.Receive<std::uint64_t>()) {
    CHECK(seen.insert(*n).second);  // an add applied twice, or two adds merged, repeats one
    max = std::max(max, *n);
  }
  for (pid_t child : children) CHECK(WaitChild(child) == 0);
  const std::uint64_t total = std::uint64_t{kProcesses} * adds;
  CHECK(seen.size() == total);
  CHECK(max == total);  // so the values are exactly 1..total
  absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(16, 4));
  REQUIRE(domain.ok());
  Atom atom = *domain->atom("c");
  CHECK(Counter(atom) == total);
  const std::uint64_t versions = VersionOf(atom);
  INFO(total << " adds in " << versions << " versions");
  CHECK(versions <= total);
  CheckClean(*domain);
}

TEST_CASE("a batch too large to post is a swap, with the same outcomes", "[combine]") {
  TempDir dir;
  absl::StatusOr<Domain> domain = Domain::Open(dir.File("c.atomap"), SmallOptions());
  REQUIRE(domain.ok());
  Atom atom = *domain->atom("c");
  const std::string long_key(300, 'k');  // more than a mailbox holds
  std::vector<Op> ops;
  for (int i = 0; i < 6; ++i) ops.push_back(Op::AddU64("n", 1));  // more ops than a mailbox's 4
  ops.push_back(Op::AddU64(long_key, 2));
  absl::StatusOr<ApplyResult> r = atom.apply(ops);
  REQUIRE(r.ok());
  CHECK(r->outcomes[5].value == 6);
  CHECK(r->outcomes[6].value == 2);
  CHECK(r->version.version() == 1);
  const Op small[] = {Op::AddU64("n", 1), Op::CompareAndSet("n", std::nullopt, "x")};
  internal::PostNextBatches(1);
  absl::StatusOr<ApplyResult> s = atom.apply(small);  // posted, combined by its poster alone
  REQUIRE(s.ok());
  CHECK(s->outcomes[0].value == 7);
  CHECK(s->outcomes[0].existed);
  CHECK_FALSE(s->outcomes[1].matched);
  CHECK(s->version.version() == 2);
  CheckClean(*domain);
}

}  // namespace
}  // namespace atomap

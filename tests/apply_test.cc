// Atom::apply, add and add_i64 (atomap/ops.h): each op kind and its outcome, order and
// all-or-nothing within a batch, the batch limits, counters that several processes add to (with
// add and with a compare-and-set loop), and adders killed at arbitrary points. Multi-process
// cases synchronise on pipes only.
#include <signal.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "atomap/atom.h"
#include "atomap/check.h"
#include "atomap/codec.h"
#include "atomap/domain.h"
#include "atomap/ops.h"
#include "atomap/typed_map.h"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr int kScale = 10;  // sanitizer builds run ten times fewer operations
#else
constexpr int kScale = 1;
#endif

// The children's options: `combine` is Options::combine_writes (every multi-process case runs
// with both: a swap per batch, and combining, docs/design.md "Combining").
Options ChildOptions(bool combine) {
  Options options = SmallOptions(64, 4);
  options.combine_writes = combine;
  return options;
}

Options FixtureOptions(bool combine) {
  Options options = SmallOptions();
  options.combine_writes = combine;
  return options;
}

// A fresh domain with one atom, for the single-process cases.
struct Fixture {
  explicit Fixture(bool combine = true)
      : domain(*Domain::Open(dir.File("apply.atomap"), FixtureOptions(combine))),
        atom(*domain.atom("a")) {}
  TempDir dir;
  Domain domain;
  Atom atom;

  std::optional<std::string> Get(std::string_view key) {
    absl::StatusOr<Snapshot> now = atom.load();
    REQUIRE(now.ok());
    std::optional<std::string_view> value = now->map().get(key);
    if (!value) return std::nullopt;
    return std::string(*value);
  }
  std::uint64_t Version() { return *atom.version(); }
};

// The value of `result`, which must be OK.
template <class T>
T Ok(const absl::StatusOr<T>& result) {
  REQUIRE(result.ok());
  return *result;
}

std::string U64(std::uint64_t n) { return std::string(Codec<std::uint64_t>::Encode(n)); }

// An Op is a plain value: copied as bytes, as a combiner's mailbox will.
static_assert(std::is_trivially_copyable_v<Op> && std::is_trivially_destructible_v<Op>);

// The factories refuse temporaries whose bytes would be gone before apply reads them.
template <class V>
concept SetTakes = requires(V&& v) { Op::Set("k", std::forward<V>(v)); };
template <class K>
concept AddTakes = requires(K&& k) { Op::AddU64(std::forward<K>(k), 1); };
template <class D>
concept CasTakes = requires(D&& d) { Op::CompareAndSet("k", std::nullopt, std::forward<D>(d)); };
static_assert(SetTakes<const char (&)[2]> && SetTakes<std::string&> && SetTakes<std::string_view>);
static_assert(SetTakes<const NativeBytes<std::uint64_t>&>);
static_assert(!SetTakes<std::string> && !SetTakes<NativeBytes<std::uint64_t>>);
static_assert(AddTakes<const std::string&> && !AddTakes<std::string>);
static_assert(CasTakes<std::string&> && CasTakes<std::nullopt_t> && !CasTakes<std::string>);

TEST_CASE("set and erase: the values, and whether each found its key", "[apply]") {
  Fixture f(GENERATE(false, true));  // combine_writes off, then on
  const Op first[] = {Op::Set("k", "v"), Op::Erase("missing")};
  absl::StatusOr<ApplyResult> r = f.atom.apply(first);
  REQUIRE(r.ok());
  REQUIRE(r->outcomes.size() == 2);
  CHECK_FALSE(r->outcomes[0].existed);
  CHECK_FALSE(r->outcomes[1].existed);
  CHECK(r->version.map().get("k") == "v");
  CHECK(r->version.version() == 1);

  const Op overwrite[] = {Op::Set("k", "w"), Op::Set("k2", "x")};
  r = f.atom.apply(overwrite);
  REQUIRE(r.ok());
  CHECK(r->outcomes[0].existed);
  CHECK_FALSE(r->outcomes[1].existed);
  CHECK(r->version.map().get("k") == "w");

  const Op second[] = {Op::Erase("k")};
  r = f.atom.apply(second);
  REQUIRE(r.ok());
  CHECK(r->outcomes[0].existed);
  CHECK_FALSE(r->version.map().contains("k"));
  CHECK(f.Get("k") == std::nullopt);
}

TEST_CASE("add: absent is 0, the new value comes back, u64 wraps, i64 goes negative", "[apply]") {
  Fixture f(GENERATE(false, true));  // combine_writes off, then on
  CHECK(Ok(f.atom.add("n", 5)) == 5u);
  CHECK(Ok(f.atom.add("n", 7)) == 12u);
  CHECK(f.Get("n") == U64(12));

  CHECK(f.atom.add("max", std::numeric_limits<std::uint64_t>::max()).ok());
  CHECK(Ok(f.atom.add("max", 2)) == 1u);  // wrapped

  CHECK(Ok(f.atom.add_i64("s", -3)) == -3);
  CHECK(Ok(f.atom.add_i64("s", 1)) == -2);
  CHECK(f.Get("s") == std::string(Codec<std::int64_t>::Encode(-2)));

  const Op both[] = {Op::AddU64("n", 1), Op::AddI64("n", -13)};
  absl::StatusOr<ApplyResult> r = f.atom.apply(both);
  REQUIRE(r.ok());
  CHECK(r->outcomes[0].value == 13);
  CHECK(r->outcomes[0].existed);
  CHECK(static_cast<std::int64_t>(r->outcomes[1].value) == 0);
  const Op fresh[] = {Op::AddU64("new", 0)};
  r = f.atom.apply(fresh);
  REQUIRE(r.ok());
  CHECK_FALSE(r->outcomes[0].existed);
  CHECK(f.Get("new") == U64(0));  // an add of 0 to an absent key stores the 0
}

TEST_CASE("compare-and-set: absent, present, mismatched, and erase as the desired value",
          "[apply]") {
  Fixture f(GENERATE(false, true));  // combine_writes off, then on
  const Op create[] = {Op::CompareAndSet("lease", std::nullopt, "me")};
  absl::StatusOr<ApplyResult> r = f.atom.apply(create);
  REQUIRE(r.ok());
  CHECK(r->outcomes[0].matched);
  CHECK_FALSE(r->outcomes[0].existed);
  CHECK(f.Get("lease") == "me");

  // A failed compare changes nothing and does not stop the ops after it.
  const Op steal[] = {Op::CompareAndSet("lease", std::nullopt, "you"), Op::Set("after", "1"),
                      Op::CompareAndSet("lease", "them", "you")};
  r = f.atom.apply(steal);
  REQUIRE(r.ok());
  CHECK_FALSE(r->outcomes[0].matched);
  CHECK(r->outcomes[0].existed);
  CHECK_FALSE(r->outcomes[2].matched);
  CHECK(f.Get("lease") == "me");
  CHECK(f.Get("after") == "1");
  CHECK(r->version.version() == 2);  // a batch publishes one version, even a failed CAS's

  const Op release[] = {Op::CompareAndSet("lease", "me", std::nullopt)};
  r = f.atom.apply(release);
  REQUIRE(r.ok());
  CHECK(r->outcomes[0].matched);
  CHECK(f.Get("lease") == std::nullopt);

  // Expected "" is a present empty value, not "absent".
  const Op empty[] = {Op::CompareAndSet("lease", "", "x")};
  r = f.atom.apply(empty);
  REQUIRE(r.ok());
  CHECK_FALSE(r->outcomes[0].matched);
  CHECK(f.Get("lease") == std::nullopt);
}

TEST_CASE("ops run in order and the batch is one version", "[apply]") {
  Fixture f(GENERATE(false, true));  // combine_writes off, then on
  const Op ops[] = {Op::Set("k", "1"),  Op::CompareAndSet("k", "1", "2"),  // sees the set before it
                    Op::AddU64("c", 1), Op::AddU64("c", 1),
                    Op::Erase("k"),     Op::CompareAndSet("k", std::nullopt, "3")};
  absl::StatusOr<ApplyResult> r = f.atom.apply(ops);
  REQUIRE(r.ok());
  CHECK(r->outcomes[1].matched);
  CHECK(r->outcomes[2].value == 1);
  CHECK(r->outcomes[3].value == 2);
  CHECK(r->outcomes[4].existed);
  CHECK(r->outcomes[5].matched);
  CHECK(r->version.version() == 1);
  CHECK(f.Version() == 1);
  CHECK(r->version.map().get("k") == "3");
  CHECK(r->version.map().get("c") == U64(2));
}

TEST_CASE("an add on a value that is not 8 bytes publishes nothing of the batch", "[apply]") {
  const bool combine = GENERATE(false, true);
  INFO("combine_writes " << combine);
  Fixture f(combine);
  const Op setup[] = {Op::Set("text", "abc")};
  REQUIRE(f.atom.apply(setup).ok());
  const Op ops[] = {Op::Set("first", "1"), Op::AddU64("c", 1), Op::AddU64("text", 1)};
  absl::StatusOr<ApplyResult> r = f.atom.apply(ops);
  REQUIRE(absl::IsFailedPrecondition(r.status()));
  CHECK_THAT(std::string(r.status().message()), Catch::Contains("'text'"));
  CHECK_THAT(std::string(r.status().message()), Catch::Contains("3 bytes"));
  CHECK_THAT(std::string(r.status().message()), Catch::Contains("atom 'a'"));
  // Uncontended, a combining handle runs the batch alone (combine.h C9): nothing published.
  CHECK(f.Version() == 1);
  CHECK(f.Get("first") == std::nullopt);
  CHECK(f.Get("c") == std::nullopt);
  CHECK(f.Get("text") == "abc");
  CHECK(absl::IsFailedPrecondition(f.atom.add_i64("text", -1).status()));
}

TEST_CASE("batch limits: count, bytes and key sizes are refused before anything", "[apply]") {
  Fixture f(GENERATE(false, true));  // combine_writes off, then on
  std::vector<Op> ops(kMaxOpsPerApply, Op::AddU64("c", 1));
  absl::StatusOr<ApplyResult> r = f.atom.apply(ops);
  REQUIRE(r.ok());
  CHECK(r->outcomes.back().value == kMaxOpsPerApply);
  ops.push_back(Op::AddU64("c", 1));
  r = f.atom.apply(ops);
  CHECK(absl::IsInvalidArgument(r.status()));
  CHECK_THAT(std::string(r.status().message()), Catch::Contains("kMaxOpsPerApply"));

  // Exactly kMaxOpBytes of keys and values is allowed; a byte more is not. An add counts 8.
  const std::string key(100, 'k');
  const std::string fill(kMaxOpBytes - key.size() - 1 - 8, 'v');
  const Op at_limit[] = {Op::Set(key, fill), Op::AddU64("c", 1)};
  CHECK(f.atom.apply(at_limit).ok());
  const std::string over(fill.size() + 1, 'v');
  const Op past_limit[] = {Op::Set(key, over), Op::AddU64("c", 1)};
  r = f.atom.apply(past_limit);
  CHECK(absl::IsInvalidArgument(r.status()));
  CHECK_THAT(std::string(r.status().message()), Catch::Contains("kMaxOpBytes"));
  // A compare-and-set counts its expected value and its desired one.
  const std::string half(kMaxOpBytes / 2, 'h');
  const Op cas[] = {Op::CompareAndSet("x", half, half)};
  CHECK(absl::IsInvalidArgument(f.atom.apply(cas).status()));

  // CheckKeyValue's limits come first, naming the op.
  const std::string huge_key(kMaxKeyBytes + 1, 'k');
  const Op bad_key[] = {Op::AddU64("c", 1), Op::Erase(huge_key)};
  r = f.atom.apply(bad_key);
  CHECK(absl::IsInvalidArgument(r.status()));
  CHECK_THAT(std::string(r.status().message()), Catch::Contains("op 1"));

  CHECK(f.Version() == 2);  // only the two good batches published
  CHECK(f.Get("c") == U64(kMaxOpsPerApply + 1));
}

TEST_CASE("an empty batch publishes nothing; a read-only domain refuses apply", "[apply]") {
  Fixture f(GENERATE(false, true));  // combine_writes off, then on
  REQUIRE(f.atom.add("c", 1).ok());
  absl::StatusOr<ApplyResult> r = f.atom.apply({});
  REQUIRE(r.ok());
  CHECK(r->outcomes.empty());
  CHECK(r->version.version() == 1);
  CHECK(f.Version() == 1);

  Options options = SmallOptions();
  options.read_only = true;
  absl::StatusOr<Domain> reader = Domain::Open(f.dir.File("apply.atomap"), options);
  REQUIRE(reader.ok());
  absl::StatusOr<Atom> atom = reader->atom("a");
  REQUIRE(atom.ok());
  CHECK(absl::IsFailedPrecondition(atom->add("c", 1).status()));
  CHECK(f.Get("c") == U64(1));
}

// Children open the file themselves, after the fork; on failure they exit with 90 and up.
int AddInChild(const std::string& path, int adds, Gate& start, bool combine) {
  absl::StatusOr<Domain> domain = Domain::Open(path, ChildOptions(combine));
  if (!domain.ok()) return 90;
  absl::StatusOr<Atom> atom = domain->atom("counter");
  if (!atom.ok()) return 91;
  start.Wait();
  std::uint64_t last = 0;
  for (int i = 0; i < adds; ++i) {
    absl::StatusOr<std::uint64_t> n = atom->add("hot", 1);
    if (!n.ok()) return 92;
    if (*n <= last) return 93;  // this process's adds are ordered: each sees a larger value
    last = *n;
  }
  return 0;
}

// A counter moved by compare-and-set: read, propose old + 1, and on a lost compare retry from
// the value the returned version holds (no extra load). Returns how many compares failed.
int CasIncrementInChild(const std::string& path, int increments, Gate& start, ReportPipe& out,
                        bool combine) {
  absl::StatusOr<Domain> domain = Domain::Open(path, ChildOptions(combine));
  if (!domain.ok()) return 90;
  absl::StatusOr<Atom> atom = domain->atom("counter");
  if (!atom.ok()) return 91;
  start.Wait();
  absl::StatusOr<Snapshot> now = atom->load();
  if (!now.ok()) return 92;
  std::optional<std::string> seen;
  if (std::optional<std::string_view> v = now->map().get("hot")) seen = std::string(*v);
  std::uint64_t failed = 0;
  for (int done = 0; done < increments;) {
    const std::uint64_t old = seen ? *Codec<std::uint64_t>::Decode(*seen) : 0;
    const std::string next = U64(old + 1);
    const std::optional<std::string_view> expected =
        seen ? std::optional<std::string_view>(*seen) : std::nullopt;
    const Op op = Op::CompareAndSet("hot", expected, next);
    absl::StatusOr<ApplyResult> r = atom->apply(absl::MakeConstSpan(&op, 1));
    if (!r.ok()) return 93;
    if (r->outcomes[0].matched) {
      ++done;
    } else {
      ++failed;
    }
    std::optional<std::string_view> v = r->version.map().get("hot");
    if (!v) return 94;  // after any batch here the counter exists
    seen = std::string(*v);
  }
  out.Send(failed);
  return 0;
}

TEST_CASE("processes x N adds end at exactly the sum", "[apply][processes]") {
  const int adds = 20000 / kScale;
  const bool combine = GENERATE(false, true);
  for (int processes : {2, 4}) {
    DYNAMIC_SECTION(processes << " processes, combine_writes " << combine) {
      TempDir dir;
      const std::string path = dir.File("counter.atomap");
      Gate start;
      std::vector<pid_t> children;
      for (int p = 0; p < processes; ++p) {
        children.push_back(ForkChild([&] { return AddInChild(path, adds, start, combine); }));
      }
      start.Open();
      for (pid_t child : children) CHECK(WaitChild(child) == 0);
      absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(64, 4));
      REQUIRE(domain.ok());
      absl::StatusOr<Snapshot> end = domain->atom("counter")->load();
      REQUIRE(end.ok());
      const auto total = static_cast<std::uint64_t>(processes) * adds;
      CHECK(TypedMap<std::string, std::uint64_t>(end->map()).get("hot") == total);
      // One version per add; combining may share versions between processes' adds.
      if (combine) {
        CHECK(end->version() <= total);
      } else {
        CHECK(end->version() == total);
      }
    }
  }
}

TEST_CASE("a lock-free counter built on compare-and-set loses no increment across processes",
          "[apply][processes]") {
  constexpr int kProcesses = 4;
  const int increments = 5000 / kScale;
  const bool combine = GENERATE(false, true);
  INFO("combine_writes " << combine);
  TempDir dir;
  const std::string path = dir.File("cas.atomap");
  Gate start;
  ReportPipe failures;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    children.push_back(
        ForkChild([&] { return CasIncrementInChild(path, increments, start, failures, combine); }));
  }
  failures.CloseWriteEnd();
  start.Open();
  std::uint64_t failed = 0;
  for (int p = 0; p < kProcesses; ++p) {
    std::optional<std::uint64_t> n = failures.Receive<std::uint64_t>();
    REQUIRE(n.has_value());
    failed += *n;
  }
  for (pid_t child : children) CHECK(WaitChild(child) == 0);
  absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(64, 4));
  REQUIRE(domain.ok());
  absl::StatusOr<Snapshot> end = domain->atom("counter")->load();
  REQUIRE(end.ok());
  const std::uint64_t total = std::uint64_t{kProcesses} * increments;
  CHECK(TypedMap<std::string, std::uint64_t>(end->map()).get("hot") == total);
  INFO(failed << " compares lost");
  // Every batch publishes a version, a failed compare's too: the count of versions is exact
  // (combining: at most that, batches may share versions).
  if (combine) {
    CHECK(end->version() <= total + failed);
  } else {
    CHECK(end->version() == total + failed);
  }
}

// What an adder tells the parent after each add returned: who, and the value it got.
struct AddReport {
  std::uint32_t child;
  std::uint64_t value;
};

// Adds until killed, reporting each add after it returned.
int AddUntilKilled(const std::string& path, std::uint32_t child, ReportPipe& out, bool combine) {
  absl::StatusOr<Domain> domain = Domain::Open(path, ChildOptions(combine));
  if (!domain.ok()) return 90;
  absl::StatusOr<Atom> atom = domain->atom("counter");
  if (!atom.ok()) return 91;
  for (;;) {
    absl::StatusOr<std::uint64_t> n = atom->add("hot", 1);
    if (!n.ok()) return 92;
    out.Send(AddReport{child, *n});
  }
}

TEST_CASE("adders killed at arbitrary points: no add lost or applied twice, nothing leaked",
          "[apply][processes][crash]") {
  constexpr std::uint32_t kChildren = 2;
  const int reports_before_kill = 2000 / kScale;
  const bool combine = GENERATE(false, true);
  INFO("combine_writes " << combine);
  TempDir dir;
  const std::string path = dir.File("killed.atomap");
  std::uint64_t reported = 0;  // adds known to have returned, over all rounds
  std::uint64_t in_flight = 0;  // at most one per killed child: applied or not, unknown
  absl::flat_hash_set<std::uint64_t> values;  // an add applied twice would repeat a value
  for (int round = 0; round < 3; ++round) {
    ReportPipe reports;
    std::vector<pid_t> children;
    for (std::uint32_t c = 0; c < kChildren; ++c) {
      children.push_back(ForkChild([&, c] { return AddUntilKilled(path, c, reports, combine); }));
    }
    reports.CloseWriteEnd();
    std::vector<int> per_child(kChildren, 0);
    auto take = [&](const AddReport& r) {
      CHECK(values.insert(r.value).second);
      ++per_child[r.child];
      ++reported;
    };
    while (per_child[0] < reports_before_kill || per_child[1] < reports_before_kill) {
      std::optional<AddReport> r = reports.Receive<AddReport>();
      REQUIRE(r.has_value());  // the children run until killed
      take(*r);
    }
    for (pid_t child : children) kill(child, SIGKILL);
    for (pid_t child : children) CHECK(WaitChild(child) == 128 + SIGKILL);
    while (std::optional<AddReport> r = reports.Receive<AddReport>()) take(*r);
    in_flight += kChildren;

    // Alone now: opening takes the dead slots over and sweeps; nothing may be leaked.
    absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(64, 4));
    REQUIRE(domain.ok());
    absl::StatusOr<CheckReport> check = domain->check();
    REQUIRE(check.ok());
    CHECK(check->ok());
    CHECK(check->leaked_bytes == 0);
    absl::StatusOr<Snapshot> end = domain->atom("counter")->load();
    REQUIRE(end.ok());
    const std::uint64_t count =
        TypedMap<std::string, std::uint64_t>(end->map()).get("hot").value_or(0);
    INFO("round " << round << ": counter " << count << ", " << reported << " adds reported");
    CHECK(count >= reported);
    CHECK(count <= reported + in_flight);
    // One version per applied add, none for a lost one (combining: adds may share versions).
    if (combine) {
      CHECK(end->version() <= count);
    } else {
      CHECK(end->version() == count);
    }
  }
}

}  // namespace
}  // namespace atomap

// check of a live domain (issue 11, case 5): while other processes (and another handle of this
// process) churn multi-key swaps, Domain::check and `atomap check` never report damage that is
// not there: each atom's pinned version is checked, space accounting is skipped and says so, and
// the exit code is 0. Once the writers are gone, the check is full again. Repair and read-only
// checks refuse a live domain with a clear message; --wait gets the domain once it is idle.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "atomap/check.h"
#include "atomap/domain.h"
#include "domain/domain_impl.h"
#include "hamt/node.h"
#include "recovery/checker.h"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

#ifndef ATOMAP_TOOL_PATH
#error "ATOMAP_TOOL_PATH must name the atomap binary (tests/CMakeLists.txt)"
#endif

namespace atomap {
namespace {

Options LiveOptions() { return SmallOptions(16, 16, DomainKind::kFile, std::uint64_t{256} << 20); }

constexpr int kGroups = 64;         // key groups per writer; half of them are present at a time
constexpr int kKeysPerGroup = 16;

std::string Key(int writer, int group, int k) {
  return absl::StrCat("w", writer, "-", group, "-", k);
}

// Churns swaps on atoms "a" and "b" until atom "stop" holds "stop": each swap inserts one group
// of keys and erases another, so paths are copied, retired, freed and reused all the time.
// Sends `writer` on `started` after its first swap. Its handle is closed before it returns.
int ChurnUntilStopped(const std::string& path, int writer, ReportPipe& started) {
  absl::StatusOr<Domain> domain = Domain::Open(path, LiveOptions());
  if (!domain.ok()) return 1;
  {
    Atom atoms[2] = {*domain->atom("a"), *domain->atom("b")};
    Atom stop = *domain->atom("stop");
    for (std::uint64_t round = 0;; ++round) {
      const int add = static_cast<int>(round % kGroups);
      const int drop = static_cast<int>((round + kGroups / 2) % kGroups);
      absl::StatusOr<Snapshot> swapped =
          atoms[round % 2].swap([&](Transaction& tx) -> absl::Status {
            for (int k = 0; k < kKeysPerGroup; ++k) {
              if (absl::Status s = tx.set(Key(writer, add, k), std::string(8 + k * 5, 'v'));
                  !s.ok())
                return s;
              if (absl::StatusOr<bool> e = tx.erase(Key(writer, drop, k)); !e.ok())
                return e.status();
            }
            return absl::OkStatus();
          });
      if (!swapped.ok()) return 2;
      if (round == 0) started.Send(writer);
      absl::StatusOr<Snapshot> flag = stop.load();
      if (!flag.ok()) return 3;
      if (flag->map().contains("stop")) break;
    }
  }
  domain = absl::CancelledError();  // detach before _exit
  return 0;
}

using ToolRun = ProgramRun;

// Runs the atomap binary with `args`; its stdout is captured, its stderr discarded.
ToolRun RunTool(const std::vector<std::string>& args) {
  return RunCapturingStdout(ATOMAP_TOOL_PATH, args, /*discard_stderr=*/true);
}

std::string Joined(const CheckReport& r) {
  std::string out;
  for (const std::string& p : r.problems) out += p + "\n";
  return out;
}

// Two writer processes and a thread writing through a handle of its own (under TSan, the
// checker's reads of what the thread writes are seen), all running ChurnUntilStopped. Started
// when constructed: each has published a swap. Stopped (also when a failed REQUIRE unwinds the
// test) by setting the stop atom through a handle of its own.
class Churners {
 public:
  static constexpr int kProcesses = 2;

  explicit Churners(const std::string& path) : path_(path) {
    for (int w = 0; w < kProcesses; ++w) {
      pids_.push_back(ForkChild([this, w] { return ChurnUntilStopped(path_, w, started_); }));
    }
    thread_ =
        std::thread([this] { thread_status_ = ChurnUntilStopped(path_, kProcesses, started_); });
    for (int i = 0; i <= kProcesses; ++i) ready_ = started_.Receive<int>().has_value() && ready_;
  }
  ~Churners() { (void)Stop(); }
  bool ready() const { return ready_; }

  // True if every writer ran until told to stop.
  bool Stop() {
    if (stopped_) return all_ok_;
    stopped_ = true;
    {
      absl::StatusOr<Domain> domain = Domain::Open(path_, LiveOptions());
      all_ok_ =
          domain.ok() &&
          (*domain->atom("stop")).swap([](Transaction& tx) { return tx.set("stop", "1"); }).ok();
    }
    for (pid_t pid : pids_) all_ok_ = WaitChild(pid) == 0 && all_ok_;
    thread_.join();
    return all_ok_ && thread_status_ == 0;
  }

 private:
  std::string path_;
  ReportPipe started_;
  std::vector<pid_t> pids_;
  std::thread thread_;
  int thread_status_ = -1;
  bool ready_ = true;
  bool stopped_ = false;
  bool all_ok_ = false;
};

TEST_CASE("check of a domain others are writing reports no damage, skips space accounting, and "
          "is full once they are gone",
          "[check][live]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  std::optional<Domain> domain = *Domain::Open(path, LiveOptions());
  std::optional<Atom> atom_a = *domain->atom("a");
  Atom& a = *atom_a;
  REQUIRE(a.swap([](Transaction& tx) { return tx.set("seed", "1"); }).ok());
  (void)*domain->atom("b");
  (void)*domain->atom("stop");

  Churners churners(path);
  REQUIRE(churners.ready());
  // Between pinning "a" and walking it, each check waits until the writers have published
  // kMoveOn more versions of "a": the pinned version's path has long been retired, and without
  // the pin it would have been freed and reused by then.
  constexpr std::uint64_t kMoveOn = 256;
  const std::uint32_t index_a = *internal::Access(*domain).atoms().Find("a");
  int hook_calls = 0;
  bool hook_failed = false;
  internal::SetLiveCheckHook([&](std::uint32_t atom) {
    if (atom != index_a) return;
    ++hook_calls;
    absl::StatusOr<std::uint64_t> now = a.version();
    for (const std::uint64_t target = now.ok() ? *now + kMoveOn : 0; now.ok() && *now < target;) {
      absl::StatusOr<Snapshot> next = a.wait_for_change(*now, absl::Seconds(60));
      now = next.ok() ? absl::StatusOr<std::uint64_t>(next->version()) : next.status();
    }
    hook_failed |= !now.ok();
  });
  struct Unhook {
    ~Unhook() { internal::SetLiveCheckHook(nullptr); }
  } unhook;

  constexpr int kChecks = 50;
  int unclean = 0;
  std::uint64_t seen = *a.version();
  for (int i = 0; i < kChecks; ++i) {
    // Each check starts after a new swap of "a" was published: the writers are at work.
    {
      absl::StatusOr<Snapshot> changed = a.wait_for_change(seen, absl::Seconds(60));
      INFO(changed.status());
      REQUIRE(changed.ok());
      seen = changed->version();
    }  // no snapshot of this thread is held during the check
    absl::StatusOr<CheckReport> report = domain->check();
    REQUIRE(report.ok());
    INFO("check " << i << ":\n" << Joined(*report));
    if (!report->ok()) ++unclean;
    CHECK(report->problems.empty());
    CHECK_FALSE(report->space_checked);
    CHECK(report->atoms_checked == 3);
    CHECK(report->others_attached >= 1);
    CHECK_THAT(report->skipped, Catch::Contains("space accounting skipped"));
    CHECK(report->leaked_bytes == 0);  // not a figure at all while others write
  }
  CHECK(unclean == 0);
  CHECK(hook_calls == kChecks);
  CHECK_FALSE(hook_failed);
  internal::SetLiveCheckHook(nullptr);

  // The command line says the same, with exit code 0.
  constexpr int kToolChecks = 10;
  for (int i = 0; i < kToolChecks; ++i) {
    const ToolRun run = RunTool({"check", path, "--json"});
    INFO("atomap check --json: " << run.out);
    CHECK(run.status == 0);
    const nlohmann::json line = nlohmann::json::parse(run.out, nullptr, /*allow_exceptions=*/false);
    REQUIRE_FALSE(line.is_discarded());
    CHECK(line["ok"] == true);
    CHECK(line["problems"].empty());
    CHECK(line["space_checked"] == false);
    CHECK(line["atoms_checked"] == 3);
    CHECK_THAT(line["skipped"].get<std::string>(), Catch::Contains("space accounting skipped"));
  }
  const ToolRun text = RunTool({"check", path});
  INFO("atomap check: " << text.out);
  CHECK(text.status == 0);
  CHECK_THAT(text.out, Catch::Contains("space accounting skipped"));
  CHECK_THAT(text.out, Catch::Contains(": clean; 3 atoms checked under a pin"));

  CHECK(churners.Stop());

  // Alone now: the full check, space accounting included.
  absl::StatusOr<CheckReport> full = domain->check();
  REQUIRE(full.ok());
  INFO(Joined(*full));
  CHECK(full->ok());
  CHECK(full->space_checked);
  CHECK(full->skipped.empty());
  CHECK(full->leaked_bytes == 0);
  CHECK(full->reachable_bytes > 0);
  CHECK(full->reachable_bytes + full->free_bytes + full->pending_bytes + full->unused_bytes +
            full->in_flight_bytes ==
        domain->stats().data_bytes);

  atom_a.reset();
  domain.reset();
  const ToolRun alone = RunTool({"check", path, "--json"});
  INFO("atomap check --json, alone: " << alone.out);
  CHECK(alone.status == 0);
  const nlohmann::json line = nlohmann::json::parse(alone.out, nullptr, false);
  REQUIRE_FALSE(line.is_discarded());
  CHECK(line["ok"] == true);
  CHECK(line["space_checked"] == true);
  CHECK(line["leaked_bytes"] == 0);
}

// A child attached to `path` until the returned gate is opened; ready once its open returned.
struct IdleHolder {
  pid_t pid = -1;
};
IdleHolder HoldOpen(const std::string& path, Gate& release) {
  ReportPipe ready;
  IdleHolder h;
  h.pid = ForkChild([&] {
    absl::StatusOr<Domain> d = Domain::Open(path, LiveOptions());
    if (!d.ok()) return 1;
    const int one = 1;
    ready.Send(one);
    release.Wait();
    d = absl::CancelledError();
    return 0;
  });
  REQUIRE(ready.Receive<int>().has_value());
  return h;
}

TEST_CASE("a live check still finds real damage in the pinned version", "[check][live]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  Domain domain = *Domain::Open(path, LiveOptions());
  Atom victim = *domain.atom("victim");
  for (int i = 0; i < 50; ++i) {
    REQUIRE(victim.swap([&](Transaction& tx) { return tx.set(absl::StrCat("k", i), "v"); }).ok());
  }
  Gate release;
  const IdleHolder holder = HoldOpen(path, release);
  internal::DomainImpl& impl = internal::Access(domain);
  auto* record = impl.arena().At<internal::hamt::VersionRecord>(impl.atoms().Root(0).LoadAcquire());
  record->entry_count += 1;  // the record no longer matches its trie
  absl::StatusOr<CheckReport> report = domain.check();
  REQUIRE(report.ok());
  CHECK_FALSE(report->space_checked);
  REQUIRE(report->problems.size() == 1);
  CHECK_THAT(report->problems[0], Catch::Contains("atom 0 'victim'"));
  CHECK_THAT(report->problems[0], Catch::Contains("says 51 entries, the trie holds 50"));
  record->entry_count -= 1;
  release.Open();
  CHECK(WaitChild(holder.pid) == 0);
}

TEST_CASE("a live check reports a damaged root word as a problem, not as an error",
          "[check][live]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  Options options = LiveOptions();
  options.verify_reads = true;  // as the tool opens: pinning a wild root is DataLoss
  Domain domain = *Domain::Open(path, options);
  REQUIRE((*domain.atom("good")).swap([](Transaction& tx) { return tx.set("k", "v"); }).ok());
  REQUIRE((*domain.atom("victim")).swap([](Transaction& tx) { return tx.set("k", "v"); }).ok());
  Gate release;
  const IdleHolder holder = HoldOpen(path, release);
  internal::SharedU64& root = internal::Access(domain).atoms().Root(1);
  const std::uint64_t saved = root.LoadAcquire();
  root.StoreRelease(saved + 8);  // misaligned: names no version record
  absl::StatusOr<CheckReport> report = domain.check();
  root.StoreRelease(saved);
  REQUIRE(report.ok());
  CHECK_FALSE(report->space_checked);
  CHECK(report->atoms_checked == 2);
  REQUIRE(report->problems.size() == 1);
  CHECK_THAT(report->problems[0], Catch::Contains("'victim'"));
  CHECK_THAT(report->problems[0], Catch::Contains("d.atomap"));
  release.Open();
  CHECK(WaitChild(holder.pid) == 0);
}

TEST_CASE("repair refuses a live domain, a registered read-only check pins each version; waiting "
          "gets the domain once it is idle",
          "[check][live]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  std::optional<Domain> domain = *Domain::Open(path, LiveOptions());
  REQUIRE((*domain->atom("a")).swap([](Transaction& tx) { return tx.set("k", "v"); }).ok());

  SECTION("repair") {
    Gate release;
    const IdleHolder holder = HoldOpen(path, release);
    absl::StatusOr<CheckReport> refused = domain->check({.repair = true});
    CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);
    CHECK_THAT(std::string(refused.status().message()), Catch::Contains("d.atomap"));
    CHECK_THAT(std::string(refused.status().message()),
               Catch::Contains("repair needs the domain to itself"));
    const ToolRun tool = RunTool({"check", path, "--repair"});
    CHECK(tool.status == 3);
    release.Open();  // the holder leaves while this check waits for it
    absl::StatusOr<CheckReport> repaired =
        domain->check({.repair = true, .wait_for_exclusive = absl::Seconds(120)});
    REQUIRE(repaired.ok());
    CHECK(repaired->ok());
    CHECK(repaired->space_checked);
    CHECK(WaitChild(holder.pid) == 0);
  }
  SECTION("read-only") {
    domain.reset();
    Gate release;
    const IdleHolder holder = HoldOpen(path, release);
    Options read_only = LiveOptions();
    read_only.read_only = true;
    Domain reader = *Domain::Open(path, read_only);
    REQUIRE(internal::Access(reader).readers() != nullptr);  // a registered reader
    // It can pin now (a reader slot), so with a writer live it checks each atom's version
    // under its pin, as a writable handle does (C5), where it used to refuse.
    absl::StatusOr<CheckReport> pinned = reader.check();
    REQUIRE(pinned.ok());
    CHECK(pinned->ok());
    CHECK_FALSE(pinned->space_checked);
    CHECK(pinned->atoms_checked == 1);
    const ToolRun tool = RunTool({"check", path, "--read-only"});
    CHECK(tool.status == 0);
    release.Open();
    absl::StatusOr<CheckReport> waited = reader.check({.wait_for_exclusive = absl::Seconds(120)});
    REQUIRE(waited.ok());
    CHECK(waited->ok());
    CHECK(waited->space_checked);
    CHECK(WaitChild(holder.pid) == 0);
  }
  SECTION("atomap check --wait") {
    domain.reset();
    Gate release;
    const IdleHolder holder = HoldOpen(path, release);
    release.Open();
    const ToolRun run = RunTool({"check", path, "--wait", "120", "--json"});
    INFO(run.out);
    CHECK(run.status == 0);
    const nlohmann::json line = nlohmann::json::parse(run.out, nullptr, false);
    REQUIRE_FALSE(line.is_discarded());
    CHECK(line["space_checked"] == true);
    CHECK(WaitChild(holder.pid) == 0);
  }
}

}  // namespace
}  // namespace atomap

// A change is never missed by a waiter (docs/reliability.md, "A change is never missed by a
// waiter"; the protocol is src/file/change_notification.h):
//  - a writer killed after its root CAS won and before it notified: a waiter in another process
//    wakes within a second and sees the new version, with no survivor's help; the survivor that
//    later takes the dead slot over notifies for the dead writer. Once at the real crash points
//    (builds with ATOMAP_CRASH_POINTS; elsewhere it warns and passes), once with the dead
//    writer's state made by hand (every build);
//  - waiters killed (SIGKILL) while they wait leave nothing raised: one publication clears what
//    they registered, and the next ones make no futex wake call;
//  - a waiter on a read-only handle, which cannot register, sleeps and times out like any
//    other (it used to write the count into its read-only mapping) and still sees every change.
// Processes synchronise on pipes and on the file's words (a waiter's registration), never on
// sleeps; the one clock is the deadline that a waiter must beat.
#include <poll.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "atom/participant.h"
#include "atom/runtime.h"
#include "atomap/atom.h"
#include "atomap/domain.h"
#include "common/crash_point.h"
#include "common/futex.h"
#include "domain/domain_impl.h"
#include "hamt/access.h"
#include "hamt/node.h"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

// The atom's words in the file (docs/format.md, "Atom table").
struct Words {
  std::uint32_t legacy_waiters;
  std::uint32_t waiting_for;
  std::uint32_t change_counter;
};
Words Read(Domain& domain, std::uint32_t atom) {
  internal::AtomTable& atoms = internal::Access(domain).atoms();
  return {atoms.Waiters(atom).LoadSeqCst(), atoms.WaitingFor(atom).LoadSeqCst(),
          atoms.ChangeCounter(atom).LoadSeqCst()};
}

std::uint32_t IndexOf(Domain& domain, const char* name) {
  absl::StatusOr<std::uint32_t> index = internal::Access(domain).atoms().Find(name);
  REQUIRE(index.ok());
  return *index;
}

// Polls the file until a waiter has registered for the atom (at most 20 s, then false). The
// registration is the waiter's last write before it sleeps. (The legacy count too: so that the
// same test, built against the code before the change, fails where it should and not here.)
bool AwaitRegistration(Domain& domain, std::uint32_t atom) {
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  for (Words w = Read(domain, atom); w.waiting_for == 0 && w.legacy_waiters == 0;
       w = Read(domain, atom)) {
    if (absl::Now() > deadline) return false;
    const struct timespec pause = {0, 1000000};  // polling a word, not synchronising by time
    nanosleep(&pause, nullptr);
  }
  return true;
}

// The next record of `pipe` if one arrives within `limit`.
std::optional<std::uint64_t> ReceiveWithin(int fd, absl::Duration limit) {
  struct pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(limit))) != 1) return std::nullopt;
  std::uint64_t v = 0;
  if (read(fd, &v, sizeof v) != static_cast<ssize_t>(sizeof v)) return std::nullopt;
  return v;
}

// A raw pipe: the parent polls its read end with a deadline (ReportPipe blocks).
struct Pipe {
  int fds[2] = {-1, -1};
  Pipe() { REQUIRE(pipe(fds) == 0); }
  ~Pipe() {
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
  }
  void Send(std::uint64_t v) { (void)!write(fds[1], &v, sizeof v); }
};

absl::Status SetGeneration(Atom& atom, int generation) {
  return atom.swap([&](Transaction& tx) { return tx.set("gen", std::to_string(generation)); })
      .status();
}

// A domain in a fresh directory, its atom "config" at version 1; this process keeps it open.
struct ConfigDomain {
  explicit ConfigDomain(std::uint32_t slots)
      : path(dir.File("wake.atomap")), options(SmallOptions(slots, 8)) {
    absl::StatusOr<Domain> opened = Domain::Open(path, options);
    REQUIRE(opened.ok());
    domain.emplace(*std::move(opened));
    atom.emplace(*domain->atom("config"));
    REQUIRE(SetGeneration(*atom, 1).ok());
    index = IndexOf(*domain, "config");
  }
  Words Now() { return Read(*domain, index); }

  TempDir dir;
  const std::string path;
  const Options options;
  std::optional<Domain> domain;
  std::optional<Atom> atom;
  std::uint32_t index = 0;
};

// A waiter child: opens, waits for a change from `seen` (60 s at most), sends the version it
// got (0 on error or timeout), then stays attached until `release` opens (or it is killed).
int WaiterMain(const std::string& path, const Options& options, std::uint64_t seen, Pipe& woke,
               Gate* release) {
  absl::StatusOr<Domain> domain = Domain::Open(path, options);
  if (!domain.ok()) return 10;
  absl::StatusOr<Atom> atom = domain->atom("config");
  if (!atom.ok()) return 11;
  absl::StatusOr<Snapshot> now = atom->wait_for_change(seen, absl::Seconds(60));
  woke.Send(now.ok() ? now->version() : 0);
  if (release != nullptr) release->Wait();
  return now.ok() ? 0 : 12;
}

// What the survivor's takeover must show, and the waiter's deadline.
// One second is the promise (a 200 ms slice, then a read of the root); a sanitizer build on a
// loaded two-core machine gets more room for scheduling, not for the protocol.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr absl::Duration kWakeLimit = absl::Seconds(3);
#else
constexpr absl::Duration kWakeLimit = absl::Seconds(1);
#endif

// The common scenario: P (this process) holds version 1 of "config"; a waiter W in another
// process sleeps on it; `kill_writer` makes a writer process die after its root CAS won and
// before it notified (version 2). W must report version 2 within kWakeLimit, with no survivor
// having run. Then a survivor S opens: with the domain's three slots held by P, W and the dead
// writer, its claim must take the dead slot over, and its recovery notifies for the writer.
void ExpectWakeAfterDeadWriter(const std::function<int(const std::string& path)>& kill_writer) {
  ConfigDomain d(3);
  const std::string& path = d.path;
  const Options& options = d.options;

  Pipe woke;
  Gate release;
  const pid_t waiter = ForkChild([&] { return WaiterMain(path, options, 1, woke, &release); });
  REQUIRE(AwaitRegistration(*d.domain, d.index));

  const std::uint32_t counter_before = d.Now().change_counter;
  const pid_t writer = ForkChild([&] { return kill_writer(path); });
  REQUIRE(WaitChild(writer) == 128 + SIGKILL);
  // Published, and nobody has notified it.
  CHECK(*d.atom->version() == 2);
  CHECK(d.Now().change_counter == counter_before);

  const absl::Time died = absl::Now();
  const std::optional<std::uint64_t> seen = ReceiveWithin(woke.fds[0], kWakeLimit);
  CHECK(seen.has_value());
  if (seen) CHECK(*seen == 2);
  if (!seen) kill(waiter, SIGKILL);  // asleep through the change: do not wait out its timeout
  INFO("the waiter woke " << absl::FormatDuration(absl::Now() - died) << " after the death");

  // The survivor's takeover notifies for the dead writer (its open ends with the recovery).
  Pipe opened;
  Gate survivor_release;
  const pid_t survivor = ForkChild([&] {
    absl::StatusOr<Domain> child = Domain::Open(path, options);
    opened.Send(child.ok() ? 1 : 0);
    survivor_release.Wait();
    return child.ok() ? 0 : 1;
  });
  const std::optional<std::uint64_t> survivor_opened =
      ReceiveWithin(opened.fds[0], absl::Seconds(30));
  CHECK(survivor_opened == std::optional<std::uint64_t>(1));
  CHECK(d.Now().change_counter == counter_before + 1);
  CHECK(*d.atom->version() == 2);

  survivor_release.Open();
  release.Open();
  CHECK(WaitChild(survivor) == 0);
  CHECK(WaitChild(waiter) == (seen ? 0 : 128 + SIGKILL));
}

TEST_CASE("a writer killed at a crash point after its root CAS: a waiter wakes within a second",
          "[wake][crash]") {
  if (!internal::CrashPointsCompiledIn()) {
    WARN("crash points are not compiled in (build the debug, asan or tsan preset); skipped");
    return;
  }
  for (const internal::CrashSite site :
       {internal::CrashSite::kPublishAfterCas, internal::CrashSite::kPublishAfterRetire}) {
    DYNAMIC_SECTION(internal::CrashSiteName(site)) {
      ExpectWakeAfterDeadWriter([site](const std::string& path) {
        absl::StatusOr<Domain> d = Domain::Open(path, SmallOptions(3, 8));
        if (!d.ok()) return 20;
        absl::StatusOr<Atom> a = d->atom("config");
        if (!a.ok()) return 21;
        internal::ArmCrashPoint(site, 1);
        (void)SetGeneration(*a, 2);
        return 22;  // not killed: the site was not reached
      });
    }
  }
}

// The state a writer leaves when it is killed right after its root CAS, made with the
// participant's own steps of a publication (atom/atom.cc Publish) up to the CAS: its lane holds
// the commit, its intent names the version, the base is marked observed, the root is the new
// version; then SIGKILL. No crash point needed, so this runs in every build.
int ForgeDeadWriter(const std::string& path) {
  absl::StatusOr<Domain> d = Domain::Open(path, SmallOptions(3, 8));
  if (!d.ok()) return 30;
  if (!d->atom("config").ok()) return 31;
  internal::DomainImpl& impl = internal::Access(*d);
  absl::StatusOr<std::uint32_t> index = impl.atoms().Find("config");
  if (!index.ok()) return 32;
  internal::Runtime runtime(impl);
  absl::StatusOr<internal::Participant*> p = runtime.ThisThread();
  if (!p.ok()) return 33;
  internal::Participant& writer = **p;
  internal::PinGuard base_pin(writer);
  internal::SharedU64& root = impl.atoms().Root(*index);
  internal::Offset base = root.LoadAcquire();
  Transaction tx =
      internal::TransactionAccess::Make(writer.context(), base, writer.HoldForTransaction());
  if (!tx.set("gen", "2").ok()) return 34;
  absl::StatusOr<internal::hamt::CommitResult> commit =
      internal::TransactionAccess::Impl(tx).Commit();
  if (!commit.ok() || commit->ledger == nullptr) return 35;
  if (!writer.PrepareRetire(commit->replaced.size()).ok()) return 36;
  internal::PinGuard published_pin(writer);
  writer.AnnounceIntent(*index, *commit);
  impl.arena().At<internal::hamt::VersionRecord>(base)->observed.StoreRelaxed(1);
  if (!root.CasSeqCst(base, commit->version)) {
    return 37;
  }
  raise(SIGKILL);
  return 38;
}

TEST_CASE("a writer killed after its root CAS (its state made by hand): a waiter wakes within a "
          "second",
          "[wake]") {
  ExpectWakeAfterDeadWriter(ForgeDeadWriter);
}

TEST_CASE("waiters killed while they wait leave no wake behind", "[wake]") {
  constexpr int kWaiters = 3;
  ConfigDomain d(8);
  const std::string& path = d.path;
  const Options& options = d.options;

  // Each waiter says it is about to wait; then the parent waits for a registration in the file.
  ReportPipe about_to_wait;
  Pipe woke;  // never written: the waiters die asleep
  std::vector<pid_t> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    waiters.push_back(ForkChild([&] {
      absl::StatusOr<Domain> child = Domain::Open(path, options);
      if (!child.ok()) return 10;
      absl::StatusOr<Atom> a = child->atom("config");
      if (!a.ok()) return 11;
      about_to_wait.Send(std::uint64_t{1});
      absl::StatusOr<Snapshot> now = a->wait_for_change(1, absl::Seconds(60));
      woke.Send(now.ok() ? now->version() : 0);
      return 12;
    }));
  }
  about_to_wait.CloseWriteEnd();
  for (int i = 0; i < kWaiters; ++i) REQUIRE(about_to_wait.Receive<std::uint64_t>().has_value());
  REQUIRE(AwaitRegistration(*d.domain, d.index));
  for (const pid_t w : waiters) {
    kill(w, SIGKILL);
    CHECK(WaitChild(w) == 128 + SIGKILL);
  }

  // Nothing of theirs is a count that stays raised: the first publication after them clears
  // what they registered ...
  CHECK(d.Now().legacy_waiters == 0);
  REQUIRE(SetGeneration(*d.atom, 2).ok());
  CHECK(d.Now().waiting_for == 0);
  CHECK(d.Now().legacy_waiters == 0);
  // ... and the next ones make no futex wake call.
  const std::uint64_t wakes = internal::WakeCallsInThisProcess();
  for (int g = 3; g < 13; ++g) REQUIRE(SetGeneration(*d.atom, g).ok());
  CHECK(internal::WakeCallsInThisProcess() == wakes);

  // A live waiter still gets every change after them.
  const pid_t live = ForkChild([&] { return WaiterMain(path, options, 12, woke, nullptr); });
  REQUIRE(AwaitRegistration(*d.domain, d.index));
  REQUIRE(SetGeneration(*d.atom, 13).ok());
  const std::optional<std::uint64_t> seen = ReceiveWithin(woke.fds[0], absl::Seconds(30));
  CHECK(seen == std::optional<std::uint64_t>(13));
  CHECK(WaitChild(live) == 0);
}

TEST_CASE("a waiter on a read-only handle sleeps, times out and sees every change", "[wake]") {
  ConfigDomain d(8);
  const std::string& path = d.path;
  Options read_only = d.options;
  read_only.read_only = true;
  ReportPipe ready;
  Pipe woke;
  const pid_t waiter = ForkChild([&] {
    absl::StatusOr<Domain> child = Domain::Open(path, read_only);
    if (!child.ok()) return 10;
    absl::StatusOr<Atom> a = child->atom("config");
    if (!a.ok()) return 11;
    std::uint64_t version = 1;
    // A real sleep first (two slices and more): it registers nothing and writes nothing, on a
    // mapping it cannot write.
    if (a->wait_for_change(version, absl::Milliseconds(450)).status().code() !=
        absl::StatusCode::kDeadlineExceeded) {
      return 13;
    }
    ready.Send(version);
    while (version < 5) {
      absl::StatusOr<Snapshot> now = a->wait_for_change(version, absl::Seconds(60));
      if (!now.ok()) return 12;
      version = now->version();
      woke.Send(version);
    }
    return 0;
  });
  ready.CloseWriteEnd();
  REQUIRE(ready.Receive<std::uint64_t>().has_value());
  for (int g = 2; g <= 5; ++g) {
    REQUIRE(SetGeneration(*d.atom, g).ok());
    // Lockstep: the waiter reports this very version before the next change (it registers
    // nothing, so its slice, not a wake, may be what brings it back).
    const std::optional<std::uint64_t> seen = ReceiveWithin(woke.fds[0], absl::Seconds(30));
    REQUIRE(seen.has_value());
    CHECK(*seen == static_cast<std::uint64_t>(g));
  }
  CHECK(WaitChild(waiter) == 0);
}

}  // namespace
}  // namespace atomap

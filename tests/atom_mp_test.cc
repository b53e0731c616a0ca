// Atoms across real processes: every child forks, opens the same file and works on it;
// synchronisation is on pipes (Gate, ReportPipe) and the file's own state, never on sleeps.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "atomap/atom.h"
#include "atomap/domain.h"
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

using Counters = TypedTransaction<std::string, std::uint64_t>;
using CounterMap = TypedMap<std::string, std::uint64_t>;

absl::Status Increment(Transaction& tx, const std::string& key) {
  Counters counters(tx);
  return counters.set(key, counters.get(key).value_or(0) + 1);
}

// Opens the domain in a child; on failure the child exits with a distinctive code.
#define CHILD_OPEN(var, path)                                            \
  absl::StatusOr<Domain> var = Domain::Open(path, SmallOptions(64, 64)); \
  if (!var.ok()) return 90

TEST_CASE("P processes x N increments end at exactly P x N", "[atom][processes]") {
  const int increments = 20000 / kScale;
  for (int processes : {2, 4, 8, 16}) {
    DYNAMIC_SECTION(processes << " processes") {
      TempDir dir;
      const std::string path = dir.File("counters.atomap");
      Gate start;
      std::vector<pid_t> children;
      for (int p = 0; p < processes; ++p) {
        children.push_back(ForkChild([&, p] {
          CHILD_OPEN(domain, path);
          absl::StatusOr<Atom> atom = domain->atom("counters");
          if (!atom.ok()) return 91;
          const std::string mine = absl::StrCat("process-", p);
          start.Wait();
          for (int i = 0; i < increments; ++i) {
            absl::StatusOr<Snapshot> s = atom->swap([&](Transaction& tx) {
              absl::Status status = Increment(tx, "hot");
              status.Update(Increment(tx, mine));
              return status;
            });
            if (!s.ok()) return 92;
          }
          return 0;
        }));
      }
      start.Open();
      for (pid_t child : children) CHECK(WaitChild(child) == 0);

      absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(64, 64));
      REQUIRE(domain.ok());
      absl::StatusOr<Snapshot> end = domain->atom("counters")->load();
      REQUIRE(end.ok());
      CounterMap counters(end->map());
      CHECK(counters.get("hot") == static_cast<std::uint64_t>(processes * increments));
      CHECK(end->version() == static_cast<std::uint64_t>(processes * increments));
      for (int p = 0; p < processes; ++p) {
        CHECK(counters.get(absl::StrCat("process-", p)) == static_cast<std::uint64_t>(increments));
      }
    }
  }
}

// An account's value: its balance and a check word derived from it and the key, so that a torn
// or freed-and-reused value is detected.
struct Account {
  std::int64_t balance;
  std::uint64_t check;
};
std::uint64_t CheckWord(std::int64_t balance, int key) {
  return static_cast<std::uint64_t>(balance) * 0x9E3779B97F4A7C15ULL ^
         static_cast<std::uint64_t>(key);
}
using Accounts = TypedTransaction<std::uint32_t, Account>;
using AccountMap = TypedMap<std::uint32_t, Account>;

TEST_CASE("readers in other processes see every snapshot whole while writers move money",
          "[atom][processes][isolation]") {
  constexpr int kAccounts = 32;
  constexpr std::int64_t kInitial = 1000;
  constexpr int kWriters = 2;
  constexpr int kReaders = 2;
  const int transfers = 10000 / kScale;
  TempDir dir;
  const std::string path = dir.File("bank.atomap");
  {
    absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(64, 64));
    REQUIRE(domain.ok());
    REQUIRE(domain->atom("bank")
                ->swap([&](Transaction& tx) {
                  Accounts accounts(tx);
                  for (int k = 0; k < kAccounts; ++k) {
                    if (absl::Status s = accounts.set(k, Account{kInitial, CheckWord(kInitial, k)});
                        !s.ok())
                      return s;
                  }
                  return absl::OkStatus();
                })
                .ok());
  }
  struct ReaderReport {
    std::uint64_t snapshots;
    std::uint64_t bad;
  };
  Gate start;
  ReportPipe reports;
  std::vector<pid_t> writers;
  std::vector<pid_t> readers;
  for (int w = 0; w < kWriters; ++w) {
    writers.push_back(ForkChild([&, w] {
      CHILD_OPEN(domain, path);
      Atom bank = *domain->atom("bank");
      Atom done = *domain->atom("done");
      std::mt19937 rng(static_cast<unsigned>(w + 1));
      start.Wait();
      for (int i = 0; i < transfers; ++i) {
        const std::uint32_t from = rng() % kAccounts;
        const std::uint32_t to = (from + 1 + rng() % (kAccounts - 1)) % kAccounts;
        const std::int64_t amount = rng() % 50;
        absl::StatusOr<Snapshot> s = bank.swap([&](Transaction& tx) {
          Accounts accounts(tx);
          const std::int64_t a = accounts.get(from)->balance - amount;
          const std::int64_t b = accounts.get(to)->balance + amount;
          absl::Status status =
              accounts.set(from, Account{a, CheckWord(a, static_cast<int>(from))});
          status.Update(accounts.set(to, Account{b, CheckWord(b, static_cast<int>(to))}));
          return status;
        });
        if (!s.ok()) return 92;
      }
      return done.swap([](Transaction& tx) { return Increment(tx, "writers"); }).ok() ? 0 : 93;
    }));
  }
  for (int r = 0; r < kReaders; ++r) {
    readers.push_back(ForkChild([&] {
      CHILD_OPEN(domain, path);
      Atom bank = *domain->atom("bank");
      Atom done = *domain->atom("done");
      ReaderReport report{0, 0};
      start.Wait();
      for (;;) {
        // Read `done` first: a last pass after every writer finished is always made.
        absl::StatusOr<Snapshot> finished = done.load();
        const bool last = finished.ok() && CounterMap(finished->map()).get("writers") == kWriters;
        absl::StatusOr<Snapshot> snap = bank.load();
        if (!snap.ok()) return 94;
        std::int64_t total = 0;
        AccountMap(snap->map()).ForEach([&](const std::uint32_t& key, const Account& account) {
          total += account.balance;
          if (account.check != CheckWord(account.balance, static_cast<int>(key))) ++report.bad;
        });
        if (total != kAccounts * kInitial || snap->map().size() != kAccounts) ++report.bad;
        ++report.snapshots;
        if (last) break;
      }
      reports.Send(report);
      return 0;
    }));
  }
  start.Open();
  for (pid_t child : writers) CHECK(WaitChild(child) == 0);
  for (int r = 0; r < kReaders; ++r) {
    std::optional<ReaderReport> report = reports.Receive<ReaderReport>();
    REQUIRE(report.has_value());
    CHECK(report->bad == 0);
    CHECK(report->snapshots > 0);
  }
  for (pid_t child : readers) CHECK(WaitChild(child) == 0);
}

void Churn(Atom& atom, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    REQUIRE(atom.swap([&](Transaction& tx) {
                  return tx.set(absl::StrCat("key-", i % 200),
                                std::string(32, static_cast<char>('a' + i % 26)));
                })
                .ok());
  }
}

TEST_CASE("a reader killed while pinned is taken over and its garbage reclaimed",
          "[atom][processes][reclaim][crash]") {
  TempDir dir;
  const std::string path = dir.File("killed.atomap");
  absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(64, 64));
  REQUIRE(domain.ok());
  Atom atom = *domain->atom("a");
  Churn(atom, 1000);

  ReportPipe pinned;
  const pid_t reader = ForkChild([&] {
    CHILD_OPEN(child_domain, path);
    absl::StatusOr<Snapshot> snap = child_domain->atom("a")->load();
    if (!snap.ok()) return 91;
    pinned.Send(getpid());
    for (;;) pause();  // pinned until killed
  });
  REQUIRE(pinned.Receive<pid_t>().has_value());
  REQUIRE(domain->stats().any_pinned);
  CHECK(domain->stats().oldest_pinned_pid == static_cast<std::uint32_t>(reader));
  REQUIRE(kill(reader, SIGKILL) == 0);
  REQUIRE(WaitChild(reader) == 128 + SIGKILL);

  // The survivor's reclamation finds the dead pin, takes the slot over, and frees again.
  std::vector<std::uint64_t> data_bytes;
  for (int phase = 0; phase < 6; ++phase) {
    Churn(atom, 5000);
    data_bytes.push_back(domain->stats().data_bytes);
  }
  INFO("data bytes after each phase: " << ::Catch::Detail::stringify(data_bytes));
  CHECK(data_bytes[3] == data_bytes[5]);
  CHECK(data_bytes[4] == data_bytes[5]);
  const DomainStats stats = domain->stats();
  CHECK((!stats.any_pinned || stats.oldest_pinned_pid != static_cast<std::uint32_t>(reader)));
  for (const DomainInfo::Slot& slot : domain->info().slots_in_use) {
    CHECK(slot.pid != static_cast<std::uint32_t>(reader));
  }
}

TEST_CASE("a live reader that stopped holds reclamation back and its snapshot stays intact",
          "[atom][processes][reclaim]") {
  TempDir dir;
  const std::string path = dir.File("stopped.atomap");
  absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(64, 64));
  REQUIRE(domain.ok());
  Atom atom = *domain->atom("a");
  Churn(atom, 200);  // every key-i holds some letter now

  ReportPipe pinned;
  Gate resume;
  const pid_t reader = ForkChild([&] {
    CHILD_OPEN(child_domain, path);
    absl::StatusOr<Snapshot> snap = child_domain->atom("a")->load();
    if (!snap.ok()) return 91;
    std::vector<std::string> before;
    for (int k = 0; k < 200; ++k) before.emplace_back(*snap->map().get(absl::StrCat("key-", k)));
    pinned.Send(getpid());
    resume.Wait();  // alive, but doing nothing: like a stopped or slow process
    for (int k = 0; k < 200; ++k) {
      if (snap->map().get(absl::StrCat("key-", k)) != before[static_cast<std::size_t>(k)]) return 1;
    }
    return 0;
  });
  REQUIRE(pinned.Receive<pid_t>().has_value());
  const std::uint64_t pending_before = domain->stats().pending_garbage_blocks;
  Churn(atom, 20000);  // rewrites every key many times over, retiring the reader's version
  const DomainStats held = domain->stats();
  CHECK(held.pending_garbage_blocks > pending_before + 20000);  // nothing freed under the pin
  CHECK(held.any_pinned);
  CHECK(held.oldest_pinned_pid == static_cast<std::uint32_t>(reader));
  resume.Open();
  CHECK(WaitChild(reader) == 0);  // its snapshot was intact to the end

  Churn(atom, 2000);  // with the pin gone, the backlog is freed
  CHECK(domain->stats().pending_garbage_blocks < held.pending_garbage_blocks / 4);
}

TEST_CASE("wait_for_change wakes a waiting process for every change", "[atom][processes][wait]") {
  constexpr int kChanges = 50;
  TempDir dir;
  const std::string path = dir.File("wait.atomap");
  absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(64, 64));
  REQUIRE(domain.ok());
  Atom atom = *domain->atom("config");

  ReportPipe seen;
  ReportPipe ready;
  const pid_t watcher = ForkChild([&] {
    CHILD_OPEN(child_domain, path);
    Atom config = *child_domain->atom("config");
    std::uint64_t version = 0;
    ready.Send(version);
    while (version < kChanges) {
      absl::StatusOr<Snapshot> snap = config.wait_for_change(version, absl::Seconds(60));
      if (!snap.ok()) return 91;
      version = snap->version();
      seen.Send(version);
    }
    return 0;
  });
  REQUIRE(ready.Receive<std::uint64_t>().has_value());
  for (int change = 1; change <= kChanges; ++change) {
    REQUIRE(atom.swap([&](Transaction& tx) { return tx.set("generation", std::to_string(change)); })
                .ok());
    // Lockstep: the watcher reports this very version before the next change is made.
    std::optional<std::uint64_t> version = seen.Receive<std::uint64_t>();
    REQUIRE(version.has_value());
    CHECK(*version == static_cast<std::uint64_t>(change));
  }
  CHECK(WaitChild(watcher) == 0);
}

}  // namespace
}  // namespace atomap

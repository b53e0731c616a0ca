// Readers and strangers that are real other users (issue 12; DESIGN-12 section 5, T1-T3r).
//
// As root, the test forks children that drop to unused ids: 4201 owns the domain and writes it,
// 4202 reads it through group 4200, 4203 is in no group (support/as_user.h). Writers churn a
// ledger whose sum never changes and whose check word covers every entry, so a torn or freed
// snapshot shows up as a wrong sum, a wrong check word, or a crash; readers verify it while
// writers free and grow. The stranger then takes every lock it can on every file it can open,
// and every writer operation must still complete within a bound. Not root: skips.
//
// Counts: 256 reader processes at once (the figure, in every build); reads per reader
// are fewer under sanitizers; ATOMAP_USERS_SCALE multiplies the counts for stress runs.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "atomap/check.h"
#include "atomap/domain.h"
#include "file/reader_slot.h"
#include "support/as_user.h"
#include "support/small_options.h"

namespace atomap {
namespace {

// ---- The ledger: kAccounts amounts that sum to kAccounts * kStartAmount, and a check word. ----

constexpr int kAccounts = 128;
constexpr std::uint64_t kStartAmount = 1000;
constexpr std::uint64_t kLedgerSum = kAccounts * kStartAmount;
constexpr const char* kLedgerAtom = "ledger";
constexpr const char* kCheckKey = "check";

std::string AccountKey(int i) { return absl::StrCat("acct/", i); }

// An account's value: the amount (8 bytes), then `pad` bytes that all equal a byte derived from
// the amount and the length, so a value half overwritten by another version is caught too.
std::uint8_t PadByte(std::uint64_t amount, std::size_t pad) {
  return static_cast<std::uint8_t>((amount * 131) ^ pad ^ 0x5a);
}
std::string AccountValue(std::uint64_t amount, std::size_t pad) {
  std::string value(sizeof amount + pad, static_cast<char>(PadByte(amount, pad)));
  std::memcpy(value.data(), &amount, sizeof amount);
  return value;
}
std::optional<std::uint64_t> ParseAccount(std::string_view value) {
  std::uint64_t amount = 0;
  if (value.size() < sizeof amount) return std::nullopt;
  std::memcpy(&amount, value.data(), sizeof amount);
  const std::size_t pad = value.size() - sizeof amount;
  const char expected = static_cast<char>(PadByte(amount, pad));
  for (std::size_t i = sizeof amount; i < value.size(); ++i) {
    if (value[i] != expected) return std::nullopt;
  }
  return amount;
}

// Order-independent (a sum), so a writer updates it for the two entries it changed.
std::uint64_t EntryHash(std::string_view key, std::string_view value) {
  std::uint64_t h = std::hash<std::string_view>()(key) * 0x9e3779b97f4a7c15ull;
  h ^= std::hash<std::string_view>()(value) + 0x7f4a7c159e3779b9ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}
std::string CheckValue(std::uint64_t word) {
  return std::string(reinterpret_cast<char*>(&word), 8);
}

// "" if `map` is a whole ledger version; otherwise what is wrong with it.
std::string VerifyLedger(const Map& map) {
  std::uint64_t sum = 0;
  std::uint64_t word = 0;
  int accounts = 0;
  std::optional<std::uint64_t> stored;
  std::string bad;
  map.ForEach([&](std::string_view key, std::string_view value) {
    if (key == kCheckKey) {
      std::uint64_t w = 0;
      if (value.size() == sizeof w) std::memcpy(&w, value.data(), sizeof w);
      stored = w;
      return;
    }
    ++accounts;
    word += EntryHash(key, value);
    std::optional<std::uint64_t> amount = ParseAccount(value);
    if (!amount.has_value()) {
      if (bad.empty()) bad = absl::StrCat("account ", std::string(key), " has a torn value");
      return;
    }
    sum += *amount;
  });
  if (!bad.empty()) return bad;
  if (accounts != kAccounts) return absl::StrCat(accounts, " accounts, expected ", kAccounts);
  if (sum != kLedgerSum) return absl::StrCat("sum ", sum, ", expected ", kLedgerSum);
  if (!stored.has_value()) return "no check word";
  if (*stored != word) return absl::StrCat("check word ", *stored, ", entries hash to ", word);
  return "";
}

absl::Status SeedLedger(Atom& ledger) {
  return ledger
      .swap([](Transaction& tx) -> absl::Status {
        std::uint64_t word = 0;
        for (int i = 0; i < kAccounts; ++i) {
          const std::string value = AccountValue(kStartAmount, 16);
          word += EntryHash(AccountKey(i), value);
          if (absl::Status s = tx.set(AccountKey(i), value); !s.ok()) return s;
        }
        return tx.set(kCheckKey, CheckValue(word));
      })
      .status();
}

// One churning swap: moves up to 50 from account `from` to `to` (different), re-pads both to
// new lengths (so blocks of every size are freed and reused), and updates the check word.
absl::Status MoveAmount(Atom& ledger, std::mt19937_64& rng) {
  const int from = static_cast<int>(rng() % kAccounts);
  const int to = static_cast<int>((from + 1 + rng() % (kAccounts - 1)) % kAccounts);
  const std::uint64_t want = rng() % 51;
  const std::size_t pad_from = rng() % 400;
  const std::size_t pad_to = rng() % 400;
  return ledger
      .swap([&](Transaction& tx) -> absl::Status {
        std::optional<std::string_view> a = tx.get(AccountKey(from));
        std::optional<std::string_view> b = tx.get(AccountKey(to));
        std::optional<std::string_view> c = tx.get(kCheckKey);
        if (!a || !b || !c || c->size() != 8) return absl::DataLossError("ledger entry missing");
        std::optional<std::uint64_t> amount_a = ParseAccount(*a);
        std::optional<std::uint64_t> amount_b = ParseAccount(*b);
        if (!amount_a || !amount_b) return absl::DataLossError("ledger value torn (in a writer)");
        std::uint64_t word = 0;
        std::memcpy(&word, c->data(), 8);
        const std::uint64_t moved = std::min(want, *amount_a);
        const std::string new_a = AccountValue(*amount_a - moved, pad_from);
        const std::string new_b = AccountValue(*amount_b + moved, pad_to);
        word += EntryHash(AccountKey(from), new_a) - EntryHash(AccountKey(from), *a);
        word += EntryHash(AccountKey(to), new_b) - EntryHash(AccountKey(to), *b);
        if (absl::Status s = tx.set(AccountKey(from), new_a); !s.ok()) return s;
        if (absl::Status s = tx.set(AccountKey(to), new_b); !s.ok()) return s;
        return tx.set(kCheckKey, CheckValue(word));
      })
      .status();
}

// ---- Options and files ----

constexpr std::uint32_t kSlots = 8;

Options WriterOptions() {
  Options options = SmallOptions(kSlots, 16, DomainKind::kFile, std::uint64_t{1} << 30);
  options.lock_timeout = absl::Seconds(5);
  return options;
}
Options ReaderOptions() {
  Options options = WriterOptions();
  options.read_only = true;
  options.create_if_missing = false;
  return options;
}

std::string LockFile(const std::string& path) { return path + ".lock"; }
std::string Registry(const std::string& path) { return path + ".readers"; }

// The bytes the design locks (DESIGN-12, "format 3"): attach 2^40, grow 2^40+1, slot 2^40+4096+i.
constexpr off_t kLockSpace = off_t{1} << 40;
constexpr off_t kSlotLocks = kLockSpace + 4096;

struct FileFacts {
  int error = 0;  // errno of stat, 0 if it exists
  std::uint32_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};
FileFacts Facts(const std::string& path) {
  FileFacts facts;
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    facts.error = errno;
    return facts;
  }
  facts.mode = st.st_mode & 07777;
  facts.uid = st.st_uid;
  facts.gid = st.st_gid;
  return facts;
}

// REQUIRES (callers of CHECK_FILE): in the parent.
void CheckFile(const std::string& path, std::uint32_t mode) {
  const FileFacts facts = Facts(path);
  INFO(path << ": " << (facts.error ? std::strerror(facts.error) : "exists") << ", mode 0"
            << std::oct << facts.mode << std::dec << ", owner " << facts.uid << ":" << facts.gid
            << " (expected mode 0" << std::oct << mode << std::dec << ", " << kOwner.uid << ":"
            << kSharedGroup << ")");
  CHECK(facts.error == 0);
  if (facts.error != 0) return;
  CHECK(facts.mode == mode);
  CHECK(facts.uid == kOwner.uid);
  CHECK(facts.gid == kSharedGroup);
}

// ---- Running children ----

int Deadline(int release_ms) { return ScaledMs(release_ms); }

// Runs `body` as `user` to its end, bounded; the outcome must be clean.
UserOutcome RunAs(const TestUser& user, const std::string& what,
                  const std::function<void(UserChild&)>& body, int release_ms = 5000) {
  UserProcess process = UserProcess::Start(user, what, body);
  return process.Finish(Deadline(release_ms));
}

#define REQUIRE_CLEAN(outcome)         \
  do {                                 \
    const UserOutcome& o_ = (outcome); \
    INFO(o_.Describe());               \
    REQUIRE(o_.clean());               \
  } while (0)
#define CHECK_CLEAN(outcome)           \
  do {                                 \
    const UserOutcome& o_ = (outcome); \
    INFO(o_.Describe());               \
    CHECK(o_.clean());                 \
  } while (0)

// The domain, created by the owner with `permissions` (and reader_permissions), holding a
// seeded ledger.
void CreateLedger(const std::string& path, std::uint32_t permissions,
                  std::uint32_t reader_permissions = 0) {
  REQUIRE_CLEAN(RunAs(kOwner, "creator", [&](UserChild& child) {
    Options options = WriterOptions();
    options.permissions = permissions;
    options.reader_permissions = reader_permissions;
    options.error_if_exists = true;
    absl::StatusOr<Domain> domain = Domain::Open(path, options);
    if (!domain.ok()) return child.report().Fail("create: ", domain.status().ToString());
    absl::StatusOr<Atom> ledger = domain->atom(kLedgerAtom);
    if (!ledger.ok()) return child.report().Fail("atom: ", ledger.status().ToString());
    if (absl::Status s = SeedLedger(*ledger); !s.ok()) child.report().Fail("seed: ", s.ToString());
  }));
}

// Counts of a writer's report.
enum WriterCount { kSwaps = 0, kFinalSize = 1, kGlobalEpoch = 2 };

// A writer (as the owner) that churns the ledger: `min_swaps` swaps, then on until the parent's
// Go() (if `until_told`). Signals once after its first swap.
UserProcess StartChurner(const std::string& path, int index, std::uint64_t min_swaps,
                         bool until_told) {
  return UserProcess::Start(kOwner, absl::StrCat("writer ", index), [=](UserChild& child) {
    absl::StatusOr<Domain> domain = Domain::Open(path, WriterOptions());
    if (!domain.ok()) return child.report().Fail("open: ", domain.status().ToString());
    absl::StatusOr<Atom> ledger = domain->atom(kLedgerAtom);
    if (!ledger.ok()) return child.report().Fail("atom: ", ledger.status().ToString());
    std::mt19937_64 rng(static_cast<std::uint64_t>(index) * 7919 + 1);
    std::uint64_t& swaps = child.report().count[kSwaps];
    for (bool signalled = false;; ++swaps) {
      if (swaps >= min_swaps && (!until_told || child.GoPending())) break;
      if (absl::Status s = MoveAmount(*ledger, rng); !s.ok()) {
        return child.report().Fail("swap ", swaps, ": ", s.ToString());
      }
      if (!signalled) child.Signal();
      signalled = true;
    }
    child.report().count[kFinalSize] = domain->info().size;
    child.report().count[kGlobalEpoch] = domain->stats().global_epoch;
  });
}

// How the children of one kind ended: counts summed, failures described (the first few).
struct Tally {
  std::uint64_t count[UserReport::kCounts] = {};
  int processes = 0;
  int crashed = 0;   // killed by a signal
  int hung = 0;
  int failed = 0;    // any other unclean end
  std::string first_failures;

  void Add(const UserOutcome& outcome) {
    ++processes;
    for (int i = 0; i < UserReport::kCounts; ++i) count[i] += outcome.report.count[i];
    if (outcome.clean()) return;
    if (outcome.hung) {
      ++hung;
    } else if (outcome.exit_code > 128) {
      ++crashed;
    } else {
      ++failed;
    }
    if (crashed + hung + failed <= 5) absl::StrAppend(&first_failures, outcome.Describe(), "\n");
  }
  std::string Summary() const {
    return absl::StrCat(processes, " processes: ", crashed, " crashed, ", hung, " hung, ", failed,
                        " failed otherwise\n", first_failures);
  }
};

// Milliseconds left until `end`, at least 1 (a Finish or WaitSignal with 1 ms still collects
// what has already arrived).
int LeftMs(std::chrono::steady_clock::time_point end) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<std::int64_t>(left.count(), 1));
}
std::chrono::steady_clock::time_point After(int release_ms) {
  return std::chrono::steady_clock::now() + std::chrono::milliseconds(Deadline(release_ms));
}

// One deadline for all of them: a hung child costs the deadline once, not once per child.
Tally FinishAll(std::vector<UserProcess>& processes, int release_ms) {
  const auto end = After(release_ms);
  Tally tally;
  for (UserProcess& p : processes) tally.Add(p.Finish(LeftMs(end)));
  return tally;
}

// Starts `n` readers (as kReader) that each run `body` after opening the domain read-only and
// finding the ledger; each signals when registered and ready.
using ReaderBody = std::function<void(UserChild&, Domain&, Atom&)>;
std::vector<UserProcess> StartReaders(const std::string& path, int n, const std::string& what,
                                      const ReaderBody& body) {
  std::vector<UserProcess> readers;
  readers.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    readers.push_back(UserProcess::Start(kReader, absl::StrCat(what, " ", i), [&](UserChild& c) {
      absl::StatusOr<Domain> domain = Domain::Open(path, ReaderOptions());
      if (!domain.ok()) return c.report().Fail("read-only open: ", domain.status().ToString());
      absl::StatusOr<Atom> ledger = domain->find_atom(kLedgerAtom);
      if (!ledger.ok()) return c.report().Fail("find_atom: ", ledger.status().ToString());
      body(c, *domain, *ledger);
    }));
  }
  return readers;
}

// Waits for the process's next Signal(); if none comes, logs how it ended instead.
bool Reached(UserProcess& p, int release_ms) {
  if (p.WaitSignal(Deadline(release_ms))) return true;
  UNSCOPED_INFO(p.what() << " did not reach its step: " << p.Finish(100).Describe());
  return false;
}

// Waits for every process's signal, all within one deadline; returns how many arrived, with the
// first missing one described.
int WaitAllSignals(std::vector<UserProcess>& processes, int release_ms, std::string* why) {
  const auto end = After(release_ms);
  int arrived = 0;
  for (UserProcess& p : processes) {
    if (p.WaitSignal(LeftMs(end))) {
      ++arrived;
    } else if (why->empty()) {
      *why = p.Finish(100).Describe();
    }
  }
  return arrived;
}

// The stats a writer sees, as one report (count indices below).
enum StatsCount {
  kStatReaders = 0,
  kStatListedReaders = 1,
  kStatPinnedAliveReaders = 2,
  kStatDead = 3,
  kStatReaderCapacity = 4,
};
void ReportStats(const Domain& domain, UserReport& report) {
  const DomainStats stats = domain.stats(StatsOptions{.participants = true});
  report.count[kStatReaders] = stats.readers;
  report.count[kStatDead] = stats.dead_participants;
  report.count[kStatReaderCapacity] = stats.reader_capacity;
  for (const ParticipantStats& p : stats.participant_list) {
    if (p.kind != ParticipantStats::Kind::kReader) continue;
    ++report.count[kStatListedReaders];
    if (p.pinned && p.alive.value_or(false)) ++report.count[kStatPinnedAliveReaders];
  }
}

int ReadsPerReader() { return (SanitizedBuild() ? 40 : 80) * StressScale(); }

// Catch2 2 has no SKIP: warn and pass; ctest's SKIP_REGULAR_EXPRESSION (tests/CMakeLists.txt)
// turns the line into a skip.
#define SKIP_UNLESS_ROOT()          \
  do {                              \
    if (!IsRootForUsers()) {        \
      WARN("SKIP: " << kNeedsRoot); \
      return;                       \
    }                               \
  } while (0)

// ---- T1 ----

TEST_CASE("users: readers of another user read a live domain, never torn (T1)", "[users]") {
  SKIP_UNLESS_ROOT();
  UserDir dir;
  const std::string path = dir.File("ledger.atomap");
  CreateLedger(path, 0640);
  CheckFile(path, 0640);
  CheckFile(Registry(path), 0660);  // derived: whoever may read PATH may register
  CheckFile(LockFile(path), 0600);  // the write bits of 0640, as rw
  struct stat created;
  REQUIRE(stat(path.c_str(), &created) == 0);
  const std::uint64_t created_size = static_cast<std::uint64_t>(created.st_size);

  constexpr int kWriters = 3;
  std::vector<UserProcess> writers;
  for (int w = 0; w < kWriters; ++w) writers.push_back(StartChurner(path, w, 200, true));
  for (UserProcess& w : writers) REQUIRE(Reached(w, 10000));

  // Each read: load, verify, keep it pinned while waiting for a newer version, verify it again
  // (a freed and reused block shows up here), then move on to the newer one.
  const int reads = ReadsPerReader();
  std::vector<UserProcess> readers =
      StartReaders(path, 256, "reader", [&](UserChild& c, Domain&, Atom& ledger) {
        c.Signal();
        if (!c.WaitGo()) return;
        absl::StatusOr<Snapshot> held = ledger.load();
        for (int r = 0; r < reads && held.ok(); ++r) {
          ++c.report().count[0];
          std::string bad = VerifyLedger(held->map());
          absl::StatusOr<Snapshot> next = ledger.wait_for_change(held->version(), absl::Seconds(1));
          if (bad.empty()) bad = VerifyLedger(held->map());
          if (!bad.empty()) {
            ++c.report().count[1];
            c.report().Fail("torn snapshot (version ", held->version(), "): ", bad);
          }
          if (!next.ok()) return c.report().Fail("wait_for_change: ", next.status().ToString());
          held = std::move(next);
        }
        if (!held.ok()) c.report().Fail("load: ", held.status().ToString());
      });
  std::string why;
  const int ready = WaitAllSignals(readers, 20000, &why);
  for (UserProcess& r : readers) r.Go();
  const Tally tally = FinishAll(readers, 60000);
  for (UserProcess& w : writers) w.Go();
  const Tally writer_tally = FinishAll(writers, 20000);

  INFO("readers: " << tally.Summary() << "reads " << tally.count[0] << ", torn " << tally.count[1]
                   << "; writers: " << writer_tally.Summary() << "swaps "
                   << writer_tally.count[kSwaps] << ", global epoch (summed over writers) "
                   << writer_tally.count[kGlobalEpoch]);
  INFO("first reader that did not get ready: " << why);
  CHECK(ready == 256);
  CHECK(tally.crashed == 0);
  CHECK(tally.hung == 0);
  CHECK(tally.count[1] == 0);  // torn
  CHECK(tally.failed == 0);
  CHECK(tally.count[0] >= static_cast<std::uint64_t>(256 * reads));
  CHECK(writer_tally.processes - (writer_tally.crashed + writer_tally.hung + writer_tally.failed) ==
        kWriters);
  CHECK(writer_tally.count[kGlobalEpoch] > 0);  // reclamation ran
  // Growth: the file is longer than at creation (new versions outgrew the first chunk).
  INFO("created " << created_size << " bytes");
  struct stat st;
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK(static_cast<std::uint64_t>(st.st_size) > created_size);
}

// ---- T1d ----

TEST_CASE("users: a reader's pinned snapshot survives thousands of swaps (T1d)", "[users]") {
  SKIP_UNLESS_ROOT();
  UserDir dir;
  const std::string path = dir.File("ledger.atomap");
  CreateLedger(path, 0640);

  std::vector<UserProcess> reader =
      StartReaders(path, 1, "pinning reader", [](UserChild& c, Domain&, Atom& ledger) {
        absl::StatusOr<Snapshot> pinned = ledger.load();
        if (!pinned.ok()) return c.report().Fail("load: ", pinned.status().ToString());
        std::map<std::string, std::string> copy;
        pinned->map().ForEach([&](std::string_view k, std::string_view v) {
          copy.emplace(std::string(k), std::string(v));
        });
        if (std::string bad = VerifyLedger(pinned->map()); !bad.empty()) {
          return c.report().Fail("torn at once: ", bad);
        }
        c.Signal();
        c.WaitGo();
        std::map<std::string, std::string> again;
        pinned->map().ForEach([&](std::string_view k, std::string_view v) {
          again.emplace(std::string(k), std::string(v));
        });
        c.report().count[0] = copy.size();
        if (again != copy) {
          std::size_t differ = 0;
          for (const auto& [k, v] : copy) differ += again.count(k) == 0 || again[k] != v;
          c.report().Fail("the pinned snapshot changed under the reader: ", differ, " of ",
                          copy.size(), " entries differ; ", VerifyLedger(pinned->map()));
        }
      });
  REQUIRE(Reached(reader[0], 10000));
  const std::uint64_t swaps =
      static_cast<std::uint64_t>((SanitizedBuild() ? 1000 : 5000) * StressScale());
  std::vector<UserProcess> writers;
  for (int w = 0; w < 2; ++w) writers.push_back(StartChurner(path, w, swaps, false));
  const Tally writer_tally = FinishAll(writers, 60000);
  {
    INFO("writers: " << writer_tally.Summary());
    CHECK(writer_tally.count[kSwaps] == 2 * swaps);
  }
  reader[0].Go();
  const UserOutcome& outcome = reader[0].Finish(Deadline(10000));
  INFO("after " << writer_tally.count[kSwaps] << " swaps by 2 writers");
  CHECK_CLEAN(outcome);
  CHECK(outcome.report.count[0] == kAccounts + 1);
}

// ---- T2 ----

TEST_CASE("users: readers SIGKILLed while pinned are reclaimed, nothing leaks (T2)", "[users]") {
  SKIP_UNLESS_ROOT();
  UserDir dir;
  const std::string path = dir.File("ledger.atomap");
  CreateLedger(path, 0640);

  // The writer: step 1 reports what it sees with the readers pinned; step 2 (after they are
  // killed) swaps until the registry shows no reader, counting the swaps it took.
  constexpr int kKilled = 64;
  constexpr std::uint64_t kMaxSwaps = 20000;
  UserProcess churner = UserProcess::Start(kOwner, "writer", [&](UserChild& c) {
    absl::StatusOr<Domain> domain = Domain::Open(path, WriterOptions());
    if (!domain.ok()) return c.report().Fail("open: ", domain.status().ToString());
    absl::StatusOr<Atom> ledger = domain->atom(kLedgerAtom);
    if (!ledger.ok()) return c.report().Fail("atom: ", ledger.status().ToString());
    c.Signal();
    if (!c.WaitGo()) return;
    ReportStats(*domain, c.report());  // counts 0-4: with the readers pinned
    c.Signal();
    if (!c.WaitGo()) return;
    std::mt19937_64 rng(42);
    std::uint64_t& swaps = c.report().count[5];
    std::uint64_t& max_dead = c.report().count[6];
    for (; swaps < kMaxSwaps; ++swaps) {
      if (swaps % 8 == 0) {
        const DomainStats stats = domain->stats();
        max_dead = std::max<std::uint64_t>(max_dead, stats.dead_participants);
        if (stats.readers == 0 && stats.dead_participants == 0) {
          c.report().count[7] = 1;  // drained
          break;
        }
      }
      if (absl::Status s = MoveAmount(*ledger, rng); !s.ok()) {
        return c.report().Fail("swap ", swaps, ": ", s.ToString());
      }
    }
  });
  REQUIRE(Reached(churner, 10000));

  std::vector<UserProcess> pinned =
      StartReaders(path, kKilled, "pinned reader", [](UserChild& c, Domain&, Atom& ledger) {
        absl::StatusOr<Snapshot> snapshot = ledger.load();
        if (!snapshot.ok()) return c.report().Fail("load: ", snapshot.status().ToString());
        c.Signal();
        c.WaitGo();  // killed here
      });
  std::string why;
  const int ready = WaitAllSignals(pinned, 20000, &why);
  INFO("first reader that did not pin: " << why);
  REQUIRE(ready == kKilled);
  churner.Go();
  REQUIRE(Reached(churner, 10000));
  for (UserProcess& r : pinned) r.Kill();
  const Tally killed = FinishAll(pinned, 10000);
  CHECK(killed.crashed == kKilled);  // every one died of the SIGKILL, while pinned
  churner.Go();
  const UserOutcome& w = churner.Finish(Deadline(60000));
  INFO(w.Describe());
  INFO("with " << kKilled << " readers pinned the writer saw: stats().readers "
               << w.report.count[kStatReaders] << ", readers listed "
               << w.report.count[kStatListedReaders] << ", of them pinned and alive "
               << w.report.count[kStatPinnedAliveReaders] << ", reader_capacity "
               << w.report.count[kStatReaderCapacity] << "; after the kills: " << w.report.count[5]
               << " swaps, most dead seen " << w.report.count[6] << ", drained "
               << w.report.count[7]);
  CHECK(w.clean());
  CHECK(w.report.count[kStatReaders] >= kKilled);
  CHECK(w.report.count[kStatListedReaders] >= kKilled);
  CHECK(w.report.count[kStatPinnedAliveReaders] >= kKilled);
  CHECK(w.report.count[7] == 1);  // every dead reader's slot cleared within kMaxSwaps swaps

  // Alone now: the full check accounts for every byte.
  const UserOutcome& checked = RunAs(
      kOwner, "checker",
      [&](UserChild& c) {
        absl::StatusOr<Domain> domain = Domain::Open(path, WriterOptions());
        if (!domain.ok()) return c.report().Fail("open: ", domain.status().ToString());
        absl::StatusOr<CheckReport> report = domain->check();
        if (!report.ok()) return c.report().Fail("check: ", report.status().ToString());
        c.report().count[0] = report->leaked_bytes;
        c.report().count[1] = report->space_checked;
        c.report().count[2] = report->problems.size();
        c.report().count[3] = report->pending_bytes;
        if (!report->problems.empty()) c.report().Fail("check: ", report->problems.front());
        if (!report->space_checked) c.report().Fail("space not checked: ", report->skipped);
      },
      20000);
  {
    INFO(checked.Describe() << "; leaked " << checked.report.count[0] << " bytes, pending "
                            << checked.report.count[3]);
    CHECK(checked.clean());
    CHECK(checked.report.count[0] == 0);
  }

  // 256 new readers can all register (the dead ones' slots are free again).
  std::vector<UserProcess> fresh =
      StartReaders(path, 256, "new reader", [](UserChild& c, Domain&, Atom& ledger) {
        absl::StatusOr<Snapshot> snapshot = ledger.load();
        if (!snapshot.ok()) return c.report().Fail("load: ", snapshot.status().ToString());
        if (std::string bad = VerifyLedger(snapshot->map()); !bad.empty()) c.report().Fail(bad);
        c.Signal();
        c.WaitGo();
      });
  why.clear();
  const int registered = WaitAllSignals(fresh, 20000, &why);
  const UserOutcome& census = RunAs(kOwner, "census", [&](UserChild& c) {
    absl::StatusOr<Domain> domain = Domain::Open(path, WriterOptions());
    if (!domain.ok()) return c.report().Fail("open: ", domain.status().ToString());
    ReportStats(*domain, c.report());
  });
  for (UserProcess& r : fresh) r.Go();
  const Tally fresh_tally = FinishAll(fresh, 20000);
  INFO("first new reader that did not register: " << why << "\n"
                                                  << fresh_tally.Summary() << census.Describe()
                                                  << "; stats().readers "
                                                  << census.report.count[kStatReaders]);
  CHECK(registered == 256);
  CHECK(fresh_tally.processes == 256);
  CHECK(fresh_tally.crashed + fresh_tally.hung + fresh_tally.failed == 0);
  CHECK(census.clean());
  CHECK(census.report.count[kStatReaders] >= 256);
}

// ---- T4 ----

TEST_CASE("users: a reader pinned forever stalls reclamation, bounded and reported (T4)",
          "[users]") {
  SKIP_UNLESS_ROOT();
  UserDir dir;
  const std::string path = dir.File("small.atomap");
  constexpr std::uint64_t kMaxSize = std::uint64_t{16} << 20;
  REQUIRE_CLEAN(RunAs(kOwner, "creator", [&](UserChild& c) {
    Options options = WriterOptions();
    options.max_size = kMaxSize;
    options.permissions = 0640;
    absl::StatusOr<Domain> domain = Domain::Open(path, options);
    if (!domain.ok()) return c.report().Fail("create: ", domain.status().ToString());
    absl::StatusOr<Atom> ledger = domain->atom(kLedgerAtom);
    if (!ledger.ok()) return c.report().Fail("atom: ", ledger.status().ToString());
    if (absl::Status s = SeedLedger(*ledger); !s.ok()) c.report().Fail("seed: ", s.ToString());
  }));
  std::vector<UserProcess> reader =
      StartReaders(path, 1, "stalling reader", [](UserChild& c, Domain&, Atom& ledger) {
        absl::StatusOr<Snapshot> pinned = ledger.load();
        if (!pinned.ok()) return c.report().Fail("load: ", pinned.status().ToString());
        c.Signal();
        c.WaitGo();  // pinned until killed
      });
  REQUIRE(Reached(reader[0], 10000));
  const pid_t reader_pid = reader[0].pid();

  // Churns 64 keys of 4 KiB (a steady live size far below kMaxSize) until the domain is full.
  enum { kSwapsToFull = 0, kNamesPid, kListedRetained, kAttemptsAfterKill, kSwapsAfterKill };
  constexpr int kMaxSwaps = 20000;
  UserProcess writer = UserProcess::Start(kOwner, "writer", [&](UserChild& c) {
    Options options = WriterOptions();
    absl::StatusOr<Domain> domain = Domain::Open(path, options);
    if (!domain.ok()) return c.report().Fail("open: ", domain.status().ToString());
    absl::StatusOr<Atom> atom = domain->atom("churn");
    if (!atom.ok()) return c.report().Fail("atom: ", atom.status().ToString());
    const std::string value(4096, 'c');
    auto swap = [&](int i) {
      // A new value each time (an unchanged one might publish nothing).
      std::string v = value;
      std::memcpy(v.data(), &i, sizeof i);
      return atom->swap([&](Transaction& tx) { return tx.set(absl::StrCat("k", i % 64), v); })
          .status();
    };
    absl::Status full;
    int i = 0;
    for (; i < kMaxSwaps && full.ok(); ++i) full = swap(i);
    c.report().count[kSwapsToFull] = static_cast<std::uint64_t>(i);
    if (full.ok()) return c.report().Fail("no ResourceExhausted in ", kMaxSwaps, " swaps");
    if (!absl::IsResourceExhausted(full)) return c.report().Fail("full: ", full.ToString());
    const std::string pid = absl::StrCat("pid ", reader_pid);
    c.report().count[kNamesPid] = full.message().find(pid) != std::string::npos;
    if (!c.report().count[kNamesPid])
      c.report().Fail("the error does not name ", pid, ": ", full.ToString());
    const DomainStats stats = domain->stats(StatsOptions{.participants = true});
    for (const ParticipantStats& p : stats.participant_list) {
      if (p.kind == ParticipantStats::Kind::kReader &&
          p.pid == static_cast<std::uint32_t>(reader_pid) && p.pinned && p.retained_bytes > 0) {
        c.report().count[kListedRetained] = p.retained_bytes;
      }
    }
    if (c.report().count[kListedRetained] == 0) {
      c.report().Fail("stats() lists no pinned reader pid ", reader_pid, " retaining bytes");
    }
    c.Signal();
    if (!c.WaitGo()) return;
    // The reader is dead: the next reclamation pass frees what it held; swaps succeed again.
    absl::Status s = full;
    for (int attempt = 0; attempt < 100 && !s.ok(); ++attempt) {
      s = swap(i++);
      c.report().count[kAttemptsAfterKill] = static_cast<std::uint64_t>(attempt + 1);
    }
    if (!s.ok()) return c.report().Fail("after the reader died: ", s.ToString());
    for (; c.report().count[kSwapsAfterKill] < 1000; ++c.report().count[kSwapsAfterKill]) {
      if (absl::Status t = swap(i++); !t.ok())
        return c.report().Fail("steady churn: ", t.ToString());
    }
  });
  const bool stalled = Reached(writer, 30000);
  CHECK(stalled);
  reader[0].Kill();
  reader[0].Finish(Deadline(5000));
  writer.Go();
  const UserOutcome& w = writer.Finish(Deadline(30000));
  INFO(w.Describe() << "; swaps until full " << w.report.count[kSwapsToFull]
                    << ", error names the pid " << w.report.count[kNamesPid]
                    << ", retained bytes listed " << w.report.count[kListedRetained]
                    << ", attempts after the kill " << w.report.count[kAttemptsAfterKill]
                    << ", swaps after " << w.report.count[kSwapsAfterKill]);
  CHECK(w.clean());
}

// ---- T3 and T3r: strangers and hostile readers cannot stop writers ----

// Bounded writer steps, each in a fresh owner process; every one must complete. `tag` keeps
// the keys of separate rounds apart.
void WritersStillWork(const std::string& path, const std::string& tag, bool with_check) {
  // A writable open in a fresh process, 1 000 swaps that grow the file, a compare_and_set.
  const UserOutcome& grew = RunAs(
      kOwner, absl::StrCat(tag, ": 1000 swaps with growth"),
      [&](UserChild& c) {
        absl::StatusOr<Domain> domain = Domain::Open(path, WriterOptions());
        if (!domain.ok()) return c.report().Fail("open: ", domain.status().ToString());
        absl::StatusOr<Atom> atom = domain->atom(absl::StrCat("grow-", tag));
        if (!atom.ok()) return c.report().Fail("atom: ", atom.status().ToString());
        const std::uint64_t before = domain->info().size;
        const std::string big(3000, 'g');
        for (int i = 0; i < 1000; ++i) {
          absl::Status s =
              atom->swap([&](Transaction& tx) { return tx.set(absl::StrCat("k", i), big); })
                  .status();
          if (!s.ok()) return c.report().Fail("swap ", i, ": ", s.ToString());
        }
        c.report().count[0] = before;
        c.report().count[1] = domain->info().size;
        if (c.report().count[1] <= before) c.report().Fail("the file did not grow: ", before);
        absl::StatusOr<Snapshot> base = atom->load();
        if (!base.ok()) return c.report().Fail("load: ", base.status().ToString());
        absl::StatusOr<Transaction> tx = atom->begin(*base);
        if (!tx.ok()) return c.report().Fail("begin: ", tx.status().ToString());
        if (absl::Status s = tx->set("cas", "1"); !s.ok()) return c.report().Fail(s.ToString());
        absl::StatusOr<Snapshot> done = atom->compare_and_set(*std::move(tx));
        if (!done.ok()) c.report().Fail("compare_and_set: ", done.status().ToString());
      },
      10000);
  CHECK_CLEAN(grew);

  // A second writer attaches while one is attached; both close.
  UserProcess first =
      UserProcess::Start(kOwner, absl::StrCat(tag, ": first writer"), [&](UserChild& c) {
        absl::StatusOr<Domain> domain = Domain::Open(path, WriterOptions());
        if (!domain.ok()) return c.report().Fail("open: ", domain.status().ToString());
        c.Signal();
        c.WaitGo();
        std::mt19937_64 rng(7);
        absl::StatusOr<Atom> ledger = domain->atom(kLedgerAtom);
        if (!ledger.ok()) return c.report().Fail("atom: ", ledger.status().ToString());
        for (int i = 0; i < 100; ++i) {
          if (absl::Status s = MoveAmount(*ledger, rng); !s.ok())
            return c.report().Fail(s.ToString());
        }
      });
  CHECK(Reached(first, 5000));
  CHECK_CLEAN(RunAs(kOwner, absl::StrCat(tag, ": second writer attaches"), [&](UserChild& c) {
    absl::StatusOr<Domain> domain = Domain::Open(path, WriterOptions());
    if (!domain.ok()) return c.report().Fail("open: ", domain.status().ToString());
    absl::StatusOr<Atom> ledger = domain->atom(kLedgerAtom);
    if (!ledger.ok()) return c.report().Fail("atom: ", ledger.status().ToString());
    std::mt19937_64 rng(8);
    if (absl::Status s = MoveAmount(*ledger, rng); !s.ok()) c.report().Fail(s.ToString());
  }));
  first.Go();
  CHECK_CLEAN(first.Finish(Deadline(5000)));

  // The last close (both writers closed normally) marked the domain clean: the next open sees
  // it. (Before the kills below: a death keeps the domain unclean until the next sweep.)
  CHECK_CLEAN(RunAs(kOwner, absl::StrCat(tag, ": reopen after the last close"), [&](UserChild& c) {
    absl::StatusOr<Domain> domain = Domain::Open(path, WriterOptions());
    if (!domain.ok()) return c.report().Fail("open: ", domain.status().ToString());
    if (!domain->was_clean()) c.report().Fail("was_clean() false after the last close");
  }));
  // Writers SIGKILLed in every slot: the next one takes a slot over.
  for (std::uint32_t k = 0; k < kSlots; ++k) {
    UserProcess doomed =
        UserProcess::Start(kOwner, absl::StrCat(tag, ": doomed writer ", k), [&](UserChild& c) {
          absl::StatusOr<Domain> domain = Domain::Open(path, WriterOptions());
          if (!domain.ok()) return c.report().Fail("open: ", domain.status().ToString());
          c.Signal();
          c.WaitGo();
        });
    CHECK(Reached(doomed, 5000));
    doomed.Kill();
    doomed.Finish(Deadline(5000));
  }
  CHECK_CLEAN(RunAs(kOwner, absl::StrCat(tag, ": writer after the killed ones"), [&](UserChild& c) {
    absl::StatusOr<Domain> domain = Domain::Open(path, WriterOptions());
    if (!domain.ok()) return c.report().Fail("open (takeover): ", domain.status().ToString());
    absl::StatusOr<Atom> ledger = domain->atom(kLedgerAtom);
    if (!ledger.ok()) return c.report().Fail("atom: ", ledger.status().ToString());
    std::mt19937_64 rng(9);
    if (absl::Status s = MoveAmount(*ledger, rng); !s.ok()) c.report().Fail(s.ToString());
  }));

  if (!with_check) return;

  // check, then check with repair: both need the domain to themselves (writers only).
  for (bool repair : {false, true}) {
    CHECK_CLEAN(RunAs(
        kOwner, absl::StrCat(tag, repair ? ": check --repair" : ": check"),
        [&](UserChild& c) {
          absl::StatusOr<Domain> domain = Domain::Open(path, WriterOptions());
          if (!domain.ok()) return c.report().Fail("open: ", domain.status().ToString());
          absl::StatusOr<CheckReport> report = domain->check(CheckOptions{.repair = repair});
          if (!report.ok()) return c.report().Fail("check: ", report.status().ToString());
          if (!report->space_checked) c.report().Fail("not alone: ", report->skipped);
          if (!report->problems.empty()) c.report().Fail(report->problems.front());
        },
        10000));
  }
}

// The control for T3 and T3r: the same steps with nobody interfering pass (today too), so a
// failure under a stranger is the stranger's doing.
TEST_CASE("users: the writer steps complete with nobody interfering (control)", "[users]") {
  SKIP_UNLESS_ROOT();
  UserDir dir;
  const std::string path = dir.File("ledger.atomap");
  CreateLedger(path, 0644, 0660);
  WritersStillWork(path, "alone", /*with_check=*/true);
}

// errno of open(path, flags), 0 if it opened (then closed).
int OpenErrno(const std::string& path, int flags) {
  const int fd = open(path.c_str(), flags);
  if (fd < 0) return errno;
  close(fd);
  return 0;
}

// errno of one fcntl lock request, 0 if granted.
int LockErrno(int fd, int cmd, short type, off_t start, off_t len) {
  struct flock lock = {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = start;
  lock.l_len = len;
  return fcntl(fd, cmd, &lock) == 0 ? 0 : errno;
}

void Expect(UserReport& report, const char* what, int got, int expected) {
  if (got != expected) {
    report.Fail(what, ": ", got == 0 ? "succeeded" : std::strerror(got), ", expected ",
                expected == 0 ? "success" : std::strerror(expected));
  }
}

TEST_CASE("users: a stranger's locks on every file it can open stop no writer (T3)", "[users]") {
  SKIP_UNLESS_ROOT();
  UserDir dir;
  const std::string path = dir.File("ledger.atomap");
  CreateLedger(path, 0644, 0660);
  CheckFile(Registry(path), 0660);

  // Holds, until told: an OFD and a classic read lock on all of PATH, and an flock.
  UserProcess stranger = UserProcess::Start(kStranger, "stranger", [&](UserChild& c) {
    UserReport& r = c.report();
    Expect(r, "open PATH.lock O_RDONLY", OpenErrno(LockFile(path), O_RDONLY), EACCES);
    Expect(r, "open PATH.lock O_RDWR", OpenErrno(LockFile(path), O_RDWR), EACCES);
    Expect(r, "open PATH.readers O_RDONLY", OpenErrno(Registry(path), O_RDONLY), EACCES);
    Expect(r, "open PATH.readers O_RDWR", OpenErrno(Registry(path), O_RDWR), EACCES);
    Expect(r, "open PATH O_RDWR", OpenErrno(path, O_RDWR), EACCES);
    const int ofd = open(path.c_str(), O_RDONLY);
    const int classic = open(path.c_str(), O_RDONLY);
    const int flocked = open(path.c_str(), O_RDONLY);
    if (ofd < 0 || classic < 0 || flocked < 0) {
      r.Fail("open PATH O_RDONLY: ", std::strerror(errno));
    } else {
      Expect(r, "F_OFD_SETLK F_RDLCK [0, inf)", LockErrno(ofd, F_OFD_SETLK, F_RDLCK, 0, 0), 0);
      Expect(r, "F_SETLK F_RDLCK [0, inf)", LockErrno(classic, F_SETLK, F_RDLCK, 0, 0), 0);
      Expect(r, "F_OFD_SETLK F_WRLCK", LockErrno(ofd, F_OFD_SETLK, F_WRLCK, 0, 0), EBADF);
      Expect(r, "F_SETLK F_WRLCK", LockErrno(classic, F_SETLK, F_WRLCK, 0, 0), EBADF);
      // flock needs no write permission: the strongest one it can have.
      if (flock(flocked, LOCK_EX | LOCK_NB) != 0) r.Fail("flock LOCK_EX: ", std::strerror(errno));
    }
    c.Signal();
    c.WaitGo();  // holds everything until the parent is done
  });
  REQUIRE(Reached(stranger, 5000));
  WritersStillWork(path, "under a stranger's locks", /*with_check=*/true);
  stranger.Go();
  CHECK_CLEAN(stranger.Finish(Deadline(5000)));
}

// The hostile reader's phases.
enum HostilePhase { kLockedAndScribbled = 0, kTruncated = 1 };

TEST_CASE("users: a granted reader turned hostile stops no writer (T3r)", "[users]") {
  SKIP_UNLESS_ROOT();
  UserDir dir;
  const std::string path = dir.File("ledger.atomap");
  CreateLedger(path, 0640, 0660);

  // Honest readers pinned, so the hostile one finds owned slots to scribble on. After the
  // registry is truncated they may crash or be refused: allowed (co-readers trust each other,
  // docs/reliability.md); only writers are judged here.
  std::vector<UserProcess> honest =
      StartReaders(path, 4, "honest reader", [](UserChild& c, Domain&, Atom& ledger) {
        absl::StatusOr<Snapshot> snapshot = ledger.load();
        if (!snapshot.ok()) return c.report().Fail("load: ", snapshot.status().ToString());
        c.Signal();
        c.WaitGo();
      });
  std::string why;
  CHECK(WaitAllSignals(honest, 10000, &why) == 4);

  UserProcess hostile = UserProcess::Start(kReader, "hostile reader", [&](UserChild& c) {
    UserReport& r = c.report();
    const int fd = open(Registry(path).c_str(), O_RDWR);
    if (fd < 0) {
      r.Fail("open PATH.readers O_RDWR: ", std::strerror(errno));
      c.Signal();
      c.WaitGo();
      c.Signal();
      c.WaitGo();
      return;
    }
    // Write locks on every byte no honest reader holds: the whole file if it can, else the
    // header range, every free slot's lock byte, and everything past them.
    std::uint64_t& granted = r.count[0];
    if (LockErrno(fd, F_OFD_SETLK, F_WRLCK, 0, 0) == 0) {
      granted = 1;
    } else {
      granted += LockErrno(fd, F_OFD_SETLK, F_WRLCK, 0, kSlotLocks) == 0;
      for (std::uint32_t i = 0; i < internal::kMaxReaderCapacity; ++i) {
        granted += LockErrno(fd, F_OFD_SETLK, F_WRLCK, kSlotLocks + i, 1) == 0;
      }
      granted +=
          LockErrno(fd, F_OFD_SETLK, F_WRLCK, kSlotLocks + internal::kMaxReaderCapacity, 0) == 0;
    }
    // Bogus announcements: pins of epoch 1 in free slots (now "owned"), huge epochs in owned
    // ones, and a high-water mark past any capacity.
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size >= static_cast<off_t>(internal::kRegistryHeaderBytes)) {
      void* map = mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ | PROT_WRITE,
                       MAP_SHARED, fd, 0);
      if (map == MAP_FAILED) {
        r.Fail("mmap PATH.readers: ", std::strerror(errno));
      } else {
        auto* bytes = static_cast<std::uint8_t*>(map);
        const std::uint32_t high = 0xffffffffu;
        std::memcpy(bytes + offsetof(internal::RegistryHeader, high_water), &high, sizeof high);
        const std::uint64_t slots =
            (static_cast<std::uint64_t>(st.st_size) - internal::kRegistryHeaderBytes) /
            internal::kReaderSlotBytes;
        for (std::uint64_t i = 0; i < slots; ++i) {
          std::uint8_t* slot = bytes + internal::ReaderSlotOffset(static_cast<std::uint32_t>(i));
          std::uint32_t state = 0;
          std::memcpy(&state, slot + offsetof(internal::ReaderSlot, state), sizeof state);
          const std::uint64_t bogus = state == 0 ? (std::uint64_t{1} << 1) | 1 : ~std::uint64_t{0};
          const std::uint32_t owned = 1;
          std::memcpy(slot, &bogus, sizeof bogus);
          std::memcpy(slot + offsetof(internal::ReaderSlot, state), &owned, sizeof owned);
          ++r.count[1];
        }
        munmap(map, static_cast<std::size_t>(st.st_size));
      }
    }
    c.Signal();  // kLockedAndScribbled
    if (!c.WaitGo()) return;
    if (ftruncate(fd, 0) != 0) r.Fail("ftruncate PATH.readers: ", std::strerror(errno));
    c.Signal();  // kTruncated
    c.WaitGo();  // holds its locks until the parent is done
  });
  REQUIRE(Reached(hostile, 20000));
  WritersStillWork(path, "registry locked and scribbled", /*with_check=*/false);
  hostile.Go();
  REQUIRE(Reached(hostile, 5000));
  WritersStillWork(path, "registry truncated", /*with_check=*/false);
  hostile.Go();
  const UserOutcome& h = hostile.Finish(Deadline(5000));
  INFO(h.Describe() << "; lock ranges granted " << h.report.count[0] << ", slots scribbled "
                    << h.report.count[1]);
  CHECK_CLEAN(h);
  for (UserProcess& r : honest) r.Kill();  // their fate is not judged (see above)
}

}  // namespace
}  // namespace atomap

// crash_torture: writers swap, a driver SIGKILLs them at random moments, restarts them, and
// after every round proves that nothing acknowledged was lost, nothing unacknowledged is half
// visible, the domain checks clean and — after the lone opener's sweep — not a byte is leaked.
//
//   crash_torture_stress --dir DIR [--writers 3] [--kills 200] [--kills-per-round 25]
//                        [--seed N] [--max-acks-between-kills 40]
//                        [--crash-points [--allow-unreached SITE,SITE...]]
//
// Writer w, swap n (its counter's new value), as ONE swap:
//   "counter-<w>"      := n (8 bytes)
//   "rec-<w>-<n % 64>" := n followed by n % 700 bytes of filler (inline, small and large blobs)
//   "big-<w>"          := 6000 bytes every 50th swap (an uncached size class), erased on the next
//   "tmp-<w>"          := set on odd n, erased on even n (erase paths, node merges)
// After swap() returns, the writer appends n to its log file <dir>/w<w>.log (8 bytes; no fsync:
// the page cache outlives a SIGKILL). Then it adds 1 to the key "shared" with Atom::add, which
// all writers contend on (so it combines: docs/design.md, "Combining"), and appends the value
// the add returned to <dir>/w<w>.adds. Checks, over all writers' .adds logs, A records, and the
// domain's "shared" counter S: every returned value is distinct (no two adds were given the
// same place), max <= S, and A <= S <= A + deaths (each killed writer had at most one add in
// flight, applied or not: S above that means an add applied twice, below A one lost). A kill can
// land anywhere, including between the swap's publication and the log append, hence the checks:
//   L = last logged value, V = counter in the domain:  L <= V <= L + 1
//   rec-<w>-<n % 64> holds n for every logged n > V - 64 (or the newer V, if V = n + 64)
//   the record for V exists and says V (the in-flight swap is whole or absent)
//
// Timing: the driver waits on the writers' logs (file state) for a random number of
// acknowledged swaps, then spins a random number of iterations and kills: no sleeps.
// Exit status 0 and a summary line on success; 1 and the first failure otherwise.
//
// --crash-points (a library built with ATOMAP_CRASH_POINTS=ON, src/common/crash_point.h): the
// driver kills nobody in a round; every writer is started armed at the next site of a cycle over
// every site, at a random small hit count, and the driver waits for it to die of SIGKILL there
// (a writer that reaches no kill in kArmedSwapLimit swaps exits with status 4: its site was not
// reached, and it is restarted at the next site). The slot table has exactly one slot per
// writer, so a restarted writer always takes a dead slot over: takeover and recovery sites are
// reached by the restarted writer's open. The sweep sites are reached by a lone opener forked
// at the end of each round, armed there, before the driver's own verification; the growth sites,
// which writers reach only while the domain is young, also by a grower (1 MiB values into an atom
// of its own) at the end of the first two rounds. Every site must
// have been killed at least once by the end, except those --allow-unreached names (sites whose
// points are not placed in the library yet); such a site is no longer armed after it went
// unreached 3 times without a kill. A site the planned kills missed by chance (one reached only
// by some hits: a chunk from the shared bump, the file growing) gets up to kCatchUpRounds extra
// rounds in which writers, sweeper and grower are armed at the missing sites only.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "atomap/check.h"
#include "atomap/domain.h"
#include "common/crash_point.h"

namespace {

struct Config {
  std::string dir;
  int writers = 3;
  int kills = 200;
  int kills_per_round = 25;
  int max_acks_between_kills = 40;
  std::uint64_t seed = 1;
  bool crash_points = false;
  std::vector<bool> allow_unreached = std::vector<bool>(atomap::internal::kNumCrashSites, false);
};

using atomap::internal::CrashSite;

// An armed writer that has not died after this many swaps did not reach its site.
constexpr std::uint64_t kArmedSwapLimit = 2000;
// At most this many extra rounds for sites the planned kills missed.
constexpr int kCatchUpRounds = 8;
constexpr int kUnreachedStatus = 4;

// By the site's name (common/crash_point.cc), so that a site added later is classed with its
// phase without a list to keep up to date (one was missed: recover.after_intent_cleared, armed in
// a writer that claims a free slot or at a hit count above 1, was never reached).
bool IsSweepSite(CrashSite site) {
  return atomap::internal::CrashSiteName(site).starts_with("sweep.");
}
// Reached only by a process that takes a dead slot over, and once per process.
bool IsTakeoverSite(CrashSite site) {
  const std::string_view name = atomap::internal::CrashSiteName(site);
  return name.starts_with("takeover.") || name.starts_with("recover.");
}
// Reached only when the file grows: rare once the domain is warm.
bool IsGrowthSite(CrashSite site) {
  return atomap::internal::CrashSiteName(site).starts_with("grow.");
}

// Where a writer is armed (site == kCount: not armed).
struct Arming {
  CrashSite site = CrashSite::kCount;
  std::uint64_t nth = 0;
};

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "crash_torture: FAILED: %s\n", what.c_str());
  std::fflush(stderr);
  std::exit(1);
}

// Used by the process that creates the domain (a writer of the first round) and, as the same
// values, by everyone else.
int g_slot_capacity = 64;

atomap::Options DomainOptions() {
  atomap::Options options;
  options.max_size = std::uint64_t{1} << 30;
  options.slot_capacity = static_cast<std::uint32_t>(g_slot_capacity);
  options.atom_capacity = 8;
  return options;
}

std::string DomainPath(const Config& c) { return c.dir + "/torture.atomap"; }
std::string LogPath(const Config& c, int w) { return c.dir + "/w" + std::to_string(w) + ".log"; }
std::string AddsPath(const Config& c, int w) { return c.dir + "/w" + std::to_string(w) + ".adds"; }
// Writers killed (or reaped after a kill) so far: each may have had one add in flight.
std::uint64_t g_writer_deaths = 0;

std::string U64(std::uint64_t n) { return std::string(reinterpret_cast<const char*>(&n), 8); }
std::uint64_t ReadU64(std::string_view bytes) {
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), std::min<std::size_t>(8, bytes.size()));
  return n;
}
std::string RecordKey(int w, std::uint64_t n) {
  return "rec-" + std::to_string(w) + "-" + std::to_string(n % 64);
}
std::string RecordValue(std::uint64_t n) { return U64(n) + std::string(n % 700, 'r'); }

// One swap of writer w; returns the published counter value.
std::uint64_t SwapOnce(atomap::Atom& atom, int w) {
  const std::string counter = "counter-" + std::to_string(w);
  std::uint64_t n = 0;
  absl::StatusOr<atomap::Snapshot> done = atom.swap([&](atomap::Transaction& tx) -> absl::Status {
    std::optional<std::string_view> old = tx.get(counter);
    n = (old ? ReadU64(*old) : 0) + 1;
    if (absl::Status s = tx.set(counter, U64(n)); !s.ok()) return s;
    if (absl::Status s = tx.set(RecordKey(w, n), RecordValue(n)); !s.ok()) return s;
    const std::string big = "big-" + std::to_string(w);
    if (n % 50 == 0) {
      if (absl::Status s = tx.set(big, std::string(6000, 'B')); !s.ok()) return s;
    } else if (n % 50 == 1) {
      if (absl::StatusOr<bool> e = tx.erase(big); !e.ok()) return e.status();
    }
    const std::string tmp = "tmp-" + std::to_string(w);
    if (n % 2 == 1) return tx.set(tmp, std::string(n % 40, 't'));
    absl::StatusOr<bool> e = tx.erase(tmp);
    return e.ok() ? absl::OkStatus() : e.status();
  });
  if (!done.ok()) Fail("writer " + std::to_string(w) + ": swap: " + done.status().ToString());
  return n;
}

[[noreturn]] void WriterMain(const Config& c, int w, Arming arming) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);  // a failed driver takes its writers with it
  if (getppid() == 1) _exit(3);
  const int log = open(LogPath(c, w).c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (log < 0) Fail("open log");
  const int adds = open(AddsPath(c, w).c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (adds < 0) Fail("open adds log");
  const bool armed = arming.site != CrashSite::kCount;
  if (armed) atomap::internal::ArmCrashPoint(arming.site, arming.nth);  // before open: takeovers
  absl::StatusOr<atomap::Domain> domain = atomap::Domain::Open(DomainPath(c), DomainOptions());
  // --crash-points has one slot per writer: a dead writer's slot looks taken for as long as a
  // live writer is taking it over (Participant::Reclaim), which is brief. Try again.
  for (int tries = 0; c.crash_points && tries < 1000000 && !domain.ok() &&
                      domain.status().code() == absl::StatusCode::kResourceExhausted;
       ++tries) {
    domain = atomap::Domain::Open(DomainPath(c), DomainOptions());
  }
  if (!domain.ok()) Fail("writer open: " + domain.status().ToString());
  absl::StatusOr<atomap::Atom> atom = domain->atom("torture");
  if (!atom.ok()) Fail("writer atom: " + atom.status().ToString());
  for (std::uint64_t i = 0; !armed || i < kArmedSwapLimit; ++i) {
    const std::uint64_t n = SwapOnce(*atom, w);
    if (write(log, &n, sizeof n) != sizeof n) Fail("log write");  // the acknowledgement
    absl::StatusOr<std::uint64_t> added = atom->add("shared", 1);
    if (!added.ok()) Fail("writer " + std::to_string(w) + ": add: " + added.status().ToString());
    if (write(adds, &*added, sizeof *added) != sizeof *added) Fail("adds log write");
  }
  std::fflush(nullptr);
  _exit(kUnreachedStatus);  // no destructors: the domain is left as a kill would leave it
}

pid_t StartWriter(const Config& c, int w, Arming arming = {}) {
  const pid_t pid = fork();
  if (pid < 0) Fail("fork");
  if (pid == 0) WriterMain(c, w, arming);
  return pid;
}

std::uint64_t FileRecords(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.st_size) / 8;
}
std::uint64_t LogRecords(const Config& c, int w) { return FileRecords(LogPath(c, w)); }

// The 8-byte records of `path`, in order (a torn last record is ignored).
std::vector<std::uint64_t> ReadRecords(const std::string& path) {
  std::vector<std::uint64_t> values(FileRecords(path));
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    const ssize_t got = pread(fd, values.data(), values.size() * 8, 0);
    values.resize(got > 0 ? static_cast<std::size_t>(got) / 8 : 0);
    close(fd);
  }
  return values;
}
// The acknowledged values of writer w, in order.
std::vector<std::uint64_t> ReadLog(const Config& c, int w) { return ReadRecords(LogPath(c, w)); }

// `exit_ok`: an armed writer may have exited by itself (its site not reached) before the kill.
void KillAndReap(pid_t pid, bool exit_ok = false) {
  kill(pid, SIGKILL);
  ++g_writer_deaths;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) Fail("waitpid");
  if (WIFEXITED(status) && !(exit_ok && WEXITSTATUS(status) == kUnreachedStatus)) {
    Fail("a writer exited by itself with status " + std::to_string(WEXITSTATUS(status)));
  }
}

// Waits until writer w has acknowledged `acks` more swaps (or died), spins a little, kills it.
void KillAfter(const Config& c, int w, pid_t pid, std::uint64_t acks, std::uint64_t spin) {
  const std::uint64_t target = LogRecords(c, w) + acks;
  while (LogRecords(c, w) < target) {
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      Fail("writer " + std::to_string(w) + " died on its own: " +
           (WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                : "exit status " + std::to_string(WEXITSTATUS(status))));
    }
  }
  volatile std::uint64_t sink = 0;  // a random delay without sleeping: the kill lands anywhere
  for (std::uint64_t i = 0; i < spin; ++i) sink = sink + i;
  KillAndReap(pid);
}

struct RoundResult {
  std::uint64_t acknowledged = 0;
  std::uint64_t reachable_bytes = 0;
  std::uint64_t leaked_before_recovery = 0;
};

// What the kills left leaked, seen by a read-only handle (which recovers nothing).
std::uint64_t LeakedBeforeRecovery(const Config& c) {
  atomap::Options options = DomainOptions();
  options.read_only = true;
  absl::StatusOr<atomap::Domain> domain = atomap::Domain::Open(DomainPath(c), options);
  if (!domain.ok()) Fail("driver read-only open: " + domain.status().ToString());
  absl::StatusOr<atomap::CheckReport> report = domain->check();
  if (!report.ok()) Fail("read-only check: " + report.status().ToString());
  return report->leaked_bytes;
}

// --crash-points: a writer armed at a site after its CAS dies with that swap published and not
// logged, and its restart may die the same way before it logs anything. Per writer: deaths
// since its log last grew (each may have published one unlogged swap), and the longest such run.
struct UnloggedDeaths {
  std::uint64_t log_records = 0;
  std::uint64_t run = 0;
  std::uint64_t longest = 0;
};
std::vector<UnloggedDeaths> g_unlogged;

void NoteDeath(const Config& c, int w) {
  UnloggedDeaths& u = g_unlogged[w];
  const std::uint64_t records = LogRecords(c, w);
  u.run = records == u.log_records ? u.run + 1 : 1;
  u.log_records = records;
  u.longest = std::max(u.longest, u.run);
}

// The adds to "shared" (see the top): distinct values, none lost, none applied twice.
void CheckAdds(const Config& c, int round, const atomap::Snapshot& snap) {
  std::vector<std::uint64_t> values;
  for (int w = 0; w < c.writers; ++w) {
    const std::vector<std::uint64_t> mine = ReadRecords(AddsPath(c, w));
    values.insert(values.end(), mine.begin(), mine.end());
  }
  std::sort(values.begin(), values.end());
  const std::string where = "round " + std::to_string(round) + ": adds: ";
  for (std::size_t i = 1; i < values.size(); ++i) {
    if (values[i] == values[i - 1]) Fail(where + "two adds returned " + std::to_string(values[i]));
  }
  std::optional<std::string_view> shared = snap.map().get("shared");
  const std::uint64_t total = shared ? ReadU64(*shared) : 0;
  const std::uint64_t acked = values.size();
  if (total < acked || total > acked + g_writer_deaths ||
      (!values.empty() && values.back() > total)) {
    Fail(where + "counter " + std::to_string(total) + " after " + std::to_string(acked) +
         " acknowledged adds and " + std::to_string(g_writer_deaths) + " writer deaths");
  }
}

RoundResult Verify(const Config& c, int round) {
  const std::uint64_t leaked_before = LeakedBeforeRecovery(c);
  absl::StatusOr<atomap::Domain> domain = atomap::Domain::Open(DomainPath(c), DomainOptions());
  if (!domain.ok()) Fail("driver open: " + domain.status().ToString());
  absl::StatusOr<atomap::CheckReport> report = domain->check();
  if (!report.ok()) Fail("check: " + report.status().ToString());
  for (const std::string& p : report->problems) std::fprintf(stderr, "  problem: %s\n", p.c_str());
  if (!report->ok() || report->leaked_bytes != 0) {
    Fail("round " + std::to_string(round) + ": check found problems, leaked " +
         std::to_string(report->leaked_bytes) + " bytes");
  }
  const atomap::DomainStats stats = domain->stats();
  const std::uint64_t accounted = report->reachable_bytes + report->free_bytes +
                                  report->pending_bytes + report->unused_bytes +
                                  report->in_flight_bytes;
  if (accounted != stats.data_bytes)
    Fail("space accounting: " + std::to_string(accounted) + " accounted of " +
         std::to_string(stats.data_bytes));
  absl::StatusOr<atomap::Snapshot> snap = domain->atom("torture")->load();
  if (!snap.ok()) Fail("load: " + snap.status().ToString());
  RoundResult result;
  result.leaked_before_recovery = leaked_before;
  result.reachable_bytes = report->reachable_bytes;
  for (int w = 0; w < c.writers; ++w) {
    const std::vector<std::uint64_t> log = ReadLog(c, w);
    const std::string who = "round " + std::to_string(round) + " writer " + std::to_string(w);
    // Without crash points a kill lands after at least one acknowledgement: at most one
    // unlogged swap between two records, and after the last.
    const std::uint64_t max_gap = c.crash_points ? g_unlogged[w].longest + 1 : 2;
    const std::uint64_t max_unlogged = c.crash_points ? g_unlogged[w].run : 1;
    for (std::size_t i = 1; i < log.size(); ++i) {
      if (log[i] <= log[i - 1] || log[i] > log[i - 1] + max_gap) {
        Fail(who + ": log not increasing: " + std::to_string(log[i - 1]) + " then " +
             std::to_string(log[i]) + " at record " + std::to_string(i));
      }
    }
    const std::uint64_t last = log.empty() ? 0 : log.back();
    std::optional<std::string_view> counter = snap->map().get("counter-" + std::to_string(w));
    const std::uint64_t value = counter ? ReadU64(*counter) : 0;
    if (value < last || value > last + max_unlogged) {
      Fail(who + ": counter " + std::to_string(value) + ", last acknowledged " +
           std::to_string(last));
    }
    if (value > 0 && snap->map().get(RecordKey(w, value)) != RecordValue(value)) {
      Fail(who + ": the record of swap " + std::to_string(value) + " is not whole");
    }
    for (std::size_t i = log.size() > 64 ? log.size() - 64 : 0; i < log.size(); ++i) {
      const std::uint64_t n = log[i];
      if (n + 64 <= value) continue;  // its record key was reused by a newer swap
      if (snap->map().get(RecordKey(w, n)) != RecordValue(n)) {
        Fail(who + ": acknowledged swap " + std::to_string(n) + " is missing");
      }
    }
    result.acknowledged += log.size();
  }
  CheckAdds(c, round, *snap);
  return result;
}

Config Parse(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--crash-points") {
      c.crash_points = true;
      --i;  // takes no value
      continue;
    }
    if (i + 1 >= argc) Fail("flag " + flag + " needs a value");
    const char* v = argv[i + 1];
    if (flag == "--dir") c.dir = v;
    else if (flag == "--writers") c.writers = std::atoi(v);
    else if (flag == "--kills") c.kills = std::atoi(v);
    else if (flag == "--kills-per-round") c.kills_per_round = std::atoi(v);
    else if (flag == "--max-acks-between-kills") c.max_acks_between_kills = std::atoi(v);
    else if (flag == "--seed") c.seed = std::strtoull(v, nullptr, 10);
    else if (flag == "--allow-unreached") {
      std::string_view list(v);
      while (!list.empty()) {
        const std::size_t comma = list.find(',');
        const std::string_view name = list.substr(0, comma);
        std::optional<CrashSite> site = atomap::internal::CrashSiteFromName(name);
        if (!site) Fail("--allow-unreached: no crash site named " + std::string(name));
        c.allow_unreached[static_cast<std::size_t>(*site)] = true;
        list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
      }
    } else Fail("unknown flag " + flag);
  }
  if (c.dir.empty() || c.writers < 1 || c.kills < 1 || c.kills_per_round < 1) {
    Fail("usage: crash_torture_stress --dir DIR [--writers N] [--kills N] [--kills-per-round N] "
         "[--max-acks-between-kills N] [--seed N] [--crash-points [--allow-unreached S,S...]]");
  }
  if (c.crash_points && !atomap::internal::CrashPointsCompiledIn()) {
    Fail("--crash-points needs a library built with -DATOMAP_CRASH_POINTS=ON");
  }
  return c;
}

}  // namespace

// The --crash-points schedule: which site the next writer (or sweeper) is armed at, and what
// each site did.
class SiteCycle {
 public:
  SiteCycle(std::mt19937_64& rng, const std::vector<bool>& allow_unreached)
      : rng_(rng), allow_unreached_(allow_unreached) {}
  // The next site a writer is armed at. `fresh_slot`: the writer will claim a free slot (start of
  // a round), so takeover sites are skipped for it.
  Arming NextForWriter(bool fresh_slot) {
    for (std::size_t n = 0; n < focus_.size(); ++n) {
      const CrashSite site = focus_[next_focus_++ % focus_.size()];
      if (!IsSweepSite(site) && !IsGrowthSite(site) && !(fresh_slot && IsTakeoverSite(site))) {
        return Arming{site, 1};  // the first hit: the likeliest to be reached
      }
    }
    for (std::size_t tries = 0;; ++tries) {
      const auto site = static_cast<CrashSite>(next_writer_++ % atomap::internal::kNumCrashSites);
      const bool drop_allowed = tries < 2 * atomap::internal::kNumCrashSites;  // else: any site
      if (IsSweepSite(site) || (fresh_slot && IsTakeoverSite(site))) continue;
      // A site allowed to go unreached (not placed yet) that was not reached 3 times is dropped:
      // each try costs kArmedSwapLimit swaps.
      const auto i = static_cast<std::size_t>(site);
      if (drop_allowed && allow_unreached_[i] && kills_[i] == 0 && unreached_[i] >= 3) continue;
      // Takeover and recovery sites are reached once per process; growth is rare.
      const bool once = IsTakeoverSite(site) || IsGrowthSite(site);
      return Arming{site, once ? 1 : 1 + rng_() % 4};
    }
  }
  Arming NextForSweeper() {
    const CrashSite sweep[] = {CrashSite::kSweepBeforeRebuild, CrashSite::kSweepAfterRebuild};
    for (CrashSite site : sweep) {
      if (Focused(site)) return Arming{site, 1};
    }
    return Arming{sweep[next_sweeper_++ % 2], 1};
  }
  // The grower's site after a round: the two growth sites after the first two rounds (growth is
  // reached reliably only while the domain is young), later only one still to be killed.
  std::optional<Arming> NextForGrower(int round) const {
    if (round < 2)
      return Arming{round == 0 ? CrashSite::kGrowAfterExtend : CrashSite::kGrowAfterPublish, 1};
    for (CrashSite site : {CrashSite::kGrowAfterExtend, CrashSite::kGrowAfterPublish}) {
      if (Focused(site)) return Arming{site, 1};
    }
    return std::nullopt;
  }
  // The sites that must be killed (not allowed unreached) and have not been yet.
  std::vector<CrashSite> Missing() const {
    std::vector<CrashSite> missing;
    for (std::size_t i = 0; i < atomap::internal::kNumCrashSites; ++i) {
      if (kills_[i] == 0 && !allow_unreached_[i]) missing.push_back(static_cast<CrashSite>(i));
    }
    return missing;
  }
  // From now on writers, the sweeper and the grower are armed at `sites` where they can be.
  void FocusOn(std::vector<CrashSite> sites) { focus_ = std::move(sites); }
  bool Focused(CrashSite site) const {
    return std::find(focus_.begin(), focus_.end(), site) != focus_.end();
  }
  void Killed(CrashSite site) { ++kills_[static_cast<std::size_t>(site)]; }
  void Unreached(CrashSite site) { ++unreached_[static_cast<std::size_t>(site)]; }
  int kills(CrashSite site) const { return kills_[static_cast<std::size_t>(site)]; }
  int unreached(CrashSite site) const { return unreached_[static_cast<std::size_t>(site)]; }

 private:
  std::mt19937_64& rng_;
  const std::vector<bool>& allow_unreached_;
  // Growth is reached reliably only while the domain is young (later, sweeps leave it mostly
  // free space): the first writers of the first round are armed at the growth sites.
  std::uint64_t next_writer_ = static_cast<std::uint64_t>(CrashSite::kGrowAfterExtend);
  std::uint64_t next_sweeper_ = 0;
  std::vector<CrashSite> focus_;
  std::uint64_t next_focus_ = 0;
  int kills_[atomap::internal::kNumCrashSites] = {};
  int unreached_[atomap::internal::kNumCrashSites] = {};
};

// Runs `body` in a child armed at `arming` (its return value is the child's exit status). Returns
// whether the child was killed there; false if it finished without reaching the site.
template <class Body>
bool KilledAt(Arming arming, const char* role, Body body) {
  const pid_t pid = fork();
  if (pid < 0) Fail("fork");
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    atomap::internal::ArmCrashPoint(arming.site, arming.nth);
    _exit(body());
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) Fail("waitpid");
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) return true;
  if (WIFEXITED(status) && WEXITSTATUS(status) == kUnreachedStatus) return false;
  Fail(std::string("the ") + role + " armed at " +
       std::string(atomap::internal::CrashSiteName(arming.site)) + " failed (status " +
       std::to_string(status) + ")");
}

// A lone writable opener (it sweeps: every writer is dead), armed at a sweep site.
bool KillSweeper(const Config& c, Arming arming) {
  return KilledAt(arming, "sweeper", [&] {
    absl::StatusOr<atomap::Domain> domain = atomap::Domain::Open(DomainPath(c), DomainOptions());
    return domain.ok() ? kUnreachedStatus : 5;
  });
}

// A process armed at a growth site that swaps 1 MiB values into its own atom until the domain
// grows (writers recycle their space, so after the first round they rarely grow the file).
// Each kill grows the domain by a quarter: only the first rounds.
bool KillGrower(const Config& c, Arming arming) {
  return KilledAt(arming, "grower", [&] {
    absl::StatusOr<atomap::Domain> domain = atomap::Domain::Open(DomainPath(c), DomainOptions());
    if (!domain.ok()) return 5;
    absl::StatusOr<atomap::Atom> atom = domain->atom("grow");
    if (!atom.ok()) return 6;
    for (int i = 0; i < 256; ++i) {
      absl::Status s =
          atom->swap([&](atomap::Transaction& tx) {
                return tx.set("blob-" + std::to_string(i), std::string(std::size_t{1} << 20, 'G'));
              })
              .status();
      if (!s.ok()) return 7;
    }
    return kUnreachedStatus;
  });
}

// A round of --crash-points: writers armed at the cycle's sites die there and are restarted at
// the next; `kills_per_round` such deaths, then every writer is killed and a sweeper is.
int CrashPointRound(const Config& c, SiteCycle& cycle, std::vector<pid_t>& writers, int kills_left,
                    int round) {
  std::vector<Arming> armed(c.writers);
  for (int w = 0; w < c.writers; ++w) {
    armed[w] = cycle.NextForWriter(/*fresh_slot=*/true);
    writers[w] = StartWriter(c, w, armed[w]);
  }
  int kills = 0;
  for (int k = 0; k < c.kills_per_round && kills < kills_left; ++k) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) Fail("waitpid");
    int w = 0;
    while (w < c.writers && writers[w] != pid) ++w;
    if (w == c.writers) Fail("waitpid: not a writer");
    const std::string site(atomap::internal::CrashSiteName(armed[w].site));
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
      ++g_writer_deaths;
      cycle.Killed(armed[w].site);
      NoteDeath(c, w);
      ++kills;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == kUnreachedStatus) {
      cycle.Unreached(armed[w].site);
    } else {
      Fail("writer " + std::to_string(w) + " armed at " + site + " ended with status " +
           std::to_string(status) + " (not a SIGKILL)");
    }
    armed[w] = cycle.NextForWriter(/*fresh_slot=*/false);  // its restart takes a dead slot over
    writers[w] = StartWriter(c, w, armed[w]);
  }
  for (int w = 0; w < c.writers; ++w) {
    KillAndReap(writers[w], /*exit_ok=*/true);
    NoteDeath(c, w);
    ++kills;
  }
  if (const std::optional<Arming> grower = cycle.NextForGrower(round)) {
    if (KillGrower(c, *grower)) {
      cycle.Killed(grower->site);
      ++kills;
    } else {
      cycle.Unreached(grower->site);
    }
  }
  const Arming sweeper = cycle.NextForSweeper();
  if (KillSweeper(c, sweeper)) {
    cycle.Killed(sweeper.site);
    ++kills;
  } else {
    cycle.Unreached(sweeper.site);
  }
  return kills;
}

int main(int argc, char** argv) {
  const Config c = Parse(argc, argv);
  // --crash-points: one slot per writer, so that a restarted writer must take a dead slot over.
  if (c.crash_points) g_slot_capacity = c.writers;
  g_unlogged.resize(c.writers);
  std::mt19937_64 rng(c.seed);
  std::fprintf(stderr,
               "crash_torture: seed %" PRIu64 " (rerun with --seed to repeat the schedule)\n",
               c.seed);
  std::vector<pid_t> writers(c.writers, -1);
  int kills = 0;
  int rounds = 0;
  std::uint64_t acknowledged = 0;
  std::uint64_t reachable = 0;
  std::uint64_t swept = 0;
  SiteCycle cycle(rng, c.allow_unreached);
  auto note = [&](const RoundResult& r) {
    acknowledged = r.acknowledged;
    reachable = r.reachable_bytes;
    swept += r.leaked_before_recovery;
  };
  while (kills < c.kills) {
    if (c.crash_points) {
      kills += CrashPointRound(c, cycle, writers, c.kills - kills, rounds);
      note(Verify(c, ++rounds));
      continue;
    }
    for (int w = 0; w < c.writers; ++w) writers[w] = StartWriter(c, w);
    for (int k = 0; k < c.kills_per_round && kills < c.kills; ++k, ++kills) {
      const int w = static_cast<int>(rng() % c.writers);
      KillAfter(c, w, writers[w], rng() % (c.max_acks_between_kills + 1), rng() % 200000);
      writers[w] = StartWriter(c, w);  // restarted: takes a dead slot over
    }
    for (int w = 0; w < c.writers; ++w) {
      KillAfter(c, w, writers[w], 0, rng() % 200000);
      ++kills;
    }
    note(Verify(c, ++rounds));
  }
  // Catch-up rounds: a site that only some hits reach (a chunk taken from the shared bump, the
  // file growing) can go unkilled in the planned kills by chance; it then gets rounds of its own.
  for (int extra = 0; c.crash_points && extra < kCatchUpRounds && !cycle.Missing().empty();
       ++extra) {
    cycle.FocusOn(cycle.Missing());
    kills += CrashPointRound(c, cycle, writers, c.kills_per_round, rounds);
    note(Verify(c, ++rounds));
  }
  if (c.crash_points) {
    std::string unreached;
    for (std::size_t i = 0; i < atomap::internal::kNumCrashSites; ++i) {
      const auto site = static_cast<CrashSite>(i);
      std::printf("crash_torture: site %-30s %4d kills, %3d times not reached%s\n",
                  std::string(atomap::internal::CrashSiteName(site)).c_str(), cycle.kills(site),
                  cycle.unreached(site), c.allow_unreached[i] ? " (allowed unreached)" : "");
      if (cycle.kills(site) == 0 && !c.allow_unreached[i]) {
        unreached.push_back(' ');
        unreached.append(atomap::internal::CrashSiteName(site));
      }
    }
    if (!unreached.empty()) Fail("no kill at crash site(s):" + unreached + " (run more --kills)");
  }
  std::uint64_t adds = 0;
  for (int w = 0; w < c.writers; ++w) adds += FileRecords(AddsPath(c, w));
  std::printf("crash_torture: OK: %d kills, %d rounds, %d writers, %" PRIu64
              " acknowledged swaps, all present; %" PRIu64
              " acknowledged adds, none lost or applied twice; %" PRIu64
              " bytes leaked by the kills were swept; 0 bytes leaked after recovery (%" PRIu64
              " bytes reachable)\n",
              kills, rounds, c.writers, acknowledged, adds, swept, reachable);
  return 0;
}

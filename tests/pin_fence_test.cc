// The asymmetric pin fence (epoch/pin_fence.h, docs/design.md "The asymmetric fence").
//
// 1. A store-buffering litmus across two processes that map one shared page. P: a = 1;
//    PinFence(); read b. Q: b = 1; ScanFence(mode); read a. "Both read 0" is the outcome a
//    missing StoreLoad edge allows. It must never happen with a light PinFence and a kLight
//    ScanFence (the heavy fence), nor with a full PinFence and either scan fence. The same litmus
//    with compiler barriers only (the control), and with a light pin against a scanner that
//    issues only a full fence (edge (3H) removed), must show it: that is what proves the litmus
//    can fail here. Rounds are synchronised through the shared page (spins), never sleeps.
// 2. A process that cannot issue the heavy fence (the testing hook) pins with full fences, does
//    not advance a light domain's epoch (and says so in stats and in ReclaimForSpace's message),
//    and its pins are seen by a process that does advance it.
// 3. A domain created where the heavy fence fails is kFull: a capable process that attaches it
//    pins with full fences while it is attached. A child of fork() starts with full pins and
//    registers again at its first attach. A damaged pin_fence field is refused at open.
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "atomap/atom.h"
#include "atomap/domain.h"
#include "common/heavy_fence.h"
#include "epoch/epoch_table.h"
#include "epoch/pin_fence.h"
#include "file/header.h"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

using internal::HeavyFencesWork;
using internal::kLightPinsBuild;
using internal::PinFenceAttachment;
using internal::PinFenceMode;
using internal::PinsAreLight;

// ---- the litmus ------------------------------------------------------------------------------

struct alignas(64) Word {
  std::atomic<std::uint64_t> v{0};
};

// One shared page. a and b are the store-buffering pair; the others run the rounds.
struct LitmusPage {
  Word a, b;
  Word p_ready;  // P is ready for round r
  Word q_ready;  // Q has reset a and b for round r (kStop: no more rounds)
  Word p_done;   // P finished round r; its read of b is in p_saw
  Word p_saw;
};
static_assert(sizeof(LitmusPage) <= 4096);
constexpr std::uint64_t kStop = ~std::uint64_t{0};

enum class PinSide { kCompilerBarrier, kLightPinFence, kFullPinFence };
enum class ScanSide { kCompilerBarrier, kFullFence, kHeavyFence };

std::uint64_t Load(const Word& w) { return w.v.load(std::memory_order_acquire); }
void Store(Word& w, std::uint64_t value) { w.v.store(value, std::memory_order_release); }

// Spins until `w` reaches at least `value`; yields now and then, for a machine with fewer free
// cores than spinners.
std::uint64_t AwaitAtLeast(const Word& w, std::uint64_t value) {
  for (std::uint64_t spins = 1;; ++spins) {
    const std::uint64_t now = Load(w);
    if (now >= value) return now;
    if (spins % 4096 == 0) sched_yield();
  }
}

void CompilerBarrier() { std::atomic_signal_fence(std::memory_order_seq_cst); }

// A few nanoseconds of random delay, so that the two sides' stores and loads overlap in many
// alignments.
struct Jitter {
  std::uint64_t state;
  void operator()() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    for (std::uint64_t i = 0; i < (state & 31); ++i) CompilerBarrier();
  }
};

// P, in a child: its rounds until Q says stop. Returns 0, or nonzero if its pin side could not
// be set up as asked.
int RunPinner(LitmusPage& page, PinSide side) {
  // Attachments decide what PinFence() is in this process (PF1), as a domain handle's would.
  std::optional<PinFenceAttachment> light, full;
  if (side != PinSide::kCompilerBarrier) light.emplace(PinFenceMode::kLight);
  if (side == PinSide::kFullPinFence) full.emplace(PinFenceMode::kFull);
  if (side == PinSide::kLightPinFence && !PinsAreLight()) return 3;
  if (side == PinSide::kFullPinFence && PinsAreLight()) return 4;
  Jitter jitter{0x9e3779b97f4a7c15u ^ static_cast<std::uint64_t>(getpid())};
  for (std::uint64_t round = 1;; ++round) {
    Store(page.p_ready, round);
    if (AwaitAtLeast(page.q_ready, round) == kStop) return 0;
    jitter();
    page.a.v.store(1, std::memory_order_relaxed);
    if (side == PinSide::kCompilerBarrier) {
      CompilerBarrier();
    } else {
      internal::PinFence();
    }
    page.p_saw.v.store(page.b.v.load(std::memory_order_relaxed), std::memory_order_relaxed);
    Store(page.p_done, round);
  }
}

struct LitmusResult {
  std::uint64_t rounds = 0;
  std::uint64_t both_zero = 0;  // the forbidden outcome
};

// The two sides must run at once for a reordering to show: on a machine with two or more CPUs
// each side is bound to a CPU of its own (the scheduler would otherwise often start the child on
// its parent's CPU, and the rounds would alternate on one). Restores the caller's set at the end.
class SeparateCpus {
 public:
  SeparateCpus() {
    if (sched_getaffinity(0, sizeof saved_, &saved_) != 0) return;
    for (int cpu = 0; cpu < CPU_SETSIZE && second_ < 0; ++cpu) {
      if (!CPU_ISSET(cpu, &saved_)) continue;
      (first_ < 0 ? first_ : second_) = cpu;
    }
  }
  ~SeparateCpus() {
    if (second_ >= 0) (void)sched_setaffinity(0, sizeof saved_, &saved_);
  }
  void BindPinner() const { Bind(first_); }
  void BindScanner() const { Bind(second_); }

 private:
  void Bind(int cpu) const {
    if (second_ < 0) return;  // one CPU: nothing to separate
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    (void)sched_setaffinity(0, sizeof one, &one);
  }
  cpu_set_t saved_;
  int first_ = -1;
  int second_ = -1;
};

// Runs P in a child and Q here, until `max_rounds`, `budget` or `stop_after` forbidden outcomes.
LitmusResult RunLitmus(PinSide pin, ScanSide scan, std::uint64_t max_rounds,
                       std::chrono::milliseconds budget, std::uint64_t stop_after) {
  void* mapped = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(mapped != MAP_FAILED);
  auto* page = new (mapped) LitmusPage();
  std::fflush(nullptr);
  const SeparateCpus cpus;
  const pid_t child = ForkChild([&] {
    cpus.BindPinner();
    return RunPinner(*page, pin);
  });
  cpus.BindScanner();
  Jitter jitter{0x2545f4914f6cdd1du};
  LitmusResult result;
  const auto deadline = std::chrono::steady_clock::now() + budget;
  for (std::uint64_t round = 1; round <= max_rounds && result.both_zero < stop_after; ++round) {
    if (round % 1024 == 0 && std::chrono::steady_clock::now() > deadline) break;
    page->a.v.store(0, std::memory_order_relaxed);
    page->b.v.store(0, std::memory_order_relaxed);
    Store(page->q_ready, round);  // publishes the reset
    AwaitAtLeast(page->p_ready, round);
    jitter();
    page->b.v.store(1, std::memory_order_relaxed);
    bool fenced = true;
    switch (scan) {
      case ScanSide::kCompilerBarrier:
        CompilerBarrier();
        break;
      case ScanSide::kFullFence:
        fenced = internal::ScanFence(PinFenceMode::kFull);
        break;
      case ScanSide::kHeavyFence:
        fenced = internal::ScanFence(PinFenceMode::kLight);
        break;
    }
    const std::uint64_t saw_a = page->a.v.load(std::memory_order_relaxed);
    AwaitAtLeast(page->p_done, round);
    REQUIRE(fenced);
    if (saw_a == 0 && page->p_saw.v.load(std::memory_order_relaxed) == 0) ++result.both_zero;
    result.rounds = round;
  }
  Store(page->q_ready, kStop);
  CHECK(WaitChild(child) == 0);
  page->~LitmusPage();
  munmap(mapped, 4096);
  return result;
}

constexpr std::uint64_t kFencedRounds = 1'000'000;
constexpr std::chrono::milliseconds kFencedBudget{4000};
constexpr std::chrono::milliseconds kControlBudget{3000};

// A fenced run's rounds: too few (a machine too busy to run both sides) says so. Not a failure:
// the assertion is that no round read both 0.
void NoteRounds(const LitmusResult& r, std::uint64_t wanted) {
  if (r.rounds < wanted) {
    WARN("only " << r.rounds << " rounds (wanted " << wanted
                 << ") in the time budget: a weak run on a busy machine");
  }
}

// The forbidden outcome in a run that should show it: says so when it did not (the machine
// was too busy to run both sides at once, or too slow), rather than passing silently.
void ExpectReorderingShown(const LitmusResult& r, const char* what) {
  if (r.both_zero == 0) {
    WARN(what << ": no store-buffering reordering in " << r.rounds
              << " rounds; this run cannot show that the fenced litmus would catch a missing "
                 "edge");
  } else {
    INFO(what << ": " << r.both_zero << " forbidden outcomes in " << r.rounds << " rounds");
    SUCCEED();
  }
}

TEST_CASE("store buffering across processes: compiler barriers alone allow it",
          "[fence][processes]") {
  const LitmusResult r = RunLitmus(PinSide::kCompilerBarrier, ScanSide::kCompilerBarrier,
                                   ~std::uint64_t{0}, kControlBudget, 100);
  std::printf("litmus control (no fences): %llu of %llu rounds both read 0\n",
              static_cast<unsigned long long>(r.both_zero),
              static_cast<unsigned long long>(r.rounds));
  ExpectReorderingShown(r, "the no-fence control");
}

TEST_CASE("a light pin against the heavy scan fence never reads both 0", "[fence][processes]") {
  if (!HeavyFencesWork() || !kLightPinsBuild) {
    WARN("no light pins here (membarrier GLOBAL_EXPEDITED unavailable, or the TSan build)");
    return;
  }
  const LitmusResult r =
      RunLitmus(PinSide::kLightPinFence, ScanSide::kHeavyFence, kFencedRounds, kFencedBudget, 1);
  std::printf("litmus light pin / heavy scan: %llu of %llu rounds both read 0\n",
              static_cast<unsigned long long>(r.both_zero),
              static_cast<unsigned long long>(r.rounds));
  NoteRounds(r, 10'000);
  REQUIRE(r.both_zero == 0);
}

TEST_CASE("a light pin against a scan with only a full fence is reordered: (3H) is needed",
          "[fence][processes]") {
  if (!HeavyFencesWork() || !kLightPinsBuild) {
    WARN("no light pins here (membarrier GLOBAL_EXPEDITED unavailable, or the TSan build)");
    return;
  }
  const LitmusResult r = RunLitmus(PinSide::kLightPinFence, ScanSide::kFullFence, ~std::uint64_t{0},
                                   kControlBudget, 100);
  std::printf(
      "litmus light pin / full-fence scan (edge removed): %llu of %llu rounds both read 0\n",
      static_cast<unsigned long long>(r.both_zero), static_cast<unsigned long long>(r.rounds));
  ExpectReorderingShown(r, "the light pin against a scanner without the heavy fence");
}

TEST_CASE("a full pin against either scan fence never reads both 0", "[fence][processes]") {
  for (ScanSide scan : {ScanSide::kFullFence, ScanSide::kHeavyFence}) {
    if (scan == ScanSide::kHeavyFence && !HeavyFencesWork()) continue;
    const LitmusResult r =
        RunLitmus(PinSide::kFullPinFence, scan, kFencedRounds / 2, kFencedBudget / 2, 1);
    INFO("scan side " << static_cast<int>(scan) << ": " << r.rounds << " rounds");
    NoteRounds(r, 5'000);
    REQUIRE(r.both_zero == 0);
  }
}

// ---- domains -----------------------------------------------------------------------------------

absl::Status SetAll(Atom& atom, const std::string& prefix) {
  return atom
      .swap([&](Transaction& tx) -> absl::Status {
        for (int k = 0; k < 50; ++k) {
          if (absl::Status s = tx.set(absl::StrCat("k", k), absl::StrCat(prefix, k)); !s.ok()) {
            return s;
          }
        }
        return absl::OkStatus();
      })
      .status();
}

std::map<std::string, std::string> Contents(const Snapshot& snapshot) {
  std::map<std::string, std::string> out;
  for (int k = 0; k < 50; ++k) {
    const std::string key = absl::StrCat("k", k);
    if (std::optional<std::string_view> v = snapshot.map().get(key)) out[key] = std::string(*v);
  }
  return out;
}

TEST_CASE("a process without the heavy fence pins fully and never advances a light domain",
          "[fence][processes]") {
  if (!HeavyFencesWork()) {
    WARN("membarrier GLOBAL_EXPEDITED is unavailable here: every domain is kFull");
    return;
  }
  TempDir dir;
  const std::string path = dir.File("light.atomap");
  absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions());
  REQUIRE(domain.ok());
  REQUIRE(domain->stats().light_pins);
  CHECK(domain->stats().this_process_advances_epoch);
  CHECK(domain->stats().this_process_pins_light == kLightPinsBuild);
  Atom atom = *domain->atom("a");
  REQUIRE(SetAll(atom, "v0-").ok());

  struct Pinned {
    std::uint64_t epoch_before_swaps;
    std::uint64_t epoch_after_swaps;
    std::uint64_t pending_blocks;
    int pins_light;
    int advances;
  };
  ReportPipe reports;
  Gate release;
  std::fflush(nullptr);
  const pid_t child = ForkChild([&] {
    internal::SetHeavyFencesUnavailableForTesting(true);
    absl::StatusOr<Domain> mine = Domain::Open(path, SmallOptions());
    if (!mine.ok()) return 10;
    const DomainStats before = mine->stats();
    if (!before.light_pins || before.this_process_advances_epoch) return 11;
    if (PinsAreLight()) return 12;
    Atom a = *mine->atom("a");
    for (int i = 0; i < 300; ++i) {
      if (!SetAll(a, absl::StrCat("c", i, "-")).ok()) return 13;
    }
    const DomainStats after = mine->stats();
    absl::StatusOr<Snapshot> pinned = a.load();  // a full pin, at G
    if (!pinned.ok()) return 14;
    const std::map<std::string, std::string> seen = Contents(*pinned);
    reports.Send(Pinned{before.global_epoch, after.global_epoch, after.pending_garbage_blocks,
                        PinsAreLight() ? 1 : 0, after.this_process_advances_epoch ? 1 : 0});
    release.Wait();
    // The parent rewrote every key many times and reclaimed: what this pin reads is unchanged.
    if (Contents(*pinned) != seen) return 15;
    return 0;
  });
  reports.CloseWriteEnd();
  std::optional<Pinned> pinned = reports.Receive<Pinned>();
  REQUIRE(pinned.has_value());
  CHECK(pinned->epoch_after_swaps == pinned->epoch_before_swaps);  // 300 swaps, no advance
  CHECK(pinned->pending_blocks > 0);
  CHECK(pinned->pins_light == 0);
  CHECK(pinned->advances == 0);
  // This process advances (heavy fence), and sees the child's full pin: G passes it by one.
  for (int i = 0; i < 300; ++i) REQUIRE(SetAll(atom, absl::StrCat("p", i, "-")).ok());
  const DomainStats held = domain->stats();
  CHECK(held.global_epoch <= pinned->epoch_after_swaps + 1);
  CHECK(held.any_pinned);
  CHECK(held.oldest_pinned_pid == static_cast<std::uint32_t>(child));
  release.Open();
  CHECK(WaitChild(child) == 0);
  for (int i = 0; i < 300; ++i) REQUIRE(SetAll(atom, absl::StrCat("q", i, "-")).ok());
  CHECK(domain->stats().global_epoch >= pinned->epoch_after_swaps + 2);
}

TEST_CASE("ReclaimForSpace names the missing heavy fence", "[fence][processes]") {
  if (!HeavyFencesWork()) {
    WARN("membarrier GLOBAL_EXPEDITED is unavailable here: every domain is kFull");
    return;
  }
  TempDir dir;
  const std::string path = dir.File("small.atomap");
  const Options small = SmallOptions(16, 16, DomainKind::kFile, std::uint64_t{8} << 20);
  REQUIRE(Domain::Open(path, small).ok());  // created light, then closed
  ReportPipe reports;
  std::fflush(nullptr);
  const pid_t child = ForkChild([&] {
    internal::SetHeavyFencesUnavailableForTesting(true);
    absl::StatusOr<Domain> mine = Domain::Open(path, small);
    if (!mine.ok()) return 10;
    Atom a = *mine->atom("a");
    std::string value(4000, 'x');
    for (int i = 0; i < 100'000; ++i) {
      value[i % value.size()] = static_cast<char>('a' + i % 26);  // a new version each time
      absl::StatusOr<Snapshot> s = a.swap([&](Transaction& tx) { return tx.set("k", value); });
      if (s.ok()) continue;
      char message[256] = {};
      std::snprintf(message, sizeof message, "%s", std::string(s.status().message()).c_str());
      reports.Send(message, sizeof message);
      return absl::IsResourceExhausted(s.status()) ? 0 : 11;
    }
    return 12;  // never full: garbage was freed after all
  });
  reports.CloseWriteEnd();
  char message[256] = {};
  const bool received = reports.Receive(message, sizeof message);
  CHECK(WaitChild(child) == 0);
  REQUIRE(received);
  INFO(message);
  CHECK(std::string(message).find("cannot advance the epoch") != std::string::npos);
}

TEST_CASE("a kFull domain makes a capable process pin fully while attached", "[fence][processes]") {
  if (!HeavyFencesWork() || !kLightPinsBuild) {
    WARN("no light pins here (membarrier GLOBAL_EXPEDITED unavailable, or the TSan build)");
    return;
  }
  TempDir dir;
  const std::string path = dir.File("full.atomap");
  std::fflush(nullptr);
  const pid_t creator = ForkChild([&] {
    internal::SetHeavyFencesUnavailableForTesting(true);
    absl::StatusOr<Domain> created = Domain::Open(path, SmallOptions());
    if (!created.ok()) std::fprintf(stderr, "creator: %s\n", created.status().ToString().c_str());
    return created.ok() && !created->stats().light_pins ? 0 : 1;
  });
  REQUIRE(WaitChild(creator) == 0);
  std::optional<PinFenceAttachment> light_elsewhere(PinFenceMode::kLight);  // e.g. another domain
  REQUIRE(PinsAreLight());
  {
    absl::StatusOr<Domain> full = Domain::Open(path, SmallOptions());
    REQUIRE(full.ok());
    CHECK_FALSE(full->stats().light_pins);
    CHECK(full->stats().this_process_advances_epoch);
    CHECK_FALSE(PinsAreLight());
    Atom atom = *full->atom("a");
    for (int i = 0; i < 200; ++i) REQUIRE(SetAll(atom, absl::StrCat("v", i)).ok());
    CHECK(full->stats().global_epoch > 0);  // full fences: this process advances it
  }
  CHECK(PinsAreLight());  // the kFull domain is closed
}

TEST_CASE("a child of fork() pins fully until it attaches, then registers again",
          "[fence][processes]") {
  if (!HeavyFencesWork() || !kLightPinsBuild) {
    WARN("no light pins here (membarrier GLOBAL_EXPEDITED unavailable, or the TSan build)");
    return;
  }
  TempDir dir;
  const std::string path = dir.File("forked.atomap");
  absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions());
  REQUIRE(domain.ok());
  REQUIRE(PinsAreLight());
  std::fflush(nullptr);
  const pid_t child = ForkChild([&] {
    if (PinsAreLight()) return 1;  // the inherited handle counts for nothing here
    absl::StatusOr<Domain> mine = Domain::Open(path, SmallOptions());
    if (!mine.ok()) return 2;
    return PinsAreLight() ? 0 : 3;
  });
  CHECK(WaitChild(child) == 0);
  CHECK(PinsAreLight());
}

TEST_CASE("a light domain's scan without the heavy fence advances nothing", "[fence]") {
  alignas(64) internal::SharedU64 global{};
  std::vector<internal::Slot> slots(4);
  internal::EpochTable light(&global, slots.data(), 4, nullptr, nullptr, nullptr,
                             PinFenceMode::kLight);
  internal::SetHeavyFencesUnavailableForTesting(true);
  const std::optional<internal::EpochBlocker> refused = light.TryAdvance();
  internal::SetHeavyFencesUnavailableForTesting(false);
  REQUIRE(refused.has_value());
  CHECK(refused->no_heavy_fence);
  CHECK(light.CurrentEpoch() == 0);
  if (HeavyFencesWork()) {
    CHECK_FALSE(light.TryAdvance().has_value());
    CHECK(light.CurrentEpoch() == 1);
  }
}

TEST_CASE("a damaged pin_fence field is refused at open, naming it", "[fence]") {
  TempDir dir;
  const std::string path = dir.File("damaged.atomap");
  REQUIRE(Domain::Open(path, SmallOptions()).ok());
  {
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    const std::uint32_t bad = 7;
    file.seekp(offsetof(internal::Header, pin_fence));
    file.write(reinterpret_cast<const char*>(&bad), sizeof bad);
  }
  absl::StatusOr<Domain> opened = Domain::Open(path, SmallOptions());
  REQUIRE_FALSE(opened.ok());
  CHECK(opened.status().code() == absl::StatusCode::kDataLoss);
  CHECK(opened.status().message().find("pin_fence") != std::string_view::npos);
}

}  // namespace
}  // namespace atomap

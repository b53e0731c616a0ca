#include "common/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

namespace atomap::internal {
namespace {

// crash_point_detail::armed_word: kUnread until ATOMAP_CRASH_AT was read (so the first point
// reached reads it), then 0 (disarmed) or 1 + the armed site.
constexpr std::uint32_t kUnread = 0xffffffffu;

// Hits of the armed site still to go before the kill (the kill is at the hit that takes it to 0).
std::atomic<std::uint64_t> remaining{0};
std::once_flag env_once;

void Store(std::uint32_t word) {
  __atomic_store_n(&crash_point_detail::armed_word, word, __ATOMIC_RELEASE);
}
std::uint32_t Load() { return __atomic_load_n(&crash_point_detail::armed_word, __ATOMIC_ACQUIRE); }

// Parses ATOMAP_CRASH_AT=<name>:<n>. A malformed value is reported and ignored: a test that
// meant to crash then fails visibly (its process is not killed) rather than crashing elsewhere.
void ReadEnvironment() {
  std::call_once(env_once, [] {
    if (Load() != kUnread) return;  // armed or disarmed explicitly before the first point
    const char* value = std::getenv("ATOMAP_CRASH_AT");
    if (value == nullptr || *value == '\0') {
      Store(0);
      return;
    }
    const std::string_view spec(value);
    const std::size_t colon = spec.rfind(':');
    std::optional<CrashSite> site = CrashSiteFromName(spec.substr(0, colon));
    std::uint64_t nth = 1;
    if (colon != std::string_view::npos) {
      nth = std::strtoull(std::string(spec.substr(colon + 1)).c_str(), nullptr, 10);
    }
    if (!site || nth == 0) {
      std::fprintf(stderr, "atomap: ignoring ATOMAP_CRASH_AT=%s (want <site name>:<n >= 1>)\n",
                   value);
      Store(0);
      return;
    }
    remaining.store(nth, std::memory_order_relaxed);
    Store(static_cast<std::uint32_t>(*site) + 1);
  });
}

}  // namespace

std::uint32_t crash_point_detail::armed_word = kUnread;

std::optional<CrashSite> CrashSiteFromName(std::string_view name) {
  for (std::size_t i = 0; i < kNumCrashSites; ++i) {
    if (crash_point_detail::kNames[i] == name) return static_cast<CrashSite>(i);
  }
  return std::nullopt;
}

bool CrashPointsCompiledIn() {
#if defined(ATOMAP_CRASH_POINTS) && ATOMAP_CRASH_POINTS
  return true;
#else
  return false;
#endif
}

void ArmCrashPoint(CrashSite site, std::uint64_t nth) {
  Store(0);  // no hit counts against the old arming while the count changes
  remaining.store(nth == 0 ? 1 : nth, std::memory_order_relaxed);
  Store(static_cast<std::uint32_t>(site) + 1);
}

void DisarmCrashPoints() { Store(0); }

void CrashPointSlow(CrashSite site) {
  std::uint32_t word = Load();
  if (word == kUnread) {
    ReadEnvironment();
    word = Load();
  }
  if (word != static_cast<std::uint32_t>(site) + 1) return;
  if (remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  raise(SIGKILL);
  _exit(137);  // not reached: SIGKILL cannot be caught, blocked or ignored
}

}  // namespace atomap::internal

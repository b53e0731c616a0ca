#include "common/heavy_fence.h"

#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "common/shared_atomic.h"

namespace atomap::internal {
namespace {

enum class Registration : int { kUnknown, kWorks, kFails };

// Process-local: what HeavyFencesWork() found. Reset in a child of fork() (see the header).
std::atomic<Registration> registration{Registration::kUnknown};
std::atomic<bool> forced_unavailable{false};

long Membarrier(int command) { return syscall(__NR_membarrier, command, 0u, 0); }

// QUERY lists both commands, REGISTER succeeds, and one heavy fence goes through: a seccomp
// filter may allow some commands and not others, so each one this file uses is tried.
Registration Register() {
  const long supported = Membarrier(MEMBARRIER_CMD_QUERY);
  constexpr long kNeeded =
      MEMBARRIER_CMD_GLOBAL_EXPEDITED | MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED;
  if (supported < 0 || (supported & kNeeded) != kNeeded) return Registration::kFails;
  if (Membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) != 0) return Registration::kFails;
  if (Membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0) return Registration::kFails;
  return Registration::kWorks;
}

const bool fork_handler_registered = [] {
  pthread_atfork(nullptr, nullptr,
                 [] { registration.store(Registration::kUnknown, std::memory_order_relaxed); });
  return true;
}();

}  // namespace

bool HeavyFencesWork() {
  (void)fork_handler_registered;
  if (forced_unavailable.load(std::memory_order_relaxed)) return false;
  Registration found = registration.load(std::memory_order_relaxed);
  if (found == Registration::kUnknown) {
    found = Register();
    registration.store(found, std::memory_order_relaxed);
  }
  return found == Registration::kWorks;
}

bool HeavyFence() {
  FullFence();  // the caller's accesses before the call stay before it (F_entry, design.md)
  const bool issued = HeavyFencesWork() && Membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) == 0;
  FullFence();  // and those after it stay after it (F_exit)
  return issued;
}

void SetHeavyFencesUnavailableForTesting(bool unavailable) {
  forced_unavailable.store(unavailable, std::memory_order_relaxed);
}

}  // namespace atomap::internal

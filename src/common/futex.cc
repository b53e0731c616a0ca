#include "common/futex.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

namespace atomap::internal {
namespace {

// Process-local statistics; counted only on the wake path, which is a system call anyway.
std::atomic<std::uint64_t> wake_calls{0};

}  // namespace

void WaitWhileEqual(const SharedU32& word, std::uint32_t expected, absl::Duration timeout) {
  if (timeout <= absl::ZeroDuration()) return;
  const struct timespec ts = absl::ToTimespec(timeout);
  // Shared futex (no FUTEX_PRIVATE_FLAG): the kernel keys it by the file page, not the address.
  // The kernel reads the word itself, so it needs the word's address: a SharedU32 is exactly
  // its u32 (common/shared_word.h), at the same address.
  syscall(SYS_futex, reinterpret_cast<const std::uint32_t*>(&word), FUTEX_WAIT, expected,
          timeout == absl::InfiniteDuration() ? nullptr : &ts, nullptr, 0);
}

void WakeAll(SharedU32& word) {
  wake_calls.fetch_add(1, std::memory_order_relaxed);
  word.NotifyAll();
}

std::uint64_t WakeCallsInThisProcess() { return wake_calls.load(std::memory_order_relaxed); }

}  // namespace atomap::internal

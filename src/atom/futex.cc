#include "atom/futex.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/shared_atomic.h"

namespace atomap::internal {

void WaitWhileEqual(std::uint32_t* word, std::uint32_t expected, absl::Duration timeout) {
  if (timeout <= absl::ZeroDuration()) return;
  const struct timespec ts = absl::ToTimespec(timeout);
  // Shared futex (no FUTEX_PRIVATE_FLAG): the kernel keys it by the file page, not the address.
  syscall(SYS_futex, word, FUTEX_WAIT, expected, timeout == absl::InfiniteDuration() ? nullptr : &ts,
          nullptr, 0);
}

void WakeAll(std::uint32_t* word) { Shared(*word).notify_all(); }

}  // namespace atomap::internal

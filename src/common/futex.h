// Waiting on a 32-bit word of the shared file until another process changes it.
//
// boost::atomics::ipc_atomic_ref<uint32_t> has a native cross-process notify_all (a shared,
// not process-private, FUTEX_WAKE), but Boost 1.74 has no timed wait, and wait_for_change needs a
// timeout. WaitWhileEqual is that timed wait: FUTEX_WAIT without FUTEX_PRIVATE_FLAG, keyed by the
// file page, so it pairs with ipc_atomic_ref::notify_all in any process mapping the file.
//
// In src/common (not src/atom) because both the atoms layer and the survivor that recovers a
// dead writer's publication (src/intent/intent_recovery.cc) wake waiters: see
// src/file/change_notification.h.
#ifndef ATOMAP_SRC_COMMON_FUTEX_H_
#define ATOMAP_SRC_COMMON_FUTEX_H_

#include <cstdint>

#include "absl/time/time.h"
#include "common/shared_word.h"

namespace atomap::internal {

// Sleeps while *word == expected, until woken, `timeout` passes, or a signal arrives. Spurious
// returns are allowed: callers re-check their condition. FUTEX_WAIT only reads the word, so this
// works on a read-only mapping too.
void WaitWhileEqual(const SharedU32& word, std::uint32_t expected, absl::Duration timeout);

// Wakes every waiter on `word`, in every process.
void WakeAll(SharedU32& word);

// How many WakeAll calls (futex wake system calls) this process has made: for tests that prove a
// publication skips the wake when nobody waits.
std::uint64_t WakeCallsInThisProcess();

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_COMMON_FUTEX_H_

// Atomic access to words that live in the shared mapping.
//
// Every atomic in the file is a plain integer in a plain struct, accessed through
// boost::atomics::ipc_atomic_ref: it is documented as address-free (safe when the same word is
// mapped at different addresses in different processes), and its 32-bit wait/notify uses the
// futex directly, so a notify in one process wakes a waiter in another. std::atomic_ref's
// wait/notify keeps a process-local waiter table and would skip the wake-up.
#ifndef ATOMAP_SRC_COMMON_SHARED_ATOMIC_H_
#define ATOMAP_SRC_COMMON_SHARED_ATOMIC_H_

#include <boost/atomic/fences.hpp>
#include <boost/atomic/ipc_atomic_ref.hpp>

namespace atomap::internal {

template <class T>
using SharedRef = boost::atomics::ipc_atomic_ref<T>;

// The file format's words are SharedWords (common/shared_word.h), whose accessors name their
// orders. Shared() remains for what is not one of them: the allocator's 128-bit free-list heads,
// and the link words inside blocks (a free block's links, an owned batch's next, and the lane's
// first_batch linked with them) and a cache's words, which share one StoreOwned/link helper.
// Usage: Shared(state->heads[c]).load(kAcquire).
template <class T>
inline SharedRef<T> Shared(T& word) noexcept {
  static_assert(SharedRef<T>::is_always_lock_free, "a shared word must be lock-free");
  return SharedRef<T>(word);
}

inline constexpr auto kRelaxed = boost::memory_order_relaxed;
inline constexpr auto kAcquire = boost::memory_order_acquire;
inline constexpr auto kRelease = boost::memory_order_release;
inline constexpr auto kAcqRel = boost::memory_order_acq_rel;
inline constexpr auto kSeqCst = boost::memory_order_seq_cst;

// A full fence: orders a preceding store before following loads (StoreLoad), which no
// acquire/release pair does. Fences are instructions, not words, so they need no address.
inline void FullFence() noexcept { boost::atomics::atomic_thread_fence(kSeqCst); }

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_COMMON_SHARED_ATOMIC_H_

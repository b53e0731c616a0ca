// SharedWord<T>: one word of the shared file, whose every access names its memory order.
//
//   struct AtomRecord { SharedU64 root; ... };            // the word itself lives in the file
//   const Offset v = record.root.LoadAcquire();           // (1) synchronises with the CAS (2)
//   if (record.root.CasSeqCst(expected, desired)) ...     // (2)
//
// A SharedWord IS the file-resident word: same size and alignment as T, standard layout, so a
// struct of the file format declares its shared words with it and keeps its byte layout. Its only
// accessors are named for their ordering (as LevelDB's skiplist names NoBarrier_/Acquire_), so a
// reader sees at each call site which edge it is, and no call site can forget to pick one. The
// set is what the code uses; add one when a new access needs it, never a generic `load(order)`.
//
// CAS naming: the name gives the success order; the failure order is relaxed unless the name
// gives a second one (CasReleaseAcquire: release on success, acquire on failure). Cas* is
// compare_exchange_strong, CasWeak* compare_exchange_weak (for retry loops). On failure
// `expected` is updated to the value seen, as with std::atomic.
//
// Plain access: InitPlain writes the word without atomicity, for a structure nobody else can see
// yet (a file being formatted, a header image on the stack). Copying a SharedWord copies its bytes
// plainly too (the struct stays trivially copyable, so a header can be read into a local image
// with pread and validated): do it only on such private images, or where nobody else can be
// accessing the words (a repair under the exclusive lock). A private image is read with
// LoadRelaxed, which there is a plain load.
//
// All accesses go through boost::atomics::ipc_atomic_ref (common/shared_atomic.h says why).
//
// Thread safety: every accessor except InitPlain and copying is atomic, from any thread of any
// process mapping the word.
#ifndef ATOMAP_SRC_COMMON_SHARED_WORD_H_
#define ATOMAP_SRC_COMMON_SHARED_WORD_H_

#include <cstdint>
#include <type_traits>

#include "common/shared_atomic.h"

namespace atomap::internal {

template <class T>
class SharedWord {
  static_assert(std::is_integral_v<T> && std::is_unsigned_v<T>, "a shared word is an unsigned int");
  static_assert(SharedRef<T>::is_always_lock_free, "a shared word must be lock-free");

 public:
  SharedWord() = default;  // trivial: the file's bytes are the word's value

  // REQUIRES: nobody else can see the word (a new file being formatted, a private image).
  void InitPlain(T value) noexcept { value_ = value; }

  T LoadRelaxed() const noexcept { return Ref().load(kRelaxed); }
  T LoadAcquire() const noexcept { return Ref().load(kAcquire); }
  T LoadSeqCst() const noexcept { return Ref().load(kSeqCst); }

  void StoreRelaxed(T value) noexcept { Ref().store(value, kRelaxed); }
  void StoreRelease(T value) noexcept { Ref().store(value, kRelease); }

  bool CasRelease(T& expected, T desired) noexcept {
    return Ref().compare_exchange_strong(expected, desired, kRelease, kRelaxed);
  }
  bool CasReleaseAcquire(T& expected, T desired) noexcept {
    return Ref().compare_exchange_strong(expected, desired, kRelease, kAcquire);
  }
  bool CasAcqRel(T& expected, T desired) noexcept {
    return Ref().compare_exchange_strong(expected, desired, kAcqRel, kRelaxed);
  }
  bool CasSeqCst(T& expected, T desired) noexcept {
    return Ref().compare_exchange_strong(expected, desired, kSeqCst, kRelaxed);
  }
  bool CasWeakRelaxed(T& expected, T desired) noexcept {
    return Ref().compare_exchange_weak(expected, desired, kRelaxed, kRelaxed);
  }
  bool CasWeakRelease(T& expected, T desired) noexcept {
    return Ref().compare_exchange_weak(expected, desired, kRelease, kRelaxed);
  }
  bool CasWeakSeqCst(T& expected, T desired) noexcept {
    return Ref().compare_exchange_weak(expected, desired, kSeqCst, kRelaxed);
  }

  T ExchangeAcquire(T desired) noexcept { return Ref().exchange(desired, kAcquire); }

  // Each returns the value before the addition.
  T FetchAddRelaxed(T delta) noexcept { return Ref().fetch_add(delta, kRelaxed); }
  T FetchAddSeqCst(T delta) noexcept { return Ref().fetch_add(delta, kSeqCst); }

  // Wakes every futex waiter on this word, in every process (a shared FUTEX_WAKE: common/futex.h
  // has the timed wait that pairs with it).
  void NotifyAll() noexcept
    requires(sizeof(T) == 4)
  {
    Ref().notify_all();
  }

 private:
  // The loads are const for their callers; the atomic reference needs a mutable lvalue.
  SharedRef<T> Ref() const noexcept { return SharedRef<T>(const_cast<T&>(value_)); }

  alignas(SharedRef<T>::required_alignment) T value_;
};

using SharedU32 = SharedWord<std::uint32_t>;
using SharedU64 = SharedWord<std::uint64_t>;

// The file format depends on these: a SharedWord occupies exactly its word.
static_assert(sizeof(SharedU32) == 4 && alignof(SharedU32) == 4);
static_assert(sizeof(SharedU64) == 8 && alignof(SharedU64) == 8);
static_assert(std::is_standard_layout_v<SharedU64> && std::is_trivially_copyable_v<SharedU64>);
static_assert(std::is_standard_layout_v<SharedU32> && std::is_trivially_copyable_v<SharedU32>);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_COMMON_SHARED_WORD_H_

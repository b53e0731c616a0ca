// The two sides of the pin's store-load fence (EpochTable (1), (RR1) and their partner (3)),
// and which of them may be light: an asymmetric fence (docs/design.md, "The asymmetric fence").
//
// A pin stores its announcement and then reads roots; a scan reads the announcements and then
// advances the epoch. Each side needs a full fence between its store and its loads, unless one
// side's fence is heavy: membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) (common/heavy_fence.h)
// makes every thread of every registered process execute a full barrier, so that a registered
// pinner's compiler barrier acts as a full fence with respect to that scan. PinFence is the
// pinner's side (every snapshot: the hot one), ScanFence the scanner's (once per TryAdvance).
//
// Invariants
//  (PF1) Pins are light (PinsAreLight) only in a process for which HeavyFencesWork() holds (it
//        is registered, so every heavy fence reaches its threads) and which has no domain of
//        mode kFull attached: a kFull domain may have scanners that issue full fences only.
//  (PF2) In a domain of mode kLight, every scan that may advance the epoch or free issues the
//        heavy fence first; a scan whose heavy fence failed (ScanFence false) advances nothing
//        and frees nothing. In a kFull domain, scans issue a full fence and every pin is full
//        (PF1 in each process attached to it).
//  (PF3) The TSan build pins with full fences always (TSan does not model membarrier); its
//        scans still issue the heavy fence in kLight domains, for other processes' light pins.
//
// Memory ordering
//  (1L) PinFence when light: std::atomic_signal_fence (compiler barrier) in place of (1) and
//       (RR1)'s seq_cst fence; partner (3H). The heavy fence puts a full barrier in the pinning
//       thread somewhere in its execution during the scan's call; the proofs of E1 and RR3 for
//       this case are in docs/design.md and epoch/epoch_table.h.
//  (3H) ScanFence in a kLight domain: seq_cst fence, membarrier GLOBAL_EXPEDITED, seq_cst fence
//       (F_entry, the kernel's barriers in every registered thread, F_exit); partner (1L), and
//       (1) / (RR1) of full pinners (their seq_cst fence and F_entry / F_exit are in S).
//
// Usage (the epoch table's):
//   announcement.StoreRelaxed(Announcement::Pinned(epoch)); PinFence(); ... read roots
//   global = G.LoadRelaxed(); if (!ScanFence(mode)) return NoHeavyFence(); ... read pins
//
// Thread safety: safe to call from any thread. PinFenceAttachment objects are per domain
// handle; their construction and destruction take a process-wide mutex.
#ifndef ATOMAP_SRC_EPOCH_PIN_FENCE_H_
#define ATOMAP_SRC_EPOCH_PIN_FENCE_H_

#include <atomic>
#include <cstdint>

#include "common/heavy_fence.h"
#include "common/shared_atomic.h"
#include "file/header.h"

namespace atomap::internal {

#if defined(__SANITIZE_THREAD__)
inline constexpr bool kLightPinsBuild = false;  // (PF3)
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
inline constexpr bool kLightPinsBuild = false;  // (PF3)
#else
inline constexpr bool kLightPinsBuild = true;
#endif
#else
inline constexpr bool kLightPinsBuild = true;
#endif

namespace pin_fence_internal {
// (PF1): written by PinFenceAttachment under its mutex, read relaxed by every pin. Reads need
// no order: a thread pinning in a domain got the handle after its attachment stored false (if
// it was kFull), and true is stored again only after that domain's handle is gone.
inline std::atomic<bool> light_pins{false};
}  // namespace pin_fence_internal

// Whether this process's pins use the compiler barrier (1L) now.
inline bool PinsAreLight() noexcept {
  return kLightPinsBuild && pin_fence_internal::light_pins.load(std::memory_order_relaxed);
}

// (1), (RR1), or (1L) when light: between a pin's announcement store and its first root (or G)
// load. One predictable branch on a process-wide flag.
inline void PinFence() noexcept {
  if (PinsAreLight()) [[likely]] {
    std::atomic_signal_fence(std::memory_order_seq_cst);  // (1L), partner (3H)
  } else {
    FullFence();  // (1), (RR1), partner (3) or (3H)
  }
}

// (3), or (3H) in a kLight domain: between a scan's load of G and its loads of the
// announcements. False when the heavy fence failed: the scan must not advance or free (PF2).
[[nodiscard]] inline bool ScanFence(PinFenceMode domain_mode) noexcept {
  if (domain_mode == PinFenceMode::kLight) return HeavyFence();  // (3H)
  FullFence();                                                   // (3)
  return true;
}

// Whether this process can advance the epoch of a domain of this mode at all (statistics and
// messages; a scan asks ScanFence, which can also fail later).
inline bool MayAdvance(PinFenceMode domain_mode) {
  return domain_mode == PinFenceMode::kFull || HeavyFencesWork();
}

// A domain handle's part in PF1: made when the handle attaches (registering this process for
// heavy fences on the first attach), destroyed when it detaches. While any handle of a kFull
// domain is attached, this process pins with full fences. In a child of fork() an inherited
// attachment counts for nothing (the child starts with none, and full pins until it attaches).
class PinFenceAttachment {
 public:
  explicit PinFenceAttachment(PinFenceMode domain_mode);
  ~PinFenceAttachment();
  PinFenceAttachment(const PinFenceAttachment&) = delete;
  PinFenceAttachment& operator=(const PinFenceAttachment&) = delete;

 private:
  PinFenceMode mode_;
  std::uint64_t fork_generation_;
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_EPOCH_PIN_FENCE_H_

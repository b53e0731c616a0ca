// SlotTable: the domain's participant slots, and who is alive.
//
// A participant (a process, or one thread of it) owns one slot for as long as it is attached.
// Ownership is an exclusive OFD lock on SlotLockByte(i) of the writers' lock file PATH.lock (never
// of PATH, which readers can open and lock), held through a file description of the
// participant's own: the kernel drops it when the description closes, which happens when the
// process dies however it dies. The slot's state word only says what the last owner did; the lock
// says whether it is still there. A slot whose lock can be taken while its state says "owned"
// belonged to a participant that died: its next claimer takes it over (runs the takeover hook so
// that later layers recover what the dead owner held) and reuses it.
//
// Each slot is a Slot (file/slot.h, kSlotBytes): its SlotHead; the reclamation area and the
// allocator's cache after it, both zeroed whenever the slot is claimed; the combining mailbox,
// settled (not zeroed) at a claim.
//
// Invariants
//  (S1) Only the holder of slot i's lock writes slot i's head and areas (in-process domains: only
//       the thread whose CAS took the state from free to owned).
//  (S2) state == kOwned from the moment the owner's head and areas are initialised until it
//       releases the slot; a live owner always holds the lock while state == kOwned.
//  (S3) owner_token strictly increases with each claim of a slot: successive owners differ even
//       when the kernel reuses a pid.
//  (S4) High water: every slot ever claimed is below the header's slot_high_water, which only
//       grows, never past the capacity. A claimer raises it (5) before it publishes its claim
//       (1), hence before the slot's first pin; an opener that may write raises it over every
//       slot not free (CoverClaimedSlots: a file upgraded from format 2, which had no such word,
//       or one whose word damage lowered). Epoch scans read only the pins below it
//       (epoch/epoch_table.h (8)).
//
// Memory ordering
//  (1) Claim: release store of state = kOwned after the head and areas are written; synchronises
//      with (2) of a later claimer or a reader of the table (InUse, the reclamation layer).
//  (2) acquire load of state (scan, and re-read under the lock).
//  (3) Release: release store of state = kFree before the lock is dropped; synchronises with (2)
//      of the next claimer.
//  In-process domains: (4) acq_rel CAS of state from kFree to kOwned replaces the lock; its
//  acquire half synchronises with (3).
//  (6) Claim: release stores settling the mailbox (SettleMailbox), acked before post; partner
//      the acquire load of post by a combiner (atom/combine.cc (E2)).
//  (5) Claim: seq_cst read-modify-write raising slot_high_water past the slot, sequenced before
//      the state store (1) and so before the owner's first pin and its fence (EpochTable (1));
//      partner EpochTable (8): a scan whose fence follows that pin's fence sees the raise.
//
// Thread safety: safe to use from any thread of any process that maps the file. The takeover hook
// is set once, before the table is shared between threads.
#ifndef ATOMAP_SRC_FILE_SLOT_TABLE_H_
#define ATOMAP_SRC_FILE_SLOT_TABLE_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/layout.h"
#include "common/shared_word.h"
#include "file/slot.h"

namespace atomap::internal {

enum class SlotState : std::uint32_t {
  kFree = 0,
  kOwned = 1,
};

class SlotTable;

// One claimed slot. Move-only; releases the slot (and closes its own description, if it has one)
// when destroyed. Belongs to one thread at a time.
class SlotLease {
 public:
  SlotLease() = default;
  SlotLease(SlotLease&& other) noexcept;
  SlotLease& operator=(SlotLease&& other) noexcept;
  SlotLease(const SlotLease&) = delete;
  SlotLease& operator=(const SlotLease&) = delete;
  ~SlotLease() { Release(); }

  bool held() const { return table_ != nullptr; }
  // REQUIRES: held().
  std::uint32_t index() const { return index_; }
  std::uint64_t token() const { return token_; }
  // The file description whose lock owns the slot (-1 for in-process domains).
  int lock_fd() const { return lock_fd_; }

  // Marks the slot free and drops its lock. No-op if not held.
  void Release();
  // Forgets the slot without releasing it: for a copy inherited by a child of fork(), whose
  // parent still owns the slot and shares the lock's file description. Closes an owned
  // description (the parent's reference keeps the lock).
  void Abandon();

 private:
  friend class SlotTable;
  SlotLease(SlotTable* table, std::uint32_t index, std::uint64_t token, int lock_fd, bool owns_fd)
      : table_(table), index_(index), token_(token), lock_fd_(lock_fd), owns_fd_(owns_fd) {}

  SlotTable* table_ = nullptr;
  std::uint32_t index_ = 0;
  std::uint64_t token_ = 0;
  int lock_fd_ = -1;
  bool owns_fd_ = false;
};

class SlotTable {
 public:
  // Runs in the claimer, under the dead slot's lock, before the slot is reset: later layers
  // recover the dead owner's allocator cache and retired garbage here. It may run again for the
  // same dead owner if the claimer itself dies inside it, so it must be idempotent.
  using TakeoverHook = std::function<void(std::uint32_t slot, const SlotHead& dead_owner)>;

  static constexpr std::uint64_t RegionBytes(std::uint32_t capacity) {
    return std::uint64_t{capacity} * kSlotBytes;
  }

  // `region` is the table's first byte in this process's mapping. `use_locks` is false for an
  // in-process domain (no file, no other process): claims are then a CAS on the state word.
  // `high_water`: the header's slot_high_water (S4).
  SlotTable(Slot* region, std::uint32_t capacity, bool use_locks, SharedU32* high_water)
      : slots_(region), capacity_(capacity), use_locks_(use_locks), high_water_(high_water) {}

  void set_takeover_hook(TakeoverHook hook) { takeover_hook_ = std::move(hook); }

  // Claims a slot for a participant whose own file description (of PATH.lock) is `lock_fd` (ignored
  // without locks). Free slots first; then slots of dead owners (taken over). ResourceExhausted
  // naming the capacity when every slot has a live owner. `owns_fd`: the lease closes lock_fd at
  // release. REQUIRES: lock_fd is writable and holds no slot lock of this table already.
  absl::StatusOr<SlotLease> Claim(int lock_fd, bool owns_fd);

  std::uint32_t capacity() const { return capacity_; }
  // REQUIRES: slot < capacity().
  Slot& At(std::uint32_t slot) const { return slots_[slot]; }
  SlotHead& Head(std::uint32_t slot) const { return slots_[slot].head; }
  internal::ReclaimArea& Reclaim(std::uint32_t slot) const { return slots_[slot].reclaim; }
  ParticipantCache& AllocCache(std::uint32_t slot) const { return slots_[slot].alloc_cache; }

  // Takes `slot` over if its owner is dead (its lock is free while its state says owned): runs
  // the takeover hook, marks the slot free and drops the lock again. Returns whether it did.
  // Used by a participant whose reclamation a dead owner's pin holds back. `lock_fd` is the
  // caller's own description. Always false without locks (in-process: nobody else can die).
  absl::StatusOr<bool> TakeOverIfDead(std::uint32_t slot, int lock_fd);

  struct InUseSlot {
    std::uint32_t index;
    std::uint32_t pid;
  };
  // Slots whose state says owned (a dead owner's slot is listed until someone takes it over).
  std::vector<InUseSlot> InUse() const;

  // Raises the high water over every slot whose state is not free (S4). For an opener that may
  // write; safe while others claim (the word only grows).
  void CoverClaimedSlots();
  // Slots below the high water (S4): those an epoch scan reads.
  std::uint32_t high_water() const { return high_water_->LoadRelaxed(); }

 private:
  friend class SlotLease;
  absl::StatusOr<SlotLease> ClaimLocked(int lock_fd, bool owns_fd);
  absl::StatusOr<SlotLease> ClaimUnlocked();
  // REQUIRES: the caller holds slot's lock (or won the state CAS).
  std::uint64_t Adopt(std::uint32_t slot);
  // Zeroes everything after the head (the areas later layers format on claim) but the combining
  // mailbox, which it settles.
  void ClearAreas(std::uint32_t slot);
  // A dead or departed owner's mailbox made inert: no batch of it is pending any more (the one it
  // may have posted can still be applied by a combiner that read it already, combine.h), and
  // the next owner's sequence numbers start above it.
  static void SettleMailbox(CombineMailbox& mailbox);
  // Runs the takeover hook if slot's state says owned. REQUIRES: the caller holds slot's lock.
  void RecoverIfOwned(std::uint32_t slot);
  void Release(std::uint32_t slot, int lock_fd);
  // (5): makes the high water at least `end`.
  void RaiseHighWater(std::uint32_t end);
  absl::Status Exhausted() const;

  Slot* const slots_;
  const std::uint32_t capacity_;
  const bool use_locks_;
  SharedU32* const high_water_;
  TakeoverHook takeover_hook_;
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_FILE_SLOT_TABLE_H_

// EpochTable: the domain's global epoch and every participant's announced (pinned) epoch.
//
// A participant announces the epoch it is pinned at before it reads any root, and clears the
// announcement when it is done reading. The global epoch advances only when every announcement
// has caught up with it; garbage retired at epoch r is freed once the global epoch reaches r + 2.
// This is the protocol of crossbeam-epoch and xenium's generic_epoch_based, in a shared file.
//
// Invariants
//  (E1) The global epoch G only increases, one step at a time, and only after a scan that found
//       every pinned announcement equal to G. Hence while a participant stays pinned at e,
//       G <= e + 1.
//  (E2) Nothing of a version (root word, node, blob) is read by a participant that is not pinned.
//  (E3) A block unlinked by a root CAS is retired with the epoch r read after that CAS (see
//       RetireList), and freed only once G >= r + 2 (SafeToFree). By (E1), a participant that
//       could still hold the block was pinned at <= r and has since unpinned.
//  (E4) An announcement is written only by its slot's owner (or by a survivor that has taken a
//       dead owner's slot over, under its lock).
//
// Memory ordering
//  (1) Pin: relaxed store of the announcement, then a seq_cst fence, before any root is read:
//      the announcement is ordered before the reads; partner (3). This is the edge whose absence
//      gave LMDB its reader-table SIGSEGV (ITS#7970).
//  (2) Unpin: release store of 0: every read made while pinned happens-before a scanner's
//      acquire load (4) that sees the slot unpinned, and so before any free that follows;
//      partner (4).
//  (3) TryAdvance: seq_cst fence before the scan; partner (1): a pin whose fence precedes ours
//      is seen by the scan; one whose fence follows ours reads roots written before our scan.
//  (4) acquire load of each announcement during the scan; partner (2).
//  (5) release CAS of G from g to g + 1, after the scan; partner (6).
//  (6) acquire load of G in SafeToFree / CurrentEpoch; partner (5): the frees a reclaimer makes
//      after seeing G >= r + 2 happen after every unpin the advancing scans observed.
//  (7) seq_cst load of G in EpochAfterUnlink, after the seq_cst root CAS that unlinked the
//      garbage: both are in the single total order, so the stamp is read after the unlink.
//
// Thread safety: safe to use from any thread of any process that maps the file. Each
// announcement word belongs to one participant (one thread at a time).
#ifndef ATOMAP_SRC_EPOCH_EPOCH_TABLE_H_
#define ATOMAP_SRC_EPOCH_EPOCH_TABLE_H_

#include <cstdint>
#include <optional>

#include "common/layout.h"
#include "common/shared_word.h"
#include "file/slot.h"

namespace atomap::internal {

// What a slot's announcement word holds: 0 when not pinned, else (epoch << 1) | 1.
class Announcement {
 public:
  static constexpr std::uint64_t kUnpinned = 0;
  static constexpr std::uint64_t Pinned(std::uint64_t epoch) { return (epoch << 1) | 1; }
  static constexpr bool IsPinned(std::uint64_t word) { return (word & 1) != 0; }
  static constexpr std::uint64_t EpochOf(std::uint64_t word) { return word >> 1; }
};
static_assert(Announcement::EpochOf(Announcement::Pinned(41)) == 41);
static_assert(!Announcement::IsPinned(Announcement::kUnpinned));

// The result of a scan that could not advance: who holds the epoch back.
struct EpochBlocker {
  std::uint32_t slot;
  std::uint64_t pinned_epoch;
};

class EpochTable {
 public:
  // `global_epoch`: the header's word. `slots`: the slot table; each slot's announcement word is
  // its head's pinned_epoch (file/slot.h).
  EpochTable(SharedU64* global_epoch, Slot* slots, std::uint32_t capacity)
      : global_epoch_(global_epoch), slots_(slots), capacity_(capacity) {}

  // Announces the current epoch in `slot` and returns it.
  // REQUIRES: the caller owns `slot` and it is not pinned.
  std::uint64_t Pin(std::uint32_t slot) const;
  // REQUIRES: the caller owns `slot`.
  void Unpin(std::uint32_t slot) const;

  std::uint64_t CurrentEpoch() const;
  // The epoch to stamp garbage unlinked by a root CAS that just succeeded: a seq_cst load, so
  // that in the model it is ordered after the seq_cst CAS (E3). (7)
  std::uint64_t EpochAfterUnlink() const;
  // True when garbage retired at `retired_at` can no longer be reached by any participant.
  bool SafeToFree(std::uint64_t retired_at) const { return CurrentEpoch() >= retired_at + 2; }

  // Advances G by one if every pinned participant has caught up with it. Returns the blocker
  // otherwise (a stopped or dead participant shows up here; the caller decides what to do).
  std::optional<EpochBlocker> TryAdvance() const;

  // The oldest announced epoch and its slot, if anyone is pinned (statistics).
  std::optional<EpochBlocker> OldestPinned() const;

  // Clears a dead owner's announcement. REQUIRES: the caller holds the slot's lock.
  void ClearDeadPin(std::uint32_t slot) const;

  std::uint32_t capacity() const { return capacity_; }

 private:
  SharedU64& AnnouncementWord(std::uint32_t slot) const { return slots_[slot].head.pinned_epoch; }

  SharedU64* global_epoch_;
  Slot* slots_;
  std::uint32_t capacity_;
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_EPOCH_EPOCH_TABLE_H_

// EpochTable: the domain's global epoch and every participant's announced (pinned) epoch.
//
// A participant announces the epoch it is pinned at before it reads any root, and clears the
// announcement when it is done reading. The global epoch advances only when every announcement
// has caught up with it; garbage retired at epoch r is freed once the global epoch reaches r + 2.
// This is the protocol of crossbeam-epoch and xenium's generic_epoch_based, in a shared file.
//
// Two tables of announcements: the writers' slot table (in PATH, each slot's head) and, when the
// domain has one, the reader registry (PATH.readers, file/reader_registry.h). Writers pin as
// crossbeam does (Pin); readers pin with a validated pin (PinReader). Writers read the registry
// only here, with one pread per scan in the steady state (a second when the high-water mark has
// risen), never through a mapping.
//
// Invariants (over both tables)
//  (E1) The global epoch G only increases, one step at a time, and only after a scan that found
//       every counted pinned announcement equal to G (writers: every pinned one; readers: every
//       owned and possible one, RR3). Hence once a participant's announcement of e is visible
//       to every scan (after its fence (1)), G advances at most once more while it stays: to
//       e + 1 if G was e, not at all if G had already moved past e (a writer's pin may lag, as
//       crossbeam's does; a reader's validated pin does not, RR3). Either way G <= g + 1 for
//       every G value g read after the fence.
//  (E2) Nothing of a version (root word, node, blob) is read by a participant that is not pinned.
//  (E3) A block unlinked by a root CAS is retired with the epoch r read after that CAS (see
//       RetireList), and freed only once G >= r + 2 (SafeToFree). By (E1), a participant that
//       could still hold the block was pinned at <= r and has since unpinned.
//  (E4) An announcement is written only by its slot's owner (or by a survivor that has taken a
//       dead owner's slot over, under its lock; for a reader slot, a writer's ClearIfDead).
//  (RR3) While a reader is pinned at e by PinReader, G is e or e + 1. Proof (C++20
//       [atomics.order], the fourth S-condition): let X be a scan that would advance e+1 -> e+2.
//       X loads G = e+1 before its fence F_X (RR5), reading the release CAS A (5) that made e+1;
//       that load followed by F_X acts as an acquire, so A happens-before F_X. The reader's
//       re-check load after its fence F_R read e, so it is coherence-ordered before A, hence
//       F_R precedes F_X in S, and X's copy of the registry (RR4) sees Pinned(e) (or a later
//       store of the reader's): e != e+1, X does not advance. So G never passes e + 1.
//       Consequence: an owned reader pin at e < G - 1 is no honest validated pin (a hostile or
//       broken reader wrote it): ignored and counted (ReaderPinsIgnored); e >= G is no blocker
//       (G has moved, the CAS fails anyway). Only e == G - 1 holds G back.
//       With a light pin (1L) and X's heavy fence (3H) (epoch/pin_fence.h): the kernel puts a
//       full barrier F_R in the reader's thread at some point p_R of its execution, with
//       F_entry <S F_R <S F_exit (X's fences around its membarrier call). A happens-before
//       F_entry. If p_R preceded the store of Pinned(e), F_R would be sequenced before the
//       re-check, which is coherence-ordered before A, so F_R <S F_entry by the same condition:
//       a contradiction. So the store is sequenced before F_R <S F_exit, and X's copy, made
//       after F_exit, sees Pinned(e) (or a later store of the reader's). docs/design.md, "The
//       asymmetric fence", has this and E1's case.
//
// Memory ordering
//  (1) Pin: relaxed store of the announcement, then PinFence() before any root is read: the
//      announcement is ordered before the reads; partner (3). This is the edge whose absence
//      gave LMDB its reader-table SIGSEGV (ITS#7970). PinFence() is a seq_cst fence, or (1L) a
//      compiler barrier in a process that may pin light (pin_fence.h PF1), partner (3H). The
//      pin's load of G is seq_cst: with a compiler barrier only, nothing else would order it
//      before the seq_cst root load (docs/design.md, "E1 with light pins").
//  (2) Unpin: release store of 0: every read made while pinned happens-before a scanner's
//      acquire load (4) that sees the slot unpinned, and so before any free that follows;
//      partner (4). Also a reader's unpin (RR2), partner RR4.
//  (3) TryAdvance: ScanFence(mode) before the scan; partner (1) and RR1: a pin whose fence
//      precedes ours is seen by the scan; one whose fence follows ours reads roots written
//      before our scan. In a kLight domain it is (3H), the heavy fence (pin_fence.h), partner
//      (1L) as well: the barrier it puts in a light pinner's thread plays that pin's fence. A
//      scan whose heavy fence failed returns a no_heavy_fence blocker and advances nothing (PF2).
//  (4) acquire load of each writer announcement during the scan; partner (2).
//  (5) release CAS of G from g to g + 1, after the scan; partner (6), and RR5's load of a later
//      scan. After a won CAS the advancer records {g + 1, CLOCK_MONOTONIC ns} in the header's
//      epoch_began ring (relaxed stores on G's own line: statistics, no edge).
//  (6) acquire load of G in SafeToFree / CurrentEpoch; partner (5): the frees a reclaimer makes
//      after seeing G >= r + 2 happen after every unpin the advancing scans observed.
//  (7) seq_cst load of G in EpochAfterUnlink, after the seq_cst root CAS that unlinked the
//      garbage: both are in the single total order, so the stamp is read after the unlink.
//  (RR1) PinReader: seq_cst load of G, relaxed store of Pinned(e), PinFence() (a seq_cst fence,
//      or (1L)), seq_cst reload of G; if it moved, pin again at the new value. Partner (3) or
//      (3H) (the same edge as (1)).
//  (RR2) UnpinReader: release store of 0; partner RR4.
//  (RR4) TryAdvance reads the registry with pread (one, or two when the high-water mark rose)
//      after the fence (3) (the kernel's copy follows it in program order), then an acquire fence: every unpin (RR2) the copy saw
//      happens-before the frees that follow (6), as (4)'s acquire loads do for writers. The copy
//      is no atomic read, but words are 8-byte aligned in 64-byte slots (x86-64 and arm64 copy
//      them whole); a word torn by a store concurrent with the copy is one the scan need not see
//      (that store's fence does not precede ours), and the reader re-validates (RR3).
//  (RR5) TryAdvance loads G before its fence (3), as crossbeam's try_advance does; partner (5).
//      A stale G only makes the CAS fail or a newer pin look like a blocker (a wasted probe).
//  (8) TryAdvance (and OldestPinned) load the slot table's high water H after the fence (3) and
//      read the writers' announcements of [0, H) only; partner slot_table.h (5), the claimer's
//      raise of H, sequenced before the slot's first pin and so before that pin's fence (1).
//      Proof (C++20 [atomics.order], the fence-fence rule): if the pin's fence precedes ours in
//      S, the raise is sequenced before the one fence and our load of H after the other, so the
//      load sees the raise (or a later one): the slot is below H and scanned, and (1)/(3) make
//      the scan see the announcement. If ours precedes, the pin's root loads see every root
//      written before our scan, as for (3) alone. Hence a slot claimed after a scan read H is
//      one whose pin the scan need not see. H is loaded after (3), never before it: a load
//      before the fence could miss a raise whose pin's fence precedes ours. With an asymmetric
//      fence (the pinner's side a compiler barrier, the scanner's a process-wide barrier issued
//      in ScanFence) the argument is the same: the raise is an earlier store of the pinner's
//      than its announcement, and the barrier that makes the announcement visible to the scan
//      makes the raise visible with it. A null H (tests' tables) scans the whole capacity.
//
// Thread safety: safe to use from any thread of any process that maps the file. Each
// announcement word belongs to one participant (one thread at a time).
#ifndef ATOMAP_SRC_EPOCH_EPOCH_TABLE_H_
#define ATOMAP_SRC_EPOCH_EPOCH_TABLE_H_

#include <cstdint>
#include <optional>

#include "common/layout.h"
#include "common/shared_word.h"
#include "file/header.h"
#include "file/reader_registry.h"
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
  std::uint32_t slot;  // in the writers' slot table, or the reader registry when `reader`
  std::uint64_t pinned_epoch;
  bool reader = false;
  std::uint32_t reader_pid = 0;  // readers: the slot's recorded owner pid (informational)
  // No slot: this process could not issue the heavy fence a kLight domain's scan needs (PF2 in
  // epoch/pin_fence.h), so it advances nothing; `pinned_epoch` is the G it read.
  bool no_heavy_fence = false;
};

class EpochTable {
 public:
  // `global_epoch`: the header's word. `slots`: the slot table; each slot's announcement word is
  // its head's pinned_epoch (file/slot.h).
  // `readers`: the domain's reader registry, or null (no registry, or none opened by this
  // handle). `epoch_began`: the header's ring of epoch start times, or null (not recorded).
  // `high_water`: the header's slot_high_water (slot_table.h S4), or null: scan all slots.
  // `fence_mode`: the header's pin_fence, which says what a scan's fence (3) must be.
  EpochTable(SharedU64* global_epoch, Slot* slots, std::uint32_t capacity,
             const ReaderRegistry* readers = nullptr, EpochStart* epoch_began = nullptr,
             const SharedU32* high_water = nullptr, PinFenceMode fence_mode = PinFenceMode::kFull)
      : global_epoch_(global_epoch),
        slots_(slots),
        capacity_(capacity),
        readers_(readers),
        epoch_began_(epoch_began),
        high_water_(high_water),
        fence_mode_(fence_mode) {}

  // Announces the current epoch in `slot` and returns it.
  // REQUIRES: the caller owns `slot` and it is not pinned.
  std::uint64_t Pin(std::uint32_t slot) const;
  // REQUIRES: the caller owns `slot`.
  void Unpin(std::uint32_t slot) const;

  // A reader's validated pin (RR1, RR3) on its reader slot's announcement; returns the epoch.
  // REQUIRES: the caller owns the slot and it is not pinned.
  std::uint64_t PinReader(SharedU64& announcement) const;
  // (RR2) REQUIRES: the caller owns the slot.
  static void UnpinReader(SharedU64& announcement);

  // Owned reader pins that RR3 says no honest reader can hold (e < G - 1), seen by this
  // process's scans and ignored: a hostile or broken reader's (DESIGN 2.4). Statistics.
  static std::uint64_t ReaderPinsIgnored();

  std::uint64_t CurrentEpoch() const;
  // G for a nested pin's generation (atom/pin_site.h PS3): a seq_cst load, ordered in S before
  // the guard's seq_cst root load.
  std::uint64_t EpochBeforeRootLoad() const { return global_epoch_->LoadSeqCst(); }
  // The epoch to stamp garbage unlinked by a root CAS that just succeeded: a seq_cst load, so
  // that in the model it is ordered after the seq_cst CAS (E3). (7)
  std::uint64_t EpochAfterUnlink() const;
  // True when garbage retired at `retired_at` can no longer be reached by any participant.
  bool SafeToFree(std::uint64_t retired_at) const { return CurrentEpoch() >= retired_at + 2; }

  // Advances G by one if every pinned participant has caught up with it. Returns the blocker
  // otherwise (a stopped or dead participant shows up here; the caller decides what to do), or
  // one marked no_heavy_fence when this process may not advance this domain (PF2).
  std::optional<EpochBlocker> TryAdvance() const;

  // The oldest announced epoch and its slot, if anyone is pinned, over both tables (reader pins
  // only where they count for TryAdvance). Statistics.
  std::optional<EpochBlocker> OldestPinned() const;

  // Clears a dead owner's announcement. REQUIRES: the caller holds the slot's lock.
  void ClearDeadPin(std::uint32_t slot) const;

  std::uint32_t capacity() const { return capacity_; }
  PinFenceMode fence_mode() const { return fence_mode_; }

 private:
  SharedU64& AnnouncementWord(std::uint32_t slot) const { return slots_[slot].head.pinned_epoch; }
  // (8): the end of the writers' slots a scan reads. REQUIRES: called after the fence (3).
  std::uint32_t ScanEnd() const;

  // The reader blocker of a scan that expects to advance from `global`, if any (RR4, RR3).
  std::optional<EpochBlocker> ReaderBlocker(std::uint64_t global) const;
  void RecordEpochStart(std::uint64_t epoch) const;

  SharedU64* global_epoch_;
  Slot* slots_;
  std::uint32_t capacity_;
  const ReaderRegistry* readers_;
  EpochStart* epoch_began_;
  const SharedU32* high_water_;
  PinFenceMode fence_mode_;
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_EPOCH_EPOCH_TABLE_H_

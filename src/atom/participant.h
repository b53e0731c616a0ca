// Participant: one thread's membership in a domain — its slot, pin, allocator cache and retire
// list. crossbeam-epoch's register() → participant, pin() → guard, in a shared file.
//
// Invariants
//  (P1) Only the owning thread calls Pin/Unpin, allocates through context(), or retires.
//  (P2) Pins nest: only the outermost Pin announces an epoch, only the matching Unpin clears it.
//       An inner pin needs no announcement of its own: the outer one is older, hence safer.
//       Only a PinGuard (atomap/internal/pin_guard.h) pins and unpins: each pin is a guard's life.
//  (P3) Garbage is retired only after the CAS that unlinked it, with the epoch read after it.
//  (P4) A lane is leased to one transaction at a time, and is empty when it is given back: every
//       path that ends a transaction (publish won or lost, abort) empties it first.
//
// Thread safety: belongs to one thread (P1).
#ifndef ATOMAP_SRC_ATOM_PARTICIPANT_H_
#define ATOMAP_SRC_ATOM_PARTICIPANT_H_

#include <algorithm>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "atom/pin_site.h"
#include "atomap/internal/pin_guard.h"
#include "epoch/epoch_table.h"
#include "epoch/retire_list.h"
#include "file/slot_table.h"
#include "hamt/transient.h"
#include "hamt/trie_context.h"

namespace atomap::internal {

class Runtime;

class Participant {
 public:
  Participant(Runtime& runtime, SlotLease lease);
  // Reclaims what is safe, leaves the rest on the orphan chain, returns the allocator cache to the
  // shared lists and releases the slot. REQUIRES: not pinned.
  ~Participant();
  Participant(const Participant&) = delete;
  Participant& operator=(const Participant&) = delete;

  // Forgets the slot without releasing anything (an inherited copy in a child of fork()).
  void Abandon();
  bool pinned() const { return pin_site_.pinned(); }
  PinSite& pin_site() { return pin_site_; }

  const TrieContext& context() const { return context_; }
  std::uint32_t slot() const { return lease_.index(); }

  // Room for `n` retired blocks, made before the CAS (R3).
  absl::Status PrepareRetire(std::uint64_t n) { return retire_.Prepare(n); }
  // Records what a won CAS unlinked, scans the epoch now and then (AdvanceEpoch), and frees a
  // bounded number of safe blocks (FreeBudget): no swap pays for the reclamation of many others.
  // REQUIRES: PrepareRetire(n).
  void RetireAfterPublish(absl::Span<const Block> blocks);
  // Frees the blocks of a commit that was never published (a lost CAS, an abandoned commit),
  // from its lane's end when it has one (L4). Empties the lane (P4).
  void FreeUnpublished(const hamt::CommitResult& commit);

  // A pin, and a free lane if there is one, for a transaction's life (P4).
  std::unique_ptr<hamt::TransactionHold> HoldForTransaction();
  // The intent record (intent/intent_record.h): announced before the CAS of `commit`,
  // withdrawn after a lost CAS, and finished (lane emptied, then intent cleared) after a won one.
  void AnnounceIntent(std::uint32_t atom, const hamt::CommitResult& commit);
  void WithdrawIntent();
  void FinishPublication(const hamt::CommitResult& commit);

  // Advances the epoch if it can, takes over a dead participant that holds it back, adopts
  // orphaned garbage, and frees everything that is safe. Returns the number of blocks freed.
  std::uint64_t Reclaim();
  // After an operation failed with `full` (ResourceExhausted: the domain cannot grow), reclaims
  // all it can: OK when it freed something (retry the operation), else `full` naming who holds
  // reclamation back, if anyone does. Any other status is returned as it is.
  // A snapshot this thread still holds holds reclamation back like any other pin.
  absl::Status ReclaimForSpace(const absl::Status& full);
  // How many times an operation retries after ReclaimForSpace freed something, yet not enough
  // (swap, a combined apply, a lone apply attempt: one bound for all of them).
  static constexpr int kReclaimsForSpace = 3;

  const RetireList& retire_list() const { return retire_; }

 private:
  // How many retirements between epoch scans: a scan reads every pin below the slot table's
  // high water (EpochTable::TryAdvance), and may probe a blocker's lock.
  static constexpr std::uint32_t kRetiresPerReclaim = 64;
  // What one swap may free (when that much is safe): at least kMinFreesPerSwap, twice what it
  // retired (the backlog shrinks whatever the swaps' sizes), and 1/kBacklogShare of what is
  // pending (a backlog left by a long pin drains geometrically, at the average rate of the old
  // pass every kRetiresPerReclaim swaps, without its spike). Issue 14: that pass, ~340 blocks
  // every 64th swap, was the swap's p99.
  static constexpr std::uint64_t kMinFreesPerSwap = 16;
  static constexpr std::uint64_t kBacklogShare = 64;
  static std::uint64_t FreeBudget(std::uint64_t retired, std::uint64_t pending) {
    return std::max({kMinFreesPerSwap, 2 * retired, pending / kBacklogShare});
  }
  // A backlog beyond kBacklogPeriods epoch scans' worth of this participant's retirements is
  // not the steady state (that is two or three scans' worth: a block waits two epochs) but what
  // a long pin left behind. Only this participant frees its list (R1), so such a backlog is
  // freed whole at the next scan: a writer that goes idle after a few swaps must not leave
  // gigabytes that are safe to free stranded in its list while other writers find the domain
  // full. The spike only follows a long pin.
  static constexpr std::uint64_t kBacklogPeriods = 8;

  friend class PinGuard;  // pins through pin_site_ (P2)
  class LaneLease;

  // The periodic part of reclamation: TryAdvance, a dead blocker's takeover, the orphan chain.
  void AdvanceEpoch();
  void AdoptOrphans();
  // What a blocker of TryAdvance gets: a probe of its lock, and recovery if its owner is dead.
  void TakeOverIfDead(const EpochBlocker& blocker);
  ReclaimArea& area() const;

  Runtime& runtime_;
  SlotLease lease_;
  TrieContext context_;
  RetireList retire_;
  PinSite pin_site_;
  bool abandoned_ = false;
  std::uint32_t retires_since_reclaim_ = 0;
  std::uint64_t retired_since_scan_ = 0;  // blocks retired since the last epoch scan
  std::uint32_t lanes_leased_ = 0;  // bit i: lane i is leased to a transaction
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_ATOM_PARTICIPANT_H_

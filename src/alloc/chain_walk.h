// ChainWalk: the one bounded walk of a chain of blocks linked through words read from the file.
//
// The file may be damaged (a flipped byte, a dead owner's half-written list, a `cp` taken while
// writers ran), so a link read from it can point anywhere: into the header, past the mapping,
// back into the chain. Every walk the library makes along such links — the allocator's shared
// and private free lists (Flush, Stats, a popped batch), a slot's retire, spare and lane chains,
// the domain's orphan chain, the checker's walks of all of them — goes through a ChainWalk, so
// that there is one answer to "is this a block" and one bound on every such loop.
//
// Invariants
//  (W1) A link is accepted only if BlockBounds::Holds it — the one plausibility check of the
//       library: 16-byte aligned, 0 < bytes <= the largest block, inside [data_begin, limit).
//       A walk over the allocator takes limit = its mapping (after a Refresh if needed:
//       Allocator::MayBeBlock); the checker takes min(bump, mapping). Nothing is read at a link
//       before it is accepted.
//  (W2) No walk accepts more links than the data region holds blocks of the chain's size
//       ((limit - data_begin) / bytes + 1), or kFreeSteps if that is more: a chain of distinct
//       blocks cannot be longer, so a longer one has a cycle. The bound is computed only once a
//       walk passes kFreeSteps links (a short walk — a lane's one batch on every swap — pays
//       no division), and again whenever it runs out: the mapping may have grown meanwhile.
//  (W3) A repeated link ends the walk. Repeats::kCheap finds every cycle within about twice its
//       length by Brent's method (one saved link, one compare per step; W2 is the backstop);
//       links before the detection may be accepted twice, which is harmless for a walk that
//       only counts. Repeats::kExact accepts no link twice (a set of the links seen, created at
//       the second link): for walks that free, move or hand on what they visit. One exception:
//       RetireList::Reclaim and FinishInterruptedReclaim free along their own slot's retire
//       chain with kCheap, so the reclaim every 64th swap allocates nothing. That chain is
//       acyclic by construction: its owner pushes each batch once, and a dead owner's chain is
//       cut with kExact when it is adopted (TrimChain, AdoptChain), so no link can repeat there
//       unless the file is damaged after the open.
//  (W4) Once ended, a walk stays ended, and says why (End): at a null link (kNull: the chain is
//       whole) or at damage. Callers that repair (recovery) cut the chain at the link that was
//       refused, and leave the rest to the sweep; callers that report (Stats) return Status().
//
// Not for the hot paths: the single pop or push of a Treiber list (Allocate, Free, Retire) reads
// one link that its owner wrote and is no walk. Thread safety: a ChainWalk is one thread's.
#ifndef ATOMAP_SRC_ALLOC_CHAIN_WALK_H_
#define ATOMAP_SRC_ALLOC_CHAIN_WALK_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "alloc/allocator.h"
#include "alloc/block_bounds.h"
#include "common/offset.h"

namespace atomap::internal {

class ChainWalk {
 public:
  enum class Repeats { kCheap, kExact };
  enum class End { kWalking, kNull, kNotABlock, kRepeat, kTooLong };

  // A walk of blocks of `bytes` each, checked by `allocator`'s MayBeBlock (mapping what another
  // process grew if needed). REQUIRES: 0 < bytes; `allocator` outlives the walk.
  // Inline, as Continues: a walk of one link (a lane on every swap) costs a few instructions.
  inline ChainWalk(const Allocator& allocator, std::uint64_t bytes,
                   Repeats repeats = Repeats::kCheap);
  // A walk inside fixed bounds (the checker's: nothing is mapped on the way).
  ChainWalk(BlockBounds bounds, std::uint64_t bytes, Repeats repeats = Repeats::kCheap)
      : allocator_(nullptr), bounds_(bounds), bytes_(bytes), repeats_(repeats) {}
  ChainWalk(const ChainWalk&) = delete;
  ChainWalk& operator=(const ChainWalk&) = delete;

  // True if the walk goes on to `link`: it is not null, it is a block (W1), the budget is not
  // spent (W2) and it is not a repeat (W3). False from then on once it was false (W4).
  //   for (Offset b = head; walk.Continues(b); b = Next(b)) ...
  // Inline: the common case is a few compares against bounds read when the walk began.
  bool Continues(Offset link) {
    if (end_ != End::kWalking) return false;  // (W4)
    if (link == kNullOffset) return Stop(End::kNull, kNullOffset);
    if (!bounds_.Holds(link, bytes_) && !AcceptsAfterRefresh(link)) {
      return Stop(End::kNotABlock, link);  // (W1)
    }
    if (accepted_ >= budget_ && !ExtendBudget()) return Stop(End::kTooLong, link);  // (W2)
    if (Repeat(link)) return Stop(End::kRepeat, link);  // (W3)
    ++accepted_;
    return true;
  }

  End end() const { return end_; }
  // True if the walk ended anywhere but at a null link.
  bool damaged() const { return end_ != End::kWalking && end_ != End::kNull; }
  // The link that ended the walk (0 at kNull or while walking).
  Offset stopped_at() const { return stopped_at_; }
  std::uint64_t accepted() const { return accepted_; }

  // What ended the walk, in words ("a link to offset 123, which is not a block of 64 bytes
  // inside the data region [4096, 98304), after 3 blocks"); empty unless damaged().
  std::string Describe() const;
  // OK unless damaged(); then DataLoss "<path>: <chain>: <Describe()>".
  absl::Status Status(std::string_view path, std::string_view chain) const;

 private:
  // Links a short walk accepts before its bound is computed (W2).
  static constexpr std::uint64_t kFreeSteps = 32;

  // For a link outside the bounds read when the walk began: Allocator::MayBeBlock (it maps what
  // another process grew), then the bounds are read again.
  bool AcceptsAfterRefresh(Offset link);
  bool ExtendBudget();
  // (W3) Brent inline: the link at every power-of-two step (1, 2, 4, ...) is saved; a cycle of
  // length L entered after M steps brings the walk back to a saved link once the saved step is
  // past M and the next power of two is past L, so within about 2 * (M + L) steps.
  bool Repeat(Offset link) {
    if (repeats_ == Repeats::kExact) {
      if (accepted_ > 0) return RepeatExact(link);
      saved_ = link;
      return false;
    }
    if (accepted_ > 0 && link == saved_) return true;
    if ((accepted_ & (accepted_ + 1)) == 0) saved_ = link;  // accepted_ + 1 a power of two
    return false;
  }
  bool RepeatExact(Offset link);
  BlockBounds Bounds() const;
  bool Stop(End end, Offset link) {
    end_ = end;
    stopped_at_ = link;
    return false;
  }

  const Allocator* allocator_;  // null: fixed bounds_
  BlockBounds bounds_;
  std::uint64_t bytes_;
  Repeats repeats_;
  std::uint64_t budget_ = kFreeSteps;
  std::uint64_t accepted_ = 0;
  Offset saved_ = kNullOffset;  // Brent's saved link (kCheap); the first link (kExact)
  std::unique_ptr<absl::flat_hash_set<Offset>> seen_;  // kExact, from the second link on
  End end_ = End::kWalking;
  Offset stopped_at_ = kNullOffset;
};

inline ChainWalk::ChainWalk(const Allocator& allocator, std::uint64_t bytes, Repeats repeats)
    : allocator_(&allocator), bounds_(allocator.bounds()), bytes_(bytes), repeats_(repeats) {}

// A list that others may change while it is walked (a live domain's free lists, its orphan
// chain) can read as damaged: a link read after its block left the list is whatever the block
// holds now. `stamp()` reads what changes of the list change (a Treiber head's tag, a cache's
// head and count, a chain's head): damage that `walk()` reports counts only if the stamp is the
// same after the walk as before it. A stamp other than a tag can come back to its value,
// though (ABA: the owner pops a block, writes into it and frees it again while the walk reads
// it; a test caught a cache's (head, count) doing so 7 runs in 60), so the damage also has to be
// found again, the same, by a second walk with an unchanged stamp: a file that nobody changes (a
// copy, a dead owner's list) always reports its damage, at the cost of one more walk. Otherwise
// the walk is tried again, up to kSettleTries times in all, and its result is then kept without
// the damage: the list was changing, not damaged (the figures of a live domain are approximate
// anyway).
// REQUIRES: `walk()` starts its count afresh and returns its ChainWalk's Status().
inline constexpr int kSettleTries = 4;
template <typename StampFn, typename WalkFn>
absl::Status WalkSettled(StampFn stamp, WalkFn walk) {
  std::optional<absl::Status> settled_damage;  // what a walk with an unchanged stamp found
  for (int tries = 1;; ++tries) {
    const auto before = stamp();
    absl::Status status = walk();
    if (status.ok()) return status;
    // (1) acquire fence: the walk's loads of links are ordered before the second stamp load, as
    // a seqlock reader's; partner: the release (or seq_cst) CAS/store by which every change of
    // the list changes its stamp. Equal stamps then mean no change overlapped the walk, or
    // changes that put the stamp back (hence the second walk).
#if defined(__SANITIZE_THREAD__)
    // TSan does not model fences (GCC warns, -Wtsan); the walk's link loads are racy reads
    // already, so a compiler barrier keeps the order for the sanitizer build.
    std::atomic_signal_fence(std::memory_order_seq_cst);
#else
    std::atomic_thread_fence(std::memory_order_acquire);
#endif
    if (stamp() == before) {
      if (settled_damage == status) return status;  // found twice, the same: damage
      settled_damage = std::move(status);
    }
    if (tries == kSettleTries) return absl::OkStatus();
  }
}

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_ALLOC_CHAIN_WALK_H_

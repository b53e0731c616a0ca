// OwnedLane: the file-resident record of the blocks one open transaction has allocated and not
// yet published or freed, so that a survivor can free them if the transaction's process dies.
//
// Eve, and atomap before format 2, kept this set in process memory only: a writer killed between
// its first allocation and its root CAS leaked everything it had built until an offline sweep.
// A lane is the set's shadow in the writer's slot; a survivor taking the dead slot over reads it
// (intent/intent_recovery.h). The trie records its blocks through the lane as a hamt::BlockLedger
// (hamt/block_ledger.h), without knowing about lanes.
//
// Layout (part of the file format, docs/format.md):
//   LaneWords   in the slot's ReclaimArea (file/slot.h): {u64 first_batch, u64 count}
//   OwnedBatch  1 KiB blocks chained by `next`; entry i lives in batch i / 63, position i % 63.
// An entry is a Block; entries with kReplacedFlag set in `bytes` are not owned: they are blocks
// of the base version that the transaction's commit replaces, staged before the root CAS so that
// a survivor can retire them if the owner died after winning it (intent/intent_recovery.h).
//
// Invariants
//  (L1) Only the slot's owner (or a survivor holding the dead owner's slot lock) touches a lane.
//  (L2) Entries [0, count) are written before `count` covers them: an entry is recorded only once
//       it is whole. The count is one word, so a crash leaves either the old or the new count.
//  (L3) An entry appears at most once, except transiently after Forget moved the last entry
//       into a hole and before it lowered `count`: readers deduplicate.
//  (L4) Allocation and recording are two steps, and so are unrecording and freeing: a kill
//       between them leaks that one block to the offline sweep, never frees a block twice.
//  (L5) Batches are only ever appended to the chain while a transaction holds the lane. Between
//       transactions the lane keeps its first batch (Shrink); Release() frees it when the
//       participant leaves.
//
// Thread safety: one thread at a time (L1). No ordering between live processes: the lane is
// private to its owner, and a survivor reads it only after the kernel reported the owner dead
// (its slot lock released). Ordering against a kill: the stores a crash may split (an entry and
// its count, an unlink and the frees after it) are release stores, so that neither the compiler
// nor the CPU lets the later reach memory first; a kill leaves a prefix of them (L2, L4).
#ifndef ATOMAP_SRC_INTENT_OWNED_LANE_H_
#define ATOMAP_SRC_INTENT_OWNED_LANE_H_

#include <cstdint>

#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/offset.h"
#include "file/slot.h"
#include "hamt/block_ledger.h"

namespace atomap::internal {

class Allocator;
class Arena;
struct ParticipantCache;

inline constexpr std::uint64_t kOwnedBatchBytes = 1024;
// Set in Block::bytes of a staged replaced block (not owned by the transaction).
inline constexpr std::uint64_t kReplacedFlag = std::uint64_t{1} << 63;

struct OwnedBatch {
  Offset next;
  std::uint64_t reserved;
  static constexpr std::uint64_t kCapacity = 63;
  Block blocks[kCapacity];
};
static_assert(sizeof(OwnedBatch) == kOwnedBatchBytes);

class OwnedLane final : public hamt::BlockLedger {
 public:
  // Reads the lane's chain with a ChainWalk (alloc/chain_walk.h); a damaged chain is cut where
  // the walk ends (the rest leaks to the sweep), its count lowered to what the chain holds.
  // `index` is the lane's place in the slot's ReclaimArea::lanes (what an intent names).
  // REQUIRES: `words` is this participant's lane `index` (it owns the slot).
  OwnedLane(LaneWords* words, std::uint32_t index, Allocator* allocator, ParticipantCache* cache);

  std::uint32_t index() const { return index_; }
  std::uint64_t size() const override { return words_->count.LoadRelaxed(); }
  Block At(std::uint64_t i) const { return *Entry(i); }

  // Makes room for `n` more entries (allocating batches) and returns the room: entries that fit
  // in the batches now. ResourceExhausted when the domain is full; nothing is recorded then.
  absl::StatusOr<std::uint64_t> Reserve(std::uint64_t n) override;
  // Records `block` (L2) and returns its position. REQUIRES: Reserve made room.
  std::uint64_t Record(Block block) override;
  // Records replaced blocks of the base (kReplacedFlag), after making room for them.
  absl::Status RecordReplaced(absl::Span<const Block> blocks) override;
  // Unrecords the entry at `i` by moving the last entry there (L3). Returns the moved entry's
  // offset, now at `i` (kNullOffset if `i` was the last entry).
  Offset Forget(std::uint64_t i) override;
  // Forgets every entry at or after `n` (one write of the count).
  void Truncate(std::uint64_t n);
  // Frees every entry from the last, each unrecorded before it is freed (L4); `before_each`
  // runs before each one (a crash point).
  void FreeEntries(absl::FunctionRef<void()> before_each);
  void FreeAll() override;

  // Frees every batch but the first, so that one bulk transaction does not hold its lane's
  // space forever. REQUIRES: size() == 0.
  void Shrink();
  // Frees the batches. REQUIRES: size() == 0 (the participant is leaving).
  void Release();

 private:
  Block* Entry(std::uint64_t i) const;
  Arena& arena() const;

  LaneWords* words_;
  std::uint32_t index_;
  Allocator* allocator_;
  ParticipantCache* cache_;
  absl::InlinedVector<Offset, 4> batches_;  // the chain, in order (process-local index)
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_INTENT_OWNED_LANE_H_

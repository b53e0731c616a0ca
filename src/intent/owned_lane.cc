#include "intent/owned_lane.h"

#include <cassert>
#include <cstring>

#include "alloc/allocator.h"
#include "alloc/chain_walk.h"
#include "arena/arena.h"
#include "common/shared_atomic.h"

namespace atomap::internal {

OwnedLane::OwnedLane(LaneWords* words, std::uint32_t index, Allocator* allocator,
                     ParticipantCache* cache)
    : words_(words), index_(index), allocator_(allocator), cache_(cache) {
  // Exact (W3): Shrink and Release free every batch listed. A walk that a damaged chain ends
  // (a wild link, a cycle) cuts the chain there: what lies past the cut leaks to the sweep.
  ChainWalk walk(*allocator_, kOwnedBatchBytes, ChainWalk::Repeats::kExact);
  Offset* link = &words_->first_batch;
  while (walk.Continues(*link)) {
    batches_.push_back(*link);
    link = &arena().At<OwnedBatch>(*link)->next;
  }
  if (walk.damaged()) Shared(*link).store(kNullOffset, kRelease);
  // Never past the chain, damaged or not: a count beyond it (a flipped word) would index past
  // the batches, and count + n in Reserve could wrap.
  const std::uint64_t room = batches_.size() * OwnedBatch::kCapacity;
  if (words_->count.LoadRelaxed() > room) words_->count.StoreRelease(room);
}

Arena& OwnedLane::arena() const { return *allocator_->arena(); }

Block* OwnedLane::Entry(std::uint64_t i) const {
  OwnedBatch* batch = arena().At<OwnedBatch>(batches_[i / OwnedBatch::kCapacity]);
  return &batch->blocks[i % OwnedBatch::kCapacity];
}

absl::StatusOr<std::uint64_t> OwnedLane::Reserve(std::uint64_t n) {
  while (batches_.size() * OwnedBatch::kCapacity < words_->count.LoadRelaxed() + n) {
    absl::StatusOr<Offset> fresh = allocator_->Allocate(cache_, kOwnedBatchBytes);
    if (!fresh.ok()) return fresh.status();
    std::memset(arena().At<OwnedBatch>(*fresh), 0, kOwnedBatchBytes);
    // Linked at the tail (L5). A kill between the allocation and this link leaks the batch (L4).
    Offset& link =
        batches_.empty() ? words_->first_batch : arena().At<OwnedBatch>(batches_.back())->next;
    Shared(link).store(*fresh, kRelease);
    batches_.push_back(*fresh);
  }
  return batches_.size() * OwnedBatch::kCapacity - words_->count.LoadRelaxed();
}

std::uint64_t OwnedLane::Record(Block block) {
  const std::uint64_t i = words_->count.LoadRelaxed();  // ours: only this lane writes it
  assert(i < batches_.size() * OwnedBatch::kCapacity);  // REQUIRES: room from Reserve
  *Entry(i) = block;  // (L2) the entry, then
  words_->count.StoreRelease(i + 1);  //      the count that covers it
  return i;
}

Offset OwnedLane::Forget(std::uint64_t i) {
  const std::uint64_t last = words_->count.LoadRelaxed() - 1;
  Offset moved = kNullOffset;
  if (i != last) {
    *Entry(i) = *Entry(last);  // (L3) duplicated until the count drops
    moved = Entry(i)->offset;
  }
  words_->count.StoreRelease(last);
  return moved;
}

absl::Status OwnedLane::RecordReplaced(absl::Span<const Block> blocks) {
  if (absl::StatusOr<std::uint64_t> room = Reserve(blocks.size()); !room.ok()) {
    return room.status();
  }
  for (const Block& b : blocks) Record(Block{b.offset, b.bytes | kReplacedFlag});
  return absl::OkStatus();
}

void OwnedLane::Truncate(std::uint64_t n) { words_->count.StoreRelease(n); }

void OwnedLane::FreeEntries(absl::FunctionRef<void()> before_each) {
  for (std::uint64_t n = size(); n > 0; --n) {
    before_each();
    const Block block = At(n - 1);
    Truncate(n - 1);  // (L4) dropped, then freed
    allocator_->Free(cache_, block.offset, block.bytes);
  }
}

void OwnedLane::FreeAll() {
  FreeEntries([] {});
}

void OwnedLane::Shrink() {
  if (batches_.size() <= 1) return;
  Shared(arena().At<OwnedBatch>(batches_[0])->next).store(kNullOffset, kRelease);  // then freed
  for (std::size_t i = 1; i < batches_.size(); ++i) {
    allocator_->Free(cache_, batches_[i], kOwnedBatchBytes);
  }
  batches_.resize(1);
}

void OwnedLane::Release() {
  // Unlinked before the frees: a kill leaks, never reuses.
  Shared(words_->first_batch).store(kNullOffset, kRelease);
  for (Offset b : batches_) allocator_->Free(cache_, b, kOwnedBatchBytes);
  batches_.clear();
}

}  // namespace atomap::internal

#include "intent/owned_lane.h"

#include <cstring>

#include "alloc/allocator.h"
#include "arena/arena.h"

namespace atomap::internal {

OwnedLane::OwnedLane(LaneWords* words, Allocator* allocator, ParticipantCache* cache)
    : words_(words), allocator_(allocator), cache_(cache) {
  for (Offset b = words_->first_batch; b != kNullOffset; b = arena().At<OwnedBatch>(b)->next) {
    batches_.push_back(b);
  }
}

Arena& OwnedLane::arena() const { return *allocator_->arena(); }

Block* OwnedLane::Entry(std::uint64_t i) const {
  OwnedBatch* batch = arena().At<OwnedBatch>(batches_[i / OwnedBatch::kCapacity]);
  return &batch->blocks[i % OwnedBatch::kCapacity];
}

absl::Status OwnedLane::Reserve(std::uint64_t n) {
  while (batches_.size() * OwnedBatch::kCapacity < words_->count + n) {
    absl::StatusOr<Offset> fresh = allocator_->Allocate(cache_, kOwnedBatchBytes);
    if (!fresh.ok()) return fresh.status();
    std::memset(arena().At<OwnedBatch>(*fresh), 0, kOwnedBatchBytes);
    // Linked at the tail (L5). A kill between the allocation and this link leaks the batch (L4).
    if (batches_.empty()) {
      words_->first_batch = *fresh;
    } else {
      arena().At<OwnedBatch>(batches_.back())->next = *fresh;
    }
    batches_.push_back(*fresh);
  }
  return absl::OkStatus();
}

std::uint64_t OwnedLane::Append(Block block) {
  const std::uint64_t i = words_->count;
  *Entry(i) = block;        // (L2) the entry, then
  words_->count = i + 1;    //      the count that covers it
  return i;
}

Offset OwnedLane::RemoveAt(std::uint64_t i) {
  const std::uint64_t last = words_->count - 1;
  Offset moved = kNullOffset;
  if (i != last) {
    *Entry(i) = *Entry(last);  // (L3) duplicated until the count drops
    moved = Entry(i)->offset;
  }
  words_->count = last;
  return moved;
}

void OwnedLane::Shrink() {
  if (batches_.size() <= 1) return;
  arena().At<OwnedBatch>(batches_[0])->next = kNullOffset;  // unlinked, then freed (L4)
  for (std::size_t i = 1; i < batches_.size(); ++i) {
    allocator_->Free(cache_, batches_[i], kOwnedBatchBytes);
  }
  batches_.resize(1);
}

void OwnedLane::Release() {
  words_->first_batch = kNullOffset;  // unlinked before the frees: a kill leaks, never reuses
  for (Offset b : batches_) allocator_->Free(cache_, b, kOwnedBatchBytes);
  batches_.clear();
}

}  // namespace atomap::internal

#include "epoch/retire_list.h"

#include <algorithm>
#include <cstring>

#include "alloc/allocator.h"
#include "common/crash_point.h"
#include "epoch/epoch_table.h"

namespace atomap::internal {

RetireBatch* RetireList::Batch(Offset off) const {
  return allocator_->arena()->At<RetireBatch>(off);
}

bool RetireList::Readable(Offset batch) const {
  return allocator_->MayBeBlock(batch, kRetireBatchBytes);
}

ChainWalk RetireList::Walk(ChainWalk::Repeats repeats) const {
  return ChainWalk(*allocator_, kRetireBatchBytes, repeats);
}

std::uint64_t RetireList::pending_blocks() const { return area_->pending_blocks.LoadRelaxed(); }

std::uint64_t RetireList::pending_bytes() const { return area_->pending_bytes.LoadRelaxed(); }

void RetireList::AddPending(std::int64_t blocks, std::int64_t bytes) {
  area_->pending_blocks.StoreRelaxed(pending_blocks() + static_cast<std::uint64_t>(blocks));
  area_->pending_bytes.StoreRelaxed(pending_bytes() + static_cast<std::uint64_t>(bytes));
}

std::uint64_t RetireList::RoomInHead() const {
  const Offset head = area_->retire_head;
  if (head == kNullOffset || !Readable(head)) return 0;  // R5: Retire starts a fresh batch
  const std::uint32_t count = Batch(head)->count;
  return count < RetireBatch::kCapacity ? RetireBatch::kCapacity - count : 0;
}

std::uint64_t RetireList::SpareRoom() const {
  std::uint64_t room = 0;
  ChainWalk walk = Walk();
  for (Offset b = area_->spare; walk.Continues(b); b = Batch(b)->next) {
    room += RetireBatch::kCapacity;  // Retire takes spares from the front: only these (R5)
  }
  return room;
}

absl::Status RetireList::Prepare(std::uint64_t n) {
  std::uint64_t room = RoomInHead() + SpareRoom();
  while (room < n) {
    absl::StatusOr<Offset> batch = allocator_->Allocate(cache_, kRetireBatchBytes);
    if (!batch.ok()) return batch.status();  // spares made so far stay for the next Prepare
    RetireBatch* b = Batch(*batch);
    std::memset(b, 0, sizeof *b);
    b->next = area_->spare;
    area_->spare = *batch;
    room += RetireBatch::kCapacity;
  }
  return absl::OkStatus();
}

void RetireList::Retire(std::uint64_t epoch, absl::Span<const Block> blocks) {
  std::int64_t bytes = 0;
  std::uint64_t room = RoomInHead();  // checked once (R5); the batches taken below are spares
  for (const Block& block : blocks) {
    ATOMAP_CRASH_POINT(kRetireMid);
    if (room == 0) {
      const Offset fresh = area_->spare;  // non-null and readable: Prepare counted it (R3, R5)
      RetireBatch* b = Batch(fresh);
      area_->spare = b->next;
      b->next = area_->retire_head;
      b->epoch = epoch;
      b->count = 0;
      area_->retire_head = fresh;
      room = RetireBatch::kCapacity;
    }
    --room;
    RetireBatch* head = Batch(area_->retire_head);
    head->blocks[head->count] = block;  // the entry before the count that publishes it (R2)
    head->epoch = std::max(head->epoch, epoch);
    ++head->count;
    bytes += static_cast<std::int64_t>(block.bytes);
  }
  AddPending(static_cast<std::int64_t>(blocks.size()), bytes);
}

std::uint64_t RetireList::FreeEntries(RetireBatch* b, std::uint64_t budget) {
  std::uint64_t freed = 0;
  // count and the entries are read afresh each time: a free can overwrite them (R5).
  while (freed < budget && b->count > 0 && b->count <= RetireBatch::kCapacity) {
    ATOMAP_CRASH_POINT(kReclaimMidBatch);
    --b->count;  // before the free: a crash here leaks one block rather than freeing it twice
    const Block block = b->blocks[b->count];
    AddPending(-1, -static_cast<std::int64_t>(block.bytes));  // as it was counted in
    if (allocator_->MayBeBlock(block.offset, block.bytes)) {  // else left to the sweep (R5)
      allocator_->Free(cache_, block.offset, block.bytes);
    }
    ++freed;
  }
  return freed;
}

void RetireList::FreeBatch(Offset batch) {
  (void)FreeEntries(Batch(batch), kUnbounded);
  area_->reclaiming = kNullOffset;  // before the batch's own free, for the same reason
  allocator_->Free(cache_, batch, kRetireBatchBytes);
}

std::uint64_t RetireList::Reclaim(const EpochTable& epochs, std::uint64_t budget) {
  const std::uint64_t epoch = epochs.CurrentEpoch();
  if (budget != kUnbounded && epoch == drained_at_) return 0;  // R6: nothing became safe
  std::uint64_t freed = 0;
  Offset* link = &area_->retire_head;
  ChainWalk walk = Walk();
  while (freed < budget && walk.Continues(*link)) {
    const Offset off = *link;
    RetireBatch* b = Batch(off);
    if (!epochs.SafeToFree(b->epoch)) {
      link = &b->next;
      continue;
    }
    const std::uint64_t whole = std::min(b->count, RetireBatch::kCapacity);
    if (whole > budget - freed) {
      // Budget spent part-way: the batch stays linked with what is left of it (R4).
      freed += FreeEntries(b, budget - freed);
      return freed;
    }
    // A batch freed whole is unlinked before any of its entries is freed: an entry that a
    // damaged file aliases to the batch itself (R5) cannot turn `next` into a free block's word.
    area_->reclaiming = off;  // R4: recorded, then unlinked, then freed
    *link = b->next;
    FreeBatch(off);
    freed += whole;
  }
  // Every safe entry is gone (the walk ended, not the budget): remember at which G (R6).
  if (freed < budget) drained_at_ = epoch;
  return freed;
}

void RetireList::FinishInterruptedReclaim() {
  const Offset interrupted = area_->reclaiming;
  if (interrupted == kNullOffset) return;
  if (!Readable(interrupted)) {  // R5
    area_->reclaiming = kNullOffset;
    return;
  }
  // The owner may have died between recording the batch and unlinking it.
  ChainWalk walk = Walk();
  for (Offset* link = &area_->retire_head; walk.Continues(*link); link = &Batch(*link)->next) {
    if (*link == interrupted) {
      *link = Batch(interrupted)->next;
      break;
    }
  }
  FreeBatch(interrupted);
}

void RetireList::AdoptChain(Offset chain) {
  if (chain == kNullOffset || !Readable(chain)) return;  // R5: left to the sweep
  std::int64_t blocks = 0;
  std::int64_t bytes = 0;
  Offset tail = chain;
  ChainWalk walk = Walk(ChainWalk::Repeats::kExact);
  for (Offset b = chain; walk.Continues(b); b = Batch(b)->next) {
    const RetireBatch* batch = Batch(b);
    const std::uint32_t count = std::min(batch->count, RetireBatch::kCapacity);
    blocks += count;
    for (std::uint32_t i = 0; i < count; ++i)
      bytes += static_cast<std::int64_t>(batch->blocks[i].bytes);
    tail = b;
  }
  // Also cuts whatever the walk stopped at (R5). Order does not matter: Reclaim checks every batch.
  Batch(tail)->next = area_->retire_head;
  area_->retire_head = chain;
  AddPending(blocks, bytes);
  drained_at_ = 0;  // R6: adopted batches may be safe already
}

void RetireList::ForEachPending(absl::FunctionRef<void(const Block&)> fn) const {
  ChainWalk walk = Walk();
  for (Offset b = area_->retire_head; walk.Continues(b); b = Batch(b)->next) {
    const RetireBatch* batch = Batch(b);
    const std::uint32_t count = std::min(batch->count, RetireBatch::kCapacity);
    for (std::uint32_t i = 0; i < count; ++i) fn(batch->blocks[i]);
  }
}

Offset RetireList::DetachChain() {
  const Offset chain = area_->retire_head;
  area_->retire_head = kNullOffset;
  area_->pending_blocks.StoreRelaxed(0);
  area_->pending_bytes.StoreRelaxed(0);
  return chain;
}

void RetireList::FreeSpares() {
  ChainWalk walk = Walk(ChainWalk::Repeats::kExact);
  while (walk.Continues(area_->spare)) {
    const Offset spare = area_->spare;
    area_->spare = Batch(spare)->next;  // unlinked before the free, as in R4
    allocator_->Free(cache_, spare, kRetireBatchBytes);
  }
}

}  // namespace atomap::internal

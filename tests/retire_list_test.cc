// RetireList on a damaged list (invariant R5 of src/epoch/retire_list.h): a survivor runs it on a
// dead owner's slot, whose words a damaged file can set to anything. Every batch is read only
// after the allocator accepts its offset, every entry is freed only if it does, a count above
// capacity frees nothing, and what fails is left where it is. Each case checks the allocator's
// accounting afterwards: exactly the plausible blocks went back, nothing else was touched.
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <vector>

#include "alloc/allocator.h"
#include "common/layout.h"
#include "epoch/epoch_table.h"
#include "epoch/retire_list.h"
#include "support/test_allocator.h"

namespace atomap::internal {
namespace {

constexpr Offset kIntoHeader = 8;  // aligned to nothing a block can be, and below the data region
constexpr std::uint64_t kWildBytes = std::uint64_t{1} << 40;

struct DeadSlot {
  DeadSlot() : t(std::uint64_t{1} << 30) {
    area = t.arena->At<ReclaimArea>(TestAllocator::SlotBegin(0) + kSlotReclaimOffset);
    *area = ReclaimArea{};
  }
  RetireList List() { return RetireList(area, t.alloc.get(), t.caches[0]); }
  Offset Allocate(std::uint64_t bytes) {
    auto off = t.alloc->Allocate(t.caches[0], bytes);
    REQUIRE(off.ok());
    return *off;
  }
  RetireBatch* NewBatch() {
    const Offset off = Allocate(kRetireBatchBytes);
    auto* b = t.arena->At<RetireBatch>(off);
    std::memset(static_cast<void*>(b), 0, sizeof *b);
    return b;
  }
  Offset OffsetOf(const RetireBatch* b) const {
    return static_cast<Offset>(reinterpret_cast<const std::uint8_t*>(b) -
                               t.arena->At<std::uint8_t>(0));
  }
  std::uint64_t LiveBytes() const { return t.Stats().live_bytes; }

  TestAllocator t;
  ReclaimArea* area = nullptr;
};

TEST_CASE("FreeSpares frees the spare batches up to a link that cannot be one, and stops",
          "[retire]") {
  DeadSlot d;
  RetireBatch* a = d.NewBatch();
  RetireBatch* b = d.NewBatch();
  a->next = d.OffsetOf(b);
  b->next = kIntoHeader;
  d.area->spare = d.OffsetOf(a);
  REQUIRE(d.LiveBytes() == 2 * kRetireBatchBytes);

  d.List().FreeSpares();
  CHECK(d.area->spare == kIntoHeader);  // not followed: left for the sweep
  CHECK(d.LiveBytes() == 0);
}

TEST_CASE("an interrupted reclaim frees only the entries that can be blocks", "[retire]") {
  DeadSlot d;
  const Offset kept_block = d.Allocate(64);
  RetireBatch* r = d.NewBatch();
  r->blocks[0] = Block{kept_block, 64};
  r->blocks[1] = Block{kIntoHeader, 64};
  r->blocks[2] = Block{kept_block + 4096, kWildBytes};
  r->count = 3;
  d.area->retire_head = d.OffsetOf(r);
  d.area->reclaiming = d.OffsetOf(r);
  d.area->pending_blocks.StoreRelaxed(3);

  d.List().FinishInterruptedReclaim();
  CHECK(d.area->retire_head == kNullOffset);  // unlinked
  CHECK(d.area->reclaiming == kNullOffset);
  CHECK(d.area->pending_blocks.LoadRelaxed() == 0);
  CHECK(d.LiveBytes() == 0);  // the one real entry and the batch itself
}

TEST_CASE("a count above capacity frees no entry, only the batch", "[retire]") {
  DeadSlot d;
  const Offset block = d.Allocate(64);
  RetireBatch* r = d.NewBatch();
  r->blocks[0] = Block{block, 64};
  r->count = RetireBatch::kCapacity + 1;
  d.area->reclaiming = d.OffsetOf(r);

  d.List().FinishInterruptedReclaim();
  CHECK(d.area->reclaiming == kNullOffset);
  CHECK(d.LiveBytes() == Allocator::BlockBytes(64));  // the entry stays leaked, not guessed at
}

TEST_CASE("a reclaiming word that cannot be a batch is dropped unread", "[retire]") {
  DeadSlot d;
  d.area->reclaiming = kIntoHeader;
  d.List().FinishInterruptedReclaim();
  CHECK(d.area->reclaiming == kNullOffset);
  CHECK(d.t.Stats().total_bytes == 0);
}

TEST_CASE("a retire head that cannot be a batch gets a fresh batch in front of it", "[retire]") {
  DeadSlot d;
  d.area->retire_head = kIntoHeader;
  RetireList list = d.List();
  REQUIRE(list.Prepare(1).ok());
  REQUIRE(d.area->spare != kNullOffset);  // the head was not counted as room
  const Block retired{d.Allocate(64), 64};
  list.Retire(/*epoch=*/5, {&retired, 1});

  const auto* head = d.t.arena->At<RetireBatch>(d.area->retire_head);
  CHECK(d.area->retire_head != kIntoHeader);
  CHECK(head->next == kIntoHeader);  // kept as a value, never read through
  CHECK(head->count == 1);
  CHECK(head->blocks[0] == retired);
  CHECK(list.pending_blocks() == 1);
}

TEST_CASE("an adopted chain is cut at a link that cannot be a batch", "[retire]") {
  DeadSlot d;
  RetireBatch* orphan = d.NewBatch();
  orphan->blocks[0] = Block{d.Allocate(64), 64};
  orphan->count = 1;
  orphan->next = kIntoHeader;

  RetireList list = d.List();
  list.AdoptChain(d.OffsetOf(orphan));
  CHECK(d.area->retire_head == d.OffsetOf(orphan));
  CHECK(orphan->next == kNullOffset);  // the wild link replaced by the (empty) list it joined
  CHECK(list.pending_blocks() == 1);

  list.AdoptChain(kIntoHeader);  // a chain whose head cannot be a batch: nothing adopted
  CHECK(d.area->retire_head == d.OffsetOf(orphan));
  CHECK(list.pending_blocks() == 1);
}

// Bounded passes (R4, R6): each frees at most its budget, newest safe batch first, from the end
// of a batch; a part-freed batch stays linked with its smaller count; the unbounded pass frees
// the rest. Nothing unsafe is freed, nothing safe is lost.
TEST_CASE("bounded passes free at most their budget and, together, everything safe",
          "[retire][bounded]") {
  DeadSlot d;
  alignas(64) SharedU64 global{};
  std::vector<Slot> slots(1);
  EpochTable epochs(&global, slots.data(), 1);
  RetireList list = d.List();
  constexpr std::uint64_t kRetired = 2 * RetireBatch::kCapacity;  // two full batches
  REQUIRE(list.Prepare(kRetired).ok());
  for (std::uint64_t i = 0; i < kRetired; ++i) {
    const Block block{d.Allocate(64), 64};
    list.Retire(/*epoch=*/0, {&block, 1});
  }
  const Block late{d.Allocate(64), 64};
  REQUIRE(list.Prepare(1).ok());
  const std::uint64_t live_before = d.LiveBytes();
  // Nothing is safe at G = 0 or 1.
  CHECK(list.Reclaim(epochs, 16) == 0);
  CHECK(!epochs.TryAdvance().has_value());
  CHECK(list.Reclaim(epochs, 16) == 0);
  CHECK(!epochs.TryAdvance().has_value());  // G = 2: everything retired at 0 is safe
  list.Retire(/*epoch=*/2, {&late, 1});  // newest batch, not safe until G = 4

  CHECK(list.Reclaim(epochs, 16) == 16);
  CHECK(list.pending_blocks() == kRetired + 1 - 16);
  CHECK(d.LiveBytes() == live_before - 16 * Allocator::BlockBytes(64));
  // The part-freed batch is still linked, with what is left of it.
  std::uint64_t pending = 0;
  list.ForEachPending([&](const Block&) { ++pending; });
  CHECK(pending == kRetired + 1 - 16);

  std::uint64_t freed = 16;
  while (const std::uint64_t now = list.Reclaim(epochs, 16)) {
    CHECK(now <= 16);
    freed += now;
  }
  CHECK(freed == kRetired);  // every safe block, and not the late one
  CHECK(list.pending_blocks() == 1);
  CHECK(list.Reclaim(epochs, 16) == 0);  // R6: drained at this G, the walk is skipped

  CHECK(!epochs.TryAdvance().has_value());
  CHECK(!epochs.TryAdvance().has_value());  // G = 4
  CHECK(list.Reclaim(epochs) == 1);  // unbounded
  CHECK(list.pending_blocks() == 0);
  CHECK(d.area->retire_head == kNullOffset);
  CHECK(d.area->reclaiming == kNullOffset);
  list.FreeSpares();
  CHECK(d.LiveBytes() == 0);
}

}  // namespace
}  // namespace atomap::internal

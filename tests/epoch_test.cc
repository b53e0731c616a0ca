// EpochTable: pins hold the epoch back; garbage is freed only two epochs after its retirement.
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <deque>
#include <thread>
#include <vector>

#include "common/layout.h"
#include "epoch/epoch_table.h"
#include "file/slot_table.h"

namespace atomap::internal {
namespace {

struct FakeDomain {
  explicit FakeDomain(std::uint32_t slots) : region(slots), capacity(slots) {}
  alignas(64) SharedU64 global_epoch{};
  std::vector<Slot> region;
  std::uint32_t capacity;
  EpochTable table() { return EpochTable(&global_epoch, region.data(), capacity); }
};

TEST_CASE("an unpinned table advances; a pinned participant holds it within one epoch", "[epoch]") {
  FakeDomain d(8);
  EpochTable epochs = d.table();
  CHECK(!epochs.TryAdvance().has_value());
  CHECK(!epochs.TryAdvance().has_value());
  CHECK(epochs.CurrentEpoch() == 2);

  const std::uint64_t pinned_at = epochs.Pin(5);
  CHECK(pinned_at == 2);
  CHECK(!epochs.TryAdvance().has_value());  // the pin equals G: one step is allowed (E1)
  auto blocked = epochs.TryAdvance();
  REQUIRE(blocked.has_value());
  CHECK(blocked->slot == 5);
  CHECK(blocked->pinned_epoch == 2);
  CHECK(epochs.CurrentEpoch() == 3);
  CHECK(!epochs.SafeToFree(2));  // retired at 2 while slot 5 may still read it

  REQUIRE(epochs.OldestPinned().has_value());
  CHECK(epochs.OldestPinned()->slot == 5);
  epochs.Unpin(5);
  CHECK(!epochs.OldestPinned().has_value());
  CHECK(!epochs.TryAdvance().has_value());
  CHECK(epochs.SafeToFree(2));
}

TEST_CASE("a dead owner's pin is cleared by the survivor and stops holding the epoch", "[epoch]") {
  FakeDomain d(4);
  EpochTable epochs = d.table();
  epochs.Pin(1);
  epochs.TryAdvance();
  REQUIRE(epochs.TryAdvance().has_value());
  epochs.ClearDeadPin(1);
  CHECK(!epochs.TryAdvance().has_value());
}

// The slot high water (slot_table.h S4, epoch_table.h (8)): a scan reads the pins below it only,
// so a claim must raise it before the claimer pins, and each scan must read it afresh (after its
// fence). A participant that claims and pins in a slot above the high water an earlier scan saw
// still holds the epoch back.
TEST_CASE("a pin in a slot claimed above an earlier scan's high water is respected",
          "[epoch][high_water]") {
  FakeDomain d(8);
  alignas(64) SharedU32 high_water{};
  SlotTable slots(d.region.data(), d.capacity, /*use_locks=*/false, &high_water);
  EpochTable epochs(&d.global_epoch, d.region.data(), d.capacity, nullptr, nullptr, &high_water);

  absl::StatusOr<SlotLease> first = slots.Claim(-1, false);
  REQUIRE(first.ok());
  CHECK(high_water.LoadRelaxed() == 1);
  epochs.Pin(first->index());
  CHECK(!epochs.TryAdvance().has_value());  // this scan read a high water of 1
  epochs.Unpin(first->index());

  std::vector<SlotLease> later;
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<SlotLease> lease = slots.Claim(-1, false);
    REQUIRE(lease.ok());
    later.push_back(*std::move(lease));
  }
  REQUIRE(later.back().index() == 5);
  CHECK(high_water.LoadRelaxed() == 6);  // raised by each claim, before any pin (S4)
  const std::uint64_t pinned_at = epochs.Pin(5);
  CHECK(!epochs.TryAdvance().has_value());  // G == the pin: one step allowed (E1)
  const std::optional<EpochBlocker> blocked = epochs.TryAdvance();
  REQUIRE(blocked.has_value());
  CHECK(blocked->slot == 5);
  CHECK(blocked->pinned_epoch == pinned_at);
  CHECK(!epochs.SafeToFree(pinned_at));
  REQUIRE(epochs.OldestPinned().has_value());
  CHECK(epochs.OldestPinned()->slot == 5);

  // Released slots stay below it: the word never shrinks (a dead owner's pin stays scanned).
  later.clear();
  CHECK(high_water.LoadRelaxed() == 6);
  // What the word bounds: a pin in a slot nobody claimed (only damage or a bug can make one)
  // is not read, so the high water is all that stands between such a slot and a free.
  epochs.Unpin(5);
  epochs.Pin(7);
  CHECK(!epochs.TryAdvance().has_value());
  CHECK(!epochs.TryAdvance().has_value());
  epochs.Unpin(7);
}

TEST_CASE("an opener covers slots claimed before the high water existed", "[epoch][high_water]") {
  FakeDomain d(8);
  alignas(64) SharedU32 high_water{};
  SlotTable slots(d.region.data(), d.capacity, /*use_locks=*/false, &high_water);
  // A format-2 file upgraded in place: slot 4 owned (its owner died pinned), the word still 0.
  d.region[4].head.state.StoreRelaxed(static_cast<std::uint32_t>(SlotState::kOwned));
  EpochTable epochs(&d.global_epoch, d.region.data(), d.capacity, nullptr, nullptr, &high_water);
  epochs.Pin(4);
  slots.CoverClaimedSlots();
  CHECK(high_water.LoadRelaxed() == 5);
  CHECK(!epochs.TryAdvance().has_value());
  CHECK(epochs.TryAdvance().has_value());  // the dead pin holds G back until it is taken over
}

// Readers dereference the current object under a pin while a writer replaces it, retires the old
// one and frees it when SafeToFree says so. Freed objects are really deleted: ASan reports any
// read after free, TSan any missing happens-before edge, and the poison check catches the rest.
TEST_CASE("readers never see freed objects under concurrent replacement", "[epoch][threads]") {
  constexpr std::uint32_t kReaders = 3;
  // Run until this many objects were freed while readers were active (bounded, so that a reader
  // preempted while pinned on a loaded 2-core machine delays the test instead of failing it).
  constexpr std::uint64_t kConcurrentFrees = 5000;
  constexpr std::uint64_t kMaxReplacements = 5'000'000;
  FakeDomain d(kReaders + 1);
  EpochTable epochs = d.table();

  struct Object {
    std::uint64_t value;
    std::uint64_t check;
  };
  std::atomic<Object*> current{new Object{0, ~std::uint64_t{0}}};
  std::atomic<bool> done{false};
  std::atomic<std::uint64_t> bad{0};

  std::vector<std::thread> readers;
  for (std::uint32_t r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, slot = r + 1] {
      while (!done.load(std::memory_order_acquire)) {
        epochs.Pin(slot);
        const Object* obj = current.load(std::memory_order_acquire);
        for (int i = 0; i < 64; ++i) {  // hold it a while: widens any early-free window
          if (obj->check != ~obj->value) bad.fetch_add(1);
        }
        epochs.Unpin(slot);
      }
    });
  }

  std::deque<std::pair<std::uint64_t, Object*>> retired;
  std::uint64_t freed = 0;
  for (std::uint64_t i = 1; freed < kConcurrentFrees && i <= kMaxReplacements; ++i) {
    Object* old = current.exchange(new Object{std::uint64_t(i), ~std::uint64_t(i)},
                                   std::memory_order_acq_rel);
    retired.emplace_back(epochs.CurrentEpoch(), old);
    epochs.TryAdvance();
    while (!retired.empty() && epochs.SafeToFree(retired.front().first)) {
      retired.front().second->check = 0xDEAD;  // poison, then free
      delete retired.front().second;
      retired.pop_front();
      ++freed;
    }
  }
  done.store(true, std::memory_order_release);
  for (auto& t : readers) t.join();
  CHECK(bad.load() == 0);
  CHECK(freed >= kConcurrentFrees);

  // With every reader gone, two advances make everything retired reclaimable.
  REQUIRE(!epochs.TryAdvance().has_value());
  REQUIRE(!epochs.TryAdvance().has_value());
  for (auto& [epoch, obj] : retired) {
    CHECK(epochs.SafeToFree(epoch));
    delete obj;
  }
  delete current.load();
}

}  // namespace
}  // namespace atomap::internal

#include "epoch/epoch_table.h"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <vector>

#include "common/shared_atomic.h"
#include "epoch/pin_fence.h"

namespace atomap::internal {
namespace {

constexpr std::uint32_t kReaderOwned = static_cast<std::uint32_t>(ReaderSlotState::kOwned);

// Process-wide: scans of every domain this process reclaims in.
std::atomic<std::uint64_t> reader_pins_ignored{0};

std::uint64_t MonotonicNanos() {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000u +
         static_cast<std::uint64_t>(now.tv_nsec);
}

// An acquire fence after the registry's copy, which comes from a pread, not from atomic loads
// (RR4). A full fence, which is one: GCC refuses a bare acquire fence under -fsanitize=thread,
// and this runs once per scan that gets this far.
void AcquireFence() { FullFence(); }

// What TryAdvance returns when its heavy fence failed (pin_fence.h PF2): no slot to probe.
EpochBlocker NoHeavyFence(std::uint64_t global) {
  EpochBlocker blocker{.slot = 0, .pinned_epoch = global};
  blocker.no_heavy_fence = true;
  return blocker;
}

}  // namespace

std::uint64_t EpochTable::Pin(std::uint32_t slot) const {
  // seq_cst, not relaxed: with a light pin nothing else orders this load before the root load
  // (an arm64 LDR may be satisfied after a later LDAR), and an announcement newer than the root
  // read would let a scan free what that root reaches. In S: the unlinking CAS < its stamp load
  // < this load < the root load, so the root read is the unlinked one's successor (1L).
  const std::uint64_t epoch = global_epoch_->LoadSeqCst();
  AnnouncementWord(slot).StoreRelaxed(Announcement::Pinned(epoch));
  PinFence();  // (1), or (1L) when this process pins light
  return epoch;
}

void EpochTable::Unpin(std::uint32_t slot) const {
  AnnouncementWord(slot).StoreRelease(Announcement::kUnpinned);  // (2)
}

std::uint64_t EpochTable::PinReader(SharedU64& announcement) const {
  std::uint64_t epoch = global_epoch_->LoadSeqCst();  // (RR1)
  for (;;) {
    announcement.StoreRelaxed(Announcement::Pinned(epoch));
    PinFence();  // (RR1) or (1L), partner (3) / (3H)
    const std::uint64_t again = global_epoch_->LoadSeqCst();  // (RR1): the validation (RR3)
    if (again == epoch) return epoch;
    epoch = again;  // G moved between the load and the fence: at most once per advance
  }
}

void EpochTable::UnpinReader(SharedU64& announcement) {
  announcement.StoreRelease(Announcement::kUnpinned);  // (RR2), partner (RR4)
}

std::uint64_t EpochTable::ReaderPinsIgnored() {
  return reader_pins_ignored.load(std::memory_order_relaxed);
}

std::uint64_t EpochTable::CurrentEpoch() const {
  return global_epoch_->LoadAcquire();  // (6)
}

std::uint64_t EpochTable::EpochAfterUnlink() const {
  return global_epoch_->LoadSeqCst();  // (7)
}

std::optional<EpochBlocker> EpochTable::TryAdvance() const {
  const std::uint64_t global = global_epoch_->LoadRelaxed();  // (RR5): before the fence
  if (!ScanFence(fence_mode_)) return NoHeavyFence(global);  // (3), or (3H) and PF2
  const std::uint32_t end = ScanEnd();                        // (8): after (3)
  for (std::uint32_t slot = 0; slot < end; ++slot) {
    const std::uint64_t word = AnnouncementWord(slot).LoadAcquire();  // (4)
    if (Announcement::IsPinned(word) && Announcement::EpochOf(word) != global) {
      return EpochBlocker{slot, Announcement::EpochOf(word)};
    }
  }
  // Only when no writer holds the epoch back: that common case costs no read of the registry.
  if (std::optional<EpochBlocker> reader = ReaderBlocker(global)) return reader;
  // Losing this CAS means another scanner advanced G from the same value: the same outcome.
  std::uint64_t expected = global;
  if (global_epoch_->CasRelease(expected, global + 1)) RecordEpochStart(global + 1);  // (5)
  return std::nullopt;
}

std::optional<EpochBlocker> EpochTable::ReaderBlocker(std::uint64_t global) const {
  if (readers_ == nullptr) return std::nullopt;
  const std::vector<ReaderSlotImage> slots = readers_->ReadSlots();  // (RR4): after (3)
  AcquireFence();  // (RR4)
  for (const ReaderSlotImage& slot : slots) {
    if (slot.state != kReaderOwned || !Announcement::IsPinned(slot.announcement)) continue;
    const std::uint64_t epoch = Announcement::EpochOf(slot.announcement);
    if (epoch + 1 < global) {  // impossible for a validated pin (RR3)
      reader_pins_ignored.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (epoch + 1 == global) return EpochBlocker{slot.index, epoch, true, slot.owner_pid};
    // epoch >= global: G has moved since our load; not a blocker (the CAS fails anyway).
  }
  return std::nullopt;
}

void EpochTable::RecordEpochStart(std::uint64_t epoch) const {
  if (epoch_began_ == nullptr) return;
  EpochStart& entry = epoch_began_[epoch % 3];
  entry.epoch.StoreRelaxed(epoch);
  entry.began_ns.StoreRelaxed(MonotonicNanos());
}

std::uint32_t EpochTable::ScanEnd() const {
  if (high_water_ == nullptr) return capacity_;
  // Relaxed: the fence (3) before it is what orders it (8). Never past the table, whatever a
  // damaged word says (validated on open, but the word is shared and writable).
  return std::min(high_water_->LoadRelaxed(), capacity_);
}

std::optional<EpochBlocker> EpochTable::OldestPinned() const {
  std::optional<EpochBlocker> oldest;
  // Statistics: the scan's own fence, so that ScanEnd's REQUIRES holds here too (8), light pins
  // included; if this process cannot issue the heavy fence the figures may miss a light pin.
  (void)ScanFence(fence_mode_);
  const std::uint32_t end = ScanEnd();
  for (std::uint32_t slot = 0; slot < end; ++slot) {
    const std::uint64_t word = AnnouncementWord(slot).LoadAcquire();
    if (!Announcement::IsPinned(word)) continue;
    const std::uint64_t epoch = Announcement::EpochOf(word);
    if (!oldest || epoch < oldest->pinned_epoch) oldest = EpochBlocker{slot, epoch};
  }
  if (readers_ == nullptr) return oldest;
  const std::uint64_t global = global_epoch_->LoadAcquire();
  for (const ReaderSlotImage& slot : readers_->ReadSlots()) {
    if (slot.state != kReaderOwned || !Announcement::IsPinned(slot.announcement)) continue;
    const std::uint64_t epoch = Announcement::EpochOf(slot.announcement);
    if (epoch + 1 < global) continue;  // ignored by TryAdvance too (RR3)
    if (!oldest || epoch < oldest->pinned_epoch) {
      oldest = EpochBlocker{slot.index, epoch, true, slot.owner_pid};
    }
  }
  return oldest;
}

void EpochTable::ClearDeadPin(std::uint32_t slot) const {
  AnnouncementWord(slot).StoreRelease(Announcement::kUnpinned);
}

}  // namespace atomap::internal

#include "epoch/epoch_table.h"

#include "common/shared_atomic.h"

namespace atomap::internal {

std::uint64_t EpochTable::Pin(std::uint32_t slot) const {
  const std::uint64_t epoch = global_epoch_->LoadRelaxed();
  AnnouncementWord(slot).StoreRelaxed(Announcement::Pinned(epoch));
  FullFence();  // (1)
  return epoch;
}

void EpochTable::Unpin(std::uint32_t slot) const {
  AnnouncementWord(slot).StoreRelease(Announcement::kUnpinned);  // (2)
}

std::uint64_t EpochTable::CurrentEpoch() const {
  return global_epoch_->LoadAcquire();  // (6)
}

std::uint64_t EpochTable::EpochAfterUnlink() const {
  return global_epoch_->LoadSeqCst();  // (7)
}

std::optional<EpochBlocker> EpochTable::TryAdvance() const {
  FullFence();  // (3)
  std::uint64_t global = global_epoch_->LoadRelaxed();
  for (std::uint32_t slot = 0; slot < capacity_; ++slot) {
    const std::uint64_t word = AnnouncementWord(slot).LoadAcquire();  // (4)
    if (Announcement::IsPinned(word) && Announcement::EpochOf(word) != global) {
      return EpochBlocker{slot, Announcement::EpochOf(word)};
    }
  }
  // Losing this CAS means another scanner advanced G from the same value: the same outcome.
  global_epoch_->CasRelease(global, global + 1);  // (5)
  return std::nullopt;
}

std::optional<EpochBlocker> EpochTable::OldestPinned() const {
  std::optional<EpochBlocker> oldest;
  for (std::uint32_t slot = 0; slot < capacity_; ++slot) {
    const std::uint64_t word = AnnouncementWord(slot).LoadAcquire();
    if (!Announcement::IsPinned(word)) continue;
    const std::uint64_t epoch = Announcement::EpochOf(word);
    if (!oldest || epoch < oldest->pinned_epoch) oldest = EpochBlocker{slot, epoch};
  }
  return oldest;
}

void EpochTable::ClearDeadPin(std::uint32_t slot) const {
  AnnouncementWord(slot).StoreRelease(Announcement::kUnpinned);
}

}  // namespace atomap::internal

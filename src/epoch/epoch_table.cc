#include "epoch/epoch_table.h"

#include "common/shared_atomic.h"

namespace atomap::internal {

std::uint64_t EpochTable::Pin(std::uint32_t slot) const {
  const std::uint64_t epoch = Shared(*global_epoch_).load(kRelaxed);
  Shared(AnnouncementWord(slot)).store(Announcement::Pinned(epoch), kRelaxed);
  FullFence();  // (1)
  return epoch;
}

void EpochTable::Unpin(std::uint32_t slot) const {
  Shared(AnnouncementWord(slot)).store(Announcement::kUnpinned, kRelease);  // (2)
}

std::uint64_t EpochTable::CurrentEpoch() const {
  return Shared(*global_epoch_).load(kAcquire);  // (6)
}

std::uint64_t EpochTable::EpochAfterUnlink() const {
  return Shared(*global_epoch_).load(kSeqCst);  // (7)
}

std::optional<EpochBlocker> EpochTable::TryAdvance() const {
  FullFence();  // (3)
  std::uint64_t global = Shared(*global_epoch_).load(kRelaxed);
  for (std::uint32_t slot = 0; slot < capacity_; ++slot) {
    const std::uint64_t word = Shared(AnnouncementWord(slot)).load(kAcquire);  // (4)
    if (Announcement::IsPinned(word) && Announcement::EpochOf(word) != global) {
      return EpochBlocker{slot, Announcement::EpochOf(word)};
    }
  }
  // Losing this CAS means another scanner advanced G from the same value: the same outcome.
  Shared(*global_epoch_).compare_exchange_strong(global, global + 1, kRelease, kRelaxed);  // (5)
  return std::nullopt;
}

std::optional<EpochBlocker> EpochTable::OldestPinned() const {
  std::optional<EpochBlocker> oldest;
  for (std::uint32_t slot = 0; slot < capacity_; ++slot) {
    const std::uint64_t word = Shared(AnnouncementWord(slot)).load(kAcquire);
    if (!Announcement::IsPinned(word)) continue;
    const std::uint64_t epoch = Announcement::EpochOf(word);
    if (!oldest || epoch < oldest->pinned_epoch) oldest = EpochBlocker{slot, epoch};
  }
  return oldest;
}

void EpochTable::ClearDeadPin(std::uint32_t slot) const {
  Shared(AnnouncementWord(slot)).store(Announcement::kUnpinned, kRelease);
}

}  // namespace atomap::internal

#include "file/reader_registry.h"

#include <utility>

namespace atomap::internal {

// Day-0 stand-ins (the interface compiles and links); the registry itself is not built yet.
ReaderRegistry::ReaderRegistry(ReaderRegistry&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      capacity_(other.capacity_),
      mapping_(std::exchange(other.mapping_, nullptr)),
      mapped_bytes_(std::exchange(other.mapped_bytes_, 0)),
      path_(std::move(other.path_)) {}

ReaderRegistry& ReaderRegistry::operator=(ReaderRegistry&& other) noexcept {
  std::swap(fd_, other.fd_);
  std::swap(capacity_, other.capacity_);
  std::swap(mapping_, other.mapping_);
  std::swap(mapped_bytes_, other.mapped_bytes_);
  std::swap(path_, other.path_);
  return *this;
}

ReaderRegistry::~ReaderRegistry() = default;

ReaderLease::ReaderLease(ReaderLease&& other) noexcept
    : slot_(std::exchange(other.slot_, nullptr)),
      index_(other.index_),
      lock_fd_(std::exchange(other.lock_fd_, -1)) {}
ReaderLease& ReaderLease::operator=(ReaderLease&& other) noexcept {
  std::swap(slot_, other.slot_);
  std::swap(index_, other.index_);
  std::swap(lock_fd_, other.lock_fd_);
  return *this;
}
void ReaderLease::Release() { slot_ = nullptr; }
void ReaderLease::Abandon() { slot_ = nullptr; }

absl::StatusOr<ReaderRegistry> ReaderRegistry::Open(int fd, std::uint32_t capacity,
                                                    bool map_slots, std::string path) {
  (void)fd, (void)capacity, (void)map_slots, (void)path;
  return absl::UnimplementedError("day 0: the reader registry is not built yet");
}
absl::StatusOr<ReaderLease> ReaderRegistry::Claim() {
  return absl::UnimplementedError("day 0: the reader registry is not built yet");
}
std::vector<ReaderSlotImage> ReaderRegistry::ReadSlots() const { return {}; }
bool ReaderRegistry::ClearIfDead(std::uint32_t slot) const {
  (void)slot;
  return false;
}
std::optional<bool> ReaderRegistry::Alive(std::uint32_t slot) const {
  (void)slot;
  return std::nullopt;
}

}  // namespace atomap::internal

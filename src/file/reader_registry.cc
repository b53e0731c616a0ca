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

}  // namespace atomap::internal

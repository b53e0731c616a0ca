#include "file/initial_prefix.h"

#include <cstring>

#include "alloc/allocator.h"
#include "alloc/allocator_state.h"

namespace atomap::internal {

std::unique_ptr<InitialPrefix> MakeInitialPrefix(const Header& header) {
  auto prefix = std::make_unique<InitialPrefix>();
  std::memset(prefix->bytes, 0, sizeof prefix->bytes);
  std::memcpy(prefix->bytes, &header, sizeof header);
  static_assert(kHeaderBytes % alignof(AllocatorState) == 0);
  Allocator::Format(
      reinterpret_cast<AllocatorState*>(prefix->bytes + header.allocator_state_offset),
      header.data_begin);
  return prefix;
}

}  // namespace atomap::internal

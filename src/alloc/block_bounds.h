// BlockBounds: the library's one test of "can this be a block" (alloc/chain_walk.h, W1).
// Plain arithmetic on two offsets; no state, no ordering.
#ifndef ATOMAP_SRC_ALLOC_BLOCK_BOUNDS_H_
#define ATOMAP_SRC_ALLOC_BLOCK_BOUNDS_H_

#include <cstdint>

#include "common/offset.h"

namespace atomap::internal {

// The largest block any allocator hands out (Allocator::kMaxBlockBytes).
inline constexpr std::uint64_t kMaxPlausibleBlockBytes = std::uint64_t{64} << 20;

// Where blocks may lie: [data_begin, limit).
struct BlockBounds {
  Offset data_begin = 0;
  Offset limit = 0;

  // (W1) The one plausibility check: true if [off, off + bytes) can be a block.
  bool Holds(Offset off, std::uint64_t bytes) const {
    return bytes > 0 && bytes <= kMaxPlausibleBlockBytes && Contains(off, bytes);
  }
  // Its part that does not judge the size: [off, off + bytes) is aligned and inside the bounds
  // (for regions that are not one block: a bump region, an extent, a blob read in parts).
  bool Contains(Offset off, std::uint64_t bytes) const {
    return off % kBlockAlign == 0 && off >= data_begin && off <= limit && bytes <= limit - off;
  }
  // How many blocks of `bytes` each fit (W2).
  std::uint64_t MaxBlocks(std::uint64_t bytes) const {
    return (limit > data_begin ? limit - data_begin : 0) / bytes + 1;
  }
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_ALLOC_BLOCK_BOUNDS_H_

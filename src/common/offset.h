// Offsets: how everything in the file refers to everything else.
//
// Each process maps the file at a different address, so nothing stored in the file is a pointer.
// An Offset is a byte position from the start of the file; 0 is the null offset (the header lives
// at 0, so no object can).
#ifndef ATOMAP_SRC_COMMON_OFFSET_H_
#define ATOMAP_SRC_COMMON_OFFSET_H_

#include <cstdint>

namespace atomap::internal {

using Offset = std::uint64_t;
inline constexpr Offset kNullOffset = 0;

// Every block the allocator hands out is aligned to this; node layouts rely on it.
inline constexpr std::uint64_t kBlockAlign = 16;

// A block of the data region and the byte count to pass to Allocator::Free for it. Stored in the
// file by retire lists, so its layout is part of the format.
struct Block {
  Offset offset;
  std::uint64_t bytes;
  friend bool operator==(const Block&, const Block&) = default;
};
static_assert(sizeof(Block) == 16);

constexpr std::uint64_t RoundUp(std::uint64_t n, std::uint64_t align) {
  return (n + align - 1) / align * align;
}

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_COMMON_OFFSET_H_

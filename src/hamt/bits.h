// Branching arithmetic of the trie: every shift, mask and popcount index lives here.
//
// A 64-bit hash is consumed 5 bits per level from the least significant end: levels 0..11 use
// 5 bits each (60 bits), level 12 uses the last 4. A node at level L branches on
// Fragment(hash, L). Two keys whose hashes agree in all 64 bits meet below level 12, in a
// collision node at level kCollisionLevel.
#ifndef ATOMAP_SRC_HAMT_BITS_H_
#define ATOMAP_SRC_HAMT_BITS_H_

#include <bit>
#include <cstdint>

namespace atomap::internal::hamt {

inline constexpr int kBitsPerLevel = 5;
inline constexpr int kBranching = 1 << kBitsPerLevel;  // 32 children at most
inline constexpr int kHashBits = 64;
// Bitmap levels: ceil(64 / 5) = 13, numbered 0..12.
inline constexpr int kBitmapLevels = (kHashBits + kBitsPerLevel - 1) / kBitsPerLevel;
inline constexpr int kLastLevel = kBitmapLevels - 1;
inline constexpr int kLastLevelBits = kHashBits - kLastLevel * kBitsPerLevel;
// Nodes at this depth are collision nodes (all 64 hash bits already used).
inline constexpr int kCollisionLevel = kBitmapLevels;
// Longest path from the root: 13 bitmap nodes and one collision node.
inline constexpr int kMaxDepth = kBitmapLevels + 1;

static_assert(kBranching == 32, "bitmaps are u32");
static_assert(kBitmapLevels == 13);
static_assert(kLastLevelBits == 4);

using Bitmap = std::uint32_t;

// The branch index (0..31; 0..15 at the last level) of `hash` at `level`.
constexpr unsigned Fragment(std::uint64_t hash, int level) {
  return static_cast<unsigned>(hash >> (level * kBitsPerLevel)) & (kBranching - 1);
}
static_assert(Fragment(~std::uint64_t{0}, kLastLevel) == (1u << kLastLevelBits) - 1);
static_assert(Fragment(std::uint64_t{0x1F} << 5, 1) == 31);

// The level-order key of a hash: its fragments rearranged so that level 0's is the most
// significant (bits 63..59), level 1's next, ..., level 12's 4 bits the least significant. Keys
// ordered by it are grouped by every level's fragment at once: the bulk build (bulk_build.cc)
// sorts small ranges by it instead of partitioning them level by level.
constexpr std::uint64_t LevelOrderKey(std::uint64_t hash) {
  std::uint64_t key = 0;
  for (int level = 0; level < kLastLevel; ++level)
    key = (key << kBitsPerLevel) | Fragment(hash, level);
  return (key << kLastLevelBits) | Fragment(hash, kLastLevel);
}
// Fragment(hash, level) read from LevelOrderKey(hash).
constexpr unsigned OrderFragment(std::uint64_t key, int level) {
  if (level == kLastLevel) return static_cast<unsigned>(key) & ((1u << kLastLevelBits) - 1);
  const int shift = kHashBits - (level + 1) * kBitsPerLevel;
  return static_cast<unsigned>(key >> shift) & (kBranching - 1);
}
static_assert(OrderFragment(LevelOrderKey(0x1F), 0) == 31);
static_assert(OrderFragment(LevelOrderKey(std::uint64_t{0x15} << 5), 1) == 0x15);
static_assert(OrderFragment(LevelOrderKey(std::uint64_t{0xA} << 60), kLastLevel) == 0xA);
static_assert(LevelOrderKey(1) == std::uint64_t{1} << 59);

constexpr Bitmap BitFor(unsigned fragment) { return Bitmap{1} << fragment; }

// Index of `bit`'s slot among the set bits of `map` below it (the compressed-array index).
constexpr int IndexOf(Bitmap map, Bitmap bit) { return std::popcount(map & (bit - 1)); }
static_assert(IndexOf(0b1011, 0b1000) == 2);
static_assert(IndexOf(0b1011, 0b0001) == 0);

constexpr int Count(Bitmap map) { return std::popcount(map); }

}  // namespace atomap::internal::hamt

#endif  // ATOMAP_SRC_HAMT_BITS_H_

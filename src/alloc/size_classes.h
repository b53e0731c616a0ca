// Size classes of the allocator: every piece of size-class arithmetic lives here.
//
// A request of n bytes is served by a block of its size class, ClassBytes(ClassOf(n)) >= n.
//
//   classes  0..15   16, 32, 48, ..., 256 bytes        (16-byte steps: trie nodes are
//                                                      8 + 8*children + 24*entries bytes, and
//                                                      every 16 bytes of a small node matter)
//   classes 16..87   four classes per power of two:     2^p * {5/4, 6/4, 7/4, 8/4} for p = 8..25,
//                                                      i.e. 320, 384, 448, 512, 640, ...,
//                                                      48 MiB, 56 MiB, 64 MiB
//
// Internal fragmentation: < 16 bytes below 256, at most 25% (of the block) above.
//
// Classes whose blocks are at most kMaxCachedBlockBytes (4 KiB, classes 0..31) are "cached":
// they have a private free list in each ParticipantCache and are carved from the participant's
// private bump region. Larger classes go straight to the shared lists and the shared bump
// pointer (they are rare, and the ParticipantCache must fit in 768 bytes).
#ifndef ATOMAP_SRC_ALLOC_SIZE_CLASSES_H_
#define ATOMAP_SRC_ALLOC_SIZE_CLASSES_H_

#include <algorithm>
#include <bit>
#include <cstdint>

#include "common/offset.h"

namespace atomap::internal::size_classes {

using SizeClass = std::uint32_t;

inline constexpr std::uint64_t kFineStep = 16;            // == kBlockAlign
inline constexpr std::uint64_t kFineLimit = 256;          // last fine-grained class
inline constexpr std::uint32_t kFineClasses = kFineLimit / kFineStep;  // 16
inline constexpr std::uint32_t kClassesPerDoubling = 4;
inline constexpr std::uint32_t kFineLimitLog2 = 8;        // log2(kFineLimit)
inline constexpr std::uint32_t kMaxBlockLog2 = 26;        // 64 MiB
inline constexpr std::uint64_t kMaxBlockBytes = std::uint64_t{1} << kMaxBlockLog2;
inline constexpr std::uint32_t kNumClasses =
    kFineClasses + (kMaxBlockLog2 - kFineLimitLog2) * kClassesPerDoubling;  // 88

// The private bump region a participant takes from the shared bump pointer at a time.
inline constexpr std::uint64_t kChunkBytes = std::uint64_t{64} << 10;
// Blocks up to this size are cached per participant and carved from its private chunk.
inline constexpr std::uint64_t kMaxCachedBlockBytes = kChunkBytes / 16;  // 4 KiB

static_assert(kFineStep == kBlockAlign, "the finest step is the block alignment");
static_assert(kFineLimit == std::uint64_t{1} << kFineLimitLog2);
static_assert(kNumClasses == 88);

// The block size of class c. REQUIRES: c < kNumClasses.
constexpr std::uint64_t ClassBytes(SizeClass c) {
  if (c < kFineClasses) return kFineStep * (c + 1);
  const std::uint32_t j = c - kFineClasses;
  const std::uint32_t p = kFineLimitLog2 + j / kClassesPerDoubling;
  const std::uint64_t step = (std::uint64_t{1} << p) / kClassesPerDoubling;
  return (std::uint64_t{1} << p) + step * (j % kClassesPerDoubling + 1);
}

// The smallest class whose blocks hold n bytes (n == 0 is served like n == 1).
// REQUIRES: n <= kMaxBlockBytes.
constexpr SizeClass ClassOf(std::uint64_t n) {
  if (n <= kFineLimit)
    return n == 0 ? 0 : static_cast<SizeClass>((n + kFineStep - 1) / kFineStep - 1);
  // 2^p < n <= 2^(p+1); the classes of this doubling are 2^p + step * k, k = 1..4.
  const auto p = static_cast<std::uint32_t>(std::bit_width(n - 1) - 1);
  const std::uint64_t step = (std::uint64_t{1} << p) / kClassesPerDoubling;
  const std::uint64_t k = (n - (std::uint64_t{1} << p) + step - 1) / step;  // 1..4
  return kFineClasses + (p - kFineLimitLog2) * kClassesPerDoubling + static_cast<SizeClass>(k) - 1;
}

// Number of cached classes: those with ClassBytes(c) <= kMaxCachedBlockBytes.
inline constexpr std::uint32_t kCachedClasses = ClassOf(kMaxCachedBlockBytes) + 1;  // 32
constexpr bool IsCached(SizeClass c) { return c < kCachedClasses; }

// How many blocks move between a participant's cache and the shared list at once: about 8 KiB
// worth, between 2 and 32 blocks. A cache list holds at most 2 * BatchBlocks(c) - 1 blocks, so
// one participant caches at most ~16 KiB per class, ~0.5 MiB in all.
inline constexpr std::uint64_t kBatchTargetBytes = 8 << 10;
constexpr std::uint32_t BatchBlocks(SizeClass c) {
  return static_cast<std::uint32_t>(
      std::clamp<std::uint64_t>(kBatchTargetBytes / ClassBytes(c), 2, 32));
}

// The largest class whose blocks fit in `n` bytes. REQUIRES: kFineStep <= n, n % kFineStep == 0.
// Used to carve a leftover bump tail into free blocks (it always carves exactly, because the
// 16-byte class exists).
constexpr SizeClass LargestClassWithin(std::uint64_t n) {
  const SizeClass c = ClassOf(std::min(n, kMaxBlockBytes));
  return ClassBytes(c) <= n ? c : c - 1;
}

namespace checks {
constexpr bool ClassesAreConsistent() {
  for (SizeClass c = 0; c < kNumClasses; ++c) {
    const std::uint64_t b = ClassBytes(c);
    if (b % kBlockAlign != 0) return false;                      // alignment
    if (ClassOf(b) != c) return false;                           // exact fit maps to itself
    if (c > 0 && ClassBytes(c - 1) >= b) return false;           // strictly increasing
    if (c > 0 && ClassOf(ClassBytes(c - 1) + 1) != c) return false;  // no gaps
    if (c >= kFineClasses && (b - ClassBytes(c - 1)) * 4 > b) return false;  // <= 25% waste
  }
  return true;
}
static_assert(ClassesAreConsistent());
static_assert(ClassBytes(0) == 16 && ClassBytes(15) == 256 && ClassBytes(16) == 320);
static_assert(ClassBytes(19) == 512 && ClassBytes(20) == 640);
static_assert(ClassBytes(kNumClasses - 1) == kMaxBlockBytes);
static_assert(ClassOf(0) == 0 && ClassOf(1) == 0 && ClassOf(16) == 0 && ClassOf(17) == 1);
static_assert(ClassOf(257) == 16 && ClassOf(kMaxBlockBytes) == kNumClasses - 1);
static_assert(kCachedClasses == 32 && ClassBytes(kCachedClasses - 1) == kMaxCachedBlockBytes);
static_assert(BatchBlocks(0) == 32 && BatchBlocks(kCachedClasses - 1) == 2);
static_assert(LargestClassWithin(16) == 0 && LargestClassWithin(300) == 15 &&
              LargestClassWithin(320) == 16);
}  // namespace checks

}  // namespace atomap::internal::size_classes

#endif  // ATOMAP_SRC_ALLOC_SIZE_CLASSES_H_

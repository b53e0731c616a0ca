// Allocator::RebuildSharedLists: the recovery sweep's way back into the allocator.
//
// Invariants: runs only while the caller holds the domain exclusively (no other participant, no
// other thread), so it needs no ordering beyond the release CAS of PushBatch (edge (1) of
// allocator.cc), which publishes each block's links to the next popper.
// Crash safety: a crash part-way leaves some extents unpushed — leaked, not duplicated: the heads
// are emptied first, and each block is pushed once. The next sweep finds them again.
#include <algorithm>
#include <cstdint>

#include "alloc/allocator.h"
#include "common/shared_atomic.h"

namespace atomap::internal {

void Allocator::RebuildSharedLists(absl::Span<const Block> free_extents,
                                   absl::Span<const std::uint64_t> kept_blocks) {
  using size_classes::ClassBytes;
  std::uint64_t carved[size_classes::kNumClasses] = {};
  for (SizeClass c = 0; c < size_classes::kNumClasses; ++c) {
    auto head = Shared(state_->heads[c]);
    TaggedOffset old = head.load(kRelaxed);
    head.store(TaggedOffset{kNullOffset, old.tag + 1}, kRelease);  // tags never repeat
  }
  for (const Block& extent : free_extents) {
    if (!EnsureMapped(extent.offset, extent.bytes)) continue;  // not ours to trust: leave it
    // An extent of exactly one class's size (a free block, or one leaked block) stays that
    // block; any other is carved into cached classes, largest first, as Flush carves a bump
    // tail. Never into large blocks: with no coalescing, a large block serves only large
    // requests, so turning small free space into it would strand it.
    const bool one_block = extent.bytes <= kMaxBlockBytes &&
                           ClassBytes(size_classes::ClassOf(extent.bytes)) == extent.bytes;
    for (Offset at = extent.offset, end = extent.offset + extent.bytes; at < end;) {
      const SizeClass c = one_block ? size_classes::ClassOf(extent.bytes)
                                    : size_classes::LargestClassWithin(
                                          std::min(end - at, size_classes::kMaxCachedBlockBytes));
      *ChainLink(at) = kNullOffset;
      PushBatch(c, at);
      ++carved[c];
      at += ClassBytes(c);
    }
  }
  for (SizeClass c = 0; c < size_classes::kNumClasses; ++c) {
    state_->carved_blocks[c].StoreRelaxed(kept_blocks[c] + carved[c]);
  }
}

}  // namespace atomap::internal

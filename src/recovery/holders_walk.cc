#include "recovery/holders_walk.h"

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "alloc/chain_walk.h"
#include "intent/owned_lane.h"

namespace atomap::internal {
namespace {

using size_classes::ClassBytes;
using size_classes::SizeClass;

// Every walk here is a ChainWalk inside the checker's bounds (alloc/chain_walk.h): the same
// plausibility check and bound as the library's own walks. Damage ends the walk, as a problem.
ChainWalk Walk(const CheckContext& ctx, std::uint64_t bytes) {
  return ChainWalk(ctx.Bounds(), bytes);
}

void ReportDamage(CheckContext& ctx, const ChainWalk& walk, const std::string& list) {
  if (walk.damaged()) ctx.Problem("%s: %s", list, walk.Describe());
}

template <typename T>
const T& At(const CheckContext& ctx, Offset off) {
  return *ctx.arena.At<const T>(off);
}

// Follows word 1 (the chain link) of the blocks after `first` (already accepted and added),
// adding each block. A null link ends the chain, not the walk (a list of batches goes on).
void WalkChainRest(CheckContext& ctx, ChainWalk& walk, Offset first, SizeClass c, Holder holder) {
  const std::uint64_t bytes = ClassBytes(c);
  for (Offset block = At<Offset[2]>(ctx, first)[1]; block != kNullOffset && walk.Continues(block);
       block = At<Offset[2]>(ctx, block)[1]) {
    ctx.AddBlock(block, bytes, holder);
  }
}

void WalkRetireBatches(CheckContext& ctx, Offset first, bool with_entries, const std::string& list,
                       absl::flat_hash_set<Offset>& seen) {
  ChainWalk walk = Walk(ctx, kRetireBatchBytes);
  // `reclaiming` may also be on the list (R4): a batch seen before ends the walk quietly.
  for (Offset off = first; !seen.contains(off) && walk.Continues(off);
       off = At<RetireBatch>(ctx, off).next) {
    seen.insert(off);
    const RetireBatch* batch = &At<RetireBatch>(ctx, off);
    ctx.AddBlock(off, kRetireBatchBytes, Holder::kPending);
    if (with_entries) {
      if (batch->count > RetireBatch::kCapacity) {
        ctx.Problem("%s: batch at offset %d has count %d (capacity %d)", list, off, batch->count,
                    RetireBatch::kCapacity);
      } else {
        for (std::uint32_t i = 0; i < batch->count; ++i) {
          const Block b = batch->blocks[i];
          if (b.bytes == 0 || b.bytes > Allocator::kMaxBlockBytes) {
            ctx.Problem("%s: batch at offset %d, entry %d has size %d", list, off, i, b.bytes);
            continue;
          }
          const auto entry = [&] { return list + " entry"; };
          if (ctx.Read<char>(b.offset, b.bytes, entry) == nullptr) continue;
          ctx.AddBlock(b.offset, b.bytes, Holder::kPending);
        }
      }
    }
  }
  ReportDamage(ctx, walk, list);
}

void WalkLane(CheckContext& ctx, const LaneWords& lane, const std::string& list) {
  std::vector<const OwnedBatch*> batches;
  ChainWalk walk = Walk(ctx, kOwnedBatchBytes);
  for (Offset off = lane.first_batch; walk.Continues(off); off = At<OwnedBatch>(ctx, off).next) {
    ctx.AddBlock(off, kOwnedBatchBytes, Holder::kInFlight);
    batches.push_back(&At<OwnedBatch>(ctx, off));
  }
  if (walk.damaged()) {
    ReportDamage(ctx, walk, list);
    return;
  }
  const std::uint64_t count = lane.count.LoadRelaxed();
  if (count > batches.size() * OwnedBatch::kCapacity) {
    ctx.Problem("%s: count %d exceeds its %d batches", list, count, batches.size());
    return;
  }
  for (std::uint64_t i = 0; i < count; ++i) {
    const Block b = batches[i / OwnedBatch::kCapacity]->blocks[i % OwnedBatch::kCapacity];
    if ((b.bytes & kReplacedFlag) != 0) continue;  // the base's, held by its version
    if (b.bytes == 0 || b.bytes > Allocator::kMaxBlockBytes) {
      ctx.Problem("%s: entry %d has size %d", list, i, b.bytes);
      continue;
    }
    if (ctx.Read<char>(b.offset, b.bytes, [&] { return list + " entry"; }) == nullptr) continue;
    ctx.AddBlock(b.offset, b.bytes, Holder::kInFlight);
  }
}

}  // namespace

void WalkSharedFreeLists(CheckContext& ctx, const AllocatorState& state) {
  for (SizeClass c = 0; c < size_classes::kNumClasses; ++c) {
    const std::string list = absl::StrFormat("shared free list of class %d", c);
    // One walk for the list: the blocks of all its batches are distinct (allocator.cc A4).
    ChainWalk walk = Walk(ctx, ClassBytes(c));
    // 8-byte load of the head's offset: a 128-bit load would write (cmpxchg16b).
    for (Offset batch = state.heads[c].offset; walk.Continues(batch);
         batch = At<Offset[2]>(ctx, batch)[0]) {
      ctx.AddBlock(batch, ClassBytes(c), Holder::kSharedFree);
      WalkChainRest(ctx, walk, batch, c, Holder::kSharedFree);
    }
    ReportDamage(ctx, walk, list);
  }
}

void WalkCache(CheckContext& ctx, const ParticipantCache& cache, std::uint32_t slot) {
  for (SizeClass c = 0; c < size_classes::kCachedClasses; ++c) {
    ChainWalk walk = Walk(ctx, ClassBytes(c));
    const Offset head = cache.classes[c].head;
    if (walk.Continues(head)) {
      ctx.AddBlock(head, ClassBytes(c), Holder::kCachedFree);
      WalkChainRest(ctx, walk, head, c, Holder::kCachedFree);
    }
    ReportDamage(ctx, walk, absl::StrFormat("slot %d: cached free list of class %d", slot, c));
  }
  if (cache.bump_cur < cache.bump_end) {
    const std::uint64_t len = cache.bump_end - cache.bump_cur;
    if (!ctx.Plausible(cache.bump_cur, len) || len > size_classes::kChunkBytes ||
        len % kBlockAlign != 0) {
      ctx.Problem("slot %d: allocator cache bump region [%d, %d) is not a chunk of the data region",
                  slot, cache.bump_cur, cache.bump_end);
    } else {
      ctx.space.Add(Extent{cache.bump_cur, len, Holder::kUnused, 0});
    }
  }
}

void WalkReclaimArea(CheckContext& ctx, const ReclaimArea& area, std::uint32_t slot) {
  absl::flat_hash_set<Offset> seen;
  WalkRetireBatches(ctx, area.retire_head, true, absl::StrFormat("slot %d: retire list", slot),
                    seen);
  WalkRetireBatches(ctx, area.reclaiming, true,
                    absl::StrFormat("slot %d: batch being reclaimed", slot), seen);
  WalkRetireBatches(ctx, area.spare, false, absl::StrFormat("slot %d: spare retire batches", slot),
                    seen);
  for (std::uint32_t l = 0; l < kLanesPerSlot; ++l) {
    WalkLane(ctx, area.lanes[l], absl::StrFormat("slot %d: lane %d", slot, l));
  }
}

void WalkOrphanChain(CheckContext& ctx, Offset chain) {
  absl::flat_hash_set<Offset> seen;
  WalkRetireBatches(ctx, chain, true, "orphan chain", seen);
}

}  // namespace atomap::internal

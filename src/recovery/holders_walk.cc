#include "recovery/holders_walk.h"

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"

namespace atomap::internal {
namespace {

using size_classes::ClassBytes;
using size_classes::SizeClass;

// A list can hold at most this many blocks of `bytes` each: more means a cycle.
std::uint64_t MaxBlocks(const CheckContext& ctx, std::uint64_t bytes) {
  return (ctx.limit - ctx.data_begin) / bytes + 1;
}

// Follows word 1 (the chain link) from `first`, adding each block. Returns false on damage.
bool WalkChain(CheckContext& ctx, Offset first, SizeClass c, Holder holder, std::uint64_t& budget,
               const std::string& list) {
  const std::uint64_t bytes = ClassBytes(c);
  for (Offset block = first; block != kNullOffset;) {
    if (budget-- == 0) {
      ctx.Problem("%s: longer than the data region allows (a cycle)", list);
      return false;
    }
    const auto* words = ctx.Read<Offset>(block, bytes, list);
    if (words == nullptr) return false;
    ctx.AddBlock(block, bytes, holder);
    block = words[1];
  }
  return true;
}

void WalkRetireBatches(CheckContext& ctx, Offset first, bool with_entries, const std::string& list,
                       absl::flat_hash_set<Offset>& seen) {
  std::uint64_t budget = MaxBlocks(ctx, kRetireBatchBytes);
  for (Offset off = first; off != kNullOffset;) {
    if (!seen.insert(off).second) return;  // `reclaiming` may also be on the list (R4)
    if (budget-- == 0) {
      ctx.Problem("%s: longer than the data region allows (a cycle)", list);
      return;
    }
    const auto* batch = ctx.Read<RetireBatch>(off, kRetireBatchBytes, list);
    if (batch == nullptr) return;
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
          if (ctx.Read<char>(b.offset, b.bytes, list + " entry") == nullptr) continue;
          ctx.AddBlock(b.offset, b.bytes, Holder::kPending);
        }
      }
    }
    off = batch->next;
  }
}

void WalkLane(CheckContext& ctx, const LaneWords& lane, const std::string& list) {
  std::vector<const OwnedBatch*> batches;
  std::uint64_t budget = MaxBlocks(ctx, kOwnedBatchBytes);
  for (Offset off = lane.first_batch; off != kNullOffset;) {
    if (budget-- == 0) {
      ctx.Problem("%s: longer than the data region allows (a cycle)", list);
      return;
    }
    const auto* batch = ctx.Read<OwnedBatch>(off, kOwnedBatchBytes, list);
    if (batch == nullptr) return;
    ctx.AddBlock(off, kOwnedBatchBytes, Holder::kInFlight);
    batches.push_back(batch);
    off = batch->next;
  }
  if (lane.count > batches.size() * OwnedBatch::kCapacity) {
    ctx.Problem("%s: count %d exceeds its %d batches", list, lane.count, batches.size());
    return;
  }
  for (std::uint64_t i = 0; i < lane.count; ++i) {
    const Block b = batches[i / OwnedBatch::kCapacity]->blocks[i % OwnedBatch::kCapacity];
    if ((b.bytes & kReplacedFlag) != 0) continue;  // the base's, held by its version
    if (b.bytes == 0 || b.bytes > Allocator::kMaxBlockBytes) {
      ctx.Problem("%s: entry %d has size %d", list, i, b.bytes);
      continue;
    }
    if (ctx.Read<char>(b.offset, b.bytes, list + " entry") == nullptr) continue;
    ctx.AddBlock(b.offset, b.bytes, Holder::kInFlight);
  }
}

}  // namespace

void WalkSharedFreeLists(CheckContext& ctx, const AllocatorState& state) {
  for (SizeClass c = 0; c < size_classes::kNumClasses; ++c) {
    const std::string list = absl::StrFormat("shared free list of class %d", c);
    std::uint64_t budget = MaxBlocks(ctx, ClassBytes(c));
    // 8-byte load of the head's offset: a 128-bit load would write (cmpxchg16b).
    for (Offset batch = state.heads[c].offset; batch != kNullOffset;) {
      const auto* words = ctx.Read<Offset>(batch, ClassBytes(c), list);
      if (words == nullptr) break;
      const Offset next_batch = words[0];
      if (!WalkChain(ctx, batch, c, Holder::kSharedFree, budget, list)) break;
      batch = next_batch;
    }
  }
}

void WalkCache(CheckContext& ctx, const ParticipantCache& cache, std::uint32_t slot) {
  for (SizeClass c = 0; c < size_classes::kCachedClasses; ++c) {
    std::uint64_t budget = MaxBlocks(ctx, ClassBytes(c));
    WalkChain(ctx, cache.classes[c].head, c, Holder::kCachedFree, budget,
              absl::StrFormat("slot %d: cached free list of class %d", slot, c));
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
  WalkRetireBatches(ctx, area.retire_head, true,
                    absl::StrFormat("slot %d: retire list", slot), seen);
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

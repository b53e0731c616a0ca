#include "atom/stats.h"

#include <vector>

#include "alloc/allocator.h"
#include "alloc/allocator_state.h"
#include "alloc/chain_walk.h"
#include "atom/runtime.h"
#include "domain/domain_impl.h"
#include "epoch/retire_list.h"

namespace atomap::internal {
namespace {

// The domain's orphan chain: what dead participants retired, awaiting adoption. Others may
// push onto it or take it meanwhile; every change changes its head (chain_walk.h WalkSettled).
void AddOrphanChain(const Allocator& allocator, const SharedU64& head, DomainStats& stats) {
  const Arena& arena = *allocator.arena();
  std::uint64_t blocks = 0;
  std::uint64_t bytes = 0;
  auto stamp = [&] { return head.LoadAcquire(); };
  absl::Status damage = WalkSettled(stamp, [&] {
    blocks = bytes = 0;
    ChainWalk walk(allocator, sizeof(RetireBatch));
    for (Offset b = stamp(); walk.Continues(b); b = arena.At<RetireBatch>(b)->next) {
      const RetireBatch* batch = arena.At<RetireBatch>(b);
      blocks += batch->count;
      for (std::uint32_t i = 0; i < batch->count && i < RetireBatch::kCapacity; ++i) {
        bytes += batch->blocks[i].bytes;
      }
    }
    return walk.Status(arena.path(), "orphan chain");
  });
  stats.pending_garbage_blocks += blocks;
  stats.pending_garbage_bytes += bytes;
  if (stats.damage.ok()) stats.damage = std::move(damage);
}

}  // namespace

DomainStats CollectStats(Runtime& runtime) {
  DomainImpl& domain = runtime.domain();
  SlotTable& slots = domain.slots();
  (void)domain.arena().Refresh();
  DomainStats stats;
  stats.global_epoch = runtime.epochs().CurrentEpoch();
  if (std::optional<EpochBlocker> oldest = runtime.epochs().OldestPinned()) {
    stats.any_pinned = true;
    stats.oldest_pinned_epoch = oldest->pinned_epoch;
    stats.oldest_pinned_slot = oldest->slot;
    stats.oldest_pinned_is_reader = oldest->reader;  // a reader slot's index is no writer slot's
    stats.oldest_pinned_pid =
        oldest->reader ? oldest->reader_pid : slots.Head(oldest->slot).owner_pid.LoadRelaxed();
  }
  std::vector<const ParticipantCache*> caches;
  for (std::uint32_t i = 0; i < slots.capacity(); ++i) {
    caches.push_back(&slots.AllocCache(i));
    ReclaimArea& area = slots.Reclaim(i);
    stats.pending_garbage_blocks += area.pending_blocks.LoadRelaxed();
    stats.pending_garbage_bytes += area.pending_bytes.LoadRelaxed();
  }
  stats.participants = static_cast<std::uint32_t>(slots.InUse().size());
  AddOrphanChain(runtime.allocator(), domain.header().orphan_retired, stats);
  const AllocatorStats space = runtime.allocator().Stats(caches);
  if (stats.damage.ok()) stats.damage = space.damage;
  stats.data_bytes = space.total_bytes;
  stats.live_bytes = space.live_bytes;
  stats.free_bytes = space.free_bytes;
  stats.unused_bytes = space.unused_bytes;
  return stats;
}

}  // namespace atomap::internal

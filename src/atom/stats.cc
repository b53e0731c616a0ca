// Domain::stats(): epochs, participants, pending garbage and space, gathered from the file.
#include <vector>

#include "alloc/allocator.h"
#include "alloc/allocator_state.h"
#include "alloc/chain_walk.h"
#include "atom/runtime.h"
#include "atomap/domain.h"
#include "common/shared_atomic.h"
#include "domain/domain_impl.h"
#include "epoch/retire_list.h"

namespace atomap {
namespace {

using internal::Offset;
using internal::RetireBatch;

// The domain's orphan chain: what dead participants retired, awaiting adoption. Others may
// push onto it or take it meanwhile; every change changes its head (chain_walk.h WalkSettled).
void AddOrphanChain(const internal::Allocator& allocator, const Offset& head, DomainStats& stats) {
  const internal::Arena& arena = *allocator.arena();
  std::uint64_t blocks = 0;
  std::uint64_t bytes = 0;
  auto stamp = [&] { return __atomic_load_n(&head, __ATOMIC_ACQUIRE); };
  absl::Status damage = internal::WalkSettled(stamp, [&] {
    blocks = bytes = 0;
    internal::ChainWalk walk(allocator, sizeof(RetireBatch));
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

DomainStats Domain::stats() const {
  internal::DomainImpl& domain = *impl_;
  internal::SlotTable& slots = domain.slots();
  (void)domain.arena().Refresh();
  DomainStats stats;
  stats.global_epoch = runtime_->epochs().CurrentEpoch();
  if (std::optional<internal::EpochBlocker> oldest = runtime_->epochs().OldestPinned()) {
    stats.any_pinned = true;
    stats.oldest_pinned_epoch = oldest->pinned_epoch;
    stats.oldest_pinned_slot = oldest->slot;
    stats.oldest_pinned_pid =
        internal::Shared(slots.Head(oldest->slot).owner_pid).load(internal::kRelaxed);
  }
  std::vector<const internal::ParticipantCache*> caches;
  for (std::uint32_t i = 0; i < slots.capacity(); ++i) {
    caches.push_back(reinterpret_cast<const internal::ParticipantCache*>(slots.AllocCacheArea(i)));
    auto* area = reinterpret_cast<internal::ReclaimArea*>(slots.ReclaimArea(i));
    stats.pending_garbage_blocks += internal::Shared(area->pending_blocks).load(internal::kRelaxed);
    stats.pending_garbage_bytes += internal::Shared(area->pending_bytes).load(internal::kRelaxed);
  }
  stats.participants = static_cast<std::uint32_t>(slots.InUse().size());
  AddOrphanChain(runtime_->allocator(), domain.header().orphan_retired, stats);
  const internal::AllocatorStats space = runtime_->allocator().Stats(caches);
  if (stats.damage.ok()) stats.damage = space.damage;
  stats.data_bytes = space.total_bytes;
  stats.live_bytes = space.live_bytes;
  stats.free_bytes = space.free_bytes;
  stats.unused_bytes = space.unused_bytes;
  return stats;
}

}  // namespace atomap

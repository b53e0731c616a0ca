#include "atom/participant.h"

#include <vector>

#include "alloc/allocator_state.h"
#include "atom/runtime.h"
#include "domain/slot_recovery.h"

namespace atomap::internal {
namespace {

ParticipantCache* CacheOf(Runtime& runtime, std::uint32_t slot) {
  return reinterpret_cast<ParticipantCache*>(runtime.domain().slots().AllocCacheArea(slot));
}

ReclaimArea* AreaOf(Runtime& runtime, std::uint32_t slot) {
  return reinterpret_cast<ReclaimArea*>(runtime.domain().slots().ReclaimArea(slot));
}

}  // namespace

Participant::Participant(Runtime& runtime, SlotLease lease)
    : runtime_(runtime),
      lease_(std::move(lease)),
      context_{&runtime.domain().arena(), &runtime.allocator(), CacheOf(runtime, lease_.index()),
               runtime.domain().hasher()},
      retire_(AreaOf(runtime, lease_.index()), &runtime.allocator(), context_.cache) {
  Allocator::FormatCache(context_.cache);
}

Participant::~Participant() {
  if (abandoned_) return;
  Reclaim();
  // What is not yet safe to free outlives this participant on the domain's orphan chain.
  PushOrphanBatches(runtime_.domain(), retire_.DetachChain());
  retire_.FreeSpares();
  runtime_.allocator().Flush(context_.cache);
  // lease_ releases the slot as it is destroyed.
}

void Participant::Pin() {
  // No fork check here: participants come from Runtime::ThisThread, which refuses an inherited
  // runtime, so only Unpin (of a snapshot taken before fork()) can meet one.
  if (pin_depth_++ == 0) runtime_.epochs().Pin(slot());
}

void Participant::Unpin() {
  if (--pin_depth_ == 0 && !runtime_.inherited()) runtime_.epochs().Unpin(slot());
}

void Participant::Abandon() {
  abandoned_ = true;
  lease_.Abandon();
}

void Participant::RetireAfterPublish(absl::Span<const Block> blocks) {
  retire_.Retire(runtime_.epochs().EpochAfterUnlink(), blocks);
  if (++retires_since_reclaim_ >= kRetiresPerReclaim) Reclaim();
}

void Participant::FreeUnpublished(absl::Span<const Block> blocks) {
  for (const Block& block : blocks) {
    runtime_.allocator().Free(context_.cache, block.offset, block.bytes);
  }
}

void Participant::AdoptOrphans() {
  const Offset chain = TakeOrphanBatches(runtime_.domain());
  if (chain == kNullOffset) return;
  // Orphans were retired by other processes, possibly in space grown since this process last
  // mapped; their push happens-before the take, so one refresh maps them.
  (void)runtime_.domain().arena().Refresh();
  retire_.AdoptChain(chain);
}

void Participant::TakeOverIfDead(std::uint32_t slot) {
  if (slot == this->slot()) return;
  (void)runtime_.domain().slots().TakeOverIfDead(slot, lease_.lock_fd());
}

std::uint64_t Participant::Reclaim() {
  retires_since_reclaim_ = 0;
  if (std::optional<EpochBlocker> blocker = runtime_.epochs().TryAdvance()) {
    // By (E1) a blocker is always one epoch behind, dead or alive: only its lock can tell. The
    // probe is one fcntl, at most once per kRetiresPerReclaim retirements.
    TakeOverIfDead(blocker->slot);
  }
  AdoptOrphans();
  return retire_.Reclaim(runtime_.epochs());
}

}  // namespace atomap::internal

#include "domain/slot_recovery.h"

#include "alloc/allocator.h"
#include "alloc/allocator_state.h"
#include "common/crash_point.h"
#include "common/shared_atomic.h"
#include "domain/domain_impl.h"
#include "domain/intent_recovery.h"
#include "epoch/epoch_table.h"
#include "epoch/retire_list.h"

namespace atomap::internal {
namespace {

RetireBatch* Batch(DomainImpl& domain, Offset off) { return domain.arena().At<RetireBatch>(off); }

// A dead owner's slot may be damaged (it died mid-write, or the file was): follow only offsets
// that can be a retire batch. What is dropped here is found again by the sweep.
bool PlausibleBatch(DomainImpl& domain, Offset off) {
  return off % kBlockAlign == 0 && off >= domain.data_begin() &&
         domain.arena().InBounds(off, sizeof(RetireBatch));
}

void DropImplausible(DomainImpl& domain, Offset& field) {
  if (field != kNullOffset && !PlausibleBatch(domain, field)) field = kNullOffset;
}

}  // namespace

// Memory ordering of the orphan chain:
//  (1) release CAS in Push: the chain's batches are written before it is reachable;
//      synchronises with (2).
//  (2) acquire exchange in Take.
// Push is a Treiber push (no ABA: it only links in front of what it read); Take takes the whole
// chain with one exchange, so no pop ever reads a stale `next`.
void PushOrphanBatches(DomainImpl& domain, Offset chain) {
  if (chain == kNullOffset) return;
  Offset tail = chain;
  while (Batch(domain, tail)->next != kNullOffset) tail = Batch(domain, tail)->next;
  auto head = Shared(domain.header().orphan_retired);
  Offset old = head.load(kRelaxed);
  do {
    Batch(domain, tail)->next = old;
  } while (!head.compare_exchange_weak(old, chain, kRelease, kRelaxed));  // (1)
}

Offset TakeOrphanBatches(DomainImpl& domain) {
  auto head = Shared(domain.header().orphan_retired);
  if (head.load(kRelaxed) == kNullOffset) return kNullOffset;
  return head.exchange(kNullOffset, kAcquire);  // (2)
}

// Crash points between the steps (common/crash_point.h): a survivor killed at any of them leaves
// the slot dead and still owned, and the next claimer runs this again from the top.
void RecoverDeadSlot(DomainImpl& domain, std::uint32_t slot) {
  // First: whatever happens below, the next lone open must sweep (Header::deaths_since_sweep).
  Shared(domain.header().deaths_since_sweep).fetch_add(1, kRelaxed);
  // (lead) intent recovery goes here
  // The dead owner's lists may reach space it grew after this process last mapped.
  (void)domain.arena().Refresh();
  SlotTable& slots = domain.slots();
  Allocator allocator = domain.allocator();
  auto* cache = reinterpret_cast<ParticipantCache*>(slots.AllocCacheArea(slot));
  auto* area = reinterpret_cast<ReclaimArea*>(slots.ReclaimArea(slot));
  RetireList theirs(area, &allocator, cache);
  DropImplausible(domain, area->retire_head);
  DropImplausible(domain, area->reclaiming);
  DropImplausible(domain, area->spare);

  theirs.FinishInterruptedReclaim();
  ATOMAP_CRASH_POINT(kRecoverAfterFinishReclaim);
  RecoverIntent(domain, *area, theirs, allocator, cache);
  PushOrphanBatches(domain, theirs.DetachChain());
  ATOMAP_CRASH_POINT(kRecoverAfterOrphanPush);
  theirs.FreeSpares();
  ATOMAP_CRASH_POINT(kRecoverAfterFreeSpares);
  allocator.Flush(cache);
  ATOMAP_CRASH_POINT(kRecoverAfterFlush);  // before the pin is cleared
  domain.epochs().ClearDeadPin(slot);
  ATOMAP_CRASH_POINT(kRecoverAfterClearPin);
}

}  // namespace atomap::internal

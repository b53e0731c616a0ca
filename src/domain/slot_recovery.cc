#include "domain/slot_recovery.h"

#include "alloc/allocator.h"
#include "alloc/allocator_state.h"
#include "alloc/chain_walk.h"
#include "common/crash_point.h"
#include "domain/domain_impl.h"
#include "epoch/epoch_table.h"
#include "epoch/retire_list.h"
#include "intent/intent_recovery.h"

namespace atomap::internal {

bool PlausibleBlock(const DomainImpl& domain, Offset off, std::uint64_t bytes) {
  return domain.allocator().MayBeBlock(off, bytes);
}

namespace {

RetireBatch* Batch(DomainImpl& domain, Offset off) { return domain.arena().At<RetireBatch>(off); }

// The entries of the batch at `off` (already accepted by a ChainWalk) can all be freed.
bool PlausibleEntries(DomainImpl& domain, Offset off) {
  const RetireBatch& b = *Batch(domain, off);
  if (b.count > RetireBatch::kCapacity) return false;
  for (std::uint32_t i = 0; i < b.count; ++i) {
    if (!PlausibleBlock(domain, b.blocks[i].offset, b.blocks[i].bytes)) return false;
  }
  return true;
}

// A walk of a chain of retire batches that recovery frees or hands on: no batch twice (W3).
ChainWalk BatchWalk(const Allocator& allocator) {
  return ChainWalk(allocator, sizeof(RetireBatch), ChainWalk::Repeats::kExact);
}

// Cuts the chain at `head` before its first implausible batch (and ends a cycle): recovery then
// frees and hands on only what can be blocks (the fuzzer found a survivor following a dead
// owner's wild links into the header). The cut-off rest is left to the sweep.
void TrimChain(DomainImpl& domain, Offset& head, bool with_entries) {
  const Allocator allocator = domain.allocator();
  ChainWalk walk = BatchWalk(allocator);
  Offset* link = &head;
  while (walk.Continues(*link) && (!with_entries || PlausibleEntries(domain, *link))) {
    link = &Batch(domain, *link)->next;
  }
  if (*link != kNullOffset) *link = kNullOffset;
}

}  // namespace

// Memory ordering of the orphan chain:
//  (1) release CAS in Push: the chain's batches are written before it is reachable;
//      synchronises with (2).
//  (2) acquire exchange in Take.
// Push is a Treiber push (no ABA: it only links in front of what it read); Take takes the whole
// chain with one exchange, so no pop ever reads a stale `next`.
void PushOrphanBatches(DomainImpl& domain, Offset chain) {
  const Allocator allocator = domain.allocator();
  ChainWalk walk = BatchWalk(allocator);
  if (!walk.Continues(chain)) return;  // empty, or not a batch: left to the sweep
  // The tail is the last batch the walk accepts: the link below replaces whatever it refused.
  Offset tail = chain;
  while (walk.Continues(Batch(domain, tail)->next)) tail = Batch(domain, tail)->next;
  SharedU64& head = domain.header().orphan_retired;
  Offset old = head.LoadRelaxed();
  do {
    Batch(domain, tail)->next = old;
  } while (!head.CasWeakRelease(old, chain));  // (1)
}

Offset TakeOrphanBatches(DomainImpl& domain) {
  SharedU64& head = domain.header().orphan_retired;
  if (head.LoadRelaxed() == kNullOffset) return kNullOffset;
  Offset chain = head.ExchangeAcquire(kNullOffset);  // (2)
  TrimChain(domain, chain, /*with_entries=*/true);  // a damaged file's orphan chain
  return chain;
}

// Crash points between the steps (common/crash_point.h): a survivor killed at any of them leaves
// the slot dead and still owned, and the next claimer runs this again from the top.
void RecoverDeadSlot(DomainImpl& domain, std::uint32_t slot) {
  // First: whatever happens below, the next lone open must sweep (Header::deaths_since_sweep).
  domain.header().deaths_since_sweep.FetchAddRelaxed(1);
  // The dead owner's lists may reach space it grew after this process last mapped.
  (void)domain.arena().Refresh();
  SlotTable& slots = domain.slots();
  Allocator allocator = domain.allocator();
  ParticipantCache* cache = &slots.AllocCache(slot);
  ReclaimArea* area = &slots.Reclaim(slot);
  RetireList theirs(area, &allocator, cache);
  TrimChain(domain, area->retire_head, /*with_entries=*/true);
  if (area->reclaiming != kNullOffset &&
      !(PlausibleBlock(domain, area->reclaiming, sizeof(RetireBatch)) &&
        PlausibleEntries(domain, area->reclaiming))) {
    area->reclaiming = kNullOffset;
  }
  TrimChain(domain, area->spare, /*with_entries=*/false);
  // The cache first (Flush checks every link it follows), so that the frees below go to a
  // cache whose lists are sound; flushed again at the end.
  allocator.Flush(cache);

  theirs.FinishInterruptedReclaim();
  ATOMAP_CRASH_POINT(kRecoverAfterFinishReclaim);
  RecoverIntent(*area, theirs, domain.atoms(), domain.epochs(), allocator, cache);
  // Again: the frees above may have overwritten links of a damaged chain (retire_list.h R5), and
  // the push walks it to its tail.
  TrimChain(domain, area->retire_head, /*with_entries=*/true);
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

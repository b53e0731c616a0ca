// What a survivor does with a dead participant's slot: nothing it held is lost.
//
// A participant's file-resident state is its slot: the allocator cache (blocks it had freed and
// not yet returned, and its private bump region), its retire list (garbage waiting for the
// epoch), and its pin. RecoverDeadSlot hands each back to the domain:
//  - a reclaim the dead owner had begun is finished (RetireList::FinishInterruptedReclaim);
//  - its open transactions are resolved (RecoverIntent, intent/intent_recovery.h): what they
//    allocated is freed, or, for a version it published before dying, what that version
//    replaced is retired;
//  - its pending garbage is moved, unchanged, to the domain's orphan chain, from which a live
//    participant adopts it and frees it once the epoch allows;
//  - its spare retire batches and its allocator cache go back to the shared free lists;
//  - its pin is cleared, so the global epoch can move again.
// Each step clears what it recovered before the next begins: a survivor killed in here and
// followed by another never recovers anything twice (at worst one block is left to the sweep).
#ifndef ATOMAP_SRC_DOMAIN_SLOT_RECOVERY_H_
#define ATOMAP_SRC_DOMAIN_SLOT_RECOVERY_H_

#include <cstdint>

#include "common/offset.h"

namespace atomap::internal {

class DomainImpl;

// Allocator::MayBeBlock, the one plausibility check (alloc/chain_walk.h W1), for the offsets
// that recovery reads from a dead owner's slot outside a chain walk (the batch being reclaimed,
// a batch's entries; intent_recovery.cc calls MayBeBlock itself): each is checked with it before
// it is followed or freed (what fails is left to the sweep). Chains are walked by ChainWalk, which
// applies the same check to every link.
bool PlausibleBlock(const DomainImpl& domain, Offset off, std::uint64_t bytes);

// REQUIRES: the caller holds `slot`'s lock and its owner is dead.
void RecoverDeadSlot(DomainImpl& domain, std::uint32_t slot);

// Pushes a chain of retire batches (linked by RetireBatch::next) onto the domain's orphan chain
// (Header::orphan_retired). Lock-free; safe from any participant.
void PushOrphanBatches(DomainImpl& domain, Offset chain);

// Takes the whole orphan chain (0 if empty). Lock-free; safe from any participant.
Offset TakeOrphanBatches(DomainImpl& domain);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_DOMAIN_SLOT_RECOVERY_H_

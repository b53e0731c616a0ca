// What a survivor does with a dead writer's open transactions: the online half of "a kill leaks
// nothing for good" (the offline half is the sweep, src/recovery/).
//
// The dead writer's lanes (intent/owned_lane.h) list every block its open transactions owned,
// and its intent record (intent/intent_record.h) names the version it was publishing, if any.
// RecoverIntent decides whether that version was published: the root still holds it, or its
// `observed` mark is set (V5 in atom/atom.cc). Then:
//  - published: the atom's waiters are notified (the writer may have died before it did so);
//    its lane's blocks are the version's (kept), and the base blocks it replaced,
//    staged in the lane, are retired into the dead slot's retire list unless the dead writer had
//    already retired them; the caller hands that list to the orphan chain as usual;
//  - every other lane (and the intent's lane when not published): its blocks were never
//    reachable by anyone else and are freed at once.
// Each lane and the intent are cleared before anything they listed is freed or retired, so a
// survivor killed in here never frees or retires a block twice; what it had not yet handed back
// is left to the sweep.
#ifndef ATOMAP_SRC_INTENT_INTENT_RECOVERY_H_
#define ATOMAP_SRC_INTENT_INTENT_RECOVERY_H_

#include "alloc/allocator_state.h"
#include "epoch/retire_list.h"

namespace atomap::internal {

class Allocator;
class AtomTable;
class EpochTable;

// REQUIRES: the caller holds the dead slot's lock; its interrupted reclaim is finished (so that
// the retire list's head is not a batch being freed) and its retire list not yet detached.
// `area` is the dead slot's reclamation area, `theirs` its retire list, `cache` its allocator
// cache; `atoms` and `epochs` are the domain's. Every offset read from the dead slot outside a
// chain walk is checked with Allocator::MayBeBlock (alloc/chain_walk.h W1) before it is used.
void RecoverIntent(ReclaimArea& area, RetireList& theirs, AtomTable& atoms,
                   const EpochTable& epochs, Allocator& allocator, ParticipantCache* cache);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_INTENT_INTENT_RECOVERY_H_

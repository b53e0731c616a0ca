// IntentRecord: what a writer announces in its slot between staging a commit and finishing its
// publication, so that a survivor can tell whether a dead writer's root CAS won.
//
// The question a survivor must answer is "was version V ever an atom's current value?". V is
// still the root: yes. Otherwise V was published and replaced, or never published. A writer that
// replaces a version first read it as the atom's current value, so every writer marks its base
// record (VersionRecord::observed) before its CAS: a replaced version is always marked, an
// unpublished one never (nobody can read it). The dead writer's pin keeps V's record from being
// freed and reused (a marked stale block cannot pass for V): it is cleared only after recovery.
//
// Both halves live in intent/: the writer's below (called by the participant around the root CAS
// in atom/atom.cc), the survivor's in intent_recovery.h.
//
// Protocol of one publication (atom/atom.cc numbers the ordering edges):
//   stage   the lane holds the commit's owned blocks and its replaced blocks (kReplacedFlag);
//   record  {lane, atom} then `version` = V (nonzero: the intent is live);
//   mark    the base's `observed` word;  CAS the root;
//   won     retire the replaced blocks; empty the lane; `version` = 0;
//   lost    `version` = 0; free the owned blocks from the lane's end.
// The lane is emptied before the intent is cleared on the winning path, and the intent before the
// lane on the losing path: at every instant a survivor sees either a live intent (and decides by
// the mark) or a lane that needs no decision.
//
// Layout (docs/format.md): 16 bytes in the slot's ReclaimArea (file/slot.h).
#ifndef ATOMAP_SRC_INTENT_INTENT_RECORD_H_
#define ATOMAP_SRC_INTENT_INTENT_RECORD_H_

#include <cassert>
#include <cstdint>

#include "common/offset.h"
#include "file/slot.h"
#include "hamt/transient.h"
#include "intent/owned_lane.h"

namespace atomap::internal {

class Allocator;
struct ParticipantCache;

// The writer's half. `intent` is the writer's own record (its slot's ReclaimArea::intent); a
// commit without a ledger (no lane was free) announces nothing, and a survivor cannot recover it
// (its blocks are the offline sweep's).
// The three on the publishing path are inline: each is a store or two on every swap.

// The commit's lane. REQUIRES: every commit's ledger is an OwnedLane (the atoms layer lends
// nothing else).
inline OwnedLane* LaneOf(const hamt::CommitResult& commit) {
  assert(commit.ledger == nullptr || dynamic_cast<OwnedLane*>(commit.ledger) != nullptr);
  return static_cast<OwnedLane*>(commit.ledger);
}

// record: before the CAS; {lane, atom} first, then the version (release: nonzero is live).
inline void AnnounceIntent(IntentRecord& intent, std::uint32_t atom,
                           const hamt::CommitResult& commit) {
  const OwnedLane* lane = LaneOf(commit);
  if (lane == nullptr) return;
  intent.atom = atom;
  intent.lane = lane->index();
  intent.version.StoreRelease(commit.version);  // last: a nonzero version is live
}

// lost: after a lost CAS, before the lane's frees.
inline void WithdrawIntent(IntentRecord& intent) { intent.version.StoreRelease(kNullOffset); }

// won: after the retire, the lane emptied, then the intent cleared.
inline void FinishPublication(IntentRecord& intent, const hamt::CommitResult& commit) {
  OwnedLane* lane = LaneOf(commit);
  if (lane == nullptr) return;
  lane->Truncate(0);  // the lane before the intent
  intent.version.StoreRelease(kNullOffset);
}
// lost (or abandoned before the CAS): frees the commit's blocks, from its lane's end when it has
// one (L4 of owned_lane.h), and empties the lane; the staged replaced blocks are the base's and
// are only forgotten.
void FreeUnpublished(const hamt::CommitResult& commit, Allocator& allocator,
                     ParticipantCache* cache);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_INTENT_INTENT_RECORD_H_

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
// Layout (docs/format.md): 16 bytes in the slot's ReclaimArea.
#ifndef ATOMAP_SRC_INTENT_INTENT_RECORD_H_
#define ATOMAP_SRC_INTENT_INTENT_RECORD_H_

#include <cstdint>

#include "common/offset.h"

namespace atomap::internal {

// Lanes per slot: transactions one thread may have open at once with online recovery. A further
// concurrent transaction still works; what it allocates is recovered only by the offline sweep.
inline constexpr std::uint32_t kLanesPerSlot = 4;

struct IntentRecord {
  Offset version;      // the version record being published (0: no intent)
  std::uint32_t atom;  // the atom whose root the CAS targets
  std::uint32_t lane;  // the lane holding that commit's blocks
};
static_assert(sizeof(IntentRecord) == 16);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_INTENT_INTENT_RECORD_H_

#include "intent/intent_record.h"

#include "alloc/allocator.h"
#include "common/crash_point.h"
#include "intent/owned_lane.h"

namespace atomap::internal {

void FreeUnpublished(const hamt::CommitResult& commit, Allocator& allocator,
                     ParticipantCache* cache) {
  OwnedLane* lane = LaneOf(commit);
  if (lane == nullptr) {
    for (const Block& b : commit.allocated) allocator.Free(cache, b.offset, b.bytes);
    return;
  }
  lane->Truncate(commit.ledger_owned);  // the staged replaced blocks are the base's: not ours
  lane->FreeEntries([] { ATOMAP_CRASH_POINT(kLostCasMidFree); });
}

}  // namespace atomap::internal

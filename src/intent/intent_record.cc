#include "intent/intent_record.h"

#include "alloc/allocator.h"
#include "common/crash_point.h"
#include "common/shared_atomic.h"
#include "intent/owned_lane.h"

namespace atomap::internal {
namespace {

OwnedLane* LaneOf(const hamt::CommitResult& commit) {
  return static_cast<OwnedLane*>(commit.ledger);  // REQUIRES of intent_record.h
}

}  // namespace

void AnnounceIntent(IntentRecord& intent, std::uint32_t atom, const hamt::CommitResult& commit) {
  const OwnedLane* lane = LaneOf(commit);
  if (lane == nullptr) return;
  intent.atom = atom;
  intent.lane = lane->index();
  Shared(intent.version).store(commit.version, kRelease);  // last: a nonzero version is live
}

void WithdrawIntent(IntentRecord& intent) {
  Shared(intent.version).store(kNullOffset, kRelease);  // before the lane's frees
}

void FinishPublication(IntentRecord& intent, const hamt::CommitResult& commit) {
  OwnedLane* lane = LaneOf(commit);
  if (lane == nullptr) return;
  lane->Truncate(0);  // the lane before the intent
  Shared(intent.version).store(kNullOffset, kRelease);
}

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

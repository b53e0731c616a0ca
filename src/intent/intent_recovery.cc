#include "intent/intent_recovery.h"

#include <algorithm>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "alloc/allocator.h"
#include "alloc/chain_walk.h"
#include "common/crash_point.h"
#include "common/shared_atomic.h"
#include "epoch/epoch_table.h"
#include "file/atom_table.h"
#include "file/change_notification.h"
#include "hamt/node.h"
#include "intent/intent_record.h"
#include "intent/owned_lane.h"

namespace atomap::internal {
namespace {

// The lane's entries (deduplicated: L3) and its batches; stops at the first implausible link and
// at the first batch seen before (a cycle: freed once).
struct LaneContents {
  std::vector<Block> owned;
  std::vector<Block> replaced;  // flag cleared
  std::vector<Offset> batches;
};

LaneContents ReadLane(const Allocator& allocator, const LaneWords& words) {
  LaneContents lane;
  // The batches its count needs, and a few reserved beyond; never more than the mapping holds
  // nor one twice (W2, W3: a damaged count can be anything, and a cycle would fill memory:
  // fuzzer bug H; the batches are freed).
  const std::uint64_t max_batches = words.count.LoadRelaxed() / OwnedBatch::kCapacity + 1 + 64;
  const Arena& arena = *allocator.arena();
  ChainWalk walk(allocator, kOwnedBatchBytes, ChainWalk::Repeats::kExact);
  for (Offset b = words.first_batch; lane.batches.size() < max_batches && walk.Continues(b);
       b = arena.At<OwnedBatch>(b)->next) {
    lane.batches.push_back(b);
  }
  absl::flat_hash_set<Offset> seen;
  const std::uint64_t count = std::min<std::uint64_t>(words.count.LoadRelaxed(),
                                                      lane.batches.size() * OwnedBatch::kCapacity);
  for (std::uint64_t i = 0; i < count; ++i) {
    const OwnedBatch* batch = arena.At<OwnedBatch>(lane.batches[i / OwnedBatch::kCapacity]);
    Block block = batch->blocks[i % OwnedBatch::kCapacity];
    const bool replaced = (block.bytes & kReplacedFlag) != 0;
    block.bytes &= ~kReplacedFlag;
    if (!allocator.MayBeBlock(block.offset, block.bytes) || !seen.insert(block.offset).second)
      continue;
    (replaced ? lane.replaced : lane.owned).push_back(block);
  }
  return lane;
}

// True if the version the dead writer announced was ever an atom's current value (V5).
bool Published(const AtomTable& atoms, const Allocator& allocator, const IntentRecord& intent) {
  const Offset version = intent.version.LoadRelaxed();  // `intent` is a private copy
  if (version == kNullOffset || intent.lane >= kLanesPerSlot || intent.atom >= atoms.capacity() ||
      !allocator.MayBeBlock(version, hamt::kNarrowVersionRecordBytes)) {
    return false;
  }
  // Partner of atom.cc (2) and (8): a root written after the replacing CAS shows its mark.
  if (atoms.Root(intent.atom).LoadAcquire() == version) return true;
  auto* record = allocator.arena()->At<hamt::VersionRecord>(version);
  return (record->observed.LoadAcquire() & hamt::kObservedBit) != 0;
}

}  // namespace

void RecoverIntent(ReclaimArea& area, RetireList& theirs, AtomTable& atoms,
                   const EpochTable& epochs, Allocator& allocator, ParticipantCache* cache) {
  const IntentRecord intent = area.intent;
  const bool published = Published(atoms, allocator, intent);
  // The dead writer may have died before its notification (atom.cc V4): notify for it, before
  // the intent that tells us so is cleared. A repeat for a writer that had notified, or by a
  // second survivor after this one died here, is a spurious wake-up (change_notification.h K4).
  if (published) NotifyChange(atoms, intent.atom);
  std::vector<Block> to_free;
  std::vector<Block> to_retire;
  for (std::uint32_t l = 0; l < kLanesPerSlot; ++l) {
    LaneWords& words = area.lanes[l];
    if (words.first_batch == kNullOffset && words.count.LoadRelaxed() == 0) continue;
    LaneContents lane = ReadLane(allocator, words);
    if (published && l == intent.lane) {
      to_retire = std::move(lane.replaced);  // the owned blocks are the published version's
    } else {
      to_free.insert(to_free.end(), lane.owned.begin(), lane.owned.end());
    }
    for (Offset b : lane.batches) to_free.push_back(Block{b, kOwnedBatchBytes});
    // Cleared before anything it listed is handed back (release stores: in this order).
    words.count.StoreRelease(0);
    Shared(words.first_batch).store(kNullOffset, kRelease);
  }
  // After the lanes: an intent with an empty lane is inert.
  area.intent.version.StoreRelease(kNullOffset);
  ATOMAP_CRASH_POINT(kRecoverAfterIntentCleared);

  // What the dead writer already retired (it may have died part-way through Retire).
  absl::flat_hash_set<Offset> retired;
  theirs.ForEachPending([&](const Block& b) { retired.insert(b.offset); });
  std::erase_if(to_retire, [&](const Block& b) { return retired.contains(b.offset); });
  if (!to_retire.empty() && theirs.Prepare(to_retire.size()).ok()) {
    // Read now, after the dead writer's CAS: no older than the epoch it would have used (P3).
    theirs.Retire(epochs.EpochAfterUnlink(), to_retire);
  }  // else the domain is full: the blocks stay leaked until the sweep
  for (const Block& b : to_free) allocator.Free(cache, b.offset, b.bytes);
}

}  // namespace atomap::internal

// The layout of one participant slot (kSlotBytes, common/layout.h): plain structs, no behaviour.
//
// A Slot is one typed struct, so that each layer reaches its words as members (no casts of byte
// offsets). The slot's parts belong to different layers: the head's liveness words to the slot
// table (file/slot_table.h), its pinned-epoch word to the epoch table (epoch/epoch_table.h), the
// ReclaimArea's retire-list words to the retire list (epoch/retire_list.h), its intent record and
// lanes to the intent protocol (intent/intent_record.h, intent/owned_lane.h), and the rest of
// the slot to the allocator's cache (alloc/allocator_state.h, the one part declared below, by its
// owner), but for its last lines, the combining mailbox (atom/combine.h). The layout is declared
// here, below all the others, so that no layer needs a higher layer's header to know where its
// words are.
//
// Part of the file format (docs/format.md): every offset below is asserted against the constants
// of common/layout.h.
#ifndef ATOMAP_SRC_FILE_SLOT_H_
#define ATOMAP_SRC_FILE_SLOT_H_

#include <cstddef>
#include <cstdint>

#include "alloc/allocator_state.h"
#include "common/layout.h"
#include "common/offset.h"
#include "common/shared_word.h"

namespace atomap::internal {

// The first cache line of a slot.
struct SlotHead {
  SharedU32 state;         // a SlotState (file/slot_table.h)
  SharedU32 owner_pid;     // informational (pids are reused; the lock is the truth)
  SharedU64 owner_token;   // S3 (file/slot_table.h)
  SharedU64 pinned_epoch;  // the epoch table's announcement; 0 = not pinned
  std::uint8_t reserved[40];
};
static_assert(sizeof(SlotHead) == kSlotReclaimOffset);
static_assert(offsetof(SlotHead, owner_pid) == 4);
static_assert(offsetof(SlotHead, owner_token) == 8);
static_assert(offsetof(SlotHead, pinned_epoch) == kSlotPinnedEpochOffset);

// Lanes per slot: transactions one thread may have open at once with online recovery. A further
// concurrent transaction still works; what it allocates is recovered only by the offline sweep.
inline constexpr std::uint32_t kLanesPerSlot = 4;

// What a writer announces between staging a commit and finishing its publication
// (intent/intent_record.h).
struct IntentRecord {
  SharedU64 version;   // the version record being published (0: no intent)
  std::uint32_t atom;  // the atom whose root the CAS targets
  std::uint32_t lane;  // the lane holding that commit's blocks
};
static_assert(sizeof(IntentRecord) == 16);

// One ownership lane's words (intent/owned_lane.h).
struct LaneWords {
  Offset first_batch;  // linked like the batches' `next` words, with release stores
  SharedU64 count;
};
static_assert(sizeof(LaneWords) == 16);
static_assert(offsetof(LaneWords, count) == 8);

// A slot's reclamation area, at kSlotReclaimOffset: its retire list (epoch/retire_list.h), and
// the intent record and ownership lanes of the transactions it has open (intent/).
struct ReclaimArea {
  Offset retire_head;            // newest batch (0: nothing pending)
  Offset reclaiming;             // a batch unlinked and being freed (retire_list.h R4)
  Offset spare;                  // chain of empty batches made by Prepare (retire_list.h R3)
  SharedU64 pending_blocks;  // statistics, read by other participants
  SharedU64 pending_bytes;
  IntentRecord intent;
  LaneWords lanes[kLanesPerSlot];
  std::uint64_t reserved[9];
};
static_assert(sizeof(ReclaimArea) == kSlotReclaimBytes);
static_assert(offsetof(ReclaimArea, pending_blocks) == 24);
static_assert(offsetof(ReclaimArea, pending_bytes) == 32);
static_assert(offsetof(ReclaimArea, intent) == 40);
static_assert(offsetof(ReclaimArea, lanes) == 56);

// The combining mailbox (atom/combine.h): where the slot's owner posts a batch of ops for
// whichever writer publishes next. Unlike the rest of the slot it is not zeroed when the slot is
// claimed (the sequence number must keep growing across owners, combine.h C5); the claim
// settles it instead (SlotTable::SettleMailbox). Every word is read by other processes while
// the owner writes it: all are atomic words, the payload guarded by `post` as a seqlock.
struct CombineMailbox {
  static constexpr std::size_t kPayloadWords = 20;
  SharedU64 post;    // seq << 1 | busy: the batch being posted (busy) or last posted
  SharedU64 acked;   // the highest seq whose outcome its poster needs no more
  SharedU32 atom;    // the atom the batch is for
  SharedU32 shape;   // op count (low 8 bits), then payload bytes (next 16)
  SharedU64 notice;  // a seq that another writer published: a wake-up, never trusted
  SharedU64 payload[kPayloadWords];  // the encoded ops (atom/combine.cc)
};
static_assert(sizeof(CombineMailbox) == kSlotCombineBytes);
static_assert(offsetof(CombineMailbox, acked) == 8);
static_assert(offsetof(CombineMailbox, notice) == 24);
static_assert(offsetof(CombineMailbox, payload) == 32);

// One slot of the slot table: kSlotBytes, four parts, each on its own cache line (layout.h).
struct Slot {
  SlotHead head;                  // liveness and the pinned epoch
  ReclaimArea reclaim;            // retire list, intent record, lanes
  ParticipantCache alloc_cache;   // the allocator's per-participant cache
  std::uint8_t reserved[kSlotCombineOffset - kSlotAllocCacheOffset - sizeof(ParticipantCache)];
  CombineMailbox mailbox;         // combining (since format 5)
};
// The file format (docs/format.md): every part where common/layout.h puts it.
static_assert(sizeof(Slot) == kSlotBytes);
static_assert(offsetof(Slot, head) == 0);
static_assert(offsetof(Slot, reclaim) == kSlotReclaimOffset);
static_assert(offsetof(Slot, alloc_cache) == kSlotAllocCacheOffset);
static_assert(offsetof(Slot, mailbox) == kSlotCombineOffset);
static_assert(offsetof(Slot, head) + offsetof(SlotHead, pinned_epoch) == kSlotPinnedEpochOffset);
static_assert(alignof(Slot) <= 64 && kSlotBytes % 64 == 0, "slots tile the table");

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_FILE_SLOT_H_

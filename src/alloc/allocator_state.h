// The allocator's structures in the file: AllocatorState (one per domain, at kHeaderBytes) and
// ParticipantCache (one per slot, at kSlotAllocCacheOffset). Plain structs of integers: the
// AllocatorState's words that every participant touches (magic, bump, carved_blocks) are
// SharedWords (common/shared_word.h); the 128-bit heads and the caches' words are accessed through
// Shared() (ipc_atomic_ref) where more than one participant may touch them, and by their owner
// alone otherwise. Offsets are from the start of the file, never pointers.
//
// Byte layouts (little-endian; docs/allocator.md has the same tables):
//
// AllocatorState (sizeof 2240 <= kAllocatorStateBytes = 4096)
//   0     u64  magic            kAllocatorMagic once formatted
//   8     u32  version          kAllocatorVersion
//   12    u32  num_classes      size_classes::kNumClasses (88)
//   16    u64  data_begin       first byte of the data region (page aligned)
//   24    u64  chunk_bytes      size_classes::kChunkBytes, recorded for checkers
//   32    u64  reserved[4]
//   64    u64  bump             shared bump pointer: [data_begin, bump) has been handed out
//                               (own cache line: the only word every refill touches)
//   72    u64  reserved[7]
//   128   FreeListHead heads[88]    16 bytes each: {u64 offset, u64 tag}, 16-byte aligned
//   1536  u64  carved_blocks[88]    blocks of each class carved, folded in from caches
//   2240  end
//
// ParticipantCache (sizeof 544 <= kSlotAllocCacheBytes = 768)
//   0     u64  bump_cur         private bump region [bump_cur, bump_end) (empty if cur >= end)
//   8     u64  bump_end
//   16    u64  reserved[2]
//   32    CachedClass classes[32]  16 bytes each, for the cached classes (blocks <= 4 KiB):
//           +0  u64 head           first block of the private free list (0: empty)
//           +8  u32 count          blocks on the list
//           +12 u32 carved         blocks of this class carved here, not yet folded into
//                                  AllocatorState::carved_blocks
//   544   end
//
// A free block's first two words are links (the block has no header while it is live):
//   word 0  next batch on a shared list (only meaningful in a batch's first block)
//   word 1  next block in the same batch / on the same private list (0 ends it)
#ifndef ATOMAP_SRC_ALLOC_ALLOCATOR_STATE_H_
#define ATOMAP_SRC_ALLOC_ALLOCATOR_STATE_H_

#include <cstddef>
#include <cstdint>

#include "alloc/size_classes.h"
#include "common/layout.h"
#include "common/offset.h"
#include "common/shared_word.h"

namespace atomap::internal {

// Each format's magic differs from the one before on purpose: it is a tripwire. A process of the
// older format that read PATH's header before `atomap upgrade` rewrote it, and then waited on its
// attach lock, checks this word when it maps the tables (after the lock) and refuses the file
// (DataLoss) instead of running as the older format beside this one's processes. Upgrade writes
// it before the header (recovery/upgrade.cc).
inline constexpr std::uint64_t kAllocatorMagic = 0x35434f4c414d5441;         // "ATMALOC5" LE
inline constexpr std::uint64_t kFormat4AllocatorMagic = 0x34434f4c414d5441;  // "ATMALOC4" LE
inline constexpr std::uint64_t kFormat3AllocatorMagic = 0x33434f4c414d5441;  // "ATMALOC3" LE
inline constexpr std::uint64_t kFormat2AllocatorMagic = 0x434f4c4c414d5441;  // "ATMALLOC" LE
inline constexpr std::uint32_t kAllocatorVersion = 1;

// A shared free list's head: the offset of its first batch (0: empty) and a tag incremented
// by every successful CAS of the head. CAS'd as one 128-bit word (cmpxchg16b).
struct alignas(16) TaggedOffset {
  Offset offset;
  std::uint64_t tag;
};
static_assert(sizeof(TaggedOffset) == 16);
using FreeListHead = TaggedOffset;

struct AllocatorState {
  SharedU64 magic;  // stored last when formatted (release)
  std::uint32_t version;
  std::uint32_t num_classes;
  Offset data_begin;
  std::uint64_t chunk_bytes;
  std::uint64_t reserved0[4];
  alignas(64) SharedU64 bump;
  std::uint64_t reserved1[7];
  alignas(64) FreeListHead heads[size_classes::kNumClasses];
  SharedU64 carved_blocks[size_classes::kNumClasses];
};
static_assert(sizeof(AllocatorState) <= kAllocatorStateBytes);
static_assert(offsetof(AllocatorState, magic) == 0);
static_assert(offsetof(AllocatorState, bump) == 64);
static_assert(offsetof(AllocatorState, heads) == 128);
static_assert(offsetof(AllocatorState, carved_blocks) == 1536);
static_assert(sizeof(AllocatorState) == 2240);
static_assert(kHeaderBytes % 64 == 0, "AllocatorState must start on a cache line");

struct CachedClass {
  Offset head;
  std::uint32_t count;
  std::uint32_t carved;
};
static_assert(sizeof(CachedClass) == 16);

struct ParticipantCache {
  Offset bump_cur;
  Offset bump_end;
  std::uint64_t reserved[2];
  CachedClass classes[size_classes::kCachedClasses];
};
static_assert(sizeof(ParticipantCache) <= kSlotAllocCacheBytes);
static_assert(offsetof(ParticipantCache, classes) == 32);
static_assert(sizeof(ParticipantCache) == 544);
static_assert(kSlotAllocCacheOffset % 64 == 0, "a ParticipantCache starts on a cache line");

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_ALLOC_ALLOCATOR_STATE_H_

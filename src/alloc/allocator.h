// Allocator: lock-free allocation of blocks inside a domain. (Interface fixed here; see
// allocator.cc for the implementation and docs/design.md for the design.)
//
// Contract
//  - Blocks are identified by Offset, aligned to kBlockAlign, and never carry a header: the
//    caller passes the same `bytes` to Free() that it passed to Allocate() (the trie can always
//    recompute a node's size from the node itself).
//  - The common case (a hit in the caller's ParticipantCache) touches no shared cache line.
//  - Shared free lists are Treiber stacks whose heads are {offset, tag} words CAS'd as one
//    128-bit word; the 64-bit tag cannot wrap in practice (ABA-safe).
//  - No lock is ever held in shared memory. Growth of the file goes through Arena::Grow (an OFD
//    lock the kernel drops if the holder dies).
//  - Allocate() returns ResourceExhausted when the domain cannot grow (max size, disk full);
//    nothing already allocated is affected.
//
// Thread safety: an Allocator is safe to use from any thread of any process that maps the file.
// A ParticipantCache belongs to one participant (one thread at a time).
#ifndef ATOMAP_SRC_ALLOC_ALLOCATOR_H_
#define ATOMAP_SRC_ALLOC_ALLOCATOR_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "alloc/allocator_state.h"
#include "alloc/block_bounds.h"
#include "alloc/size_classes.h"
#include "arena/arena.h"
#include "common/layout.h"
#include "common/offset.h"

namespace atomap::internal {

// Defined in alloc/allocator_state.h (layouts documented there and in docs/allocator.md):
//   AllocatorState    in the file at kHeaderBytes; sizeof <= kAllocatorStateBytes
//   ParticipantCache  in each slot at kSlotAllocCacheOffset; sizeof <= kSlotAllocCacheBytes

struct SizeClassStats {
  std::uint64_t block_bytes = 0;  // the class's block size
  std::uint64_t live_blocks = 0;
  std::uint64_t free_blocks = 0;  // in shared lists and participant caches
};

struct AllocatorStats {
  std::uint64_t total_bytes = 0;  // handed out of the data region so far (bump pointer - start)
  std::uint64_t live_bytes = 0;   // in blocks currently allocated
  std::uint64_t free_bytes = 0;   // in blocks on free lists or in caches
  // Carved but not yet split into blocks (participants' bump tails).
  std::uint64_t unused_bytes = 0;
  std::vector<SizeClassStats> classes;
  // OK, or DataLoss naming the file and the first damaged list (a cycle, a link that is not a
  // block: alloc/chain_walk.h). The figures then count only the lists' sound prefixes.
  absl::Status damage;
  // Invariant checked by tests: live_bytes + free_bytes + unused_bytes == total_bytes when no
  // participant has crashed; after crashes <= (the difference: bytes a crash lost uncounted).
  // live_bytes includes blocks leaked by crashes (allocated, never published or freed).
};

class Allocator {
 public:
  // The largest single block; larger requests are InvalidArgument.
  static constexpr std::uint64_t kMaxBlockBytes = std::uint64_t{64} << 20;

  // Writes a fresh AllocatorState whose data region starts at `data_begin` (page aligned).
  // REQUIRES: the state's bytes are zero; called once, by the creator of the domain.
  static void Format(AllocatorState* state, Offset data_begin);
  // Zeroes a cache (a slot being claimed for the first time).
  static void FormatCache(ParticipantCache* cache);
  // Checks a state read from a file before use (opening a domain): magic, version, class count,
  // data_begin, bump within [data_begin, domain_size], every list head inside the data region.
  // FailedPrecondition for a file that is not an allocator of this version, DataLoss for one
  // whose fields are inconsistent; the message names `path` and the field.
  // Safe while other participants allocate (the heads are read before the bump pointer).
  static absl::Status Validate(const AllocatorState* state, std::uint64_t domain_size,
                               std::string_view path);

  // The block size a request of `bytes` really occupies (its size class).
  static std::uint64_t BlockBytes(std::uint64_t bytes);

  Allocator(Arena* arena, AllocatorState* state) : arena_(arena), state_(state) {}

  absl::StatusOr<Offset> Allocate(ParticipantCache* cache, std::uint64_t bytes);
  // REQUIRES: `off` came from Allocate(_, bytes) with the same `bytes`, and is not freed yet.
  void Free(ParticipantCache* cache, Offset off, std::uint64_t bytes);
  // Returns every block cached in `cache` to the shared lists (detach, or a survivor taking a
  // dead participant's slot over), and its unused bump region, carved into blocks. The cache is
  // zeroed afterwards. Idempotent.
  // REQUIRES: the caller owns `cache`, or its owner is dead (never while the owner runs).
  void Flush(ParticipantCache* cache);

  // True if [off, off + bytes) can be a block of this allocator: BlockBounds::Holds it (aligned,
  // in the data region, of a size it hands out) within this process's mapping, after a Refresh
  // if needed. For following what a dead participant or a damaged file left: every walk checks
  // each offset with it before reading there, through ChainWalk (alloc/chain_walk.h).
  bool MayBeBlock(Offset off, std::uint64_t bytes) const {
    return bounds().Holds(off, bytes) || MayBeBlockAfterRefresh(off, bytes);
  }
  // [data_begin, mapped size): where blocks can lie as far as this process can see now.
  BlockBounds bounds() const { return BlockBounds{state_->data_begin, arena_->mapped_size()}; }

  // Replaces every shared free list with blocks carved from `free_extents` (an extent of exactly
  // one class's size becomes that block; any other is carved into cached classes, largest first,
  // as Flush carves a bump tail), and sets carved_blocks[c] to
  // kept_blocks[c] plus the blocks of class c carved here. For the recovery sweep
  // (src/recovery/): kept_blocks counts every block that stays allocated or cached, less the
  // caches' unfolded `carved` counters, so that Stats stays exact.
  // REQUIRES: nobody else uses this domain's allocator meanwhile (the caller holds the domain
  // exclusively); the extents are 16-byte aligned, disjoint, inside [data_begin, bump), and
  // hold no block anyone will use; kept_blocks.size() == size_classes::kNumClasses.
  void RebuildSharedLists(absl::Span<const Block> free_extents,
                          absl::Span<const std::uint64_t> kept_blocks);

  // Walks the shared lists and the given caches. O(free blocks); for check/stat, not hot paths.
  // Every list is walked by a ChainWalk: a damaged one (a cycle, a wild link) ends its walk and
  // sets `damage`, never a hang. Exact when no participant allocates or frees meanwhile (the
  // lists are walked unlocked) and `caches` holds every cache that has not been Flushed since
  // it was last used; run concurrently, a torn list may read as damage.
  AllocatorStats Stats(const std::vector<const ParticipantCache*>& caches) const;

  Arena* arena() const { return arena_; }

 private:
  using SizeClass = size_classes::SizeClass;

  Offset* BatchLink(Offset block) const;  // word 0 of a free block
  Offset* ChainLink(Offset block) const;  // word 1 of a free block
  // True if [off, off + len) is mapped here, after a Refresh() if needed.
  bool EnsureMapped(Offset off, std::uint64_t len) const;
  bool MayBeBlockAfterRefresh(Offset off, std::uint64_t bytes) const;

  void PushBatch(SizeClass c, Offset first);
  absl::StatusOr<Offset> PopBatch(SizeClass c);
  absl::StatusOr<Offset> BumpShared(std::uint64_t bytes);

  void CountCarved(ParticipantCache* cache, SizeClass c);
  void PushPrivate(ParticipantCache* cache, SizeClass c, Offset block);
  void SpillPrivate(ParticipantCache* cache, SizeClass c);
  void RetireBumpTailPrivate(ParticipantCache* cache);
  absl::StatusOr<Offset> AllocateSlow(ParticipantCache* cache, SizeClass c);
  absl::StatusOr<Offset> AllocateLarge(SizeClass c);

  Arena* arena_;
  AllocatorState* state_;
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_ALLOC_ALLOCATOR_H_

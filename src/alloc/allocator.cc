// Allocator implementation. Layouts: allocator_state.h; size classes: size_classes.h; the
// design in prose: docs/allocator.md.
//
// Invariants
//  (A1) Every block ever handed out lies in [data_begin, bump), and bump <= the domain's published
//       size: the shared bump pointer only advances by a CAS made after this process has grown
//       (or mapped) the domain past the new value. A failed grow leaves bump unchanged.
//  (A2) [data_begin, bump) is partitioned into: live blocks, free blocks (on exactly one shared
//       list or one participant's private list), participants' unused bump regions
//       [bump_cur, bump_end), and bytes lost to a crash (see (A5)). Hence, with no crash,
//       live + free + unused == bump - data_begin (AllocatorStats).
//  (A3) A block never changes class: it is carved as class c, freed to a list of class c and
//       handed out again as class c. So carved_blocks[c] (shared + every cache's `carved`) minus
//       the free blocks of class c is the number of live blocks of class c.
//  (A4) A shared list is a Treiber stack of batches. A batch is a chain of 1..32 free blocks of
//       one class linked through word 1 (0 ends it); word 0 of a batch's first block links to the
//       next batch. The head is {offset, tag}; every successful CAS of a head increments its tag,
//       so a head value never repeats (ABA-safe: at 10^9 CAS per second a 64-bit tag wraps after
//       ~584 years).
//  (A5) Crash safety (kill -9 at any instruction): every block is, at every instant, on at most
//       one list or region — never two. The owner writes its ParticipantCache so that each
//       prefix of its stores leaves well-formed lists and a region [cur, end) that it owns or is
//       empty; a crash may leak (lose) a few blocks or, between taking a chunk from the shared
//       bump and recording it, one chunk, but never duplicate one. Leaked bytes are counted as
//       live, or not at all (A6), until the mark-and-sweep backstop (or atomap check --repair)
//       returns them.
//  (A6) Counters never over-count: a block is counted in `carved` only after the bump region
//       that holds it has been advanced past it, and a fold zeroes the private counter before
//       adding it to the shared one. So after crashes live + free + unused <= total (the
//       difference is bytes a crash lost uncounted), and == total when no participant crashed.
//  (A7) Every walk of a list (Stats, Flush, the count of a popped batch) is a ChainWalk
//       (chain_walk.h): the one plausibility check on every link, a bound, repeat detection.
//       The hot paths walk nothing: a pop or push reads one link, and SpillPrivate follows at
//       most a batch of the owner's own list, which it built itself by its pushes.
//
// Memory ordering (numbered edges; partners named)
//  (1) PushBatch: release CAS of a list head, after writing the batch's links (word 1 of each
//      block, word 0 of the first) and after the freeing participant's last use of the blocks;
//      synchronises with (2)/(3) of the participant that pops the batch. Every write of a head
//      after Format is a CAS (a read-modify-write), so an acquire load synchronises with every
//      release CAS before it in the head's modification order (release sequences).
//  (2) PopBatch: acquire load of a list head before reading word 0 of its first block.
//  (3) PopBatch: acquire on both outcomes of the head CAS (a failed CAS reloads the head, whose
//      first block's word 0 is read next).
//  (4) Shared bump pointer: relaxed CAS. It only divides address ranges between participants;
//      the atomicity of the RMW is what makes ranges disjoint. Nothing is published through it:
//      a block's contents reach another participant through (1)/(2) or through the trie's root
//      CAS. Mapping: each participant checks its own mapping (Arena::mapped_size) before the CAS.
//  (5) Owner stores to its ParticipantCache (and to word 1 of its privately listed blocks) are
//      release stores through Shared(): on x86 a plain mov that neither the compiler nor the CPU
//      reorders after the stores before it. No other thread reads them concurrently; they are
//      ordered for a survivor that reads the cache after the owner was killed (the kernel's
//      release of the owner's OFD lock, which the survivor then takes, orders the rest).
//  (6) carved_blocks[c]: relaxed fetch_add; statistics only, read when quiescent.
//  The word-0 read of a stale popper (a block popped and reused by someone else since the head
//  was loaded) may race with the new owner's writes: it is an 8-byte atomic relaxed load, its
//  value is discarded because the CAS (3) fails on the changed tag. It is hidden from TSan, which
//  would otherwise report the new owner's plain writes (see LoadBatchLinkRacy).
//
// TSan: Boost implements the 128-bit ipc_atomic_ref with inline cmpxchg16b, which TSan cannot
// see, so under TSan edges (1)-(3) are also announced with __tsan_release/__tsan_acquire.
#include "alloc/allocator.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <type_traits>
#include <utility>

#include "absl/strings/str_format.h"
#include "alloc/allocator_state.h"
#include "alloc/chain_walk.h"
#include "alloc/size_classes.h"
#include "common/crash_point.h"
#include "common/shared_atomic.h"

#if defined(__SANITIZE_THREAD__)
#define ATOMAP_ALLOC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ATOMAP_ALLOC_TSAN 1
#endif
#endif

#if defined(ATOMAP_ALLOC_TSAN)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace atomap::internal {

static_assert(Allocator::kMaxBlockBytes == size_classes::kMaxBlockBytes);

namespace {

using size_classes::BatchBlocks;
using size_classes::ClassBytes;
using size_classes::ClassOf;
using size_classes::IsCached;
using size_classes::kCachedClasses;
using size_classes::kChunkBytes;
using size_classes::kNumClasses;
using size_classes::SizeClass;

// A cache's `carved` counter is folded into the shared one before it could overflow.
constexpr std::uint32_t kCarvedFoldAt = std::uint32_t{1} << 31;

inline void TsanRelease([[maybe_unused]] void* addr) {
#if defined(ATOMAP_ALLOC_TSAN)
  __tsan_release(addr);
#endif
}
inline void TsanAcquire([[maybe_unused]] void* addr) {
#if defined(ATOMAP_ALLOC_TSAN)
  __tsan_acquire(addr);
#endif
}

// Word 0 of a batch's first block, read by a popper that may be stale (see the header comment).
// An 8-byte relaxed atomic load (address-free like every lock-free ipc_atomic_ref, which is a
// plain mov); written with the builtin so that it can be hidden from TSan.
#if defined(ATOMAP_ALLOC_TSAN)
#define ATOMAP_HIDDEN_FROM_TSAN __attribute__((no_sanitize("thread"), noinline))
#else
#define ATOMAP_HIDDEN_FROM_TSAN
#endif
ATOMAP_HIDDEN_FROM_TSAN Offset LoadBatchLinkRacy(const Offset* word0) {
  return __atomic_load_n(word0, __ATOMIC_RELAXED);
}

// The offset half of a list head, for inspection (Stats, Validate) only. Boost's 128-bit load is
// a cmpxchg16b, which writes and would fault on a read-only mapping (atomap stat/check), so the
// offset word is read alone with an 8-byte atomic load (the tag is not needed to inspect a list;
// the offset word alone is always a value that some CAS wrote).
Offset LoadHeadOffsetForInspection(const FreeListHead& head) {
  return __atomic_load_n(&head.offset, __ATOMIC_ACQUIRE);
}

// (5) An owner's store to its own cache or privately listed block.
template <class T>
inline void StoreOwned(T& field, std::type_identity_t<T> value) {
  Shared(field).store(value, kRelease);
}

}  // namespace

// ---- block links ------------------------------------------------------------------------------

Offset* Allocator::BatchLink(Offset block) const { return arena_->At<Offset>(block); }
Offset* Allocator::ChainLink(Offset block) const { return arena_->At<Offset>(block + 8); }

bool Allocator::EnsureMapped(Offset off, std::uint64_t len) const {
  // A block of the data region, or nothing: a damaged list (a dead owner's, or a damaged file's)
  // must not lead a walk into the header or the tables.
  // BlockBounds (W1) is the one test of where blocks lie; only the limit can move (growth).
  // A refused offset costs a load of the shared size (Refresh maps only what grew).
  if (bounds().Contains(off, len)) return true;
  if (!arena_->Refresh().ok()) return false;
  return bounds().Contains(off, len);
}

// MayBeBlock is the one plausibility check (chain_walk.h W1) against the mapping; this is its
// second chance, against what another process may have grown since.
bool Allocator::MayBeBlockAfterRefresh(Offset off, std::uint64_t bytes) const {
  return EnsureMapped(off, bytes) && bounds().Holds(off, bytes);
}

// ---- static -----------------------------------------------------------------------------------

void Allocator::Format(AllocatorState* state, Offset data_begin) {
  assert(data_begin != 0 && data_begin % 4096 == 0);
  std::memset(static_cast<void*>(state), 0, sizeof(AllocatorState));
  state->version = kAllocatorVersion;
  state->num_classes = kNumClasses;
  state->data_begin = data_begin;
  state->chunk_bytes = kChunkBytes;
  state->bump.InitPlain(data_begin);
  // Last, so that a checker that finds the magic finds the rest formatted. The state is not yet
  // visible to anyone else (the creator publishes the domain afterwards).
  state->magic.StoreRelease(kAllocatorMagic);
}

void Allocator::FormatCache(ParticipantCache* cache) {
  std::memset(static_cast<void*>(cache), 0, sizeof(ParticipantCache));
}

absl::Status Allocator::Validate(const AllocatorState* state, std::uint64_t domain_size,
                                 std::string_view path) {
  const std::uint64_t magic = state->magic.LoadRelaxed();
  if (magic != kAllocatorMagic) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: allocator state: bad magic %#x (expected %#x)", path, magic, kAllocatorMagic));
  }
  if (state->version != kAllocatorVersion) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: allocator state: version %d, this build reads version %d", path,
                        state->version, kAllocatorVersion));
  }
  if (state->num_classes != kNumClasses || state->chunk_bytes != kChunkBytes) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: allocator state: num_classes %d / chunk_bytes %d, this build uses %d / %d", path,
        state->num_classes, state->chunk_bytes, kNumClasses, kChunkBytes));
  }
  // The heads are read before the bump pointer: a block on a list was carved (bump CAS) before
  // it was pushed (1), and the acquire load of the head synchronises with that push, so the bump
  // value read afterwards covers it. This makes Validate safe while others allocate.
  Offset first[kNumClasses];
  for (SizeClass c = 0; c < kNumClasses; ++c)
    first[c] = LoadHeadOffsetForInspection(state->heads[c]);
  const Offset data_begin = state->data_begin;
  const Offset bump = state->bump.LoadRelaxed();
  if (data_begin == 0 || data_begin % 4096 != 0 || data_begin > domain_size) {
    return absl::DataLossError(absl::StrFormat(
        "%s: allocator state: data_begin %d is not a page boundary inside the domain (%d bytes)",
        path, data_begin, domain_size));
  }
  if (bump < data_begin || bump > domain_size || bump % kBlockAlign != 0) {
    return absl::DataLossError(
        absl::StrFormat("%s: allocator state: bump %d outside [data_begin %d, domain size %d]",
                        path, bump, data_begin, domain_size));
  }
  for (SizeClass c = 0; c < kNumClasses; ++c) {
    if (first[c] == kNullOffset) continue;
    if (first[c] < data_begin || first[c] % kBlockAlign != 0 || bump - data_begin < ClassBytes(c) ||
        first[c] > bump - ClassBytes(c)) {
      return absl::DataLossError(absl::StrFormat(
          "%s: allocator state: heads[%d] = %d is not a block of %d bytes inside [%d, %d)", path, c,
          first[c], ClassBytes(c), data_begin, bump));
    }
  }
  return absl::OkStatus();
}

std::uint64_t Allocator::BlockBytes(std::uint64_t bytes) { return ClassBytes(ClassOf(bytes)); }

// ---- the shared lists -------------------------------------------------------------------------

// REQUIRES: `first` is the first block of a null-terminated chain (word 1) of free blocks of
// class c, owned by the caller and mapped here.
void Allocator::PushBatch(SizeClass c, Offset first) {
  FreeListHead& head = state_->heads[c];
  auto ref = Shared(head);
  // Relaxed: the loaded value is only the CAS's expectation; a pusher reads no block through it.
  TaggedOffset expected = ref.load(kRelaxed);
  TaggedOffset desired;
  do {
    Shared(*BatchLink(first)).store(expected.offset, kRelaxed);  // published by (1)
    desired = TaggedOffset{first, expected.tag + 1};
    TsanRelease(&head);
  } while (!ref.compare_exchange_weak(expected, desired, kRelease, kRelaxed));  // (1)
}

// Takes the first batch of class c's shared list. Returns its first block (the batch is the
// chain through word 1) or kNullOffset if the list is empty.
absl::StatusOr<Offset> Allocator::PopBatch(SizeClass c) {
  FreeListHead& head = state_->heads[c];
  auto ref = Shared(head);
  TaggedOffset expected = ref.load(kAcquire);  // (2), synchronises with (1)
  for (;;) {
    if (expected.offset == kNullOffset) return kNullOffset;
    TsanAcquire(&head);
    // The block may have been carved by a process that grew the domain after we last mapped it.
    if (!EnsureMapped(expected.offset, ClassBytes(c))) {
      return absl::DataLossError(
          absl::StrFormat("%s: free list %d of the allocator points past the domain (offset %d)",
                          arena_->path(), c, expected.offset));
    }
    const Offset next = LoadBatchLinkRacy(BatchLink(expected.offset));
    const TaggedOffset desired{next, expected.tag + 1};
    if (ref.compare_exchange_weak(expected, desired, kAcquire, kAcquire)) {  // (3), with (1)
      TsanAcquire(&head);
      return expected.offset;  // a successful CAS leaves `expected` as it was
    }
  }
}

// (4) Takes [result, result + bytes) from the shared bump pointer, growing the domain first if
// needed. On error nothing changed: the bump pointer stays where it was (A1).
absl::StatusOr<Offset> Allocator::BumpShared(std::uint64_t bytes) {
  SharedU64& bump = state_->bump;
  Offset begin = bump.LoadRelaxed();
  for (;;) {
    const Offset end = begin + bytes;  // no overflow: begin <= max_size, bytes <= 64 MiB
    // Past the published size: grow (a grower killed between extending the file and publishing
    // its size leaves the file longer than the domain, and a process that opened it since has
    // mapped that tail: bumping into it unpublished would break (A1)). Past this process's
    // mapping: map what another process grew. Grow does either.
    if (end > std::min(arena_->SharedSize(), arena_->mapped_size())) {
      // Grows the domain (or only maps it, if another participant already grew it).
      if (absl::Status s = arena_->Grow(end); !s.ok()) return s;
    }
    if (bump.CasWeakRelaxed(begin, end)) return begin;  // (4)
  }
}

// ---- the private lists ------------------------------------------------------------------------

void Allocator::CountCarved(ParticipantCache* cache, SizeClass c) {
  CachedClass& cc = cache->classes[c];
  const std::uint32_t carved = cc.carved + 1;
  if (carved < kCarvedFoldAt) {
    StoreOwned(cc.carved, carved);
    return;
  }
  // Zeroed before added, like Flush's fold: a crash in between under-counts (see (A6)).
  StoreOwned(cc.carved, std::uint32_t{0});
  state_->carved_blocks[c].FetchAddRelaxed(carved);  // (6)
}

// REQUIRES: IsCached(c); `block` is a free block of class c, mapped here.
void Allocator::PushPrivate(ParticipantCache* cache, SizeClass c, Offset block) {
  CachedClass& cc = cache->classes[c];
  StoreOwned(*ChainLink(block), cc.head);  // (5) the link before the head that reaches it
  StoreOwned(cc.head, block);
  const std::uint32_t count = cc.count + 1;
  StoreOwned(cc.count, count);
  if (count >= 2 * BatchBlocks(c)) SpillPrivate(cache, c);
}

// Keeps the first (most recently freed, likely cache-hot) BatchBlocks(c) blocks of the private
// list and moves the rest to the shared list as one batch.
void Allocator::SpillPrivate(ParticipantCache* cache, SizeClass c) {
  CachedClass& cc = cache->classes[c];
  const std::uint32_t keep = BatchBlocks(c);
  Offset last_kept = cc.head;
  std::uint32_t walked = 1;
  while (walked < keep && *ChainLink(last_kept) != kNullOffset) {
    last_kept = *ChainLink(last_kept);
    ++walked;
  }
  const Offset rest = *ChainLink(last_kept);
  // Cut first: a crash after it loses `rest` (a leak), never lists it twice (A5).
  StoreOwned(*ChainLink(last_kept), kNullOffset);
  StoreOwned(cc.count, walked);
  if (rest != kNullOffset) PushBatch(c, rest);
}

// Carves the private bump region [bump_cur, bump_end) into free blocks of cached classes,
// largest first, onto the private lists. The region is empty afterwards.
void Allocator::RetireBumpTailPrivate(ParticipantCache* cache) {
  for (;;) {
    const Offset cur = cache->bump_cur;
    const Offset end = cache->bump_end;
    if (cur >= end) return;
    const SizeClass c =
        size_classes::LargestClassWithin(std::min(end - cur, size_classes::kMaxCachedBlockBytes));
    StoreOwned(cache->bump_cur, cur + ClassBytes(c));  // a crash here leaks one block (A5)
    CountCarved(cache, c);
    PushPrivate(cache, c, cur);
  }
}

absl::StatusOr<Offset> Allocator::AllocateSlow(ParticipantCache* cache, SizeClass c) {
  CachedClass& cc = cache->classes[c];
  // 1. A batch from the shared list: hand out its first block, cache the rest.
  absl::StatusOr<Offset> batch = PopBatch(c);
  if (!batch.ok()) return batch.status();
  if (*batch != kNullOffset) {
    // The batch is off the shared list and not yet in the cache: a crash leaks it (A5).
    ATOMAP_CRASH_POINT(kAllocAfterSharedPop);
    const Offset first = *batch;
    // Count the rest. Every block of the batch must be mapped here before it is read or handed
    // out: PopBatch checked only the first, and the others may have been carved by a process
    // that grew the domain since (one Refresh maps them all: they all lie below the bump value
    // that the acquire of the head (2)/(3) made visible).
    // A damaged batch (a wild link, a cycle) is an error, and leaks to the sweep.
    std::uint32_t rest_count = 0;
    ChainWalk walk(*this, ClassBytes(c));
    for (Offset b = *ChainLink(first); walk.Continues(b); b = *ChainLink(b)) ++rest_count;
    if (walk.damaged()) {
      return walk.Status(arena_->path(),
                         absl::StrFormat("free batch of class %d at offset %d", c, first));
    }
    // The private list is empty here (we only refill an empty one).
    StoreOwned(cc.head, *ChainLink(first));
    StoreOwned(cc.count, rest_count);
    return first;
  }
  const std::uint64_t block_bytes = ClassBytes(c);
  // 2. Carve from the private bump region; 3. or take a fresh chunk first.
  if (cache->bump_cur >= cache->bump_end || cache->bump_end - cache->bump_cur < block_bytes) {
    absl::StatusOr<Offset> chunk = BumpShared(kChunkBytes);
    if (!chunk.ok()) {
      // Near the end of the domain a whole chunk may not fit where this block still does.
      absl::StatusOr<Offset> exact = BumpShared(block_bytes);
      if (!exact.ok()) return exact.status();
      CountCarved(cache, c);
      return *exact;
    }
    // The chunk is taken from the shared bump and not yet recorded: a crash leaks it (A5, A6).
    ATOMAP_CRASH_POINT(kAllocAfterBumpCas);
    RetireBumpTailPrivate(cache);  // bump_cur == bump_end == the old end afterwards
    // cur first, then end, so that every prefix leaves a region that is empty or ours (A5): the
    // new cur is >= the old end (the shared bump only grows), so [new cur, old end) is empty.
    // A crash before these stores loses the chunk (uncounted, A6).
    StoreOwned(cache->bump_cur, *chunk);
    StoreOwned(cache->bump_end, *chunk + kChunkBytes);
  }
  const Offset block = cache->bump_cur;
  StoreOwned(cache->bump_cur, block + block_bytes);
  CountCarved(cache, c);
  return block;
}

absl::StatusOr<Offset> Allocator::AllocateLarge(SizeClass c) {
  absl::StatusOr<Offset> batch = PopBatch(c);
  if (!batch.ok()) return batch.status();
  if (*batch != kNullOffset) {
    // Large classes' batches are single blocks; a longer one goes back without its first block.
    const Offset rest = *ChainLink(*batch);
    if (rest != kNullOffset) PushBatch(c, rest);
    ATOMAP_CRASH_POINT(kAllocLargeReturn);  // held by nobody yet: a crash leaks it
    return *batch;
  }
  absl::StatusOr<Offset> block = BumpShared(ClassBytes(c));
  if (!block.ok()) return block.status();
  state_->carved_blocks[c].FetchAddRelaxed(1);  // (6)
  ATOMAP_CRASH_POINT(kAllocLargeReturn);
  return *block;
}

// ---- public -----------------------------------------------------------------------------------

absl::StatusOr<Offset> Allocator::Allocate(ParticipantCache* cache, std::uint64_t bytes) {
  if (bytes > kMaxBlockBytes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "allocation of %d bytes exceeds the largest block (%d bytes)", bytes, kMaxBlockBytes));
  }
  const SizeClass c = ClassOf(bytes);
  if (!IsCached(c)) return AllocateLarge(c);
  CachedClass& cc = cache->classes[c];
  const Offset block = cc.head;
  if (block == kNullOffset) return AllocateSlow(cache, c);
  // The hot path: two loads and two stores, all in the caller's own cache and block.
  StoreOwned(cc.head, *ChainLink(block));
  StoreOwned(cc.count, cc.count - 1);
  return block;
}

void Allocator::Free(ParticipantCache* cache, Offset off, std::uint64_t bytes) {
  assert(bytes <= kMaxBlockBytes && off % kBlockAlign == 0 && off != kNullOffset);
  const SizeClass c = ClassOf(bytes);
  // A block freed by a participant that never read it (reclamation) may lie past our mapping.
  // If it cannot be mapped, it cannot be linked: it leaks (the sweep recovers it).
  if (!EnsureMapped(off, ClassBytes(c))) return;
  if (IsCached(c)) {
    PushPrivate(cache, c, off);
    return;
  }
  StoreOwned(*ChainLink(off), kNullOffset);
  PushBatch(c, off);
}

void Allocator::Flush(ParticipantCache* cache) {
  // 1. Every private list goes to the shared list in batches. A dead owner's counts may be off
  //    by one (A5), so the lists are walked, never trusted by count.
  for (SizeClass c = 0; c < kCachedClasses; ++c) {
    CachedClass& cc = cache->classes[c];
    const std::uint32_t batch_blocks = BatchBlocks(c);
    // Exact: the blocks it visits are pushed, so none may be visited twice. A damaged list
    // ends at the refused link; the rest leaks (to the sweep).
    ChainWalk walk(*this, ClassBytes(c), ChainWalk::Repeats::kExact);
    while (walk.Continues(cc.head)) {
      const Offset first = cc.head;
      Offset last = first;
      for (std::uint32_t n = 1; n < batch_blocks && walk.Continues(*ChainLink(last)); ++n) {
        last = *ChainLink(last);
      }
      // Detach [first, last] from the private list, then cut it: a crash in between leaks the
      // batch, never lists a block twice (A5).
      StoreOwned(cc.head, *ChainLink(last));
      StoreOwned(*ChainLink(last), kNullOffset);
      PushBatch(c, first);
    }
    StoreOwned(cc.head, kNullOffset);
    StoreOwned(cc.count, std::uint32_t{0});
  }
  // 2. The unused bump tail is carved into blocks of cached classes, largest first, and pushed
  //    to the shared lists (no separate "tail" list: every free byte is on a class list).
  //    A region that is not a sane private chunk (a corrupt cache) is left alone: it leaks.
  const Offset cur = cache->bump_cur;
  const Offset end = cache->bump_end;
  if (cur < end && end - cur <= kChunkBytes && cur % kBlockAlign == 0 && end % kBlockAlign == 0 &&
      EnsureMapped(cur, end - cur)) {
    for (Offset at = cur; at < end;) {
      const SizeClass c =
          size_classes::LargestClassWithin(std::min(end - at, size_classes::kMaxCachedBlockBytes));
      const Offset block = at;
      at += ClassBytes(c);
      StoreOwned(cache->bump_cur, at);  // a crash here leaks `block` (A5)
      state_->carved_blocks[c].FetchAddRelaxed(1);  // (6)
      StoreOwned(*ChainLink(block), kNullOffset);
      PushBatch(c, block);
    }
  }
  StoreOwned(cache->bump_cur, Offset{0});
  StoreOwned(cache->bump_end, Offset{0});
  // 3. Fold the private carved counters into the shared ones. Zeroed before added: a crash in
  //    between under-counts, never over-counts (A6).
  for (SizeClass c = 0; c < kCachedClasses; ++c) {
    CachedClass& cc = cache->classes[c];
    const std::uint32_t carved = cc.carved;
    if (carved == 0) continue;
    StoreOwned(cc.carved, std::uint32_t{0});
    state_->carved_blocks[c].FetchAddRelaxed(carved);  // (6)
  }
}

AllocatorStats Allocator::Stats(const std::vector<const ParticipantCache*>& caches) const {
  AllocatorStats stats;
  const Offset bump = state_->bump.LoadRelaxed();
  const Offset data_begin = state_->data_begin;
  stats.total_bytes = bump - data_begin;
  std::vector<std::uint64_t> free_blocks(kNumClasses, 0);
  std::vector<std::uint64_t> carved(kNumClasses, 0);
  // The first damaged list names the damage; the others are still counted (to their damage).
  auto note = [&](absl::Status damage) {
    if (stats.damage.ok()) stats.damage = std::move(damage);
  };
  for (SizeClass c = 0; c < kNumClasses; ++c) {
    carved[c] = state_->carved_blocks[c].LoadRelaxed();
    const FreeListHead& head = state_->heads[c];
    // Every CAS of the head changes its tag (A4): an unchanged tag is an unchanged list.
    auto tag = [&] { return __atomic_load_n(&head.tag, __ATOMIC_ACQUIRE); };
    note(WalkSettled(tag, [&] {
      // One walk for the whole list: its batches' blocks are all distinct (A4), so the bound
      // is the class's blocks in the data region, across batches.
      free_blocks[c] = 0;
      ChainWalk walk(*this, ClassBytes(c));
      for (Offset batch = LoadHeadOffsetForInspection(head); walk.Continues(batch);
           batch = *BatchLink(batch)) {
        ++free_blocks[c];
        // A null link ends the batch, not the list: the walk is only shown the others.
        for (Offset b = *ChainLink(batch); b != kNullOffset && walk.Continues(b);
             b = *ChainLink(b)) {
          ++free_blocks[c];
        }
      }
      return walk.Status(arena_->path(), absl::StrFormat("shared free list of class %d", c));
    }));
  }
  for (std::size_t i = 0; i < caches.size(); ++i) {
    const ParticipantCache* cache = caches[i];
    if (cache->bump_cur < cache->bump_end) stats.unused_bytes += cache->bump_end - cache->bump_cur;
    for (SizeClass c = 0; c < kCachedClasses; ++c) {
      const CachedClass& cc = cache->classes[c];
      carved[c] += cc.carved;
      // The owner, if alive, changes the head or the count with every pop and push.
      auto stamp = [&] {
        return std::pair(__atomic_load_n(&cc.head, __ATOMIC_ACQUIRE),
                         __atomic_load_n(&cc.count, __ATOMIC_ACQUIRE));
      };
      std::uint64_t cached = 0;
      note(WalkSettled(stamp, [&] {
        cached = 0;
        ChainWalk walk(*this, ClassBytes(c));
        for (Offset b = stamp().first; walk.Continues(b); b = *ChainLink(b)) ++cached;
        return walk.Status(arena_->path(),
                           absl::StrFormat("allocator cache %d, free list of class %d", i, c));
      }));
      free_blocks[c] += cached;
    }
  }
  stats.classes.resize(kNumClasses);
  for (SizeClass c = 0; c < kNumClasses; ++c) {
    SizeClassStats& s = stats.classes[c];
    s.block_bytes = ClassBytes(c);
    s.free_blocks = free_blocks[c];
    // Saturating: more free than carved means a cache was left out or the lists are corrupt;
    // the accounting invariant then fails visibly instead of wrapping around.
    s.live_blocks = carved[c] >= free_blocks[c] ? carved[c] - free_blocks[c] : 0;
    stats.live_bytes += s.live_blocks * s.block_bytes;
    stats.free_bytes += s.free_blocks * s.block_bytes;
  }
  return stats;
}

}  // namespace atomap::internal

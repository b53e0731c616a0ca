// RetireList: one participant's garbage awaiting reclamation, kept in the shared file.
//
// A successful root CAS unlinks exactly the path it replaced; those blocks are retired here with
// the epoch read after the CAS, and freed once no pinned participant can still reach them
// (EpochTable::SafeToFree). The list lives in the file — its head in the slot's ReclaimArea, its
// entries in RetireBatch blocks — so that when the owner dies a survivor can adopt it: nothing a
// dead participant retired is lost (Eve kept this queue in process memory and leaked the whole
// old version when a writer died after its CAS).
//
// Invariants
//  (R1) Only the slot's owner (or a survivor holding the dead owner's slot lock) reads or writes
//       a ReclaimArea and the batches it reaches.
//  (R2) Every batch reachable from retire_head holds `count` retired blocks, none freed, each
//       retired at an epoch <= the batch's `epoch`.
//  (R3) Retire() never allocates: Prepare(n), called before the root CAS, makes room for n
//       blocks, so a CAS that wins can always record its garbage.
//  (R4) Entries are freed from a batch's last, each after `count` is decremented: a crash
//       mid-way loses at most one block (found by the check/sweep backstop), never frees one
//       twice. A batch freed whole is recorded in `reclaiming`, unlinked, and only then are its
//       entries and itself freed. A bounded pass (Reclaim with a budget) whose budget ends
//       inside a batch frees that batch's last entries in place: it stays linked with its
//       smaller `count` (R2 still holds), and a later pass frees the rest of it whole.
//  (R6) Bounded passes lose nothing: every pass frees only batches SafeToFree says are safe,
//       and a pass without a budget (the destructor, ReclaimForSpace, the scan after a long pin's
//       backlog: Participant::kBacklogPeriods) frees every one. A dead owner's list goes to the
//       orphan chain, and its adopter's passes free it. A bounded pass whose budget outlasted the safe entries remembers G (process memory,
//       not the file): while G stays there, and nothing was adopted, no batch can have become
//       safe, so later bounded passes skip the walk.
//  (R5) Every walk of a chain of batches is a ChainWalk (alloc/chain_walk.h): a batch is read
//       only after Allocator::MayBeBlock (the one plausibility check, W1) accepted its offset,
//       and no walk lasts longer than the mapping holds batches or past a repeated batch (W2,
//       W3). Every entry is freed only if MayBeBlock accepts the entry, and a `count` above
//       kCapacity is never an index (the batch has no room, and none of its entries is freed).
//       A survivor runs this code on a dead owner's
//       list, which a damaged file can make point anywhere, and which can alias blocks freed on
//       the way (their free-list links then overwrite its words): so the checks are made as each
//       word is used, never once up front. What fails one is left where it is, to the sweep.
//
// No memory ordering of its own: the list is private to its owner (R1). Statistics read by
// others (pending_blocks, pending_bytes) are single words written with relaxed atomics.
#ifndef ATOMAP_SRC_EPOCH_RETIRE_LIST_H_
#define ATOMAP_SRC_EPOCH_RETIRE_LIST_H_

#include <cstddef>
#include <cstdint>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "alloc/chain_walk.h"
#include "common/layout.h"
#include "common/offset.h"
#include "file/slot.h"

namespace atomap::internal {

class Allocator;
class EpochTable;
struct ParticipantCache;

inline constexpr std::uint64_t kRetireBatchBytes = 1024;

struct RetireBatch {
  Offset next;  // older batch
  std::uint64_t epoch;  // newest retire epoch of its entries
  std::uint32_t count;
  std::uint32_t reserved0;
  std::uint64_t reserved1;
  static constexpr std::uint32_t kCapacity = 62;
  Block blocks[kCapacity];
};
static_assert(sizeof(RetireBatch) == kRetireBatchBytes);

class RetireList {
 public:
  RetireList(ReclaimArea* area, Allocator* allocator, ParticipantCache* cache)
      : area_(area), allocator_(allocator), cache_(cache) {}

  // Makes room for `n` more retired blocks. ResourceExhausted if a batch cannot be allocated;
  // nothing changes then.
  absl::Status Prepare(std::uint64_t n);

  // Records `blocks` as retired at `epoch`. REQUIRES: Prepare(blocks.size()) since the last
  // Retire; `epoch` not older than any earlier Retire's.
  void Retire(std::uint64_t epoch, absl::Span<const Block> blocks);

  static constexpr std::uint64_t kUnbounded = ~std::uint64_t{0};

  // Frees retired blocks that `epochs` says are safe, at most `budget` of them (R4, R6), newest
  // safe batch first. Returns the number of blocks freed.
  std::uint64_t Reclaim(const EpochTable& epochs, std::uint64_t budget = kUnbounded);

  // Makes a chain of batches left by other participants (the domain's orphan chain) part of
  // this list; they are freed when the epoch allows, like this list's own.
  // REQUIRES: nobody else can reach the chain.
  void AdoptChain(Offset chain);

  // Finishes a reclaim this slot's previous (dead) owner had started. Idempotent.
  void FinishInterruptedReclaim();

  // Frees the empty batches Prepare made and Retire has not used.
  void FreeSpares();

  // Hands the whole pending chain over (to the orphan chain): the list is empty afterwards,
  // statistics included. The head is cleared before the caller passes the chain on, so a crash
  // between the two leaks the chain (to the sweep) rather than recording it twice.
  Offset DetachChain();

  // Calls `fn` with every block pending in the list (a dead owner's may have died part-way
  // through Retire: recovery asks what it already retired).
  void ForEachPending(absl::FunctionRef<void(const Block&)> fn) const;

  std::uint64_t pending_blocks() const;
  std::uint64_t pending_bytes() const;

 private:
  // A walk along a chain of batches under R5. kExact for the walks that free or hand on every
  // batch they visit (W3); the others only count or search.
  ChainWalk Walk(ChainWalk::Repeats repeats = ChainWalk::Repeats::kCheap) const;

  RetireBatch* Batch(Offset off) const;
  bool Readable(Offset batch) const;  // R5
  void FreeBatch(Offset batch);  // R4
  // Frees up to `budget` entries of `batch` from its last (R4); returns how many it freed.
  std::uint64_t FreeEntries(RetireBatch* batch, std::uint64_t budget);
  std::uint64_t RoomInHead() const;
  std::uint64_t SpareRoom() const;
  void AddPending(std::int64_t blocks, std::int64_t bytes);

  ReclaimArea* area_;
  Allocator* allocator_;
  ParticipantCache* cache_;
  // R6: the G at which a bounded pass last ran out of safe entries (0: none is known).
  std::uint64_t drained_at_ = 0;
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_EPOCH_RETIRE_LIST_H_

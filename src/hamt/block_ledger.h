// BlockLedger: where a transaction records the blocks it allocates, for whoever must free them
// if its process dies before it publishes or frees them.
//
// The trie only calls it; the atoms layer lends one per transaction (intent/owned_lane.h: a lane
// in the writer's slot, read by a survivor). A transaction without a ledger keeps its blocks in
// process memory only (what a kill leaks is the offline sweep's).
//
// Contract: a block is recorded only after it is allocated and forgotten before it is freed, so
// that a kill between the two leaks one block, never frees one twice. Positions are dense
// ([0, size())); Forget moves the last record into the hole.
//
// Thread safety: one thread at a time (the transaction's).
#ifndef ATOMAP_SRC_HAMT_BLOCK_LEDGER_H_
#define ATOMAP_SRC_HAMT_BLOCK_LEDGER_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/offset.h"

namespace atomap::internal::hamt {

class BlockLedger {
 public:
  virtual ~BlockLedger() = default;

  // Makes room for `n` more records and returns how many fit now (at least `n`: the trie asks
  // again only when that room is used up, one call per many records). ResourceExhausted when the
  // domain is full; nothing is recorded then.
  virtual absl::StatusOr<std::uint64_t> Reserve(std::uint64_t n) = 0;
  // Records a block the transaction allocated; returns its position. REQUIRES: Reserve made room.
  virtual std::uint64_t Record(Block block) = 0;
  // Records the blocks of the base that the commit replaces (not owned: to retire if the commit
  // is published), making room for them first: one call per commit. ResourceExhausted when the
  // domain is full; nothing is recorded then.
  virtual absl::Status RecordReplaced(absl::Span<const Block> blocks) = 0;
  // Forgets the record at `position` by moving the last record there. Returns the moved
  // record's offset, now at `position` (kNullOffset if `position` was the last).
  virtual Offset Forget(std::uint64_t position) = 0;
  virtual std::uint64_t size() const = 0;
  // Frees every recorded block, from the last, each forgotten before it is freed.
  // REQUIRES: nothing recorded is reachable from a published version.
  virtual void FreeAll() = 0;
};

}  // namespace atomap::internal::hamt

#endif  // ATOMAP_SRC_HAMT_BLOCK_LEDGER_H_

// OpOverlay: the net effect of declarative batches (atomap/ops.h) on the keys they touch, worked
// out over a transaction without writing to it, then written to it once per key.
//
// Why: a batch must be all or nothing even inside a transaction it shares with other batches
// (the combiner of docs/design.md, "Combining", runs many posters' batches in one transaction,
// and one batch's bad add must leave nothing of that batch behind); and the adds of many batches
// to one key then cost one get and one set per version, not one of each per op
// (bench/benchmarks_notes.md, "What folding could buy").
//
// Invariants
//  (O1) The overlay reads a key from the transaction once, when an op first touches it, and
//       writes nothing to the transaction before WriteTo.
//  (O2) Run is all or nothing: on error the overlay is as it was before the call.
//  (O3) After WriteTo the transaction holds, for every key touched, its state after every
//       successful Run, in order; keys no op touched are unchanged.
//
// Thread safety: one thread, like the transaction it reads. The overlay reads `tx` through its
// whole life: REQUIRES that nothing else writes the keys it touched until WriteTo, and that the
// bytes of every op run stay valid until then (it keeps views of their keys).
#ifndef ATOMAP_SRC_ATOM_OP_OVERLAY_H_
#define ATOMAP_SRC_ATOM_OP_OVERLAY_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "atomap/ops.h"
#include "atomap/transaction.h"

namespace atomap::internal {

// The error of an add on a value of `value_bytes` bytes that is not an 8-byte integer, as Run
// reports it (a combined batch's poster rebuilds it from the version's table: atom/combine.cc).
absl::Status NotAnInteger(std::string_view key, std::uint64_t value_bytes);

class OpOverlay {
 public:
  // Which op of a batch refused it, and the byte size of the value it refused to add to.
  struct RunFailure {
    std::size_t op = 0;
    std::uint64_t value_bytes = 0;
  };

  explicit OpOverlay(const Transaction& tx) : tx_(tx) {}

  // Runs `ops` in order on the overlay, one outcome each into `outcomes` (as many as ops).
  // FailedPrecondition naming the key for an add on a value that is not 8 bytes (the caller adds
  // the atom's name: it costs a lookup, paid only then); the overlay is then unchanged (O2).
  // `failure`, if given, says which op refused the batch. REQUIRES: ops passed Atom::apply's
  // checks.
  absl::Status Run(absl::Span<const Op> ops, absl::Span<OpOutcome> outcomes,
                   RunFailure* failure = nullptr);
  // Writes each changed key's final state to `tx` (the transaction given at construction): one
  // set or erase per key (O3). Its errors are the transaction's (ResourceExhausted, DataLoss).
  absl::Status WriteTo(Transaction& tx) const;

 private:
  struct Touched {
    std::string_view key;  // the op's bytes: they outlive the overlay (ops.h's contract)
    std::optional<std::string> value;  // after the ops so far (nullopt: absent)
    bool in_base = false;              // present in the transaction when first read
    bool changed = false;              // an op wrote it (a failed compare does not)
  };
  // The key's entry, read from the transaction the first time (O1). Linear: a batch touches at
  // most kMaxOpsPerApply keys; a combiner folding many batches will want an index.
  Touched& Touch(std::string_view key);
  absl::Status RunOp(const Op& op, OpOutcome& outcome);

  const Transaction& tx_;
  // Inline for the usual batch of a few keys: an add allocates nothing here.
  absl::InlinedVector<Touched, 4> touched_;
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_ATOM_OP_OVERLAY_H_

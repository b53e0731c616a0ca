// Atom::apply, add, add_i64: declarative batches (atomap/ops.h), run as one swap.
//
// Invariants
//  (A1) A batch is checked whole (count, bytes, CheckKeyValue) before the swap begins: a
//       malformed batch reads and writes nothing.
//  (A2) The ops run in order over one transaction, which the swap publishes with one CAS: the
//       batch is all or nothing, in one version, exactly once (a lost CAS discards the whole
//       attempt and the ops run again, from scratch, on the newer version). Being a swap, it is
//       as crash-safe as a swap: a writer killed anywhere leaves the batch published or not.
//  (A3) An op's error (an add on a value that is not 8 bytes, a full domain, damage) is returned
//       by the swap's function, so nothing of the batch is published (atom.h's contract).
//  (A4) Outcomes are rebuilt on every attempt (OpOverlay::Run resets each): only the attempt
//       that was published reports.
//  (A5) The ops run on an OpOverlay (op_overlay.h) and reach the transaction as one set or erase
//       per key: what a combiner folding many batches into one transaction runs too.
//  (A6) With Options::combine_writes (the default) a batch that fits a mailbox is combined
//       (atom/combine.h) instead: the same outcomes, applied exactly once, all or nothing, in
//       one version, possibly together with other writers' batches. (A2)-(A4) hold for it by
//       combine.h's C1-C6 in place of the swap's retry.
//
// Memory ordering: none of its own; it is Atom::swap's (atom.cc) or combining's (combine.h).
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/types/span.h"
#include "atom/atom_access.h"
#include "atom/combine.h"
#include "atom/op_overlay.h"
#include "atom/participant.h"
#include "atom/runtime.h"
#include "atomap/atom.h"
#include "atomap/ops.h"
#include "atomap/transaction.h"
#include "domain/domain_impl.h"

namespace atomap {
namespace {

// `status` with the op's position in front of its message: the caller learns which op.
absl::Status AtOp(std::size_t index, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrFormat("apply: op %d: %s", index, status.message()));
}

// (A1) Each op's key and values within CheckKeyValue's limits.
absl::Status CheckOp(const Op& op) {
  if (absl::Status s = CheckKeyValue(op.key(), op.value().value_or("")); !s.ok()) return s;
  return CheckKeyValue(op.key(), op.expected().value_or(""));
}

// (A1) The whole batch within kMaxOpsPerApply and kMaxOpBytes.
absl::Status CheckBatch(absl::Span<const Op> ops) {
  if (ops.size() > kMaxOpsPerApply) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "apply: %d ops in one batch, more than kMaxOpsPerApply (%d)", ops.size(), kMaxOpsPerApply));
  }
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (absl::Status s = CheckOp(ops[i]); !s.ok()) return AtOp(i, s);
    bytes += ops[i].bytes();
  }
  if (bytes > kMaxOpBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("apply: the batch carries %d bytes of keys and values, more than "
                        "kMaxOpBytes (%d)",
                        bytes, kMaxOpBytes));
  }
  return absl::OkStatus();
}

// Publishes the checked batch `ops`, combined (A6) or with one swap (A2, A5), their outcomes in
// `outcomes` (as many as ops).
absl::StatusOr<Snapshot> PublishBatch(Atom& atom, absl::Span<const Op> ops,
                                      absl::Span<OpOutcome> outcomes) {
  internal::Runtime* runtime = internal::AtomAccess::RuntimeOf(atom);
  if (runtime->domain().combine_writes() && !runtime->domain().read_only() &&
      internal::Combinable(ops)) {  // (A6); a read-only handle's error is swap's
    absl::StatusOr<internal::Participant*> participant = runtime->ThisThread();
    if (!participant.ok()) return participant.status();
    return internal::CombinedApply(runtime, internal::AtomAccess::IndexOf(atom), *participant, ops,
                                   outcomes, atom.name());
  }
  bool refused = false;  // an op's own error, to be named with the atom
  absl::StatusOr<Snapshot> published = atom.swap([&](Transaction& tx) -> absl::Status {
    internal::OpOverlay overlay(tx);
    if (absl::Status s = overlay.Run(ops, outcomes); !s.ok()) {  // (A3), (A4)
      refused = true;
      return s;
    }
    return overlay.WriteTo(tx);  // (A3)
  });
  if (refused) {
    return absl::Status(published.status().code(), absl::StrFormat("atom '%s': %s", atom.name(),
                                                                   published.status().message()));
  }
  return published;
}

}  // namespace

absl::StatusOr<ApplyResult> Atom::apply(absl::Span<const Op> ops) {
  if (absl::Status s = CheckBatch(ops); !s.ok()) return s;
  if (ops.empty()) {  // nothing to publish: the current version holds "all of it"
    absl::StatusOr<Snapshot> now = load();
    if (!now.ok()) return now.status();
    return ApplyResult{*std::move(now), {}};
  }
  std::vector<OpOutcome> outcomes(ops.size());
  absl::StatusOr<Snapshot> published = PublishBatch(*this, ops, absl::MakeSpan(outcomes));
  if (!published.ok()) return published.status();
  return ApplyResult{*std::move(published), std::move(outcomes)};
}

// apply of one op without the result's vector: the counter's hot path.
absl::StatusOr<std::uint64_t> Atom::add(std::string_view key, std::uint64_t delta) {
  const Op op = Op::AddU64(key, delta);
  if (absl::Status s = CheckBatch(absl::MakeConstSpan(&op, 1)); !s.ok()) return s;
  OpOutcome outcome;
  absl::StatusOr<Snapshot> published =
      PublishBatch(*this, absl::MakeConstSpan(&op, 1), absl::MakeSpan(&outcome, 1));
  if (!published.ok()) return published.status();
  return outcome.value;
}

absl::StatusOr<std::int64_t> Atom::add_i64(std::string_view key, std::int64_t delta) {
  // The same 8 bytes and the same wrapping sum: two's complement.
  absl::StatusOr<std::uint64_t> bits = add(key, static_cast<std::uint64_t>(delta));
  if (!bits.ok()) return bits.status();
  return static_cast<std::int64_t>(*bits);
}

}  // namespace atomap

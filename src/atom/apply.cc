// Atom::apply, add, add_i64: declarative batches (atomap/ops.h), run as one swap.
//
// Invariants
//  (A1) A batch is checked whole (count, bytes, CheckKeyValue) before the swap begins: a
//       malformed batch reads and writes nothing.
//  (A2) The ops run in order on one transaction, which the swap publishes with one CAS: the
//       batch is all or nothing, in one version, exactly once (a lost CAS discards the whole
//       attempt and the ops run again, from scratch, on the newer version). Being a swap, it is
//       as crash-safe as a swap: a writer killed anywhere leaves the batch published or not.
//  (A3) An op's error (an add on a value that is not 8 bytes, a full domain, damage) is returned
//       by the swap's function, so nothing of the batch is published (atom.h's contract).
//  (A4) Outcomes are rebuilt on every attempt: only the attempt that was published reports.
//
// Memory ordering: none of its own; it is Atom::swap's (atom.cc).
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "absl/types/span.h"
#include "atomap/atom.h"
#include "atomap/codec.h"
#include "atomap/ops.h"
#include "atomap/transaction.h"

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

// The integer an add starts from: 0 when absent, else the value's 8 bytes (ops.h).
absl::StatusOr<std::uint64_t> IntegerAt(std::optional<std::string_view> value, std::string_view key,
                                        std::string_view atom) {
  if (!value.has_value()) return 0;
  std::optional<std::uint64_t> n = Codec<std::uint64_t>::Decode(*value);
  if (!n.has_value()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "atom '%s': cannot add to key '%s': its value is %d bytes, not an 8-byte integer", atom,
        absl::CHexEscape(absl::string_view(key.data(), key.size())), value->size()));
  }
  return *n;
}

// An add: the new integer, wrapped (unsigned arithmetic is the two's complement one for
// AddI64 as well).
absl::Status RunAdd(Transaction& tx, const Op& op, std::string_view atom, OpOutcome& outcome) {
  const std::optional<std::string_view> old = tx.get(op.key());
  absl::StatusOr<std::uint64_t> n = IntegerAt(old, op.key(), atom);
  if (!n.ok()) return n.status();
  outcome.existed = old.has_value();
  outcome.value = *n + op.delta();
  return tx.set(op.key(), Codec<std::uint64_t>::Encode(outcome.value));
}

absl::Status RunCompareAndSet(Transaction& tx, const Op& op, OpOutcome& outcome) {
  const std::optional<std::string_view> old = tx.get(op.key());
  const std::optional<std::string_view> expected = op.expected();
  outcome.existed = old.has_value();
  outcome.matched = old.has_value() == expected.has_value() && (!old || *old == *expected);
  if (!outcome.matched) return absl::OkStatus();  // changes nothing, aborts nothing
  if (const std::optional<std::string_view> desired = op.value()) {
    return tx.set(op.key(), *desired);
  }
  return tx.erase(op.key()).status();
}

// One op on `tx`; its outcome in `outcome` (A2).
absl::Status RunOp(Transaction& tx, const Op& op, std::string_view atom, OpOutcome& outcome) {
  switch (op.kind()) {
    case Op::Kind::kSet: {
      // A set that adds its key grows the map by one: no lookup needed to know.
      const std::uint64_t before = tx.size();
      if (absl::Status s = tx.set(op.key(), *op.value()); !s.ok()) return s;
      outcome.existed = tx.size() == before;
      return absl::OkStatus();
    }
    case Op::Kind::kErase: {
      absl::StatusOr<bool> existed = tx.erase(op.key());
      if (!existed.ok()) return existed.status();
      outcome.existed = *existed;
      return absl::OkStatus();
    }
    case Op::Kind::kAddU64:
    case Op::Kind::kAddI64:
      return RunAdd(tx, op, atom, outcome);
    case Op::Kind::kCompareAndSet:
      return RunCompareAndSet(tx, op, outcome);
  }
  return absl::InternalError("apply: an op of no known kind");  // unreachable: Op's factories
}

}  // namespace

absl::StatusOr<ApplyResult> Atom::apply(absl::Span<const Op> ops) {
  if (absl::Status s = CheckBatch(ops); !s.ok()) return s;
  if (ops.empty()) {  // nothing to publish: the current version holds "all of it"
    absl::StatusOr<Snapshot> now = load();
    if (!now.ok()) return now.status();
    return ApplyResult{*std::move(now), {}};
  }
  const std::string_view atom = name();
  std::vector<OpOutcome> outcomes(ops.size());
  absl::StatusOr<Snapshot> published = swap([&](Transaction& tx) -> absl::Status {
    outcomes.assign(ops.size(), OpOutcome());  // (A4)
    for (std::size_t i = 0; i < ops.size(); ++i) {
      if (absl::Status s = RunOp(tx, ops[i], atom, outcomes[i]); !s.ok()) return s;  // (A3)
    }
    return absl::OkStatus();
  });
  if (!published.ok()) return published.status();
  return ApplyResult{*std::move(published), std::move(outcomes)};
}

absl::StatusOr<std::uint64_t> Atom::add(std::string_view key, std::uint64_t delta) {
  const Op op = Op::AddU64(key, delta);
  absl::StatusOr<ApplyResult> result = apply(absl::MakeConstSpan(&op, 1));
  if (!result.ok()) return result.status();
  return result->outcomes[0].value;
}

absl::StatusOr<std::int64_t> Atom::add_i64(std::string_view key, std::int64_t delta) {
  const Op op = Op::AddI64(key, delta);
  absl::StatusOr<ApplyResult> result = apply(absl::MakeConstSpan(&op, 1));
  if (!result.ok()) return result.status();
  return static_cast<std::int64_t>(result->outcomes[0].value);
}

}  // namespace atomap

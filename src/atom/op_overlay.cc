#include "atom/op_overlay.h"

#include <cstdint>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "atomap/codec.h"

namespace atomap::internal {
namespace {

// The integer an add starts from: 0 when absent, else the value's 8 bytes (ops.h).
absl::StatusOr<std::uint64_t> IntegerAt(const std::optional<std::string>& value,
                                        std::string_view key) {
  if (!value.has_value()) return 0;
  std::optional<std::uint64_t> n = Codec<std::uint64_t>::Decode(*value);
  if (!n.has_value()) return NotAnInteger(key, value->size());
  return *n;
}

}  // namespace

absl::Status NotAnInteger(std::string_view key, std::uint64_t value_bytes) {
  return absl::FailedPreconditionError(
      absl::StrFormat("cannot add to key '%s': its value is %d bytes, not an 8-byte integer",
                      absl::CHexEscape(absl::string_view(key.data(), key.size())), value_bytes));
}

OpOverlay::Touched& OpOverlay::Touch(std::string_view key) {
  for (Touched& t : touched_) {
    if (t.key == key) return t;
  }
  Touched& t = touched_.emplace_back();
  t.key = key;
  if (std::optional<std::string_view> now = tx_.get(key)) {  // copied: the view dies at a write
    t.value = std::string(*now);
    t.in_base = true;
  }
  return t;
}

absl::Status OpOverlay::RunOp(const Op& op, OpOutcome& outcome) {
  Touched& t = Touch(op.key());
  outcome.existed = t.value.has_value();
  switch (op.kind()) {
    case Op::Kind::kSet:
      t.value = std::string(*op.value());
      t.changed = true;
      return absl::OkStatus();
    case Op::Kind::kErase:
      if (t.value.has_value()) {
        t.value.reset();
        t.changed = true;
      }
      return absl::OkStatus();
    case Op::Kind::kAddU64:
    case Op::Kind::kAddI64: {
      // Unsigned arithmetic wraps, and is the two's complement one for AddI64 as well.
      absl::StatusOr<std::uint64_t> n = IntegerAt(t.value, op.key());
      if (!n.ok()) return n.status();
      outcome.value = *n + op.delta();
      t.value = std::string(Codec<std::uint64_t>::Encode(outcome.value));
      t.changed = true;
      return absl::OkStatus();
    }
    case Op::Kind::kCompareAndSet: {
      const std::optional<std::string_view> expected = op.expected();
      outcome.matched =
          t.value.has_value() == expected.has_value() && (!t.value || *t.value == *expected);
      if (!outcome.matched) return absl::OkStatus();  // changes nothing, aborts nothing
      const std::optional<std::string_view> desired = op.value();
      t.value = desired ? std::optional<std::string>(std::string(*desired)) : std::nullopt;
      t.changed = true;
      return absl::OkStatus();
    }
  }
  return absl::InternalError("apply: an op of no known kind");  // unreachable: Op's factories
}

absl::Status OpOverlay::Run(absl::Span<const Op> ops, absl::Span<OpOutcome> outcomes,
                            RunFailure* failure) {
  // (O2) by copy: a batch touches at most kMaxOpsPerApply keys, and the first batch (the only
  // one of an apply) starts empty, so it copies nothing.
  absl::InlinedVector<Touched, 4> before;
  if (!touched_.empty()) before = touched_;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    outcomes[i] = OpOutcome();
    if (absl::Status s = RunOp(ops[i], outcomes[i]); !s.ok()) {
      if (failure != nullptr) {
        const Touched& t = Touch(ops[i].key());  // the op's key: touched by RunOp already
        *failure = RunFailure{i, t.value ? t.value->size() : 0};
      }
      touched_ = std::move(before);
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status OpOverlay::WriteTo(Transaction& tx) const {
  for (const Touched& t : touched_) {
    if (!t.changed) continue;
    if (t.value.has_value()) {
      if (absl::Status s = tx.set(t.key, *t.value); !s.ok()) return s;
    } else if (t.in_base) {
      if (absl::Status s = tx.erase(t.key).status(); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace atomap::internal

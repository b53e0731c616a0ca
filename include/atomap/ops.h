// atomap::Op: one declarative edit of one key, for Atom::apply (atom.h).
//
// Usage:
//
//   std::string_view owner = "worker-7";
//   const atomap::Op ops[] = {
//       atomap::Op::AddU64("jobs/done", 1),
//       atomap::Op::Erase("jobs/claimed/42"),
//       atomap::Op::CompareAndSet("lease", std::nullopt, owner),  // take the lease if free
//   };
//   absl::StatusOr<atomap::ApplyResult> result = atom->apply(ops);
//   if (!result.ok()) return result.status();
//   std::uint64_t done = result->outcomes[0].value;   // the counter after this batch's add
//   bool got_lease = result->outcomes[2].matched;
//
//   absl::StatusOr<std::uint64_t> hits = atom->add("hits", 1);  // one add, the new value
//
// Contract
//  - An Op says what to do to one key without reading anything first: set a value, erase the
//    key, add to an integer, or compare-and-set. Because it is declarative, the library may run
//    it wherever it likes (in the caller, or, with combining, in another writer that publishes
//    for several at once); a caller that must read and decide uses Atom::swap instead.
//  - An integer is the 8 bytes of Codec<std::uint64_t> (or <std::int64_t>): this machine's byte
//    order. An absent key counts as 0; additions wrap (two's complement for AddI64). An add on a
//    value that is present but not 8 bytes long is FailedPrecondition naming the key, and the
//    whole batch publishes nothing.
//  - CompareAndSet(key, expected, desired): if the key's value equals `expected` (nullopt: the
//    key must be absent), the key becomes `desired` (nullopt: it is erased). A failed compare
//    changes nothing but does not abort the batch: its outcome says matched = false.
//  - A batch holds at most kMaxOpsPerApply ops and kMaxOpBytes bytes of keys and values (an
//    add's delta counts as 8, a compare-and-set's expected and desired both count); every key
//    and value also obeys CheckKeyValue. A batch beyond a limit is InvalidArgument, checked
//    before anything is read or written.
//  - An Op is a plain value: it holds views of the caller's key and value bytes, which must stay
//    valid until apply returns (apply copies what it publishes). So keep an encoded value in a
//    variable: Op::Set(k, Codec<T>::Encode(v)) would view a temporary that is gone at the `;`.
//    The factories refuse to compile with a temporary std::string or Codec bytes for that reason.
//
// Thread safety: an Op is immutable after construction; share it freely while its bytes live.
#ifndef ATOMAP_OPS_H_
#define ATOMAP_OPS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "atomap/codec.h"
#include "atomap/snapshot.h"

namespace atomap {

// The most ops in one apply, and the most bytes of keys and values they may carry together.
// Of these, a batch of at most 4 ops whose encoding fits the 160-byte mailbox a combiner reads
// (8 bytes per op, 8 more for an add's delta, then the key and values) may be combined; a larger
// one runs as one swap (docs/design.md, "Combining").
inline constexpr std::size_t kMaxOpsPerApply = 16;
inline constexpr std::uint64_t kMaxOpBytes = std::uint64_t{4} << 10;

namespace ops_internal {
template <class T>
inline constexpr bool kIsNativeBytes = false;
template <class T>
inline constexpr bool kIsNativeBytes<NativeBytes<T>> = true;
}  // namespace ops_internal

// An argument whose bytes die at the end of the statement that builds the Op: a temporary
// std::string or Codec bytes. An Op made of one would view freed memory when apply reads it.
template <class T>
concept DanglingBytes =
    !std::is_lvalue_reference_v<T> && (std::is_same_v<std::remove_cvref_t<T>, std::string> ||
                                       ops_internal::kIsNativeBytes<std::remove_cvref_t<T>>);

class Op {
 public:
  enum class Kind : std::uint8_t { kSet, kErase, kAddU64, kAddI64, kCompareAndSet };

  static constexpr Op Set(std::string_view key, std::string_view value) {
    return Op(Kind::kSet, key, value, /*has_value=*/true, {}, /*has_expected=*/false, 0);
  }
  static constexpr Op Erase(std::string_view key) {
    return Op(Kind::kErase, key, {}, false, {}, false, 0);
  }
  static constexpr Op AddU64(std::string_view key, std::uint64_t delta) {
    return Op(Kind::kAddU64, key, {}, false, {}, false, delta);
  }
  static constexpr Op AddI64(std::string_view key, std::int64_t delta) {
    return Op(Kind::kAddI64, key, {}, false, {}, false, static_cast<std::uint64_t>(delta));
  }
  static constexpr Op CompareAndSet(std::string_view key, std::optional<std::string_view> expected,
                                    std::optional<std::string_view> desired) {
    return Op(Kind::kCompareAndSet, key, desired.value_or(std::string_view()), desired.has_value(),
              expected.value_or(std::string_view()), expected.has_value(), 0);
  }

  // Deleted: a temporary's bytes would be gone before apply reads them (DanglingBytes).
  template <class K, class V>
    requires(DanglingBytes<K> || DanglingBytes<V>)
  static Op Set(K&& key, V&& value) = delete;
  template <class K>
    requires DanglingBytes<K>
  static Op Erase(K&& key) = delete;
  template <class K>
    requires DanglingBytes<K>
  static Op AddU64(K&& key, std::uint64_t delta) = delete;
  template <class K>
    requires DanglingBytes<K>
  static Op AddI64(K&& key, std::int64_t delta) = delete;
  template <class K, class E, class D>
    requires(DanglingBytes<K> || DanglingBytes<E> || DanglingBytes<D>)
  static Op CompareAndSet(K&& key, E&& expected, D&& desired) = delete;

  constexpr Kind kind() const { return kind_; }
  constexpr std::string_view key() const { return key_; }
  // Set's value; CompareAndSet's desired value (nullopt: erase). nullopt for the other kinds.
  constexpr std::optional<std::string_view> value() const {
    return has_value_ ? std::optional<std::string_view>(value_) : std::nullopt;
  }
  // CompareAndSet's expected value (nullopt: must be absent); nullopt for the other kinds.
  constexpr std::optional<std::string_view> expected() const {
    return has_expected_ ? std::optional<std::string_view>(expected_) : std::nullopt;
  }
  // An add's delta (AddI64's as its two's complement bits); 0 for the other kinds.
  constexpr std::uint64_t delta() const { return delta_; }
  constexpr bool is_add() const { return kind_ == Kind::kAddU64 || kind_ == Kind::kAddI64; }
  // What this op counts against kMaxOpBytes.
  constexpr std::uint64_t bytes() const {
    return key_.size() + value_.size() + expected_.size() + (is_add() ? sizeof delta_ : 0);
  }

 private:
  constexpr Op(Kind kind, std::string_view key, std::string_view value, bool has_value,
               std::string_view expected, bool has_expected, std::uint64_t delta)
      : kind_(kind),
        has_value_(has_value),
        has_expected_(has_expected),
        key_(key),
        value_(value),
        expected_(expected),
        delta_(delta) {}

  Kind kind_;
  bool has_value_;
  bool has_expected_;
  std::string_view key_;
  std::string_view value_;
  std::string_view expected_;
  std::uint64_t delta_;
};

// What one op of an applied batch did, in the version the batch was published in.
struct OpOutcome {
  // An add: the key's new integer (AddI64's as its two's complement bits: cast to int64_t).
  std::uint64_t value = 0;
  // A compare-and-set: whether the expected value matched (and so the desired one was written).
  bool matched = false;
  // Whether the key was present just before this op (for every kind).
  bool existed = false;
};

// A published batch: the version that applied all of it (with combining, other writers'
// batches of that version may follow it there), and one outcome per op, in order.
struct ApplyResult {
  Snapshot version;
  std::vector<OpOutcome> outcomes;
};

}  // namespace atomap

#endif  // ATOMAP_OPS_H_

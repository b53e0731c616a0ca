// atomap::Transaction: a private, editable copy of one version of a map.
//
// Contract
//  - A transaction starts from one version (its base) and collects set / erase / update calls.
//    get() and size() see its own writes. Nothing is visible to anyone else until the atom that
//    created it publishes the result (the atom's swap API); the base version never changes.
//  - Work is proportional to what changes, not to the number of calls: the first write under a
//    node copies that node, later writes under it edit the copy in place.
//  - Keys are byte strings of at most kMaxKeyBytes (64 KiB); values of at most kMaxValueBytes
//    (64 MiB). Longer ones are InvalidArgument and change nothing; CheckKeyValue() says so in
//    advance (to refuse bad input before opening or creating anything).
//  - When the domain is full (ResourceExhausted) in the middle of a call, the whole transaction
//    is abandoned: what it allocated is freed, and every later call returns FailedPrecondition.
//  - A transaction that begins from an empty map holds its set calls (and set_many calls after
//    them) in process memory until its first other call (get, size, erase, update, or the
//    publication) and then builds them all at once, bottom up, as set_many does: a loop of set()
//    into an empty map is a bulk load. (Past 1 GiB of held entries it builds them then, and
//    later sets edit the result.) A set_many that is the first call builds at once.
//    Sizes are still checked by each call (InvalidArgument at once); a full domain is reported
//    by the call that builds (the swap or compare_and_set that publishes, for a transaction of
//    sets only).
//  - On a domain opened with Options::verify_reads, set, erase, update and set_many first read
//    the key's path in the base bounds-checked: damage there is DataLoss naming the file, and
//    the whole transaction is abandoned as for a full domain (nothing damaged is copied,
//    published or freed); get() returns nullopt at damage. Without it the base is trusted.
//  - update() calls the user's function before changing anything: if the function throws, the
//    exception propagates and the transaction is exactly as it was.
//  - Destroying a transaction that was not published frees everything it allocated.
//  - A transaction pins the domain's epoch for its whole life (its base cannot be reclaimed
//    under it) and records what it allocates in the file, so that if its process dies a survivor
//    frees it. A thread keeps up to four transactions recorded at once; a fifth still works, but
//    what it allocated is recovered after a crash only by the sweep (docs/reliability.md).
//
// Thread safety: one thread at a time, and only the thread that began it (it allocates from that
// thread's slot in the domain). Views returned by get() are valid until the next write to
// the same key or the end of the transaction. A moved-from Transaction may only be destroyed or
// assigned to.
//
// Usage:
//   atomap::Transaction& tx = ...;  // given to the function passed to an atom's swap
//   absl::Status s = tx.set("port", "8080");
//   s.Update(tx.update("hits", [](std::optional<std::string_view> old) {
//     return std::optional<std::string>(std::to_string(old ? std::stoi(std::string(*old)) + 1 : 1));
//   }));
//   if (!s.ok()) return s;
#ifndef ATOMAP_TRANSACTION_H_
#define ATOMAP_TRANSACTION_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace atomap {
namespace internal {
class TransactionAccess;
namespace hamt {
class TrieTransaction;
}  // namespace hamt
}  // namespace internal

// The longest key and value a map holds.
inline constexpr std::uint64_t kMaxKeyBytes = std::uint64_t{64} << 10;
inline constexpr std::uint64_t kMaxValueBytes = std::uint64_t{64} << 20;

// OK if a transaction's set() would take `key` and `value`; otherwise the InvalidArgument it
// would return, naming the limit.
absl::Status CheckKeyValue(std::string_view key, std::string_view value);

class Transaction {
 public:
  // Given the old value (nullopt: absent), returns the new one (nullopt: erase the key).
  using UpdateFunction =
      absl::FunctionRef<std::optional<std::string>(std::optional<std::string_view> old_value)>;

  Transaction(Transaction&&) noexcept;
  Transaction& operator=(Transaction&&) noexcept;
  ~Transaction();

  absl::Status set(std::string_view key, std::string_view value);
  // True if the key was present.
  absl::StatusOr<bool> erase(std::string_view key);
  absl::Status update(std::string_view key, UpdateFunction fn);
  // All or nothing for argument errors: sizes are checked before anything is written. Of equal
  // keys the last wins. Into an empty map (64 entries or more) it builds the trie bottom up,
  // each node written once at its final size: the fast way to load many entries.
  absl::Status set_many(absl::Span<const std::pair<std::string_view, std::string_view>> entries);

  // The tag the published version will carry: one 64-bit word for the writer's own use, stored
  // in the version record (not in the map), so that it changes atomically with the entries. A
  // new version carries its base's tag unless set_tag changes it (a replication follower keeps
  // the log position it has applied there). 0 in an atom that never had one.
  void set_tag(std::uint64_t tag);
  std::uint64_t tag() const;

  std::optional<std::string_view> get(std::string_view key) const;
  bool contains(std::string_view key) const { return get(key).has_value(); }
  std::uint64_t size() const;
  // False once committed, aborted, or abandoned after an error.
  bool active() const;

 private:
  friend class internal::TransactionAccess;
  explicit Transaction(std::unique_ptr<internal::hamt::TrieTransaction> impl);

  std::unique_ptr<internal::hamt::TrieTransaction> impl_;
};

}  // namespace atomap

#endif  // ATOMAP_TRANSACTION_H_

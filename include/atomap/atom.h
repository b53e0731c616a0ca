// atomap::Atom: a named map in a domain that many processes change atomically.
//
// Usage:
//
//   absl::StatusOr<atomap::Atom> hits = domain->atom("hits");
//   if (!hits.ok()) return hits.status();
//   absl::StatusOr<atomap::Snapshot> after = hits->swap([](atomap::Transaction& tx) {
//     return tx.update("/index.html", [](std::optional<std::string_view> old) {
//       std::uint64_t n = 0;
//       if (old) std::memcpy(&n, old->data(), sizeof n);
//       ++n;
//       return std::optional<std::string>(std::string(reinterpret_cast<char*>(&n), sizeof n));
//     });
//   });
//
//   // In two halves, deciding in between (a lost race is a status, not a retry):
//   absl::StatusOr<atomap::Snapshot> base = hits->load();
//   absl::StatusOr<atomap::Transaction> tx = hits->begin(*base);
//   ...  // edit *tx
//   absl::StatusOr<atomap::Snapshot> published = hits->compare_and_set(*std::move(tx));
//   if (atomap::IsLostRace(published.status())) { /* someone else won: look again */ }
//
//   // Declaratively (atomap/ops.h): no function to re-run, the path a combiner can take.
//   absl::StatusOr<std::uint64_t> n = hits->add("/index.html", 1);
//
// Contract
//  - An atom starts as the empty map (version 0). Every change publishes a whole new version
//    with one compare-and-swap of the atom's root word; readers see either the old version or
//    the new one, never a mix, and never wait for a writer.
//  - swap(fn) runs fn on a transaction over the current version and publishes the result if no
//    other writer published first; otherwise it frees what the attempt allocated and runs fn
//    again on the newer version. fn MAY RUN MORE THAN ONCE: keep it free of side effects other
//    than its edits to the transaction, and never swap the same atom from inside it (each
//    inner publication would make the outer attempt lose, forever). If fn returns an error, or
//    throws, nothing is published,
//    everything it allocated is freed, and the error (or the exception) reaches the caller.
//  - Version numbers increase by one with every published change; wait_for_change sleeps in
//    the kernel until the version differs from the one you saw. It also reads the version
//    again every 200 ms, so that it sees a change whose writer was killed before announcing
//    it (docs/reliability.md, "A change is never missed by a waiter").
//  - begin(base) and compare_and_set(tx) are swap in two halves, for a caller that decides
//    between them: compare_and_set publishes only over the version tx began from, and a lost
//    race is a status (IsLostRace), never a retry.
//  - apply(ops) publishes a batch of declarative edits (atomap/ops.h) in order, all or nothing,
//    in one new version, and says what each op did; add() and add_i64() are its one-op forms.
//    Use apply for edits of known keys that need no decision in between (counters, sets,
//    compare-and-set of one key); use swap for anything that reads and decides. Under
//    contention another writer, in any process, may apply your batch together with its own
//    and others' in one version (combining, Options::combine_writes; docs/design.md).
//  - Write operations on a read-only domain are FailedPrecondition.
//
// Thread safety: safe to use from any thread of any process that maps the file. An Atom is a
// small handle; copy it freely; it is valid while its Domain is open.
#ifndef ATOMAP_ATOM_H_
#define ATOMAP_ATOM_H_

#include <cstdint>
#include <string_view>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "atomap/map.h"
#include "atomap/ops.h"
#include "atomap/snapshot.h"
#include "atomap/transaction.h"
#include "atomap/typed_map.h"

namespace atomap {
namespace internal {
class Runtime;
class AtomAccess;
}  // namespace internal

// True if `status` is compare_and_set's answer to a lost race (another writer published first):
// an absl::Aborted that carries atomap's mark, so no other Aborted is mistaken for one.
bool IsLostRace(const absl::Status& status);

class Atom {
 public:
  using SwapFunction = absl::FunctionRef<absl::Status(Transaction& tx)>;

  std::string_view name() const;

  // The current version. With Options::verify_reads, DataLoss naming the file if the atom's
  // root word names no plausible version record (a damaged file); the same for the base of
  // swap() and wait_for_change().
  absl::StatusOr<Snapshot> load() const;

  // Edits the current version with fn and publishes the result atomically (see the contract:
  // fn may run more than once). Returns the published version. ResourceExhausted when the domain
  // is full: the atom is unchanged then.
  absl::StatusOr<Snapshot> swap(SwapFunction fn);

  // The typed form: fn edits a TypedTransaction<K, V>.
  template <Codable K, Codable V, class Fn>
  absl::StatusOr<Snapshot> swap_typed(Fn&& fn) {
    return swap([&](Transaction& tx) {
      TypedTransaction<K, V> typed(tx);
      return fn(typed);
    });
  }

  // Makes the atom's contents equal to `contents` (a map of any atom of this domain, held by a
  // live snapshot), as one published version. Costs a pass over both maps.
  absl::StatusOr<Snapshot> reset(const Map& contents);
  // Makes the atom hold exactly `entries` (in any order; of equal keys the last wins), as one
  // published version: keys not among them are erased. Sizes are checked before anything is
  // written (InvalidArgument, nothing published); the current version is read bounds-checked
  // (DataLoss at damage, nothing published). Costs a pass over the current map.
  absl::StatusOr<Snapshot> reset(
      absl::Span<const std::pair<std::string_view, std::string_view>> entries);

  // Applies `ops` in order, all or nothing, exactly once, in one published version (even when
  // no op changed anything, e.g. every compare-and-set failed). Returns that version and one
  // outcome per op; with combining the version may also hold other writers' batches, applied
  // after this one. InvalidArgument for a malformed batch (more than kMaxOpsPerApply ops, more
  // than kMaxOpBytes bytes, a key or value CheckKeyValue refuses) and FailedPrecondition naming
  // the key for an add on a value that is not 8 bytes: nothing of the batch is applied then (a
  // combined batch's refusal is recorded in a version that changes no key). An empty batch
  // publishes nothing and returns the current version. ResourceExhausted as for swap.
  absl::StatusOr<ApplyResult> apply(absl::Span<const Op> ops);
  // Adds `delta` to the integer at `key` (absent: 0; wrapping) and returns the new value: apply
  // of one Op::AddU64 / Op::AddI64.
  absl::StatusOr<std::uint64_t> add(std::string_view key, std::uint64_t delta);
  absl::StatusOr<std::int64_t> add_i64(std::string_view key, std::int64_t delta);

  // A transaction over `base`'s version, to publish later with compare_and_set.
  absl::StatusOr<Transaction> begin(const Snapshot& base);
  // Publishes `tx` if the atom still holds the version it began from, and returns the published
  // version. If another writer got there first, frees tx's work and returns Aborted naming the
  // atom: IsLostRace() is true for that status (and for no status the library makes otherwise;
  // swap() passes on what its function returns unchanged, a lost race's status included), so the
  // caller can begin again from a newer snapshot.
  absl::StatusOr<Snapshot> compare_and_set(Transaction tx);

  // The current version number (0: never changed).
  absl::StatusOr<std::uint64_t> version() const;

  // Blocks until the atom's version differs from `seen_version`, then returns the newer
  // snapshot. DeadlineExceeded after `timeout` without a change.
  absl::StatusOr<Snapshot> wait_for_change(std::uint64_t seen_version,
                                           absl::Duration timeout = absl::InfiniteDuration()) const;

 private:
  friend class internal::AtomAccess;
  Atom(internal::Runtime* runtime, std::uint32_t index) : runtime_(runtime), index_(index) {}

  internal::Runtime* runtime_;
  std::uint32_t index_;
};

}  // namespace atomap

#endif  // ATOMAP_ATOM_H_

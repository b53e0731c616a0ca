// Atom operations: load, swap, compare_and_set (IsLostRace), reset, wait_for_change.
//
// Invariants
//  (V1) An atom's root word holds the offset of its current version record (0: the empty map,
//       version 0). It changes only by a CAS from the version a transaction began at to the
//       version that transaction committed.
//  (V2) The blocks a won CAS unlinks are exactly the transaction's `replaced` list (its base's
//       path copies and version record); they are retired, never freed at once (P3).
//  (V3) The blocks of a commit that is never published (lost CAS, failure after commit) were
//       never reachable by anyone else: they are freed at once.
//  (V4) After every published change the atom's change counter is incremented and its waiters
//       are woken (file/change_notification.h), before the writer clears its intent: a writer
//       killed anywhere between the CAS and the notification leaves a live intent, and the
//       survivor that recovers it notifies instead (intent/intent_recovery.cc).
//  (V5) A version is marked `observed` before any CAS that replaces it, and only by a writer
//       that read it as the root (its base): a dead writer's version V was published iff it is
//       the root or marked (intent/intent_record.h). Every transaction pins for its whole life,
//       so no base it marks or CASes against can be freed and reused meanwhile.
//
// Memory ordering
//  (1) load: seq_cst load of the root word, after the participant's pin (EpochTable (1)): only
//      with a guard in hand (LoadRootSeqCst, atomap/internal/pin_guard.h G2); synchronises
//      with (2): the version's nodes, written before the CAS, are visible. seq_cst, not just
//      acquire, for nested pins (pin_site.h PS3: in S after the guard's load of G, before the
//      CAS that unlinks what it read); the same instruction as acquire on x86-64 and arm64.
//  (2) seq_cst CAS of the root word: release for (1); and ordered before (3) so that the
//      retirement epoch is read after the unlink (E3).
//  (3) seq_cst load of the global epoch in RetireAfterPublish (EpochTable (7)), after (2).
//  (4) NotifyChange after (2), and (5) SleepUntilChange: the waiter/notifier protocol and its
//      edges are file/change_notification.h's (1)-(5). (6) acquire load of the counter before a
//      waiter reads the version: a counter moved past it afterwards is a change to re-check.
//  (8) relaxed store of the base's `observed` mark, ordered before (2) by its release: a survivor
//      whose acquire load of the root (intent/intent_recovery.cc) reads a value written after the
//      replacing CAS also sees the mark.
#include "atomap/atom.h"

#include <cassert>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "atom/atom_access.h"
#include "atom/combine.h"
#include "atom/participant.h"
#include "atom/publish.h"
#include "atom/reader_participant.h"
#include "atom/runtime.h"
#include "atomap/diff.h"
#include "atomap/domain.h"
#include "common/crash_point.h"
#include "file/change_notification.h"
#include "hamt/access.h"
#include "recovery/durability.h"

namespace atomap {
namespace {

using internal::Block;
using internal::MapAccess;
using internal::Participant;
using internal::PinGuard;
using internal::ReaderParticipant;
using internal::Runtime;
using internal::SnapshotAccess;
using internal::TransactionAccess;

// The atom's root word (V1).
internal::SharedU64& Root(Runtime* runtime, std::uint32_t index) {
  return runtime->domain().atoms().Root(index);
}

// A reader on a read-only file system, where nobody can write the domain: it has no registry to
// pin in, and needs none (G3).
bool UnregisteredReader(Runtime* runtime) { return runtime->domain().unregistered_reader(); }

absl::StatusOr<Participant*> Writer(Runtime* runtime) {
  if (runtime->domain().read_only()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: opened read-only", runtime->domain().path()));
  }
  return runtime->ThisThread();
}

// The atom's current version (V1). The guard is the proof of the pin that keeps that version
// allocated while it is read (G2); an empty one only for an unregistered reader (G3).
internal::Offset LoadRootSeqCst(const PinGuard& pin, Runtime* runtime, std::uint32_t index) {
  assert(pin.holds_pin() || UnregisteredReader(runtime));
  (void)pin;
  return Root(runtime, index).LoadSeqCst();  // (1)
}

// A snapshot of the atom's current version, pinned at `site` (null: an unregistered reader, G3).
// Everything that can fail is done first, so that the snapshot is built once, in place, in the
// StatusOr that load() returns, and never moved on its way out: a move would read back, in one
// 16-byte load, the Map just written with two 8-byte stores. Such a load cannot be forwarded
// from the store buffer; it waits until those stores reach the cache, after every older
// instruction has retired (the previous get's cache misses included), and back-to-back gets in
// their own snapshots stopped overlapping (docs/benchmarks.md, issue 14).
absl::StatusOr<Snapshot> LoadPinned(Runtime* runtime, std::uint32_t index, internal::PinSite* site,
                                    const internal::TrieContext* context) {
  PinGuard pin = site != nullptr ? site->Guard() : PinGuard();
  const internal::Offset version = LoadRootSeqCst(pin, runtime, index);
  // Another process may have grown the file for this version's blocks. The size it published
  // before allocating them happens-before (1), so one refresh now maps all of them.
  if (absl::Status s = runtime->domain().arena().Refresh(); !s.ok()) return s;
  // Options::verify_reads: a root word that names no version record is damage, not a map. The
  // flag is tested here, inline, so that the usual load pays no call for it.
  if (context != nullptr && context->verify_reads) {
    if (absl::Status s = MapAccess::VerifyRecord(MapAccess::Make(context, version)); !s.ok()) {
      return s;
    }
  }
  return SnapshotAccess::InPlace(std::move(pin), context, version);
}

// (V5) Marks `version` (an atom's root as this writer read it) as published.
void MarkObserved(Runtime* runtime, internal::Offset version) {
  if (version == internal::kNullOffset) return;
  internal::SharedU64& observed =
      runtime->domain().arena().At<internal::hamt::VersionRecord>(version)->observed;
  // The other bit (kWideRecordBit) never changes once published: every writer that stores here
  // stores the same word.
  const std::uint64_t word = observed.LoadRelaxed();
  if ((word & internal::hamt::kObservedBit) == 0) {
    observed.StoreRelaxed(word | internal::hamt::kObservedBit);  // (8)
  }
}

// Publishes `tx` if the root still holds its base. On success retires what it replaced.
absl::StatusOr<std::optional<Snapshot>> Publish(Runtime* runtime, std::uint32_t index,
                                                Participant* participant, Transaction& tx) {
  internal::hamt::TrieTransaction& impl = TransactionAccess::Impl(tx);
  internal::PruneCombineTable(runtime->domain().slots(), impl.combine_entries());  // (C4)
  absl::StatusOr<internal::hamt::CommitResult> commit = impl.Commit();
  if (!commit.ok()) return commit.status();
  if (absl::Status s = participant->PrepareRetire(commit->replaced.size()); !s.ok()) {
    participant->FreeUnpublished(*commit);  // (V3)
    return s;
  }
  const bool sync = runtime->domain().durability() == Durability::kSync;
  if (sync) {  // recovery/durability.h (D1): the nodes reach the disk before the root can
    if (absl::Status s = internal::SyncDomain(runtime->domain()); !s.ok()) {
      participant->FreeUnpublished(*commit);  // (V3)
      return s;
    }
  }
  internal::SharedU64& root = Root(runtime, index);
  internal::Offset expected = impl.base();
  // The new version is pinned before it is published, so it cannot be retired and freed by a
  // later writer before this thread's snapshot of it exists: `pin` becomes that snapshot's. On
  // every other exit it is released as Publish returns, after the frees.
  PinGuard pin(*participant);
  participant->AnnounceIntent(index, *commit);
  MarkObserved(runtime, expected);  // (8), (V5)
  ATOMAP_CRASH_POINT(kPublishBeforeCas);
  if (!root.CasSeqCst(expected, commit->version)) {  // (2)
    participant->WithdrawIntent();
    participant->FreeUnpublished(*commit);  // (V3)
    return std::optional<Snapshot>();
  }
  ATOMAP_CRASH_POINT(kPublishAfterCas);
  // (D2): synced while still pinned, so nobody frees what this version replaced before the disk
  // holds the new root. A failure here is reported; the version is published regardless.
  const absl::Status durable = sync ? internal::SyncDomain(runtime->domain()) : absl::OkStatus();
  participant->RetireAfterPublish(commit->replaced);  // (3), (V2)
  ATOMAP_CRASH_POINT(kPublishAfterRetire);
  internal::NotifyChange(runtime->domain().atoms(), index);  // (4), (V4): before the intent
  participant->FinishPublication(*commit);                   // is cleared
  if (!durable.ok()) return durable;
  return std::optional<Snapshot>(
      SnapshotAccess::Make(std::move(pin), &participant->context(), commit->version));
}

// A registered reader's load: pinned in its reader slot (RR1), which then names the snapshot
// for `atomap stat --readers` if this is its outermost pin.
absl::StatusOr<Snapshot> LoadAsReader(Runtime* runtime, std::uint32_t index,
                                      ReaderParticipant* reader) {
  const bool outermost = !reader->pinned();
  absl::StatusOr<Snapshot> snapshot =
      LoadPinned(runtime, index, &reader->pin_site(), &runtime->read_context());
  if (snapshot.ok() && outermost) reader->RecordSnapshot(index, snapshot->version());
  return snapshot;
}

// load()'s paths other than a writer's with its participant at hand (the hot one, inline there).
absl::StatusOr<Snapshot> LoadSlow(Runtime* runtime, std::uint32_t index) {
  if (UnregisteredReader(runtime)) {
    return LoadPinned(runtime, index, nullptr, &runtime->read_context());  // (G3)
  }
  if (runtime->domain().read_only()) {
    absl::StatusOr<ReaderParticipant*> reader = runtime->ThisReader();
    if (!reader.ok()) return reader.status();
    return LoadAsReader(runtime, index, *reader);
  }
  absl::StatusOr<Participant*> participant = runtime->ThisThread();
  if (!participant.ok()) return participant.status();
  return LoadPinned(runtime, index, &(*participant)->pin_site(), &(*participant)->context());
}

}  // namespace

namespace internal {

absl::StatusOr<Snapshot> LoadForWrite(Runtime* runtime, std::uint32_t index,
                                      Participant* participant) {
  return LoadPinned(runtime, index, &participant->pin_site(), &participant->context());
}

absl::StatusOr<std::optional<Snapshot>> PublishTransaction(Runtime* runtime, std::uint32_t index,
                                                           Participant* participant,
                                                           Transaction& tx) {
  return Publish(runtime, index, participant, tx);
}

}  // namespace internal

// ---- Atom -------------------------------------------------------------------------------------

std::string_view Atom::name() const { return runtime_->domain().atoms().Name(index_); }

absl::StatusOr<Snapshot> Atom::load() const {
  // The hot paths first: a thread whose cache holds its participant here (Runtime::ThreadCache).
  // A read-only domain's handles never cache a writer participant, nor a writable one's a reader.
  if (Participant* participant = runtime_->CachedParticipant()) {
    return LoadPinned(runtime_, index_, &participant->pin_site(), &participant->context());
  }
  if (ReaderParticipant* reader = runtime_->CachedReader()) {
    return LoadAsReader(runtime_, index_, reader);
  }
  return LoadSlow(runtime_, index_);
}

// One attempt of Atom::swap: nullopt when another writer published first. Everything it pins
// (the base, the transaction) is released when it returns.
absl::StatusOr<std::optional<Snapshot>> SwapOnce(Runtime* runtime, std::uint32_t index,
                                                 Participant* participant,
                                                 const Atom::SwapFunction& fn) {
  absl::StatusOr<Snapshot> base =
      LoadPinned(runtime, index, &participant->pin_site(), &participant->context());
  if (!base.ok()) return base.status();
  Transaction tx = TransactionAccess::Make(participant->context(), MapAccess::Version(base->map()),
                                           participant->HoldForTransaction());
  if (absl::Status s = fn(tx); !s.ok()) return s;  // tx frees its work as it is destroyed
  return Publish(runtime, index, participant, tx);
}

absl::StatusOr<Snapshot> Atom::swap(SwapFunction fn) {
  absl::StatusOr<Participant*> participant = Writer(runtime_);
  if (!participant.ok()) return participant.status();
  for (int reclaims = 0;;) {
    absl::StatusOr<std::optional<Snapshot>> published =
        SwapOnce(runtime_, index_, *participant, fn);
    if (!published.ok()) {
      // A full domain: reclaim what no pin holds back and try again, or say who holds it back.
      absl::Status reclaimed = (*participant)->ReclaimForSpace(published.status());
      if (!reclaimed.ok()) return reclaimed;
      if (++reclaims > Participant::kReclaimsForSpace) return published.status();
      continue;
    }
    if (published->has_value()) return std::move(**published);
  }
}

absl::StatusOr<Transaction> Atom::begin(const Snapshot& base) {
  absl::StatusOr<Participant*> participant = Writer(runtime_);
  if (!participant.ok()) return participant.status();
  return TransactionAccess::Make((*participant)->context(), MapAccess::Version(base.map()),
                                 (*participant)->HoldForTransaction());
}

namespace {

constexpr char kLostRacePayload[] = "atomap/compare_and_set.lost_race";

// compare_and_set's answer when another writer published over its base first.
absl::Status LostRace(std::string_view atom, const std::string& path) {
  absl::Status status = absl::AbortedError(absl::StrFormat(
      "atom '%s' of %s: another writer published first (begin again from a newer snapshot)", atom,
      path));
  status.SetPayload(kLostRacePayload, absl::Cord());
  return status;
}

// The version `tx` began from, as a map (valid while tx lives: tx pins it).
Map BaseOf(Transaction& tx) {
  internal::hamt::TrieTransaction& impl = TransactionAccess::Impl(tx);
  return MapAccess::Make(&impl.context(), impl.base());
}

// Erases from `tx` every key of `base` (tx's base) that `keep` rejects. The base is read
// bounds-checked (DataLoss at damage); erasing while walking it is safe, as a transaction never
// changes its base.
absl::Status EraseKeysNotIn(Transaction& tx, const Map& base,
                            absl::FunctionRef<bool(std::string_view key)> keep) {
  absl::Status status;
  const absl::Status read = base.CheckedForEach([&](std::string_view key, std::string_view) {
    if (status.ok() && !keep(key)) status = tx.erase(key).status();
  });
  return read.ok() ? status : read;
}

}  // namespace

bool IsLostRace(const absl::Status& status) {
  return absl::IsAborted(status) && status.GetPayload(kLostRacePayload).has_value();
}

absl::StatusOr<Snapshot> Atom::compare_and_set(Transaction tx) {
  absl::StatusOr<Participant*> participant = Writer(runtime_);
  if (!participant.ok()) return participant.status();
  absl::StatusOr<std::optional<Snapshot>> published = Publish(runtime_, index_, *participant, tx);
  if (!published.ok()) return published.status();
  if (!published->has_value()) return LostRace(name(), runtime_->domain().path());
  return std::move(**published);
}

absl::StatusOr<Snapshot> Atom::reset(const Map& contents) {
  return swap([&](Transaction& tx) -> absl::Status {
    const Map current = BaseOf(tx);
    absl::Status status =
        EraseKeysNotIn(tx, current, [&](std::string_view key) { return contents.contains(key); });
    contents.ForEach([&](std::string_view key, std::string_view value) {
      if (!status.ok()) return;
      std::optional<std::string_view> now = current.get(key);
      if (!now || *now != value) status = tx.set(key, value);
    });
    return status;
  });
}

absl::StatusOr<Snapshot> Atom::reset(
    absl::Span<const std::pair<std::string_view, std::string_view>> entries) {
  absl::flat_hash_set<std::string_view> keys;
  keys.reserve(entries.size());
  for (const auto& [key, value] : entries) {
    if (absl::Status s = CheckKeyValue(key, value); !s.ok()) return s;
    keys.insert(key);
  }
  return swap([&](Transaction& tx) -> absl::Status {
    absl::Status erased =
        EraseKeysNotIn(tx, BaseOf(tx), [&](std::string_view key) { return keys.contains(key); });
    if (!erased.ok()) return erased;
    return tx.set_many(entries);
  });
}

absl::StatusOr<std::uint64_t> Atom::version() const {
  absl::StatusOr<Snapshot> snap = load();
  if (!snap.ok()) return snap.status();
  return snap->version();
}

absl::StatusOr<Snapshot> Atom::wait_for_change(std::uint64_t seen_version,
                                               absl::Duration timeout) const {
  const absl::Time deadline =
      timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
  internal::AtomTable& atoms = runtime_->domain().atoms();
  for (;;) {
    const std::uint32_t seen_counter = atoms.ChangeCounter(index_).LoadAcquire();  // (6)
    {
      // The root itself, every slice: a version whose writer died before notifying is seen
      // here even if no survivor ever recovers it (change_notification.h K3).
      absl::StatusOr<Snapshot> snap = load();
      if (!snap.ok() || snap->version() != seen_version) return snap;
    }  // no pin is held while sleeping: a waiter never holds reclamation back
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(
          absl::StrFormat("atom '%s' of %s: no change from version %d", name(),
                          runtime_->domain().path(), seen_version));
    }
    internal::SleepUntilChange(atoms, index_, seen_counter, left,  // (5)
                               /*can_register=*/!runtime_->domain().read_only());
  }
}

}  // namespace atomap

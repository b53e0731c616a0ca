// Pins as guards (atomap/internal/pin_guard.h): a Map cannot be copied or moved out of its
// Snapshot, a snapshot's pin is released exactly once however it is moved, and every other pin
// (a transaction's, a guard's) lasts exactly as long as the object that holds it.
#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#include "atom/participant.h"
#include "atom/reader_participant.h"
#include "atom/runtime.h"
#include "atomap/atom.h"
#include "atomap/domain.h"
#include "atomap/internal/pin_guard.h"
#include "atomap/map.h"
#include "atomap/snapshot.h"
#include "atomap/typed_map.h"
#include "domain/domain_impl.h"
#include "epoch/epoch_table.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

using internal::PinGuard;

// A Map is reached only by reference to its Snapshot's: `Map m = snapshot.map();` and
// `Map m = std::move(...)` do not compile.
static_assert(!std::is_copy_constructible_v<Map>);
static_assert(!std::is_move_constructible_v<Map>);
static_assert(!std::is_copy_assignable_v<Map>);
static_assert(!std::is_move_assignable_v<Map>);
static_assert(std::is_default_constructible_v<Map>);  // the empty map of no domain
// A TypedMap refers to a Map; it cannot be built from a temporary one, which would dangle.
static_assert(std::is_constructible_v<TypedMap<std::string, std::uint64_t>, const Map&>);
static_assert(!std::is_constructible_v<TypedMap<std::string, std::uint64_t>, Map>);

static_assert(!std::is_copy_constructible_v<Snapshot>);
static_assert(!std::is_copy_assignable_v<Snapshot>);
static_assert(std::is_nothrow_move_constructible_v<Snapshot>);
static_assert(std::is_nothrow_move_assignable_v<Snapshot>);

// The guard is move-only: a pointer and its generation (pin_site.h PS3), followed by nothing more.
static_assert(!std::is_copy_constructible_v<PinGuard>);
static_assert(!std::is_copy_assignable_v<PinGuard>);
static_assert(std::is_nothrow_move_constructible_v<PinGuard>);
static_assert(std::is_nothrow_move_assignable_v<PinGuard>);
static_assert(sizeof(PinGuard) == 2 * sizeof(void*));

struct OneAtom {
  TempDir dir;
  absl::StatusOr<Domain> domain = Domain::Open(dir.File("pins.atomap"), SmallOptions(8, 8));
  Atom atom = *domain->atom("a");

  bool pinned() const { return domain->stats().any_pinned; }
  std::uint64_t Publish(const std::string& value) {
    absl::StatusOr<Snapshot> s = atom.swap([&](Transaction& tx) { return tx.set("k", value); });
    REQUIRE(s.ok());
    return s->version();
  }
};

TEST_CASE("a snapshot's pin moves with it and is released once, by the last holder", "[pin]") {
  OneAtom d;
  REQUIRE(d.domain.ok());
  d.Publish("one");
  REQUIRE_FALSE(d.pinned());
  {
    std::optional<Snapshot> first(*d.atom.load());
    CHECK(d.pinned());
    Snapshot second(std::move(*first));
    first.reset();  // the moved-from snapshot holds nothing: destroying it unpins nothing
    CHECK(d.pinned());
    CHECK(second.map().get("k") == std::optional<std::string_view>("one"));

    Snapshot third = *d.atom.load();  // a nested pin of the same participant
    third = std::move(second);        // releases third's own pin, takes second's
    CHECK(d.pinned());
    CHECK(third.version() == 1);
    CHECK(third.map().get("k") == std::optional<std::string_view>("one"));
    CHECK(second.version() == 0);  // NOLINT(bugprone-use-after-move): moved-from reads empty
    CHECK(second.map().empty());
    CHECK_FALSE(second.map().get("k").has_value());
  }
  CHECK_FALSE(d.pinned());
  // The depth is back at zero, not below: the next snapshot announces its pin again.
  {
    absl::StatusOr<Snapshot> again = d.atom.load();
    REQUIRE(again.ok());
    CHECK(d.pinned());
  }
  CHECK_FALSE(d.pinned());
}

TEST_CASE("self-move of a snapshot keeps its pin and its map", "[pin]") {
  OneAtom d;
  REQUIRE(d.domain.ok());
  d.Publish("one");
  {
    Snapshot s = *d.atom.load();
    Snapshot& alias = s;
    s = std::move(alias);
    CHECK(d.pinned());
    CHECK(s.map().get("k") == std::optional<std::string_view>("one"));
  }
  CHECK_FALSE(d.pinned());
}

TEST_CASE("a published version's snapshot holds the pin taken before the CAS; nothing else does",
          "[pin]") {
  OneAtom d;
  REQUIRE(d.domain.ok());
  {
    absl::StatusOr<Snapshot> published =
        d.atom.swap([](Transaction& tx) { return tx.set("k", "v"); });
    REQUIRE(published.ok());
    CHECK(d.pinned());  // the swap's base snapshot and transaction are gone; this pin remains
    CHECK(published->map().get("k") == std::optional<std::string_view>("v"));
  }
  CHECK_FALSE(d.pinned());
  // A failed swap function: the base snapshot, the transaction and nothing else pinned.
  CHECK_FALSE(d.atom.swap([](Transaction&) { return absl::AbortedError("no"); }).ok());
  CHECK_FALSE(d.pinned());
}

TEST_CASE("a transaction pins for its whole life", "[pin]") {
  OneAtom d;
  REQUIRE(d.domain.ok());
  d.Publish("one");
  std::optional<absl::StatusOr<Transaction>> tx;
  {
    Snapshot base = *d.atom.load();
    tx.emplace(d.atom.begin(base));
    REQUIRE(tx->ok());
  }
  CHECK(d.pinned());  // the base snapshot is gone; the transaction's own pin holds
  REQUIRE((*tx)->set("k", "two").ok());
  tx.reset();
  CHECK_FALSE(d.pinned());
}

TEST_CASE("guards nest on one participant and unpin once each", "[pin]") {
  OneAtom d;
  REQUIRE(d.domain.ok());
  internal::Runtime runtime(internal::Access(*d.domain));
  absl::StatusOr<internal::Participant*> participant = runtime.ThisThread();
  REQUIRE(participant.ok());
  internal::Participant& p = **participant;

  PinGuard empty;
  CHECK_FALSE(empty.holds_pin());
  CHECK_FALSE(p.pinned());
  {
    PinGuard outer(p);
    CHECK(outer.holds_pin());
    CHECK(p.pinned());
    CHECK(d.pinned());
    {
      PinGuard inner(p);
      PinGuard moved(std::move(inner));
      CHECK_FALSE(inner.holds_pin());  // NOLINT(bugprone-use-after-move)
      CHECK(moved.holds_pin());
    }
    CHECK(p.pinned());  // the inner level is given back once; the outer one still holds
    PinGuard taken = std::move(outer);
    outer = PinGuard();  // assigning an empty guard to an empty one releases nothing
    CHECK(p.pinned());
    empty = std::move(taken);
    CHECK(p.pinned());
  }
  CHECK(p.pinned());  // `empty` (declared outside) holds the outer pin now
  empty = PinGuard();
  CHECK_FALSE(p.pinned());
  CHECK_FALSE(d.pinned());
}

// The load's hot path finds the thread's participant in a one-entry cache (Runtime::ThreadCache):
// loads that alternate between handles miss it every time, and must still each pin their own.
TEST_CASE("one thread's loads from several handles each pin their own handle's slot",
          "[pin][readers]") {
  TempDir dir;
  Domain a = *Domain::Open(dir.File("a.atomap"), SmallOptions(4, 4));
  Domain b = *Domain::Open(dir.File("b.atomap"), SmallOptions(4, 4));
  Atom atom_a = *a.atom("x");
  Atom atom_b = *b.atom("x");
  REQUIRE(atom_a.swap([](Transaction& tx) { return tx.set("k", "a"); }).ok());
  REQUIRE(atom_b.swap([](Transaction& tx) { return tx.set("k", "b"); }).ok());
  Options read_only = SmallOptions(4, 4);
  read_only.read_only = true;
  Domain r = *Domain::Open(dir.File("a.atomap"), read_only);
  Atom atom_r = *r.find_atom("x");
  for (int round = 0; round < 3; ++round) {
    INFO("round " << round);
    std::optional<Snapshot> from_a(*atom_a.load());
    CHECK(a.stats().any_pinned);
    CHECK_FALSE(b.stats().any_pinned);
    std::optional<Snapshot> from_r(*atom_r.load());
    std::optional<Snapshot> from_b(*atom_b.load());
    CHECK(b.stats().any_pinned);
    CHECK(from_a->map().get("k") == "a");
    CHECK(from_r->map().get("k") == "a");
    CHECK(from_b->map().get("k") == "b");
    from_b.reset();
    CHECK_FALSE(b.stats().any_pinned);
    std::optional<Snapshot> nested_a(*atom_a.load());  // nested in from_a, after b's load
    from_a.reset();
    from_r.reset();              // the reader's pin would hide a missing writer pin
    CHECK(a.stats().any_pinned);  // nested_a's pin alone, in a's writer slot
    CHECK_FALSE(b.stats().any_pinned);  // not b's slot
    nested_a.reset();
    CHECK_FALSE(a.stats().any_pinned);
  }
}

TEST_CASE("a read-only handle's loads pin its reader slot; guards nest there too",
          "[pin][readers]") {
  TempDir dir;
  const std::string path = dir.File("r.atomap");
  {
    Domain writer = *Domain::Open(path, SmallOptions(4, 4));
    REQUIRE((*writer.atom("a")).swap([](Transaction& tx) { return tx.set("k", "v"); }).ok());
  }
  Options read_only = SmallOptions(4, 4);
  read_only.read_only = true;
  Domain reader = *Domain::Open(path, read_only);
  REQUIRE(internal::Access(reader).readers() != nullptr);
  Atom atom = *reader.find_atom("a");
  const auto slot_of_this_process = [&]() -> std::optional<internal::ReaderSlotImage> {
    for (const internal::ReaderSlotImage& image : internal::Access(reader).readers()->ReadSlots()) {
      if (image.state == static_cast<std::uint32_t>(internal::ReaderSlotState::kOwned)) {
        return image;
      }
    }
    return std::nullopt;
  };
  {
    Snapshot outer = *atom.load();
    std::optional<internal::ReaderSlotImage> slot = slot_of_this_process();
    REQUIRE(slot.has_value());
    CHECK(internal::Announcement::IsPinned(slot->announcement));
    CHECK(slot->pinned_atom == 1);  // atom 0, recorded + 1
    CHECK(slot->pinned_version == outer.version());
    {
      Snapshot inner = *atom.load();  // nested: no new announcement, the outer one holds
      CHECK(slot_of_this_process()->announcement == slot->announcement);
    }
    CHECK(internal::Announcement::IsPinned(slot_of_this_process()->announcement));
  }
  CHECK_FALSE(internal::Announcement::IsPinned(slot_of_this_process()->announcement));
  // Still claimed (the thread keeps its reader participant until it exits or the domain closes).
  CHECK(slot_of_this_process().has_value());
}

}  // namespace
// Hand over hand, as a configuration reader holds its snapshots: keep the current one, take the
// next, drop the old. The thread is never unpinned, yet its announcement must follow its newest
// snapshot (pin_site.h PS3): otherwise the epoch stops one step past its first pin for ever, and
// nothing retired after it is ever freed.
void HandOverHandAdvances(Domain& handle, Domain& writer) {
  Atom atom = *handle.find_atom("a");
  const internal::EpochTable epochs = internal::Access(writer).epochs();
  absl::StatusOr<Snapshot> held = atom.load();
  REQUIRE(held.ok());
  const std::uint64_t first = epochs.CurrentEpoch();
  for (int round = 0; round < 5; ++round) {
    // Nobody else is pinned: with this thread's announcement at G, G advances.
    CHECK_FALSE(epochs.TryAdvance().has_value());
    absl::StatusOr<Snapshot> next = atom.load();  // a nested pin that sees the newer G
    REQUIRE(next.ok());
    held = std::move(next);  // the old generation goes: the announcement slides up
    INFO("round " << round);
    REQUIRE(writer.stats().any_pinned);
    CHECK(writer.stats().oldest_pinned_epoch == epochs.CurrentEpoch());
  }
  CHECK(epochs.CurrentEpoch() == first + 5);
  held = absl::StatusOr<Snapshot>();  // drops the last snapshot
  CHECK_FALSE(writer.stats().any_pinned);
}

TEST_CASE("hand-over-hand snapshots slide the pin forward (writers and readers)", "[pin]") {
  TempDir dir;
  const std::string path = dir.File("slide.atomap");
  Domain writer = *Domain::Open(path, SmallOptions(4, 4));
  REQUIRE((*writer.atom("a")).swap([](Transaction& tx) { return tx.set("k", "v"); }).ok());
  SECTION("a writer's thread") { HandOverHandAdvances(writer, writer); }
  SECTION("a registered reader's thread") {
    Options read_only = SmallOptions(4, 4);
    read_only.read_only = true;
    Domain reader = *Domain::Open(path, read_only);
    HandOverHandAdvances(reader, writer);
  }
}

// A transaction outlives the snapshot it began from (`atom.begin(*atom.load())`): its pin loads
// no root of its own, so it must keep the announcement where the base was loaded, not slide up
// with the epoch (pin_site.h PinOldest). Were it to slide, the base could be freed under it.
TEST_CASE("a transaction keeps its base's epoch after the base snapshot is dropped", "[pin]") {
  OneAtom d;
  REQUIRE(d.domain.ok());
  d.Publish("v");
  const internal::EpochTable epochs = internal::Access(*d.domain).epochs();
  std::optional<Snapshot> base(*d.atom.load());
  const std::uint64_t loaded_at = epochs.CurrentEpoch();
  CHECK_FALSE(epochs.TryAdvance().has_value());  // this thread's pin is at G: G moves on
  absl::StatusOr<Transaction> tx = d.atom.begin(*base);
  REQUIRE(tx.ok());
  base.reset();
  REQUIRE(d.domain->stats().any_pinned);
  CHECK(d.domain->stats().oldest_pinned_epoch == loaded_at);
  CHECK(epochs.TryAdvance().has_value());  // held back: the base is still read through tx
  CHECK(tx->get("k") == std::optional<std::string_view>("v"));
}

// A language binding's garbage collector may drop a snapshot after the thread that took it has
// exited (runtime.h RT1): the thread's participant is kept, pinned, until then; the snapshot
// still reads its version, holds reclamation back meanwhile, and releases its pin on the
// thread that destroys it.
void SnapshotOutlivesItsThread(Domain& handle, Domain& writer) {
  Atom atom = *handle.find_atom("a");
  Atom writer_atom = *writer.find_atom("a");
  std::optional<Snapshot> orphan;
  std::thread([&] { orphan.emplace(*atom.load()); }).join();
  REQUIRE(writer.stats().any_pinned);
  const std::uint64_t seen = orphan->version();
  for (int i = 0; i < 4; ++i) {  // replace the orphan's version several times over
    REQUIRE(writer_atom.swap([&](Transaction& tx) { return tx.set("k", std::to_string(i)); }).ok());
  }
  CHECK(writer.stats().pending_garbage_blocks > 0);  // the orphan's version is held back
  CHECK(orphan->version() == seen);
  CHECK(orphan->map().get("k") == "v");
  // A new thread (whose id may be the exited one's) gets a participant of its own, unpinned
  // by the orphan's release.
  std::thread([&] {
    Snapshot fresh = *atom.load();
    CHECK(fresh.map().get("k") == "3");
  }).join();
  orphan.reset();  // on this thread, after its own thread exited
  CHECK_FALSE(writer.stats().any_pinned);
  for (int i = 0; i < 4; ++i) {  // reclamation resumes
    REQUIRE(writer_atom.swap([&](Transaction& tx) { return tx.set("k", "v"); }).ok());
  }
  absl::StatusOr<CheckReport> report = writer.check();
  REQUIRE(report.ok());
  CHECK(report->problems.empty());
}

TEST_CASE("a snapshot may be destroyed after its thread exited (writers and readers)",
          "[pin][threads]") {
  TempDir dir;
  const std::string path = dir.File("orphan.atomap");
  Domain writer = *Domain::Open(path, SmallOptions(8, 8));
  REQUIRE((*writer.atom("a")).swap([](Transaction& tx) { return tx.set("k", "v"); }).ok());
  SECTION("a writer's thread") { SnapshotOutlivesItsThread(writer, writer); }
  SECTION("a registered reader's thread") {
    Options read_only = SmallOptions(8, 8);
    read_only.read_only = true;
    Domain reader = *Domain::Open(path, read_only);
    SnapshotOutlivesItsThread(reader, writer);
  }
}

}  // namespace atomap

// The participant rows of Domain::stats (src/atom/stats.h): the pure functions that turn one
// slot's words into a ParticipantStats, on reader slots made up here (the registry itself is
// another layer's), and a writer's row as CollectStats builds it from a live pin.
#include <catch2/catch.hpp>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "atom/stats.h"
#include "atomap/domain.h"
#include "epoch/epoch_table.h"
#include "file/reader_registry.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

using internal::Announcement;
using internal::EpochRingImage;
using internal::ParticipantFromReaderSlot;
using internal::ParticipantFromWriterSlot;
using internal::PinFigures;
using internal::PinnedFor;
using internal::ReaderSlotImage;
using internal::RetainedGarbage;

constexpr std::int64_t kSecond = 1'000'000'000;

// G = 12; epochs 11 and 12 began 30 s and 5 s before now (ring entry e % 3).
PinFigures Figures() {
  PinFigures figures;
  figures.global_epoch = 12;
  figures.now_ns = 1000 * kSecond;
  figures.ring.entries[11 % 3] = {11, static_cast<std::uint64_t>(970 * kSecond)};
  figures.ring.entries[12 % 3] = {12, static_cast<std::uint64_t>(995 * kSecond)};
  figures.ring.entries[10 % 3] = {10, static_cast<std::uint64_t>(900 * kSecond)};
  figures.retained.AddBatch(10, 100);  // freeable once G >= 12: no pin at >= 11 holds it
  figures.retained.AddBatch(11, 2000);
  figures.retained.AddBatch(12, 30000);
  figures.atoms[4] = internal::AtomFigure{"config", 57};
  return figures;
}

ReaderSlotImage PinnedReader(std::uint64_t epoch) {
  ReaderSlotImage image;
  image.index = 7;
  image.announcement = Announcement::Pinned(epoch);
  image.state = static_cast<std::uint32_t>(internal::ReaderSlotState::kOwned);
  image.owner_pid = 4242;
  image.owner_uid = 1001;
  image.pinned_atom = 5;  // atom 4, + 1
  image.pinned_version = 50;
  return image;
}

TEST_CASE("a pinned reader's row: epoch, lag, atom, versions behind, retained, pinned for") {
  const PinFigures figures = Figures();
  const ParticipantStats row = ParticipantFromReaderSlot(PinnedReader(11), true, figures);
  CHECK(row.kind == ParticipantStats::Kind::kReader);
  CHECK(row.slot == 7);
  CHECK(row.pid == 4242);
  CHECK(row.uid == 1001);
  CHECK(row.alive == true);
  CHECK(row.pinned);
  CHECK(row.pinned_epoch == 11);
  CHECK(row.epoch_lag == 1);
  CHECK(row.pinned_atom == 5);
  CHECK(row.pinned_atom_name == "config");
  CHECK(row.versions_behind == 7);
  CHECK(row.retained_bytes == 32000);  // the batches of epochs 11 and 12
  CHECK(row.pinned_for == absl::Seconds(5));  // since epoch 12 began: it holds G back since
}

TEST_CASE("a reader pinned at the global epoch holds nothing back for any time yet") {
  const ParticipantStats row = ParticipantFromReaderSlot(PinnedReader(12), false, Figures());
  CHECK(row.alive == false);
  CHECK(row.epoch_lag == 0);
  CHECK(row.retained_bytes == 30000);
  CHECK(row.pinned_for == absl::ZeroDuration());
}

TEST_CASE("an unpinned reader, or one naming no atom that exists, has no pin figures") {
  ReaderSlotImage idle = PinnedReader(11);
  idle.announcement = Announcement::kUnpinned;
  const ParticipantStats unpinned = ParticipantFromReaderSlot(idle, std::nullopt, Figures());
  CHECK_FALSE(unpinned.alive.has_value());
  CHECK_FALSE(unpinned.pinned);
  CHECK(unpinned.retained_bytes == 0);
  CHECK(unpinned.pinned_atom == 0);
  CHECK(unpinned.pinned_for == absl::ZeroDuration());

  ReaderSlotImage lying = PinnedReader(11);
  lying.pinned_atom = 1000;  // no such atom: a reader may write anything in its slot
  const ParticipantStats unnamed = ParticipantFromReaderSlot(lying, true, Figures());
  CHECK(unnamed.pinned);
  CHECK(unnamed.pinned_atom == 0);
  CHECK(unnamed.pinned_atom_name.empty());
  CHECK(unnamed.versions_behind == 0);

  ReaderSlotImage future = PinnedReader(40);  // newer than G: lags by nothing
  const ParticipantStats ahead = ParticipantFromReaderSlot(future, true, Figures());
  CHECK(ahead.epoch_lag == 0);
  CHECK(ahead.retained_bytes == 0);
  CHECK(ahead.pinned_for == absl::ZeroDuration());
}

TEST_CASE("pinned for: only from a ring entry that records the epoch after the pin") {
  EpochRingImage ring;
  CHECK(PinnedFor(ring, 5, 4, 100 * kSecond) == absl::ZeroDuration());  // nothing recorded
  ring.entries[5 % 3] = {5, static_cast<std::uint64_t>(90 * kSecond)};
  CHECK(PinnedFor(ring, 5, 4, 100 * kSecond) == absl::Seconds(10));
  CHECK(PinnedFor(ring, 5, 5, 100 * kSecond) == absl::ZeroDuration());  // G == pin
  ring.entries[5 % 3] = {8, static_cast<std::uint64_t>(90 * kSecond)};   // overwritten
  CHECK(PinnedFor(ring, 8, 4, 100 * kSecond) == absl::ZeroDuration());
  ring.entries[5 % 3] = {5, static_cast<std::uint64_t>(200 * kSecond)};  // a clock ahead of ours
  CHECK(PinnedFor(ring, 5, 4, 100 * kSecond) == absl::ZeroDuration());
}

TEST_CASE("retained garbage counts whole batches whose newest retire epoch is >= the pin's") {
  RetainedGarbage garbage;
  CHECK(garbage.HeldBackBy(0) == 0);
  garbage.AddBatch(3, 10);
  garbage.AddBatch(5, 20);
  garbage.AddBatch(5, 40);
  CHECK(garbage.HeldBackBy(0) == 70);
  CHECK(garbage.HeldBackBy(4) == 60);
  CHECK(garbage.HeldBackBy(5) == 60);
  CHECK(garbage.HeldBackBy(6) == 0);
}

TEST_CASE("a writer's row: its pin, and no atom (writers record none)") {
  const PinFigures figures = Figures();
  const ParticipantStats row =
      ParticipantFromWriterSlot(3, 99, Announcement::Pinned(11), true, figures);
  CHECK(row.kind == ParticipantStats::Kind::kWriter);
  CHECK(row.slot == 3);
  CHECK(row.pid == 99);
  CHECK(row.uid == 0);
  CHECK(row.pinned_epoch == 11);
  CHECK(row.epoch_lag == 1);
  CHECK(row.pinned_atom == 0);
  CHECK(row.retained_bytes == 32000);
  CHECK(row.pinned_for == absl::Seconds(5));
}

TEST_CASE("stats lists this process's pinned writer, alive, and names it the oldest pin") {
  TempDir dir;
  absl::StatusOr<Domain> domain = Domain::Open(dir.File("d.atomap"), SmallOptions());
  REQUIRE(domain.ok());
  absl::StatusOr<Atom> atom = domain->atom("a");
  REQUIRE(atom.ok());
  REQUIRE(atom->swap([](Transaction& tx) { return tx.set("k", "v0"); }).ok());
  absl::StatusOr<Snapshot> held = atom->load();
  REQUIRE(held.ok());
  const DomainStats before = domain->stats();
  // Retire garbage at epochs >= the pin's: it is what the pin holds back.
  for (int i = 1; i <= 5; ++i) {
    const std::string value = absl::StrCat("v", i);
    REQUIRE(atom->swap([&](Transaction& tx) { return tx.set("k", value); }).ok());
  }
  const DomainStats stats = domain->stats(StatsOptions{.participants = true});
  REQUIRE(stats.damage.ok());
  CHECK(stats.writers == 1);
  CHECK(stats.participants == 1);
  CHECK(stats.readers == 0);
  CHECK(stats.dead_participants == 0);
  CHECK(stats.epoch_advances == stats.global_epoch);
  REQUIRE(stats.participant_list.size() == 1);
  const ParticipantStats& row = stats.participant_list[0];
  CHECK(row.kind == ParticipantStats::Kind::kWriter);
  CHECK(row.pid == static_cast<std::uint32_t>(getpid()));
  CHECK(row.alive == true);  // probed through a description of its own
  CHECK(row.pinned);
  CHECK(row.pinned_epoch == before.oldest_pinned_epoch);
  CHECK(row.retained_bytes > 0);
  CHECK(row.retained_bytes <= stats.pending_garbage_bytes);
  CHECK(stats.any_pinned);
  CHECK_FALSE(stats.oldest_pinned_is_reader);
  CHECK(stats.oldest_pinned_slot == row.slot);
  CHECK(stats.oldest_pin_retained_bytes == row.retained_bytes);
  // Without the option the list stays empty; the figures are the same.
  const DomainStats plain = domain->stats();
  CHECK(plain.participant_list.empty());
  CHECK(plain.writers == 1);
  CHECK(plain.oldest_pin_retained_bytes == stats.oldest_pin_retained_bytes);
}

}  // namespace
}  // namespace atomap

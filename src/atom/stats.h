// CollectStats: what Domain::stats() reports (epochs, participants, pending garbage, space),
// gathered from the file; and the pure functions that turn one slot's words into the row
// `atomap stat --readers` prints (ParticipantStats), so that they can be tested on made-up slots.
//
// Thread safety: safe from any thread while other threads and processes use the domain; the
// figures are a moment's, each read once (relaxed), and may be stale by the time they are used.
// The participant rows read reader slots only through ReaderRegistry::ReadSlots (a copy) and
// probe liveness with F_OFD_GETLK: stats never claims, pins or locks anything of a reader's.
#ifndef ATOMAP_SRC_ATOM_STATS_H_
#define ATOMAP_SRC_ATOM_STATS_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "atom/runtime.h"
#include "atomap/domain.h"
#include "file/reader_registry.h"

namespace atomap::internal {

DomainStats CollectStats(Runtime& runtime, const StatsOptions& options = {});

// Pending garbage by retire batch: which bytes a pin at epoch e holds back. A pin at e keeps G
// <= e + 1 (EpochTable E1), so a batch whose newest entry was retired at r >= e cannot be freed
// (that needs G >= r + 2) until the pin moves on. Batch-granular: a batch counts whole by its
// newest entry's epoch, so older entries that share a batch with newer ones count too.
class RetainedGarbage {
 public:
  void AddBatch(std::uint64_t epoch, std::uint64_t bytes);
  // The bytes of every batch added with epoch >= `pinned_epoch`.
  std::uint64_t HeldBackBy(std::uint64_t pinned_epoch) const;

 private:
  struct Batch {
    std::uint64_t epoch;
    std::uint64_t bytes;
  };
  std::vector<Batch> batches_;
};

// A plain copy of the header's ring of epoch start times (Header::epoch_began).
struct EpochRingImage {
  struct Entry {
    std::uint64_t epoch = 0;
    std::uint64_t began_ns = 0;  // CLOCK_MONOTONIC; 0: not recorded
  };
  std::array<Entry, 3> entries;  // entry e % 3
};

// How long a pin at `pinned_epoch` has held reclamation back, at least: since epoch
// pinned_epoch + 1 began, the pin is what keeps G from reaching pinned_epoch + 2 (garbage
// retired while it was the newest epoch waits on it). The pin existed before that advance (a
// validated pin re-reads G after announcing), so this is a lower bound on the pin's age too.
// Zero while G == pinned_epoch (the pin holds nothing back yet) or when the ring no longer, or
// not yet, records that epoch's start.
absl::Duration PinnedFor(const EpochRingImage& ring, std::uint64_t global_epoch,
                         std::uint64_t pinned_epoch, std::int64_t now_ns);

// An atom as the participant rows name it.
struct AtomFigure {
  std::string name;
  std::uint64_t version = 0;  // its current root's version_number (read under our own pin)
};

// What every participant row needs from the domain besides its own slot.
struct PinFigures {
  std::uint64_t global_epoch = 0;
  EpochRingImage ring;
  std::int64_t now_ns = 0;  // CLOCK_MONOTONIC
  RetainedGarbage retained;
  absl::flat_hash_map<std::uint32_t, AtomFigure> atoms;  // by atom number (not + 1)
};

// The row of a reader slot copy (a slot whose state is not kOwned is not a participant: the
// caller skips it). `alive`: the lock probe's answer (ReaderRegistry::Alive).
ParticipantStats ParticipantFromReaderSlot(const ReaderSlotImage& image, std::optional<bool> alive,
                                           const PinFigures& figures);
// The row of a writer slot in use. Writers record no atom or version with their pin (their pin
// is a single store on the hot path), so pinned_atom and versions_behind stay 0 for them.
ParticipantStats ParticipantFromWriterSlot(std::uint32_t slot, std::uint32_t pid,
                                           std::uint64_t announcement, std::optional<bool> alive,
                                           const PinFigures& figures);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_ATOM_STATS_H_

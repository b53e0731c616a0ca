#include "atom/stats.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "alloc/allocator.h"
#include "alloc/allocator_state.h"
#include "alloc/chain_walk.h"
#include "arena/file_locks.h"
#include "atom/atom_access.h"
#include "atom/runtime.h"
#include "common/shared_atomic.h"
#include "domain/domain_impl.h"
#include "epoch/epoch_table.h"
#include "epoch/pin_fence.h"
#include "epoch/retire_list.h"

namespace atomap::internal {

void RetainedGarbage::AddBatch(std::uint64_t epoch, std::uint64_t bytes) {
  batches_.push_back(Batch{epoch, bytes});
}

std::uint64_t RetainedGarbage::HeldBackBy(std::uint64_t pinned_epoch) const {
  std::uint64_t bytes = 0;
  for (const Batch& batch : batches_) {
    if (batch.epoch >= pinned_epoch) bytes += batch.bytes;
  }
  return bytes;
}

absl::Duration PinnedFor(const EpochRingImage& ring, std::uint64_t global_epoch,
                         std::uint64_t pinned_epoch, std::int64_t now_ns) {
  if (global_epoch <= pinned_epoch) return absl::ZeroDuration();
  const std::uint64_t held_since = pinned_epoch + 1;
  const EpochRingImage::Entry& entry = ring.entries[held_since % ring.entries.size()];
  if (entry.epoch != held_since || entry.began_ns == 0) return absl::ZeroDuration();
  const std::int64_t began = static_cast<std::int64_t>(entry.began_ns);
  // Another host's clock, or a damaged word, must not make an age negative.
  return now_ns > began ? absl::Nanoseconds(now_ns - began) : absl::ZeroDuration();
}

namespace {

// The fields a pinned announcement fills, for writers and readers alike.
void FillPin(std::uint64_t announcement, const PinFigures& figures, ParticipantStats& row) {
  row.pinned = Announcement::IsPinned(announcement);
  if (!row.pinned) return;
  row.pinned_epoch = Announcement::EpochOf(announcement);
  // A pin newer than G (a lying reader, a damaged word) lags by nothing.
  row.epoch_lag =
      figures.global_epoch > row.pinned_epoch ? figures.global_epoch - row.pinned_epoch : 0;
  row.retained_bytes = figures.retained.HeldBackBy(row.pinned_epoch);
  row.pinned_for = PinnedFor(figures.ring, figures.global_epoch, row.pinned_epoch, figures.now_ns);
}

}  // namespace

ParticipantStats ParticipantFromReaderSlot(const ReaderSlotImage& image, std::optional<bool> alive,
                                           const PinFigures& figures) {
  ParticipantStats row;
  row.kind = ParticipantStats::Kind::kReader;
  row.slot = image.index;
  row.pid = image.owner_pid;
  row.uid = image.owner_uid;
  row.alive = alive;
  FillPin(image.announcement, figures, row);
  if (!row.pinned || image.pinned_atom == 0) return row;
  // The atom number is the reader's word: only an atom that exists is named.
  const auto atom = figures.atoms.find(image.pinned_atom - 1);
  if (atom == figures.atoms.end()) return row;
  row.pinned_atom = image.pinned_atom;
  row.pinned_atom_name = atom->second.name;
  row.versions_behind =
      atom->second.version > image.pinned_version ? atom->second.version - image.pinned_version : 0;
  return row;
}

ParticipantStats ParticipantFromWriterSlot(std::uint32_t slot, std::uint32_t pid,
                                           std::uint64_t announcement, std::optional<bool> alive,
                                           const PinFigures& figures) {
  ParticipantStats row;
  row.kind = ParticipantStats::Kind::kWriter;
  row.slot = slot;
  row.pid = pid;
  row.alive = alive;
  FillPin(announcement, figures, row);
  return row;
}

namespace {

std::int64_t MonotonicNowNs() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return std::int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

// Whether any description holds a lock on `byte` (F_OFD_GETLK); nullopt when the kernel cannot
// say. The probe runs through a description of its own (/proc/self/fd reopens the file), so that
// the locks of this process's own descriptions count too.
class LockProbe {
 public:
  explicit LockProbe(int fd) : fd_(fd) {
    if (fd < 0) return;
    own_fd_ = ::open(absl::StrCat("/proc/self/fd/", fd).c_str(), O_RDONLY | O_CLOEXEC);
  }
  ~LockProbe() {
    if (own_fd_ >= 0) ::close(own_fd_);
  }
  LockProbe(const LockProbe&) = delete;
  LockProbe& operator=(const LockProbe&) = delete;

  std::optional<bool> Held(off_t byte) const {
    const int fd = own_fd_ >= 0 ? own_fd_ : fd_;
    if (fd < 0) return std::nullopt;
    return LockHeldElsewhere(fd, byte);
  }

 private:
  int fd_;
  int own_fd_ = -1;
};

// What a walk of one chain of retire batches found.
struct ChainFigures {
  std::uint64_t blocks = 0;
  std::uint64_t bytes = 0;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> batches;  // (epoch, bytes)
};

// Walks the chain of retire batches at `head()` with the bounds of every stats walk (ChainWalk,
// WalkSettled): its owner may change it meanwhile, and `stamp()` changes with every change.
template <typename HeadFn, typename StampFn>
absl::Status WalkRetireChain(const Allocator& allocator, HeadFn head, StampFn stamp,
                             std::string_view chain, ChainFigures& figures) {
  const Arena& arena = *allocator.arena();
  return WalkSettled(stamp, [&] {
    figures = ChainFigures{};
    ChainWalk walk(allocator, sizeof(RetireBatch));
    for (Offset b = head(); walk.Continues(b); b = arena.At<RetireBatch>(b)->next) {
      const RetireBatch* batch = arena.At<RetireBatch>(b);
      std::uint64_t bytes = 0;
      for (std::uint32_t i = 0; i < batch->count && i < RetireBatch::kCapacity; ++i) {
        bytes += batch->blocks[i].bytes;
      }
      figures.blocks += batch->count;
      figures.bytes += bytes;
      figures.batches.emplace_back(batch->epoch, bytes);
    }
    return walk.Status(arena.path(), chain);
  });
}

void NoteDamage(absl::Status damage, DomainStats& stats) {
  if (stats.damage.ok()) stats.damage = std::move(damage);
}

void AddRetained(const ChainFigures& chain, PinFigures& figures) {
  for (const auto& [epoch, bytes] : chain.batches) figures.retained.AddBatch(epoch, bytes);
}

// The domain's orphan chain: what dead participants retired, awaiting adoption. Others may
// push onto it or take it meanwhile; every change changes its head (chain_walk.h WalkSettled).
void AddOrphanChain(const Allocator& allocator, const SharedU64& head, DomainStats& stats,
                    PinFigures& figures) {
  auto load = [&] { return head.LoadAcquire(); };
  ChainFigures chain;
  NoteDamage(WalkRetireChain(allocator, load, load, "orphan chain", chain), stats);
  stats.pending_garbage_blocks += chain.blocks;
  stats.pending_garbage_bytes += chain.bytes;
  AddRetained(chain, figures);
}

// Every slot's retire list, for the bytes each pin holds back (the slots' own counters give the
// pending totals). A live owner changes its list while we walk it: its head moves on a new
// batch and its pending count on every retire and reclaim, so the pair is the stamp.
void AddRetireLists(const Allocator& allocator, const SlotTable& slots, DomainStats& stats,
                    PinFigures& figures) {
  for (std::uint32_t i = 0; i < slots.capacity(); ++i) {
    ReclaimArea& area = slots.Reclaim(i);
    auto head = [&] { return Shared(area.retire_head).load(kRelaxed); };
    if (head() == kNullOffset) continue;
    auto stamp = [&] { return std::make_pair(head(), area.pending_blocks.LoadRelaxed()); };
    ChainFigures chain;
    NoteDamage(
        WalkRetireChain(allocator, head, stamp, absl::StrCat("slot ", i, ": retire list"), chain),
        stats);
    AddRetained(chain, figures);
  }
}

EpochRingImage ReadEpochRing(const Header& header) {
  EpochRingImage ring;
  for (std::size_t i = 0; i < ring.entries.size(); ++i) {
    ring.entries[i].epoch = header.epoch_began[i].epoch.LoadRelaxed();
    ring.entries[i].began_ns = header.epoch_began[i].began_ns.LoadRelaxed();
  }
  return ring;
}

// The atoms that pinned readers name, with their current version (loaded under this handle's
// own pin, as Atom::load reads every root). Only atoms that exist are looked up.
void AddPinnedAtoms(Runtime& runtime, const std::vector<ReaderSlotImage>& images,
                    PinFigures& figures) {
  absl::flat_hash_map<std::uint32_t, bool> wanted;
  for (const ReaderSlotImage& image : images) {
    if (Announcement::IsPinned(image.announcement) && image.pinned_atom != 0) {
      wanted[image.pinned_atom - 1] = true;
    }
  }
  if (wanted.empty()) return;
  runtime.domain().atoms().ForEach([&](std::uint32_t atom, std::string_view name) {
    if (!wanted.contains(atom) || figures.atoms.contains(atom)) return;
    absl::StatusOr<Snapshot> snapshot = AtomAccess::Make(&runtime, atom).load();
    if (!snapshot.ok()) return;
    figures.atoms[atom] = AtomFigure{std::string(name), snapshot->version()};
  });
}

// Who holds the epoch back the longest: the oldest pin, writers first among equals.
void NoteOldestPin(const PinFigures& figures, DomainStats& stats) {
  const ParticipantStats* oldest = nullptr;
  for (const ParticipantStats& row : stats.participant_list) {
    if (row.pinned && (oldest == nullptr || row.pinned_epoch < oldest->pinned_epoch)) {
      oldest = &row;
    }
  }
  if (oldest == nullptr) return;
  stats.any_pinned = true;
  stats.oldest_pinned_epoch = oldest->pinned_epoch;
  stats.oldest_pinned_slot = oldest->slot;
  stats.oldest_pinned_pid = oldest->pid;
  stats.oldest_pinned_is_reader = oldest->kind == ParticipantStats::Kind::kReader;
  stats.oldest_pin_age = oldest->pinned_for;
  stats.oldest_pin_retained_bytes = figures.retained.HeldBackBy(oldest->pinned_epoch);
}

// The owned reader slots, copied from the registry (none without one).
std::vector<ReaderSlotImage> OwnedReaderSlots(const ReaderRegistry* registry) {
  if (registry == nullptr) return {};
  std::vector<ReaderSlotImage> images = registry->ReadSlots();
  std::erase_if(images, [](const ReaderSlotImage& image) {
    return image.state != static_cast<std::uint32_t>(ReaderSlotState::kOwned);
  });
  return images;
}

bool AnyPinned(const SlotTable& slots, const std::vector<SlotTable::InUseSlot>& writers,
               const std::vector<ReaderSlotImage>& readers) {
  for (const SlotTable::InUseSlot& slot : writers) {
    if (Announcement::IsPinned(slots.Head(slot.index).pinned_epoch.LoadRelaxed())) return true;
  }
  for (const ReaderSlotImage& image : readers) {
    if (Announcement::IsPinned(image.announcement)) return true;
  }
  return false;
}

void AddWriters(DomainImpl& domain, const std::vector<SlotTable::InUseSlot>& writers,
                const PinFigures& figures, DomainStats& stats) {
  const SlotTable& slots = domain.slots();
  const LockProbe probe(domain.lock_fd());  // -1 (a reader without PATH.lock): alive unknown
  const bool in_process = domain.kind() == DomainKind::kInProcess;  // nobody else can die
  for (const SlotTable::InUseSlot& slot : writers) {
    const std::optional<bool> alive =
        in_process ? std::optional<bool>(true) : probe.Held(SlotLockByte(slot.index));
    stats.participant_list.push_back(ParticipantFromWriterSlot(
        slot.index, slot.pid, slots.Head(slot.index).pinned_epoch.LoadAcquire(), alive, figures));
    if (alive == false) ++stats.dead_participants;
  }
  stats.writers = static_cast<std::uint32_t>(writers.size());
  stats.participants = stats.writers;
}

void AddReaders(const ReaderRegistry* registry, const std::vector<ReaderSlotImage>& readers,
                const PinFigures& figures, DomainStats& stats) {
  if (registry == nullptr) return;
  stats.reader_capacity = registry->capacity();
  stats.registry_path = registry->path();
  for (const ReaderSlotImage& image : readers) {
    const std::optional<bool> alive = registry->Alive(image.index);
    stats.participant_list.push_back(ParticipantFromReaderSlot(image, alive, figures));
    if (alive == false) ++stats.dead_participants, ++stats.dead_readers;
  }
  stats.readers = static_cast<std::uint32_t>(readers.size());
}

}  // namespace

DomainStats CollectStats(Runtime& runtime, const StatsOptions& options) {
  DomainImpl& domain = runtime.domain();
  SlotTable& slots = domain.slots();
  (void)domain.arena().Refresh();
  DomainStats stats;
  PinFigures figures;
  figures.global_epoch = stats.global_epoch = runtime.epochs().CurrentEpoch();
  stats.epoch_advances = stats.global_epoch;
  const PinFenceMode fence_mode = runtime.epochs().fence_mode();
  stats.light_pins = fence_mode == PinFenceMode::kLight;
  stats.this_process_pins_light = PinsAreLight();
  stats.this_process_advances_epoch = MayAdvance(fence_mode);
  figures.ring = ReadEpochRing(domain.header());
  figures.now_ns = MonotonicNowNs();

  std::vector<const ParticipantCache*> caches;
  for (std::uint32_t i = 0; i < slots.capacity(); ++i) {
    caches.push_back(&slots.AllocCache(i));
    ReclaimArea& area = slots.Reclaim(i);
    stats.pending_garbage_blocks += area.pending_blocks.LoadRelaxed();
    stats.pending_garbage_bytes += area.pending_bytes.LoadRelaxed();
  }
  AddOrphanChain(runtime.allocator(), domain.header().orphan_retired, stats, figures);

  const std::vector<SlotTable::InUseSlot> writers = slots.InUse();
  const ReaderRegistry* registry = domain.readers();
  const std::vector<ReaderSlotImage> readers = OwnedReaderSlots(registry);
  // Only a pin retains anything: without one, no retire list is walked (their owners are
  // writing them; the pending totals come from the slots' counters either way).
  if (AnyPinned(slots, writers, readers)) {
    AddRetireLists(runtime.allocator(), slots, stats, figures);
    AddPinnedAtoms(runtime, readers, figures);
  }
  AddWriters(domain, writers, figures, stats);
  AddReaders(registry, readers, figures, stats);
  NoteOldestPin(figures, stats);
  if (!options.participants) stats.participant_list.clear();

  const AllocatorStats space = runtime.allocator().Stats(caches);
  NoteDamage(space.damage, stats);
  stats.data_bytes = space.total_bytes;
  stats.live_bytes = space.live_bytes;
  stats.free_bytes = space.free_bytes;
  stats.unused_bytes = space.unused_bytes;
  return stats;
}

}  // namespace atomap::internal

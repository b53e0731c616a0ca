// CheckDomain: the audit behind Domain::check(), and the mark-and-sweep repair.
//
// Invariants
//  (C1) Nothing is written unless options.repair, and repair writes only while this handle holds
//       the attach lock (on PATH.lock) exclusively (no other writer's handle anywhere: an opener waits for the shared
//       lock until it is converted back), so no participant of another process can allocate,
//       free, retire or pin meanwhile. Threads of this process must not use the domain during
//       check() (REQUIRES below).
//  (C2) Repair frees only bytes that no root reaches, no live participant holds (its cache or
//       retire list) and no list the sweep could not walk covers. If any atom's version is
//       damaged, nothing is freed at all: a gap might then be data of that version.
//  (C3) When alone, every other writer is dead, so its pending garbage (moved to the orphan
//       chain by the takeover) can be freed once no reader can reach it either: "alone" is among
//       writers (the attach lock); registered readers are not attached. So before freeing
//       anything, repair clears dead readers' slots and requires that no reader slot holds a
//       possible pin (RR3), polling within the wait (NoReaderPinned); a reader that pins after
//       that scan reads the current roots, which repair never frees.
//  (C4) Crash during repair: each step leaks rather than duplicates (see RebuildSharedLists and
//       RecoverDeadSlot); the next sweep finds what was left.
//  (C5) A problem is reported only from what cannot change under the checker: the whole domain
//       while this handle is alone (the exclusive attach lock) or the caller vouches that the
//       others are idle; otherwise only each atom's version, walked under a pin of this thread
//       (EpochTable: nothing retired after the pin is freed while it lasts), and the free
//       lists, retire lists and the bump pointer (which writers change all the time) are not
//       looked at. A read-only handle cannot take the lock (it is on PATH.lock, which readers
//       may open read-only at most): it audits in full only while no slot has a live owner in
//       another process, before and after (SlotCensus). With live writers, or when it cannot
//       open PATH.lock at all (it cannot see writers), a registered reader (one with a reader
//       slot) pins and checks each version as above, and an unregistered one refuses (this
//       process's own handles are the caller's: REQUIRES).
//
// Memory ordering: none of its own beyond the lock; list heads are read with 8-byte loads, the
// orphan chain is taken with TakeOrphanBatches (its edge (2)). A live check reads roots through
// Atom::load (atom.cc (1)), and slot heads with relaxed loads (the lock is the truth, S2).
#include "recovery/checker.h"

#include <fcntl.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "alloc/allocator.h"
#include "arena/file_locks.h"
#include "common/crash_point.h"
#include "domain/domain_impl.h"
#include "domain/slot_recovery.h"
#include "epoch/pin_fence.h"
#include "hamt/access.h"
#include "recovery/holders_walk.h"
#include "recovery/trie_check.h"

namespace atomap::internal {
namespace {

bool IsOwned(const SlotTable& slots, std::uint32_t slot) {
  return slots.Head(slot).state.LoadAcquire() == static_cast<std::uint32_t>(SlotState::kOwned);
}

AllocatorState& StateOf(DomainImpl& domain) { return *domain.allocator_state(); }

std::string AtomLabel(std::uint32_t atom, std::string_view name) {
  return absl::StrFormat("atom %d '%s'", atom,
                         absl::CHexEscape(absl::string_view(name.data(), name.size())));
}

struct Audit {
  SpaceMap space;
  SpaceTotals totals;
  std::vector<std::string> problems;
  bool versions_damaged = false;
  std::uint32_t atoms = 0;
};

// Reads the whole domain into an Audit. `include_free_slots`: count what free slots' areas
// still hold (plain check); repair clears those areas instead.
Audit RunAudit(DomainImpl& domain, bool include_free_slots) {
  Audit audit;
  const AllocatorState& state = StateOf(domain);
  const Offset data_begin = domain.data_begin();
  Offset bump = state.bump.LoadAcquire();
  const Offset mapped = domain.arena().mapped_size();
  if (bump < data_begin || bump > mapped) {
    audit.problems.push_back(
        absl::StrFormat("allocator field 'bump' is %d, outside [data_begin %d, mapped size %d]",
                        bump, data_begin, mapped));
    bump = std::clamp<Offset>(bump, data_begin, mapped);
  }
  if (bump % kBlockAlign != 0) {
    // Blocks are kBlockAlign-aligned: a gap ending at a misaligned bump cannot be carved into
    // blocks (the sweep would find no class for its last bytes).
    audit.problems.push_back(
        absl::StrFormat("allocator field 'bump' is %d, not a multiple of %d", bump, kBlockAlign));
    bump -= bump % kBlockAlign;
  }
  // Versions are walked against the whole mapping, not just [data_begin, bump): after a power
  // loss the allocator's words may be older than the versions (Account reports blocks past bump).
  CheckContext versions{domain.arena(),  data_begin,  mapped,
                        domain.hasher(), audit.space, audit.problems};
  domain.atoms().ForEach([&](std::uint32_t atom, std::string_view name) {
    const std::size_t before = audit.problems.size();
    const Offset root = domain.atoms().Root(atom).LoadAcquire();
    CheckVersion(versions, root, AtomLabel(atom, name));
    if (audit.problems.size() != before) audit.versions_damaged = true;
    ++audit.atoms;
  });
  CheckContext ctx{domain.arena(), data_begin, bump, domain.hasher(), audit.space, audit.problems};
  WalkSharedFreeLists(ctx, state);
  SlotTable& slots = domain.slots();
  for (std::uint32_t slot = 0; slot < slots.capacity(); ++slot) {
    const bool owned = IsOwned(slots, slot);
    if (!owned && !include_free_slots) continue;
    WalkCache(ctx, slots.AllocCache(slot), slot);
    WalkReclaimArea(ctx, slots.Reclaim(slot), slot);
  }
  WalkOrphanChain(ctx, domain.header().orphan_retired.LoadAcquire());
  audit.totals = audit.space.Account(data_begin, bump, audit.problems);
  return audit;
}

CheckReport ReportOf(const Audit& audit, bool alone) {
  CheckReport report;
  report.problems = audit.problems;
  report.atoms_checked = audit.atoms;
  report.reachable_bytes = audit.totals.by_holder[static_cast<int>(Holder::kReachable)];
  report.free_bytes = audit.totals.by_holder[static_cast<int>(Holder::kSharedFree)] +
                      audit.totals.by_holder[static_cast<int>(Holder::kCachedFree)];
  report.pending_bytes = audit.totals.by_holder[static_cast<int>(Holder::kPending)];
  report.unused_bytes = audit.totals.by_holder[static_cast<int>(Holder::kUnused)];
  report.in_flight_bytes = audit.totals.by_holder[static_cast<int>(Holder::kInFlight)];
  report.leaked_bytes = audit.totals.leaked;
  // With others attached, a gap may be a swap in flight: a figure, not a problem.
  if (alone && audit.totals.leaked > 0) {
    report.problems.push_back(absl::StrFormat(
        "%d bytes in %d extents of the data region are leaked (first at offset %d): allocated, "
        "reachable from no root and held by no list; check with repair frees them",
        audit.totals.leaked, audit.totals.leaked_gaps.size(), audit.totals.leaked_gaps[0].offset));
  }
  return report;
}

// Calls `attempt` until it yields true or an error, or `wait` has passed; backs off from 1 ms
// to 100 ms between attempts. Returns the last result.
template <typename Attempt>
absl::StatusOr<bool> RetryWithin(absl::Duration wait, Attempt attempt) {
  const absl::Time deadline = absl::Now() + wait;
  absl::Duration pause = absl::Milliseconds(1);
  for (;;) {
    absl::StatusOr<bool> done = attempt();
    const absl::Duration left = deadline - absl::Now();
    if (!done.ok() || *done || left <= absl::ZeroDuration()) return done;
    absl::SleepFor(std::min(pause, left));
    pause = std::min(pause * 2, absl::Milliseconds(100));
  }
}

// Holds the attach lock exclusively while it lives, or reports that others are attached.
class ExclusiveAttach {
 public:
  // On PATH.lock (no lock is on PATH); in-process domains have none.
  explicit ExclusiveAttach(DomainImpl& domain) : fd_(domain.lock_fd()) {}
  // True if this handle is now alone among writers (in-process domains always are).
  absl::StatusOr<bool> Acquire() {
    if (fd_ < 0) return true;
    absl::StatusOr<bool> alone = TryLockByte(fd_, kAttachedLockByte, LockMode::kExclusive);
    held_ = alone.ok() && *alone;
    return alone;
  }
  // Acquire, retried until `wait` has passed (polling: a blocking conversion of two waiting
  // checkers' shared locks would deadlock, and OFD locks have no deadlock detection).
  absl::StatusOr<bool> AcquireWithin(absl::Duration wait) {
    return RetryWithin(wait, [this] { return Acquire(); });
  }
  ~ExclusiveAttach() {
    // Converts back in place: turning one's own exclusive lock shared never conflicts.
    if (held_) (void)TryLockByte(fd_, kAttachedLockByte, LockMode::kShared);
  }

 private:
  int fd_;
  bool held_ = false;
};

// Takes over every slot whose owner is dead (RecoverDeadSlot runs through the takeover hook),
// probing with a description of our own so that this process's own slots read as live.
void TakeOverDeadSlots(DomainImpl& domain) {
  if (domain.lock_fd() < 0) return;
  const std::string self = absl::StrFormat("/proc/self/fd/%d", domain.lock_fd());
  const int probe = open(self.c_str(), O_RDWR | O_CLOEXEC);
  if (probe < 0) return;
  for (const SlotTable::InUseSlot& slot : domain.slots().InUse()) {
    (void)domain.slots().TakeOverIfDead(slot.index, probe);
  }
  close(probe);
}

// Free slots' areas are stale (a claim zeroes them): what they list is returned by the rebuild.
void ClearFreeSlots(DomainImpl& domain) {
  SlotTable& slots = domain.slots();
  for (std::uint32_t slot = 0; slot < slots.capacity(); ++slot) {
    if (IsOwned(slots, slot)) continue;
    Allocator::FormatCache(&slots.AllocCache(slot));
    slots.Reclaim(slot) = ReclaimArea{};
  }
}

// The sweep: everything not kept becomes the new shared free lists (C2).
void Sweep(DomainImpl& domain, const Audit& audit) {
  std::vector<std::uint64_t> kept(size_classes::kNumClasses, 0);
  std::vector<Block> free_extents;
  for (const Extent& e : audit.space.extents()) {
    if (e.holder == Holder::kSharedFree) {
      free_extents.push_back(Block{e.offset, e.bytes});
    } else if (e.holder != Holder::kUnused) {
      ++kept[e.size_class];
    }
  }
  for (const Extent& gap : audit.totals.leaked_gaps)
    free_extents.push_back(Block{gap.offset, gap.bytes});
  // Only whole aligned blocks can go back on the lists: anything else stays leaked (the audit
  // reports what made it; RebuildSharedLists has no class for a tail under kBlockAlign bytes).
  std::erase_if(free_extents, [](const Block& b) {
    return b.offset % kBlockAlign != 0 || b.bytes % kBlockAlign != 0 || b.bytes == 0;
  });
  SlotTable& slots = domain.slots();
  for (std::uint32_t slot = 0; slot < slots.capacity(); ++slot) {
    if (!IsOwned(slots, slot)) continue;
    const ParticipantCache* cache = &slots.AllocCache(slot);
    for (std::uint32_t c = 0; c < size_classes::kCachedClasses; ++c) {
      kept[c] -= std::min<std::uint64_t>(kept[c], cache->classes[c].carved);
    }
  }
  // Not coalesced: a free block keeps its class (see RebuildSharedLists).
  ATOMAP_CRASH_POINT(kSweepBeforeRebuild);
  domain.allocator().RebuildSharedLists(free_extents, kept);
  ATOMAP_CRASH_POINT(kSweepAfterRebuild);
}

// Everything but the versions is derived data: forget it all, so that only what a root reaches
// stays allocated. For lists too damaged to trust (or older than the versions: a power loss).
// REQUIRES: alone (C1), and no thread of this process pinned or between allocation and publish.
void ForgetAllButVersions(DomainImpl& domain, const Audit& audit) {
  SlotTable& slots = domain.slots();
  for (std::uint32_t slot = 0; slot < slots.capacity(); ++slot) {
    Allocator::FormatCache(&slots.AllocCache(slot));
    slots.Reclaim(slot) = ReclaimArea{};
  }
  (void)TakeOrphanBatches(domain);
  const std::vector<std::uint64_t> none(size_classes::kNumClasses, 0);
  domain.allocator().RebuildSharedLists({}, none);  // empties the lists
  Offset reachable_end = domain.data_begin();
  for (const Extent& e : audit.space.extents()) {
    if (e.holder == Holder::kReachable) reachable_end = std::max(reachable_end, e.offset + e.bytes);
  }
  SharedU64& bump = StateOf(domain).bump;
  const Offset old_bump = bump.LoadRelaxed();
  Offset new_bump = std::max(old_bump, reachable_end);
  // A misaligned bump (damage) goes up to the next block boundary: still inside the domain,
  // whose size is a page multiple, unless the bump was already past it (reported, left alone).
  if (new_bump % kBlockAlign != 0 && new_bump <= domain.arena().mapped_size()) {
    new_bump += kBlockAlign - new_bump % kBlockAlign;
  }
  if (new_bump != old_bump) bump.StoreRelease(new_bump);
}

// Who may be writing: each slot's state and owner token, and whether a description other than
// this handle's holds its lock on PATH.lock (F_OFD_GETLK, which needs no write access and takes
// nothing). A reader that may not open PATH.lock has no census (sees_writers false).
// Two equal censuses with no live owner mean no participant wrote in between: a writer holds
// its slot's lock while it writes (S2), and a claim raises the token (S3).
struct SlotCensus {
  std::vector<std::pair<std::uint32_t, std::uint64_t>> heads;  // (state, owner_token) per slot
  std::uint32_t others_live = 0;  // slots whose lock another process holds (or is claiming)
  bool sees_writers = true;  // false: no PATH.lock to probe (a reader without access)

  static SlotCensus Take(const DomainImpl& domain) {
    SlotCensus census;
    const SlotTable& slots = domain.slots();
    const int fd = domain.lock_fd();
    census.sees_writers = fd >= 0 || !domain.arena().file_backed();
    for (std::uint32_t slot = 0; slot < slots.capacity(); ++slot) {
      SlotHead& head = slots.Head(slot);
      const std::uint32_t state = head.state.LoadAcquire();
      census.heads.emplace_back(state, head.owner_token.LoadRelaxed());
      if (fd < 0 || !LockHeldElsewhere(fd, SlotLockByte(slot))) continue;
      // A free slot whose lock is held is being claimed: its owner_pid is not written yet.
      if (state != static_cast<std::uint32_t>(SlotState::kOwned) ||
          head.owner_pid.LoadRelaxed() != static_cast<std::uint32_t>(getpid())) {
        ++census.others_live;
      }
    }
    return census;
  }
  bool operator==(const SlotCensus& other) const { return heads == other.heads; }

 private:
  // True (also when the kernel cannot say) if another description holds a lock on `byte`.
  static bool LockHeldElsewhere(int fd, off_t byte) {
    return internal::LockHeldElsewhere(fd, byte).value_or(true);
  }
};

LiveCheckHook& TheLiveCheckHook() {
  static LiveCheckHook* hook = new LiveCheckHook();
  return *hook;
}

// C5: with others attached, each atom's version walked under a pin; no space accounting.
absl::StatusOr<CheckReport> CheckPinnedVersions(DomainImpl& domain, PinVersion pin) {
  CheckReport report;
  report.space_checked = false;
  absl::Status failed;
  domain.atoms().ForEach([&](std::uint32_t atom, std::string_view name) {
    if (!failed.ok()) return;
    absl::StatusOr<Snapshot> pinned = pin(atom);  // refreshes the mapping after its root load
    if (absl::IsDataLoss(pinned.status())) {
      // A root word that names no plausible version (verify_reads): damage found, so it is a
      // problem in the report, like every other damage, not a failure of the check.
      report.problems.push_back(
          absl::StrCat(AtomLabel(atom, name), ": ", pinned.status().message()));
      ++report.atoms_checked;
      return;
    }
    if (!pinned.ok()) {
      failed = pinned.status();
      return;
    }
    if (TheLiveCheckHook()) TheLiveCheckHook()(atom);
    SpaceMap blocks;  // not accounted: the rest of the region is changing
    CheckContext ctx{
        domain.arena(), domain.data_begin(), domain.arena().mapped_size(), domain.hasher(),
        blocks,         report.problems};
    CheckVersion(ctx, MapAccess::Version(pinned->map()), AtomLabel(atom, name));
    ++report.atoms_checked;
  });
  if (!failed.ok()) return failed;
  report.others_attached = SlotCensus::Take(domain).others_live;
  report.skipped = absl::StrFormat(
      "space accounting skipped: the domain is open elsewhere (%d participant slots in use by "
      "other processes); each atom's current version was checked under a pin. Run check when "
      "the domain is idle, or wait for it (atomap check --wait)",
      report.others_attached);
  return report;
}

// C5 for a read-only handle: a full audit while nobody can write; else the pinned check for a
// registered reader, a refusal for an unregistered one.
absl::StatusOr<CheckReport> CheckReadOnly(DomainImpl& domain, const CheckOptions& options,
                                          PinVersion pin) {
  if (options.others_idle) return ReportOf(RunAudit(domain, true), /*alone=*/false);
  const bool can_pin = domain.readers() != nullptr;
  if (!SlotCensus::Take(domain).sees_writers) {
    // An unregistered reader (Options::unregistered_reads): nobody writes, a full audit.
    if (!can_pin) return ReportOf(RunAudit(domain, true), /*alone=*/false);
    absl::StatusOr<CheckReport> report = CheckPinnedVersions(domain, pin);
    if (report.ok()) {
      report->skipped = absl::StrFormat(
          "space accounting skipped: this reader cannot see writers (it may not open %s.lock); "
          "each atom's current version was checked under a pin",
          domain.path());
    }
    return report;
  }
  SlotCensus before;
  (void)RetryWithin(options.wait_for_exclusive, [&]() -> absl::StatusOr<bool> {
    before = SlotCensus::Take(domain);
    return before.others_live == 0;  // this process's own handles: the REQUIRES of CheckDomain
  });
  const auto refuse = [&](const char* why) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: a read-only check cannot verify a domain that is being written (%s): it can "
        "neither pin what it reads nor keep writers out. Check without --read-only, or when the "
        "writers are gone",
        domain.path(), why));
  };
  if (before.others_live != 0 && can_pin) return CheckPinnedVersions(domain, pin);
  if (before.others_live != 0) {
    return refuse(absl::StrFormat("%d participant slots have live owners in other processes",
                                  before.others_live)
                      .c_str());
  }
  Audit audit = RunAudit(domain, /*include_free_slots=*/true);
  if (!(SlotCensus::Take(domain) == before)) {
    if (can_pin) return CheckPinnedVersions(domain, pin);
    return refuse("a writer attached during the check");
  }
  return ReportOf(audit, /*alone=*/false);
}

// A reader slot that may still read what repair would free: owned, and pinned at an epoch an
// honest validated reader can hold (RR3: e >= G - 1). FailedPrecondition when this process
// cannot issue the heavy fence that makes light pins visible (epoch/pin_fence.h PF2).
absl::StatusOr<std::optional<ReaderSlotImage>> PinnedReader(DomainImpl& domain) {
  const ReaderRegistry* readers = domain.readers();
  if (readers == nullptr) return std::nullopt;
  // As TryAdvance's (3) / (3H): a pin whose fence precedes ours is in the copy.
  if (!ScanFence(domain.epochs().fence_mode())) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: repair cannot tell which readers are pinned: pins in this domain may be light, and "
        "seeing them needs membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), which failed in this "
        "process (an old kernel, or a seccomp profile that refuses it)",
        domain.path()));
  }
  const std::uint64_t global = domain.epochs().CurrentEpoch();
  for (const ReaderSlotImage& slot : readers->ReadSlots()) {
    if (slot.state != static_cast<std::uint32_t>(ReaderSlotState::kOwned) ||
        !Announcement::IsPinned(slot.announcement) ||
        Announcement::EpochOf(slot.announcement) + 1 < global) {
      continue;
    }
    if (readers->ClearIfDead(slot.index)) continue;  // its owner died: its pin goes with it
    return slot;
  }
  return std::nullopt;
}

// C3: OK once no reader slot is pinned (dead readers' slots cleared), polling within `wait`;
// FailedPrecondition naming a pinned reader slot and its pid otherwise.
absl::Status NoReaderPinned(DomainImpl& domain, absl::Duration wait) {
  std::optional<ReaderSlotImage> pinned;
  const absl::StatusOr<bool> none = RetryWithin(wait, [&]() -> absl::StatusOr<bool> {
    absl::StatusOr<std::optional<ReaderSlotImage>> found = PinnedReader(domain);
    if (!found.ok()) return found.status();
    pinned = *found;
    return !pinned.has_value();
  });
  if (!none.ok()) return none.status();
  if (!pinned) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrFormat(
      "%s: repair would free blocks that reader slot %d (pid %d) may still be reading: it is "
      "pinned at epoch %d. Wait for the reader to move on (atomap check --wait), or stop it",
      domain.path(), pinned->index, pinned->owner_pid,
      Announcement::EpochOf(pinned->announcement)));
}

absl::StatusOr<CheckReport> Repair(DomainImpl& domain, absl::Duration wait) {
  ExclusiveAttach exclusive(domain);
  absl::StatusOr<bool> alone = exclusive.AcquireWithin(wait);
  if (!alone.ok()) return alone.status();
  if (!*alone) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: repair needs the domain to itself; other handles are attached (%d participant "
        "slots in use by other processes): stop them, or wait for them (atomap check --wait)",
        domain.path(), SlotCensus::Take(domain).others_live));
  }
  if (absl::Status s = NoReaderPinned(domain, wait); !s.ok()) return s;  // C3
  TakeOverDeadSlots(domain);
  // C3: alone, so nobody can hold anything the orphans list: they become gaps, hence free.
  (void)TakeOrphanBatches(domain);
  ClearFreeSlots(domain);
  Audit before = RunAudit(domain, /*include_free_slots=*/false);
  // C2: only when every version walked cleanly. Damaged lists are rebuilt from the versions.
  if (!before.versions_damaged && !before.problems.empty()) {
    ForgetAllButVersions(domain, before);
    before = RunAudit(domain, /*include_free_slots=*/false);
  }
  if (!before.versions_damaged && before.problems.empty()) {
    Sweep(domain, before);
    domain.header().deaths_since_sweep.StoreRelaxed(0);
  }
  Audit after = RunAudit(domain, /*include_free_slots=*/false);
  return ReportOf(after, /*alone=*/true);
}

}  // namespace

void SetLiveCheckHook(LiveCheckHook hook) { TheLiveCheckHook() = std::move(hook); }

absl::StatusOr<CheckReport> CheckDomain(DomainImpl& domain, const CheckOptions& options,
                                        PinVersion pin) {
  if (options.repair && domain.read_only())
    return absl::FailedPreconditionError(domain.path() + ": repair needs a writable domain");
  // The lists may reach space another process grew since this one last mapped.
  (void)domain.arena().Refresh();
  if (options.repair) return Repair(domain, options.wait_for_exclusive);
  if (domain.read_only()) return CheckReadOnly(domain, options, pin);
  ExclusiveAttach exclusive(domain);  // held for the audit: nobody attaches meanwhile
  absl::StatusOr<bool> got = exclusive.AcquireWithin(options.wait_for_exclusive);
  const bool alone = got.ok() && *got;  // a lock error: assume others are there
  if (alone || options.others_idle) {
    return ReportOf(RunAudit(domain, /*include_free_slots=*/true), alone);
  }
  return CheckPinnedVersions(domain, pin);  // C5
}

}  // namespace atomap::internal

namespace atomap::internal {

void SweepIfAloneAfterCrash(DomainImpl& domain) {
  if (domain.read_only() || domain.created() || !domain.found_alone() || domain.was_clean()) return;
  (void)domain.arena().Refresh();
  // Another process may have attached since Open found us alone, or a reader be pinned (C3):
  // then Repair refuses at once, the domain stays dirty, and the sweep waits for the next
  // process that finds itself alone.
  (void)Repair(domain, absl::ZeroDuration());
}

}  // namespace atomap::internal

#include "atom/participant.h"

#include "absl/strings/str_format.h"
#include "common/space_status.h"

#include <cassert>
#include <optional>
#include <utility>
#include <vector>

#include "alloc/allocator_state.h"
#include "atom/reader_participant.h"
#include "atom/runtime.h"
#include "domain/slot_recovery.h"
#include "intent/intent_record.h"
#include "intent/owned_lane.h"

namespace atomap::internal {
namespace {

ParticipantCache* CacheOf(Runtime& runtime, std::uint32_t slot) {
  return &runtime.domain().slots().AllocCache(slot);
}

ReclaimArea* AreaOf(Runtime& runtime, std::uint32_t slot) {
  return &runtime.domain().slots().Reclaim(slot);
}

}  // namespace

Participant::Participant(Runtime& runtime, SlotLease lease)
    : runtime_(runtime),
      lease_(std::move(lease)),
      context_{.arena = &runtime.domain().arena(),
               .allocator = &runtime.allocator(),
               .cache = CacheOf(runtime, lease_.index()),
               .hasher = runtime.domain().hasher(),
               .data_begin = runtime.domain().data_begin(),
               .verify_reads = runtime.domain().verify_reads()},
      retire_(AreaOf(runtime, lease_.index()), &runtime.allocator(), context_.cache),
      pin_site_(runtime, lease_.index()) {
  Allocator::FormatCache(context_.cache);
}

// Pins for a transaction's life and lends it lane `index` (if any): the lane's chain is read again
// at each lease, since a repair may have forgotten it between two transactions.
class Participant::LaneLease : public hamt::TransactionHold {
 public:
  // Its pin joins the oldest generation (pin_site.h PS3): it loads no root of its own, it keeps
  // the base of a transaction (a snapshot's version) alive after that snapshot is dropped.
  LaneLease(Participant& owner, std::optional<std::uint32_t> index)
      : owner_(owner), pin_(owner, PinGuard::kOldestGeneration) {
    if (!index) return;
    owner_.lanes_leased_ |= 1u << *index;
    lane_.emplace(&owner_.area().lanes[*index], *index, &owner_.runtime_.allocator(),
                  owner_.context_.cache);
  }
  bool inert() const override { return owner_.runtime_.inherited(); }
  hamt::BlockLedger* ledger() override { return lane_ ? &*lane_ : nullptr; }
  // pin_ is released after the body: the lane is given back while still pinned.
  ~LaneLease() override {
    // In a child of fork() the lane is the parent's; pin_'s release there writes no epoch word.
    if (inert()) return;
    if (lane_) {
      assert(lane_->size() == 0);  // (P4)
      lane_->Shrink();
      owner_.lanes_leased_ &= ~(1u << lane_->index());
    }
  }

 private:
  Participant& owner_;
  PinGuard pin_;
  std::optional<OwnedLane> lane_;
};

Participant::~Participant() {
  if (abandoned_) return;
  Reclaim();
  for (std::uint32_t i = 0; i < kLanesPerSlot; ++i) {
    OwnedLane(&area().lanes[i], i, &runtime_.allocator(), context_.cache).Release();
  }
  // What is not yet safe to free outlives this participant on the domain's orphan chain.
  PushOrphanBatches(runtime_.domain(), retire_.DetachChain());
  retire_.FreeSpares();
  runtime_.allocator().Flush(context_.cache);
  // lease_ releases the slot as it is destroyed.
}

PinSite::PinSite(Runtime& runtime, std::uint32_t slot)
    : runtime_(runtime),
      epochs_(runtime.epochs()),
      fork_generation_(ForkGeneration()),
      slot_(slot) {}
PinSite::PinSite(Runtime& runtime, ReaderSlot* reader_slot)
    : runtime_(runtime),
      epochs_(runtime.epochs()),
      fork_generation_(ForkGeneration()),
      reader_slot_(reader_slot) {}

std::uint64_t PinSite::PinNested() {
  // Nested (PS1): no announcement of its own; its generation is the G it sees (PS3). A seq_cst
  // load, before the guard's seq_cst root load (atom.cc (1)): the proof in pin_site.h.
  const std::uint64_t seen = epochs_.EpochBeforeRootLoad();
  if (seen <= announced_) {
    ++guards_[0];
    return announced_;
  }
  if (guards_[1]++ == 0) later_ = seen;  // later guards see later_ or later_ + 1 (E1)
  return later_;
}

std::uint64_t PinSite::PinOldest() {
  if (guards_[0] + guards_[1] == 0) return Pin();
  ++guards_[0];  // the announcement stays at least as old as every snapshot this thread holds
  return announced_;
}

void PinSite::UnpinNested(std::uint64_t generation) {
  // Not the last guard (Unpin takes that one), or none at all (a bug: let the count say so).
  --guards_[generation == announced_ ? 0 : 1];
  if (inherited()) return;  // PS2
  if (guards_[0] + guards_[1] == 0 || guards_[0] != 0) return;
  // The announced generation is gone, later guards live: slide up to theirs (PS3). A release
  // store, as an unpin: the reads of the guards gone happen-before a scan that sees it (2)/(RR2).
  announced_ = later_;
  guards_[0] = std::exchange(guards_[1], 0);
  Announce(Announcement::Pinned(announced_));
}

void PinSite::Announce(std::uint64_t word) {
  SharedU64& announcement = reader_slot_ == nullptr
                                ? runtime_.domain().slots().Head(slot_).pinned_epoch
                                : reader_slot_->announcement;
  announcement.StoreRelease(word);  // (PS3), partner (4) / (RR4)
}

PinGuard::PinGuard(Participant& participant) : site_(&participant.pin_site_) {
  generation_ = site_->Pin();
}
PinGuard::PinGuard(Participant& participant, OldestGeneration) : site_(&participant.pin_site_) {
  generation_ = site_->PinOldest();
}
PinGuard::PinGuard(ReaderParticipant& reader) : site_(&reader.pin_site()) {
  generation_ = site_->Pin();
}

void PinGuard::Release() { std::exchange(site_, nullptr)->Unpin(generation_); }

void Participant::Abandon() {
  abandoned_ = true;
  lease_.Abandon();
}

void Participant::RetireAfterPublish(absl::Span<const Block> blocks) {
  const EpochTable& epochs = runtime_.epochs();
  retire_.Retire(epochs.EpochAfterUnlink(), blocks);
  retired_since_scan_ += blocks.size();
  std::uint64_t budget = FreeBudget(blocks.size(), retire_.pending_blocks());
  if (++retires_since_reclaim_ >= kRetiresPerReclaim) {
    if (retire_.pending_blocks() > kBacklogPeriods * retired_since_scan_) {
      budget = RetireList::kUnbounded;  // a long pin's leftovers (kBacklogPeriods)
    }
    retired_since_scan_ = 0;
    AdvanceEpoch();
  }
  (void)retire_.Reclaim(epochs, budget);
}

ReclaimArea& Participant::area() const { return *AreaOf(runtime_, slot()); }

std::unique_ptr<hamt::TransactionHold> Participant::HoldForTransaction() {
  std::optional<std::uint32_t> free_lane;
  for (std::uint32_t i = 0; i < kLanesPerSlot; ++i) {
    if ((lanes_leased_ & (1u << i)) == 0) {
      free_lane = i;
      break;
    }
  }
  return std::make_unique<LaneLease>(*this, free_lane);
}

void Participant::FreeUnpublished(const hamt::CommitResult& commit) {
  internal::FreeUnpublished(commit, runtime_.allocator(), context_.cache);
}

void Participant::AnnounceIntent(std::uint32_t atom, const hamt::CommitResult& commit) {
  internal::AnnounceIntent(area().intent, atom, commit);
}

void Participant::WithdrawIntent() { internal::WithdrawIntent(area().intent); }

void Participant::FinishPublication(const hamt::CommitResult& commit) {
  internal::FinishPublication(area().intent, commit);
}

void Participant::AdoptOrphans() {
  const Offset chain = TakeOrphanBatches(runtime_.domain());
  if (chain == kNullOffset) return;
  // Orphans were retired by other processes, possibly in space grown since this process last
  // mapped; their push happens-before the take, so one refresh maps them.
  (void)runtime_.domain().arena().Refresh();
  retire_.AdoptChain(chain);
}

void Participant::TakeOverIfDead(const EpochBlocker& blocker) {
  if (blocker.no_heavy_fence) return;  // no slot held the epoch back: this process may not scan
  if (blocker.reader) {
    // A dead reader held nothing but its pin: clearing it is the whole recovery (DESIGN 1.4).
    if (const ReaderRegistry* readers = runtime_.domain().readers()) {
      (void)readers->ClearIfDead(blocker.slot);
    }
    return;
  }
  if (blocker.slot == slot()) return;
  (void)runtime_.domain().slots().TakeOverIfDead(blocker.slot, lease_.lock_fd());
}

void Participant::AdvanceEpoch() {
  retires_since_reclaim_ = 0;
  if (std::optional<EpochBlocker> blocker = runtime_.epochs().TryAdvance()) {
    // A blocker is behind G, dead or alive: only its lock can tell. The
    // probe is one fcntl (writers) or a lock probe and a pread (readers), at most once per
    // kRetiresPerReclaim retirements.
    TakeOverIfDead(*blocker);
  }
  AdoptOrphans();
}

std::uint64_t Participant::Reclaim() {
  AdvanceEpoch();
  return retire_.Reclaim(runtime_.epochs());  // unbounded (R6)
}

namespace {

// `full` with `message` (its code and payloads kept).
absl::Status WithMessage(const absl::Status& full, const std::string& message) {
  absl::Status named(full.code(), message);
  full.ForEachPayload(
      [&](absl::string_view url, const absl::Cord& payload) { named.SetPayload(url, payload); });
  return named;
}

// Why this process reclaims nothing in a domain whose pins may be light (PF2).
std::string NoHeavyFenceMessage(const absl::Status& full, std::string_view path) {
  return absl::StrFormat(
      "%s; this process cannot advance the epoch of %s: pins in this domain may be light, and its "
      "scans need membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), which failed here (an old kernel, "
      "or a seccomp profile that refuses it); its garbage is freed once a process that can issue "
      "it reclaims",
      full.message(), path);
}

}  // namespace

absl::Status Participant::ReclaimForSpace(const absl::Status& full) {
  if (!IsNoRoom(full)) return full;
  // Garbage retired at r is freed once G >= r + 2: up to three passes free everything that no
  // pin holds back (each advances G at most once).
  std::uint64_t freed = 0;
  for (int pass = 0; pass < 3; ++pass) freed += Reclaim();
  if (freed > 0) return absl::OkStatus();
  const std::optional<EpochBlocker> blocker = runtime_.epochs().TryAdvance();
  if (!blocker) return full;
  if (blocker->no_heavy_fence) {
    return WithMessage(full, NoHeavyFenceMessage(full, runtime_.domain().path()));
  }
  const std::uint32_t pid =
      blocker->reader ? blocker->reader_pid
                      : runtime_.domain().slots().Head(blocker->slot).owner_pid.LoadRelaxed();
  // The same status (code and payloads), its message naming who holds reclamation back.
  return WithMessage(
      full, absl::StrFormat("%s; reclamation is held back by %s slot %d, pid %d, pinned at epoch "
                            "%d (the global epoch is %d): see `atomap stat --readers %s`",
                            full.message(), blocker->reader ? "reader" : "writer", blocker->slot,
                            pid, blocker->pinned_epoch, runtime_.epochs().CurrentEpoch(),
                            runtime_.domain().path()));
}

}  // namespace atomap::internal

#include "file/slot_table.h"

#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <utility>

#include "absl/strings/str_format.h"
#include "arena/file_locks.h"
#include "common/crash_point.h"

namespace atomap::internal {
namespace {

constexpr std::uint32_t kFree = static_cast<std::uint32_t>(SlotState::kFree);
constexpr std::uint32_t kOwned = static_cast<std::uint32_t>(SlotState::kOwned);

std::uint32_t LoadState(const SlotHead& head) {
  return head.state.LoadAcquire();  // (2)
}

}  // namespace

SlotLease::SlotLease(SlotLease&& other) noexcept
    : table_(std::exchange(other.table_, nullptr)),
      index_(other.index_),
      token_(other.token_),
      lock_fd_(std::exchange(other.lock_fd_, -1)),
      owns_fd_(std::exchange(other.owns_fd_, false)) {}

SlotLease& SlotLease::operator=(SlotLease&& other) noexcept {
  if (this != &other) {
    Release();
    table_ = std::exchange(other.table_, nullptr);
    index_ = other.index_;
    token_ = other.token_;
    lock_fd_ = std::exchange(other.lock_fd_, -1);
    owns_fd_ = std::exchange(other.owns_fd_, false);
  }
  return *this;
}

void SlotLease::Release() {
  if (table_ == nullptr) return;
  table_->Release(index_, lock_fd_);
  if (owns_fd_) close(lock_fd_);
  table_ = nullptr;
  lock_fd_ = -1;
  owns_fd_ = false;
}

void SlotLease::Abandon() {
  if (table_ != nullptr && owns_fd_) close(lock_fd_);
  table_ = nullptr;
  lock_fd_ = -1;
  owns_fd_ = false;
}

absl::StatusOr<SlotLease> SlotTable::Claim(int lock_fd, bool owns_fd) {
  absl::StatusOr<SlotLease> lease = use_locks_ ? ClaimLocked(lock_fd, owns_fd) : ClaimUnlocked();
  if (!lease.ok() && owns_fd && lock_fd >= 0) close(lock_fd);
  return lease;
}

absl::StatusOr<SlotLease> SlotTable::ClaimLocked(int lock_fd, bool owns_fd) {
  // Pass 0 looks only at slots that say free (one load each, no syscall for owned ones); pass 1
  // probes all the others, whose lock is free only if their owner died (or, for a state word
  // that is neither free nor owned, if damage left it so: such a slot is reset like a free one,
  // without the takeover hook).
  for (const bool want_free : {true, false}) {
    for (std::uint32_t i = 0; i < capacity_; ++i) {
      if ((LoadState(Head(i)) == kFree) != want_free) continue;
      absl::StatusOr<bool> locked = TryLockByte(lock_fd, SlotLockByte(i), LockMode::kExclusive);
      if (!locked.ok()) return locked.status();
      if (!*locked) continue;  // a live owner, or a rival claimer got there first
      const std::uint64_t token = Adopt(i);
      return SlotLease(this, i, token, lock_fd, owns_fd);
    }
  }
  return Exhausted();
}

absl::StatusOr<SlotLease> SlotTable::ClaimUnlocked() {
  for (std::uint32_t i = 0; i < capacity_; ++i) {
    std::uint32_t expected = kFree;
    if (Head(i).state.CasAcqRel(expected, kOwned)) {  // (4)
      const std::uint64_t token = Adopt(i);
      return SlotLease(this, i, token, -1, false);
    }
  }
  return Exhausted();
}

void SlotTable::RaiseHighWater(std::uint32_t end) {
  std::uint32_t seen = high_water_->LoadRelaxed();
  while (seen < end && !high_water_->CasWeakSeqCst(seen, end)) {
  }  // (5): a failed CAS reloads `seen`; someone else's raise may already cover `end`
}

void SlotTable::CoverClaimedSlots() {
  for (std::uint32_t i = capacity_; i > 0; --i) {
    if (LoadState(Head(i - 1)) == kFree) continue;
    RaiseHighWater(i);
    return;
  }
}

std::uint64_t SlotTable::Adopt(std::uint32_t slot) {
  SlotHead& head = Head(slot);
  RaiseHighWater(slot + 1);  // (5) S4: before the claim is published, before the first pin
  // In the unlocked mode our own CAS wrote kOwned, and nobody else's process can have died here.
  if (use_locks_) RecoverIfOwned(slot);
  ClearAreas(slot);
  const std::uint64_t token = head.owner_token.LoadRelaxed() + 1;
  head.owner_token.StoreRelaxed(token);
  head.owner_pid.StoreRelaxed(static_cast<std::uint32_t>(getpid()));
  head.pinned_epoch.StoreRelaxed(0);
  head.state.StoreRelease(kOwned);  // (1)
  return token;
}

void SlotTable::ClearAreas(std::uint32_t slot) {
  Slot& s = slots_[slot];
  std::memset(&s.reclaim, 0, offsetof(Slot, mailbox) - offsetof(Slot, reclaim));
  SettleMailbox(s.mailbox);
}

void SlotTable::SettleMailbox(CombineMailbox& mailbox) {
  // (6) acked first, then post, both release: a combiner that reads the settled post word
  // (acquire) then reads acked >= its seq and skips it (atom/combine.h C5). Idempotent: a
  // claimer killed here and the next one store the same values.
  const std::uint64_t seq = mailbox.post.LoadRelaxed() >> 1;
  if (mailbox.acked.LoadRelaxed() < seq) mailbox.acked.StoreRelease(seq);
  mailbox.post.StoreRelease(seq << 1);
}

void SlotTable::RecoverIfOwned(std::uint32_t slot) {
  // Under the lock, a state of owned means the previous owner died without releasing (S2).
  SlotHead& head = Head(slot);
  if (LoadState(head) != kOwned || !takeover_hook_) return;
  // A claimer killed here leaves the slot as it found it: dead, still owned, lock free.
  ATOMAP_CRASH_POINT(kTakeoverLocked);
  SlotHead dead;  // a private image of the head, for the hook
  dead.state.InitPlain(kOwned);
  dead.owner_pid.InitPlain(head.owner_pid.LoadRelaxed());
  dead.owner_token.InitPlain(head.owner_token.LoadRelaxed());
  dead.pinned_epoch.InitPlain(head.pinned_epoch.LoadRelaxed());
  std::memset(dead.reserved, 0, sizeof dead.reserved);
  takeover_hook_(slot, dead);
}

absl::StatusOr<bool> SlotTable::TakeOverIfDead(std::uint32_t slot, int lock_fd) {
  if (!use_locks_ || LoadState(Head(slot)) != kOwned) return false;
  absl::StatusOr<bool> locked = TryLockByte(lock_fd, SlotLockByte(slot), LockMode::kExclusive);
  if (!locked.ok() || !*locked) return locked;
  const bool dead = LoadState(Head(slot)) == kOwned;  // not released meanwhile
  if (dead) {
    RecoverIfOwned(slot);
    ClearAreas(slot);
  }
  Release(slot, lock_fd);
  return dead;
}

void SlotTable::Release(std::uint32_t slot, int lock_fd) {
  SlotHead& head = Head(slot);
  head.pinned_epoch.StoreRelaxed(0);
  head.state.StoreRelease(kFree);  // (3)
  // A failed unlock leaves the lock to the close of the description (or the process's death).
  if (use_locks_) (void)UnlockByte(lock_fd, SlotLockByte(slot));
}

std::vector<SlotTable::InUseSlot> SlotTable::InUse() const {
  std::vector<InUseSlot> in_use;
  for (std::uint32_t i = 0; i < capacity_; ++i) {
    if (LoadState(Head(i)) != kOwned) continue;
    in_use.push_back({i, Head(i).owner_pid.LoadRelaxed()});
  }
  return in_use;
}

absl::Status SlotTable::Exhausted() const {
  return absl::ResourceExhaustedError(absl::StrFormat(
      "all %d participant slots are in use by live participants (the slot capacity)", capacity_));
}

}  // namespace atomap::internal

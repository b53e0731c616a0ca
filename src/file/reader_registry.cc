#include "file/reader_registry.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <utility>

#include "absl/strings/str_format.h"

namespace atomap::internal {
namespace {

constexpr std::uint32_t kFree = static_cast<std::uint32_t>(ReaderSlotState::kFree);
constexpr std::uint32_t kOwned = static_cast<std::uint32_t>(ReaderSlotState::kOwned);

// OFD locks of one description never conflict with each other, so two threads of one writer
// process probing through the registry description the DomainImpl owns would both "win": the
// probe, the re-read and the clear are one section per process.
std::mutex& ProbeMutex() {
  static std::mutex* mu = new std::mutex();
  return *mu;
}

template <typename T>
T WordAt(const std::uint8_t* slot_bytes, std::size_t offset) {
  T value;
  std::memcpy(&value, slot_bytes + offset, sizeof value);
  return value;
}

// A slot's fields from a plain copy of its 64 bytes (a pread of the file).
ReaderSlotImage ImageOfBytes(std::uint32_t index, const std::uint8_t* bytes) {
  return ReaderSlotImage{
      .index = index,
      .announcement = WordAt<std::uint64_t>(bytes, offsetof(ReaderSlot, announcement)),
      .state = WordAt<std::uint32_t>(bytes, offsetof(ReaderSlot, state)),
      .owner_pid = WordAt<std::uint32_t>(bytes, offsetof(ReaderSlot, owner_pid)),
      .owner_token = WordAt<std::uint64_t>(bytes, offsetof(ReaderSlot, owner_token)),
      .owner_uid = WordAt<std::uint32_t>(bytes, offsetof(ReaderSlot, owner_uid)),
      .pinned_atom = WordAt<std::uint32_t>(bytes, offsetof(ReaderSlot, pinned_atom)),
      .pinned_version = WordAt<std::uint64_t>(bytes, offsetof(ReaderSlot, pinned_version)),
  };
}

// A slot's fields from the mapping (readers): the announcement with an acquire load, as a writer
// scan's pread is followed by an acquire fence.
ReaderSlotImage ImageOfSlot(std::uint32_t index, const ReaderSlot& slot) {
  return ReaderSlotImage{
      .index = index,
      .announcement = slot.announcement.LoadAcquire(),
      .state = slot.state.LoadAcquire(),
      .owner_pid = slot.owner_pid.LoadRelaxed(),
      .owner_token = slot.owner_token.LoadRelaxed(),
      .owner_uid = slot.owner_uid.LoadRelaxed(),
      .pinned_atom = slot.pinned_atom.LoadRelaxed(),
      .pinned_version = slot.pinned_version.LoadRelaxed(),
  };
}

// Reads exactly [offset, offset + n) or less at end of file; -1 on an error.
ssize_t PreadFully(int fd, void* buffer, std::size_t n, off_t offset) {
  std::size_t done = 0;
  while (done < n) {
    const ssize_t got = pread(fd, static_cast<std::uint8_t*>(buffer) + done, n - done,
                              offset + static_cast<off_t>(done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return -1;
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  return static_cast<ssize_t>(done);
}

}  // namespace

// ---- ReaderLease ------------------------------------------------------------------------------

ReaderLease::ReaderLease(ReaderLease&& other) noexcept
    : slot_(std::exchange(other.slot_, nullptr)),
      index_(other.index_),
      lock_fd_(std::exchange(other.lock_fd_, -1)) {}

ReaderLease& ReaderLease::operator=(ReaderLease&& other) noexcept {
  if (this != &other) {
    Release();
    slot_ = std::exchange(other.slot_, nullptr);
    index_ = other.index_;
    lock_fd_ = std::exchange(other.lock_fd_, -1);
  }
  return *this;
}

void ReaderLease::Release() {
  if (slot_ == nullptr) return;
  // Unpinned and free before the lock goes: a claimer that wins the lock next finds a free slot,
  // and a writer's scan never sees a pin of a slot whose lock is free (but for a dead owner's).
  slot_->announcement.StoreRelease(0);
  slot_->pinned_atom.StoreRelaxed(0);
  slot_->state.StoreRelease(kFree);
  (void)UnlockByte(lock_fd_, ReaderSlotLockByte(index_));
  close(lock_fd_);
  slot_ = nullptr;
  lock_fd_ = -1;
}

void ReaderLease::Abandon() {
  // The descriptor is a copy of the parent's (fork() shares the description): closing it here
  // keeps the parent's lock, which an unlock through the shared description would drop.
  if (slot_ != nullptr && lock_fd_ >= 0) close(lock_fd_);
  slot_ = nullptr;
  lock_fd_ = -1;
}

// ---- ReaderRegistry ---------------------------------------------------------------------------

ReaderRegistry::ReaderRegistry(ReaderRegistry&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      capacity_(other.capacity_),
      mapping_(std::exchange(other.mapping_, nullptr)),
      mapped_bytes_(std::exchange(other.mapped_bytes_, 0)),
      path_(std::move(other.path_)),
      seen_high_water_(other.seen_high_water_.load(std::memory_order_relaxed)) {}

ReaderRegistry& ReaderRegistry::operator=(ReaderRegistry&& other) noexcept {
  std::swap(fd_, other.fd_);
  std::swap(capacity_, other.capacity_);
  std::swap(mapping_, other.mapping_);
  std::swap(mapped_bytes_, other.mapped_bytes_);
  std::swap(path_, other.path_);
  seen_high_water_.store(other.seen_high_water_.load(std::memory_order_relaxed),
                         std::memory_order_relaxed);
  return *this;
}

ReaderRegistry::~ReaderRegistry() {
  if (mapping_ != nullptr) munmap(mapping_, mapped_bytes_);
}

absl::StatusOr<ReaderRegistry> ReaderRegistry::Open(int fd, std::uint32_t capacity, bool map_slots,
                                                    std::string path) {
  if (capacity == 0 || capacity > kMaxReaderCapacity) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: reader capacity %u is not in [1, %u]",
                                                      path, capacity, kMaxReaderCapacity));
  }
  ReaderRegistry registry;
  registry.fd_ = fd;
  registry.capacity_ = capacity;
  registry.path_ = std::move(path);
  if (!map_slots) return registry;
  // A reader maps the whole file; one shorter than its capacity would fault on its last slots.
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return absl::InternalError(
        absl::StrFormat("%s: fstat: %s", registry.path_, std::strerror(errno)));
  }
  const std::uint64_t bytes = RegistryBytes(capacity);
  if (static_cast<std::uint64_t>(st.st_size) < bytes) {
    return absl::DataLossError(
        absl::StrFormat("%s: reader registry is %d bytes, shorter than the %d its %u slots need",
                        registry.path_, st.st_size, bytes, capacity));
  }
  void* mapping = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mapping == MAP_FAILED) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "%s: cannot map the reader registry read-write: %s", registry.path_, std::strerror(errno)));
  }
  registry.mapping_ = mapping;
  registry.mapped_bytes_ = bytes;
  return registry;
}

namespace {

RegistryHeader& HeaderOf(void* mapping) { return *static_cast<RegistryHeader*>(mapping); }
ReaderSlot& SlotOf(void* mapping, std::uint32_t slot) {
  return *reinterpret_cast<ReaderSlot*>(static_cast<std::uint8_t*>(mapping) +
                                        ReaderSlotOffset(slot));
}

// Makes slot `slot` (whose lock the caller holds) its claimer's: a dead owner's pin is dropped
// with it (a reader owns nothing else), then the high-water mark covers it before it is owned,
// so a writer's scan that can see the slot's pins reads it (the raise precedes every pin's
// fence, RR1).
void Adopt(RegistryHeader& header, ReaderSlot& slot, std::uint32_t index) {
  slot.announcement.StoreRelaxed(0);
  slot.pinned_atom.StoreRelaxed(0);
  slot.pinned_version.StoreRelaxed(0);
  slot.owner_token.StoreRelaxed(slot.owner_token.LoadRelaxed() + 1);
  slot.owner_pid.StoreRelaxed(static_cast<std::uint32_t>(getpid()));
  slot.owner_uid.StoreRelaxed(static_cast<std::uint32_t>(geteuid()));
  std::uint32_t high = header.high_water.LoadRelaxed();
  while (high <= index && !header.high_water.CasRelease(high, index + 1)) {
  }
  slot.state.StoreRelease(
      kOwned);  // release: a scan that reads owned (its pread, then fence RR4) sees the head
}

}  // namespace

absl::StatusOr<ReaderLease> ReaderRegistry::Claim() {
  if (mapping_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: a writer's registry handle claims no reader slot", path_));
  }
  // A description of our own: its lock conflicts with every other reader's, in this process too.
  const std::string self = absl::StrFormat("/proc/self/fd/%d", fd_);
  const int lock_fd = open(self.c_str(), O_RDWR | O_CLOEXEC);
  if (lock_fd < 0) {
    return absl::InternalError(absl::StrFormat("%s: cannot open a reader slot description: %s",
                                               path_, std::strerror(errno)));
  }
  // Pass 0: slots that say free (one load each, no syscall for owned ones); pass 1: the others,
  // whose lock is free only if their owner died (or the state word is damage: reset alike).
  for (const bool want_free : {true, false}) {
    for (std::uint32_t i = 0; i < capacity_; ++i) {
      ReaderSlot& slot = SlotOf(mapping_, i);
      if ((slot.state.LoadAcquire() == kFree) != want_free) continue;
      absl::StatusOr<bool> locked =
          TryLockByte(lock_fd, ReaderSlotLockByte(i), LockMode::kExclusive);
      if (!locked.ok()) {
        close(lock_fd);
        return absl::Status(locked.status().code(),
                            absl::StrFormat("%s: %s", path_, locked.status().message()));
      }
      if (!*locked) continue;  // a live owner, or a rival claimer got there first
      Adopt(HeaderOf(mapping_), slot, i);
      return ReaderLease(&slot, i, lock_fd);
    }
  }
  close(lock_fd);
  return absl::ResourceExhaustedError(absl::StrFormat(
      "%s: every one of the %u reader slots has a live owner (raise reader_capacity at creation)",
      path_, capacity_));
}

std::vector<ReaderSlotImage> ReaderRegistry::ReadSlots() const {
  std::vector<ReaderSlotImage> images;
  if (mapping_ != nullptr) {
    const std::uint32_t n = std::min(HeaderOf(mapping_).high_water.LoadAcquire(), capacity_);
    images.reserve(n);
    for (std::uint32_t i = 0; i < n; ++i) images.push_back(ImageOfSlot(i, SlotOf(mapping_, i)));
    return images;
  }
  // Writers: the file may be short, holed or lying (any reader can write it): what is not there
  // reads as no slot, what is there is only ever believed within capacity. One pread in the
  // steady state: the high-water word and the slots below the high water this process saw last
  // come in one read; only when it has risen are the slots above read in a second one.
  constexpr off_t kFrom = offsetof(RegistryHeader, high_water);
  constexpr std::size_t kSlotsAt = kRegistryHeaderBytes - kFrom;  // in `bytes`
  const std::uint32_t seen = std::min(seen_high_water_.load(std::memory_order_relaxed), capacity_);
  std::vector<std::uint8_t> bytes(kSlotsAt + std::size_t{seen} * kReaderSlotBytes);
  ssize_t got = PreadFully(fd_, bytes.data(), bytes.size(), kFrom);
  if (got < static_cast<ssize_t>(sizeof(std::uint32_t))) return images;
  std::uint32_t high_water = 0;
  std::memcpy(&high_water, bytes.data(), sizeof high_water);
  const std::uint32_t n = std::min(high_water, capacity_);
  if (n > seen && got == static_cast<ssize_t>(bytes.size())) {
    seen_high_water_.store(n, std::memory_order_relaxed);
    bytes.resize(kSlotsAt + std::size_t{n} * kReaderSlotBytes);
    const std::size_t rest = std::size_t{n - seen} * kReaderSlotBytes;
    const ssize_t more = PreadFully(fd_, bytes.data() + got, rest, kFrom + static_cast<off_t>(got));
    if (more > 0) got += more;
  }
  if (got <= static_cast<ssize_t>(kSlotsAt)) return images;
  const std::uint32_t whole = std::min(
      n, static_cast<std::uint32_t>((static_cast<std::size_t>(got) - kSlotsAt) / kReaderSlotBytes));
  images.reserve(whole);
  for (std::uint32_t i = 0; i < whole; ++i) {
    images.push_back(ImageOfBytes(i, bytes.data() + kSlotsAt + std::size_t{i} * kReaderSlotBytes));
  }
  return images;
}

bool ReaderRegistry::ClearIfDead(std::uint32_t slot) const {
  if (slot >= capacity_ || fd_ < 0) return false;
  std::lock_guard<std::mutex> section(ProbeMutex());
  absl::StatusOr<bool> locked = TryLockByte(fd_, ReaderSlotLockByte(slot), LockMode::kExclusive);
  if (!locked.ok() || !*locked) return false;  // alive (or a stranger's lock: DESIGN 2.4)
  // Under the lock nobody else can claim the slot: what it says now is the dead owner's last word.
  std::uint8_t bytes[kReaderSlotBytes];
  bool cleared = false;
  if (PreadFully(fd_, bytes, sizeof bytes, static_cast<off_t>(ReaderSlotOffset(slot))) ==
          static_cast<ssize_t>(sizeof bytes) &&
      ImageOfBytes(slot, bytes).state == kOwned) {
    // announcement 0 then state free, in one write of the slot's first 12 bytes.
    std::uint8_t head[12] = {};
    static_assert(offsetof(ReaderSlot, state) + sizeof(std::uint32_t) == sizeof head);
    cleared = pwrite(fd_, head, sizeof head, static_cast<off_t>(ReaderSlotOffset(slot))) ==
              static_cast<ssize_t>(sizeof head);
  }
  (void)UnlockByte(fd_, ReaderSlotLockByte(slot));
  return cleared;
}

std::optional<bool> ReaderRegistry::Alive(std::uint32_t slot) const {
  if (slot >= capacity_ || fd_ < 0) return std::nullopt;
  return LockHeldElsewhere(fd_, ReaderSlotLockByte(slot));
}

}  // namespace atomap::internal

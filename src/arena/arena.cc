#include "arena/arena.h"

#include "common/space_status.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "arena/file_locks.h"
#include "arena/file_space.h"
#include "common/crash_point.h"

namespace atomap::internal {
namespace {

std::uint64_t PageSize() {
  static const std::uint64_t page = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  return page;
}

std::uint64_t RoundDown(std::uint64_t n, std::uint64_t align) { return n / align * align; }

absl::StatusOr<std::uint8_t*> ReserveAddressSpace(std::uint64_t max_size) {
  void* p = mmap(nullptr, max_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "cannot reserve %d bytes of address space: %s", max_size, std::strerror(errno)));
  }
  return static_cast<std::uint8_t*>(p);
}

// Whether `fd` lives on tmpfs (shared memory), where huge pages may back a file mapping.
bool OnTmpfs(int fd) {
  struct statfs fs;
  return fstatfs(fd, &fs) == 0 && fs.f_type == TMPFS_MAGIC;
}

}  // namespace

Arena::Arena(std::uint8_t* base, std::uint64_t max_size, int fd, std::string path, bool writable,
             bool huge_pages)
    : base_(base),
      max_size_(max_size),
      fd_(fd),
      path_(std::move(path)),
      writable_(writable),
      huge_pages_(huge_pages) {}

Arena::~Arena() {
  munmap(base_, max_size_);
  if (fd_ >= 0) close(fd_);
}

absl::StatusOr<std::unique_ptr<Arena>> Arena::Anonymous(std::uint64_t max_size,
                                                        std::uint64_t initial_size) {
  max_size = RoundUp(max_size, PageSize());
  if (initial_size > max_size) {
    return absl::InvalidArgumentError(
        absl::StrFormat("initial size %d exceeds the maximum size %d", initial_size, max_size));
  }
  auto base = ReserveAddressSpace(max_size);
  if (!base.ok()) return base.status();
  std::unique_ptr<Arena> arena(
      new Arena(*base, max_size, -1, "<in-process>", true, /*huge_pages=*/true));
  arena->anonymous_size_.store(RoundUp(initial_size, PageSize()), std::memory_order_release);
  std::lock_guard<std::mutex> lock(arena->map_mu_);
  if (absl::Status s = arena->MapUpTo(arena->anonymous_size_.load(std::memory_order_relaxed));
      !s.ok()) {
    return s;
  }
  return arena;
}

absl::StatusOr<std::unique_ptr<Arena>> Arena::MapFile(int fd, std::string path,
                                                      std::uint64_t max_size, bool writable) {
  max_size = RoundUp(max_size, PageSize());
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return absl::InternalError(absl::StrFormat("%s: fstat failed: %s", path, std::strerror(err)));
  }
  auto base = ReserveAddressSpace(max_size);
  if (!base.ok()) {
    close(fd);
    return base.status();
  }
  std::unique_ptr<Arena> arena(
      new Arena(*base, max_size, fd, std::move(path), writable, OnTmpfs(fd)));
  const std::uint64_t length =
      std::min<std::uint64_t>(static_cast<std::uint64_t>(st.st_size), max_size);
  std::lock_guard<std::mutex> lock(arena->map_mu_);
  if (absl::Status s = arena->MapUpTo(RoundDown(length, PageSize())); !s.ok()) return s;
  return arena;
}

std::uint64_t Arena::SharedSize() const {
  if (size_word_ != nullptr) return size_word_->LoadAcquire();  // (2)
  if (fd_ < 0) return anonymous_size_.load(std::memory_order_acquire);  // (6)
  return mapped_size();
}

absl::Status Arena::MapUpTo(std::uint64_t size) {
  const std::uint64_t mapped = mapped_size_.load(std::memory_order_relaxed);
  if (size <= mapped) return absl::OkStatus();
  if (size > max_size_) {
    return absl::DataLossError(absl::StrFormat("%s: domain size %d exceeds the reserved maximum %d",
                                               path_, size, max_size_));
  }
  const int prot = writable_ ? PROT_READ | PROT_WRITE : PROT_READ;
  void* want = base_ + mapped;
  void* got;
  if (fd_ >= 0) {
    got = mmap(want, size - mapped, prot, MAP_SHARED | MAP_FIXED, fd_, static_cast<off_t>(mapped));
  } else {
    got = mmap(want, size - mapped, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
               -1, 0);
  }
  if (got == MAP_FAILED) {
    return absl::ResourceExhaustedError(absl::StrFormat("%s: mmap of [%d, %d) failed: %s", path_,
                                                        mapped, size, std::strerror(errno)));
  }
  // Before anything touches the range, so that first faults can take huge pages. Advice: an
  // error (a kernel without THP) changes nothing.
  if (huge_pages_) (void)madvise(want, size - mapped, MADV_HUGEPAGE);
  mapped_size_.store(size, std::memory_order_release);  // (3)
  return absl::OkStatus();
}

std::uint64_t Arena::GrowTarget(std::uint64_t min_size) const {
  const std::uint64_t current = SharedSize();
  std::uint64_t target = std::max(min_size, current + current / 4);
  target = RoundUp(target, kGrowChunk);
  return std::min(target, max_size_);
}

absl::Status Arena::ExtendFile(std::uint64_t published, std::uint64_t new_size) {
  // Every byte up to new_size gets real blocks now, so that a full disk is an error here rather
  // than a SIGBUS later, when a page of the mapping is first written. From the published size,
  // not from the file's length: bytes past the published size belong to no one yet (I3), and a
  // grower killed part-way may have left holes there. Where the file system has no fallocate,
  // zeros are written (nobody stores past the published size, so nothing is overwritten).
  return AllocateFileRange(fd_, published, new_size - published, path_,
                           absl::StrFormat("growing the domain to %d bytes", new_size),
                           ZeroFill::kAllowed);
}

absl::Status Arena::Grow(std::uint64_t min_size) {
  if (!writable_) {
    return absl::FailedPreconditionError(absl::StrFormat("%s: opened read-only", path_));
  }
  if (min_size > max_size_) {
    return NoRoomError(absl::StrFormat("%s: domain full: %d bytes needed, the maximum size is %d",
                                       path_, min_size, max_size_));
  }
  std::lock_guard<std::mutex> lock(map_mu_);  // OFD locks do not exclude threads of one process
  if (SharedSize() >= min_size) return MapUpTo(SharedSize());
  const std::uint64_t target = GrowTarget(min_size);
  if (fd_ < 0) {
    if (absl::Status s = MapUpTo(target); !s.ok()) return s;
    anonymous_size_.store(target, std::memory_order_release);  // (5)
    if (size_word_ != nullptr) size_word_->StoreRelease(target);  // (1)
    return absl::OkStatus();
  }
  if (lock_fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: no lock file to serialise growth on", path_));
  }
  if (absl::Status s = LockByteWithin(lock_fd_, kGrowLockByte, LockMode::kExclusive,
                                      absl::Now() + lock_timeout_, lock_path_, "grow lock");
      !s.ok()) {
    return s;
  }
  ScopedByteLock unlock(lock_fd_, kGrowLockByte);
  std::uint64_t published = SharedSize();
  if (published < min_size) {
    if (absl::Status s = ExtendFile(published, target); !s.ok()) return s;
    // The file is longer than the published size (allocators grow against the published size).
    ATOMAP_CRASH_POINT(kGrowAfterExtend);
    published = target;
    if (size_word_ != nullptr) size_word_->StoreRelease(target);  // (1)
    ATOMAP_CRASH_POINT(kGrowAfterPublish);  // published, not yet mapped here
  }
  return MapUpTo(published);
}

absl::Status Arena::RefreshSlow() {
  std::uint64_t shared = SharedSize();
  if (size_word_ == nullptr && fd_ >= 0) {
    struct stat st;
    if (fstat(fd_, &st) != 0) {
      return absl::InternalError(
          absl::StrFormat("%s: fstat failed: %s", path_, std::strerror(errno)));
    }
    shared = RoundDown(static_cast<std::uint64_t>(st.st_size), PageSize());
  }
  if (shared <= mapped_size()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(map_mu_);
  return MapUpTo(shared);
}

}  // namespace atomap::internal

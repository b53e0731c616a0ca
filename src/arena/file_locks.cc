#include "arena/file_locks.h"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace atomap::internal {
namespace {

struct flock ByteRange(off_t byte, short type) {
  struct flock fl;
  std::memset(&fl, 0, sizeof fl);
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = byte;
  fl.l_len = 1;
  fl.l_pid = 0;  // required 0 for OFD locks
  return fl;
}

short TypeOf(LockMode mode) { return mode == LockMode::kShared ? F_RDLCK : F_WRLCK; }

absl::Status LockError(const char* what, off_t byte) {
  return absl::InternalError(absl::StrFormat("%s of lock byte %d failed: %s", what,
                                             static_cast<long long>(byte - kLockSpaceBase),
                                             std::strerror(errno)));
}

}  // namespace

absl::StatusOr<bool> TryLockByte(int fd, off_t byte, LockMode mode) {
  struct flock fl = ByteRange(byte, TypeOf(mode));
  if (fcntl(fd, F_OFD_SETLK, &fl) == 0) return true;
  if (errno == EAGAIN || errno == EACCES) return false;
  return LockError("F_OFD_SETLK", byte);
}

absl::Status LockByteWithin(int fd, off_t byte, LockMode mode, absl::Time deadline,
                            std::string_view file, std::string_view lock) {
  const absl::Time start = absl::Now();
  absl::Duration pause = absl::Microseconds(50);
  for (;;) {
    absl::StatusOr<bool> got = TryLockByte(fd, byte, mode);
    if (!got.ok() || *got) return got.status();
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrFormat("%s: the %s: held by another writer for %s", file, lock,
                          absl::FormatDuration(absl::Trunc(now - start, absl::Milliseconds(1)))));
    }
    absl::SleepFor(std::min(pause, deadline - now));
    pause = std::min(pause * 2, absl::Milliseconds(10));
  }
}

absl::Status UnlockByte(int fd, off_t byte) {
  struct flock fl = ByteRange(byte, F_UNLCK);
  if (fcntl(fd, F_OFD_SETLK, &fl) != 0) return LockError("unlock", byte);
  return absl::OkStatus();
}

std::optional<bool> LockHeldElsewhere(int fd, off_t byte) {
  struct flock probe = ByteRange(byte, F_WRLCK);
  if (fcntl(fd, F_OFD_GETLK, &probe) != 0) return std::nullopt;
  return probe.l_type != F_UNLCK;
}

}  // namespace atomap::internal

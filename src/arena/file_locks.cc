#include "arena/file_locks.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"

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

absl::Status LockByte(int fd, off_t byte, LockMode mode) {
  struct flock fl = ByteRange(byte, TypeOf(mode));
  while (fcntl(fd, F_OFD_SETLKW, &fl) != 0) {
    if (errno != EINTR) return LockError("F_OFD_SETLKW", byte);
  }
  return absl::OkStatus();
}

absl::Status UnlockByte(int fd, off_t byte) {
  struct flock fl = ByteRange(byte, F_UNLCK);
  if (fcntl(fd, F_OFD_SETLK, &fl) != 0) return LockError("unlock", byte);
  return absl::OkStatus();
}

}  // namespace atomap::internal

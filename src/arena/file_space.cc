#include "arena/file_space.h"

#include "common/space_status.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_format.h"

namespace atomap::internal {
namespace {

std::atomic<bool> force_no_fallocate{false};

absl::Status SpaceError(int err, std::string_view path, std::string_view what,
                        std::string_view call) {
  if (err == ENOSPC || err == EDQUOT) {
    return NoRoomError(absl::StrFormat("%s: no space left on the device for %s (%s)", path, what,
                                       std::strerror(err)));
  }
  return absl::InternalError(
      absl::StrFormat("%s: %s failed while %s: %s", path, call, what, std::strerror(err)));
}

// The fallback: zeros written for real (a write allocates, or fails with ENOSPC).
absl::Status WriteZeros(int fd, std::uint64_t offset, std::uint64_t length, std::string_view path,
                        std::string_view what) {
  static constexpr std::size_t kChunk = 64 << 10;
  static const char kZeros[kChunk] = {};
  std::uint64_t done = 0;
  while (done < length) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, length - done));
    const ssize_t wrote = pwrite(fd, kZeros, n, static_cast<off_t>(offset + done));
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote < 0) return SpaceError(errno, path, what, "writing zeros");
    done += static_cast<std::uint64_t>(wrote);
  }
  return absl::OkStatus();
}

}  // namespace

void ForceNoFallocateForTesting(bool force) {
  force_no_fallocate.store(force, std::memory_order_relaxed);
}

absl::Status AllocateFileRange(int fd, std::uint64_t offset, std::uint64_t length,
                               std::string_view path, std::string_view what, ZeroFill zero_fill) {
  if (length == 0) return absl::OkStatus();
  int err = EOPNOTSUPP;
  if (!force_no_fallocate.load(std::memory_order_relaxed)) {
    int rc;
    do {
      rc = fallocate(fd, 0, static_cast<off_t>(offset), static_cast<off_t>(length));
    } while (rc != 0 && errno == EINTR);
    if (rc == 0) return absl::OkStatus();
    err = errno;
  }
  if (err != EOPNOTSUPP && err != ENOSYS) return SpaceError(err, path, what, "fallocate");
  if (zero_fill == ZeroFill::kNever) return absl::OkStatus();
  return WriteZeros(fd, offset, length, path, what);
}

}  // namespace atomap::internal

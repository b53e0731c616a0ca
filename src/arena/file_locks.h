// Open-file-description locks: the kernel's word on who is alive.
//
// atomap never holds a lock in shared memory (a holder killed mid-section would hold it forever).
// Liveness and the few serialised slow paths (growing the file) use F_OFD_SETLK byte locks
// instead: the kernel drops them when the owning file description closes, which happens when the
// process dies however it dies. Unlike classic fcntl locks, closing another descriptor of the
// same file does not drop them, and two descriptions in one process conflict with each other, so
// each participant (thread) can hold its own.
//
// Where the locks live (format 3, docs/format.md "Lock bytes"): a lock is abusable by anyone who
// can open its file at all (F_RDLCK needs only O_RDONLY, and conflicts with every write lock).
// So PATH, which every reader opens, carries none. Every writer lock (attach, grow, writer slots)
// is on PATH.lock, whose mode lets only those who may write PATH open it; reader slot locks are
// on PATH.readers, and no writer ever waits on those. No wait is unbounded either: there is no
// blocking lock call here, only tries and LockByteWithin's polled try with a deadline, so a
// stopped writer holding a lock turns into DeadlineExceeded, never a hang.
//
// The bytes locked lie far past the end of any file (locks need not cover existing bytes); they
// are advisory and never touch the data.
#ifndef ATOMAP_SRC_ARENA_FILE_LOCKS_H_
#define ATOMAP_SRC_ARENA_FILE_LOCKS_H_

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace atomap::internal {

inline constexpr off_t kLockSpaceBase = off_t{1} << 40;

// Held shared by every attached process; taken exclusive by one that wants to know it is alone.
inline constexpr off_t kAttachedLockByte = kLockSpaceBase + 0;
// Serialises growth of the file (rare, and a syscall anyway).
inline constexpr off_t kGrowLockByte = kLockSpaceBase + 1;
// Serialises replacing a companion file: on a stale PATH.lock (a leftover of an earlier domain
// at the path) while it is replaced, and on the good PATH.lock while PATH.readers is created or
// replaced (file/companion_file.cc).
inline constexpr off_t kReplaceLockByte = kLockSpaceBase + 2;
// One byte per participant slot: held exclusive by the slot's owner for as long as it lives.
constexpr off_t SlotLockByte(std::uint32_t slot) { return kLockSpaceBase + 4096 + slot; }

enum class LockMode { kShared, kExclusive };

// Takes the lock without waiting. Returns false if another description holds a conflicting lock.
absl::StatusOr<bool> TryLockByte(int fd, off_t byte, LockMode mode);
// Takes the lock, polling F_OFD_SETLK with backoff (50 us doubling to 10 ms) until `deadline`:
// then DeadlineExceeded "FILE: the LOCK: held by another writer for N s". `file` and `lock` name
// them in messages (e.g. "PATH.lock", "grow lock").
absl::Status LockByteWithin(int fd, off_t byte, LockMode mode, absl::Time deadline,
                            std::string_view file, std::string_view lock);
absl::Status UnlockByte(int fd, off_t byte);
// Whether a description other than `fd`'s holds a lock on `byte` that would conflict with an
// exclusive one (F_OFD_GETLK: needs no write access, takes nothing); nullopt when the kernel
// cannot say.
std::optional<bool> LockHeldElsewhere(int fd, off_t byte);

// RAII: LockByteWithin in the constructor's caller, UnlockByte here.
class ScopedByteLock {
 public:
  ScopedByteLock(int fd, off_t byte) : fd_(fd), byte_(byte) {}
  ScopedByteLock(const ScopedByteLock&) = delete;
  ScopedByteLock& operator=(const ScopedByteLock&) = delete;
  ~ScopedByteLock() { (void)UnlockByte(fd_, byte_); }

 private:
  int fd_;
  off_t byte_;
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_ARENA_FILE_LOCKS_H_

// Open-file-description locks: the kernel's word on who is alive.
//
// atomap never holds a lock in shared memory (a holder killed mid-section would hold it forever).
// Liveness and the few serialised slow paths (growing the file) use F_OFD_SETLK byte locks on the
// domain file instead: the kernel drops them when the owning file description closes, which
// happens when the process dies however it dies. Unlike classic fcntl locks, closing another
// descriptor of the same file does not drop them, and two descriptions in one process conflict
// with each other, so each participant (thread) can hold its own.
//
// The bytes locked lie far past the end of any domain (locks need not cover existing bytes);
// they are advisory and never touch the data.
#ifndef ATOMAP_SRC_ARENA_FILE_LOCKS_H_
#define ATOMAP_SRC_ARENA_FILE_LOCKS_H_

#include <sys/types.h>

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace atomap::internal {

inline constexpr off_t kLockSpaceBase = off_t{1} << 40;

// Held shared by every attached process; taken exclusive by one that wants to know it is alone.
inline constexpr off_t kAttachedLockByte = kLockSpaceBase + 0;
// Serialises growth of the file (rare, and a syscall anyway).
inline constexpr off_t kGrowLockByte = kLockSpaceBase + 1;
// Serialises whole-domain recovery (the mark-and-sweep backstop).
inline constexpr off_t kRecoveryLockByte = kLockSpaceBase + 2;
// One byte per participant slot: held exclusive by the slot's owner for as long as it lives.
constexpr off_t SlotLockByte(std::uint32_t slot) { return kLockSpaceBase + 4096 + slot; }

enum class LockMode { kShared, kExclusive };

// Takes the lock without waiting. Returns false if another description holds a conflicting lock.
absl::StatusOr<bool> TryLockByte(int fd, off_t byte, LockMode mode);
// Takes the lock, waiting for conflicting holders to release it (or die).
absl::Status LockByte(int fd, off_t byte, LockMode mode);
absl::Status UnlockByte(int fd, off_t byte);

// RAII: LockByte in the constructor's caller, UnlockByte here.
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

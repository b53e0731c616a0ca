// ReaderRegistry: the reader slots of PATH.readers (file/reader_slot.h), and who is alive there.
//
// A reader handle (Options::read_only) maps the registry read-write and claims one reader slot
// per thread, as a writer claims a participant slot: an exclusive F_OFD_SETLK on
// ReaderSlotLockByte(i) of the registry, through a file description of its own, held for as long
// as the reader lives. Its pins are stores into its slot's announcement (epoch/epoch_table.h,
// RR1-RR3).
//
// A writer never maps the registry (any reader can truncate it, and a truncated mapping faults):
// it reads the slots with one pread (ReadSlots) inside a reclamation scan, and clears a dead
// reader's slot with a lock probe and a pwrite (ClearIfDead). No writer ever waits on a lock of
// this file: every lock call on it is a try.
//
// Thread safety: safe to use from any thread of any process that opens the registry. A
// ReaderLease belongs to one thread at a time.
#ifndef ATOMAP_SRC_FILE_READER_REGISTRY_H_
#define ATOMAP_SRC_FILE_READER_REGISTRY_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "arena/file_locks.h"
#include "file/reader_slot.h"

namespace atomap::internal {

// One reader slot's lock byte in PATH.readers.
constexpr off_t ReaderSlotLockByte(std::uint32_t slot) { return kLockSpaceBase + 4096 + slot; }

// A plain copy of one reader slot (from ReadSlots): what a scan or `atomap stat` saw.
struct ReaderSlotImage {
  std::uint32_t index = 0;
  std::uint64_t announcement = 0;
  std::uint32_t state = 0;
  std::uint32_t owner_pid = 0;
  std::uint64_t owner_token = 0;
  std::uint32_t owner_uid = 0;
  std::uint32_t pinned_atom = 0;
  std::uint64_t pinned_version = 0;
};

class ReaderRegistry;

// One claimed reader slot. Move-only; releases the slot (announcement 0, state free, lock
// dropped, own description closed) when destroyed.
class ReaderLease {
 public:
  ReaderLease() = default;
  ReaderLease(ReaderLease&& other) noexcept;
  ReaderLease& operator=(ReaderLease&& other) noexcept;
  ReaderLease(const ReaderLease&) = delete;
  ReaderLease& operator=(const ReaderLease&) = delete;
  ~ReaderLease() { Release(); }

  bool held() const { return slot_ != nullptr; }
  // REQUIRES: held().
  std::uint32_t index() const { return index_; }
  ReaderSlot& slot() const { return *slot_; }

  void Release();
  // Forgets the slot without releasing it (a copy inherited by a child of fork()).
  void Abandon();

 private:
  friend class ReaderRegistry;
  ReaderLease(ReaderSlot* slot, std::uint32_t index, int lock_fd)
      : slot_(slot), index_(index), lock_fd_(lock_fd) {}

  ReaderSlot* slot_ = nullptr;
  std::uint32_t index_ = 0;
  int lock_fd_ = -1;
};

class ReaderRegistry {
 public:
  // `fd`: PATH.readers, open O_RDWR (the caller keeps it open for the registry's life; its header
  // already validated against PATH's header). `capacity`: PATH's header reader_capacity.
  // `map_slots`: true for a reader handle (maps the file read-write); writers pass false.
  static absl::StatusOr<ReaderRegistry> Open(int fd, std::uint32_t capacity, bool map_slots,
                                             std::string path);
  ReaderRegistry(ReaderRegistry&& other) noexcept;
  ReaderRegistry& operator=(ReaderRegistry&& other) noexcept;
  ~ReaderRegistry();

  std::uint32_t capacity() const { return capacity_; }
  const std::string& path() const { return path_; }

  // Claims a free reader slot (or a dead reader's: its pin is cleared). ResourceExhausted naming
  // the capacity when every slot has a live owner. REQUIRES: opened with map_slots.
  absl::StatusOr<ReaderLease> Claim();

  // The slots below the high-water mark, copied with one pread (writers) or from the mapping
  // (readers). A short read (a truncated registry) yields fewer slots: as if unpinned.
  std::vector<ReaderSlotImage> ReadSlots() const;

  // Writers: if reader slot `slot` says owned but its lock is free (its owner died), clears its
  // announcement and marks it free (pwrite, under the lock, which is then dropped). Returns
  // whether it did. Never waits.
  bool ClearIfDead(std::uint32_t slot) const;

  // Whether a description other than this process's holds slot's lock (F_OFD_GETLK); nullopt
  // when the kernel cannot say.
  std::optional<bool> Alive(std::uint32_t slot) const;

 private:
  ReaderRegistry() = default;

  int fd_ = -1;
  std::uint32_t capacity_ = 0;
  void* mapping_ = nullptr;  // readers only
  std::uint64_t mapped_bytes_ = 0;
  std::string path_;
  // The highest high-water mark ReadSlots has seen (writers): how much its one pread covers.
  mutable std::atomic<std::uint32_t> seen_high_water_{0};
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_FILE_READER_REGISTRY_H_

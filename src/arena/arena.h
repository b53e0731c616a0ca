// Arena: one process's view of a domain's bytes — reserve once, grow in place.
//
// Invariants
//  (I1) base() never changes for the life of the Arena: the whole max_size() of address space is
//       reserved (PROT_NONE) at construction and the file is mapped over its start with
//       MAP_FIXED. A pointer into the mapping stays valid until the Arena is destroyed.
//  (I2) The domain's size (the shared size word, once bound) only grows, and only after the file
//       has been extended to at least that size: no mapped byte is ever past the end of the file.
//  (I3) shared size <= file length <= max_size(), and mapped_size() <= shared size once the size
//       word is bound, except just after MapFile, which maps the file's length: a grower killed
//       after extending the file but before publishing leaves it longer than the domain. So
//       allocation decisions compare with SharedSize(), never with mapped_size().
//  (I4) Every byte below the shared size has real blocks (fallocate, or zeros written where the
//       file system has none): a store through the mapping never meets a hole, so a full disk
//       is Grow's ResourceExhausted, never a SIGBUS. Growth allocates before it publishes (I2).
//
// Huge pages (issue 14): every mapped range of an in-process arena, or of a file on tmpfs (a
// shared-memory domain, /dev/shm), is advised MADV_HUGEPAGE; the kernel's THP policy decides
// whether that gives 2 MiB pages (anonymous memory: transparent_hugepage/enabled "always" or
// "madvise"; tmpfs: the mount's huge= option, or shmem_enabled "force"). Advice only: a kernel
// that refuses it changes nothing, and nothing depends on it. Files on disk are not advised
// (their page cache has no huge pages a write mapping could use).
//
// Memory ordering
//  (1) Grow(): release store of the shared size word after the file is extended;
//      synchronises with (2).
//  (2) Refresh(): acquire load of the shared size word before mapping up to it.
//  (3) release store of mapped_size_ after mmap returns; synchronises with (4).
//  (4) acquire load of mapped_size_ in mapped_size() / InBounds().
//  (5) in-process arenas without a size word: release store of anonymous_size_ in Grow, after
//      the range is mapped; synchronises with (6).
//  (6) acquire load of anonymous_size_ in SharedSize().
//
// Thread safety: safe to use from any thread. Grow() is safe from any thread of any process that
// maps the file (serialised by an OFD lock on kGrowLockByte, which the kernel drops if the holder
// dies). That lock lives on the writers' lock file (SetLockFile), not on the mapped file: every
// reader can open the mapped file, and a read lock of theirs would stop every grower. The wait
// for it is bounded (the lock file's timeout): a stopped grower fails others' growth with
// DeadlineExceeded, never hangs them.
#ifndef ATOMAP_SRC_ARENA_ARENA_H_
#define ATOMAP_SRC_ARENA_ARENA_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/offset.h"
#include "common/shared_word.h"

namespace atomap::internal {

class Arena {
 public:
  // Growth happens in steps of at least this many bytes (and at least a quarter of the size).
  static constexpr std::uint64_t kGrowChunk = std::uint64_t{1} << 20;

  // In-process memory: nothing outside this process sees it. Starts `initial_size` long.
  static absl::StatusOr<std::unique_ptr<Arena>> Anonymous(std::uint64_t max_size,
                                                          std::uint64_t initial_size);

  // Maps the open file `fd` (taking ownership; it is closed with the Arena). Maps the file's
  // current length. `path` is used in messages only.
  static absl::StatusOr<std::unique_ptr<Arena>> MapFile(int fd, std::string path,
                                                        std::uint64_t max_size, bool writable);

  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // Binds the shared word that records the domain's size (a field of the header, inside this
  // mapping). Before this, Refresh() asks the kernel for the file's length.
  // REQUIRES: word lies inside the mapping and is 8-byte aligned.
  void BindSizeWord(SharedU64* word) { size_word_ = word; }
  // The writers' lock file (PATH.lock, owned by the caller, open for as long as this Arena) that
  // holds the grow lock, its name for messages, and the longest Grow may wait for the lock.
  // REQUIRES: before any Grow of a file-backed writable arena.
  void SetLockFile(int lock_fd, std::string lock_path, absl::Duration timeout) {
    lock_fd_ = lock_fd;
    lock_path_ = std::move(lock_path);
    lock_timeout_ = timeout;
  }

  std::uint8_t* base() const { return base_; }
  std::uint64_t max_size() const { return max_size_; }
  bool writable() const { return writable_; }
  bool file_backed() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

  std::uint64_t mapped_size() const { return mapped_size_.load(std::memory_order_acquire); }  // (4)

  // The domain's size as published in the shared size word (or the mapped size if unbound).
  std::uint64_t SharedSize() const;

  // REQUIRES: [off, off + sizeof(T)) lies inside the mapping.
  template <class T>
  T* At(Offset off) const {
    return reinterpret_cast<T*>(base_ + off);
  }
  Offset OffsetOf(const void* p) const {
    return static_cast<Offset>(static_cast<const std::uint8_t*>(p) - base_);
  }
  // True if [off, off + len) lies inside what this process has mapped (checked readers use it).
  bool InBounds(Offset off, std::uint64_t len) const {
    const std::uint64_t mapped = mapped_size();
    return off <= mapped && len <= mapped - off;
  }

  // Makes the domain at least `min_size` bytes long and maps it here. ResourceExhausted when
  // min_size exceeds max_size() or the disk is full; the domain is unchanged then.
  // REQUIRES: writable().
  absl::Status Grow(std::uint64_t min_size);

  // Maps whatever another process has grown since the last call. One acquire load when nothing
  // changed, inline for a file domain (every Atom::load calls it).
  absl::Status Refresh() {
    if (size_word_ != nullptr && size_word_->LoadAcquire() <= mapped_size()) {  // (2), (4)
      return absl::OkStatus();
    }
    return RefreshSlow();
  }

 private:
  Arena(std::uint8_t* base, std::uint64_t max_size, int fd, std::string path, bool writable,
        bool huge_pages);
  absl::Status MapUpTo(std::uint64_t size);  // REQUIRES: map_mu_ held
  absl::Status RefreshSlow();
  // Allocates [published, new_size) of the file. REQUIRES: grow lock held; published is the
  // shared size read under it.
  absl::Status ExtendFile(std::uint64_t published, std::uint64_t new_size);
  std::uint64_t GrowTarget(std::uint64_t min_size) const;

  std::uint8_t* const base_;
  const std::uint64_t max_size_;
  const int fd_;  // -1 for anonymous memory
  const std::string path_;
  const bool writable_;
  const bool huge_pages_;  // advise MADV_HUGEPAGE on what MapUpTo maps (see "Huge pages")
  SharedU64* size_word_ = nullptr;
  int lock_fd_ = -1;  // PATH.lock (not owned): where the grow lock lives
  std::string lock_path_;
  absl::Duration lock_timeout_ = absl::Seconds(10);
  // The size of an anonymous arena with no bound size word: written by Grow under map_mu_, read
  // by any thread ((5), (6); process-local, so std::atomic).
  std::atomic<std::uint64_t> anonymous_size_{0};
  std::atomic<std::uint64_t> mapped_size_{0};
  std::mutex map_mu_;  // serialises this process's mmap calls
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_ARENA_ARENA_H_

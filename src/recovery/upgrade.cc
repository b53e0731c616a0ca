// UpgradeDomain: format 2, 3 or 4 to format 5, in place.
//
// From format 3 or 4 (the layout is format 5's, except that format 3's version records are 32
// bytes, which format 5 still reads: hamt/node.h, "Three widths", and that their slots' mailbox
// lines are zero, which format 5 reads as "nothing ever posted"), each step leaving a state a
// rerun converges from:
//   1. open PATH O_RDWR (owner rule), read the header, check it as a format-3 (4) header;
//   2. take the attach byte of PATH.lock exclusively (a try: every format-3 and 4 writer holds it
//      shared; readers hold none, and need none: they only read, and read the first 32 bytes of
//      a record, which mean the same in both formats);
//   3. write format 5's allocator magic (pwrite, fdatasync): the tripwire for an older process
//      that read the old header and is waiting for the attach lock (it checks the magic after);
//   4. rewrite the companions' format_version in place (PATH.lock and PATH.readers keep their
//      inodes, so registered readers stay registered and their pins respected);
//   5. write the new immutable header part [0, 128) with one pwrite, fdatasync, sync the
//      directory: from here on the file is format 5;
//   6. check the companions as a writer's open does (recreating a missing one).
//
// From format 2:
//   1. open PATH O_RDWR (owner rule as for a writable open), read the header, check it as a
//      format-2 header;
//   2. take format 2's attach byte of PATH exclusively (a try: any format-2 handle, read-only
//      ones included, holds it shared);
//   3. create PATH.lock and PATH.readers for the new header's domain_id (leftovers of an
//      interrupted upgrade carry another id: they are replaced);
//   4. write this format's allocator magic (pwrite, fdatasync): the tripwire that makes a
//      format-2 process which read the old header and waited on its blocking attach lock refuse
//      the file when it maps the tables. A crash after it leaves a file format 2 refuses and this
//      build does not yet read; a rerun accepts "format-2 header + this magic" and finishes;
//   5. write the new immutable header part [0, 128) with one pwrite, fdatasync, sync the
//      directory. Until this write the file is format 2 and this build refuses it; after it,
//      format-2 builds refuse it. The mutable words are not touched (a dirty domain stays dirty:
//      the next writer that opens it alone sweeps it, the slot layout being the same).
#include "recovery/upgrade.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "alloc/allocator_state.h"
#include "arena/file_locks.h"
#include "common/heavy_fence.h"
#include "file/companion_file.h"
#include "file/domain_file.h"
#include "file/reader_slot.h"
#include "file/slot_table.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace atomap::internal {
namespace {

// Format 2's lock bytes on PATH (its file_locks.h): attach, and one per participant slot.
constexpr off_t kFormat2AttachByte = kLockSpaceBase + 0;
constexpr off_t Format2SlotByte(std::uint32_t slot) { return kLockSpaceBase + 4096 + slot; }

absl::StatusOr<Header> ReadRawHeader(int fd, const std::string& path) {
  Header header;
  std::memset(static_cast<void*>(&header), 0, sizeof header);
  const ssize_t n = pread(fd, &header, sizeof header, 0);
  if (n < 0) return ErrnoStatus(errno, path, "reading the header");
  if (static_cast<std::size_t>(n) < sizeof header ||
      std::memcmp(header.magic, kDomainMagic, sizeof kDomainMagic) != 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: not an atomap domain (bad magic or shorter than a header)", path));
  }
  return header;
}

absl::Status CheckFormat2(const Header& h, const std::string& path) {
  if (h.format_version != kFormat2) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: header field 'format_version': is %d; upgrade converts format 2 to %d only", path,
        h.format_version, kFormatVersion));
  }
  if (h.checksum != Format2HeaderChecksum(h)) {
    return absl::DataLossError(absl::StrFormat(
        "%s: header field 'checksum': is 0x%016x, format 2's immutable fields hash to 0x%016x "
        "(damaged: not upgraded)",
        path, h.checksum, Format2HeaderChecksum(h)));
  }
  return absl::OkStatus();
}

absl::Status CheckOwner(int fd, const std::string& path, const Options& options, struct stat& st) {
  if (fstat(fd, &st) != 0) return ErrnoStatus(errno, path, "fstat");
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrFormat("%s: not a regular file", path));
  }
  if (st.st_uid == geteuid() || options.allow_foreign_owner) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrFormat(
      "%s: owned by another user (uid %d, mode %04o): only its owner upgrades it (or allow a "
      "trusted owner explicitly: --allow-foreign)",
      path, st.st_uid, st.st_mode & 07777));
}

// How many format-2 participants hold slot locks on PATH (format 2 kept them there).
std::uint32_t Format2Holders(int fd, std::uint32_t slot_capacity) {
  std::uint32_t held = 0;
  for (std::uint32_t slot = 0; slot < slot_capacity && slot < kMaxSlotCapacity; ++slot) {
    if (LockHeldElsewhere(fd, Format2SlotByte(slot)).value_or(false)) ++held;
  }
  return held;
}

// The allocator magic of an older file: its format's (`older`), or this format's where an
// upgrade wrote it and stopped before the header.
absl::StatusOr<std::uint64_t> ReadAllocatorMagic(int fd, const Header& h, std::uint64_t older,
                                                 const std::string& path) {
  std::uint64_t magic = 0;
  const ssize_t n = pread(fd, &magic, sizeof magic, static_cast<off_t>(h.allocator_state_offset));
  if (n < 0) return ErrnoStatus(errno, path, "reading the allocator magic");
  if (n != static_cast<ssize_t>(sizeof magic) || (magic != older && magic != kAllocatorMagic)) {
    return absl::DataLossError(absl::StrFormat(
        "%s: allocator state at offset %d: magic %#x is neither format %d's (%#x) nor format "
        "%d's (%#x) (damaged: not upgraded)",
        path, h.allocator_state_offset, magic, h.format_version, older, kFormatVersion,
        kAllocatorMagic));
  }
  return magic;
}

// This format's allocator magic (the tripwire), durable before the header changes.
absl::Status WriteAllocatorMagic(int fd, const Header& h, const std::string& path) {
  const std::uint64_t magic = kAllocatorMagic;
  const ssize_t n = pwrite(fd, &magic, sizeof magic, static_cast<off_t>(h.allocator_state_offset));
  if (n != static_cast<ssize_t>(sizeof magic)) {
    return ErrnoStatus(n < 0 ? errno : EIO, path, "writing the new allocator magic");
  }
  if (fdatasync(fd) != 0) return ErrnoStatus(errno, path, "fdatasync of the allocator magic");
  return absl::OkStatus();
}

Header CurrentFrom2(const Header& v2, const struct stat& st, const Options& options) {
  Header h = v2;
  h.format_version = kFormatVersion;
  h.domain_id = NewDomainId();
  h.reader_capacity = options.reader_capacity;
  h.reader_mode = options.reader_permissions != 0 ? options.reader_permissions & 07777
                                                  : DerivedRegistryMode(st.st_mode);
  // The upgrade has the domain to itself: no other process pins or scans while this is chosen,
  // as at creation (file/domain_file.cc ParamsFrom).
  h.pin_fence =
      static_cast<std::uint32_t>(HeavyFencesWork() ? PinFenceMode::kLight : PinFenceMode::kFull);
  std::memset(h.reserved_immutable, 0, sizeof h.reserved_immutable);
  h.checksum = HeaderChecksum(h);
  return h;
}

absl::Status WriteImmutablePart(int fd, const Header& h, const std::string& path) {
  const ssize_t n = pwrite(fd, &h, kImmutableHeaderBytes, 0);
  if (n != static_cast<ssize_t>(kImmutableHeaderBytes)) {
    return ErrnoStatus(n < 0 ? errno : EIO, path, "writing the new header");
  }
  if (fdatasync(fd) != 0) return ErrnoStatus(errno, path, "fdatasync of the new header");
  SyncDirectory(ParentDirectory(path));
  return absl::OkStatus();
}

// A file already in this format: its companions, as a writer's open makes them.
absl::StatusOr<UpgradeReport> EnsureCompanionsOf(int fd, const Header& h, const struct stat& st,
                                                 const std::string& path, const Options& options) {
  if (absl::Status s = Validate(h, static_cast<std::uint64_t>(st.st_size), path); !s.ok()) {
    return s;
  }
  absl::StatusOr<Companions> companions = OpenWriterCompanions(
      CompanionBasePath(path, options.follow_symlinks), fd, h, options.lock_timeout);
  if (!companions.ok()) return companions.status();
  companions->Close();
  UpgradeReport report;
  report.path = path;
  report.from_version = report.to_version = kFormatVersion;
  report.already_current = true;
  report.was_dirty = h.state.LoadRelaxed() == static_cast<std::uint32_t>(DomainState::kDirty);
  return report;
}

// Step 4 of the format-3 (4) path: a companion's format_version (at byte 8 of both kinds),
// rewritten in place if the file is this domain's companion of format 3 or 4 (or already
// rewritten). Anything
// else there (missing, another domain's) is left for step 6 to replace.
absl::Status RewriteCompanionFormat(const std::string& companion, const Header& h) {
  const int cfd = open(companion.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (cfd < 0) return errno == ENOENT ? absl::OkStatus() : ErrnoStatus(errno, companion, "open");
  struct {
    char magic[8];
    std::uint32_t format_version;
    std::uint32_t other;
    std::uint64_t domain_id;
  } head;
  static_assert(sizeof head == 24);
  absl::Status status = absl::OkStatus();
  if (pread(cfd, &head, sizeof head, 0) == static_cast<ssize_t>(sizeof head) &&
      head.domain_id == h.domain_id &&
      (head.format_version == kFormat3 || head.format_version == kFormat4 ||
       head.format_version == kFormatVersion) &&
      (std::memcmp(head.magic, kLockFileMagic, 8) == 0 ||
       std::memcmp(head.magic, kRegistryMagic, 8) == 0)) {
    const std::uint32_t version = kFormatVersion;
    if (pwrite(cfd, &version, sizeof version, offsetof(LockFileHeader, format_version)) !=
            static_cast<ssize_t>(sizeof version) ||
        fdatasync(cfd) != 0) {
      status = ErrnoStatus(errno, companion, "rewriting its format_version");
    }
  }
  close(cfd);
  return status;
}

// How many writers hold slot locks on PATH.lock.
std::uint32_t LockFileHolders(int lock_fd, std::uint32_t slot_capacity) {
  std::uint32_t held = 0;
  for (std::uint32_t slot = 0; slot < slot_capacity && slot < kMaxSlotCapacity; ++slot) {
    if (LockHeldElsewhere(lock_fd, SlotLockByte(slot)).value_or(false)) ++held;
  }
  return held;
}

// From format 3 or 4 (`v3`'s format_version; `older_magic` is that format's allocator magic).
absl::StatusOr<UpgradeReport> UpgradeFormat3Or4(int fd, const Header& v3, std::uint64_t older_magic,
                                                const struct stat& st, const std::string& path,
                                                const Options& options) {
  if (v3.checksum != HeaderChecksum(v3)) {
    return absl::DataLossError(absl::StrFormat(
        "%s: header field 'checksum': is 0x%016x, the immutable fields hash to 0x%016x "
        "(damaged: not upgraded)",
        path, v3.checksum, HeaderChecksum(v3)));
  }
  absl::StatusOr<std::uint64_t> magic = ReadAllocatorMagic(fd, v3, older_magic, path);
  if (!magic.ok()) return magic.status();
  Header v4 = v3;
  v4.format_version = kFormatVersion;
  v4.checksum = HeaderChecksum(v4);
  if (absl::Status s = Validate(v4, static_cast<std::uint64_t>(st.st_size), path); !s.ok()) {
    return s;
  }
  const std::string base = CompanionBasePath(path, options.follow_symlinks);
  const std::string lock_path = LockFilePath(base);
  // Step 2. No PATH.lock: no writer can be attached (each holds it open while it lives).
  const int lock_fd = open(lock_path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (lock_fd < 0 && errno != ENOENT) return ErrnoStatus(errno, lock_path, "open");
  absl::Status status = absl::OkStatus();
  if (lock_fd >= 0) {
    absl::StatusOr<bool> alone = TryLockByte(lock_fd, kAttachedLockByte, LockMode::kExclusive);
    if (!alone.ok()) {
      status = alone.status();
    } else if (!*alone) {
      const std::uint32_t writers = LockFileHolders(lock_fd, v3.slot_capacity);
      status = absl::FailedPreconditionError(absl::StrFormat(
          "%s: %s format-%d writers (or someone's lock) hold %s; stop them, then upgrade", path,
          writers == 0 ? std::string("some") : absl::StrCat(writers), v3.format_version,
          lock_path));
    }
  }
  if (status.ok() && *magic != kAllocatorMagic) status = WriteAllocatorMagic(fd, v3, path);
  if (status.ok()) status = RewriteCompanionFormat(lock_path, v3);
  if (status.ok()) status = RewriteCompanionFormat(RegistryFilePath(base), v3);
  if (status.ok()) status = WriteImmutablePart(fd, v4, path);
  absl::StatusOr<UpgradeReport> report = status.ok() ? EnsureCompanionsOf(fd, v4, st, path, options)
                                                     : absl::StatusOr<UpgradeReport>(status);
  if (lock_fd >= 0) close(lock_fd);  // drops the exclusive attach lock, after everything
  if (!report.ok()) return report.status();
  report->from_version = v3.format_version;
  report->already_current = false;
  return report;
}

absl::StatusOr<UpgradeReport> UpgradeOpenFile(int fd, const std::string& path,
                                              const Options& options) {
  struct stat st;
  if (absl::Status s = CheckOwner(fd, path, options, st); !s.ok()) return s;
  absl::StatusOr<Header> v2 = ReadRawHeader(fd, path);
  if (!v2.ok()) return v2.status();
  if (v2->format_version == kFormatVersion) return EnsureCompanionsOf(fd, *v2, st, path, options);
  if (v2->format_version == kFormat3) {
    return UpgradeFormat3Or4(fd, *v2, kFormat3AllocatorMagic, st, path, options);
  }
  if (v2->format_version == kFormat4) {
    return UpgradeFormat3Or4(fd, *v2, kFormat4AllocatorMagic, st, path, options);
  }
  if (absl::Status s = CheckFormat2(*v2, path); !s.ok()) return s;
  absl::StatusOr<std::uint64_t> magic = ReadAllocatorMagic(fd, *v2, kFormat2AllocatorMagic, path);
  if (!magic.ok()) return magic.status();
  absl::StatusOr<bool> alone = TryLockByte(fd, kFormat2AttachByte, LockMode::kExclusive);
  if (!alone.ok()) return alone.status();
  if (!*alone) {
    const std::uint32_t writers = Format2Holders(fd, v2->slot_capacity);
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: %s format-2 processes (or someone's lock) hold %s; stop them, then upgrade", path,
        writers == 0 ? std::string("read-only") : absl::StrCat(writers), path));
  }
  if (options.reader_capacity == 0 || options.reader_capacity > kMaxReaderCapacity) {
    return absl::InvalidArgumentError(
        absl::StrFormat("option reader_capacity is %d, not in [1, %d]", options.reader_capacity,
                        kMaxReaderCapacity));
  }
  const Header v3 = CurrentFrom2(*v2, st, options);
  // Everything but the version rules, as any open checks it.
  if (absl::Status s = Validate(v3, static_cast<std::uint64_t>(st.st_size), path); !s.ok()) {
    return s;
  }
  absl::StatusOr<Companions> companions = OpenWriterCompanions(
      CompanionBasePath(path, options.follow_symlinks), fd, v3, options.lock_timeout);
  if (!companions.ok()) return companions.status();
  companions->Close();
  if (*magic != kAllocatorMagic) {
    if (absl::Status s = WriteAllocatorMagic(fd, *v2, path); !s.ok()) return s;
  }
  if (absl::Status s = WriteImmutablePart(fd, v3, path); !s.ok()) return s;
  UpgradeReport report;
  report.path = path;
  report.from_version = kFormat2;
  report.to_version = kFormatVersion;
  report.was_dirty = v2->state.LoadRelaxed() == static_cast<std::uint32_t>(DomainState::kDirty);
  return report;
}

}  // namespace

std::uint64_t Format2HeaderChecksum(const Header& header) {
  return XXH3_64bits(&header, offsetof(Header, checksum));
}

}  // namespace atomap::internal

namespace atomap {

absl::StatusOr<UpgradeReport> UpgradeDomain(std::string_view path, const Options& options) {
  if (options.kind == DomainKind::kInProcess) {
    return absl::InvalidArgumentError("an in-process domain has no file to upgrade");
  }
  absl::StatusOr<std::string> file_path = internal::DomainFilePath(path, options.kind);
  if (!file_path.ok()) return file_path.status();
  const int fd = open(file_path->c_str(),
                      O_RDWR | O_CLOEXEC | O_NONBLOCK | (options.follow_symlinks ? 0 : O_NOFOLLOW));
  if (fd < 0) return internal::ErrnoStatus(errno, *file_path, "open");
  absl::StatusOr<UpgradeReport> report = internal::UpgradeOpenFile(fd, *file_path, options);
  close(fd);  // drops format 2's attach byte
  return report;
}

}  // namespace atomap

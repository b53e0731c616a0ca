#include "file/companion_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "arena/file_locks.h"
#include "arena/file_space.h"
#include "file/domain_file.h"
#include "file/reader_slot.h"

namespace atomap::internal {
namespace {

// A path can only keep vanishing and reappearing under a hostile neighbour; give up then.
constexpr int kMaxAttempts = 16;
// How long a reader waits for a writer to create a missing registry (a creator between links).
constexpr absl::Duration kReaderWaitForRegistry = absl::Seconds(1);

constexpr int kOpenFlags = O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;

constexpr const char* kAccessAcl = "system.posix_acl_access";

// What differs between the two companions while a writer opens or creates one.
struct CompanionSpec {
  std::string data_path;  // PATH
  std::string path;
  std::string what;  // "the writers' lock file" / "the reader registry"
  std::uint32_t mode;
  std::uint64_t total_bytes;       // allocated at creation (the header's bytes at least)
  const void* head;                // the header written at offset 0
  std::size_t head_bytes;
  std::function<absl::Status(int fd)> vet;    // refusal: not replaced, reported
  std::function<absl::Status(int fd)> check;  // failure: stale, replaced (or repaired)
  bool lock_stale_before_replacing;  // only writers can open a lock file: safe to wait on it
  // Repair a stale one in place instead of replacing it: the registry. Whoever may write it
  // could otherwise make writers split it by damaging its header, and a writer that may not
  // write the directory would be locked out. Its slots are kept (their pins are vetted anyway).
  bool repair_in_place = false;
  std::size_t repaired_head_bytes = 0;  // the immutable prefix of `head` that a repair rewrites
};

absl::Status WriteHead(int fd, const void* data, std::size_t size, const std::string& path) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n =
        pwrite(fd, static_cast<const char*>(data) + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, path, "writing its header");
    done += static_cast<std::size_t>(n);
  }
  return absl::OkStatus();
}

// Reads up to `size` bytes at 0; the rest stays zero.
void ReadHead(int fd, void* data, std::size_t size) {
  std::memset(data, 0, size);
  std::size_t got = 0;
  while (got < size) {
    const ssize_t n =
        pread(fd, static_cast<char*>(data) + got, size - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    got += static_cast<std::size_t>(n);
  }
}

// The companion of `spec`, complete and synced, in an unnamed file beside its path. Owner and
// group follow PATH's (`data`) where this process may set them: a root writer of a user's domain
// makes companions that user owns, and group bits mean PATH's group.
absl::StatusOr<UnnamedFile> Build(const CompanionSpec& spec, const struct stat& data) {
  // A companion another user made would fail every later owner check (VetCompanion).
  if (geteuid() != 0 && geteuid() != data.st_uid) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: %s is missing or stale, and only the domain's owner (uid %d) or root may create it "
        "(this process runs as uid %d): have the owner open the domain (or run atomap upgrade) "
        "first",
        spec.path, spec.what, data.st_uid, geteuid()));
  }
  absl::StatusOr<UnnamedFile> file =
      MakeUnnamedFile(ParentDirectory(spec.path), spec.mode, spec.path);
  if (!file.ok()) return file.status();
  const auto fail = [&](absl::Status s) {
    file->Discard();
    return s;
  };
  (void)fchown(file->fd, geteuid() == 0 ? data.st_uid : static_cast<uid_t>(-1), data.st_gid);
  // An unnamed file inherits the directory's default ACL, which could let a reader open
  // PATH.lock: the mode alone must say who may.
  if (fremovexattr(file->fd, kAccessAcl) != 0 && errno != ENODATA && errno != ENOTSUP) {
    return fail(ErrnoStatus(errno, spec.path, "removing the inherited ACL"));
  }
  if (fchmod(file->fd, spec.mode) != 0) return fail(ErrnoStatus(errno, spec.path, "fchmod"));
  if (absl::Status s =
          AllocateFileRange(file->fd, 0, spec.total_bytes, spec.path,
                            absl::StrFormat("creating %s (%d bytes)", spec.what, spec.total_bytes),
                            ZeroFill::kAllowed);
      !s.ok()) {
    return fail(s);
  }
  if (absl::Status s = WriteHead(file->fd, spec.head, spec.head_bytes, spec.path); !s.ok()) {
    return fail(s);
  }
  if (fsync(file->fd) != 0) return fail(ErrnoStatus(errno, spec.path, "fsync"));
  return file;
}

bool SameInode(int fd, const std::string& path) {
  struct stat open_st, path_st;
  return fstat(fd, &open_st) == 0 && lstat(path.c_str(), &path_st) == 0 &&
         open_st.st_dev == path_st.st_dev && open_st.st_ino == path_st.st_ino;
}

bool PathNames(const std::string& path, const struct stat& data) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && st.st_dev == data.st_dev && st.st_ino == data.st_ino;
}

// Replaces the stale companion open as `stale` (closed here). Returns the new one's fd, or -1
// when another writer replaced it first (the caller opens again).
absl::StatusOr<int> ReplaceStale(const CompanionSpec& spec, const struct stat& data, int stale,
                                 absl::Duration lock_timeout) {
  if (spec.lock_stale_before_replacing) {
    // Of writers finding the same leftover, one replaces it; the others wait, then find the
    // path naming another inode and open that.
    if (absl::Status s = LockByteWithin(stale, kReplaceLockByte, LockMode::kExclusive,
                                        absl::Now() + lock_timeout, spec.path, "replace lock");
        !s.ok()) {
      close(stale);
      return s;
    }
  }
  if (!SameInode(stale, spec.path)) {
    close(stale);
    return -1;
  }
  // Else a writer of a new file at PATH might replace that domain's live companion with one for
  // ours (by then a deleted file).
  if (!PathNames(spec.data_path, data)) {
    close(stale);
    return absl::AbortedError(
        absl::StrFormat("%s was replaced while it was being opened; open again", spec.data_path));
  }
  absl::StatusOr<UnnamedFile> fresh = Build(spec, data);
  if (!fresh.ok()) {
    close(stale);
    return fresh.status();
  }
  absl::StatusOr<bool> replaced =
      ReplaceWithUnnamedFile(*fresh, spec.path, "replacing a stale one");
  close(stale);  // drops the replace lock
  if (!replaced.ok() || !*replaced) {
    fresh->Discard();
    if (!replaced.ok()) return replaced.status();
    return -1;  // an opener found the name free for a moment and linked its own: use that one
  }
  SyncDirectory(ParentDirectory(spec.path));
  return fresh->fd;
}

// Rewrites the immutable head of the stale companion `fd` and allocates it to full size.
// REQUIRES: the caller serialises repairs (writers hold kReplaceLockByte of PATH.lock).
absl::StatusOr<int> RepairInPlace(const CompanionSpec& spec, int fd) {
  const auto fail = [fd](absl::Status s) {
    close(fd);
    return s;
  };
  struct stat st;
  if (fstat(fd, &st) != 0) return fail(ErrnoStatus(errno, spec.path, "fstat"));
  if (static_cast<std::uint64_t>(st.st_size) < spec.total_bytes) {
    const auto size = static_cast<std::uint64_t>(st.st_size);
    // Past the old end nobody maps anything: zeros there are safe.
    if (absl::Status s = AllocateFileRange(
            fd, size, spec.total_bytes - size, spec.path,
            absl::StrFormat("repairing %s (%d bytes)", spec.what, spec.total_bytes),
            ZeroFill::kAllowed);
        !s.ok()) {
      return fail(s);
    }
  }
  if (absl::Status s = WriteHead(fd, spec.head, spec.repaired_head_bytes, spec.path); !s.ok()) {
    return fail(s);
  }
  if (fsync(fd) != 0) return fail(ErrnoStatus(errno, spec.path, "fsync"));
  if (absl::Status s = spec.check(fd); !s.ok()) return fail(s);
  return fd;
}

// A writer's open of one companion: opened, created, or replaced; vetted and checked.
absl::StatusOr<int> EnsureCompanion(const CompanionSpec& spec, const struct stat& data,
                                    absl::Duration lock_timeout) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    const int fd = open(spec.path.c_str(), O_RDWR | kOpenFlags);
    if (fd < 0) {
      if (errno != ENOENT) return ErrnoStatus(errno, spec.path, "open");
      absl::StatusOr<UnnamedFile> fresh = Build(spec, data);
      if (!fresh.ok()) return fresh.status();
      absl::StatusOr<bool> won = LinkUnnamedFile(*fresh, spec.path, "linking it into place");
      if (won.ok() && *won) {
        SyncDirectory(ParentDirectory(spec.path));
        return fresh->fd;
      }
      fresh->Discard();
      if (!won.ok()) return won.status();
      continue;  // another writer linked one first: open theirs
    }
    if (absl::Status s = spec.vet(fd); !s.ok()) {
      close(fd);
      return s;
    }
    if (spec.check(fd).ok()) return fd;
    if (spec.repair_in_place) return RepairInPlace(spec, fd);
    absl::StatusOr<int> replaced = ReplaceStale(spec, data, fd, lock_timeout);
    if (!replaced.ok() || *replaced >= 0) return replaced;
  }
  return absl::AbortedError(absl::StrFormat(
      "%s: the path kept changing over %d attempts to open it", spec.path, kMaxAttempts));
}

LockFileHeader MakeLockFileHeader(const Header& header) {
  LockFileHeader head;
  std::memset(&head, 0, sizeof head);
  std::memcpy(head.magic, kLockFileMagic, sizeof kLockFileMagic);
  head.format_version = kFormatVersion;
  head.domain_id = header.domain_id;
  return head;
}

RegistryHeader MakeRegistryHeader(const Header& header) {
  RegistryHeader head;
  std::memset(static_cast<void*>(&head), 0, sizeof head);
  std::memcpy(head.magic, kRegistryMagic, sizeof kRegistryMagic);
  head.format_version = kFormatVersion;
  head.slot_bytes = kReaderSlotBytes;
  head.domain_id = header.domain_id;
  head.reader_capacity = header.reader_capacity;
  return head;
}

std::uint32_t RegistryModeOf(const Header& header, const struct stat& data) {
  return header.reader_mode != 0 ? header.reader_mode : DerivedRegistryMode(data.st_mode);
}

// A companion is a regular file owned by PATH's owner; anything else (a planted file, another
// user's file) is refused, never treated as stale. The link count is not asked: a creator
// without O_TMPFILE links its file under a temporary name first, so a racing opener may see two.
absl::Status VetCompanion(const struct stat& st, const struct stat& data, const std::string& path,
                          std::string_view what) {
  if (S_ISREG(st.st_mode) && st.st_uid == data.st_uid) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrFormat(
      "%s: %s is %s owned by uid %d; it must be a regular file owned by the domain's owner (uid "
      "%d): remove it (with no process attached) and open the domain as its owner",
      path, what, S_ISREG(st.st_mode) ? "a regular file" : "not a regular file", st.st_uid,
      data.st_uid));
}

absl::Status VetRegistry(int fd, const struct stat& data, const std::string& path) {
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoStatus(errno, path, "fstat");
  return VetCompanion(st, data, path, "the reader registry");
}

// PATH.lock's owner must be PATH's, and its mode may grant nobody who may not write PATH: else
// whoever can open it can take (and hold) the writers' locks.
absl::Status VetLockFile(int fd, const struct stat& data, const std::string& path) {
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoStatus(errno, path, "fstat");
  if (absl::Status s = VetCompanion(st, data, path, "the writers' lock file"); !s.ok()) return s;
  if (fgetxattr(fd, kAccessAcl, nullptr, 0) > 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: the writers' lock file carries an access ACL, which may let someone who may not "
        "write the domain hold the writers' locks (fix: setfacl -b %s)",
        path, path));
  }
  if ((st.st_mode & (S_IRGRP | S_IWGRP)) != 0 && st.st_gid != data.st_gid) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: the writers' lock file grants group gid %d, the domain's group is gid %d (fix: "
        "chgrp %d %s)",
        path, st.st_gid, data.st_gid, data.st_gid, path));
  }
  const std::uint32_t allowed = LockFileMode(data.st_mode);
  const std::uint32_t mode = st.st_mode & 07777;
  if (!S_ISREG(st.st_mode) || st.st_uid != data.st_uid || (mode & ~allowed) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: the writers' lock file is %s, owned by uid %d, mode %04o; it must be a regular "
        "file owned by the domain's owner (uid %d) with no permission for anyone who may not "
        "write the domain, or they could hold the writers' locks (fix: chown %d %s; chmod %04o "
        "%s)",
        path, S_ISREG(st.st_mode) ? "a regular file" : "not a regular file", st.st_uid, mode,
        data.st_uid, data.st_uid, path, allowed, path));
  }
  return absl::OkStatus();
}

CompanionSpec LockSpec(const std::string& file_path, const Header& header, const struct stat& data,
                       const LockFileHeader& head) {
  CompanionSpec spec;
  spec.data_path = file_path;
  spec.path = LockFilePath(file_path);
  spec.what = "the writers' lock file";
  spec.mode = LockFileMode(data.st_mode);
  spec.total_bytes = kLockFileBytes;
  spec.head = &head;
  spec.head_bytes = sizeof head;
  spec.vet = [&data, path = spec.path](int fd) { return VetLockFile(fd, data, path); };
  spec.check = [&header, path = spec.path](int fd) { return CheckLockFile(fd, header, path); };
  spec.lock_stale_before_replacing = true;
  return spec;
}

CompanionSpec RegistrySpec(const std::string& file_path, const Header& header,
                           const struct stat& data, const RegistryHeader& head) {
  CompanionSpec spec;
  spec.data_path = file_path;
  spec.path = RegistryFilePath(file_path);
  spec.what = "the reader registry";
  spec.mode = RegistryModeOf(header, data);
  spec.total_bytes = RegistryBytes(header.reader_capacity);
  spec.head = &head;
  spec.head_bytes = sizeof head;
  spec.vet = [&data, path = spec.path](int fd) { return VetRegistry(fd, data, path); };
  spec.check = [&header, path = spec.path](int fd) { return CheckRegistry(fd, header, path); };
  spec.repair_in_place = true;
  spec.repaired_head_bytes = offsetof(RegistryHeader, high_water);
  // Readers can open the registry: a writer never waits on a lock of it. Writers creating or
  // replacing it are serialised by kReplaceLockByte of PATH.lock instead.
  spec.lock_stale_before_replacing = false;
  return spec;
}

absl::Status Stale(const std::string& path, std::string_view what) {
  return absl::FailedPreconditionError(
      absl::StrFormat("%s: %s: a stale one, left by an earlier domain at this path (a writer "
                      "replaces or repairs it "
                      "when it opens the domain)",
                      path, what));
}

absl::Status RegistryPermissionDenied(const std::string& path) {
  struct stat st;
  std::string who = "(cannot stat it)";
  if (stat(path.c_str(), &st) == 0) {
    who = absl::StrFormat("(owner uid %d, group gid %d, mode %04o)", st.st_uid, st.st_gid,
                          st.st_mode & 07777);
  }
  return absl::PermissionDeniedError(absl::StrFormat(
      "%s %s: a reader needs read-write permission on %s (not on the domain file); ask the "
      "domain's owner",
      path, who, path));
}

bool ReadOnlyFileSystem(const std::string& path) {
  struct statvfs vfs;
  return statvfs(path.c_str(), &vfs) == 0 && (vfs.f_flag & ST_RDONLY) != 0;
}

// A read-only mount does not mean nobody writes: a container's `-v x:ro` bind mount shares the
// file with writers on an rw mount, and they would free what an unregistered reader reads.
absl::Status RegistryOnReadOnlyMount(const std::string& path) {
  return absl::FailedPreconditionError(absl::StrFormat(
      "%s: on a read-only file system or mount: a reader must be able to write %s; for a file "
      "nobody writes, set Options::unregistered_reads (atomap --unregistered)",
      path, path));
}

// A reader's open of PATH.readers: its descriptor.
absl::StatusOr<int> OpenRegistryAsReader(const std::string& path) {
  const absl::Time deadline = absl::Now() + kReaderWaitForRegistry;
  absl::Duration pause = absl::Microseconds(100);
  for (;;) {
    const int fd = open(path.c_str(), O_RDWR | kOpenFlags);
    if (fd >= 0) return fd;
    if (errno == EROFS) return RegistryOnReadOnlyMount(path);
    if (errno == EACCES || errno == EPERM) return RegistryPermissionDenied(path);
    if (errno != ENOENT) return ErrnoStatus(errno, path, "open");
    if (ReadOnlyFileSystem(ParentDirectory(path))) return RegistryOnReadOnlyMount(path);
    const absl::Time now = absl::Now();
    if (now >= deadline) {
      return absl::NotFoundError(absl::StrFormat(
          "%s: the reader registry is missing (a writer creates it when it opens the domain)",
          path));
    }
    absl::SleepFor(std::min(pause, deadline - now));
    pause = std::min(pause * 2, absl::Milliseconds(50));
  }
}

absl::StatusOr<struct stat> StatData(int data_fd, const std::string& file_path) {
  struct stat data;
  if (fstat(data_fd, &data) != 0) return ErrnoStatus(errno, file_path, "fstat");
  return data;
}

// How long a reader waits before its one retry of an invalid registry (a writer may be
// repairing it under the replace lock right now).
constexpr absl::Duration kReaderRetryInvalidRegistry = absl::Milliseconds(50);

// PATH.readers opened, vetted (refused for good) and checked (retried once, then the error).
absl::StatusOr<int> OpenCheckedRegistryAsReader(const std::string& file_path,
                                                const struct stat& data, const Header& header) {
  const std::string path = RegistryFilePath(file_path);
  absl::Status last;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (attempt > 0) absl::SleepFor(kReaderRetryInvalidRegistry);
    absl::StatusOr<int> fd = OpenRegistryAsReader(path);
    if (!fd.ok()) return fd.status();
    if (absl::Status s = VetRegistry(*fd, data, path); !s.ok()) {
      close(*fd);
      return s;
    }
    last = CheckRegistry(*fd, header, path);
    if (last.ok()) return *fd;
    close(*fd);
  }
  return last;
}

}  // namespace

std::string LockFilePath(const std::string& file_path) { return file_path + ".lock"; }
std::string RegistryFilePath(const std::string& file_path) { return file_path + ".readers"; }

std::string CompanionBasePath(const std::string& file_path, bool follow_symlinks) {
  if (!follow_symlinks) return file_path;
  char* resolved = realpath(file_path.c_str(), nullptr);
  if (resolved == nullptr) return file_path;
  std::string base(resolved);
  free(resolved);
  return base;
}

std::uint32_t LockFileMode(std::uint32_t data_mode) {
  std::uint32_t mode = 0;
  if (data_mode & S_IWUSR) mode |= S_IRUSR | S_IWUSR;
  if (data_mode & S_IWGRP) mode |= S_IRGRP | S_IWGRP;
  if (data_mode & S_IWOTH) mode |= S_IROTH | S_IWOTH;
  return mode;
}

std::uint32_t DerivedRegistryMode(std::uint32_t data_mode) {
  std::uint32_t mode = S_IRUSR | S_IWUSR;
  if (data_mode & (S_IRGRP | S_IWGRP)) mode |= S_IRGRP | S_IWGRP;
  if (data_mode & (S_IROTH | S_IWOTH)) mode |= S_IROTH | S_IWOTH;
  return mode;
}

std::uint32_t RegistryModeFor(const Options& options) {
  return options.reader_permissions != 0 ? options.reader_permissions & 07777
                                         : DerivedRegistryMode(options.permissions);
}

void Companions::Close() {
  if (lock_fd >= 0) close(lock_fd);
  if (registry_fd >= 0) close(registry_fd);
  lock_fd = registry_fd = -1;
  DiscardUnpublishedName(lock_temp_name);
  DiscardUnpublishedName(registry_temp_name);
}

absl::Status CheckLockFile(int fd, const Header& header, const std::string& path) {
  LockFileHeader head;
  ReadHead(fd, &head, sizeof head);
  if (std::memcmp(head.magic, kLockFileMagic, sizeof kLockFileMagic) != 0) {
    return Stale(path, "not an atomap lock file (bad magic)");
  }
  if (head.format_version != kFormatVersion || head.domain_id != header.domain_id) {
    return Stale(path, absl::StrFormat("format %d, domain id %016x; the domain's is %016x",
                                       head.format_version, head.domain_id, header.domain_id));
  }
  return absl::OkStatus();
}

absl::Status CheckRegistry(int fd, const Header& header, const std::string& path) {
  RegistryHeader head;
  ReadHead(fd, &head, offsetof(RegistryHeader, high_water));
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoStatus(errno, path, "fstat");
  if (std::memcmp(head.magic, kRegistryMagic, sizeof kRegistryMagic) != 0) {
    return Stale(path, "not an atomap reader registry (bad magic)");
  }
  if (head.format_version != kFormatVersion || head.slot_bytes != kReaderSlotBytes ||
      head.domain_id != header.domain_id || head.reader_capacity != header.reader_capacity) {
    return Stale(path,
                 absl::StrFormat("format %d, slot_bytes %d, domain id %016x, capacity %d; "
                                 "the domain has domain id %016x, capacity %d",
                                 head.format_version, head.slot_bytes, head.domain_id,
                                 head.reader_capacity, header.domain_id, header.reader_capacity));
  }
  if (static_cast<std::uint64_t>(st.st_size) < RegistryBytes(header.reader_capacity)) {
    return Stale(path, absl::StrFormat("%d bytes, shorter than the %d its capacity needs",
                                       st.st_size, RegistryBytes(header.reader_capacity)));
  }
  return absl::OkStatus();
}

absl::StatusOr<Companions> OpenWriterCompanions(const std::string& file_path, int data_fd,
                                                const Header& header, absl::Duration lock_timeout) {
  absl::StatusOr<struct stat> data = StatData(data_fd, file_path);
  if (!data.ok()) return data.status();
  Companions companions;
  const LockFileHeader lock_head = MakeLockFileHeader(header);
  absl::StatusOr<int> lock_fd =
      EnsureCompanion(LockSpec(file_path, header, *data, lock_head), *data, lock_timeout);
  if (!lock_fd.ok()) return lock_fd.status();
  companions.lock_fd = *lock_fd;
  // Writers create or replace the registry one at a time (it has no lock of its own to use).
  if (absl::Status s =
          LockByteWithin(companions.lock_fd, kReplaceLockByte, LockMode::kExclusive,
                         absl::Now() + lock_timeout, LockFilePath(file_path), "replace lock");
      !s.ok()) {
    companions.Close();
    return s;
  }
  const RegistryHeader registry_head = MakeRegistryHeader(header);
  absl::StatusOr<int> registry_fd =
      EnsureCompanion(RegistrySpec(file_path, header, *data, registry_head), *data, lock_timeout);
  (void)UnlockByte(companions.lock_fd, kReplaceLockByte);
  if (!registry_fd.ok()) {
    companions.Close();
    return registry_fd.status();
  }
  companions.registry_fd = *registry_fd;
  return companions;
}

absl::StatusOr<Companions> OpenReaderCompanions(const std::string& file_path, int data_fd,
                                                const Header& header, bool unregistered_reads) {
  Companions companions;
  companions.unregistered = unregistered_reads;
  if (!unregistered_reads) {
    absl::StatusOr<struct stat> data = StatData(data_fd, file_path);
    if (!data.ok()) return data.status();
    absl::StatusOr<int> registry_fd = OpenCheckedRegistryAsReader(file_path, *data, header);
    if (!registry_fd.ok()) return registry_fd.status();
    companions.registry_fd = *registry_fd;
  }
  // Liveness probes only (F_OFD_GETLK); most readers may not open it at all, by design.
  const int lock_fd = open(LockFilePath(file_path).c_str(), O_RDONLY | kOpenFlags);
  if (lock_fd >= 0 && CheckLockFile(lock_fd, header, LockFilePath(file_path)).ok()) {
    companions.lock_fd = lock_fd;
  } else if (lock_fd >= 0) {
    close(lock_fd);
  }
  return companions;
}

absl::StatusOr<Companions> BuildUnpublishedCompanions(const std::string& file_path, int data_fd,
                                                      const Header& header) {
  absl::StatusOr<struct stat> data = StatData(data_fd, file_path);
  if (!data.ok()) return data.status();
  const LockFileHeader lock_head = MakeLockFileHeader(header);
  const RegistryHeader registry_head = MakeRegistryHeader(header);
  absl::StatusOr<UnnamedFile> lock = Build(LockSpec(file_path, header, *data, lock_head), *data);
  if (!lock.ok()) return lock.status();
  absl::StatusOr<UnnamedFile> registry =
      Build(RegistrySpec(file_path, header, *data, registry_head), *data);
  if (!registry.ok()) {
    lock->Discard();
    return registry.status();
  }
  Companions companions;
  companions.lock_fd = lock->fd;
  companions.lock_temp_name = std::move(lock->name);
  companions.registry_fd = registry->fd;
  companions.registry_temp_name = std::move(registry->name);
  return companions;
}

absl::Status PublishCompanions(Companions& companions, const std::string& file_path) {
  // Nothing is at file_path: whatever is at the companions' names is a leftover, replaced.
  UnnamedFile lock{companions.lock_fd, std::move(companions.lock_temp_name)};
  UnnamedFile registry{companions.registry_fd, std::move(companions.registry_temp_name)};
  companions.lock_temp_name.clear();
  companions.registry_temp_name.clear();
  for (auto [file, path] : {std::pair{&lock, LockFilePath(file_path)},
                            std::pair{&registry, RegistryFilePath(file_path)}}) {
    absl::StatusOr<bool> placed = ReplaceWithUnnamedFile(*file, path, "linking it into place");
    if (!placed.ok()) return placed.status();
    if (!*placed) {
      return absl::AbortedError(absl::StrFormat(
          "%s: another process created it while this one was publishing %s; nothing published",
          path, file_path));
    }
  }
  SyncDirectory(ParentDirectory(file_path));
  return absl::OkStatus();
}

}  // namespace atomap::internal

#include "file/domain_file.h"
#include "file/companion_file.h"
#include "file/initial_prefix.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "arena/file_space.h"
#include "common/hash.h"
#include "common/heavy_fence.h"

namespace atomap::internal {
namespace {

// A path can only keep vanishing and reappearing under a hostile neighbour; give up then.
constexpr int kMaxOpenAttempts = 16;
constexpr std::size_t kMaxSharedMemoryName = 200;

std::atomic<void (*)()> before_publish_hook{nullptr};
std::atomic<bool> force_named_temp{false};
std::atomic<HashKind> created_hash_kind{HashKind::kXxh3};

// Reads and validates the header of the open file `fd`; writes nothing.
absl::StatusOr<Header> ReadHeader(int fd, const std::string& path) {
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoStatus(errno, path, "fstat");
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: not a regular file, so not an atomap domain", path));
  }
  const auto length = static_cast<std::uint64_t>(st.st_size);
  Header header;
  std::memset(&header, 0, sizeof header);
  const std::size_t want =
      length < sizeof header ? static_cast<std::size_t>(length) : sizeof header;
  std::size_t got = 0;
  while (got < want) {
    const ssize_t n =
        pread(fd, reinterpret_cast<char*>(&header) + got, want - got, static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus(errno, path, "reading the header");
    if (n == 0) break;  // shrank under us: validated as truncated below
    got += static_cast<std::size_t>(n);
  }
  // The length is taken again after the header was read: a grower extends the file before it
  // publishes a larger size (Arena I2), so this length covers the size the header holds.
  if (got == want && fstat(fd, &st) != 0) return ErrnoStatus(errno, path, "fstat");
  const std::uint64_t length_after = got < want ? got : static_cast<std::uint64_t>(st.st_size);
  if (absl::Status s = Validate(header, length_after, path); !s.ok()) return s;
  return header;
}

absl::Status WriteAll(int fd, const void* data, std::size_t size, const std::string& path) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n =
        pwrite(fd, static_cast<const char*>(data) + done, size - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return ErrnoStatus(errno, path, "writing the new domain's header and allocator state");
    done += static_cast<std::size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status InitializeDomain(const UnnamedFile& temp, const Header& header,
                              std::uint32_t permissions, const std::string& path) {
  // Exactly the requested mode, whatever the umask.
  if (fchmod(temp.fd, permissions & 07777) != 0) return ErrnoStatus(errno, path, "fchmod");
  // Every byte of the new domain (header, tables: all outside the data region) gets real blocks
  // before anything else, never a hole (Arena I4): a first store into a slot or an atom record
  // on a full disk would otherwise be a SIGBUS. The regions are zero, as new bytes read.
  if (absl::Status s =
          AllocateFileRange(temp.fd, 0, header.size.LoadRelaxed(), path,
                            absl::StrFormat("creating the domain's %d bytes of header and tables",
                                            header.size.LoadRelaxed()),
                            ZeroFill::kAllowed);
      !s.ok()) {
    return s;
  }
  const std::unique_ptr<InitialPrefix> prefix = MakeInitialPrefix(header);
  if (absl::Status s = WriteAll(temp.fd, prefix->bytes, sizeof prefix->bytes, path); !s.ok()) {
    return s;
  }
  if (fsync(temp.fd) != 0) return ErrnoStatus(errno, path, "fsync of the new domain");
  return absl::OkStatus();
}

// The rule of Options::allow_foreign_owner: a writable open of a file owned by another user is
// refused. Checked on the open descriptor, so it is the file that will be mapped.
absl::Status CheckOwner(int fd, const std::string& path, const Options& options) {
  if (options.read_only || options.allow_foreign_owner) return absl::OkStatus();
  struct stat st;
  if (fstat(fd, &st) != 0) return ErrnoStatus(errno, path, "fstat");
  const uid_t self = geteuid();
  if (st.st_uid == self) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrFormat(
      "%s: owned by another user (uid %d, mode %04o), not by this process's (uid %d): refusing "
      "to open it for writing, since its owner can read and change everything written there; "
      "open it read-only, or allow a trusted owner explicitly (Options::allow_foreign_owner, "
      "atomap --allow-foreign)",
      path, st.st_uid, st.st_mode & 07777, self));
}

// A writable open of an existing file: gives every byte of the domain real blocks where there
// are holes (a file created by an older version that left its tables sparse, or copied
// sparsely), so that claiming a slot, creating an atom or reusing a free block on a full disk is
// this error rather than a SIGBUS. Allocating what is already allocated changes no byte, so this
// is safe beside live writers. Without fallocate nothing can be done safely here (zeros written
// now could overwrite another process's stores).
absl::Status BackHoles(int fd, const Header& header, const std::string& path) {
  // One fallocate of the whole domain, holes or not: over blocks that are all allocated it
  // changes nothing and costs ~20 us for 1 GiB. A SEEK_HOLE probe first cost more than that: on
  // ext4 a fallocated block never written reads as a hole, so the probe "found" one in every
  // domain that had grown, walking the page cache for 1.2 ms at every open of a 1 GiB domain.
  const std::uint64_t size = header.size.LoadRelaxed();
  return AllocateFileRange(fd, 0, size, path,
                           absl::StrFormat("backing the domain's %d bytes with blocks", size),
                           ZeroFill::kNever);
}

// An existing domain file just opened: its owner, its header, and (for writing) its tables' blocks.
absl::StatusOr<Header> VetExisting(int fd, const std::string& path, const Options& options) {
  if (absl::Status s = CheckOwner(fd, path, options); !s.ok()) return s;
  absl::StatusOr<Header> header = ReadHeader(fd, path);
  if (!header.ok() || options.read_only) return header;
  if (absl::Status s = BackHoles(fd, *header, path); !s.ok()) return s;
  return header;
}

// The complete, synced new domain for `path`, in a file not yet linked there.
absl::StatusOr<UnnamedFile> Build(const std::string& path, const Options& options, Header& header) {
  const HeaderParams params = ParamsFrom(options);
  if (absl::Status s = CheckParams(params); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", s.message()));
  }
  header = MakeHeader(params);
  absl::StatusOr<UnnamedFile> temp =
      MakeUnnamedFile(ParentDirectory(path), options.permissions, "the new domain");
  if (!temp.ok()) return temp.status();
  if (absl::Status s = InitializeDomain(*temp, header, options.permissions, path); !s.ok()) {
    temp->Discard();
    return s;
  }
  return temp;
}

// Links the complete `temp` at `path` and makes the name durable; `temp` has no name after it,
// whatever happens. Returns false if something is already there.
absl::StatusOr<bool> PublishAndSync(UnnamedFile& temp, const std::string& path) {
  if (void (*hook)() = before_publish_hook.load(std::memory_order_acquire)) hook();
  absl::StatusOr<bool> won = LinkUnnamedFile(temp, path, "linking the new domain into place");
  if (won.ok() && *won) SyncDirectory(ParentDirectory(path));
  return won;
}

// Creates the domain at `path`. Returns nullopt if another creator got there first.
absl::StatusOr<std::optional<DomainFile>> Create(const std::string& path, const Options& options) {
  DomainFile file;
  absl::StatusOr<UnnamedFile> temp = Build(path, options, file.header);
  if (!temp.ok()) return temp.status();
  absl::StatusOr<bool> won = PublishAndSync(*temp, path);
  if (!won.ok() || !*won) {
    temp->Discard();
    if (!won.ok()) return won.status();
    return std::optional<DomainFile>();
  }
  file.fd = temp->fd;
  file.created = true;
  return std::optional<DomainFile>(file);
}

// What Options::error_if_exists answers when something is at `path`.
absl::Status PathExists(const std::string& path) {
  return absl::AlreadyExistsError(absl::StrFormat("%s: already exists", path));
}

// Options::error_if_exists: the path is never opened (an open is an event others may watch, and
// a close drops this process's POSIX locks on the file); the link of the new file decides races.
absl::StatusOr<DomainFile> CreateExclusively(const std::string& path, const Options& options) {
  if (options.read_only || !options.create_if_missing) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s: error_if_exists asks to create, which %s forbids", path,
                        options.read_only ? "read_only" : "create_if_missing off"));
  }
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) return PathExists(path);
  absl::StatusOr<std::optional<DomainFile>> created = Create(path, options);
  if (!created.ok()) return created.status();
  if (!created->has_value()) return PathExists(path);  // another creator won the link
  return **created;
}

bool IsSharedMemoryNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
}

}  // namespace

absl::Status ErrnoStatus(int err, std::string_view path, std::string_view what) {
  const std::string message = absl::StrFormat("%s: %s: %s", path, what, std::strerror(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(message);
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
      return absl::ResourceExhaustedError(message);
    default:
      return absl::InternalError(message);
  }
}

std::string ParentDirectory(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

void SyncDirectory(const std::string& dir) {
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // the file is complete either way; only its name's durability is at stake
  (void)fsync(fd);
  close(fd);
}

void UnnamedFile::Discard() {
  if (!name.empty()) unlink(name.c_str());
  if (fd >= 0) close(fd);
  fd = -1;
  name.clear();
}

absl::StatusOr<UnnamedFile> MakeUnnamedFile(const std::string& dir, std::uint32_t permissions,
                                            std::string_view what) {
  UnnamedFile temp;
  if (!force_named_temp.load(std::memory_order_relaxed)) {
    temp.fd = open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, permissions & 07777);
    if (temp.fd >= 0) return temp;
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) {
      return ErrnoStatus(errno, dir,
                         absl::StrCat("creating an unnamed file for ", std::string(what)));
    }
  }
  std::string pattern = dir + "/.atomap-new-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  temp.fd = mkostemp(buf.data(), O_CLOEXEC);
  if (temp.fd < 0) {
    return ErrnoStatus(errno, dir,
                       absl::StrCat("creating a temporary file for ", std::string(what)));
  }
  temp.name = buf.data();
  return temp;
}

namespace {

// Gives the unnamed file `fd` the name `name` (linkat of the descriptor).
int LinkDescriptor(int fd, const std::string& name) {
  int rc = linkat(fd, "", AT_FDCWD, name.c_str(), AT_EMPTY_PATH);
  if (rc != 0 && (errno == ENOENT || errno == EPERM)) {
    // AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc/self/fd/N works for everyone.
    const std::string self = absl::StrCat("/proc/self/fd/", fd);
    rc = linkat(AT_FDCWD, self.c_str(), AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW);
  }
  return rc;
}

}  // namespace

absl::StatusOr<bool> LinkUnnamedFile(UnnamedFile& temp, const std::string& path,
                                     std::string_view what) {
  const int rc =
      !temp.name.empty() ? link(temp.name.c_str(), path.c_str()) : LinkDescriptor(temp.fd, path);
  const int err = errno;
  if (!temp.name.empty()) {
    unlink(temp.name.c_str());
    temp.name.clear();
  }
  if (rc == 0) return true;
  if (err == EEXIST) return false;
  return ErrnoStatus(err, path, what);
}

absl::StatusOr<bool> ReplaceWithUnnamedFile(UnnamedFile& temp, const std::string& path,
                                            std::string_view what) {
  if (!temp.name.empty()) {
    const int rc = rename(temp.name.c_str(), path.c_str());
    const int err = errno;
    if (rc != 0) unlink(temp.name.c_str());
    temp.name.clear();
    if (rc != 0) return ErrnoStatus(err, path, what);
    return true;
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoStatus(errno, path, what);
  return LinkUnnamedFile(temp, path, what);
}

absl::StatusOr<DomainFile> CreateUnpublishedDomainFile(const std::string& path,
                                                       const Options& options,
                                                       std::string& temp_name) {
  struct stat st;
  if (options.error_if_exists && lstat(path.c_str(), &st) == 0) return PathExists(path);
  DomainFile file;
  absl::StatusOr<UnnamedFile> temp = Build(path, options, file.header);
  if (!temp.ok()) return temp.status();
  file.fd = temp->fd;
  file.created = true;
  temp_name = std::move(temp->name);
  return file;
}

absl::Status PublishDomainFile(int fd, std::string& temp_name, const std::string& path) {
  // Everything written through the mapping reaches the disk before the name does: a power loss
  // after the link never leaves a named, incomplete domain.
  if (fsync(fd) != 0) return ErrnoStatus(errno, path, "fsync of the new domain");
  UnnamedFile temp;
  temp.fd = fd;
  temp.name = std::move(temp_name);
  temp_name.clear();
  absl::StatusOr<bool> won = PublishAndSync(temp, path);  // the fd stays open: the arena owns it
  if (!won.ok()) return won.status();
  if (!*won) {
    return absl::AlreadyExistsError(
        absl::StrFormat("%s: already exists (the new domain was not published)", path));
  }
  return absl::OkStatus();
}

void DiscardUnpublishedName(std::string& temp_name) {
  if (!temp_name.empty()) unlink(temp_name.c_str());
  temp_name.clear();
}

void SetBeforePublishHookForTesting(void (*hook)()) {
  before_publish_hook.store(hook, std::memory_order_release);
}

void ForceNamedTempFileForTesting(bool force) {
  force_named_temp.store(force, std::memory_order_relaxed);
}

void SetCreatedHashKindForTesting(HashKind kind) {
  created_hash_kind.store(kind, std::memory_order_relaxed);
}

HeaderParams ParamsFrom(const Options& options) {
  HeaderParams params;
  params.max_size = options.max_size;
  params.slot_capacity = options.slot_capacity;
  params.atom_capacity = options.atom_capacity;
  params.hash_kind = created_hash_kind.load(std::memory_order_relaxed);
  params.hash_seed = RandomSeed();
  params.reader_capacity = options.reader_capacity;
  params.reader_mode = RegistryModeFor(options);
  // Light pins only where the creator can issue the heavy fence a scan then needs (the
  // creator registers here, before its first attach).
  params.pin_fence = HeavyFencesWork() ? PinFenceMode::kLight : PinFenceMode::kFull;
  return params;
}

absl::StatusOr<std::string> DomainFilePath(std::string_view path, DomainKind kind) {
  if (kind == DomainKind::kFile) {
    if (path.empty()) return absl::InvalidArgumentError("the domain path is empty");
    return std::string(path);
  }
  if (path.empty() || path.size() > kMaxSharedMemoryName) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "shared-memory domain name '%s' must have 1 to %d characters", path, kMaxSharedMemoryName));
  }
  for (const char c : path) {
    if (!IsSharedMemoryNameChar(c)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "shared-memory domain name '%s' may hold only letters, digits, '.', '_' and '-'", path));
    }
  }
  return "/dev/shm/atomap." + std::string(path);
}

absl::StatusOr<DomainFile> OpenOrCreateDomainFile(const std::string& path, const Options& options) {
  if (options.error_if_exists) return CreateExclusively(path, options);
  // O_NONBLOCK: opening a FIFO planted at the path must not hang (regular files ignore it).
  const int flags = (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NONBLOCK |
                    (options.follow_symlinks ? 0 : O_NOFOLLOW);
  for (int attempt = 0; attempt < kMaxOpenAttempts; ++attempt) {
    const int fd = open(path.c_str(), flags);
    if (fd >= 0) {
      absl::StatusOr<Header> header = VetExisting(fd, path, options);
      if (!header.ok()) {
        close(fd);
        return header.status();
      }
      DomainFile file;
      file.fd = fd;
      file.header = *header;
      return file;
    }
    if (errno == ELOOP && !options.follow_symlinks) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "%s: is a symbolic link (set Options::follow_symlinks to open it)", path));
    }
    if (errno != ENOENT) return ErrnoStatus(errno, path, "open");
    if (!options.create_if_missing || options.read_only) {
      return absl::NotFoundError(absl::StrFormat(
          "%s: no such domain (and %s)", path,
          options.read_only ? "a read-only open never creates" : "create_if_missing is off"));
    }
    absl::StatusOr<std::optional<DomainFile>> created = Create(path, options);
    if (!created.ok()) return created.status();
    if (created->has_value()) return **created;
    // Another creator won the link: open theirs.
  }
  return absl::AbortedError(
      absl::StrFormat("%s: the path kept appearing and disappearing over %d attempts to open it",
                      path, kMaxOpenAttempts));
}

}  // namespace atomap::internal

// The companion files of a domain file PATH (docs/format.md, "The files of a domain"):
//
//   PATH.lock     the writers' lock file: a LockFileHeader, then nothing; every writer lock byte
//                 (arena/file_locks.h) lives on it. Mode: each class that may write PATH gets
//                 rw, nothing else, so no one who may only read PATH can even open it.
//   PATH.readers  the reader registry (file/reader_slot.h): readers open it read-write to pin.
//                 Mode: Options::reader_permissions, or every class that may read PATH gets rw.
//
// For a shared-memory domain PATH is /dev/shm/atomap.NAME, so they are /dev/shm/atomap.NAME.lock
// and .readers; in-process domains have none.
//
// Why two files, and none of it in PATH: a lock is abusable by anyone who can open its file
// (F_RDLCK needs only O_RDONLY). Writers' locks go where only writers can reach; the one file
// readers may write holds nothing a writer ever waits on.
//
// Both are bound to PATH by its header's domain_id (random at creation). Both are built complete
// in an unnamed file (domain_file.h, UnnamedFile) and linked without replacing: whoever links
// first wins, the others open the winner's. One found with another domain_id is a leftover of an
// earlier domain at the path (deleted and created again): a writer replaces a stale PATH.lock
// (rename over it, under its replace byte and after checking PATH still names its file;
// processes of the old domain keep the old inode) and repairs a stale or damaged PATH.readers in
// place (its header rewritten, its slots kept): whoever may write the registry could otherwise
// make writers split it, and a writer without write access to the directory would be locked out.
// One found missing (the creator was killed between links, PATH was copied alone, an operator
// removed it) is created by the next writer, and only by PATH's owner or root (a companion
// another user owns fails every later owner check). Both must be regular files
// owned by PATH's owner; PATH.lock carries no access ACL (an inherited one is removed).
//
// Order of creation: PATH is linked first (the commit point of creating a domain, as before),
// then PATH.lock, then PATH.readers. A staged domain (DomainImpl::CreateUnpublished) is the
// exception: its handle already holds locks on its unnamed lock file, so Publish links both
// companions before PATH (an opener racing the publication must find the publisher's locks).
// Known limit: two staged creators publishing the same path at once may both link companions;
// the loser's Publish fails AlreadyExists, and its companions may have replaced the winner's
// (whose handle then holds its locks on an unlinked inode). One staged creator per path.
#ifndef ATOMAP_SRC_FILE_COMPANION_FILE_H_
#define ATOMAP_SRC_FILE_COMPANION_FILE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "atomap/options.h"
#include "file/header.h"

namespace atomap::internal {

inline constexpr char kLockFileMagic[8] = {'A', 'T', 'O', 'M', 'A', 'P', 'L', 'K'};
inline constexpr std::uint64_t kLockFileBytes = 4096;

struct LockFileHeader {
  char magic[8];                 // kLockFileMagic
  std::uint32_t format_version;  // kFormatVersion
  std::uint32_t reserved0;
  std::uint64_t domain_id;  // PATH's header domain_id
  std::uint8_t reserved[kLockFileBytes - 24];
};
static_assert(sizeof(LockFileHeader) == kLockFileBytes);
static_assert(offsetof(LockFileHeader, domain_id) == 16);

std::string LockFilePath(const std::string& file_path);
std::string RegistryFilePath(const std::string& file_path);
// The path the companions are named after: `file_path`, or with `follow_symlinks` the file it
// resolves to (else two symlinks to one file would get two lock files). Hard links cannot be
// told apart this way (docs/reliability.md).
std::string CompanionBasePath(const std::string& file_path, bool follow_symlinks);

// PATH.lock's mode for a PATH of mode `data_mode`: rw for each class that may write PATH.
std::uint32_t LockFileMode(std::uint32_t data_mode);
// PATH.readers' default mode: rw for each class that may read or write PATH, and the owner.
std::uint32_t DerivedRegistryMode(std::uint32_t data_mode);
// The mode a creator gives PATH.readers: options.reader_permissions, or the derived one.
std::uint32_t RegistryModeFor(const Options& options);

// The companions as one handle opened them (the caller owns the descriptors).
struct Companions {
  int lock_fd = -1;      // PATH.lock: O_RDWR for writers; O_RDONLY or -1 for readers
  int registry_fd = -1;  // PATH.readers, O_RDWR; -1 for an unregistered reader
  // A reader opened with Options::unregistered_reads: it has no registry descriptor.
  bool unregistered = false;
  // Unpublished only: the fallback temporary names of the unnamed files (no O_TMPFILE).
  std::string lock_temp_name;
  std::string registry_temp_name;

  // Closes both descriptors and removes any temporary names.
  void Close();
};

// A writer's open (data_fd: PATH, open O_RDWR, its header validated): opens PATH.lock, creating
// it if missing and replacing it if stale; then, under kReplaceLockByte of PATH.lock (waiting at
// most lock_timeout), opens PATH.readers the same way. FailedPrecondition naming the file, its
// owner, its mode and the fix when PATH.lock's owner is not PATH's or its mode lets a class open
// it that may not write PATH. ResourceExhausted when the disk has no room for the registry.
absl::StatusOr<Companions> OpenWriterCompanions(const std::string& file_path, int data_fd,
                                                const Header& header, absl::Duration lock_timeout);

// A reader's open (data_fd: PATH): PATH.readers O_RDWR, waiting up to 1 s for a writer to create
// it (NotFound then); PermissionDenied naming its owner, group and mode when this user may not
// write it; FailedPrecondition when it is not a regular file owned by PATH's owner,
// when it does not match `header` (stale; after one retry: a writer repairs it), and when
// PATH.readers is on a read-only file system or mount (a writer may use another, rw mount of the
// same file). With `unregistered_reads` PATH.readers is not opened: `unregistered`. PATH.lock
// O_RDONLY when permitted (liveness probes only), else -1.
absl::StatusOr<Companions> OpenReaderCompanions(const std::string& file_path, int data_fd,
                                                const Header& header, bool unregistered_reads);

// Staged creation: both companions for the unpublished domain file `data_fd`, complete and
// unnamed. PublishCompanions links them at their names (replacing leftovers).
// REQUIRES for PublishCompanions: nothing at file_path (the caller checked).
absl::StatusOr<Companions> BuildUnpublishedCompanions(const std::string& file_path, int data_fd,
                                                      const Header& header);
absl::Status PublishCompanions(Companions& companions, const std::string& file_path);

// Whether `fd` holds a lock file / registry that belongs to the domain of `header`; a message
// naming `path` and the field when not.
absl::Status CheckLockFile(int fd, const Header& header, const std::string& path);
absl::Status CheckRegistry(int fd, const Header& header, const std::string& path);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_FILE_COMPANION_FILE_H_

// Finding, creating and validating a domain's file (not its mapping: see domain_impl.h).
//
// Creation is race-free without any lock: the creator builds the complete domain in an unnamed
// file in the target directory (O_TMPFILE; where the file system lacks it, a temporary name that
// is unlinked whatever happens), syncs it, and then links it at the path. link() fails with
// EEXIST if anything is already there, so exactly one creator wins; a loser drops its file and
// opens the winner's. Nobody ever sees a half-written domain at the path, and a creator killed
// at any point leaves nothing there.
#ifndef ATOMAP_SRC_FILE_DOMAIN_FILE_H_
#define ATOMAP_SRC_FILE_DOMAIN_FILE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "atomap/options.h"
#include "common/hash.h"
#include "file/header.h"

namespace atomap::internal {

struct DomainFile {
  int fd = -1;     // open O_RDWR (O_RDONLY when read-only), O_CLOEXEC; the caller owns it
  Header header;   // as validated (a copy read before mapping)
  bool created = false;
};

// The file path of a domain: `path` itself for kFile; /dev/shm/atomap.<name> for
// kSharedMemory, after checking the name (InvalidArgument). REQUIRES: kind != kInProcess.
absl::StatusOr<std::string> DomainFilePath(std::string_view path, DomainKind kind);

// Opens the domain file at `file_path`, creating it if missing and allowed. Validates an existing
// file before writing anything to it; on error the file is unchanged.
// A writable open of a file that another user owns is PermissionDenied unless
// options.allow_foreign_owner; a writable open allocates the header and tables where they are
// holes (ResourceExhausted on a full disk).
absl::StatusOr<DomainFile> OpenOrCreateDomainFile(const std::string& file_path,
                                                  const Options& options);

// Staged creation (DomainImpl::CreateUnpublished): the complete, synced new domain for
// `file_path` in an unnamed file in its directory, linked nowhere. Where the file system lacks
// O_TMPFILE, the file has a temporary name there (".atomap-new-XXXXXX"), returned in
// `temp_name` (else it is cleared): the caller removes it with PublishDomainFile or
// DiscardUnpublishedName; a process killed before either leaves that name behind (never
// anything at `file_path`).
absl::StatusOr<DomainFile> CreateUnpublishedDomainFile(const std::string& file_path,
                                                       const Options& options,
                                                       std::string& temp_name);

// Syncs the unpublished domain file `fd` (everything written through any mapping included), then
// links it at `file_path`, never replacing anything there: AlreadyExists if the path exists.
// `temp_name` is removed and cleared whatever happens; `fd` stays open.
absl::Status PublishDomainFile(int fd, std::string& temp_name, const std::string& file_path);

// Removes an unpublished file's temporary name, if it has one, and clears it.
void DiscardUnpublishedName(std::string& temp_name);

// An unnamed file (or, as a fallback, one with a temporary name) in a directory, not yet visible
// at the path it is built for. Every file of a domain (PATH and its companions, companion_file.h)
// is built this way and then linked complete.
struct UnnamedFile {
  int fd = -1;
  std::string name;  // empty for an O_TMPFILE file

  // Removes the temporary name, if any, and closes fd.
  void Discard();
};

// A new unnamed file in `dir` (O_TMPFILE, else ".atomap-new-XXXXXX"), mode `permissions` as the
// umask lets it (callers fchmod the exact mode). `what` names the file in messages.
absl::StatusOr<UnnamedFile> MakeUnnamedFile(const std::string& dir, std::uint32_t permissions,
                                            std::string_view what);
// Links `file` at `path`, never replacing anything: false if something is already there. The
// temporary name is removed whatever happens; fd stays open.
absl::StatusOr<bool> LinkUnnamedFile(UnnamedFile& file, const std::string& path,
                                     std::string_view what);
// Puts `file` at `path` in place of whatever is there; false if, in the moment between, another
// process linked a file there first (the caller opens that one). A named temporary is renamed
// over `path` atomically; an O_TMPFILE file has no name to rename from, so the old name is
// unlinked and `file` linked: an opener in between finds nothing and creates its own, and no
// kill at any instruction leaves a temporary name behind. fd stays open.
absl::StatusOr<bool> ReplaceWithUnnamedFile(UnnamedFile& file, const std::string& path,
                                            std::string_view what);

// "PATH: WHAT: strerror", with the code that fits errno `err`.
absl::Status ErrnoStatus(int err, std::string_view path, std::string_view what);
std::string ParentDirectory(const std::string& path);
// fsync of the directory `dir` (best effort: a new name's durability).
void SyncDirectory(const std::string& dir);

// The parameters a creator lays out from `options` (a fresh random seed).
HeaderParams ParamsFrom(const Options& options);

// Testing only: when set, a creator calls it after its unnamed file is complete and synced, just
// before linking it at the path (a test kills the process there).
void SetBeforePublishHookForTesting(void (*hook)());

// Testing only: create through the fallback (a temporary name, linked then unlinked), as on file
// systems without O_TMPFILE.
void ForceNamedTempFileForTesting(bool force);

// Testing only: the hash of every domain this process creates from now on (until set again).
// HashKind::kXxh3, the default, is the only production kind; kTestWeak exists so that tests can
// force hash collisions (a domain made with it is slow and open to flooding). Not in Options:
// nothing outside the library's tests may choose it.
void SetCreatedHashKindForTesting(HashKind kind);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_FILE_DOMAIN_FILE_H_

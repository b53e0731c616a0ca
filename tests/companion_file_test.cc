// The companion files of a domain (file/companion_file.h) and where the locks live: PATH.lock
// and PATH.readers are created with the right modes, recreated when missing, replaced when
// stale; a reader waits for a missing registry and then says so; no lock anyone takes on PATH
// stops a writer; lock waits are bounded; a format-2 file is upgraded in place.
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "alloc/allocator_state.h"
#include "arena/file_locks.h"
#include "atomap/atomap.h"
#include "catch2/catch.hpp"
#include "domain/domain_impl.h"
#include "file/companion_file.h"
#include "file/header.h"
#include "file/reader_slot.h"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

using internal::LockFilePath;
using internal::RegistryFilePath;

std::uint32_t ModeOf(const std::string& path) {
  struct stat st;
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

ino_t InodeOf(const std::string& path) {
  struct stat st;
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_ino;
}

// The temporary names a creator or replacer might leave in `dir` (".atomap-...").
std::vector<std::string> TemporaryNames(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(".atomap-", 0) == 0) names.push_back(name);
  }
  return names;
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

Options Small(std::uint32_t permissions = 0600) {
  Options options = SmallOptions(8, 8);
  options.permissions = permissions;
  options.reader_capacity = 16;
  return options;
}

void Put(Domain& domain, const std::string& key, const std::string& value) {
  absl::StatusOr<Atom> atom = domain.atom("a");
  REQUIRE(atom.ok());
  REQUIRE(atom->swap([&](Transaction& tx) { return tx.set(key, value); }).ok());
}

// A read lock over [from, inf) of `path` through a new O_RDONLY description: what any reader
// of PATH can take. Returns the descriptor (the lock lasts until it is closed).
int ReadLockFrom(const std::string& path, off_t from) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  struct flock fl = {};
  fl.l_type = F_RDLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = from;
  fl.l_len = 0;
  REQUIRE(fcntl(fd, F_OFD_SETLK, &fl) == 0);
  return fd;
}

TEST_CASE("companion modes follow the domain's mode", "[companion]") {
  struct Case {
    std::uint32_t permissions, reader_permissions, lock_mode, registry_mode;
  };
  const Case cases[] = {
      {0600, 0, 0600, 0600}, {0640, 0, 0600, 0660},    {0660, 0, 0660, 0660},
      {0644, 0, 0600, 0666}, {0640, 0620, 0600, 0620},
  };
  for (const Case& c : cases) {
    TempDir dir;
    const std::string path = dir.File("d.atomap");
    Options options = Small(c.permissions);
    options.reader_permissions = c.reader_permissions;
    {
      absl::StatusOr<Domain> domain = Domain::Open(path, options);
      REQUIRE(domain.ok());
    }
    INFO("permissions " << std::oct << c.permissions);
    CHECK(ModeOf(path) == c.permissions);
    CHECK(ModeOf(LockFilePath(path)) == c.lock_mode);
    CHECK(ModeOf(RegistryFilePath(path)) == c.registry_mode);
    CHECK(std::filesystem::file_size(RegistryFilePath(path)) ==
          internal::RegistryBytes(options.reader_capacity));
  }
}

TEST_CASE("staged creation links the companions too", "[companion]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  absl::StatusOr<Domain> domain = Domain::CreateUnpublished(path, Small(0640));
  REQUIRE(domain.ok());
  CHECK_FALSE(Exists(LockFilePath(path)));
  REQUIRE(domain->Publish().ok());
  CHECK(ModeOf(LockFilePath(path)) == 0600);
  CHECK(ModeOf(RegistryFilePath(path)) == 0660);
  Put(*domain, "k", "v");
  // A second writer finds the publisher's lock file: it is not alone.
  absl::StatusOr<Domain> second = Domain::Open(path, Small(0640));
  REQUIRE(second.ok());
  CHECK(internal::Access(*second).found_alone() == false);
}

TEST_CASE("a missing PATH.lock is recreated, a stale one replaced", "[companion]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  {
    REQUIRE(Domain::Open(path, Small()).ok());
  }
  SECTION("missing") {
    REQUIRE(unlink(LockFilePath(path).c_str()) == 0);
    REQUIRE(unlink(RegistryFilePath(path).c_str()) == 0);
    absl::StatusOr<Domain> domain = Domain::Open(path, Small());
    REQUIRE(domain.ok());
    CHECK(ModeOf(LockFilePath(path)) == 0600);
    CHECK(Exists(RegistryFilePath(path)));
    CHECK(domain->was_clean());
  }
  SECTION("stale") {
    // Another domain's companions at this path (one deleted and created again).
    const std::string other = dir.File("other.atomap");
    {
      REQUIRE(Domain::Open(other, Small()).ok());
    }
    REQUIRE(rename(LockFilePath(other).c_str(), LockFilePath(path).c_str()) == 0);
    REQUIRE(rename(RegistryFilePath(other).c_str(), RegistryFilePath(path).c_str()) == 0);
    const ino_t stale_lock = InodeOf(LockFilePath(path));
    const ino_t stale_registry = InodeOf(RegistryFilePath(path));
    // A reader refuses a stale registry (only writers replace it).
    Options reader = Small();
    reader.read_only = true;
    absl::StatusOr<Domain> early = Domain::Open(path, reader);
    REQUIRE(absl::IsFailedPrecondition(early.status()));
    CHECK(early.status().message().find(RegistryFilePath(path)) != std::string::npos);
    CHECK(early.status().message().find("a writer replaces or repairs it") != std::string::npos);
    absl::StatusOr<Domain> domain = Domain::Open(path, Small());
    REQUIRE(domain.ok());
    CHECK(InodeOf(LockFilePath(path)) != stale_lock);
    CHECK(InodeOf(RegistryFilePath(path)) == stale_registry);  // repaired in place
    const int fd = open(LockFilePath(path).c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    CHECK(internal::CheckLockFile(fd, internal::Access(*domain).header(), LockFilePath(path)).ok());
    close(fd);
    REQUIRE(Domain::Open(path, reader).ok());
    CHECK(TemporaryNames(dir.path()).empty());
  }
}

TEST_CASE("staged creation over leftover companions leaves no temporary name", "[companion]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  {
    REQUIRE(Domain::Open(path, Small()).ok());
  }
  REQUIRE(unlink(path.c_str()) == 0);  // the companions are leftovers now
  const ino_t stale_lock = InodeOf(LockFilePath(path));
  absl::StatusOr<Domain> domain = Domain::CreateUnpublished(path, Small());
  REQUIRE(domain.ok());
  REQUIRE(domain->Publish().ok());
  CHECK(InodeOf(LockFilePath(path)) != stale_lock);
  CHECK(TemporaryNames(dir.path()).empty());
}

TEST_CASE("writers racing to replace a stale PATH.lock all end up on one", "[companion]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  const std::string other = dir.File("other.atomap");
  {
    REQUIRE(Domain::Open(path, Small()).ok());
  }
  {
    REQUIRE(Domain::Open(other, Small()).ok());
  }
  REQUIRE(rename(LockFilePath(other).c_str(), LockFilePath(path).c_str()) == 0);
  struct Report {
    ino_t lock_inode;
    bool alone;
    bool ok;
  };
  constexpr int kWriters = 6;
  Gate start, finish;
  ReportPipe reports;
  std::vector<pid_t> children;
  for (int i = 0; i < kWriters; ++i) {
    children.push_back(ForkChild([&] {
      start.Wait();
      absl::StatusOr<Domain> domain = Domain::Open(path, Small());
      Report report{};
      report.ok = domain.ok();
      if (domain.ok()) {
        struct stat st;
        report.ok = fstat(internal::Access(*domain).lock_fd(), &st) == 0;
        report.lock_inode = st.st_ino;
        report.alone = internal::Access(*domain).found_alone();
      }
      reports.Send(report);
      finish.Wait();  // all attached at once
      return 0;
    }));
  }
  reports.CloseWriteEnd();
  start.Open();
  int alone = 0;
  for (int i = 0; i < kWriters; ++i) {
    std::optional<Report> report = reports.Receive<Report>();
    REQUIRE(report.has_value());
    CHECK(report->ok);
    CHECK(report->lock_inode == InodeOf(LockFilePath(path)));  // the one at the path
    alone += report->alone ? 1 : 0;
  }
  CHECK(alone <= 1);  // the others saw the first one's attach lock
  {
    absl::StatusOr<Domain> domain = Domain::Open(path, Small());
    REQUIRE(domain.ok());
    CHECK_FALSE(internal::Access(*domain).found_alone());
    CHECK(domain->info().slots_in_use.size() == kWriters + 1);
  }
  finish.Open();
  for (pid_t child : children) CHECK(WaitChild(child) == 0);
}

TEST_CASE("a PATH.lock that readers could open is refused", "[companion]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  {
    REQUIRE(Domain::Open(path, Small(0644)).ok());
  }
  REQUIRE(chmod(LockFilePath(path).c_str(), 0644) == 0);
  absl::StatusOr<Domain> domain = Domain::Open(path, Small(0644));
  REQUIRE(absl::IsFailedPrecondition(domain.status()));
  const std::string message(domain.status().message());
  CHECK(message.find(LockFilePath(path)) != std::string::npos);
  CHECK(message.find("mode 0644") != std::string::npos);
  CHECK(message.find("chmod 0600") != std::string::npos);
}

TEST_CASE("a PATH.lock owned by another user is refused", "[companion]") {
  if (geteuid() != 0) {
    WARN("skipped: needs root to give PATH.lock another owner");
    return;
  }
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  {
    REQUIRE(Domain::Open(path, Small()).ok());
  }
  REQUIRE(chown(LockFilePath(path).c_str(), 4242, static_cast<gid_t>(-1)) == 0);
  absl::StatusOr<Domain> domain = Domain::Open(path, Small());
  REQUIRE(absl::IsFailedPrecondition(domain.status()));
  CHECK(std::string(domain.status().message()).find("owned by uid 4242") != std::string::npos);
}

TEST_CASE("a reader without write permission on PATH.readers is told so", "[companion]") {
  if (geteuid() != 0) {
    WARN("skipped: needs root to run a reader as another user");
    return;
  }
  TempDir dir;
  REQUIRE(chmod(dir.path().c_str(), 0755) == 0);
  const std::string path = dir.File("d.atomap");
  Options options = Small(0644);
  options.reader_permissions = 0600;  // readers of PATH may not register
  {
    REQUIRE(Domain::Open(path, options).ok());
  }
  const pid_t child = ForkChild([&] {
    if (setgroups(0, nullptr) != 0 || setresgid(4200, 4200, 4200) != 0 ||
        setresuid(4202, 4202, 4202) != 0) {
      return 10;
    }
    Options reader = Small(0644);
    reader.read_only = true;
    absl::StatusOr<Domain> domain = Domain::Open(path, reader);
    if (!absl::IsPermissionDenied(domain.status())) return 11;
    const std::string message(domain.status().message());
    if (message.find(RegistryFilePath(path)) == std::string::npos) return 12;
    if (message.find("mode 0600") == std::string::npos) return 13;
    if (message.find("a reader needs read-write permission on") == std::string::npos) return 14;
    return 0;
  });
  CHECK(WaitChild(child) == 0);
}

TEST_CASE("a reader waits for a missing registry, then names it", "[companion]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  {
    REQUIRE(Domain::Open(path, Small()).ok());
  }
  REQUIRE(unlink(RegistryFilePath(path).c_str()) == 0);
  Options reader = Small();
  reader.read_only = true;
  const absl::Time start = absl::Now();
  absl::StatusOr<Domain> domain = Domain::Open(path, reader);
  CHECK(absl::Now() - start >= absl::Milliseconds(900));
  REQUIRE(absl::IsNotFound(domain.status()));
  const std::string message(domain.status().message());
  CHECK(message.find(RegistryFilePath(path)) != std::string::npos);
  CHECK(message.find("a writer creates it when it opens the domain") != std::string::npos);
}

TEST_CASE("a reader on a read-only bind mount is refused unless it reads unregistered",
          "[companion]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  {
    absl::StatusOr<Domain> domain = Domain::Open(path, Small());
    REQUIRE(domain.ok());
    Put(*domain, "k", "v");
  }
  // A container's `-v dir:ro`: the same files, read-only through this mount only.
  const pid_t child = ForkChild([&] {
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        mount(dir.path().c_str(), dir.path().c_str(), nullptr, MS_BIND, nullptr) != 0 ||
        mount(nullptr, dir.path().c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) !=
            0) {
      return 77;
    }
    Options reader = Small();
    reader.read_only = true;
    absl::StatusOr<Domain> refused = Domain::Open(path, reader);
    if (!absl::IsFailedPrecondition(refused.status())) return 11;
    const std::string message(refused.status().message());
    if (message.find("a reader must be able to write " + RegistryFilePath(path)) ==
        std::string::npos) {
      return 12;
    }
    if (message.find("unregistered_reads") == std::string::npos) return 13;
    reader.unregistered_reads = true;
    absl::StatusOr<Domain> domain = Domain::Open(path, reader);
    if (!domain.ok()) return 14;
    absl::StatusOr<Atom> atom = domain->find_atom("a");
    if (!atom.ok()) return 15;
    absl::StatusOr<Snapshot> snap = atom->load();
    if (!snap.ok() || snap->map().get("k") != std::optional<std::string_view>("v")) return 16;
    return 0;
  });
  const int rc = WaitChild(child);
  if (rc == 77) {
    WARN("skipped: no mount namespace (needs CAP_SYS_ADMIN)");
    return;
  }
  CHECK(rc == 0);
}

TEST_CASE("unregistered_reads opens no registry and is for readers only", "[companion]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  {
    absl::StatusOr<Domain> domain = Domain::Open(path, Small());
    REQUIRE(domain.ok());
    Put(*domain, "k", "v");
  }
  REQUIRE(unlink(RegistryFilePath(path).c_str()) == 0);
  Options options = Small();
  options.unregistered_reads = true;
  CHECK(absl::IsInvalidArgument(Domain::Open(path, options).status()));
  options.read_only = true;
  const absl::Time start = absl::Now();
  absl::StatusOr<Domain> domain = Domain::Open(path, options);
  REQUIRE(domain.ok());
  CHECK(absl::Now() - start < absl::Milliseconds(500));  // no wait for a missing registry
  CHECK_FALSE(Exists(RegistryFilePath(path)));
  absl::StatusOr<Atom> atom = domain->find_atom("a");
  REQUIRE(atom.ok());
  absl::StatusOr<Snapshot> snap = atom->load();
  REQUIRE(snap.ok());
  CHECK(snap->map().get("k") == std::optional<std::string_view>("v"));
}

TEST_CASE("a damaged or short PATH.readers is repaired in place, never replaced", "[companion]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  {
    REQUIRE(Domain::Open(path, Small()).ok());
  }
  const std::string registry = RegistryFilePath(path);
  const ino_t inode = InodeOf(registry);
  struct stat full;
  REQUIRE(stat(registry.c_str(), &full) == 0);
  {
    const int fd = open(registry.c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    REQUIRE(pwrite(fd, "XXXXXXXX", 8, 0) == 8);  // its magic
    close(fd);
  }
  Options reader = Small();
  reader.read_only = true;
  CHECK(absl::IsFailedPrecondition(Domain::Open(path, reader).status()));  // after one retry
  {
    REQUIRE(Domain::Open(path, Small()).ok());
  }
  CHECK(InodeOf(registry) == inode);
  CHECK(Domain::Open(path, reader).ok());
  REQUIRE(truncate(registry.c_str(), 4096) == 0);
  {
    REQUIRE(Domain::Open(path, Small()).ok());
  }
  struct stat repaired;
  REQUIRE(stat(registry.c_str(), &repaired) == 0);
  CHECK(repaired.st_ino == inode);
  CHECK(repaired.st_size == full.st_size);
  CHECK(Domain::Open(path, reader).ok());
}

TEST_CASE("a PATH.readers owned by another user is refused", "[companion]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  {
    REQUIRE(Domain::Open(path, Small()).ok());
  }
  const std::string registry = RegistryFilePath(path);
  Options reader = Small();
  reader.read_only = true;
  if (geteuid() == 0) {
    REQUIRE(chown(registry.c_str(), 4242, static_cast<gid_t>(-1)) == 0);
    for (const Options& options : {Small(), reader}) {
      absl::Status s = Domain::Open(path, options).status();
      REQUIRE(absl::IsFailedPrecondition(s));
      CHECK(std::string(s.message()).find("owned by uid 4242") != std::string::npos);
    }
  }
}

TEST_CASE("only PATH's owner or root creates a missing PATH.lock", "[companion]") {
  if (geteuid() != 0) {
    WARN("skipped: needs root to run a writer as another user");
    return;
  }
  TempDir dir;
  REQUIRE(chmod(dir.path().c_str(), 0777) == 0);
  const std::string path = dir.File("d.atomap");
  {
    REQUIRE(Domain::Open(path, Small(0666)).ok());
  }
  REQUIRE(chown(path.c_str(), 4201, 4200) == 0);
  REQUIRE(unlink(LockFilePath(path).c_str()) == 0);
  const pid_t child = ForkChild([&] {
    if (setgroups(0, nullptr) != 0 || setresgid(4200, 4200, 4200) != 0 ||
        setresuid(4202, 4202, 4202) != 0) {
      return 10;
    }
    Options writer = Small(0666);
    writer.allow_foreign_owner = true;
    absl::Status s = Domain::Open(path, writer).status();
    if (!absl::IsFailedPrecondition(s)) return 11;
    const std::string message(s.message());
    if (message.find(LockFilePath(path)) == std::string::npos) return 12;
    if (message.find("only the domain's owner (uid 4201) or root") == std::string::npos) return 13;
    return 0;
  });
  CHECK(WaitChild(child) == 0);
  CHECK_FALSE(Exists(LockFilePath(path)));
}

TEST_CASE("a PATH.lock with an access ACL or a foreign group is refused", "[companion]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  {
    REQUIRE(Domain::Open(path, Small(0660)).ok());
  }
  const std::string lock = LockFilePath(path);
  {
    // The xattr form of "user::rw-, user:4242:rw-, group::---, mask::rw-, other::---".
    struct Entry {
      std::uint16_t tag, perm;
      std::uint32_t id;
    };
    struct {
      std::uint32_t version = 2;
      Entry entries[5] = {{0x01, 6, 0xffffffff},
                          {0x02, 6, 4242},
                          {0x04, 0, 0xffffffff},
                          {0x10, 6, 0xffffffff},
                          {0x20, 0, 0xffffffff}};
    } acl;
    if (setxattr(lock.c_str(), "system.posix_acl_access", &acl, sizeof acl, 0) != 0) {
      WARN("skipped: no POSIX ACLs here");
      return;
    }
  }
  absl::Status s = Domain::Open(path, Small(0660)).status();
  REQUIRE(absl::IsFailedPrecondition(s));
  CHECK(std::string(s.message()).find("setfacl -b " + lock) != std::string::npos);
  REQUIRE(removexattr(lock.c_str(), "system.posix_acl_access") == 0);
  REQUIRE(chmod(lock.c_str(), 0660) == 0);
  REQUIRE(Domain::Open(path, Small(0660)).ok());
  if (geteuid() == 0) {
    REQUIRE(chown(lock.c_str(), static_cast<uid_t>(-1), 4242) == 0);
    s = Domain::Open(path, Small(0660)).status();
    REQUIRE(absl::IsFailedPrecondition(s));
    CHECK(std::string(s.message()).find("chgrp") != std::string::npos);
  }
}

TEST_CASE("with follow_symlinks the companions are named after the resolved file", "[companion]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  {
    REQUIRE(Domain::Open(path, Small()).ok());
  }
  const std::string link_path = dir.File("alias.atomap");
  REQUIRE(symlink(path.c_str(), link_path.c_str()) == 0);
  Options options = Small();
  options.follow_symlinks = true;
  absl::StatusOr<Domain> domain = Domain::Open(link_path, options);
  REQUIRE(domain.ok());
  CHECK_FALSE(Exists(LockFilePath(link_path)));
  CHECK_FALSE(Exists(RegistryFilePath(link_path)));
}

TEST_CASE("a read lock over all of PATH stops no writer", "[companion][locks]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  Options options = Small();
  options.max_size = std::uint64_t{64} << 20;
  {
    REQUIRE(Domain::Open(path, options).ok());
  }
  // Every byte of PATH, the format-2 lock space included, read-locked by a reader.
  const int stranger = ReadLockFrom(path, 0);
  options.lock_timeout = absl::Seconds(5);
  {
    absl::StatusOr<Domain> first = Domain::Open(path, options);
    REQUIRE(first.ok());
    CHECK(internal::Access(*first).found_alone());
    absl::StatusOr<Domain> second = Domain::Open(path, options);  // two writers attach
    REQUIRE(second.ok());
    const std::uint64_t size_before = first->info().size;
    const std::string big(4096, 'x');
    for (int i = 0; i < 600; ++i) Put(i % 2 ? *first : *second, absl::StrCat("k", i), big);
    CHECK(first->info().size > size_before);  // grew, many times
  }
  {
    absl::StatusOr<Domain> again = Domain::Open(path, options);
    REQUIRE(again.ok());
    CHECK(again->was_clean());  // the last close marked it clean
    CheckOptions repair;
    repair.repair = true;
    absl::StatusOr<CheckReport> report = again->check(repair);
    REQUIRE(report.ok());
    CHECK(report->problems.empty());
  }
  close(stranger);
}

TEST_CASE("a held grow lock fails growth within lock_timeout", "[companion][locks]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  Options options = Small();
  options.max_size = std::uint64_t{64} << 20;
  options.lock_timeout = absl::Milliseconds(200);
  absl::StatusOr<Domain> domain = Domain::Open(path, options);
  REQUIRE(domain.ok());
  // Another writer's description holding the grow lock (as a stopped grower would).
  const int holder = open(LockFilePath(path).c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(holder >= 0);
  REQUIRE(*internal::TryLockByte(holder, internal::kGrowLockByte, internal::LockMode::kExclusive));
  const std::string big(64 * 1024, 'x');
  absl::Status failed;
  const absl::Time start = absl::Now();
  for (int i = 0; i < 1000 && failed.ok(); ++i) {
    absl::StatusOr<Atom> atom = domain->atom("a");
    REQUIRE(atom.ok());
    const std::string key = absl::StrCat("k", i);
    failed = atom->swap([&](Transaction& tx) { return tx.set(key, big); }).status();
  }
  const absl::Duration took = absl::Now() - start;
  REQUIRE(absl::IsDeadlineExceeded(failed));
  const std::string message(failed.message());
  CHECK(message.find(LockFilePath(path) + ": the grow lock: held by another writer") !=
        std::string::npos);
  CHECK(took < absl::Seconds(5));
  close(holder);
  // Released: growth goes on.
  absl::StatusOr<Atom> atom = domain->atom("a");
  REQUIRE(atom.ok());
  CHECK(atom->swap([&](Transaction& tx) { return tx.set("after", big); }).ok());
}

#ifdef ATOMAP_SOURCE_DIR
std::uint64_t AllocatorMagicOf(const std::string& path) {
  std::uint64_t magic = 0;
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return 0;
  if (pread(fd, &magic, sizeof magic, internal::kHeaderBytes) != sizeof magic) magic = 0;
  close(fd);
  return magic;
}

void WriteAllocatorMagic(const std::string& path, std::uint64_t magic) {
  const int fd = open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  REQUIRE(pwrite(fd, &magic, sizeof magic, internal::kHeaderBytes) == sizeof magic);
  close(fd);
}

TEST_CASE("a format-2 file is upgraded in place", "[upgrade]") {
  TempDir dir;
  const std::string path = dir.File("f2.atomap");
  std::filesystem::copy_file(std::string(ATOMAP_SOURCE_DIR) + "/tests/data/format2.atomap", path);
  REQUIRE(chmod(path.c_str(), 0600) == 0);  // the checkout's umask decides the copy's mode
  absl::StatusOr<Domain> refused = Domain::Open(path, Options{});
  REQUIRE(absl::IsFailedPrecondition(refused.status()));
  CHECK(std::string(refused.status().message())
            .find("format 2 (atomap 0.2); run 'atomap upgrade " + path + "'") != std::string::npos);
  {
    // A format-2 handle (its shared attach byte on PATH) keeps the upgrade out.
    const int v2 = ReadLockFrom(path, off_t{1} << 40);
    absl::StatusOr<UpgradeReport> held = UpgradeDomain(path, Options{});
    REQUIRE(absl::IsFailedPrecondition(held.status()));
    CHECK(std::string(held.status().message()).find("stop them") != std::string::npos);
    close(v2);
    CHECK_FALSE(Exists(LockFilePath(path)));
  }
  absl::StatusOr<UpgradeReport> report = UpgradeDomain(path, Options{});
  REQUIRE(report.ok());
  CHECK(report->from_version == 2);
  CHECK(report->to_version == internal::kFormatVersion);
  CHECK_FALSE(report->already_current);
  CHECK(ModeOf(LockFilePath(path)) == 0600);
  CHECK(ModeOf(RegistryFilePath(path)) == 0600);
  // The tripwire for a format-2 process still waiting to attach: format 3's allocator magic.
  CHECK(AllocatorMagicOf(path) == internal::kAllocatorMagic);
  {
    absl::StatusOr<Domain> domain = Domain::Open(path, Options{});
    REQUIRE(domain.ok());
    absl::StatusOr<Atom> atom = domain->find_atom("default");
    REQUIRE(atom.ok());
    absl::StatusOr<Snapshot> snap = atom->load();
    REQUIRE(snap.ok());
    CHECK(snap->map().get("key1") == std::optional<std::string_view>("value1"));
    CHECK(snap->map().get("key3") == std::optional<std::string_view>("value3"));
    absl::StatusOr<CheckReport> check = domain->check();
    REQUIRE(check.ok());
    CHECK(check->problems.empty());
  }
  absl::StatusOr<UpgradeReport> again = UpgradeDomain(path, Options{});
  REQUIRE(again.ok());
  CHECK(again->already_current);
}

TEST_CASE("an upgrade interrupted after the allocator magic finishes on a rerun", "[upgrade]") {
  TempDir dir;
  const std::string path = dir.File("f2.atomap");
  std::filesystem::copy_file(std::string(ATOMAP_SOURCE_DIR) + "/tests/data/format2.atomap", path);
  REQUIRE(AllocatorMagicOf(path) == internal::kFormat2AllocatorMagic);
  // As a crash between step 4 (magic) and step 5 (header) leaves it.
  WriteAllocatorMagic(path, internal::kAllocatorMagic);
  absl::StatusOr<UpgradeReport> report = UpgradeDomain(path, Options{});
  REQUIRE(report.ok());
  CHECK(report->from_version == 2);
  CHECK(AllocatorMagicOf(path) == internal::kAllocatorMagic);
  absl::StatusOr<Domain> domain = Domain::Open(path, Options{});
  REQUIRE(domain.ok());
  absl::StatusOr<CheckReport> check = domain->check();
  REQUIRE(check.ok());
  CHECK(check->problems.empty());
}

TEST_CASE("a format-2 file with a damaged allocator magic is not upgraded", "[upgrade]") {
  TempDir dir;
  const std::string path = dir.File("f2.atomap");
  std::filesystem::copy_file(std::string(ATOMAP_SOURCE_DIR) + "/tests/data/format2.atomap", path);
  WriteAllocatorMagic(path, 0x1234);
  absl::StatusOr<UpgradeReport> report = UpgradeDomain(path, Options{});
  REQUIRE(absl::IsDataLoss(report.status()));
  CHECK(std::string(report.status().message()).find(path + ": allocator state") !=
        std::string::npos);
  CHECK(AllocatorMagicOf(path) == 0x1234);  // the file stays as it was
}

TEST_CASE("a format-2 file not closed cleanly is upgraded dirty, then swept", "[upgrade]") {
  TempDir dir;
  const std::string path = dir.File("f2.atomap");
  std::filesystem::copy_file(std::string(ATOMAP_SOURCE_DIR) + "/tests/data/format2.atomap", path);
  {
    // state (offset 192, mutable: not checksummed) = dirty, as a killed format-2 writer leaves it
    const int fd = open(path.c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    const std::uint32_t dirty = 0;
    REQUIRE(pwrite(fd, &dirty, sizeof dirty, 192) == sizeof dirty);
    close(fd);
  }
  absl::StatusOr<UpgradeReport> report = UpgradeDomain(path, Options{});
  REQUIRE(report.ok());
  CHECK(report->was_dirty);
  {
    absl::StatusOr<Domain> domain = Domain::Open(path, Options{});  // alone and dirty: sweeps
    REQUIRE(domain.ok());
    CHECK_FALSE(domain->was_clean());
    absl::StatusOr<CheckReport> check = domain->check();
    REQUIRE(check.ok());
    CHECK(check->problems.empty());
    CHECK(check->leaked_bytes == 0);
  }
  absl::StatusOr<Domain> reopened = Domain::Open(path, Options{});
  REQUIRE(reopened.ok());
  CHECK(reopened->was_clean());
}

// The format-3 fixture (tests/data/README.md) and its PATH.lock, copied into `dir`.
std::string CopyFormat3Fixture(TempDir& dir) {
  const std::string path = dir.File("f3.atomap");
  const std::string data = std::string(ATOMAP_SOURCE_DIR) + "/tests/data/format3.atomap";
  std::filesystem::copy_file(data, path);
  std::filesystem::copy_file(data + ".lock", LockFilePath(path));
  REQUIRE(chmod(path.c_str(), 0600) == 0);
  REQUIRE(chmod(LockFilePath(path).c_str(), 0600) == 0);
  return path;
}

struct stat StatOf(const std::string& path) {
  struct stat st;
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st;
}

std::uint32_t FormatWordOf(const std::string& path) {  // at byte 8 of PATH and its companions
  std::uint32_t version = 0;
  const int fd = open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  REQUIRE(pread(fd, &version, sizeof version, 8) == sizeof version);
  close(fd);
  return version;
}

TEST_CASE("a format-3 file is upgraded in place, its 32-byte version records read as they are",
          "[upgrade]") {
  TempDir dir;
  const std::string path = CopyFormat3Fixture(dir);
  absl::StatusOr<Domain> refused = Domain::Open(path, Options{});
  REQUIRE(absl::IsFailedPrecondition(refused.status()));
  CHECK(std::string(refused.status().message())
            .find("format 3 (atomap 0.3); run 'atomap upgrade " + path + "'") != std::string::npos);
  {
    // A format-3 writer (its shared attach byte on PATH.lock) keeps the upgrade out, and the
    // file is left exactly as it was.
    const int v3 = ReadLockFrom(LockFilePath(path), off_t{1} << 40);
    absl::StatusOr<UpgradeReport> held = UpgradeDomain(path, Options{});
    REQUIRE(absl::IsFailedPrecondition(held.status()));
    CHECK(std::string(held.status().message()).find("stop them") != std::string::npos);
    close(v3);
    CHECK(FormatWordOf(path) == 3);
    CHECK(FormatWordOf(LockFilePath(path)) == 3);
    CHECK(AllocatorMagicOf(path) == internal::kFormat3AllocatorMagic);
  }
  const struct stat lock_before = StatOf(LockFilePath(path));
  absl::StatusOr<UpgradeReport> report = UpgradeDomain(path, Options{});
  REQUIRE(report.ok());
  CHECK(report->from_version == 3);
  CHECK(report->to_version == internal::kFormatVersion);
  CHECK_FALSE(report->already_current);
  CHECK(FormatWordOf(path) == internal::kFormatVersion);
  // Rewritten in place: the same inode, so a registered reader or a lock holder keeps its file.
  CHECK(StatOf(LockFilePath(path)).st_ino == lock_before.st_ino);
  CHECK(FormatWordOf(LockFilePath(path)) == internal::kFormatVersion);
  CHECK(FormatWordOf(RegistryFilePath(path)) == internal::kFormatVersion);
  CHECK(AllocatorMagicOf(path) == internal::kAllocatorMagic);  // the tripwire
  {
    absl::StatusOr<Domain> domain = Domain::Open(path, Options{});
    REQUIRE(domain.ok());
    absl::StatusOr<Atom> atom = domain->find_atom("default");
    REQUIRE(atom.ok());
    {
      absl::StatusOr<Snapshot> snap = atom->load();
      REQUIRE(snap.ok());
      CHECK(snap->version() == 3);
      CHECK(snap->tag() == 0);  // a narrow record has none
      CHECK(snap->map().get("key1") == std::optional<std::string_view>("value1"));
      CHECK(snap->map().get("key3") == std::optional<std::string_view>("value3"));
    }
    absl::StatusOr<CheckReport> check = domain->check();
    REQUIRE(check.ok());
    CHECK(check->problems.empty());
    // A swap replaces the narrow record (retired with its 32 bytes) by a wide one.
    absl::StatusOr<Snapshot> after = atom->swap([](Transaction& tx) {
      tx.set_tag(77);
      return tx.set("key4", "value4");
    });
    REQUIRE(after.ok());
    CHECK(after->version() == 4);
    CHECK(after->tag() == 77);
    absl::StatusOr<Snapshot> carried =
        atom->swap([](Transaction& tx) { return tx.erase("key2").status(); });
    REQUIRE(carried.ok());
    CHECK(carried->tag() == 77);  // carried forward from the base
    CHECK(carried->map().size() == 3);
  }
  absl::StatusOr<Domain> reopened = Domain::Open(path, Options{});
  REQUIRE(reopened.ok());
  absl::StatusOr<CheckReport> check = reopened->check();
  REQUIRE(check.ok());
  CHECK(check->problems.empty());
  CHECK(check->leaked_bytes == 0);
  absl::StatusOr<UpgradeReport> again = UpgradeDomain(path, Options{});
  REQUIRE(again.ok());
  CHECK(again->already_current);
}

// A format-4 file as a format-4 build leaves one: format 5's layout with no mailbox ever
// written and no record with a combining table (what a swap-only writer leaves), format 4's
// header word, checksum, allocator magic and companion words.
std::string MakeFormat4File(TempDir& dir) {
  const std::string path = dir.File("f4.atomap");
  {
    Options options = Small();
    options.combine_writes = false;
    absl::StatusOr<Domain> domain = Domain::Open(path, options);
    REQUIRE(domain.ok());
    absl::StatusOr<Atom> atom = domain->atom("default");
    REQUIRE(atom.ok());
    for (int i = 1; i <= 3; ++i) {
      REQUIRE(atom->swap([&](Transaction& tx) {
                    return tx.set(absl::StrCat("key", i), absl::StrCat("value", i));
                  })
                  .ok());
    }
  }
  const int fd = open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  internal::Header h;
  REQUIRE(pread(fd, &h, sizeof h, 0) == sizeof h);
  h.format_version = 4;
  h.checksum = internal::HeaderChecksum(h);
  REQUIRE(pwrite(fd, &h, internal::kImmutableHeaderBytes, 0) ==
          static_cast<ssize_t>(internal::kImmutableHeaderBytes));
  close(fd);
  WriteAllocatorMagic(path, internal::kFormat4AllocatorMagic);
  for (const std::string& companion : {LockFilePath(path), RegistryFilePath(path)}) {
    const int cfd = open(companion.c_str(), O_RDWR);
    REQUIRE(cfd >= 0);
    const std::uint32_t v4 = 4;
    REQUIRE(pwrite(cfd, &v4, sizeof v4, 8) == sizeof v4);
    close(cfd);
  }
  return path;
}

TEST_CASE("a format-4 file is refused with the upgrade named, then upgraded in place",
          "[upgrade]") {
  TempDir dir;
  const std::string path = MakeFormat4File(dir);
  absl::StatusOr<Domain> refused = Domain::Open(path, Options{});
  REQUIRE(absl::IsFailedPrecondition(refused.status()));
  CHECK(std::string(refused.status().message())
            .find("format 4 (atomap 0.4-dev); run 'atomap upgrade " + path + "'") !=
        std::string::npos);
  CHECK(FormatWordOf(path) == 4);  // the refusal touched nothing
  absl::StatusOr<UpgradeReport> report = UpgradeDomain(path, Options{});
  REQUIRE(report.ok());
  CHECK(report->from_version == 4);
  CHECK(report->to_version == internal::kFormatVersion);
  CHECK(FormatWordOf(path) == internal::kFormatVersion);
  CHECK(FormatWordOf(LockFilePath(path)) == internal::kFormatVersion);
  CHECK(FormatWordOf(RegistryFilePath(path)) == internal::kFormatVersion);
  CHECK(AllocatorMagicOf(path) == internal::kAllocatorMagic);
  absl::StatusOr<Domain> domain = Domain::Open(path, Options{});
  REQUIRE(domain.ok());
  absl::StatusOr<Atom> atom = domain->find_atom("default");
  REQUIRE(atom.ok());
  // Combining on a file that never had a mailbox: its zero words read as "nothing posted".
  CHECK(atom->add("n", 5).value_or(0) == 5);
  absl::StatusOr<Snapshot> snap = atom->load();
  REQUIRE(snap.ok());
  CHECK(snap->version() == 4);
  CHECK(snap->map().get("key2") == std::optional<std::string_view>("value2"));
  absl::StatusOr<CheckReport> check = domain->check();
  REQUIRE(check.ok());
  CHECK(check->problems.empty());
  CHECK(check->leaked_bytes == 0);
}

TEST_CASE("a format-3 upgrade interrupted before its header finishes on a rerun", "[upgrade]") {
  TempDir dir;
  const std::string path = CopyFormat3Fixture(dir);
  // As a crash after step 4 leaves it: the new magic and companion word, the old header.
  WriteAllocatorMagic(path, internal::kAllocatorMagic);
  {
    const int fd = open(LockFilePath(path).c_str(), O_RDWR);
    REQUIRE(fd >= 0);
    const std::uint32_t v4 = internal::kFormatVersion;
    REQUIRE(pwrite(fd, &v4, sizeof v4, 8) == sizeof v4);
    close(fd);
  }
  CHECK_FALSE(Domain::Open(path, Options{}).ok());  // still format 3 to this build
  absl::StatusOr<UpgradeReport> report = UpgradeDomain(path, Options{});
  REQUIRE(report.ok());
  CHECK(report->from_version == 3);
  absl::StatusOr<Domain> domain = Domain::Open(path, Options{});
  REQUIRE(domain.ok());
  absl::StatusOr<CheckReport> check = domain->check();
  REQUIRE(check.ok());
  CHECK(check->problems.empty());
}
#endif

}  // namespace
}  // namespace atomap

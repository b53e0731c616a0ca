// Domain creation and opening: race-free creation, never overwriting, kinds, permissions,
// read-only opens, and the clean/dirty state.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "atomap/domain.h"
#include "domain/domain_impl.h"
#include "file/domain_file.h"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

using internal::Access;

std::vector<std::string> DirectoryEntries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST_CASE("a missing file is created, and reopening finds the same domain", "[domain]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  std::uint64_t seed = 0;
  {
    absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(16, 64));
    REQUIRE(domain.ok());
    CHECK(domain->path() == path);
    CHECK(domain->kind() == DomainKind::kFile);
    CHECK_FALSE(domain->read_only());
    CHECK(Access(*domain).created());
    CHECK(Access(*domain).found_alone());
    seed = Access(*domain).header().hash_seed;
    const DomainInfo info = domain->info();
    CHECK(info.slots_in_use.size() == 1);
    CHECK(info.slots_in_use[0].pid == static_cast<std::uint32_t>(getpid()));
    CHECK(info.slot_capacity == 16);
    CHECK(info.atom_capacity == 64);
    CHECK(info.max_size == std::uint64_t{1} << 30);
    CHECK(info.size == Access(*domain).data_begin());
    CHECK_FALSE(info.clean);
    CHECK(Access(*domain).header().allocator_state_offset == internal::kHeaderBytes);
  }
  struct stat st;
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  Options other = SmallOptions(16, 64);
  other.slot_capacity = 99;  // layout options of an existing domain come from its header
  absl::StatusOr<Domain> again = Domain::Open(path, other);
  REQUIRE(again.ok());
  CHECK_FALSE(Access(*again).created());
  CHECK(Access(*again).was_clean());
  CHECK(Access(*again).header().hash_seed == seed);
  CHECK(again->info().slot_capacity == 16);
  // The domain and its two companions, and no temporary left behind.
  CHECK(DirectoryEntries(dir.path()).size() == 3);
}

TEST_CASE("the last handle to close marks the domain clean; others keep it dirty", "[domain]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  absl::StatusOr<Domain> a = Domain::Open(path, SmallOptions(16, 64));
  REQUIRE(a.ok());
  {
    absl::StatusOr<Domain> b = Domain::Open(path, SmallOptions(16, 64));
    REQUIRE(b.ok());
    CHECK_FALSE(Access(*b).found_alone());
    CHECK(b->info().slots_in_use.size() == 2);
  }
  CHECK_FALSE(a->info().clean);
  CHECK(a->info().slots_in_use.size() == 1);
  Domain moved = *std::move(a);
  CHECK_FALSE(moved.info().clean);
  {
    Domain sink = std::move(moved);
  }
  absl::StatusOr<Domain> c = Domain::Open(path, SmallOptions(16, 64));
  REQUIRE(c.ok());
  CHECK(Access(*c).was_clean());
  CHECK(Access(*c).found_alone());
}

TEST_CASE("requested permissions are applied exactly", "[domain]") {
  TempDir dir;
  Options options = SmallOptions(16, 64);
  options.permissions = 0640;
  const mode_t old_mask = umask(077);
  absl::StatusOr<Domain> domain = Domain::Open(dir.File("p.atomap"), options);
  umask(old_mask);
  REQUIRE(domain.ok());
  struct stat st;
  REQUIRE(stat(dir.File("p.atomap").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0640);
}

TEST_CASE("create_if_missing off gives NotFound and creates nothing", "[domain]") {
  TempDir dir;
  Options options = SmallOptions(16, 64);
  options.create_if_missing = false;
  absl::StatusOr<Domain> domain = Domain::Open(dir.File("none"), options);
  CHECK(domain.status().code() == absl::StatusCode::kNotFound);
  CHECK(DirectoryEntries(dir.path()).empty());
}

TEST_CASE("bad options are InvalidArgument naming the option", "[domain]") {
  TempDir dir;
  Options options = SmallOptions(16, 64);
  options.slot_capacity = 0;
  absl::StatusOr<Domain> domain = Domain::Open(dir.File("x"), options);
  CHECK(domain.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(domain.status().message().find("slot_capacity") != std::string::npos);
  options = SmallOptions(16, 64);
  options.max_size = 4096;
  domain = Domain::Open(dir.File("x"), options);
  CHECK(domain.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(domain.status().message().find("max_size") != std::string::npos);
  CHECK(DirectoryEntries(dir.path()).empty());
}

TEST_CASE("an existing empty or foreign file is an error and is not overwritten", "[domain]") {
  TempDir dir;
  const std::string empty = dir.File("empty");
  WriteBytes(empty, "");
  absl::StatusOr<Domain> domain = Domain::Open(empty, SmallOptions(16, 64));
  CHECK(domain.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(domain.status().message().find(empty) != std::string::npos);
  CHECK(ReadBytes(empty).empty());

  const std::string foreign = dir.File("foreign");
  const std::string text(10000, 'x');
  WriteBytes(foreign, text);
  domain = Domain::Open(foreign, SmallOptions(16, 64));
  CHECK(domain.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(domain.status().message().find("magic") != std::string::npos);
  CHECK(ReadBytes(foreign) == text);
}

TEST_CASE("a symbolic link at the path is refused unless follow_symlinks", "[domain]") {
  TempDir dir;
  const std::string target = dir.File("target.atomap");
  {
    REQUIRE(Domain::Open(target, SmallOptions(16, 64)).ok());
  }
  const std::string link_path = dir.File("link.atomap");
  REQUIRE(symlink(target.c_str(), link_path.c_str()) == 0);
  absl::StatusOr<Domain> refused = Domain::Open(link_path, SmallOptions(16, 64));
  CHECK(refused.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(refused.status().message().find("symbolic link") != std::string::npos);
  // A dangling link is not followed to create a file elsewhere either.
  const std::string dangling = dir.File("dangling.atomap");
  REQUIRE(symlink(dir.File("nowhere").c_str(), dangling.c_str()) == 0);
  CHECK_FALSE(Domain::Open(dangling, SmallOptions(16, 64)).ok());
  CHECK_FALSE(std::filesystem::exists(dir.File("nowhere")));
  Options follow = SmallOptions(16, 64);
  follow.follow_symlinks = true;
  CHECK(Domain::Open(link_path, follow).ok());
}

void RunCreationRace(bool named_temp) {
  internal::ForceNamedTempFileForTesting(named_temp);
  struct Restore {
    ~Restore() { internal::ForceNamedTempFileForTesting(false); }
  } restore;
  TempDir dir;
  const std::string path = dir.File("race.atomap");
  constexpr int kChildren = 8;
  struct Report {
    std::uint64_t seed;
    std::uint32_t slot;
    std::uint32_t ok;
  };
  Gate start;
  Gate finish;
  ReportPipe reports;
  std::vector<pid_t> children;
  for (int i = 0; i < kChildren; ++i) {
    children.push_back(ForkChild([&] {
      start.Wait();
      absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(16, 64));
      Report report{0, 0, domain.ok() ? 1u : 0u};
      if (domain.ok()) {
        report.seed = internal::Access(*domain).header().hash_seed;
        report.slot = internal::Access(*domain).process_slot().index();
      }
      reports.Send(report);
      finish.Wait();  // stay attached until the parent has looked
      return domain.ok() ? 0 : 1;
    }));
  }
  start.Open();
  std::set<std::uint64_t> seeds;
  std::set<std::uint32_t> slots;
  for (int i = 0; i < kChildren; ++i) {
    std::optional<Report> report = reports.Receive<Report>();
    REQUIRE(report.has_value());
    CHECK(report->ok == 1);
    seeds.insert(report->seed);
    slots.insert(report->slot);
  }
  CHECK(seeds.size() == 1);
  CHECK(slots.size() == kChildren);
  {
    absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(16, 64));
    REQUIRE(domain.ok());
    CHECK(Access(*domain).header().hash_seed == *seeds.begin());
    CHECK(domain->info().slots_in_use.size() == kChildren + 1);
    CHECK_FALSE(Access(*domain).found_alone());
  }
  finish.Open();
  for (pid_t child : children) CHECK(WaitChild(child) == 0);
  CHECK(DirectoryEntries(dir.path()) ==
        std::vector<std::string>{"race.atomap", "race.atomap.lock", "race.atomap.readers"});
}

TEST_CASE("creation race: processes opening one missing path get one domain", "[domain][race]") {
  RunCreationRace(/*named_temp=*/false);
}

TEST_CASE("creation race through the named-temporary fallback", "[domain][race]") {
  RunCreationRace(/*named_temp=*/true);
}

int pause_report_fd = -1;
void PauseBeforePublish() {
  const char c = 'p';
  (void)!write(pause_report_fd, &c, 1);
  for (;;) pause();
}

TEST_CASE("a creator killed before publishing leaves nothing at the path", "[domain][crash]") {
  TempDir dir;
  const std::string path = dir.File("interrupted.atomap");
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  const pid_t child = ForkChild([&] {
    close(fds[0]);
    pause_report_fd = fds[1];
    internal::SetBeforePublishHookForTesting(&PauseBeforePublish);
    (void)Domain::Open(path, SmallOptions(16, 64));
    return 1;  // not reached
  });
  close(fds[1]);
  char c = 0;
  REQUIRE(read(fds[0], &c, 1) == 1);  // the child's domain is complete, synced, not yet linked
  close(fds[0]);
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK(DirectoryEntries(dir.path()).empty());  // the file under construction has no name
  REQUIRE(kill(child, SIGKILL) == 0);
  CHECK(WaitChild(child) == 128 + SIGKILL);
  CHECK(DirectoryEntries(dir.path()).empty());
  absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(16, 64));
  REQUIRE(domain.ok());
  CHECK(Access(*domain).created());
}

TEST_CASE("read-only open of a 0444 file maps it read-only and refuses writes", "[domain]") {
  TempDir dir;
  const std::string path = dir.File("ro.atomap");
  {
    absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(16, 64));
    REQUIRE(domain.ok());
    REQUIRE(Access(*domain).atoms().FindOrCreate("config").ok());
  }
  REQUIRE(chmod(path.c_str(), 0444) == 0);
  const std::string before = ReadBytes(path);
  Options options = SmallOptions(16, 64);
  options.read_only = true;
  absl::StatusOr<Domain> domain = Domain::Open(path, options);
  REQUIRE(domain.ok());
  CHECK(domain->read_only());
  internal::DomainImpl& impl = Access(*domain);
  CHECK_FALSE(impl.process_slot().held());
  CHECK(domain->info().slots_in_use.empty());
  CHECK(domain->info().clean);
  CHECK(impl.atoms().Find("config").ok());
  CHECK(impl.atoms().FindOrCreate("config").status().code() ==
        absl::StatusCode::kFailedPrecondition);
  CHECK(impl.atoms().FindOrCreate("new").status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(impl.ClaimSlot().status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(impl.arena().Grow(impl.arena().SharedSize() + 1).code() ==
        absl::StatusCode::kFailedPrecondition);
  // We run as root, which ignores the mode bits: prove the mapping itself is read-only.
  auto* word = reinterpret_cast<std::uint64_t*>(&impl.header().global_epoch);
  const pid_t child = ForkChild([&] {
    *reinterpret_cast<volatile std::uint64_t*>(word) = 1;
    return 0;
  });
  CHECK(WaitChild(child) == 128 + SIGSEGV);
  domain = absl::StatusOr<Domain>(absl::CancelledError("closed"));
  CHECK(ReadBytes(path) == before);
  // A read-only open never creates.
  CHECK(Domain::Open(dir.File("absent"), options).status().code() == absl::StatusCode::kNotFound);
}

TEST_CASE("shared-memory domains live under /dev/shm and check their name", "[domain]") {
  const std::string name = "atomap-test-" + std::to_string(getpid());
  Options options = SmallOptions(16, 64);
  options.kind = DomainKind::kSharedMemory;
  {
    absl::StatusOr<Domain> domain = Domain::Open(name, options);
    REQUIRE(domain.ok());
    CHECK(domain->path() == "/dev/shm/atomap." + name);
    CHECK(domain->kind() == DomainKind::kSharedMemory);
    REQUIRE(Access(*domain).atoms().FindOrCreate("shared").ok());
    absl::StatusOr<Domain> second = Domain::Open(name, options);
    REQUIRE(second.ok());
    CHECK(Access(*second).atoms().Find("shared").ok());
  }
  CHECK(unlink(("/dev/shm/atomap." + name).c_str()) == 0);
  for (const char* bad : {"", "a/b", "../x", "sp ace"}) {
    CHECK(Domain::Open(bad, options).status().code() == absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("in-process domains need no file and behave the same", "[domain]") {
  Options options = SmallOptions(16, 64);
  options.kind = DomainKind::kInProcess;
  absl::StatusOr<Domain> domain = Domain::Open("scratch", options);
  REQUIRE(domain.ok());
  CHECK(domain->kind() == DomainKind::kInProcess);
  internal::DomainImpl& impl = Access(*domain);
  CHECK(impl.found_alone());
  CHECK(impl.process_slot().held());
  absl::StatusOr<std::uint32_t> atom = impl.atoms().FindOrCreate("a");
  REQUIRE(atom.ok());
  CHECK(*impl.atoms().Find("a") == *atom);
  const std::uint64_t size = impl.arena().SharedSize();
  REQUIRE(impl.arena().Grow(size + 1).ok());
  CHECK(domain->info().size > size);
  CHECK(impl.header().size.LoadAcquire() == domain->info().size);
  absl::StatusOr<internal::SlotLease> lease = impl.ClaimSlot();
  REQUIRE(lease.ok());
  CHECK(lease->index() != impl.process_slot().index());
  CHECK(domain->info().slots_in_use.size() == 2);
}

}  // namespace
}  // namespace atomap

// A full disk is an error, never a signal (docs/reliability.md, "Full disks and planted files").
//
// As root, each scenario runs against a small tmpfs and a loop-mounted ext4 image that a filler
// file has made full: creating a domain, creating atoms, attaching many processes, swapping
// until the domain cannot grow, reopening alone (the recovery sweep), and the atomap commands.
// Each runs in a forked child (or is the tool's own process) that must end with an exit, never
// with a signal: the library answers ResourceExhausted naming the file, or works. Once the filler
// is removed the domain passes check and holds every write that was acknowledged.
// Not root: every test warns and passes.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "arena/file_space.h"
#include "atomap/domain.h"
#include "file/domain_file.h"
#include "support/process.h"
#include "support/scratch_fs.h"
#include "support/small_options.h"

namespace atomap {
namespace {

constexpr std::uint32_t kSlots = 16;
constexpr std::uint32_t kAtoms = 64;
constexpr int kBaseKeys = 100;

// Child exit codes: how a scenario went wrong without dying.
enum ChildCode : int {
  kChildOk = 0,
  kChildWrongStatus = 10,  // an error that is not ResourceExhausted naming the file
  kChildOpenFailed = 11,
};

Options DiskOptions() { return SmallOptions(kSlots, kAtoms, DomainKind::kFile, 64 << 20); }

// ResourceExhausted naming the file (what a full disk must look like), or success.
bool FullDiskAnswer(const absl::Status& s, const std::string& path) {
  if (s.ok()) return true;
  if (absl::IsResourceExhausted(s) && s.message().find(path) != std::string::npos) return true;
  std::fprintf(stderr, "unexpected status: %s\n", s.ToString().c_str());
  return false;
}

std::string Key(const char* prefix, int i) { return prefix + std::to_string(i); }

absl::Status PutKey(Atom& atom, const std::string& key, const std::string& value) {
  return atom.swap([&](Transaction& tx) { return tx.set(key, value); }).status();
}

// Runs `body` in a forked child; fails the test if the child died of a signal.
int RunScenario(const char* what, const std::function<int()>& body) {
  const int code = WaitChild(ForkChild(body));
  INFO(what << ": child ended with " << code << " (128 + n: killed by signal n)");
  CHECK(code < 128);
  return code;
}

std::unique_ptr<ScratchFs> MountOrWarn(ScratchFs::Kind kind, std::uint64_t bytes) {
  std::string why;
  std::unique_ptr<ScratchFs> fs = ScratchFs::Mount(kind, bytes, &why);
  if (fs == nullptr) WARN("skipped: " << why);
  return fs;
}

// Atoms created on the full disk: each is created with one key, or refused politely. Reports
// the index of every atom whose key was acknowledged.
int CreateAtoms(const std::string& path, ReportPipe& acked) {
  absl::StatusOr<Domain> domain = Domain::Open(path, DiskOptions());
  if (!FullDiskAnswer(domain.status(), path)) return kChildWrongStatus;
  if (!domain.ok()) return kChildOk;
  for (int i = 0; i < static_cast<int>(kAtoms) - 2; ++i) {
    absl::StatusOr<Atom> atom = domain->atom(Key("atom", i));
    if (!FullDiskAnswer(atom.status(), path)) return kChildWrongStatus;
    if (!atom.ok()) continue;
    const absl::Status put = PutKey(*atom, "k", Key("v", i));
    if (!FullDiskAnswer(put, path)) return kChildWrongStatus;
    if (put.ok()) acked.Send(i);
  }
  return kChildOk;
}

// Swaps ever more keys into atom "base" until the domain cannot grow (or a bound is reached).
int SwapUntilFull(const std::string& path, ReportPipe& acked) {
  absl::StatusOr<Domain> domain = Domain::Open(path, DiskOptions());
  if (!FullDiskAnswer(domain.status(), path)) return kChildWrongStatus;
  if (!domain.ok()) return kChildOk;
  absl::StatusOr<Atom> atom = domain->atom("base");
  if (!atom.ok()) return kChildOpenFailed;
  const std::string value(300, 'v');
  for (int i = 0; i < 200000; ++i) {
    const absl::Status put = PutKey(*atom, Key("s", i), value);
    if (!FullDiskAnswer(put, path)) return kChildWrongStatus;
    if (!put.ok()) return kChildOk;
    acked.Send(i);
  }
  return kChildOk;
}

// kSlots - 1 processes attach at once (each claims a slot; 4 slots share a page). Each reports
// on a pipe of its own, so a child that dies before reporting is seen as end of file.
void AttachMany(const std::string& path) {
  Gate hold;
  std::vector<std::unique_ptr<ReportPipe>> reports;
  std::vector<pid_t> children;
  for (std::uint32_t i = 0; i < kSlots - 1; ++i) {
    reports.push_back(std::make_unique<ReportPipe>());
    ReportPipe& report = *reports.back();
    children.push_back(ForkChild([&] {
      absl::StatusOr<Domain> domain = Domain::Open(path, DiskOptions());
      const int code = FullDiskAnswer(domain.status(), path) ? kChildOk : kChildWrongStatus;
      report.Send(code);
      hold.Wait();  // all attached at once
      return code;
    }));
    report.CloseWriteEnd();
  }
  for (const std::unique_ptr<ReportPipe>& report : reports) (void)report->Receive<int>();
  hold.Open();
  for (const pid_t pid : children) {
    const int code = WaitChild(pid);
    INFO("attaching process ended with " << code << " (128 + n: killed by signal n)");
    CHECK(code == kChildOk);
  }
}

template <class Body>
std::vector<int> CollectAcked(const char* what, Body body) {
  ReportPipe acked;
  const pid_t pid = ForkChild([&] { return body(acked); });
  acked.CloseWriteEnd();
  std::vector<int> indexes;
  while (std::optional<int> i = acked.Receive<int>()) indexes.push_back(*i);
  const int code = WaitChild(pid);
  INFO(what << ": child ended with " << code << " (128 + n: killed by signal n)");
  CHECK(code == kChildOk);
  return indexes;
}

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  return names;
}

// The whole library scenario on one file system kind.
void LibraryOnFullDisk(ScratchFs::Kind kind) {
  std::unique_ptr<ScratchFs> fs = MountOrWarn(kind, 12 << 20);
  if (fs == nullptr) return;
  INFO("file system: " << fs->name());
  const std::string path = fs->File("domain");
  {
    absl::StatusOr<Domain> domain = Domain::Open(path, DiskOptions());
    REQUIRE(domain.ok());
    absl::StatusOr<Atom> base = domain->atom("base");
    REQUIRE(base.ok());
    for (int i = 0; i < kBaseKeys; ++i) REQUIRE(PutKey(*base, Key("b", i), "x").ok());
  }
  fs->Fill();

  // A new domain on the full disk: refused, and nothing left in the directory.
  for (const bool named_temp : {false, true}) {
    const std::vector<std::string> before = Entries(fs->path());
    RunScenario("create on a full disk", [&] {
      internal::ForceNamedTempFileForTesting(named_temp);
      const std::string fresh = fs->File("fresh");
      absl::StatusOr<Domain> domain = Domain::Open(fresh, DiskOptions());
      if (domain.ok()) return kChildWrongStatus;  // there is no room for its tables
      return FullDiskAnswer(domain.status(), fresh) ? kChildOk : kChildWrongStatus;
    });
    CHECK(Entries(fs->path()) == before);
  }

  const std::vector<int> atoms =
      CollectAcked("create atoms", [&](ReportPipe& acked) { return CreateAtoms(path, acked); });
  AttachMany(path);
  const std::vector<int> swaps = CollectAcked(
      "swap until full", [&](ReportPipe& acked) { return SwapUntilFull(path, acked); });
  CHECK(RunScenario("reopen alone (sweep)", [&] {
          absl::StatusOr<Domain> domain = Domain::Open(path, DiskOptions());
          return FullDiskAnswer(domain.status(), path) ? kChildOk : kChildWrongStatus;
        }) == kChildOk);

  fs->Unfill();
  absl::StatusOr<Domain> domain = Domain::Open(path, DiskOptions());
  REQUIRE(domain.ok());
  absl::StatusOr<CheckReport> report = domain->check();
  REQUIRE(report.ok());
  CHECK(report->ok());
  absl::StatusOr<Atom> base = domain->atom("base");
  REQUIRE(base.ok());
  absl::StatusOr<Snapshot> snap = base->load();
  REQUIRE(snap.ok());
  for (int i = 0; i < kBaseKeys; ++i) CHECK(snap->map().get(Key("b", i)).has_value());
  for (const int i : swaps) CHECK(snap->map().get(Key("s", i)).has_value());
  for (const int i : atoms) {
    absl::StatusOr<Atom> atom = domain->atom(Key("atom", i));
    REQUIRE(atom.ok());
    absl::StatusOr<Snapshot> s = atom->load();
    REQUIRE(s.ok());
    CHECK(s->map().get("k") == std::optional<std::string_view>(Key("v", i)));
  }
  // After space is back, the domain grows again.
  CHECK(PutKey(*base, "after", "freed").ok());
}

// Every byte below the domain's size has real blocks: the allocated blocks cover the size. With
// `zeros_written` (no fallocate), no hole either (SEEK_HOLE finds none before the end): tmpfs
// reports fallocated pages not yet written as holes to SEEK_HOLE, though they are allocated.
void ExpectNoHoles(const std::string& path, bool zeros_written = false) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  struct stat st;
  REQUIRE(fstat(fd, &st) == 0);
  INFO(path << ": " << st.st_size << " bytes, " << st.st_blocks << " blocks of 512");
  CHECK(static_cast<std::uint64_t>(st.st_blocks) * 512 >= static_cast<std::uint64_t>(st.st_size));
  if (zeros_written) CHECK(lseek(fd, 0, SEEK_HOLE) == st.st_size);
  close(fd);
}

TEST_CASE("a full tmpfs is an error, never a signal", "[full_disk]") {
  LibraryOnFullDisk(ScratchFs::Kind::kTmpfs);
}

TEST_CASE("a full ext4 is an error, never a signal", "[full_disk]") {
  LibraryOnFullDisk(ScratchFs::Kind::kExt4);
}

TEST_CASE("a new domain's header and tables are allocated, never holes", "[full_disk]") {
  std::unique_ptr<ScratchFs> fs = MountOrWarn(ScratchFs::Kind::kExt4, 16 << 20);
  if (fs == nullptr) return;
  for (const bool fallocate : {true, false}) {
    INFO("fallocate " << (fallocate ? "available" : "missing: zeros written"));
    internal::ForceNoFallocateForTesting(!fallocate);
    const std::string path = fs->File(fallocate ? "with" : "without");
    {
      absl::StatusOr<Domain> domain = Domain::Open(path, DiskOptions());
      REQUIRE(domain.ok());
      ExpectNoHoles(path, !fallocate);
      absl::StatusOr<Atom> atom = domain->atom("a");
      REQUIRE(atom.ok());
      REQUIRE(PutKey(*atom, "k", "v").ok());  // grows the data region
      ExpectNoHoles(path, !fallocate);
    }
    internal::ForceNoFallocateForTesting(false);
  }
}

TEST_CASE("a growth without fallocate on a full disk is ResourceExhausted", "[full_disk]") {
  std::unique_ptr<ScratchFs> fs = MountOrWarn(ScratchFs::Kind::kTmpfs, 8 << 20);
  if (fs == nullptr) return;
  const std::string path = fs->File("domain");
  absl::StatusOr<Domain> domain = Domain::Open(path, DiskOptions());
  REQUIRE(domain.ok());
  absl::StatusOr<Atom> atom = domain->atom("a");
  REQUIRE(atom.ok());
  fs->Fill();
  internal::ForceNoFallocateForTesting(true);
  const std::vector<int> swaps =
      CollectAcked("swap until full without fallocate",
                   [&](ReportPipe& acked) { return SwapUntilFull(path, acked); });
  internal::ForceNoFallocateForTesting(false);
  fs->Unfill();
  absl::StatusOr<CheckReport> report = domain->check();
  REQUIRE(report.ok());
  CHECK(report->ok());
}

TEST_CASE("a writable open backs a sparse file's tables or fails politely", "[full_disk]") {
  // A file whose tables are holes (made by a version that left them so, or copied sparsely).
  std::unique_ptr<ScratchFs> fs = MountOrWarn(ScratchFs::Kind::kTmpfs, 8 << 20);
  if (fs == nullptr) return;
  const std::string path = fs->File("domain");
  std::uint64_t data_begin = 0;
  {
    absl::StatusOr<Domain> domain = Domain::Open(path, DiskOptions());
    REQUIRE(domain.ok());
    data_begin = domain->info().size;  // nothing allocated yet: the size is data_begin
  }
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  constexpr off_t kTables = 8192;  // after the header and the allocator state
  REQUIRE(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, kTables,
                    static_cast<off_t>(data_begin) - kTables) == 0);
  close(fd);
  fs->Fill();
  // Its holes cannot be backed now: the open says so (before, the slot claim died of SIGBUS).
  CHECK(RunScenario("open a sparse domain on a full disk", [&] {
          absl::StatusOr<Domain> domain = Domain::Open(path, DiskOptions());
          if (domain.ok()) return kChildWrongStatus;
          return FullDiskAnswer(domain.status(), path) ? kChildOk : kChildWrongStatus;
        }) == kChildOk);
  fs->Unfill();
  absl::StatusOr<Domain> domain = Domain::Open(path, DiskOptions());
  REQUIRE(domain.ok());
  ExpectNoHoles(path);
}

TEST_CASE("a shared-memory domain's header and tables are allocated", "[full_disk]") {
  // /dev/shm is the machine's: it is never remounted or filled here. What makes a full /dev/shm
  // an error rather than a SIGBUS is the same allocation as on any tmpfs (tested above on a
  // tmpfs of our own), so this checks that the shared-memory path allocates too.
  const std::string name = "full-disk-test-" + std::to_string(getpid());
  Options options = DiskOptions();
  options.kind = DomainKind::kSharedMemory;
  absl::StatusOr<Domain> domain = Domain::Open(name, options);
  REQUIRE(domain.ok());
  ExpectNoHoles(domain->path());
  absl::StatusOr<Atom> atom = domain->atom("a");
  REQUIRE(atom.ok());
  REQUIRE(PutKey(*atom, "k", "v").ok());
  ExpectNoHoles(domain->path());
  unlink(domain->path().c_str());  // the mapping stays valid until the handle closes
}

#ifdef ATOMAP_TOOL_PATH
ProgramResult Tool(std::vector<std::string> args, const std::string& input = "") {
  args.insert(args.begin(), ATOMAP_TOOL_PATH);
  return RunProgram(args, input);
}

// The tool's answer on a full disk: success, or exit 3 with one line naming the problem.
void ExpectExitNotSignal(const ProgramResult& r, const std::string& what) {
  INFO(what << ": exit " << r.status << ", stderr: " << r.err);
  CHECK_FALSE(r.signaled);
  CHECK((r.status == 0 || r.status == 1 || r.status == 3));
  if (r.status == 3) {
    CHECK(r.err.rfind("atomap: ", 0) == 0);
    CHECK(r.err.find('\n') == r.err.size() - 1);
  }
}

void CommandsOnFullDisk(ScratchFs::Kind kind) {
  std::unique_ptr<ScratchFs> fs = MountOrWarn(kind, 12 << 20);
  if (fs == nullptr) return;
  INFO("file system: " << fs->name());
  const std::string path = fs->File("domain");
  REQUIRE(Tool({"create", path, "--slot-capacity", "16", "--atom-capacity", "64"}).status == 0);
  REQUIRE(Tool({"put", path, "before", "fill"}).status == 0);
  fs->Fill();
  std::vector<std::string> acked;  // keys whose put or load exited 0
  for (int i = 0; i < static_cast<int>(kAtoms) - 4; ++i) {  // new atoms: every record page
    const std::string key = Key("put", i);
    const ProgramResult r =
        Tool({"put", path, key, std::string(2000, 'p'), "--atom", Key("atom", i)});
    ExpectExitNotSignal(r, "put");
    if (r.status == 0) acked.push_back(Key("atom", i) + "/" + key);
  }
  std::string lines;
  for (int i = 0; i < 2000; ++i) {
    lines += "{\"key\":\"" + Key("load", i) + "\",\"value\":\"" + std::string(200, 'l') + "\"}\n";
  }
  const ProgramResult load = Tool({"load", path}, lines);
  ExpectExitNotSignal(load, "load");
  ExpectExitNotSignal(Tool({"create", fs->File("fresh")}), "create");
  CHECK(!std::filesystem::exists(fs->File("fresh")));
  ExpectExitNotSignal(Tool({"stat", path}), "stat");
  ExpectExitNotSignal(Tool({"check", path}), "check");
  ExpectExitNotSignal(Tool({"get", path, "before"}), "get");
  ExpectExitNotSignal(Tool({"compact", path, fs->File("compacted")}), "compact");

  fs->Unfill();
  CHECK(Tool({"check", path}).status == 0);
  CHECK(Tool({"get", path, "before"}).out == "fill\n");
  for (const std::string& atom_key : acked) {
    const std::size_t slash = atom_key.find('/');
    CHECK(Tool({"get", path, atom_key.substr(slash + 1), "--atom", atom_key.substr(0, slash)})
              .status == 0);
  }
  if (load.status == 0) CHECK(Tool({"get", path, "load1999"}).status == 0);
}

TEST_CASE("the atomap commands on a full tmpfs exit, never die of a signal", "[full_disk]") {
  CommandsOnFullDisk(ScratchFs::Kind::kTmpfs);
}

TEST_CASE("the atomap commands on a full ext4 exit, never die of a signal", "[full_disk]") {
  CommandsOnFullDisk(ScratchFs::Kind::kExt4);
}
#endif  // ATOMAP_TOOL_PATH

}  // namespace
}  // namespace atomap

// Issue 11, case 4 (read path): a damaged file never crashes or hangs a reader opened with
// Options::verify_reads, nor a writer's transaction on it, nor the atomap tool, and the damage
// is reported.
//
// A small domain (weak test hash, so that paths run 13 levels deep into collision nodes; inline
// and blob keys and values) is built, then every byte of every block its versions reach (version
// records, nodes, blobs) and of every atom's root word is flipped, one at a time, with three bit
// patterns. For each flip a forked child runs every checked reader (fuzz/fuzz_domain_file.h
// ReadChecked: get, iteration, diff, equality, stats, a compact-like copy) and, on a writable
// verify_reads open, a swap's writes (set, erase, update, set_many, get; never published); the
// flip is written through the file into the child's shared mapping and undone after, so one
// open serves all. The child must end normally; a signal (SIGSEGV, SIGBUS, SIGABRT, or the
// SIGALRM of a hang) fails the test and names the flip. The tool's reading commands are run on
// a sample of flips.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "atomap/diff.h"
#include "atomap/domain.h"
#include "atomap/watcher.h"
#include "common/hash.h"
#include "domain/domain_impl.h"
#include "file/domain_file.h"
#include "fuzz/fuzz_domain_file.h"
#include "hamt/access.h"
#include "hamt/read.h"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

using internal::Offset;

constexpr std::uint8_t kPatterns[] = {0x01, 0x80, 0xFF};

// One byte of the file to flip.
struct Flip {
  Offset at;
  std::uint8_t pattern;
};

// What the child reports: before each flip, the flip (so a crash names it); at the end, totals.
struct Report {
  std::uint64_t at;
  std::uint32_t pattern;
  std::uint32_t done;  // 1 for the final totals
  std::uint64_t flips;
  std::uint64_t damage_reported;  // flips where a checked read returned DataLoss
  std::uint64_t bad_status;       // non-OK statuses that were not DataLoss naming the file
  std::uint64_t writes_refused;   // flips where a write of a swap returned DataLoss
};

std::string Blob(std::size_t n, char c) { return std::string(n, c); }

// The domain: three atoms, inline and blob keys and values, and (weak hash) keys that differ
// only in the low 4 bits of their last byte, which collide in all 64 bits.
void Build(const std::string& path) {
  Options options = SmallOptions(4, 8, DomainKind::kFile, std::uint64_t{16} << 20);
  internal::SetCreatedHashKindForTesting(internal::HashKind::kTestWeak);
  absl::StatusOr<Domain> domain = Domain::Open(path, options);
  internal::SetCreatedHashKindForTesting(internal::HashKind::kXxh3);
  REQUIRE(domain.ok());
  const auto put = [&](const char* atom, std::vector<std::pair<std::string, std::string>> kv) {
    absl::StatusOr<Atom> a = domain->atom(atom);
    REQUIRE(a.ok());
    std::vector<std::pair<std::string_view, std::string_view>> views(kv.begin(), kv.end());
    REQUIRE(a->swap([&](Transaction& tx) { return tx.set_many(views); }).ok());
  };
  put("inline", {{"a", "1"}, {"bb", ""}, {"k2", "22222222"}, {"k3", "v3"}, {"k4", "four"}});
  put("blobs", {{"a-long-key-one", Blob(40, 'x')},
                {"k", Blob(200, 'y')},
                {"another-long-key", "short"},
                {"z", Blob(9, 'z')}});
  put("deep", {{"coll0", "c0"},
               {"coll1", Blob(17, 'c')},
               {"coll2", "c2"},
               {"a-long-colliding-key0", "x"},
               {"a-long-colliding-key1", Blob(24, 'q')},
               {"other", "o"}});
}

// Every byte a reader of the current versions may read: the atoms' root words and every block
// their versions reach.
std::vector<std::pair<Offset, std::uint64_t>> ReadRanges(const std::string& path) {
  Options options;
  options.create_if_missing = false;
  options.read_only = true;
  absl::StatusOr<Domain> domain = Domain::Open(path, options);
  REQUIRE(domain.ok());
  internal::DomainImpl& impl = internal::Access(*domain);
  std::set<std::pair<Offset, std::uint64_t>> ranges;
  impl.atoms().ForEach([&](std::uint32_t index, std::string_view) {
    const internal::SharedU64& root = impl.atoms().Root(index);
    ranges.emplace(impl.arena().OffsetOf(&root), sizeof root);
    const Offset version = root.LoadAcquire();
    internal::hamt::ForEachBlock(impl.arena(), version, [&](Offset off, std::uint64_t bytes) {
      ranges.emplace(off, bytes);
    });
  });
  return {ranges.begin(), ranges.end()};
}

std::vector<Flip> EveryFlip(const std::vector<std::pair<Offset, std::uint64_t>>& ranges) {
  std::set<Offset> bytes;
  for (const auto& [off, n] : ranges) {
    for (std::uint64_t i = 0; i < n; ++i) bytes.insert(off + i);
  }
  std::vector<Flip> flips;
  for (Offset at : bytes) {
    for (std::uint8_t p : kPatterns) flips.push_back(Flip{at, p});
  }
  return flips;
}

bool XorByte(int fd, Offset at, std::uint8_t pattern) {
  std::uint8_t b;
  if (pread(fd, &b, 1, static_cast<off_t>(at)) != 1) return false;
  b ^= pattern;
  return pwrite(fd, &b, 1, static_cast<off_t>(at)) == 1;
}

// Counts the checked reads' statuses: DataLoss naming the file is the only acceptable failure.
void Classify(const absl::Status& s, const std::string& path, bool& damage, std::uint64_t& bad) {
  if (s.ok()) return;
  if (absl::IsDataLoss(s) && s.message().find(path) != std::string_view::npos) {
    damage = true;
  } else {
    ++bad;
  }
}

// What the write function below ends with when every write succeeded: no write returns it.
constexpr char kNotPublished[] = "the test publishes nothing";

// The writes of a swap on the (damaged) current version of `atom`, which copy paths out of it:
// a get, a set that inserts into a collision node, sets that replace an inline and a blob value,
// erases (from a collision node, of a blob entry, of an entry whose parent may then inline its
// sibling), an update and a set_many, over keys of every atom (in "deep" they all cross the 13
// levels of collision paths). The function stops at the first error and otherwise ends with
// kNotPublished, so the swap publishes nothing and the file keeps its versions for the next
// flip. The swap's status: OK (all the writes succeeded), or the first error.
absl::Status WriteThrough(Atom& atom) {
  absl::StatusOr<Snapshot> swapped = atom.swap([](Transaction& tx) -> absl::Status {
    (void)tx.get("coll1");
    (void)tx.get("k");
    absl::Status s = tx.set("coll3", "new");
    if (s.ok()) s = tx.set("coll1", Blob(20, 'n'));
    if (s.ok()) s = tx.set("k4", "4");
    if (s.ok()) s = tx.erase("coll0").status();
    if (s.ok()) s = tx.erase("a-long-colliding-key1").status();
    if (s.ok()) s = tx.erase("a").status();
    if (s.ok())
      s = tx.update("k", [](std::optional<std::string_view>) {
        return std::optional<std::string>("updated");
      });
    if (s.ok()) s = tx.set_many({{"z", "zz"}, {"other", Blob(33, 'o')}, {"k2", ""}});
    if (s.ok()) (void)tx.get("coll2");
    return s.ok() ? absl::CancelledError(kNotPublished) : s;
  });
  if (swapped.ok()) return absl::InternalError("published");  // cannot happen: Cancelled above
  if (absl::IsCancelled(swapped.status()) && swapped.status().message() == kNotPublished) {
    return absl::OkStatus();
  }
  return swapped.status();
}

// The child: one read-only verify_reads open for the readers and one writable for the writes;
// each flip written, read and written through, undone. Exits 0, or 10-15 at the step that
// failed (15: the writes left the allocator's lists damaged).
int RunFlips(const std::string& path, const std::vector<Flip>& flips, ReportPipe& pipe) {
  alarm(120);  // a hang is a failure too: SIGALRM ends the child with a signal
  Options options;
  options.create_if_missing = false;
  options.read_only = true;
  options.verify_reads = true;
  absl::StatusOr<Domain> domain = Domain::Open(path, options);
  options.read_only = false;
  absl::StatusOr<Domain> writable = Domain::Open(path, options);
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (!domain.ok() || !writable.ok() || fd < 0) return 10;
  std::vector<std::string> names;
  internal::Access(*domain).atoms().ForEach(
      [&](std::uint32_t, std::string_view name) { names.emplace_back(name); });
  Report totals{};
  for (const Flip& f : flips) {
    pipe.Send(Report{f.at, f.pattern, 0, 0, 0, 0, 0});
    if (!XorByte(fd, f.at, f.pattern)) return 11;
    (void)fuzz::ReadChecked(*domain);
    bool damage = false;
    for (const std::string& name : names) {
      absl::StatusOr<Atom> atom = domain->atom(name);
      if (!atom.ok()) return 12;
      absl::StatusOr<Snapshot> snap = atom->load();  // DataLoss for a damaged root word
      Classify(snap.status(), path, damage, totals.bad_status);
      if (!snap.ok()) continue;
      Classify(snap->map().CheckedForEach([](std::string_view, std::string_view) {}), path, damage,
               totals.bad_status);
      Classify(snap->map().checked_get("coll1").status(), path, damage, totals.bad_status);
      Classify(Diff(Map(), snap->map()).status(), path, damage, totals.bad_status);
    }
    // Writes are promised to refuse damage the bounds checks can see, and the two ways a free
    // block that the base reaches could corrupt the allocator (transient.h, "Block identity");
    // a flip that none of them sees (an offset moved onto a block the write then allocates as
    // the size it reads it as) can still corrupt what a write builds. So the writes run only on
    // flips the readers reported.
    bool refused = false;
    for (std::size_t i = 0; damage && i < names.size(); ++i) {
      absl::StatusOr<Atom> atom = writable->atom(names[i]);
      if (!atom.ok()) return 13;
      Classify(WriteThrough(*atom), path, refused, totals.bad_status);
    }
    if (!XorByte(fd, f.at, f.pattern)) return 14;
    // The writes aborted, so the allocator's lists must be as whole as before the flip: a write
    // that freed or wrote a block it should not have is caught at its flip, not at the crash of
    // some later allocation (transient.h, "Block identity").
    if (!writable->stats().damage.ok()) return 15;
    ++totals.flips;
    totals.damage_reported += damage || refused;
    totals.writes_refused += refused;
  }
  totals.done = 1;
  pipe.Send(totals);
  return 0;
}

TEST_CASE("every single-byte flip of a map's blocks is read without a crash, and reported",
          "[damaged]") {
  TempDir dir;
  const std::string path = dir.File("flips.atomap");
  Build(path);
  const std::vector<Flip> flips = EveryFlip(ReadRanges(path));
  REQUIRE(flips.size() > 1000);
  ReportPipe pipe;
  const pid_t child = ForkChild([&] { return RunFlips(path, flips, pipe); });
  pipe.CloseWriteEnd();
  Report last{};
  while (std::optional<Report> r = pipe.Receive<Report>()) last = *r;
  const int code = WaitChild(child);
  INFO("child exit " << code << "; last flip: offset " << last.at << " ^ 0x" << std::hex
                     << last.pattern);
  REQUIRE(code == 0);
  REQUIRE(last.done == 1);
  CHECK(last.flips == flips.size());
  // Most flips land in bytes every reader reads (bitmaps, lengths, offsets): many must be seen.
  CHECK(last.damage_reported > flips.size() / 10);
  CHECK(last.bad_status == 0);
  // The writes read the same paths: damage on them is refused, not copied.
  CHECK(last.writes_refused > flips.size() / 10);
  CHECK(last.writes_refused < last.damage_reported);  // damage off their paths leaves them working
  // Every flip was undone: the file reads as built, with no damage.
  Options options;
  options.create_if_missing = false;
  options.verify_reads = true;
  absl::StatusOr<Domain> domain = Domain::Open(path, options);
  REQUIRE(domain.ok());
  absl::StatusOr<Snapshot> deep = domain->atom("deep")->load();
  REQUIRE(deep.ok());
  CHECK(deep->map().checked_get("coll1").value() == Blob(17, 'c'));
  CHECK(deep->map().CheckedForEach([](std::string_view, std::string_view) {}).ok());
  CHECK(deep->map().size() == 6);  // the child's swaps published nothing
  absl::StatusOr<Atom> deep_atom = domain->atom("deep");
  REQUIRE(deep_atom.ok());
  CHECK(WriteThrough(*deep_atom).ok());  // and on the whole file they all succeed
}

bool WriteWord(const std::string& path, Offset at, std::uint64_t word) {
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  const bool ok = fd >= 0 && pwrite(fd, &word, sizeof word, static_cast<off_t>(at)) == sizeof word;
  if (fd >= 0) close(fd);
  return ok;
}

absl::StatusOr<Domain> OpenChecked(const std::string& path, bool verify_reads) {
  Options options;
  options.create_if_missing = false;
  options.verify_reads = verify_reads;
  return Domain::Open(path, options);
}

TEST_CASE("what each reader returns for a damaged map (map.h contract)", "[damaged]") {
  TempDir dir;
  const std::string path = dir.File("contract.atomap");
  Build(path);
  // The "deep" atom's root node's first child, and its root word.
  Offset first_child = 0, root_word = 0;
  {
    absl::StatusOr<Domain> domain = OpenChecked(path, false);
    REQUIRE(domain.ok());
    internal::DomainImpl& impl = internal::Access(*domain);
    absl::StatusOr<std::uint32_t> index = impl.atoms().Find("deep");
    REQUIRE(index.ok());
    const internal::SharedU64& root = impl.atoms().Root(*index);
    root_word = impl.arena().OffsetOf(&root);
    const Offset node = internal::hamt::ReadVersion(impl.arena(), root.LoadAcquire()).root_node;
    REQUIRE(impl.arena().At<internal::hamt::NodeHeader>(node)->nodemap != 0);
    first_child = node + sizeof(internal::hamt::NodeHeader);
  }
  constexpr std::uint64_t kWild = 0x4141414141414140;  // aligned, far past the mapping
  REQUIRE(WriteWord(path, first_child, kWild));
  const std::vector<std::string> keys = {
      "coll0", "coll1", "coll2", "a-long-colliding-key0", "a-long-colliding-key1", "other"};
  for (const bool verify : {true, false}) {
    INFO("verify_reads " << verify);
    absl::StatusOr<Domain> domain = OpenChecked(path, verify);
    REQUIRE(domain.ok());
    absl::StatusOr<Snapshot> snap = domain->atom("deep")->load();
    REQUIRE(snap.ok());  // the record is whole; the damage is below it
    const Map& map = snap->map();
    // The checked calls report the damage whatever the options, naming the file and offset.
    const absl::Status all = map.CheckedForEach([](std::string_view, std::string_view) {});
    CHECK(absl::IsDataLoss(all));
    CHECK(all.message().find(path) != std::string_view::npos);
    CHECK(all.message().find(std::to_string(kWild)) != std::string_view::npos);
    int damaged_keys = 0;
    for (const std::string& key : keys) {
      absl::StatusOr<std::optional<std::string_view>> got = map.checked_get(key);
      if (got.ok()) {
        CHECK(got->has_value());  // keys off the damaged branch still read
        continue;
      }
      CHECK(absl::IsDataLoss(got.status()));
      ++damaged_keys;
      if (verify) CHECK_FALSE(map.get(key).has_value());  // the plain get stops quietly
    }
    CHECK(damaged_keys > 0);
    if (!verify) continue;  // the plain readers trust the file then: not run on damage
    int iterated = 0;
    for (auto it = map.begin(); it != map.end(); ++it) ++iterated;
    CHECK(iterated < static_cast<int>(keys.size()));
    CHECK(absl::IsDataLoss(Diff(Map(), map).status()));
    CHECK_FALSE(map == domain->atom("inline")->load()->map());
    CHECK(absl::IsDataLoss(Watcher::Start(*domain->atom("deep")).status()));
  }
  // A root word that names no version record: load() refuses it with verify_reads.
  REQUIRE(WriteWord(path, root_word, kWild));
  absl::StatusOr<Domain> domain = OpenChecked(path, true);
  REQUIRE(domain.ok());
  const absl::StatusOr<Snapshot> snap = domain->atom("deep")->load();
  CHECK(absl::IsDataLoss(snap.status()));
  CHECK(snap.status().message().find("version record") != std::string_view::npos);
}

#ifdef ATOMAP_TOOL_PATH
// Runs the atomap tool with `args`, output discarded: its exit code, or 128 + its signal.
int RunTool(const std::vector<std::string>& args) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    alarm(20);  // survives exec: a hang ends with SIGALRM
    ExecProgram(ATOMAP_TOOL_PATH, args);
  }
  return WaitChild(pid);
}

TEST_CASE("the tool's reading commands exit 0, 1 or 3 on damaged files, never by a signal",
          "[damaged][cli]") {
  TempDir dir;
  const std::string pristine = dir.File("pristine.atomap");
  Build(pristine);
  std::string bytes;
  {
    std::FILE* f = std::fopen(pristine.c_str(), "rb");
    REQUIRE(f != nullptr);
    for (int c; (c = std::fgetc(f)) != EOF;) bytes.push_back(static_cast<char>(c));
    std::fclose(f);
  }
  // A sample (each run of the tool costs milliseconds), of the bytes whose damage sends a
  // trusting reader furthest: in each block a high byte of its first word (a record's root, a
  // node's bitmaps, a blob's bytes) and of its second (a record's entry count: a wild size; a
  // node's first child or entry), and its first byte; in each root word, a high byte.
  std::vector<Flip> flips;
  for (const auto& [off, n] : ReadRanges(pristine)) {
    flips.push_back(Flip{off + 3, 0x80});
    if (n == sizeof(std::uint64_t)) continue;  // a root word
    flips.push_back(Flip{off, 0xFF});
    if (n >= 16) flips.push_back(Flip{off + 15, 0x80});
  }
  const std::string path = dir.File("damaged.atomap");
  // Under the sanitizers each run of the tool costs ~20x more: every 8th flip of the sample.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  constexpr std::size_t kStride = 8;
#else
  constexpr std::size_t kStride = 1;
#endif
  int trials = 0;
  for (std::size_t i = 0; i < flips.size(); i += kStride) {
    const Flip& f = flips[i];
    std::string damaged = bytes;
    damaged[f.at] = static_cast<char>(damaged[f.at] ^ f.pattern);
    {
      std::FILE* out = std::fopen(path.c_str(), "wb");
      REQUIRE(out != nullptr);
      REQUIRE(std::fwrite(damaged.data(), 1, damaged.size(), out) == damaged.size());
      std::fclose(out);
    }
    const std::string copy = dir.File("compacted.atomap");
    std::remove(copy.c_str());
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"dump", path, "--atom", "deep"},
          std::vector<std::string>{"get", path, "coll1", "--atom", "deep"},
          std::vector<std::string>{"compact", path, copy}}) {
      const int code = RunTool(args);
      INFO(args[0] << " after offset " << f.at << " ^ 0x" << std::hex << int{f.pattern} << std::dec
                   << ": exit " << code);
      CHECK((code == 0 || code == 1 || code == 3));
      ++trials;
    }
  }
  CHECK(trials * kStride > 100);
}
#endif  // ATOMAP_TOOL_PATH

}  // namespace
}  // namespace atomap

// Allocator across processes: forked children churn over one file-backed domain, each with its
// own ParticipantCache in the file, passing blocks around a ring of pipes so that every block
// sent is freed by a different process than allocated it. The domain starts with an empty data
// region, so the children also grow the file concurrently. No sleeps: pipes synchronise.
//
// Afterwards the parent, as a survivor taking the dead children's slots over, Flushes every
// child's cache and checks the accounting against what the children reported still live.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "alloc/allocator.h"
#include "alloc/allocator_state.h"
#include "alloc/size_classes.h"
#include "arena/arena.h"
#include "common/layout.h"
#include "support/block_pattern.h"
#include "support/temp_dir.h"

namespace atomap::internal {
namespace {

// File layout of this test's domain:
//   [0, 8)                                  the domain's size word (Arena::BindSizeWord)
//   [kHeaderBytes, +kAllocatorStateBytes)   AllocatorState
//   slots: kMaxChildren + 1 slots of kSlotBytes, each with its cache at kSlotAllocCacheOffset
//   data region from kDataBegin (page aligned)
constexpr int kChildren = 4;
constexpr std::uint64_t kSlotsBegin = kHeaderBytes + kAllocatorStateBytes;
constexpr std::uint64_t kDataBegin = RoundUp(kSlotsBegin + (kChildren + 1) * kSlotBytes, 4096);
constexpr std::uint64_t kMaxSize = std::uint64_t{4} << 30;
constexpr Offset kSizeWord = 0;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int kMessagesPerChild = 20000;
#else
constexpr int kMessagesPerChild = 100000;
#endif

Offset CacheOffset(int slot) {
  return kSlotsBegin + static_cast<std::uint64_t>(slot) * kSlotBytes + kSlotAllocCacheOffset;
}

struct Record {  // one block, as sent through a pipe
  Offset off;
  std::uint64_t bytes;
  std::uint64_t seed;
};

// Opens and maps the domain file as an independent participant would.
absl::StatusOr<std::unique_ptr<Arena>> OpenDomain(const std::string& path) {
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return absl::InternalError("open failed");
  auto arena = Arena::MapFile(fd, path, kMaxSize, /*writable=*/true);
  if (!arena.ok()) return arena.status();
  (*arena)->BindSizeWord((*arena)->At<SharedU64>(kSizeWord));
  // The grow lock lives on a lock file of its own (as a domain's PATH.lock), never on the mapped
  // file. Leaked for the arena's life: a test process's descriptors close when it exits.
  const int lock_fd = open((path + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) return absl::InternalError("open of the lock file failed");
  (*arena)->SetLockFile(lock_fd, path + ".lock", absl::Seconds(10));
  return arena;
}

bool MapFor(Arena& arena, Offset off, std::uint64_t bytes) {
  if (arena.InBounds(off, bytes)) return true;
  return arena.Refresh().ok() && arena.InBounds(off, bytes);
}
void Fill(Arena& arena, const Record& r) { FillPattern(arena, r.off, r.bytes, r.seed); }
bool Intact(Arena& arena, const Record& r) {
  return MapFor(arena, r.off, r.bytes) && PatternIntact(arena, r.off, r.bytes, r.seed);
}

bool WriteAll(int fd, const void* data, std::size_t n) {
  const auto* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}
bool ReadAll(int fd, void* data, std::size_t n) {
  auto* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

// A child's whole life. Exit codes: 0 ok, 10+ a failure (see the returns).
int ChildMain(const std::string& path, int id, int go_fd, int in_fd, int out_fd, int result_fd) {
  auto arena = OpenDomain(path);
  if (!arena.ok()) return 10;
  Allocator alloc(arena->get(), (*arena)->At<AllocatorState>(kHeaderBytes));
  ParticipantCache* cache = (*arena)->At<ParticipantCache>(CacheOffset(id));
  char go = 0;
  if (!ReadAll(go_fd, &go, 1)) return 11;  // start together

  std::mt19937_64 rng(1000 + static_cast<std::uint64_t>(id));
  auto random_bytes = [&] {
    const std::uint64_t r = rng() % 1000;
    return r < 900 ? 1 + rng() % 256 : r < 995 ? 1 + rng() % 16384 : 1 + rng() % (1 << 20);
  };
  std::vector<Record> mine;
  for (int k = 0; k < kMessagesPerChild; ++k) {
    // Allocate one block for the successor and send it.
    Record sent{0, random_bytes(), rng()};
    auto a = alloc.Allocate(cache, sent.bytes);
    if (!a.ok()) return 12;
    sent.off = *a;
    if (sent.off % kBlockAlign != 0) return 13;
    Fill(**arena, sent);
    if (!WriteAll(out_fd, &sent, sizeof(sent))) return 14;
    // Local churn: allocate one, free one of ours now and then.
    Record kept{0, random_bytes(), rng()};
    a = alloc.Allocate(cache, kept.bytes);
    if (!a.ok()) return 12;
    kept.off = *a;
    Fill(**arena, kept);
    mine.push_back(kept);
    if (rng() % 100 < 45) {
      const std::size_t i = rng() % mine.size();
      if (!Intact(**arena, mine[i])) return 15;
      alloc.Free(cache, mine[i].off, mine[i].bytes);
      mine[i] = mine.back();
      mine.pop_back();
    }
    // Receive the predecessor's block and free it here.
    Record got;
    if (!ReadAll(in_fd, &got, sizeof(got))) return 16;
    if (!Intact(**arena, got)) return 17;
    alloc.Free(cache, got.off, got.bytes);
  }
  // Report what is still live (the cache is left as it is: the parent flushes it, as a survivor
  // taking a dead participant's slot over would).
  for (const Record& r : mine) {
    if (!Intact(**arena, r)) return 18;
  }
  const std::uint64_t n = mine.size();
  if (!WriteAll(result_fd, &n, sizeof(n))) return 19;
  if (n > 0 && !WriteAll(result_fd, mine.data(), n * sizeof(Record))) return 19;
  return 0;
}

// Creates the domain file with an empty data region and formats the allocator in it; returns
// the creator's mapping.
std::unique_ptr<Arena> CreateDomain(const std::string& path) {
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(ftruncate(fd, static_cast<off_t>(kDataBegin)) == 0);  // zero-filled
  REQUIRE(close(fd) == 0);
  auto opened = OpenDomain(path);
  REQUIRE(opened.ok());
  std::unique_ptr<Arena> arena = std::move(*opened);
  arena->At<SharedU64>(kSizeWord)->InitPlain(kDataBegin);
  Allocator::Format(arena->At<AllocatorState>(kHeaderBytes), kDataBegin);
  for (int slot = 0; slot <= kChildren; ++slot) {
    Allocator::FormatCache(arena->At<ParticipantCache>(CacheOffset(slot)));
  }
  REQUIRE(Allocator::Validate(arena->At<AllocatorState>(kHeaderBytes), kDataBegin, path).ok());
  return arena;
}

// Two mappings of one file in one process stand for two processes. A batch whose first block
// lies inside B's (stale) mapping and whose second block lies beyond it must still be handed out
// safely: B maps what A grew before it reads the second block.
TEST_CASE("a participant with a stale mapping takes blocks that another one grew", "[alloc][mp]") {
  TempDir dir;
  const std::string path = dir.File("domain.atomap");
  std::unique_ptr<Arena> arena_a = CreateDomain(path);
  Allocator a(arena_a.get(), arena_a->At<AllocatorState>(kHeaderBytes));
  ParticipantCache* cache_a = arena_a->At<ParticipantCache>(CacheOffset(0));
  auto low = a.Allocate(cache_a, 48);  // grows the file to its first MiB
  REQUIRE(low.ok());

  // B attaches now: it maps the file as it is (the first MiB).
  auto opened_b = OpenDomain(path);
  REQUIRE(opened_b.ok());
  std::unique_ptr<Arena> arena_b = std::move(*opened_b);
  Allocator b(arena_b.get(), arena_b->At<AllocatorState>(kHeaderBytes));
  ParticipantCache* cache_b = arena_b->At<ParticipantCache>(CacheOffset(1));
  const std::uint64_t b_mapped = arena_b->mapped_size();
  REQUIRE(arena_b->InBounds(*low, 48));

  // A carves on until a block of the same class lies well beyond B's mapping.
  Offset high = kNullOffset;
  while (high < b_mapped + Arena::kGrowChunk) {
    auto r = a.Allocate(cache_a, 48);
    REQUIRE(r.ok());
    high = *r;
  }
  REQUIRE(arena_b->mapped_size() == b_mapped);  // B has not looked yet
  a.Free(cache_a, high, 48);
  a.Free(cache_a, *low, 48);  // A's private list: low -> high -> ...
  a.Flush(cache_a);           // one batch [low, high, ...] on the shared list

  auto first = b.Allocate(cache_b, 48);  // pops the batch: low is mapped, high is not (yet)
  REQUIRE(first.ok());
  CHECK(*first == *low);
  auto second = b.Allocate(cache_b, 48);
  REQUIRE(second.ok());
  CHECK(*second == high);
  REQUIRE(arena_b->InBounds(high, 48));
  *arena_b->At<std::uint64_t>(high) = 0x5EED;  // writable through B's mapping
  CHECK(*arena_a->At<std::uint64_t>(high) == 0x5EED);
}

TEST_CASE("multi-process churn over a growing file, then takeover of every cache", "[alloc][mp]") {
  TempDir dir;
  const std::string path = dir.File("domain.atomap");
  std::unique_ptr<Arena> arena = CreateDomain(path);
  auto* state = arena->At<AllocatorState>(kHeaderBytes);
  Allocator alloc(arena.get(), state);

  int go[2];
  REQUIRE(pipe(go) == 0);
  int ring[kChildren][2];  // ring[i]: child i -> child (i + 1) % kChildren
  int result[kChildren][2];
  for (int i = 0; i < kChildren; ++i) {
    REQUIRE(pipe(ring[i]) == 0);
    REQUIRE(pipe(result[i]) == 0);
  }
  std::vector<pid_t> children;
  for (int i = 0; i < kChildren; ++i) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // Keep only this child's ends, so that a failing child's successor sees EOF, not a hang.
      const int in_fd = ring[(i + kChildren - 1) % kChildren][0];
      for (int j = 0; j < kChildren; ++j) {
        if (ring[j][0] != in_fd) close(ring[j][0]);
        if (j != i) close(ring[j][1]);
        close(result[j][0]);
        if (j != i) close(result[j][1]);
      }
      close(go[1]);
      _exit(ChildMain(path, i, go[0], ring[(i + kChildren - 1) % kChildren][0], ring[i][1],
                      result[i][1]));
    }
    children.push_back(pid);
  }
  for (int i = 0; i < kChildren; ++i) {
    close(ring[i][0]);
    close(ring[i][1]);
    close(result[i][1]);
  }
  close(go[0]);
  const std::string go_bytes(kChildren, 'g');
  REQUIRE(WriteAll(go[1], go_bytes.data(), go_bytes.size()));
  close(go[1]);

  std::vector<Record> live;
  for (int i = 0; i < kChildren; ++i) {
    std::uint64_t n = 0;
    if (ReadAll(result[i][0], &n, sizeof(n))) {
      std::vector<Record> part(n);
      REQUIRE((n == 0 || ReadAll(result[i][0], part.data(), n * sizeof(Record))));
      live.insert(live.end(), part.begin(), part.end());
    }
    close(result[i][0]);
  }
  for (pid_t pid : children) {
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }

  // The parent sees everything the children grew, and every reported block is intact and
  // distinct.
  REQUIRE(arena->Refresh().ok());
  std::map<Offset, Record> by_offset;
  std::uint64_t live_bytes = 0;
  for (const Record& r : live) {
    REQUIRE(Intact(*arena, r));
    REQUIRE(by_offset.emplace(r.off, r).second);
    live_bytes += Allocator::BlockBytes(r.bytes);
  }
  Offset end_of_previous = kDataBegin;
  for (const auto& [off, r] : by_offset) {
    REQUIRE(off >= end_of_previous);
    end_of_previous = off + Allocator::BlockBytes(r.bytes);
  }
  REQUIRE(end_of_previous <= kDataBegin + alloc.Stats({}).total_bytes);

  std::vector<const ParticipantCache*> caches;
  for (int slot = 0; slot <= kChildren; ++slot) {
    caches.push_back(arena->At<ParticipantCache>(CacheOffset(slot)));
  }
  AllocatorStats s = alloc.Stats(caches);
  CHECK(s.live_bytes == live_bytes);
  CHECK(s.live_bytes + s.free_bytes + s.unused_bytes == s.total_bytes);

  // Takeover: flush every dead child's cache; nothing is lost.
  for (int slot = 0; slot < kChildren; ++slot) {
    alloc.Flush(arena->At<ParticipantCache>(CacheOffset(slot)));
  }
  s = alloc.Stats(caches);
  CHECK(s.live_bytes == live_bytes);
  CHECK(s.unused_bytes == 0);
  CHECK(s.live_bytes + s.free_bytes == s.total_bytes);

  // The parent frees what the children left and everything is free.
  ParticipantCache* mine = arena->At<ParticipantCache>(CacheOffset(kChildren));
  for (const Record& r : live) alloc.Free(mine, r.off, r.bytes);
  alloc.Flush(mine);
  s = alloc.Stats(caches);
  CHECK(s.live_bytes == 0);
  CHECK(s.free_bytes == s.total_bytes);
}

// ---- kill -9 anywhere ------------------------------------------------------------------------

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int kCrashRounds = 12;
#else
constexpr int kCrashRounds = 40;
#endif

// A child that churns until it is killed: allocates (mostly small, some large blocks), frees,
// Flushes now and then, checks that no block it holds is handed out again or overlaps another,
// and that contents survive. Writes 'p' every 32 operations, 'E' and exits on a failure.
[[noreturn]] void CrashChildMain(const std::string& path, int slot, int progress_fd,
                                 std::uint64_t seed) {
  auto fail = [&](int code) {
    const char e = 'E';
    WriteAll(progress_fd, &e, 1);
    _exit(code);
  };
  auto arena = OpenDomain(path);
  if (!arena.ok()) fail(30);
  Allocator alloc(arena->get(), (*arena)->At<AllocatorState>(kHeaderBytes));
  ParticipantCache* cache = (*arena)->At<ParticipantCache>(CacheOffset(slot));
  std::mt19937_64 rng(seed);
  std::map<Offset, Record> live;
  std::vector<Offset> order;
  for (std::uint64_t op = 1;; ++op) {
    if (live.empty() || (live.size() < 400 && rng() % 100 < 55)) {
      const std::uint64_t r = rng() % 1000;
      Record rec{0,
                 r < 850   ? 1 + rng() % 256
                 : r < 990 ? 1 + rng() % 20000
                           : 1 + rng() % (1 << 18),
                 rng()};
      auto a = alloc.Allocate(cache, rec.bytes);
      if (!a.ok()) fail(31);
      rec.off = *a;
      auto next = live.lower_bound(rec.off);
      if (next != live.end() && rec.off + Allocator::BlockBytes(rec.bytes) > next->first) fail(32);
      if (next != live.begin()) {
        const Record& prev = std::prev(next)->second;
        if (prev.off + Allocator::BlockBytes(prev.bytes) > rec.off) fail(33);
      }
      Fill(**arena, rec);
      live.emplace(rec.off, rec);
      order.push_back(rec.off);
    } else {
      const std::size_t i = rng() % order.size();
      const Offset off = order[i];
      order[i] = order.back();
      order.pop_back();
      const Record rec = live.at(off);
      live.erase(off);
      if (!Intact(**arena, rec)) fail(34);
      alloc.Free(cache, rec.off, rec.bytes);
    }
    if (rng() % 2000 == 0) alloc.Flush(cache);
    if (op % 32 == 0) {
      const char p = 'p';
      if (!WriteAll(progress_fd, &p, 1)) fail(35);
    }
  }
}

// Every free block (shared lists and the given caches' lists) and every unused bump region, read
// from the documented layout (docs/allocator.md), not through the allocator.
struct Range {
  Offset begin;
  std::uint64_t bytes;
};
std::vector<Range> CollectFree(const Arena& arena, const AllocatorState& state,
                               const std::vector<const ParticipantCache*>& caches) {
  namespace sc = size_classes;
  std::vector<Range> out;
  // No cycles:
  const std::uint64_t limit = (state.bump.LoadRelaxed() - state.data_begin) / kBlockAlign + 1;
  auto walk_chain = [&](Offset b, sc::SizeClass c) {
    for (; b != kNullOffset && out.size() < limit; b = *arena.At<Offset>(b + 8)) {
      out.push_back(Range{b, sc::ClassBytes(c)});
    }
  };
  for (sc::SizeClass c = 0; c < sc::kNumClasses; ++c) {
    for (Offset batch = state.heads[c].offset; batch != kNullOffset && out.size() < limit;
         batch = *arena.At<Offset>(batch)) {
      walk_chain(batch, c);
    }
  }
  for (const ParticipantCache* cache : caches) {
    for (sc::SizeClass c = 0; c < sc::kCachedClasses; ++c) walk_chain(cache->classes[c].head, c);
    if (cache->bump_cur < cache->bump_end) {
      out.push_back(Range{cache->bump_cur, cache->bump_end - cache->bump_cur});
    }
  }
  return out;
}

TEST_CASE("kill -9 during churn: takeover by Flush never duplicates a block",
          "[alloc][mp][crash]") {
  TempDir dir;
  const std::string path = dir.File("domain.atomap");
  std::unique_ptr<Arena> arena = CreateDomain(path);
  auto* state = arena->At<AllocatorState>(kHeaderBytes);
  Allocator alloc(arena.get(), state);
  std::vector<const ParticipantCache*> caches;
  for (int slot = 0; slot <= kChildren; ++slot) {
    caches.push_back(arena->At<ParticipantCache>(CacheOffset(slot)));
  }
  // The parent's own live blocks: no child may ever be handed one, or write into one.
  ParticipantCache* mine = arena->At<ParticipantCache>(CacheOffset(kChildren));
  std::mt19937_64 rng(77);
  std::vector<Record> parent_live;
  std::uint64_t parent_live_bytes = 0;
  for (int i = 0; i < 300; ++i) {
    Record r{0, 1 + rng() % 5000, rng()};
    auto a = alloc.Allocate(mine, r.bytes);
    REQUIRE(a.ok());
    r.off = *a;
    Fill(*arena, r);
    parent_live.push_back(r);
    parent_live_bytes += Allocator::BlockBytes(r.bytes);
  }

  for (int round = 0; round < kCrashRounds; ++round) {
    const int slot = round % kChildren;  // slots are reused after their takeover
    int progress[2];
    REQUIRE(pipe(progress) == 0);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      close(progress[0]);
      CrashChildMain(path, slot, progress[1], 5000 + static_cast<std::uint64_t>(round));
    }
    close(progress[1]);
    // Let it run for a random number of progress marks, then kill it wherever it is.
    const int marks = 1 + static_cast<int>(rng() % 400);
    std::string got(static_cast<std::size_t>(marks), '\0');
    const bool read_ok = ReadAll(progress[0], got.data(), got.size());
    kill(pid, SIGKILL);
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    close(progress[0]);
    INFO("round " << round << ", child status " << status);
    REQUIRE(read_ok);
    REQUIRE(got.find('E') == std::string::npos);
    REQUIRE(WIFSIGNALED(status));

    // Takeover of the dead child's slot.
    REQUIRE(arena->Refresh().ok());
    const absl::Status valid = Allocator::Validate(state, arena->mapped_size(), path);
    INFO(valid.ToString());
    REQUIRE(valid.ok());
    alloc.Flush(arena->At<ParticipantCache>(CacheOffset(slot)));

    // Free blocks and unused regions are disjoint from each other and from the parent's blocks,
    // and lie inside [data_begin, bump).
    std::vector<Range> ranges = CollectFree(*arena, *state, caches);
    for (const Record& r : parent_live)
      ranges.push_back(Range{r.off, Allocator::BlockBytes(r.bytes)});
    std::sort(ranges.begin(), ranges.end(),
              [](const Range& a, const Range& b) { return a.begin < b.begin; });
    Offset end_of_previous = kDataBegin;
    for (const Range& r : ranges) {
      REQUIRE(r.begin % kBlockAlign == 0);
      REQUIRE(r.begin >= end_of_previous);
      end_of_previous = r.begin + r.bytes;
    }
    REQUIRE(end_of_previous <= state->bump.LoadRelaxed());
    for (const Record& r : parent_live) REQUIRE(Intact(*arena, r));

    // Accounting after crashes: what a crash lost uncounted makes it <=, never >.
    const AllocatorStats s = alloc.Stats(caches);
    CHECK(s.live_bytes + s.free_bytes + s.unused_bytes <= s.total_bytes);
    CHECK(s.live_bytes >= parent_live_bytes);
  }
  // The parent can still allocate and free normally.
  for (const Record& r : parent_live) alloc.Free(mine, r.off, r.bytes);
  alloc.Flush(mine);
  auto again = alloc.Allocate(mine, 100);
  REQUIRE(again.ok());
}

}  // namespace
}  // namespace atomap::internal

// ChainWalk (alloc/chain_walk.h), the one bounded walk of a chain read from the file, and the
// walks that go through it: a damaged chain (a cycle, a wild link) ends a walk with a clear
// result, never a hang. Each walk that hung on the code before ChainWalk runs in a forked child
// with a deadline, so that a regression fails the test instead of hanging ctest.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "alloc/allocator.h"
#include "alloc/chain_walk.h"
#include "alloc/size_classes.h"
#include "atomap/check.h"
#include "atomap/domain.h"
#include "domain/domain_impl.h"
#include "epoch/retire_list.h"
#include "file/header.h"
#include "intent/owned_lane.h"
#include "support/deadline.h"
#include "support/filled_domain.h"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"
#include "support/test_allocator.h"

namespace atomap::internal {
namespace {

// Generous for the sanitizer builds: every walk here takes milliseconds.
constexpr int kDeadlineMs = 30000;

Offset& Word(Arena& arena, Offset block, int i) { return *arena.At<Offset>(block + 8 * i); }

// Caps a child's address space (not under the sanitizers, which reserve terabytes of it).
void LimitMemory() {
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  const rlimit limit{std::uint64_t{2} << 30, std::uint64_t{2} << 30};
  setrlimit(RLIMIT_AS, &limit);
#endif
}

void Report(int fd, const std::string& text) {
  const ssize_t n = write(fd, text.data(), text.size());
  (void)n;
}

// Four blocks of 64 bytes, chained through word 1: b[0] -> b[1] -> b[2] -> b[3] -> 0.
struct FourBlocks {
  FourBlocks() {
    for (Offset& block : b) block = *t.alloc->Allocate(t.caches[0], 64);
    for (int i = 0; i < 4; ++i) Word(*t.arena, b[i], 1) = i < 3 ? b[i + 1] : kNullOffset;
  }
  // The links a walk accepts, following word 1 from b[0].
  std::uint64_t Walk(ChainWalk& walk) {
    std::uint64_t n = 0;
    for (Offset o = b[0]; walk.Continues(o); o = Word(*t.arena, o, 1)) ++n;
    return n;
  }
  TestAllocator t{std::uint64_t{16} << 20, std::uint64_t{1} << 20};
  Offset b[4];
};

TEST_CASE("a chain walk ends at the null link, a link that is not a block, or a cycle", "[walk]") {
  FourBlocks f;
  SECTION("a whole chain") {
    ChainWalk walk(*f.t.alloc, 64);
    CHECK(f.Walk(walk) == 4);
    CHECK(walk.end() == ChainWalk::End::kNull);
    CHECK_FALSE(walk.damaged());
    CHECK(walk.Status("f", "list").ok());
    CHECK_FALSE(walk.Continues(f.b[0]));  // ended for good (W4)
  }
  SECTION("a link into the header") {
    Word(*f.t.arena, f.b[2], 1) = 64;
    ChainWalk walk(*f.t.alloc, 64);
    CHECK(f.Walk(walk) == 3);
    CHECK(walk.end() == ChainWalk::End::kNotABlock);
    CHECK(walk.stopped_at() == 64);
    const absl::Status s = walk.Status("f.atomap", "free list");
    CHECK(absl::IsDataLoss(s));
    CHECK_THAT(std::string(s.message()),
               Catch::StartsWith("f.atomap: free list: a link to offset 64, which is not"));
  }
  SECTION("a misaligned link, and one past the mapping") {
    Word(*f.t.arena, f.b[1], 1) = f.b[2] + 8;
    ChainWalk misaligned(*f.t.alloc, 64);
    CHECK(f.Walk(misaligned) == 2);
    CHECK(misaligned.end() == ChainWalk::End::kNotABlock);
    Word(*f.t.arena, f.b[1], 1) = f.t.arena->mapped_size() - 32;
    ChainWalk past(*f.t.alloc, 64);
    CHECK(f.Walk(past) == 2);
    CHECK(past.end() == ChainWalk::End::kNotABlock);
  }
  SECTION("a cycle, found cheaply") {
    Word(*f.t.arena, f.b[3], 1) = f.b[1];
    ChainWalk walk(*f.t.alloc, 64);
    CHECK(f.Walk(walk) <= 2 * 4 + 1);  // Brent: within about twice the chain's length
    CHECK(walk.end() == ChainWalk::End::kRepeat);
    CHECK_THAT(walk.Describe(), Catch::Contains("a cycle"));
  }
  SECTION("a cycle, found exactly: no block twice") {
    Word(*f.t.arena, f.b[3], 1) = f.b[1];
    ChainWalk walk(*f.t.alloc, 64, ChainWalk::Repeats::kExact);
    CHECK(f.Walk(walk) == 4);
    CHECK(walk.end() == ChainWalk::End::kRepeat);
    CHECK(walk.stopped_at() == f.b[1]);
  }
  SECTION("a block linked to itself") {
    Word(*f.t.arena, f.b[0], 1) = f.b[0];
    ChainWalk cheap(*f.t.alloc, 64);
    CHECK(f.Walk(cheap) == 1);
    CHECK(cheap.end() == ChainWalk::End::kRepeat);
  }
  SECTION("no walk outlasts the blocks its bounds hold") {
    // Bounds of exactly 40 blocks and a cycle through all of them: Brent would need 72 steps
    // (the link saved at step 32 comes back at step 72), the budget (W2) allows 41.
    const Offset begin = RoundUp(f.b[3] + 64, 4096);
    for (int i = 0; i < 40; ++i) Word(*f.t.arena, begin + 64 * i, 1) = begin + 64 * ((i + 1) % 40);
    ChainWalk walk(BlockBounds{begin, begin + 40 * 64}, 64);
    std::uint64_t n = 0;
    for (Offset o = begin; walk.Continues(o); o = Word(*f.t.arena, o, 1)) ++n;
    CHECK(n == 41);
    CHECK(walk.end() == ChainWalk::End::kTooLong);
    CHECK_THAT(walk.Describe(), Catch::Contains("longer than the data region"));
  }
  SECTION("a walk past the bounds it began with maps what another process grew") {
    TestAllocator small(std::uint64_t{16} << 20, kTestDataBegin + 65536);
    const Offset a = *small.alloc->Allocate(small.caches[0], 64);
    ChainWalk walk(*small.alloc, 64);
    REQUIRE(small.arena->Grow(kTestDataBegin + 2 * 65536).ok());
    const Offset beyond = kTestDataBegin + 65536 + 64;  // mapped only after the walk began
    Word(*small.arena, a, 1) = beyond;
    Word(*small.arena, beyond, 1) = kNullOffset;
    CHECK(walk.Continues(a));
    CHECK(walk.Continues(beyond));
    CHECK_FALSE(walk.Continues(kNullOffset));
    CHECK(walk.end() == ChainWalk::End::kNull);
  }
}

TEST_CASE("BlockBounds is the one check of what can be a block", "[walk]") {
  const BlockBounds bounds{4096, 8192};
  CHECK(bounds.Holds(4096, 16));
  CHECK(bounds.Holds(8192 - 64, 64));
  CHECK_FALSE(bounds.Holds(4096 - 16, 16));  // below the data region
  CHECK_FALSE(bounds.Holds(4104, 16));       // misaligned
  CHECK_FALSE(bounds.Holds(8192 - 32, 64));  // reaches past the limit
  CHECK_FALSE(bounds.Holds(4096, 0));        // no size
  CHECK_FALSE(bounds.Holds(4096, kMaxPlausibleBlockBytes + 16));
  CHECK_FALSE(bounds.Holds(~std::uint64_t{0} - 15, 64));  // no wrap-around
  CHECK(bounds.Contains(4096, 0));
}

// Allocator::Stats in a child with a deadline: the damage it reports (empty: none), or "hung".
std::string StatsDamage(TestAllocator& t) {
  const BoundedRun run = RunBounded(
      [&](int fd) {
        const AllocatorStats stats = t.Stats();
        Report(fd, stats.damage.ok() ? std::string("ok") : stats.damage.ToString());
        return 0;
      },
      kDeadlineMs);
  if (run.hung) return "hung";
  REQUIRE(run.exit_code == 0);
  return run.output;
}

TEST_CASE("Allocator::Stats reports a cyclic free list as damage, without hanging", "[walk]") {
  // Eight freed blocks of one class on caches[0]'s private list (newest first).
  TestAllocator t(std::uint64_t{16} << 20, std::uint64_t{1} << 20);
  const size_classes::SizeClass c = size_classes::ClassOf(64);
  Offset blocks[8];
  for (Offset& b : blocks) b = *t.alloc->Allocate(t.caches[1], 64);
  for (Offset b : blocks) t.alloc->Free(t.caches[0], b, 64);
  REQUIRE(StatsDamage(t) == "ok");
  SECTION("a private list") {
    Word(*t.arena, blocks[0], 1) = t.caches[0]->classes[c].head;  // its last block -> its first
    CHECK_THAT(StatsDamage(t), Catch::Contains("DATA_LOSS") && Catch::Contains("class") &&
                                   Catch::Contains("cycle"));
  }
  SECTION("a shared list's batch links") {
    t.alloc->Flush(t.caches[0]);
    REQUIRE(StatsDamage(t) == "ok");
    const Offset head = t.state->heads[c].offset;
    REQUIRE(head != kNullOffset);
    Word(*t.arena, head, 0) = head;  // the batch is its own next batch
    CHECK_THAT(StatsDamage(t),
               Catch::Contains("shared free list of class") && Catch::Contains("cycle"));
  }
  SECTION("a shared list's chain into the header") {
    t.alloc->Flush(t.caches[0]);
    const Offset head = t.state->heads[c].offset;
    Word(*t.arena, head, 1) = kHeaderBytes;  // into the allocator state
    CHECK_THAT(StatsDamage(t), Catch::Contains("not an aligned block"));
  }
}

TEST_CASE("a lane whose chain is cyclic is cut where the walk ends", "[walk]") {
  TestAllocator t(std::uint64_t{16} << 20, std::uint64_t{1} << 20);
  const Offset b1 = *t.alloc->Allocate(t.caches[0], kOwnedBatchBytes);
  const Offset b2 = *t.alloc->Allocate(t.caches[0], kOwnedBatchBytes);
  t.arena->At<OwnedBatch>(b1)->next = b2;
  t.arena->At<OwnedBatch>(b2)->next = b1;
  LaneWords words{b1, {}};
  words.count.InitPlain(1000);  // a count past what the chain holds, too
  const BoundedRun run = RunBounded(
      [&](int fd) {
        LimitMemory();  // the walk before ChainWalk filled memory here: fail, not swap
        OwnedLane lane(&words, 0, t.alloc.get(), t.caches[0]);
        Report(fd, std::to_string(lane.size()) + " " +
                       std::to_string(t.arena->At<OwnedBatch>(b2)->next));
        lane.Truncate(0);
        lane.Release();  // frees each batch once (an ASan build would see a double free)
        return 0;
      },
      kDeadlineMs);
  REQUIRE_FALSE(run.hung);
  CHECK(run.exit_code == 0);
  CHECK(run.output == std::to_string(2 * OwnedBatch::kCapacity) + " 0");
}

// A domain with free lists and an atom, closed cleanly (the caches flushed to shared lists).
std::string FilledDomain(const TempDir& dir) {
  const std::string path = dir.File("d.atomap");
  FillDomain(path);
  return path;
}

// Domain::stats() of the domain at `path` after `damage` in a child with a deadline.
std::string DomainStatsDamage(const std::string& path,
                              const std::function<void(DomainImpl&)>& damage) {
  const BoundedRun run = RunBounded(
      [&](int fd) {
        absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(4, 4));
        if (!domain.ok()) return 1;
        damage(Access(*domain));
        const DomainStats stats = domain->stats();
        Report(fd, stats.damage.ok() ? std::string("ok") : stats.damage.ToString());
        return 0;  // _exits: the damaged domain is never closed
      },
      kDeadlineMs);
  if (run.hung) return "hung";
  REQUIRE(run.exit_code == 0);
  return run.output;
}

TEST_CASE("Domain::stats reports a damaged list as damage, without hanging", "[walk]") {
  TempDir dir;
  const std::string path = FilledDomain(dir);
  REQUIRE(DomainStatsDamage(path, [](DomainImpl&) {}) == "ok");
  SECTION("a cyclic shared free list") {
    const std::string damage = DomainStatsDamage(path, [](DomainImpl& domain) {
      AllocatorState& state = *domain.allocator_state();
      for (const FreeListHead& head : state.heads) {
        if (head.offset == kNullOffset) continue;
        Word(domain.arena(), head.offset, 0) = head.offset;
        return;
      }
    });
    CHECK_THAT(damage, Catch::Contains(path) && Catch::Contains("shared free list") &&
                           Catch::Contains("cycle"));
  }
  SECTION("a cyclic orphan chain") {
    const std::string damage = DomainStatsDamage(path, [](DomainImpl& domain) {
      const Offset batch = domain.allocator_state()->data_begin;
      domain.arena().At<RetireBatch>(batch)->next = batch;
      domain.arena().At<RetireBatch>(batch)->count = 0;
      domain.header().orphan_retired.StoreRelease(batch);
    });
    CHECK_THAT(damage, Catch::Contains(path) && Catch::Contains("orphan chain") &&
                           Catch::Contains("cycle"));
  }
}

TEST_CASE("check reports a cyclic free list through the same walker", "[walk][check]") {
  TempDir dir;
  const std::string path = FilledDomain(dir);
  const BoundedRun run = RunBounded(
      [&](int fd) {
        absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(4, 4));
        if (!domain.ok()) return 1;
        DomainImpl& impl = Access(*domain);
        for (const FreeListHead& head : impl.allocator_state()->heads) {
          if (head.offset == kNullOffset) continue;
          Word(impl.arena(), head.offset, 0) = head.offset;
          break;
        }
        absl::StatusOr<CheckReport> report = domain->check();
        if (!report.ok()) return 2;
        for (const std::string& problem : report->problems) Report(fd, problem + "\n");
        return 0;
      },
      kDeadlineMs);
  REQUIRE_FALSE(run.hung);
  CHECK(run.exit_code == 0);
  CHECK_THAT(run.output,
             Catch::Contains("shared free list of class") && Catch::Contains("a cycle"));
}

TEST_CASE("WalkSettled reports damage that two walks with an unchanged stamp both find", "[walk]") {
  const absl::Status wild = absl::DataLossError("a link to offset 7");
  int walks = 0;
  SECTION("a list nobody changes: its damage, after a second walk") {
    CHECK(WalkSettled([] { return 1; }, [&] { return ++walks, wild; }) == wild);
    CHECK(walks == 2);
  }
  SECTION("a stamp that came back while one walk read a reused block (ABA): no damage") {
    // The first walk read garbage; the owner's changes put the stamp back; the next walk is
    // clean.
    CHECK(
        WalkSettled([] { return 1; }, [&] { return ++walks == 1 ? wild : absl::OkStatus(); }).ok());
    CHECK(walks == 2);
  }
  SECTION("different damage in each walk with an unchanged stamp is a list that changed") {
    CHECK(WalkSettled([] { return 1; },
                      [&] { return absl::DataLossError(absl::StrCat("at ", ++walks)); })
              .ok());
    CHECK(walks == kSettleTries);
  }
  SECTION("a stamp that changes during every walk: no damage, kSettleTries walks") {
    int stamp = 0;
    CHECK(WalkSettled([&] { return ++stamp; }, [&] { return ++walks, wild; }).ok());
    CHECK(walks == kSettleTries);
  }
}

TEST_CASE("Domain::stats of a domain that another process writes reports no damage", "[walk][mp]") {
  TempDir dir;
  const std::string path = FilledDomain(dir);
  Domain domain = *Domain::Open(path, SmallOptions(4, 4));
  ReportPipe started;
  const pid_t writer = ForkChild([&] {
    absl::StatusOr<Domain> d = Domain::Open(path, SmallOptions(4, 4));
    if (!d.ok()) return 1;
    Atom atom = *d->atom("a");
    for (std::uint64_t i = 0;; ++i) {  // until killed: sets and erases, so lists churn
      const std::string key = "key-" + std::to_string(i % 97);
      (void)atom.swap([&](Transaction& tx) {
        if (i % 3 == 2) return tx.erase(key).status();
        return tx.set(key, std::string(24 + i % 200, 'w'));
      });
      if (i == 100) started.Send(std::uint8_t{1});
    }
  });
  started.CloseWriteEnd();
  REQUIRE(started.Receive<std::uint8_t>().has_value());
  int damaged = 0;
  std::string first;
  for (int i = 0; i < 300; ++i) {
    const DomainStats stats = domain.stats();
    if (!stats.damage.ok() && damaged++ == 0) first = stats.damage.ToString();
  }
  kill(writer, SIGKILL);
  WaitChild(writer);
  INFO(first);
  CHECK(damaged == 0);
}

}  // namespace
}  // namespace atomap::internal

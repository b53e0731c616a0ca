// Allocator: size classes, churn with full accounting, caches and Flush, multi-threaded churn,
// ResourceExhausted, and a rapidcheck model test.
//
// Every accounting check compares the allocator's Stats() with the test's own count of live
// bytes (the block sizes of what the test allocated and has not freed), and checks
// live + free + unused == total.
#include <rapidcheck.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "alloc/allocator.h"
#include "alloc/allocator_state.h"
#include "alloc/size_classes.h"
#include "arena/arena.h"
#include "common/layout.h"
#include "support/block_pattern.h"
#include "support/test_allocator.h"

namespace atomap::internal {
namespace {

namespace sc = size_classes;

constexpr std::uint64_t kDataBegin = kTestDataBegin;  // the recipe: support/test_allocator.h

void Fill(const Arena& arena, Offset off, std::uint64_t bytes, std::uint64_t seed) {
  FillPattern(arena, off, bytes, seed);
}
bool Intact(const Arena& arena, Offset off, std::uint64_t bytes, std::uint64_t seed) {
  return PatternIntact(arena, off, bytes, seed);
}

// The test's own model of what is live: offset -> {requested bytes, seed}.
struct LiveBlock {
  std::uint64_t bytes;
  std::uint64_t seed;
};
class Model {
 public:
  // Returns an empty string if `off` is a valid fresh block, else what is wrong.
  std::string Add(Offset off, std::uint64_t bytes, std::uint64_t seed) {
    const std::uint64_t size = Allocator::BlockBytes(bytes);
    if (off % kBlockAlign != 0) return "misaligned block";
    if (off < kDataBegin) return "block before the data region";
    auto next = live_.lower_bound(off);
    if (next != live_.end() && next->first == off) return "offset handed out twice while live";
    if (next != live_.end() && off + size > next->first) return "overlaps the next live block";
    if (next != live_.begin()) {
      auto prev = std::prev(next);
      if (prev->first + Allocator::BlockBytes(prev->second.bytes) > off) {
        return "overlaps the previous live block";
      }
    }
    live_.emplace(off, LiveBlock{bytes, seed});
    live_bytes_ += size;
    return "";
  }
  LiveBlock Remove(Offset off) {
    auto it = live_.find(off);
    REQUIRE(it != live_.end());
    LiveBlock b = it->second;
    live_.erase(it);
    live_bytes_ -= Allocator::BlockBytes(b.bytes);
    return b;
  }
  std::uint64_t live_bytes() const { return live_bytes_; }
  const std::map<Offset, LiveBlock>& live() const { return live_; }
  bool empty() const { return live_.empty(); }

 private:
  std::map<Offset, LiveBlock> live_;
  std::uint64_t live_bytes_ = 0;
};

void CheckAccounting(const AllocatorStats& s, std::uint64_t expected_live_bytes) {
  CHECK(s.live_bytes == expected_live_bytes);
  CHECK(s.live_bytes + s.free_bytes + s.unused_bytes == s.total_bytes);
}

// ---- size classes -----------------------------------------------------------------------------

TEST_CASE("size classes cover every request with at most 25% waste above 256", "[alloc]") {
  CHECK(Allocator::BlockBytes(0) == 16);
  CHECK(Allocator::BlockBytes(1) == 16);
  CHECK(Allocator::BlockBytes(32) == 32);   // a one-entry trie node: 8 + 24
  CHECK(Allocator::BlockBytes(56) == 64);   // two entries
  CHECK(Allocator::BlockBytes(257) == 320);
  CHECK(Allocator::BlockBytes(Allocator::kMaxBlockBytes) == Allocator::kMaxBlockBytes);
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t n = rng() % Allocator::kMaxBlockBytes + 1;
    const std::uint64_t b = Allocator::BlockBytes(n);
    REQUIRE(b >= n);
    REQUIRE(b % kBlockAlign == 0);
    if (n > 256) REQUIRE((b - n) * 4 < b);
    else REQUIRE(b - n < 16);
  }
  for (std::uint64_t n = 0; n <= 70000; ++n) {
    REQUIRE(Allocator::BlockBytes(Allocator::BlockBytes(n)) == Allocator::BlockBytes(n));
  }
}

TEST_CASE("a request above the largest block is InvalidArgument", "[alloc]") {
  TestAllocator t(std::uint64_t{1} << 30);
  auto r = t.alloc->Allocate(t.caches[0], Allocator::kMaxBlockBytes + 1);
  CHECK(r.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(t.Stats().total_bytes == 0);
}

TEST_CASE("Validate accepts a formatted state and names the bad field otherwise", "[alloc]") {
  TestAllocator t(std::uint64_t{1} << 30);
  auto r = t.alloc->Allocate(t.caches[0], 100000);  // a large block: bump moves, domain grows
  REQUIRE(r.ok());
  t.alloc->Free(t.caches[0], *r, 100000);            // heads[class] = r
  const std::uint64_t size = t.arena->mapped_size();
  CHECK(Allocator::Validate(t.state, size, "f").ok());

  AllocatorState saved = *t.state;
  t.state->magic.StoreRelaxed(t.state->magic.LoadRelaxed() ^ 1);
  absl::Status s = Allocator::Validate(t.state, size, "f");
  CHECK(s.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(s.message().find("magic") != std::string_view::npos);
  *t.state = saved;
  t.state->version = kAllocatorVersion + 1;
  CHECK(Allocator::Validate(t.state, size, "f").code() == absl::StatusCode::kFailedPrecondition);
  *t.state = saved;
  t.state->bump.StoreRelaxed(size + 4096);
  s = Allocator::Validate(t.state, size, "f");
  CHECK(s.code() == absl::StatusCode::kDataLoss);
  CHECK(s.message().find("bump") != std::string_view::npos);
  *t.state = saved;
  t.state->heads[sc::ClassOf(100000)].offset = t.state->bump.LoadRelaxed();
  s = Allocator::Validate(t.state, size, "f");
  CHECK(s.code() == absl::StatusCode::kDataLoss);
  CHECK(s.message().find("heads[") != std::string_view::npos);
  *t.state = saved;
  CHECK(Allocator::Validate(t.state, size, "f").ok());
}

// ---- churn ------------------------------------------------------------------------------------

// Random allocate/free at one class (sizes anywhere inside it), with the model's checks and
// an accounting check every `check_every` operations.
void ChurnClass(TestAllocator& t, Model& model, sc::SizeClass c, int ops, std::mt19937_64& rng) {
  const std::uint64_t hi = sc::ClassBytes(c);
  const std::uint64_t lo = c == 0 ? 0 : sc::ClassBytes(c - 1) + 1;
  std::vector<Offset> mine;
  for (int i = 0; i < ops; ++i) {
    const bool alloc = mine.empty() || rng() % 100 < 55;
    ParticipantCache* cache = t.caches[rng() % 2];
    if (alloc) {
      const std::uint64_t bytes = lo + rng() % (hi - lo + 1);
      auto r = t.alloc->Allocate(cache, bytes);
      REQUIRE(r.ok());
      const std::uint64_t seed = rng();
      REQUIRE(model.Add(*r, bytes, seed).empty());
      Fill(*t.arena, *r, bytes, seed);
      mine.push_back(*r);
    } else {
      const std::size_t k = rng() % mine.size();
      const Offset off = mine[k];
      mine[k] = mine.back();
      mine.pop_back();
      const LiveBlock b = model.Remove(off);
      REQUIRE(Intact(*t.arena, off, b.bytes, b.seed));
      t.alloc->Free(cache, off, b.bytes);
    }
  }
}

TEST_CASE("churn at every size class keeps blocks distinct, intact and accounted", "[alloc]") {
  TestAllocator t(std::uint64_t{16} << 30);
  Model model;
  std::mt19937_64 rng(42);
  for (sc::SizeClass c = 0; c < sc::kNumClasses; ++c) {
    const std::uint64_t bytes = sc::ClassBytes(c);
    const int ops = bytes <= 4096 ? 3000 : bytes <= (1 << 20) ? 200 : 24;
    ChurnClass(t, model, c, ops, rng);
    CheckAccounting(t.Stats(), model.live_bytes());
  }
  // Everything still live is intact; free it all through the other cache.
  for (const auto& [off, b] : model.live()) REQUIRE(Intact(*t.arena, off, b.bytes, b.seed));
  std::vector<std::pair<Offset, LiveBlock>> rest(model.live().begin(), model.live().end());
  for (const auto& [off, b] : rest) {
    model.Remove(off);
    t.alloc->Free(t.caches[1], off, b.bytes);
  }
  AllocatorStats s = t.Stats();
  CheckAccounting(s, 0);
  for (const SizeClassStats& c : s.classes) CHECK(c.live_blocks == 0);
  for (ParticipantCache* c : t.caches) t.alloc->Flush(c);
  s = t.Stats();
  CheckAccounting(s, 0);
  CHECK(s.unused_bytes == 0);
  CHECK(s.free_bytes == s.total_bytes);
}

TEST_CASE("freed blocks are reused before fresh memory is carved", "[alloc]") {
  TestAllocator t(std::uint64_t{1} << 30);
  Model model;
  std::vector<Offset> blocks;
  for (int i = 0; i < 10000; ++i) {
    auto r = t.alloc->Allocate(t.caches[0], 48);
    REQUIRE(r.ok());
    REQUIRE(model.Add(*r, 48, 0).empty());
    blocks.push_back(*r);
  }
  const std::uint64_t total = t.Stats().total_bytes;
  // Freed through cache 1: most of them spill to the shared list in batches.
  for (Offset b : blocks) {
    model.Remove(b);
    t.alloc->Free(t.caches[1], b, 48);
  }
  CheckAccounting(t.Stats(), 0);
  CHECK(t.caches[1]->classes[sc::ClassOf(48)].count < 2 * sc::BatchBlocks(sc::ClassOf(48)));
  // Cache 2 takes them back from the shared list (and cache 1's private ones after a flush).
  t.alloc->Flush(t.caches[1]);
  for (int i = 0; i < 10000; ++i) {
    auto r = t.alloc->Allocate(t.caches[2], 48);
    REQUIRE(r.ok());
    REQUIRE(model.Add(*r, 48, 0).empty());
  }
  CHECK(t.Stats().total_bytes == total);
  CheckAccounting(t.Stats(), model.live_bytes());
}

TEST_CASE("Flush empties a cache and hands its blocks and bump tail to the others", "[alloc]") {
  TestAllocator t(std::uint64_t{1} << 30);
  Model model;
  std::mt19937_64 rng(7);
  std::vector<std::pair<Offset, std::uint64_t>> blocks;
  for (int i = 0; i < 2000; ++i) {
    const std::uint64_t bytes = 1 + rng() % 4096;
    auto r = t.alloc->Allocate(t.caches[0], bytes);
    REQUIRE(r.ok());
    REQUIRE(model.Add(*r, bytes, 0).empty());
    blocks.emplace_back(*r, bytes);
  }
  for (std::size_t i = 0; i < blocks.size(); i += 2) {
    model.Remove(blocks[i].first);
    t.alloc->Free(t.caches[0], blocks[i].first, blocks[i].second);
  }
  AllocatorStats before = t.Stats();
  CheckAccounting(before, model.live_bytes());
  CHECK(before.unused_bytes > 0);

  t.alloc->Flush(t.caches[0]);  // as a survivor would for a dead participant's slot
  ParticipantCache* flushed = t.caches[0];
  CHECK(flushed->bump_cur == 0);
  CHECK(flushed->bump_end == 0);
  for (const CachedClass& cc : flushed->classes) {
    CHECK(cc.head == kNullOffset);
    CHECK(cc.count == 0);
    CHECK(cc.carved == 0);
  }
  AllocatorStats after = t.Stats();
  CheckAccounting(after, model.live_bytes());
  CHECK(after.unused_bytes == 0);
  CHECK(after.total_bytes == before.total_bytes);
  CHECK(after.free_bytes == before.free_bytes + before.unused_bytes);
  // Flushing again (a survivor that died mid-takeover, retried) changes nothing.
  t.alloc->Flush(t.caches[0]);
  CheckAccounting(t.Stats(), model.live_bytes());
  // Every free byte can be allocated again without growing: 16-byte blocks fit everywhere... but
  // only blocks of matching classes are reused, so allocate the same requests again instead.
  for (std::size_t i = 0; i < blocks.size(); i += 2) {
    auto r = t.alloc->Allocate(t.caches[3], blocks[i].second);
    REQUIRE(r.ok());
    REQUIRE(model.Add(*r, blocks[i].second, 0).empty());
  }
  CHECK(t.Stats().total_bytes == before.total_bytes);
  CheckAccounting(t.Stats(), model.live_bytes());
}

// ---- resource exhaustion ----------------------------------------------------------------------

TEST_CASE("a full domain is ResourceExhausted and what was allocated stays intact", "[alloc]") {
  const std::uint64_t max_size = kDataBegin + (std::uint64_t{1} << 20);
  TestAllocator t(max_size);
  Model model;
  std::mt19937_64 rng(3);
  std::vector<Offset> blocks;
  absl::Status failure;
  for (int i = 0; i < 1000000; ++i) {
    const std::uint64_t bytes = i % 50 == 49 ? 20000 : 1 + rng() % 600;
    auto r = t.alloc->Allocate(t.caches[i % 2], bytes);
    if (!r.ok()) {
      failure = r.status();
      if (bytes < 600) break;  // also small requests fail: the domain is full
      continue;
    }
    const std::uint64_t seed = rng();
    REQUIRE(model.Add(*r, bytes, seed).empty());
    Fill(*t.arena, *r, bytes, seed);
    blocks.push_back(*r);
  }
  CHECK(failure.code() == absl::StatusCode::kResourceExhausted);
  AllocatorStats s = t.Stats();
  CheckAccounting(s, model.live_bytes());
  CHECK(kDataBegin + s.total_bytes <= max_size);
  CHECK(t.state->bump.LoadRelaxed() <= t.arena->mapped_size());
  // A request that can never fit fails the same way and changes nothing.
  auto huge = t.alloc->Allocate(t.caches[0], Allocator::kMaxBlockBytes);
  CHECK(huge.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(t.Stats().total_bytes == s.total_bytes);

  for (const auto& [off, b] : model.live()) REQUIRE(Intact(*t.arena, off, b.bytes, b.seed));
  // Freeing makes the memory reusable: the same requests succeed again.
  std::vector<std::pair<Offset, LiveBlock>> live(model.live().begin(), model.live().end());
  for (const auto& [off, b] : live) {
    model.Remove(off);
    t.alloc->Free(t.caches[0], off, b.bytes);
  }
  CheckAccounting(t.Stats(), 0);
  // Blocks on cache 0's private lists are reusable by cache 0 at once, by others after a Flush
  // (or a spill): flush, then allocate through cache 1.
  t.alloc->Flush(t.caches[0]);
  for (const auto& [off, b] : live) {
    auto r = t.alloc->Allocate(t.caches[1], b.bytes);
    REQUIRE(r.ok());
    REQUIRE(model.Add(*r, b.bytes, 0).empty());
  }
  CheckAccounting(t.Stats(), model.live_bytes());
  CHECK(t.Stats().total_bytes == s.total_bytes);
}

// ---- multi-threaded churn ---------------------------------------------------------------------

// Each thread has its own cache; blocks travel to another thread's inbox and are freed there.
// A global model (under a mutex) catches double hand-outs and overlaps across threads.
TEST_CASE("multi-threaded churn: blocks freed by other threads, full accounting", "[alloc]") {
  constexpr int kThreads = 4;
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  constexpr int kOpsPerThread = 150000;
#else
  constexpr int kOpsPerThread = 1000000;
#endif
  TestAllocator t(std::uint64_t{8} << 30);
  std::mutex model_mu;
  Model model;
  struct Inbox {
    std::mutex mu;
    std::vector<std::pair<Offset, LiveBlock>> blocks;
  };
  std::vector<Inbox> inboxes(kThreads);
  std::vector<std::string> errors(kThreads);

  auto worker = [&](int id) {
    std::mt19937_64 rng(100 + id);
    ParticipantCache* cache = t.caches[id];
    std::vector<std::pair<Offset, LiveBlock>> mine;
    auto free_block = [&](Offset off, const LiveBlock& b) {
      if (!Intact(*t.arena, off, b.bytes, b.seed) && errors[id].empty()) {
        errors[id] = "block content changed while live";
      }
      {
        std::lock_guard<std::mutex> lock(model_mu);
        model.Remove(off);
      }
      t.alloc->Free(cache, off, b.bytes);
    };
    for (int i = 0; i < kOpsPerThread; ++i) {
      const int op = static_cast<int>(rng() % 100);
      if (op < 50) {
        const std::uint64_t r = rng() % 1000;
        const std::uint64_t bytes = r < 900   ? 1 + rng() % 256
                                    : r < 995 ? 1 + rng() % 8192
                                              : 1 + rng() % (1 << 20);
        auto a = t.alloc->Allocate(cache, bytes);
        if (!a.ok()) {
          errors[id] = std::string(a.status().message());
          return;
        }
        const LiveBlock b{bytes, rng()};
        {
          std::lock_guard<std::mutex> lock(model_mu);
          std::string e = model.Add(*a, bytes, b.seed);
          if (!e.empty()) {
            errors[id] = e;
            return;
          }
        }
        Fill(*t.arena, *a, bytes, b.seed);
        if (rng() % 2 == 0) {
          mine.emplace_back(*a, b);
        } else {
          Inbox& to = inboxes[(id + 1 + rng() % (kThreads - 1)) % kThreads];
          std::lock_guard<std::mutex> lock(to.mu);
          to.blocks.emplace_back(*a, b);
        }
      } else if (op < 75 && !mine.empty()) {
        const std::size_t k = rng() % mine.size();
        const auto victim = mine[k];
        mine[k] = mine.back();
        mine.pop_back();
        free_block(victim.first, victim.second);
      } else {
        std::vector<std::pair<Offset, LiveBlock>> got;
        {
          std::lock_guard<std::mutex> lock(inboxes[id].mu);
          got.swap(inboxes[id].blocks);
        }
        for (const auto& [off, b] : got) free_block(off, b);
      }
    }
    for (const auto& [off, b] : mine) free_block(off, b);
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) threads.emplace_back(worker, i);
  for (std::thread& th : threads) th.join();
  for (int i = 0; i < kThreads; ++i) CHECK(errors[i] == "");

  // What is left is in the inboxes: still live, and accounted as such.
  CheckAccounting(t.Stats(), model.live_bytes());
  for (Inbox& in : inboxes) {
    for (const auto& [off, b] : in.blocks) {
      REQUIRE(Intact(*t.arena, off, b.bytes, b.seed));
      model.Remove(off);
      t.alloc->Free(t.caches[kThreads], off, b.bytes);
    }
  }
  REQUIRE(model.empty());
  CheckAccounting(t.Stats(), 0);
  for (ParticipantCache* c : t.caches) t.alloc->Flush(c);
  AllocatorStats s = t.Stats();
  CheckAccounting(s, 0);
  CHECK(s.unused_bytes == 0);
}

// Threads hammering one class's shared list directly (tiny caches force spills and refills).
TEST_CASE("multi-threaded churn of one class through the shared list", "[alloc]") {
  constexpr int kThreads = 4;
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
  constexpr int kRounds = 5000;
#else
  constexpr int kRounds = 30000;
#endif
  TestAllocator t(std::uint64_t{1} << 30);
  const std::uint64_t bytes = 4096;  // batches of 2: the shared list is hit every few ops
  std::vector<std::string> errors(kThreads);
  auto worker = [&](int id) {
    std::vector<Offset> held;
    for (int round = 0; round < kRounds; ++round) {
      for (int k = 0; k < 8; ++k) {
        auto a = t.alloc->Allocate(t.caches[id], bytes);
        if (!a.ok()) {
          errors[id] = "allocation failed";
          return;
        }
        auto* w = t.arena->At<std::uint64_t>(*a);
        for (int j = 0; j < 512; ++j) w[j] = *a + static_cast<std::uint64_t>(id);
        held.push_back(*a);
      }
      for (Offset off : held) {
        const auto* w = t.arena->At<std::uint64_t>(off);
        for (int j = 0; j < 512; ++j) {
          if (w[j] != off + static_cast<std::uint64_t>(id)) errors[id] = "block shared";
        }
        t.alloc->Free(t.caches[id], off, bytes);
      }
      held.clear();
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) threads.emplace_back(worker, i);
  for (std::thread& th : threads) th.join();
  for (int i = 0; i < kThreads; ++i) CHECK(errors[i] == "");
  CheckAccounting(t.Stats(), 0);
}

// ---- property: random sequences against a model ----------------------------------------------

TEST_CASE("property: random allocate/free/flush sequences match a model", "[alloc][rapidcheck]") {
  enum class OpKind { kAlloc, kFree, kFlush };
  struct Op {
    OpKind kind;
    std::uint64_t bytes;  // kAlloc
    std::size_t index;    // kFree: which live block (mod count); any: which cache (mod 3)
  };
  const bool ok = rc::check("allocator matches the model", [] {
    const auto ops = *rc::gen::resize(
        400,
        rc::gen::container<std::vector<Op>>(rc::gen::build<Op>(
            rc::gen::set(&Op::kind,
                         rc::gen::weightedElement<OpKind>(
                             {{6, OpKind::kAlloc}, {4, OpKind::kFree}, {1, OpKind::kFlush}})),
            rc::gen::set(&Op::bytes,
                         rc::gen::weightedOneOf<std::uint64_t>(
                             {{8, rc::gen::inRange<std::uint64_t>(0, 257)},
                              {3, rc::gen::inRange<std::uint64_t>(257, 8193)},
                              {1, rc::gen::inRange<std::uint64_t>(8193, std::uint64_t{2} << 20)}})),
            rc::gen::set(&Op::index, rc::gen::arbitrary<std::size_t>()))));
    // A small domain, so that some sequences run it out.
    TestAllocator t(kDataBegin + (std::uint64_t{6} << 20));
    Model model;
    std::vector<Offset> order;
    std::uint64_t seed = 0;
    for (const Op& op : ops) {
      ParticipantCache* cache = t.caches[op.index % 3];
      if (op.kind == OpKind::kAlloc) {
        const std::uint64_t before = t.Stats().total_bytes;
        auto r = t.alloc->Allocate(cache, op.bytes);
        if (!r.ok()) {
          RC_ASSERT(r.status().code() == absl::StatusCode::kResourceExhausted);
          RC_ASSERT(t.Stats().total_bytes == before);
          continue;
        }
        const std::string e = model.Add(*r, op.bytes, ++seed);
        RC_ASSERT(e == "");
        Fill(*t.arena, *r, op.bytes, seed);
        order.push_back(*r);
      } else if (op.kind == OpKind::kFree && !order.empty()) {
        const std::size_t k = op.index % order.size();
        const Offset off = order[k];
        order.erase(order.begin() + static_cast<std::ptrdiff_t>(k));
        const LiveBlock b = model.Remove(off);
        RC_ASSERT(Intact(*t.arena, off, b.bytes, b.seed));
        t.alloc->Free(cache, off, b.bytes);
      } else if (op.kind == OpKind::kFlush) {
        t.alloc->Flush(cache);
      }
      const AllocatorStats s = t.Stats();
      RC_ASSERT(s.live_bytes == model.live_bytes());
      RC_ASSERT(s.live_bytes + s.free_bytes + s.unused_bytes == s.total_bytes);
    }
    for (const auto& [off, b] : model.live()) RC_ASSERT(Intact(*t.arena, off, b.bytes, b.seed));
  });
  CHECK(ok);
}

}  // namespace
}  // namespace atomap::internal

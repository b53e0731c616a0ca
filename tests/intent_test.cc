// Ownership lanes (src/intent/owned_lane.h) and what a transaction records in them through the
// trie's BlockLedger; the writer's half of the intent protocol (src/intent/intent_record.h). The
// survivor's side (RecoverIntent) is exercised with real killed processes in check_test.cc and, at
// every step of a publication, by crash_points_test.cc.
#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "hamt/scratch_domain.h"
#include "intent/intent_record.h"
#include "intent/owned_lane.h"

namespace atomap::internal {
namespace {

using hamt::ScratchDomain;
using hamt::TrieTransaction;

// Lends a lane whose words live in this process (the atoms layer's live in the slot).
class TestHold : public hamt::TransactionHold {
 public:
  TestHold(LaneWords* words, const TrieContext& ctx) : lane_(words, 2, ctx.allocator, ctx.cache) {}
  hamt::BlockLedger* ledger() override { return &lane_; }

 private:
  OwnedLane lane_;
};

std::set<std::pair<Offset, std::uint64_t>> Entries(const OwnedLane& lane, std::uint64_t from,
                                                   std::uint64_t to) {
  std::set<std::pair<Offset, std::uint64_t>> out;
  for (std::uint64_t i = from; i < to; ++i) out.emplace(lane.At(i).offset, lane.At(i).bytes);
  return out;
}

std::uint64_t ChainLength(const Arena& arena, const LaneWords& words) {
  std::uint64_t n = 0;
  for (Offset b = words.first_batch; b != kNullOffset; b = arena.At<OwnedBatch>(b)->next) ++n;
  return n;
}

TEST_CASE("a lane records entries across batches, fills holes from its end, and shrinks",
          "[intent]") {
  ScratchDomain scratch(std::uint64_t{64} << 20);
  const TrieContext& ctx = scratch.context();
  LaneWords words{};
  OwnedLane lane(&words, 0, ctx.allocator, ctx.cache);
  const std::uint64_t n = 3 * OwnedBatch::kCapacity + 10;
  REQUIRE(lane.Reserve(n).ok());
  for (std::uint64_t i = 0; i < n; ++i) lane.Record(Block{(i + 1) * 16, 16});
  CHECK(words.count.LoadRelaxed() == n);
  CHECK(ChainLength(scratch.arena(), words) == 4);

  const Block last = lane.At(n - 1);
  CHECK(lane.Forget(5) == last.offset);  // the last entry moves into the hole
  CHECK(lane.At(5) == last);
  CHECK(lane.size() == n - 1);
  CHECK(lane.Forget(lane.size() - 1) == kNullOffset);  // removing the last moves nothing

  // A survivor reading the chain afresh sees the same entries.
  OwnedLane reread(&words, 0, ctx.allocator, ctx.cache);
  CHECK(Entries(reread, 0, reread.size()) == Entries(lane, 0, lane.size()));

  lane.Truncate(0);
  const std::uint64_t live = scratch.LiveBytes();
  lane.Shrink();
  CHECK(ChainLength(scratch.arena(), words) == 1);
  CHECK(scratch.LiveBytes() == live - 3 * kOwnedBatchBytes);
  lane.Release();
  CHECK(words.first_batch == kNullOffset);
  CHECK(scratch.LiveBytes() == live - 4 * kOwnedBatchBytes);
}

TEST_CASE("a transaction's lane lists exactly what it owns, then what its commit replaces",
          "[intent]") {
  ScratchDomain scratch(std::uint64_t{256} << 20);
  const TrieContext& ctx = scratch.context();
  hamt::CommitResult first;
  {
    TrieTransaction tx(ctx, kNullOffset);
    for (int i = 0; i < 400; ++i)
      REQUIRE(tx.Set(absl::StrCat("k", i), std::string(i % 90, 'v')).ok());
    first = std::move(tx.Commit().value());
  }

  LaneWords words{};
  TrieTransaction tx(ctx, first.version, std::make_unique<TestHold>(&words, ctx));
  // Sets (some moving owned nodes to bigger blocks, freeing the old ones) and erases.
  for (int i = 0; i < 300; ++i)
    REQUIRE(tx.Set(absl::StrCat("n", i), std::string(i % 70, 'w')).ok());
  for (int i = 0; i < 100; ++i) REQUIRE(tx.Erase(absl::StrCat("k", i)).ok());
  absl::StatusOr<hamt::CommitResult> commit = tx.Commit();
  REQUIRE(commit.ok());
  REQUIRE(commit->ledger != nullptr);
  const auto& lane = static_cast<const OwnedLane&>(*commit->ledger);
  CHECK(lane.index() == 2);
  CHECK(commit->ledger_owned == commit->allocated.size());
  CHECK(lane.size() == commit->ledger_owned + commit->replaced.size());

  std::set<std::pair<Offset, std::uint64_t>> allocated;
  for (const Block& b : commit->allocated) allocated.emplace(b.offset, b.bytes);
  CHECK(Entries(lane, 0, commit->ledger_owned) == allocated);  // no freed block left, none missing

  std::set<std::pair<Offset, std::uint64_t>> replaced;
  for (const Block& b : commit->replaced) replaced.emplace(b.offset, b.bytes | kReplacedFlag);
  CHECK(Entries(lane, commit->ledger_owned, lane.size()) == replaced);

  // What the lane lists as owned is exactly what the new version reaches and the base does not.
  CHECK(scratch.ReachableBytes({first.version, commit->version}) ==
        scratch.ReachableBytes({first.version}) + [&] {
          std::uint64_t bytes = 0;
          for (const Block& b : commit->allocated) bytes += Allocator::BlockBytes(b.bytes);
          return bytes;
        }());
}

TEST_CASE("after a bulk build and edits of what it built, the lane lists exactly what is owned",
          "[intent]") {
  ScratchDomain scratch(std::uint64_t{256} << 20);
  const TrieContext& ctx = scratch.context();
  std::vector<std::pair<std::string, std::string>> entries;
  for (int i = 0; i < 3000; ++i) {
    entries.emplace_back(absl::StrCat("b", i), std::string(i % 5 == 0 ? 40 : 6, 'v'));
  }
  for (int i = 0; i < 3000; i += 7) entries.emplace_back(absl::StrCat("b", i), "dup");
  const std::vector<std::pair<std::string_view, std::string_view>> views(entries.begin(),
                                                                         entries.end());
  LaneWords words{};
  TrieTransaction tx(ctx, kNullOffset, std::make_unique<TestHold>(&words, ctx));
  REQUIRE(tx.SetMany(views).ok());
  // Edits of built nodes: grown (moved to bigger blocks, the built block freed and its lane
  // record forgotten), blobs replaced, entries erased.
  for (int i = 0; i < 3000; i += 3)
    REQUIRE(tx.Set(absl::StrCat("b", i), std::string(30, 'w')).ok());
  for (int i = 0; i < 500; ++i) REQUIRE(tx.Set(absl::StrCat("new", i), "x").ok());
  for (int i = 1; i < 3000; i += 4) REQUIRE(tx.Erase(absl::StrCat("b", i)).value());
  absl::StatusOr<hamt::CommitResult> commit = tx.Commit();
  REQUIRE(commit.ok());
  CHECK(commit->replaced.empty());  // the base was empty: everything was the transaction's
  const auto& lane = static_cast<const OwnedLane&>(*commit->ledger);
  CHECK(commit->ledger_owned == commit->allocated.size());
  std::set<std::pair<Offset, std::uint64_t>> allocated;
  std::uint64_t allocated_bytes = 0;
  for (const Block& b : commit->allocated) {
    allocated.emplace(b.offset, b.bytes);
    allocated_bytes += Allocator::BlockBytes(b.bytes);
  }
  CHECK(allocated.size() == commit->allocated.size());  // no block listed twice
  CHECK(Entries(lane, 0, commit->ledger_owned) == allocated);
  CHECK(scratch.ReachableBytes({commit->version}) == allocated_bytes);
}

TEST_CASE("aborting a transaction empties its lane and frees what it built", "[intent]") {
  ScratchDomain scratch(std::uint64_t{64} << 20);
  const TrieContext& ctx = scratch.context();
  LaneWords words{};
  std::uint64_t live_with_lane = 0;
  {
    TrieTransaction warm(ctx, kNullOffset, std::make_unique<TestHold>(&words, ctx));
    (void)warm.size();  // not deferring: the Set reserves the lane
    REQUIRE(warm.Set("a", "b").ok());
    warm.Abort();
    CHECK(words.count.LoadRelaxed() == 0);
    live_with_lane = scratch.LiveBytes();  // the lane keeps its batches
  }
  TrieTransaction tx(ctx, kNullOffset, std::make_unique<TestHold>(&words, ctx));
  (void)tx.size();  // not deferring: each Set allocates (and records) at once
  for (int i = 0; i < 200; ++i) REQUIRE(tx.Set(absl::StrCat("k", i), std::string(50, 'x')).ok());
  CHECK(words.count.LoadRelaxed() > 200);
  tx.Abort();
  CHECK(words.count.LoadRelaxed() == 0);
  OwnedLane lane(&words, 0, ctx.allocator, ctx.cache);
  lane.Shrink();
  CHECK(scratch.LiveBytes() == live_with_lane);
}

TEST_CASE("a lane's Reserve returns the room its batches hold, never less than asked", "[intent]") {
  ScratchDomain scratch(std::uint64_t{64} << 20);
  const TrieContext& ctx = scratch.context();
  LaneWords words{};
  OwnedLane lane(&words, 1, ctx.allocator, ctx.cache);
  CHECK(lane.Reserve(1).value() == OwnedBatch::kCapacity);  // one batch
  lane.Record(Block{16, 16});
  CHECK(lane.Reserve(1).value() == OwnedBatch::kCapacity - 1);  // no new batch needed
  CHECK(lane.Reserve(OwnedBatch::kCapacity).value() == 2 * OwnedBatch::kCapacity - 1);
  CHECK(lane.RecordReplaced({Block{32, 16}, Block{48, 16}}).ok());
  CHECK(lane.size() == 3);
  CHECK(lane.At(1) == Block{32, 16 | kReplacedFlag});  // staged as not owned
  lane.Truncate(0);
  lane.Release();
}

TEST_CASE("the writer's half: announce names the lane and the version; finish empties the lane "
          "before clearing the intent; a lost publication frees what it built",
          "[intent]") {
  ScratchDomain scratch(std::uint64_t{64} << 20);
  const TrieContext& ctx = scratch.context();
  hamt::CommitResult base;
  {
    TrieTransaction tx(ctx, kNullOffset);
    for (int i = 0; i < 50; ++i) REQUIRE(tx.Set(absl::StrCat("k", i), "v").ok());
    base = std::move(tx.Commit().value());
  }
  LaneWords words{};
  IntentRecord intent{};
  const std::uint64_t live_before = scratch.LiveBytes();
  {  // won
    TrieTransaction tx(ctx, base.version, std::make_unique<TestHold>(&words, ctx));
    REQUIRE(tx.Set("k1", "changed").ok());
    hamt::CommitResult commit = std::move(tx.Commit().value());
    AnnounceIntent(intent, 7, commit);
    CHECK(intent.version.LoadRelaxed() == commit.version);
    CHECK(intent.atom == 7);
    CHECK(intent.lane == 2);  // TestHold's lane
    CHECK(words.count.LoadRelaxed() == commit.ledger_owned + commit.replaced.size());
    FinishPublication(intent, commit);
    CHECK(words.count.LoadRelaxed() == 0);
    CHECK(intent.version.LoadRelaxed() == kNullOffset);
  }
  {  // lost
    TrieTransaction tx(ctx, base.version, std::make_unique<TestHold>(&words, ctx));
    REQUIRE(tx.Set("k2", std::string(200, 'x')).ok());
    hamt::CommitResult commit = std::move(tx.Commit().value());
    AnnounceIntent(intent, 7, commit);
    const std::uint64_t live_built = scratch.LiveBytes();
    WithdrawIntent(intent);
    CHECK(intent.version.LoadRelaxed() == kNullOffset);
    FreeUnpublished(commit, *ctx.allocator, ctx.cache);
    CHECK(words.count.LoadRelaxed() == 0);
    std::uint64_t built = 0;
    for (const Block& b : commit.allocated) built += Allocator::BlockBytes(b.bytes);
    CHECK(built > 0);
    CHECK(scratch.LiveBytes() == live_built - built);  // every block it built, and only those
  }
  // What is left beyond the base: the blocks of the won version, and the lane's one batch.
  CHECK(scratch.LiveBytes() >= live_before);
}

}  // namespace
}  // namespace atomap::internal

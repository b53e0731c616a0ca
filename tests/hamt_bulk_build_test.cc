// TrieTransaction::SetMany's bottom-up build (src/hamt/bulk_build.cc): the same shape, contents
// and block accounting as one Set per entry; duplicates resolved as a sequence of Sets would;
// collisions; a full domain; the fallback on a non-empty trie; edits of what it built in the
// same transaction (its blocks are owned: owned_blocks.h).
#include <catch2/catch.hpp>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "hamt/bits.h"
#include "hamt_test_util.h"

namespace atomap::internal::hamt {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

std::vector<std::pair<std::string_view, std::string_view>> Views(const Pairs& pairs) {
  return {pairs.begin(), pairs.end()};
}

// Entries 0..n-1; every seventh value is longer than a word (a blob), every eleventh key too.
Pairs Numbered(int n) {
  Pairs out;
  for (int i = 0; i < n; ++i) {
    std::string key = absl::StrCat(i % 11 == 0 ? "long-key-" : "k", i);
    std::string value = i % 7 == 0 ? absl::StrCat(std::string(20, 'v'), i) : absl::StrCat(i);
    out.emplace_back(std::move(key), std::move(value));
  }
  return out;
}

Offset BuildBySets(TestDomain& domain, const Pairs& pairs) {
  TrieTransaction tx(domain.context(), kNullOffset);
  (void)tx.size();  // a call other than Set first: the Sets below are not deferred
  for (const auto& [k, v] : pairs) REQUIRE(tx.Set(k, v).ok());
  return tx.Commit().value().version;
}

Offset BuildBySetMany(TestDomain& domain, const Pairs& pairs) {
  TrieTransaction tx(domain.context(), kNullOffset);
  REQUIRE(tx.SetMany(Views(pairs)).ok());
  return tx.Commit().value().version;
}

std::string Shape(const TestDomain& domain, Offset version) {
  return DumpStructure(domain.arena(), ReadVersion(domain.arena(), version).root_node);
}

TEST_CASE("SetMany on an empty trie builds the shape one Set per entry builds",
          "[hamt][bulk_build]") {
  for (HashKind kind : {HashKind::kXxh3, HashKind::kTestWeak}) {
    INFO("hash kind " << static_cast<int>(kind));
    for (int n : {64, 65, 1000, 20000}) {
      INFO(n << " entries");
      TestDomain domain(std::uint64_t{1} << 30, kind);
      const Pairs pairs = Numbered(n);
      const Offset by_sets = BuildBySets(domain, pairs);
      const std::uint64_t before = domain.LiveBytes();
      const Offset built = BuildBySetMany(domain, pairs);
      CHECK(Shape(domain, built) == Shape(domain, by_sets));
      CHECK(domain.MapOf(built) == domain.MapOf(by_sets));
      CHECK(domain.MapOf(built).size() == static_cast<std::uint64_t>(n));
      // Exactly the blocks the new version reaches were allocated: nothing left over.
      CHECK(domain.LiveBytes() - before == domain.ReachableBytes({built}));
    }
  }
}

TEST_CASE("SetMany: a later duplicate key wins, and the losers' blobs are freed",
          "[hamt][bulk_build]") {
  for (HashKind kind : {HashKind::kXxh3, HashKind::kTestWeak}) {
    INFO("hash kind " << static_cast<int>(kind));
    TestDomain domain(std::uint64_t{1} << 30, kind);
    Pairs pairs = Numbered(500);
    for (int i = 0; i < 500; i += 3) pairs.emplace_back(pairs[i].first, std::string(30, 'x'));
    for (int i = 0; i < 500; i += 9) pairs.emplace_back(pairs[i].first, "last");
    // Two keys only, each many times: the duplicates fold a chain down to one entry (N4).
    for (int i = 0; i < 100; ++i) pairs.emplace_back(i % 2 ? "dup-a" : "dup-b", absl::StrCat(i));
    const std::uint64_t before = domain.LiveBytes();
    const Offset built = BuildBySetMany(domain, pairs);
    CHECK(domain.LiveBytes() - before == domain.ReachableBytes({built}));
    const Offset by_sets = BuildBySets(domain, pairs);
    CHECK(domain.MapOf(built) == domain.MapOf(by_sets));
    CHECK(Shape(domain, built) == Shape(domain, by_sets));
    CHECK(domain.MapOf(built).size() == 502);
    CHECK(domain.MapOf(built).get(pairs[9].first) == "last");
    CHECK(domain.MapOf(built).get(pairs[3].first) == std::string(30, 'x'));
    CHECK(domain.MapOf(built).get("dup-a") == "99");
  }
}

TEST_CASE("SetMany builds collision nodes sorted by key", "[hamt][bulk_build]") {
  TestDomain domain(std::uint64_t{1} << 30, HashKind::kTestWeak);
  REQUIRE(domain.context().hasher("xa") == domain.context().hasher("xb"));
  Pairs pairs = Numbered(100);
  for (const char* k : {"xc", "xa", "xb", "xa"}) pairs.emplace_back(k, absl::StrCat(k, "!"));
  const Offset built = BuildBySetMany(domain, pairs);
  CHECK(Shape(domain, built).find("collision n=3") != std::string::npos);
  CHECK(Shape(domain, built) == Shape(domain, BuildBySets(domain, pairs)));
  CHECK(domain.MapOf(built).get("xa") == "xa!");
}

TEST_CASE("SetMany on a non-empty trie sets each entry on top of it", "[hamt][bulk_build]") {
  TestDomain domain;
  const Pairs first = Numbered(300);
  const Offset base = BuildBySetMany(domain, first);
  Pairs more;
  for (int i = 200; i < 600; ++i) more.emplace_back(absl::StrCat("k", i), "new");
  TrieTransaction tx(domain.context(), base);
  REQUIRE(tx.SetMany(Views(more)).ok());
  const Offset next = tx.Commit().value().version;
  Pairs all = first;
  all.insert(all.end(), more.begin(), more.end());
  CHECK(Shape(domain, next) == Shape(domain, BuildBySets(domain, all)));
  CHECK(domain.MapOf(next).get("k250") == "new");
  CHECK(domain.MapOf(next).get("k10") == "10");
}

TEST_CASE("SetMany: a bad size changes nothing; a full domain aborts and frees everything",
          "[hamt][bulk_build]") {
  TestDomain domain(std::uint64_t{1} << 30);
  Pairs pairs = Numbered(1000);
  pairs.emplace_back(std::string(kMaxKeyBytes + 1, 'k'), "v");
  const std::uint64_t before = domain.LiveBytes();
  {
    TrieTransaction tx(domain.context(), kNullOffset);
    CHECK(tx.SetMany(Views(pairs)).code() == absl::StatusCode::kInvalidArgument);
    CHECK(tx.open());
    CHECK(tx.size() == 0);
    CHECK(domain.LiveBytes() == before);
  }
  TestDomain small(std::uint64_t{8} << 20);  // room for far fewer than these entries
  Pairs big;
  for (int i = 0; i < 100000; ++i) big.emplace_back(absl::StrCat("key", i), std::string(90, 'v'));
  const std::uint64_t small_before = small.LiveBytes();
  TrieTransaction tx(small.context(), kNullOffset);
  REQUIRE(tx.Set("first", "x").ok());  // deferred, and so is the batch that joins it
  CHECK(tx.SetMany(Views(big)).ok());  // nothing is allocated yet
  CHECK(small.LiveBytes() == small_before);
  // The build runs at the next call that is not a set; the full domain is its error.
  CHECK(tx.Commit().status().code() == absl::StatusCode::kResourceExhausted);
  CHECK_FALSE(tx.open());
  // Later calls say why the transaction was abandoned.
  CHECK(tx.Set("more", "x").code() == absl::StatusCode::kFailedPrecondition);
  CHECK(absl::StrContains(tx.Set("more", "x").message(), "RESOURCE_EXHAUSTED"));
  CHECK(small.LiveBytes() == small_before);
  TrieTransaction direct(small.context(), kNullOffset);
  // SetMany as the first call builds at once, from the caller's entries, and reports it.
  CHECK(direct.SetMany(Views(big)).code() == absl::StatusCode::kResourceExhausted);
  CHECK_FALSE(direct.open());
  CHECK(small.LiveBytes() == small_before);
}

// Sets, erases and grows entries of a trie SetMany just built, in the same transaction.
void EditBuilt(TrieTransaction& tx) {
  for (int i = 0; i < 3000; i += 3)
    REQUIRE(tx.Set(absl::StrCat("k", i), std::string(30, 'w')).ok());
  for (int i = 0; i < 300; ++i) REQUIRE(tx.Set(absl::StrCat("more", i), "m").ok());
  for (int i = 1; i < 3000; i += 4) REQUIRE(tx.Erase(absl::StrCat("k", i)).ok());
}

TEST_CASE("SetMany then edits in one transaction: what it built is owned (edited or freed)",
          "[hamt][bulk_build]") {
  for (HashKind kind : {HashKind::kXxh3, HashKind::kTestWeak}) {
    INFO("hash kind " << static_cast<int>(kind));
    TestDomain domain(std::uint64_t{1} << 30, kind);
    const Pairs pairs = Numbered(3000);
    const std::uint64_t before = domain.LiveBytes();
    Offset edited = kNullOffset;
    {
      TrieTransaction tx(domain.context(), kNullOffset);
      REQUIRE(tx.SetMany(Views(pairs)).ok());
      EditBuilt(tx);
      absl::StatusOr<CommitResult> commit = tx.Commit();
      REQUIRE(commit.ok());
      CHECK(commit->replaced.empty());  // nothing of it is retired: it was never published
      edited = commit->version;
    }
    // Nothing leaked, nothing freed twice: exactly what the version reaches stays allocated.
    CHECK(domain.LiveBytes() - before == domain.ReachableBytes({edited}));
    TrieTransaction by_sets(domain.context(), kNullOffset);
    (void)by_sets.size();  // not deferred: one Set at a time
    for (const auto& [k, v] : pairs) REQUIRE(by_sets.Set(k, v).ok());
    EditBuilt(by_sets);
    const Offset expected = by_sets.Commit().value().version;
    CHECK(domain.MapOf(edited) == domain.MapOf(expected));
    CHECK(Shape(domain, edited) == Shape(domain, expected));

    const std::uint64_t before_abort = domain.LiveBytes();
    TrieTransaction aborted(domain.context(), kNullOffset);
    REQUIRE(aborted.SetMany(Views(pairs)).ok());
    EditBuilt(aborted);
    aborted.Abort();
    CHECK(domain.LiveBytes() == before_abort);
  }
}

TEST_CASE("Sets into an empty trie wait, and the next other call builds them bottom up",
          "[hamt][bulk_build]") {
  for (HashKind kind : {HashKind::kXxh3, HashKind::kTestWeak}) {
    INFO("hash kind " << static_cast<int>(kind));
    TestDomain domain(std::uint64_t{1} << 30, kind);
    Pairs pairs = Numbered(2000);
    pairs.emplace_back(pairs[5].first, "again");  // a later duplicate wins, as Sets decide
    const std::uint64_t before = domain.LiveBytes();
    TrieTransaction tx(domain.context(), kNullOffset);
    // Sets, a batch that joins them, and Sets again: all deferred, built together.
    for (std::size_t i = 0; i < 1000; ++i) REQUIRE(tx.Set(pairs[i].first, pairs[i].second).ok());
    const Pairs middle(pairs.begin() + 1000, pairs.begin() + 1500);
    REQUIRE(tx.SetMany(Views(middle)).ok());
    for (std::size_t i = 1500; i < pairs.size(); ++i) {
      REQUIRE(tx.Set(pairs[i].first, pairs[i].second).ok());
    }
    CHECK(domain.LiveBytes() == before);  // deferred: nothing written to the domain yet
    CHECK(tx.Set(std::string(kMaxKeyBytes + 1, 'k'), "v").code() ==
          absl::StatusCode::kInvalidArgument);  // sizes are still checked at once
    CHECK(tx.Get(pairs[5].first) == "again");   // the read builds them
    CHECK(domain.LiveBytes() > before);
    CHECK(tx.size() == 2000);
    REQUIRE(tx.Set("after", "x").ok());  // no longer deferred: an ordinary Set
    REQUIRE(tx.Erase(pairs[7].first).value());
    const Offset version = tx.Commit().value().version;
    CHECK(domain.LiveBytes() - before == domain.ReachableBytes({version}));
    Pairs expected = pairs;
    expected.emplace_back("after", "x");
    TrieTransaction by_sets(domain.context(), kNullOffset);
    (void)by_sets.size();
    for (const auto& [k, v] : expected) REQUIRE(by_sets.Set(k, v).ok());
    REQUIRE(by_sets.Erase(pairs[7].first).value());
    const Offset by_sets_version = by_sets.Commit().value().version;
    CHECK(domain.MapOf(version) == domain.MapOf(by_sets_version));
    CHECK(Shape(domain, version) == Shape(domain, by_sets_version));
  }
}

TEST_CASE("deferred sets of an empty key and an empty value (views that may hold no bytes)",
          "[hamt][bulk_build]") {
  // The first deferred entry of zero bytes gets no chunk: its views point nowhere, and a
  // settle must read them as empty (a CI seed found memcpy handed the null pointer).
  TestDomain domain(std::uint64_t{1} << 24);
  TrieTransaction tx(domain.context(), kNullOffset);
  REQUIRE(tx.Set("", "").ok());
  REQUIRE(tx.Set("k", "").ok());
  REQUIRE(tx.Set("", "v").ok());  // a later duplicate wins
  CHECK(tx.size() == 2);          // settles: one Set each, from an empty trie
  CHECK(tx.Get("") == "v");
  CHECK(tx.Get("k") == "");
  const Offset version = tx.Commit().value().version;
  CHECK(Contents(domain.MapOf(version)) == Model{{"", "v"}, {"k", ""}});
}

TEST_CASE("deferred sets past their memory limit are built, and later Sets edit the result",
          "[hamt][bulk_build]") {
  TestDomain domain;
  const Pairs pairs = Numbered(3000);
  const std::uint64_t before = domain.LiveBytes();
  TrieTransaction tx(domain.context(), kNullOffset);
  // One chunk of bytes and 1,024 entries' records: these entries' bytes fit in the chunk.
  tx.SetMaxDeferredBytes(DeferredSets::kChunkBytes + (16 << 10));
  for (std::size_t i = 0; i < 500; ++i) REQUIRE(tx.Set(pairs[i].first, pairs[i].second).ok());
  CHECK(domain.LiveBytes() == before);  // under the limit: still deferred
  for (std::size_t i = 500; i < pairs.size(); ++i) {
    REQUIRE(tx.Set(pairs[i].first, pairs[i].second).ok());
  }
  CHECK(domain.LiveBytes() > before);  // built at the limit; the rest were ordinary Sets
  const Offset version = tx.Commit().value().version;
  CHECK(domain.MapOf(version) == domain.MapOf(BuildBySets(domain, pairs)));
  CHECK(domain.MapOf(version).size() == pairs.size());
}

}  // namespace
}  // namespace atomap::internal::hamt

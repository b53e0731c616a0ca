// The trie's unit tests: canonical shape, block accounting, bulk building, collisions, limits,
// the public Transaction / Map / Diff wrappers and the typed views.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "alloc/size_classes.h"
#include "atomap/diff.h"
#include "atomap/typed_map.h"
#include "common/hash_inline.h"
#include "hamt/bits.h"
#include "hamt/entry.h"
#include "hamt_test_util.h"

namespace atomap::internal::hamt {
namespace {

std::string U64Key(std::uint64_t i) { return std::string(Codec<std::uint64_t>::Encode(i)); }

Model Numbered(int from, int to, const std::string& prefix = "key") {
  Model m;
  for (int i = from; i < to; ++i) m[prefix + std::to_string(i)] = "value-" + std::to_string(i * 7);
  return m;
}

TEST_CASE("fragments cover all 64 hash bits", "[hamt][bits]") {
  std::uint64_t rebuilt = 0;
  const std::uint64_t hash = 0xF123456789ABCDEFull;
  for (int level = 0; level < kBitmapLevels; ++level) {
    rebuilt |= std::uint64_t{Fragment(hash, level)} << (level * kBitsPerLevel);
  }
  CHECK(rebuilt == hash);
}

TEST_CASE("erasing back gives the shape built directly", "[hamt][canonical]") {
  for (HashKind kind : {HashKind::kXxh3, HashKind::kTestWeak}) {
    TestDomain domain(std::uint64_t{1} << 30, kind);
    const Model kept = Numbered(0, 300);
    const Model extra = Numbered(300, 2000);
    const Offset direct = domain.Build(kNullOffset, kept).version;
    std::vector<std::string> extra_keys;
    for (const auto& [k, v] : extra) extra_keys.push_back(k);

    // Erased in the same transaction that added them (owned nodes, edited in place) ...
    Model all = kept;
    all.insert(extra.begin(), extra.end());
    const Offset same_tx = domain.Build(kNullOffset, all, extra_keys).version;
    // ... and in a later one (base nodes, path-copied).
    const Offset grown = domain.Build(kNullOffset, all).version;
    const Offset later_tx = domain.Build(grown, {}, extra_keys).version;

    for (Offset v : {same_tx, later_tx}) {
      INFO("hash kind " << static_cast<int>(kind));
      CHECK(domain.MapOf(v) == domain.MapOf(direct));
      CHECK(DumpStructure(domain.arena(), ReadVersion(domain.arena(), v).root_node) ==
            DumpStructure(domain.arena(), ReadVersion(domain.arena(), direct).root_node));
      CHECK(Contents(domain.MapOf(v)) == kept);
    }
    CHECK_FALSE(domain.MapOf(grown) == domain.MapOf(direct));
  }
}

TEST_CASE("erasing everything gives the empty root", "[hamt][canonical]") {
  TestDomain domain;
  const Model m = Numbered(0, 100);
  std::vector<std::string> keys;
  for (const auto& [k, v] : m) keys.push_back(k);
  const Offset full = domain.Build(kNullOffset, m).version;
  const Offset empty = domain.Build(full, {}, keys).version;
  CHECK(ReadVersion(domain.arena(), empty).root_node == kNullOffset);
  CHECK(domain.MapOf(empty).empty());
  CHECK(domain.MapOf(empty) == domain.MapOf(kNullOffset));
  CHECK(domain.MapOf(empty).version_number() == 2);
}

// Map::get hashes with HashInline and compares keys through ProbeKey's one-load word (issue 14):
// both must agree with the slow forms at every key length, or a get misses keys a writer stored.
TEST_CASE("a get's inline hash and key word agree with the hasher's and the bytes'",
          "[hamt][lookup]") {
  for (HashKind kind : {HashKind::kXxh3, HashKind::kTestWeak}) {
    const KeyHasher hasher(kind, 0x9E3779B97F4A7C15ull);
    std::string key;
    // Past 240 bytes: every XXH3 length class (0-16, 17-128, 129-240, long) is compared.
    for (int len = 0; len <= 300; ++len) {
      CHECK(atomap::internal::HashInline(hasher, key) == hasher(key));
      key.push_back(static_cast<char>('a' + len % 26));
    }
  }
  for (std::size_t len = 0; len <= kInlineBytes; ++len) {
    const std::string bytes = std::string("\x01\x02\x03\x04\x05\x06\x07\x08").substr(0, len);
    std::uint64_t expected = 0;
    for (std::size_t i = 0; i < len; ++i) {
      expected |= std::uint64_t{static_cast<unsigned char>(bytes[i])} << (8 * i);  // little-endian
    }
    CHECK(InlineWord(bytes) == expected);
  }
  TestDomain domain(std::uint64_t{1} << 30);
  Model sets;
  for (int len = 0; len <= 20; ++len) sets[std::string(len, 'k')] = std::to_string(len);
  const Map map = domain.MapOf(domain.Build(kNullOffset, sets).version);
  for (int len = 0; len <= 20; ++len) {
    CHECK(map.get(std::string(len, 'k')) == std::to_string(len));
    if (len > 0) CHECK_FALSE(map.get(std::string(len, 'j')).has_value());  // same length, absent
  }
}

TEST_CASE("keys equal in all 64 hash bits share a sorted collision node", "[hamt][collision]") {
  TestDomain domain(std::uint64_t{1} << 30, HashKind::kTestWeak);
  const KeyHasher& hasher = domain.context().hasher;
  REQUIRE(hasher("xa") == hasher("xb"));  // differ only in the low 4 bits of the last byte
  const Offset v = domain.Build(kNullOffset, {{"xc", "3"}, {"xa", "1"}, {"xb", "2"}}).version;
  const std::string dump = DumpStructure(domain.arena(), ReadVersion(domain.arena(), v).root_node);
  CHECK(dump.find("collision n=3") != std::string::npos);
  const Map map = domain.MapOf(v);
  CHECK(map.get("xa") == "1");
  CHECK(map.get("xb") == "2");
  CHECK(map.get("xc") == "3");
  CHECK_FALSE(map.get("xd").has_value());
  // Down to one entry: the collision node and the chain above it fold into the root.
  const Offset one = domain.Build(v, {}, {"xa", "xc"}).version;
  CHECK(DumpStructure(domain.arena(), ReadVersion(domain.arena(), one).root_node).find('\n') ==
        DumpStructure(domain.arena(), ReadVersion(domain.arena(), one).root_node).size() - 1);
  CHECK(domain.MapOf(one).get("xb") == "2");
}

TEST_CASE("after commit, freeing the replaced blocks leaves exactly the new version live",
          "[hamt][accounting]") {
  TestDomain domain;
  Model base = Numbered(0, 5000);
  base["long-key-" + std::string(100, 'k')] = std::string(1000, 'v');  // blobs
  const CommitResult v1 = domain.Build(kNullOffset, base);
  CHECK(v1.replaced.empty());
  CHECK(domain.LiveBytes() == domain.ReachableBytes({v1.version}));

  Model changes = Numbered(4000, 6000, "key");  // overwrites and inserts
  changes["long-key-" + std::string(100, 'k')] = "short now";  // drops a value blob
  const CommitResult v2 = domain.Build(v1.version, changes, {"key1", "key2", "key3999"});
  domain.Free(v2.replaced);
  CHECK(domain.LiveBytes() == domain.ReachableBytes({v2.version}));

  std::uint64_t allocated = 0;
  for (const Block& b : v2.allocated) allocated += Allocator::BlockBytes(b.bytes);
  CHECK(allocated <= domain.ReachableBytes({v2.version}));
}

absl::flat_hash_set<Offset> BlocksOf(const TestDomain& domain, Offset version) {
  absl::flat_hash_set<Offset> out;
  ForEachBlock(domain.arena(), version, [&](Offset off, std::uint64_t) { out.insert(off); });
  return out;
}

TEST_CASE("a transaction copies each touched base node once and edits its copies in place",
          "[hamt][transient]") {
  TestDomain domain;
  const Offset base = domain.Build(kNullOffset, Numbered(0, 100000)).version;
  const auto run = [&](int rounds) {
    TrieTransaction tx(domain.context(), base);
    for (int round = 0; round < rounds; ++round) {
      for (int i = 0; i < 1000; ++i) {
        REQUIRE(tx.Set(absl::StrCat("key", i * 37), absl::StrCat("r", rounds - round)).ok());
      }
    }
    return std::move(tx.Commit().value());
  };
  const CommitResult once = run(1);
  const CommitResult five_times = run(5);  // same final contents
  CHECK(domain.MapOf(once.version) == domain.MapOf(five_times.version));
  CHECK(five_times.allocated.size() == once.allocated.size());
  CHECK(five_times.replaced.size() == once.replaced.size());

  const absl::flat_hash_set<Offset> in_base = BlocksOf(domain, base);
  const absl::flat_hash_set<Offset> in_new = BlocksOf(domain, five_times.version);
  absl::flat_hash_set<Offset> replaced;
  for (const Block& b : five_times.replaced) {
    CHECK(replaced.insert(b.offset).second);  // never listed twice
    CHECK(in_base.contains(b.offset));
    CHECK_FALSE(in_new.contains(b.offset));
  }
  for (const Block& b : five_times.allocated) {
    CHECK(in_new.contains(b.offset));
    CHECK_FALSE(in_base.contains(b.offset));
  }
  // Exactly: new-version blocks = base blocks - replaced + allocated.
  CHECK(in_new.size() == in_base.size() - replaced.size() + five_times.allocated.size());
}

TEST_CASE("abort frees everything the transaction allocated", "[hamt][accounting]") {
  TestDomain domain;
  const Offset v1 = domain.Build(kNullOffset, Numbered(0, 3000)).version;
  const std::uint64_t live = domain.LiveBytes();
  {
    TrieTransaction tx(domain.context(), v1);
    for (const auto& [k, v] : Numbered(1000, 9000))
      REQUIRE(tx.Set(k, v + std::string(50, '!')).ok());
    for (int i = 0; i < 2000; i += 3) REQUIRE(tx.Erase("key" + std::to_string(i)).ok());
    CHECK(domain.LiveBytes() > live);
    tx.Abort();
  }
  CHECK(domain.LiveBytes() == live);
  {
    TrieTransaction dropped(domain.context(), v1);
    REQUIRE(dropped.Set("x", std::string(99, 'y')).ok());
  }
  CHECK(domain.LiveBytes() == live);
  CHECK(Contents(domain.MapOf(v1)) == Numbered(0, 3000));
}

// A base of 200 keys with the damage one flipped offset can make: the root's child on the path
// of a new key points at a free block (transient.h, "Block identity").
class FreeBlockReached {
 public:
  FreeBlockReached() : base_(domain_.Build(kNullOffset, Numbered(0, 200)).version) {
    const TrieContext& ctx = domain_.context();
    root_ = ctx.arena->At<NodeHeader>(ReadVersion(domain_.arena(), base_).root_node);
    for (int i = 0; key_.empty(); ++i) {
      const std::string k = absl::StrCat("p", i);
      hash_ = ctx.hasher(k);
      if (root_->nodemap & BitFor(Fragment(hash_, 0))) key_ = k;
    }
  }
  // A block of `bytes` whose header reads as `header`, freed at the head of its size's list
  // (whose link, written into the block's second word, is then null: the list was emptied).
  Offset FreeBlock(std::uint64_t bytes, NodeHeader header) {
    const TrieContext& ctx = domain_.context();
    const CachedClass& list = ctx.cache->classes[size_classes::ClassOf(bytes)];
    while (list.head != kNullOffset) (void)ctx.allocator->Allocate(ctx.cache, bytes).value();
    const Offset block = ctx.allocator->Allocate(ctx.cache, bytes).value();
    std::memset(ctx.arena->At<char>(block), 0, bytes);
    *ctx.arena->At<NodeHeader>(block) = header;
    ctx.allocator->Free(ctx.cache, block, bytes);
    return block;
  }
  // The damage: the root's child on the key's path is `block`.
  void PointAt(Offset block) {
    const Bitmap bit = BitFor(Fragment(hash_, 0));
    reinterpret_cast<Offset*>(root_ + 1)[IndexOf(root_->nodemap, bit)] = block;
  }
  // Sets the key in a transaction of the base: its status, the transaction aborted.
  absl::Status Set(std::string_view value) {
    TrieTransaction tx(domain_.context(), base_);
    (void)tx.size();  // nothing deferred
    absl::Status s = tx.Set(key_, value);
    if (tx.open()) return absl::InternalError("the transaction is still open");
    return s;
  }
  Bitmap Level1Bit() const { return BitFor(Fragment(hash_, 1)); }
  TestDomain& domain() { return domain_; }

 private:
  TestDomain domain_;
  Offset base_;
  NodeHeader* root_ = nullptr;
  std::string key_;
  std::uint64_t hash_ = 0;
};

// The write allocates the free block for the key's value and then reads it, through the base,
// as a node that the value's bytes make another size: freeing it as that size would put it on
// the wrong list.
TEST_CASE("a base that reaches a block the write allocated as another size is DataLoss",
          "[hamt][transient][damaged]") {
  FreeBlockReached f;
  const TrieContext& ctx = f.domain().context();
  Bitmap two = 0;  // two fragments other than the key's
  for (unsigned b = 0; Count(two) < 2; ++b) {
    if (BitFor(b) != f.Level1Bit()) two |= BitFor(b);
  }
  const std::uint64_t bytes = BitmapNodeBytes(0, 2);  // a node of two entries, another key's
  const Offset block = f.FreeBlock(bytes, NodeHeader{two, 0});
  f.PointAt(block);
  const std::uint64_t live = f.domain().LiveBytes();
  std::string value(bytes, '\0');  // whose first word reads as a node of three entries
  const NodeHeader three{two | f.Level1Bit(), 0};
  std::memcpy(value.data(), &three, sizeof three);
  const absl::Status s = f.Set(value);
  CHECK(absl::IsDataLoss(s));
  CHECK(s.message().find("read as 80 bytes, allocated as 56") != std::string_view::npos);
  CHECK(f.domain().LiveBytes() == live);  // the value's block went back whole, to its own list
  CHECK(ctx.allocator->Allocate(ctx.cache, bytes).value() == block);
}

// The root's child is a free node at the head of its list: copying it on first touch allocates
// that same block, and releasing the original would free the copy that the write then links.
TEST_CASE("a base node that is the free block its copy is given is DataLoss",
          "[hamt][transient][damaged]") {
  FreeBlockReached f;
  const TrieContext& ctx = f.domain().context();
  const std::uint64_t bytes = BitmapNodeBytes(1, 0);  // one child: the null link
  const Offset block = f.FreeBlock(bytes, NodeHeader{0, f.Level1Bit()});
  f.PointAt(block);
  const std::uint64_t live = f.domain().LiveBytes();
  const absl::Status s = f.Set("v");
  CHECK(absl::IsDataLoss(s));
  CHECK(s.message().find("as the block it is copied into") != std::string_view::npos);
  CHECK(f.domain().LiveBytes() == live);
  // Still at the head of its list, its link intact: the next two allocations are it and a
  // block that is not it.
  CHECK(ctx.allocator->Allocate(ctx.cache, bytes).value() == block);
  CHECK(ctx.allocator->Allocate(ctx.cache, bytes).value() != block);
}

TEST_CASE("one transaction bulk-builds a million u64 entries", "[hamt][bulk]") {
  TestDomain domain;
  constexpr std::uint64_t kCount = 1'000'000;
  const auto start = std::chrono::steady_clock::now();
  TrieTransaction tx(domain.context(), kNullOffset);
  for (std::uint64_t i = 0; i < kCount; ++i) {
    const std::string k = U64Key(i), v = U64Key(i * 3);
    REQUIRE(tx.Set(k, v).ok());
  }
  CommitResult result = std::move(tx.Commit().value());
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const Map map = domain.MapOf(result.version);
  REQUIRE(map.size() == kCount);
  for (std::uint64_t i = 0; i < kCount; i += 997) CHECK(map.get(U64Key(i)) == U64Key(i * 3));
  CHECK_FALSE(map.get(U64Key(kCount)).has_value());
  CHECK(result.replaced.empty());
  CHECK(domain.LiveBytes() == domain.ReachableBytes({result.version}));
  const double per_entry = static_cast<double>(domain.ReachableBytes({result.version})) / kCount;
  std::printf("bulk build of 1M u64 entries: %.2f s, %.1f bytes per entry\n", seconds, per_entry);
  CHECK(per_entry <= 40.0);
}

TEST_CASE("limits: too long a key or value is InvalidArgument and changes nothing",
          "[hamt][limits]") {
  TestDomain domain;
  TrieTransaction tx(domain.context(), kNullOffset);
  REQUIRE(tx.Set("a", "1").ok());
  const std::string long_key(kMaxKeyBytes + 1, 'k');
  CHECK(tx.Set(long_key, "v").code() == absl::StatusCode::kInvalidArgument);
  CHECK(tx.Set(std::string(kMaxKeyBytes, 'k'), "v").ok());
  CHECK(tx.Erase(long_key).value() == false);
  CHECK(tx.open());
  CHECK(tx.size() == 2);
  CHECK(tx.Get("a") == "1");
}

TEST_CASE("empty keys and values, and every length around the inline limit", "[hamt][entry]") {
  TestDomain domain;
  Model m;
  for (int len = 0; len <= 20; ++len) m[std::string(len, 'k')] = std::string(20 - len, 'v');
  const Offset v = domain.Build(kNullOffset, m).version;
  CHECK(Contents(domain.MapOf(v)) == m);
  for (const auto& [k, value] : m) CHECK(domain.MapOf(v).get(k) == value);
}

TEST_CASE("get returns a view into the mapping", "[hamt][map]") {
  TestDomain domain;
  const Offset v =
      domain.Build(kNullOffset, {{"short", "1234"}, {"long", std::string(64, 'z')}}).version;
  for (const char* key : {"short", "long"}) {
    const std::string_view got = *domain.MapOf(v).get(key);
    const auto* base = domain.arena().base();
    CHECK(reinterpret_cast<const std::uint8_t*>(got.data()) > base);
    CHECK(reinterpret_cast<const std::uint8_t*>(got.data()) < base + domain.arena().mapped_size());
  }
}

TEST_CASE("public Transaction: set, erase, update, set_many, own writes", "[hamt][transaction]") {
  TestDomain domain;
  const Offset v1 = domain.Build(kNullOffset, {{"a", "1"}, {"b", "2"}}).version;
  Transaction tx = TransactionAccess::Make(domain.context(), v1);
  REQUIRE(tx.set("c", "3").ok());
  CHECK(tx.erase("a").value());
  CHECK_FALSE(tx.erase("a").value());
  const auto increment = [](std::optional<std::string_view> old) -> std::optional<std::string> {
    return std::to_string(old ? std::stoi(std::string(*old)) + 1 : 100);
  };
  REQUIRE(tx.update("b", increment).ok());
  REQUIRE(tx.update("new", increment).ok());
  REQUIRE(tx.update("c", [](auto) -> std::optional<std::string> { return std::nullopt; }).ok());
  const std::pair<std::string_view, std::string_view> many[] = {{"m1", "x"}, {"m2", "y"}};
  REQUIRE(tx.set_many(many).ok());
  const std::string too_long(kMaxKeyBytes + 1, 'k');
  const std::pair<std::string_view, std::string_view> bad[] = {{"ok", "x"}, {too_long, "y"}};
  CHECK(tx.set_many(bad).code() == absl::StatusCode::kInvalidArgument);
  CHECK_FALSE(tx.contains("ok"));  // checked before anything was written

  // A throwing update function leaves the transaction as it was.
  CHECK_THROWS_AS(
      tx.update("b",
                [](auto) -> std::optional<std::string> { throw std::runtime_error("user error"); }),
      std::runtime_error);
  CHECK(tx.get("b") == "3");
  CHECK(tx.get("new") == "100");
  CHECK(tx.size() == 4);  // b, new, m1, m2

  CommitResult r = std::move(TransactionAccess::Impl(tx).Commit().value());
  CHECK_FALSE(tx.active());
  CHECK(tx.set("z", "z").code() == absl::StatusCode::kFailedPrecondition);
  CHECK(Contents(domain.MapOf(r.version)) ==
        Model{{"b", "3"}, {"new", "100"}, {"m1", "x"}, {"m2", "y"}});
  CHECK(Contents(domain.MapOf(v1)) == Model{{"a", "1"}, {"b", "2"}});  // base untouched
}

TEST_CASE("Diff reports added, removed and changed keys", "[hamt][diff]") {
  TestDomain domain;
  const Offset v1 = domain.Build(kNullOffset, Numbered(0, 10000)).version;
  const Offset v2 = domain.Build(v1, {{"key5", "changed"}, {"fresh", "new"}}, {"key7"}).version;
  absl::StatusOr<MapDiff> d = Diff(domain.MapOf(v1), domain.MapOf(v2));
  REQUIRE(d.ok());
  REQUIRE(d->added.size() == 1);
  CHECK(d->added[0] == std::pair<std::string, std::string>("fresh", "new"));
  REQUIRE(d->removed.size() == 1);
  CHECK(d->removed[0].first == "key7");
  REQUIRE(d->changed.size() == 1);
  CHECK(d->changed[0].key == "key5");
  CHECK(d->changed[0].old_value == "value-35");
  CHECK(d->changed[0].new_value == "changed");
  CHECK(Diff(domain.MapOf(v2), domain.MapOf(v2))->empty());
  CHECK(Diff(Map(), domain.MapOf(v1))->added.size() == 10000);

  TestDomain other;
  CHECK(Diff(domain.MapOf(v1), other.MapOf(other.Build(kNullOffset, {{"a", "b"}}).version))
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("iteration order is the same for the same keys however they were inserted",
          "[hamt][map]") {
  TestDomain domain;
  const Model m = Numbered(0, 500);
  const Offset forward = domain.Build(kNullOffset, m).version;
  TrieTransaction tx(domain.context(), kNullOffset);
  for (auto it = m.rbegin(); it != m.rend(); ++it) REQUIRE(tx.Set(it->first, it->second).ok());
  const Offset backward = tx.Commit().value().version;
  std::vector<std::string> a, b, c;
  domain.MapOf(forward).ForEach([&](std::string_view k, std::string_view) { a.emplace_back(k); });
  domain.MapOf(backward).ForEach([&](std::string_view k, std::string_view) { b.emplace_back(k); });
  for (const auto& [k, v] : domain.MapOf(backward)) c.emplace_back(k);  // iterators: same order
  CHECK(a == b);
  CHECK(a == c);
}

TEST_CASE("iterators walk every entry once, collision nodes included", "[hamt][map]") {
  for (HashKind kind : {HashKind::kXxh3, HashKind::kTestWeak}) {
    TestDomain domain(std::uint64_t{1} << 30, kind);
    Model m = Numbered(0, 3000);
    for (int i = 0; i < 50; ++i) {  // under kTestWeak, same-length keys ending a..d collide fully
      std::string key(i % 7 + 1, 'q');
      key.push_back(static_cast<char>('a' + i % 4));
      m.emplace(std::move(key), "c");
    }
    const Map map = domain.MapOf(domain.Build(kNullOffset, m).version);
    Model seen;
    std::uint64_t count = 0;
    for (auto it = map.begin(); it != map.end(); ++it) {
      seen.emplace((*it).first, (*it).second);
      ++count;
    }
    CHECK(count == m.size());
    CHECK(seen == m);
    CHECK(Map().begin() == Map().end());
    CHECK(domain.MapOf(kNullOffset).begin() == domain.MapOf(kNullOffset).end());
  }
}

struct Point {
  std::int32_t x;
  std::int32_t y;
};
struct Padded {
  std::int8_t a;
  std::int64_t b;
};
static_assert(Codable<std::uint64_t> && Codable<double> && Codable<Point> && Codable<std::string>);
static_assert(!Codable<Padded>, "padding bytes are unspecified: rejected at compile time");
static_assert(!Codable<int*> && !Codable<std::string_view>);

TEST_CASE("typed views store integers, doubles and structs natively", "[hamt][typed]") {
  TestDomain domain;
  Transaction tx = TransactionAccess::Make(domain.context(), kNullOffset);
  TypedTransaction<std::uint64_t, double> prices(tx);
  REQUIRE(prices.set(42, 9.5).ok());
  REQUIRE(
      prices.update(42, [](std::optional<double> old) { return std::optional(*old * 2); }).ok());
  REQUIRE(
      prices.update(7, [](std::optional<double> old) { return std::optional(old.value_or(1.5)); })
          .ok());
  CHECK(prices.get(42) == 19.0);
  TypedTransaction<std::string, Point> points(tx);
  REQUIRE(points.set("origin", Point{0, 0}).ok());
  REQUIRE(points.set("p", Point{3, -4}).ok());
  const Offset v = TransactionAccess::Impl(tx).Commit().value().version;

  const Map map = domain.MapOf(v);
  TypedMap<std::uint64_t, double> typed_prices(map);
  CHECK(typed_prices.get(42) == 19.0);
  CHECK(typed_prices.get(7) == 1.5);
  CHECK(map.get(U64Key(42))->size() == sizeof(double));
  TypedMap<std::string, Point> typed_points(map);
  CHECK(typed_points.get("p")->y == -4);
  CHECK_FALSE(typed_points.get("nope").has_value());
  int decoded = 0;
  typed_prices.ForEach([&](const std::uint64_t&, const double&) { ++decoded; });
  CHECK(decoded == 2);  // the string keys do not decode as u64 and are skipped
}

}  // namespace
}  // namespace atomap::internal::hamt

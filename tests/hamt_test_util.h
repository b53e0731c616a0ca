// A small in-process domain for the trie's tests: an anonymous arena with the allocator's state
// and one participant cache at their places in the file layout, and helpers that measure what a
// version reaches against what the allocator says is live.
#ifndef ATOMAP_TESTS_HAMT_TEST_UTIL_H_
#define ATOMAP_TESTS_HAMT_TEST_UTIL_H_

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "alloc/allocator.h"
#include "arena/arena.h"
#include "common/layout.h"
#include "hamt/access.h"
#include "hamt/read.h"
#include "hamt/transient.h"
#include "hamt/trie_context.h"

namespace atomap::internal::hamt {

using Model = std::map<std::string, std::string>;

class TestDomain {
 public:
  static constexpr Offset kCacheOffset = kHeaderBytes + kAllocatorStateBytes + kSlotAllocCacheOffset;
  static constexpr Offset kDataBegin = 4 * 4096;

  explicit TestDomain(std::uint64_t max_bytes = std::uint64_t{4} << 30,
                      HashKind kind = HashKind::kXxh3) {
    arena_ = std::move(Arena::Anonymous(max_bytes, kDataBegin).value());
    auto* state = arena_->At<AllocatorState>(kHeaderBytes);
    cache_ = arena_->At<ParticipantCache>(kCacheOffset);
    Allocator::Format(state, kDataBegin);
    Allocator::FormatCache(cache_);
    allocator_ = std::make_unique<Allocator>(arena_.get(), state);
    context_ = TrieContext{arena_.get(), allocator_.get(), cache_, KeyHasher(kind, 0x5eed)};
  }

  const TrieContext& context() const { return context_; }
  const Arena& arena() const { return *arena_; }
  Allocator& allocator() { return *allocator_; }

  std::uint64_t LiveBytes() const { return allocator_->Stats({cache_}).live_bytes; }

  void Free(const std::vector<Block>& blocks) {
    for (const Block& b : blocks) allocator_->Free(cache_, b.offset, b.bytes);
  }

  // Bytes (as the allocator counts them) of the union of blocks the versions reach.
  std::uint64_t ReachableBytes(const std::vector<Offset>& versions) const {
    absl::flat_hash_map<Offset, std::uint64_t> blocks;
    for (Offset v : versions) {
      ForEachBlock(*arena_, v, [&](Offset off, std::uint64_t bytes) { blocks.emplace(off, bytes); });
    }
    std::uint64_t total = 0;
    for (const auto& [off, bytes] : blocks) total += Allocator::BlockBytes(bytes);
    return total;
  }

  Map MapOf(Offset version) const { return MapAccess::Make(&context_, version); }

  // Commits `model` on top of `base` in one transaction; returns the new version.
  CommitResult Build(Offset base, const Model& sets, const std::vector<std::string>& erases = {}) {
    TrieTransaction tx(context_, base);
    for (const auto& [k, v] : sets) REQUIRE_OK(tx.Set(k, v));
    for (const auto& k : erases) REQUIRE_OK(tx.Erase(k).status());
    return std::move(tx.Commit().value());
  }

 private:
  static void REQUIRE_OK(const absl::Status& s) {
    if (!s.ok()) throw std::runtime_error(s.ToString());
  }

  std::unique_ptr<Arena> arena_;
  ParticipantCache* cache_ = nullptr;
  std::unique_ptr<Allocator> allocator_;
  TrieContext context_;
};

inline Model Contents(const Map& map) {
  Model out;
  map.ForEach([&](std::string_view k, std::string_view v) { out.emplace(k, v); });
  return out;
}

}  // namespace atomap::internal::hamt

#endif  // ATOMAP_TESTS_HAMT_TEST_UTIL_H_

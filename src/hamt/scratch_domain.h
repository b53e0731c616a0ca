// ScratchDomain: a trie context over anonymous in-process memory, for tests and benchmarks.
//
// Lays the allocator out as a domain file would (AllocatorState at kHeaderBytes, one
// participant's cache in slot 0, data from the fourth page) without the domain layer's header or
// tables. Also measures what versions reach against what the allocator counts as live: the
// accounting that `check` will do on real files.
//
// Not thread-safe: one participant (one cache).
#ifndef ATOMAP_SRC_HAMT_SCRATCH_DOMAIN_H_
#define ATOMAP_SRC_HAMT_SCRATCH_DOMAIN_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "alloc/allocator.h"
#include "alloc/allocator_state.h"
#include "arena/arena.h"
#include "common/layout.h"
#include "hamt/access.h"
#include "hamt/read.h"
#include "hamt/transient.h"
#include "hamt/trie_context.h"

namespace atomap::internal::hamt {

class ScratchDomain {
 public:
  static constexpr Offset kCacheOffset =
      kHeaderBytes + kAllocatorStateBytes + kSlotAllocCacheOffset;
  static constexpr Offset kDataBegin = 4 * 4096;
  static_assert(kCacheOffset + kSlotAllocCacheBytes <= kDataBegin);

  explicit ScratchDomain(std::uint64_t max_bytes = std::uint64_t{4} << 30,
                         HashKind kind = HashKind::kXxh3, std::uint64_t seed = 0x5eed) {
    arena_ = std::move(Arena::Anonymous(max_bytes, kDataBegin).value());
    auto* state = arena_->At<AllocatorState>(kHeaderBytes);
    cache_ = arena_->At<ParticipantCache>(kCacheOffset);
    Allocator::Format(state, kDataBegin);
    Allocator::FormatCache(cache_);
    allocator_ = std::make_unique<Allocator>(arena_.get(), state);
    context_ = TrieContext{arena_.get(), allocator_.get(), cache_, KeyHasher(kind, seed)};
  }

  const TrieContext& context() const { return context_; }
  const Arena& arena() const { return *arena_; }

  std::uint64_t LiveBytes() const { return allocator_->Stats({cache_}).live_bytes; }

  void Free(const std::vector<Block>& blocks) {
    for (const Block& b : blocks) allocator_->Free(cache_, b.offset, b.bytes);
  }

  // Bytes (as the allocator counts them: whole blocks) of the union of blocks `versions` reach.
  std::uint64_t ReachableBytes(const std::vector<Offset>& versions) const {
    absl::flat_hash_map<Offset, std::uint64_t> blocks;
    for (Offset v : versions) {
      ForEachBlock(*arena_, v,
                   [&](Offset off, std::uint64_t bytes) { blocks.emplace(off, bytes); });
    }
    std::uint64_t total = 0;
    for (const auto& [off, bytes] : blocks) total += Allocator::BlockBytes(bytes);
    return total;
  }

  Map MapOf(Offset version) const { return MapAccess::Make(&context_, version); }

 private:
  std::unique_ptr<Arena> arena_;
  ParticipantCache* cache_ = nullptr;
  std::unique_ptr<Allocator> allocator_;
  TrieContext context_;
};

}  // namespace atomap::internal::hamt

#endif  // ATOMAP_SRC_HAMT_SCRATCH_DOMAIN_H_

// OwnedBlocks: the blocks one transaction attempt allocated and still uses, each with its size
// and its position in the transaction's ledger: what Abort frees and what a publication that
// fails must free (transient.h, "Ownership").
//
// Why three stores: a hash map insert per block (a cache miss into a table of hundreds of
// thousands) was a third of a bulk build's time, and for a one-key swap (five or so blocks)
// the map's own allocations and first inserts were a tenth of the swap (bench/
// benchmarks_notes.md, "Issue 15"). So an edit's first kInline blocks live in an array inside
// this object, searched linearly; later ones in the hash map. Blocks allocated one after another
// by a build (bulk_build.cc) are appended to a vector, which is sorted by offset only when first
// searched: a build allocates mostly from the bump region, in increasing offsets, so the sort
// usually finds it sorted.
//
// Invariants
//  (O1) Every owned block is live in exactly one store: the inline array's first inline_count_
//       entries, the map, or the vector without the erased mark. An offset may appear more than
//       once in the vector (freed and handed out again within one transaction), but at most once
//       unmarked.
//  (O2) The vector is sorted by offset whenever `sorted_` says so; Find sorts it first.
//
// Thread safety: one thread at a time, like the transaction that holds it. Process-local.
#ifndef ATOMAP_SRC_HAMT_OWNED_BLOCKS_H_
#define ATOMAP_SRC_HAMT_OWNED_BLOCKS_H_

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/offset.h"

namespace atomap::internal::hamt {

class OwnedBlocks {
 public:
  struct Owned {
    std::uint64_t bytes;
    std::uint64_t ledger_position;  // meaningless without a ledger
  };

  // A block allocated by an edit (any order).
  void Add(Offset block, Owned owned);
  // A block allocated by a bottom-up build: cheap when offsets arrive in increasing order.
  void AddFromBuild(Offset block, Owned owned);

  // The live record of `block`, or null if it is not owned. May sort the build's vector (O2).
  Owned* Find(Offset block);
  bool Contains(Offset block) { return Find(block) != nullptr; }
  // REQUIRES: Find(block) != null.
  void Erase(Offset block);

  // f(offset, bytes) for every owned block.
  template <class F>
  void ForEach(F f) const {
    for (std::size_t i = 0; i < inline_count_; ++i) f(inline_[i].offset, inline_[i].owned.bytes);
    for (const auto& [offset, owned] : map_) f(offset, owned.bytes);
    for (const BuildBlock& b : built_) {
      if (!b.erased) f(b.offset, b.owned.bytes);
    }
  }
  std::size_t size() const { return inline_count_ + map_.size() + built_.size() - erased_; }
  void clear();

 private:
  struct InlineBlock {
    Offset offset;
    Owned owned;
  };
  struct BuildBlock {
    Offset offset;
    Owned owned;
    bool erased;
  };
  static constexpr std::size_t kInline = 16;

  InlineBlock* FindInline(Offset block);
  BuildBlock* FindBuilt(Offset block);  // the unmarked entry of `block`, or null

  InlineBlock inline_[kInline];
  std::size_t inline_count_ = 0;
  absl::flat_hash_map<Offset, Owned> map_;
  std::vector<BuildBlock> built_;
  std::size_t erased_ = 0;  // marked entries of built_
  bool sorted_ = true;      // (O2)
};

}  // namespace atomap::internal::hamt

#endif  // ATOMAP_SRC_HAMT_OWNED_BLOCKS_H_

#include "hamt/owned_blocks.h"

#include <algorithm>

namespace atomap::internal::hamt {

void OwnedBlocks::Add(Offset block, Owned owned) {
  if (inline_count_ < kInline) {
    inline_[inline_count_++] = InlineBlock{block, owned};
  } else {
    map_.emplace(block, owned);
  }
}

void OwnedBlocks::AddFromBuild(Offset block, Owned owned) {
  if (!built_.empty() && built_.back().offset >= block) sorted_ = false;
  built_.push_back(BuildBlock{block, owned, false});
}

OwnedBlocks::InlineBlock* OwnedBlocks::FindInline(Offset block) {
  for (std::size_t i = 0; i < inline_count_; ++i) {
    if (inline_[i].offset == block) return &inline_[i];
  }
  return nullptr;
}

OwnedBlocks::Owned* OwnedBlocks::Find(Offset block) {
  if (InlineBlock* b = FindInline(block); b != nullptr) return &b->owned;
  if (map_.empty() && built_.empty()) return nullptr;
  if (const auto it = map_.find(block); it != map_.end()) return &it->second;
  BuildBlock* built = FindBuilt(block);
  return built == nullptr ? nullptr : &built->owned;
}

void OwnedBlocks::Erase(Offset block) {
  if (InlineBlock* b = FindInline(block); b != nullptr) {
    *b = inline_[--inline_count_];  // the last fills its place
    return;
  }
  if (map_.erase(block) != 0) return;
  FindBuilt(block)->erased = true;  // REQUIRES: owned, so found
  ++erased_;
}

OwnedBlocks::BuildBlock* OwnedBlocks::FindBuilt(Offset block) {
  if (built_.empty()) return nullptr;
  if (!sorted_) {  // (O2); stable, so that the entries of one offset keep their order
    std::stable_sort(built_.begin(), built_.end(),
                     [](const BuildBlock& a, const BuildBlock& b) { return a.offset < b.offset; });
    sorted_ = true;
  }
  auto it = std::lower_bound(built_.begin(), built_.end(), block,
                             [](const BuildBlock& b, Offset off) { return b.offset < off; });
  for (; it != built_.end() && it->offset == block; ++it) {
    if (!it->erased) return &*it;  // (O1): at most one
  }
  return nullptr;
}

void OwnedBlocks::clear() {
  inline_count_ = 0;
  map_.clear();
  built_.clear();
  erased_ = 0;
  sorted_ = true;
}

}  // namespace atomap::internal::hamt

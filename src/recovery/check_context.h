// CheckContext: what every part of the checker shares — the bounds a block must lie in, the
// problem list, and the space map — and the one bounds check every offset goes through before
// anything is read at it. Reading a damaged file never touches memory outside [data_begin,
// limit), which lies inside the mapping.
//
// Process-local; not shared between threads. No memory ordering.
#ifndef ATOMAP_SRC_RECOVERY_CHECK_CONTEXT_H_
#define ATOMAP_SRC_RECOVERY_CHECK_CONTEXT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "alloc/allocator.h"
#include "alloc/block_bounds.h"
#include "arena/arena.h"
#include "common/hash.h"
#include "common/offset.h"
#include "recovery/space_map.h"

namespace atomap::internal {

struct CheckContext {
  const Arena& arena;
  Offset data_begin;
  Offset limit;  // min(bump, mapped size): no block may reach past it
  const KeyHasher& hasher;
  SpaceMap& space;
  std::vector<std::string>& problems;

  // More than this many problems are summarised: a wrecked file must not exhaust memory.
  static constexpr std::size_t kMaxProblems = 200;

  template <typename... Args>
  void Problem(const absl::FormatSpec<Args...>& format, const Args&... args) {
    if (problems.size() < kMaxProblems) {
      problems.push_back(absl::StrFormat(format, args...));
    } else if (problems.size() == kMaxProblems) {
      problems.push_back("more problems were found and not listed");
    }
  }

  BlockBounds Bounds() const { return BlockBounds{data_begin, limit}; }
  // True if [off, off + bytes) is a plausible block: aligned, inside [data_begin, limit)
  // (BlockBounds, the library's one plausibility check: alloc/chain_walk.h).
  bool Plausible(Offset off, std::uint64_t bytes) const { return Bounds().Contains(off, bytes); }

  // The object at `off`, or nullptr (and a problem naming `what()`) if it is not plausible.
  // `what` is a callable returning the description: a walk reads every block of the file
  // through here, and formatting a name for each of them was a tenth of `atomap check`.
  template <typename T, typename Describe>
  const T* Read(Offset off, std::uint64_t bytes, const Describe& what) {
    if (!Plausible(off, bytes)) {
      Problem("%s: offset %d (%d bytes) is not an aligned block inside the data region [%d, %d)",
              std::string(what()), off, bytes, data_begin, limit);
      return nullptr;
    }
    return arena.At<const T>(off);
  }

  // REQUIRES: 0 < bytes <= Allocator::kMaxBlockBytes (callers check what they read).
  void AddBlock(Offset off, std::uint64_t bytes, Holder holder) {
    const std::uint64_t class_bytes = Allocator::BlockBytes(bytes);
    space.Add(
        Extent{off, class_bytes, holder, static_cast<std::uint32_t>(size_classes::ClassOf(bytes))});
  }
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_RECOVERY_CHECK_CONTEXT_H_

// Read policies: how far the trie's readers (read.cc) trust what they find in the file.
//
// Every reader of read.h is a template over one of these two policies, instantiated twice:
//  - Trusting: a published version of a healthy domain (node.h N1-N4 hold). Every check is a
//    constant `true`, so the instantiation compiles to the unchecked code (the normal get).
//  - Bounded: a version that may be damaged (a flipped byte, a truncated or live-copied file).
//    Before anything is read at an offset it is checked to be an aligned block inside the data
//    region and the mapping, a node's bitmaps to be disjoint (and, at the last level, within its
//    16 branches), a collision node's count to be >= 2 and its bytes inside the mapping, an
//    entry's key and value lengths to be possible and their blobs to be blocks; and every walk
//    is bounded: depth by the level (at most kMaxDepth nodes on a path), the number of node
//    visits by the blocks the mapping can hold (a cycle or a shared subtree of a damaged file
//    ends there). The first failed check stops the walk and is remembered: status() names the
//    file, what was wrong and where.
// Neither policy writes the file. A Bounded is process-local, one per read operation; not
// shared between threads.
#ifndef ATOMAP_SRC_HAMT_READ_BOUNDS_H_
#define ATOMAP_SRC_HAMT_READ_BOUNDS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "arena/arena.h"
#include "common/offset.h"
#include "hamt/node.h"

namespace atomap::internal::hamt {

class Trusting {
 public:
  explicit Trusting(const Arena& arena) : arena_(arena) {}
  const Arena& arena() const { return arena_; }

  static constexpr bool Record(Offset) { return true; }
  static constexpr bool Node(Offset, int) { return true; }
  static constexpr bool Bytes(std::uint64_t, std::uint32_t) { return true; }
  static constexpr bool EntryOk(const Entry&) { return true; }
  static constexpr bool ok() { return true; }

 private:
  const Arena& arena_;
};

class Bounded {
 public:
  // `data_begin`: the domain's data region (no block lies below it). The mapping's size is read
  // once, here: a version reached before the call is mapped whole by then (atom.cc refreshes
  // the mapping when it loads a root).
  Bounded(const Arena& arena, Offset data_begin);
  const Arena& arena() const { return arena_; }

  // Each returns true if the object can be read; false (and the damage recorded) if not, or if
  // damage was found before.
  bool Record(Offset version);
  bool Node(Offset off, int level);
  bool Bytes(std::uint64_t word, std::uint32_t len);  // a key or value of `len` bytes
  bool EntryOk(const Entry& e) {
    return Bytes(e.key_word, e.key_len) && Bytes(e.value_word, e.value_len);
  }
  bool ok() const { return what_ == nullptr; }

  // OK, or DataLoss: "<file>: damaged map: <what> (offset N[, level L])".
  absl::Status status() const;

  // The node visits left; Map::Iterator carries them from one step to the next.
  std::uint64_t visits_left() const { return visits_left_; }
  void set_visits_left(std::uint64_t n) { visits_left_ = n; }
  // The visits a walk of this mapping may make (the most blocks it can hold).
  std::uint64_t visit_budget() const;

 private:
  bool IsBlock(Offset off, std::uint64_t bytes) const {
    return off % kBlockAlign == 0 && off >= data_begin_ && off != kNullOffset && off <= limit_ &&
           bytes <= limit_ - off;
  }
  bool Damage(const char* what, Offset at, int level);

  const Arena& arena_;
  const Offset data_begin_;
  const std::uint64_t limit_;  // the mapped size
  std::uint64_t visits_left_;
  const char* what_ = nullptr;  // the first damage found; null while none
  Offset at_ = 0;
  int level_ = -1;
};

}  // namespace atomap::internal::hamt

#endif  // ATOMAP_SRC_HAMT_READ_BOUNDS_H_

// TrieTransaction::SetMany: a bottom-up build of an empty trie from a batch of entries.
//
// Why: inserting one key at a time changes its node's size class on almost every insert, so a
// node is reallocated and copied once per entry it ends with. Here the entries are partitioned
// by hash fragment, level by level (a stable MSD radix partition, ping-ponging between two
// process-local record arrays), and each node is written once, at its final size. A range of at
// most kSortedRangeMax records is instead sorted once by its level-order key (bits.h) and built
// by one scan per level: a partition costs a 33-entry count table and a copy per level, which
// below the first levels (a few records per node) is most of the build.
//
// Invariants
//  (B1) BuildRange(level) receives records that agree on the fragments of levels < level; it
//       returns one node for them or, when they hold one distinct key below the root, that
//       entry for its parent to keep inline (node.h N4: no single-entry sub-node).
//  (B2) Duplicate keys have equal hashes, so they meet in one collision-level range, where the
//       last in input order wins, as a sequence of Sets would decide; the losers' blobs (owned,
//       made in the first pass) are released there. Every reordering is stable (the partition
//       and the insertion sort), so input order survives to that range.
//  (B3) Every block is allocated through Allocate (recorded in the ledger and in owned_ like any
//       other of the transaction's blocks, in owned_'s build order while `building_`: a vector
//       append, not a hash map insert, owned_blocks.h): a failure mid-build aborts the
//       transaction and frees them all; a kill mid-build leaves them to intent recovery exactly
//       as a Set would. The build adds no crash window and no ordering edge: nothing is shared
//       before Commit.
//  (B4) BuildSorted(level) receives records sorted by level-order key: each fragment's group is
//       a contiguous run at this level and, sorted, at every level below.
//  (B5) A group's scratch is needed only while that group is built (BuildRange partitions into
//       it, and its children then use the group's own first positions as theirs), and a node's
//       groups are built one after another: so the root's groups may share one scratch array as
//       long as the largest group.
#include <sys/mman.h>
#include <algorithm>
#include <array>
#include <new>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "common/hash_inline.h"
#include "hamt/entry.h"
#include "hamt/node_image.h"
#include "hamt/transient.h"

namespace atomap::internal::hamt {

absl::Status TrieTransaction::SetMany(EntrySpan entries) {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  for (const auto& [key, value] : entries) {
    if (absl::Status s = CheckKeyValue(key, value); !s.ok()) return s;
  }
  if (deferring_ && !deferred_.empty()) {  // built with the sets before it, by Settle
    for (const auto& [key, value] : entries) deferred_.Add(key, value);
    return SettleIfLarge();
  }
  deferring_ = false;  // the first call: built from the caller's entries, copied nowhere
  if (root_ != kNullOffset || !Buildable(entries.size())) {
    for (const auto& [key, value] : entries) {
      if (absl::Status s = Set(key, value); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  return Apply(BuildAll(SpanSource{entries}));
}

absl::Status TrieTransaction::Settle() {
  if (!deferring_) return absl::OkStatus();
  deferring_ = false;
  if (deferred_.empty()) return absl::OkStatus();
  absl::Status s;
  if (root_ == kNullOffset && Buildable(deferred_.size())) {
    s = Apply(BuildAll(deferred_));
  } else {
    for (std::size_t i = 0; i < deferred_.size() && s.ok(); ++i) {
      s = Set(deferred_.key(i), deferred_.value(i));
    }
  }
  deferred_.clear();
  return s;
}

namespace {

// A process-local array of `n` uninitialised T for one build, in huge pages where the kernel
// gives them: the build's arrays are tens of megabytes written once, and faulting them in 4 KiB
// pages was a tenth of a 1M-entry build (measured).
template <class T>
class BuildArray {
 public:
  explicit BuildArray(std::size_t n) : bytes_(n * sizeof(T)) {
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    (void)madvise(p, bytes_, MADV_HUGEPAGE);  // advice only: 4 KiB pages work too
    data_ = static_cast<T*>(p);
  }
  ~BuildArray() { munmap(data_, bytes_); }
  BuildArray(const BuildArray&) = delete;
  BuildArray& operator=(const BuildArray&) = delete;
  T* get() const { return data_; }
  T& operator[](std::size_t i) const { return data_[i]; }

 private:
  std::size_t bytes_;
  T* data_;
};

// Turns counts at [f + 1] into starts at [f].
void CountsToStarts(FragmentStarts& start) {
  for (int f = 0; f < kBranching; ++f) start[f + 1] += start[f];
}

// Where each fragment's group of [begin, end) starts at `level` once partitioned (or, for a
// range sorted by key, where it already starts: B4).
template <class Record>
FragmentStarts GroupStarts(const Record* begin, const Record* end, int level) {
  FragmentStarts start{};
  for (const Record* r = begin; r != end; ++r) ++start[OrderFragment(r->key, level) + 1];
  CountsToStarts(start);
  return start;
}

// Stable insertion sort by level-order key: for the short ranges of kSortedRangeMax records.
template <class Record>
void SortByKey(Record* begin, Record* end) {
  for (Record* i = begin + 1; i < end; ++i) {
    const Record moving = *i;
    Record* j = i;
    for (; j != begin && (j - 1)->key > moving.key; --j) *j = *(j - 1);
    *j = moving;
  }
}

}  // namespace

template <class Source>
absl::StatusOr<Offset> TrieTransaction::BuildAll(const Source& entries) {
  // Two sequential passes over the entries: the first hashes each key once and counts the
  // root's groups, the second makes each entry and writes it straight into its group. Below
  // the root the partitions move records only (and each group is small enough for the caches).
  // The arrays are left uninitialised: every element is written before it is read. Fresh
  // memory costs as much to zero as to fill (more, on a new virtual machine), so the root's
  // groups, built one after another, share one scratch array as long as the largest (B5).
  const std::size_t n = entries.size();
  BuildArray<std::uint64_t> keys(n);
  FragmentStarts start{};
  for (std::size_t i = 0; i < n; ++i) {
    keys[i] = LevelOrderKey(HashInline(ctx_.hasher, entries.key(i)));
    ++start[OrderFragment(keys[i], 0) + 1];
  }
  CountsToStarts(start);
  BuildArray<BuildRecord> records(n);
  std::array<std::uint32_t, kBranching> next;
  std::copy_n(start.begin(), kBranching, next.begin());
  building_ = true;  // (B3), for the blobs and the nodes
  const absl::Cleanup built = [this] { building_ = false; };
  for (std::size_t i = 0; i < n; ++i) {
    absl::StatusOr<Entry> e = MakeEntry(entries.key(i), entries.value(i));
    if (!e.ok()) return e.status();  // the blobs made so far are owned: Abort frees them
    records[next[OrderFragment(keys[i], 0)]++] = BuildRecord{keys[i], *e};
  }
  std::uint32_t largest = 0;
  for (int f = 0; f < kBranching; ++f) largest = std::max(largest, start[f + 1] - start[f]);
  BuildArray<BuildRecord> scratch(largest);
  size_ = 0;  // the trie is empty (SetMany's condition); the build counts what it places
  absl::StatusOr<Built> root =
      BuildPartitioned(records.get(), scratch.get(), start, 0, /*shared_scratch=*/true);
  if (!root.ok()) return root.status();
  return root->node;  // level 0 always stores a node
}

absl::StatusOr<TrieTransaction::Built> TrieTransaction::BuildRange(BuildRecord* begin,
                                                                   BuildRecord* end,
                                                                   BuildRecord* scratch,
                                                                   int level) {
  if (level == kCollisionLevel) return BuildCollision(begin, end);
  if (end - begin <= kSortedRangeMax) {
    SortByKey(begin, end);
    return BuildSorted(begin, end, level);
  }
  // Partition [begin, end) by fragment into scratch (stable: equal keys keep their order).
  const FragmentStarts start = GroupStarts(begin, end, level);
  std::array<std::uint32_t, kBranching> next;
  std::copy_n(start.begin(), kBranching, next.begin());
  for (const BuildRecord* r = begin; r != end; ++r) {
    scratch[next[OrderFragment(r->key, level)]++] = *r;
  }
  // The groups now lie in scratch; the same positions of [begin, end) are their scratch (B1).
  return BuildPartitioned(scratch, begin, start, level);
}

absl::StatusOr<TrieTransaction::Built> TrieTransaction::BuildSorted(BuildRecord* begin,
                                                                    BuildRecord* end, int level) {
  if (level == kCollisionLevel) return BuildCollision(begin, end);
  BitmapImage image;
  for (BuildRecord* run = begin; run != end;) {  // each run is one fragment's group (B4)
    const unsigned fragment = OrderFragment(run->key, level);
    BuildRecord* run_end = run + 1;
    while (run_end != end && OrderFragment(run_end->key, level) == fragment) ++run_end;
    if (absl::Status s = AddGroup(image, BitFor(fragment), run, run_end, nullptr, level); !s.ok()) {
      return s;
    }
    run = run_end;
  }
  return FinishNode(image, level);
}

absl::StatusOr<TrieTransaction::Built> TrieTransaction::BuildPartitioned(
    BuildRecord* groups, BuildRecord* scratch, const FragmentStarts& start, int level,
    bool shared_scratch) {
  BitmapImage image;
  for (int f = 0; f < kBranching; ++f) {
    if (start[f] == start[f + 1]) continue;
    BuildRecord* group_scratch = shared_scratch ? scratch : scratch + start[f];  // (B5)
    if (absl::Status s = AddGroup(image, BitFor(static_cast<unsigned>(f)), groups + start[f],
                                  groups + start[f + 1], group_scratch, level);
        !s.ok()) {
      return s;
    }
  }
  return FinishNode(image, level);
}

absl::Status TrieTransaction::AddGroup(BitmapImage& image, Bitmap bit, BuildRecord* begin,
                                       BuildRecord* end, BuildRecord* scratch, int level) {
  if (end - begin == 1) {
    image.InsertEntry(bit, begin->entry);
    ++size_;
    return absl::OkStatus();
  }
  absl::StatusOr<Built> child = scratch == nullptr ? BuildSorted(begin, end, level + 1)
                                                   : BuildRange(begin, end, scratch, level + 1);
  if (!child.ok()) return child.status();
  if (child->single) {
    image.InsertEntry(bit, child->entry);
  } else {
    image.InsertChild(bit, child->node);
  }
  return absl::OkStatus();
}

absl::StatusOr<TrieTransaction::Built> TrieTransaction::FinishNode(BitmapImage& image, int level) {
  if (level > 0 && image.nodemap() == 0 && Count(image.datamap()) == 1) {
    return Built{kNullOffset, true, image.entry(image.datamap())};
  }
  absl::StatusOr<Offset> node = Store(kNullOffset, level, image);
  if (!node.ok()) return node.status();
  return Built{*node};
}

absl::StatusOr<TrieTransaction::Built> TrieTransaction::BuildCollision(BuildRecord* begin,
                                                                       BuildRecord* end) {
  const Arena& arena = *ctx_.arena;
  // Stable: among equal keys, input order survives every partition, so the last is the winner.
  std::stable_sort(begin, end, [&](const BuildRecord& a, const BuildRecord& b) {
    return KeyOf(arena, a.entry) < KeyOf(arena, b.entry);
  });
  CollisionImage image;
  for (BuildRecord* r = begin; r != end; ++r) {
    if (r + 1 != end && KeyOf(arena, (r + 1)->entry) == KeyOf(arena, r->entry)) {
      // Superseded (B2): owned, freed now.
      if (absl::Status s = ReleaseEntry(r->entry); !s.ok()) return s;
      continue;
    }
    image.entries.push_back(r->entry);
    ++size_;
  }
  if (image.entries.size() == 1) return Built{kNullOffset, true, image.entries[0]};
  absl::StatusOr<Offset> node = Store(kNullOffset, kCollisionLevel, image);
  if (!node.ok()) return node.status();
  return Built{*node};
}

}  // namespace atomap::internal::hamt

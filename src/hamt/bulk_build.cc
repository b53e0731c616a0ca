// TrieTransaction::SetMany: a bottom-up build of an empty trie from a batch of entries.
//
// Why: inserting one key at a time changes its node's size class on almost every insert, so a
// node is reallocated and copied once per entry it ends with. Here the entries are partitioned
// by hash fragment, level by level (a stable MSD radix partition, ping-ponging between two
// process-local record arrays), and each node is written once, at its final size.
//
// Invariants
//  (B1) BuildRange(level) receives records that agree on the fragments of levels < level; it
//       returns one node for them or, when they hold one distinct key below the root, that
//       entry for its parent to keep inline (node.h N4: no single-entry sub-node).
//  (B2) Duplicate keys have equal hashes, so they meet in one collision-level range, where the
//       last in input order wins, as a sequence of Sets would decide; the losers' blobs (owned,
//       made in the first pass) are released there.
//  (B3) Every block is allocated through Allocate (recorded in the ledger and in owned_ like any
//       other of the transaction's blocks): a failure mid-build aborts the transaction and frees
//       them all; a kill mid-build leaves them to intent recovery exactly as a Set would. The
//       build adds no crash window and no ordering edge: nothing is shared before Commit.
#include <algorithm>
#include <array>
#include <vector>

#include "hamt/entry.h"
#include "hamt/node_image.h"
#include "hamt/transient.h"

namespace atomap::internal::hamt {

absl::Status TrieTransaction::SetMany(EntrySpan entries) {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  for (const auto& [key, value] : entries) {
    if (absl::Status s = CheckKeyValue(key, value); !s.ok()) return s;
  }
  const bool bulk = root_ == kNullOffset && entries.size() >= kBulkBuildMin &&
                    entries.size() <= std::uint64_t{UINT32_MAX};
  if (!bulk) {
    for (const auto& [key, value] : entries) {
      if (absl::Status s = Set(key, value); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  return Apply(BuildAll(entries));
}

namespace {

// Turns counts at [f + 1] into starts at [f].
void CountsToStarts(std::array<std::uint32_t, kBranching + 1>& start) {
  for (int f = 0; f < kBranching; ++f) start[f + 1] += start[f];
}

}  // namespace

absl::StatusOr<Offset> TrieTransaction::BuildAll(EntrySpan entries) {
  // Two sequential passes over the caller's entries: the first counts the root's groups, the
  // second makes each entry and writes it straight into its group. Below the root the
  // partitions move records only (and each group is small enough for the caches).
  FragmentStarts start{};
  for (const auto& [key, value] : entries) ++start[Fragment(ctx_.hasher(key), 0) + 1];
  CountsToStarts(start);
  std::vector<BuildRecord> records(entries.size());
  std::array<std::uint32_t, kBranching> next;
  std::copy_n(start.begin(), kBranching, next.begin());
  for (const auto& [key, value] : entries) {
    const std::uint64_t hash = ctx_.hasher(key);
    absl::StatusOr<Entry> e = MakeEntry(key, value);
    if (!e.ok()) return e.status();  // the blobs made so far are owned: Abort frees them
    records[next[Fragment(hash, 0)]++] = BuildRecord{hash, *e};
  }
  std::vector<BuildRecord> scratch(entries.size());
  size_ = 0;  // the trie is empty (SetMany's condition); the build counts what it places
  absl::StatusOr<Built> root = BuildPartitioned(records.data(), scratch.data(), start, 0);
  if (!root.ok()) return root.status();
  return root->node;  // level 0 always stores a node
}

absl::StatusOr<TrieTransaction::Built> TrieTransaction::BuildRange(BuildRecord* begin,
                                                                   BuildRecord* end,
                                                                   BuildRecord* scratch,
                                                                   int level) {
  if (level == kCollisionLevel) return BuildCollision(begin, end);
  // Partition [begin, end) by fragment into scratch (stable: equal keys keep their order).
  FragmentStarts start{};
  for (const BuildRecord* r = begin; r != end; ++r) ++start[Fragment(r->hash, level) + 1];
  CountsToStarts(start);
  std::array<std::uint32_t, kBranching> next;
  std::copy_n(start.begin(), kBranching, next.begin());
  for (const BuildRecord* r = begin; r != end; ++r) scratch[next[Fragment(r->hash, level)]++] = *r;
  // The groups now lie in scratch; the same positions of [begin, end) are their scratch (B1).
  return BuildPartitioned(scratch, begin, start, level);
}

absl::StatusOr<TrieTransaction::Built> TrieTransaction::BuildPartitioned(
    BuildRecord* groups, BuildRecord* scratch, const FragmentStarts& start, int level) {
  BitmapImage image;
  for (int f = 0; f < kBranching; ++f) {
    const std::uint32_t count = start[f + 1] - start[f];
    if (count == 0) continue;
    const Bitmap bit = BitFor(static_cast<unsigned>(f));
    if (count == 1) {
      image.InsertEntry(bit, groups[start[f]].entry);
      ++size_;
      continue;
    }
    absl::StatusOr<Built> child =
        BuildRange(groups + start[f], groups + start[f + 1], scratch + start[f], level + 1);
    if (!child.ok()) return child.status();
    if (child->single) {
      image.InsertEntry(bit, child->entry);
    } else {
      image.InsertChild(bit, child->node);
    }
  }
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
      ReleaseWord(r->entry.key_word, r->entry.key_len);  // superseded (B2): owned, freed now
      ReleaseWord(r->entry.value_word, r->entry.value_len);
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

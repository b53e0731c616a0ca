// Read-side algorithms over published (immutable) versions: lookup, iteration, equality, diff,
// and the walk over every block a version reaches.
//
// All of them only read: safe from any thread of any process for as long as the versions they
// are given stay alive (not yet reclaimed). Iteration order is trie order: at each bitmap node
// its entries in fragment order, then its children in fragment order; collision nodes in key
// order. For one hasher, that order depends only on the set of keys (canonical form, node.h N4).
#ifndef ATOMAP_SRC_HAMT_READ_H_
#define ATOMAP_SRC_HAMT_READ_H_

#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "arena/arena.h"
#include "common/offset.h"
#include "hamt/entry.h"
#include "hamt/node.h"

namespace atomap::internal::hamt {

// The record of `version`; the null offset reads as the empty map, version 0.
VersionRecord ReadVersion(const Arena& arena, Offset version);

// The entry for `key` (whose hash is `hash`) under `root`, or nullptr.
const Entry* Find(const Arena& arena, Offset root, std::uint64_t hash, const ProbeKey& key);

void ForEachEntry(const Arena& arena, Offset root, absl::FunctionRef<void(const Entry&)> fn);

// Content equality of two roots; subtrees at the same offset are skipped without reading.
bool SubtreesEqual(const Arena& arena, Offset a, Offset b);

// Differences from `a` to `b`, in time proportional to the parts that differ: identical child
// offsets are skipped. Each key is reported once: in `added` (only in b), `removed` (only in a)
// or `changed` (in both, value bytes differ).
struct DiffVisitor {
  absl::FunctionRef<void(const Entry& added)> added;
  absl::FunctionRef<void(const Entry& removed)> removed;
  absl::FunctionRef<void(const Entry& before, const Entry& after)> changed;
};
void DiffSubtrees(const Arena& arena, Offset a, Offset b, const DiffVisitor& visitor);

// Every block `version` reaches, with the byte count it was allocated with: the record, each
// node, each blob. Shared blocks of other versions are included (it is a walk of one version).
void ForEachBlock(const Arena& arena, Offset version,
                  absl::FunctionRef<void(Offset block, std::uint64_t bytes)> fn);

// A text dump of the shape (bitmaps, counts, key lengths), for tests of canonical form.
std::string DumpStructure(const Arena& arena, Offset root);

}  // namespace atomap::internal::hamt

#endif  // ATOMAP_SRC_HAMT_READ_H_

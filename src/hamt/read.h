// Read-side algorithms over published (immutable) versions: lookup, iteration, equality, diff,
// and the walk over every block a version reaches.
//
// All of them only read: safe from any thread of any process for as long as the versions they
// are given stay alive (not yet reclaimed). Iteration order is trie order: at each bitmap node
// its entries in fragment order, then its children in fragment order; collision nodes in key
// order. For one hasher, that order depends only on the set of keys (canonical form, node.h N4).
#ifndef ATOMAP_SRC_HAMT_READ_H_
#define ATOMAP_SRC_HAMT_READ_H_

#include <concepts>
#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "arena/arena.h"
#include "common/offset.h"
#include "hamt/entry.h"
#include "hamt/node.h"
#include "hamt/read_bounds.h"

namespace atomap::internal::hamt {

// Each reader below comes in two forms: over a read policy (read_bounds.h), which decides
// whether the file is trusted (Trusting: the normal, unchecked path) or bounds-checked
// (Bounded: a damaged file stops the walk and the policy records why); and over a bare Arena,
// which trusts it (writers and tests, on versions they know are whole).
template <class P>
concept ReadPolicy = std::same_as<P, Trusting> || std::same_as<P, Bounded>;

// The record of `version`; the null offset reads as the empty map, version 0 (so does a damaged
// record under Bounded).
template <ReadPolicy P>
VersionRecord ReadVersion(P& policy, Offset version);
VersionRecord ReadVersion(const Arena& arena, Offset version);

// The entry for `key` (whose hash is `hash`) under `root`, or nullptr. Under Bounded, the
// entry returned has had its key and value checked (KeyOf/ValueOf may read them).
template <ReadPolicy P>
const Entry* Find(P& policy, Offset root, std::uint64_t hash, const ProbeKey& key);
const Entry* Find(const Arena& arena, Offset root, std::uint64_t hash, const ProbeKey& key);

// Under Bounded, `fn` sees only checked entries, and none after the first damage.
template <ReadPolicy P>
void ForEachEntry(P& policy, Offset root, absl::FunctionRef<void(const Entry&)> fn);
void ForEachEntry(const Arena& arena, Offset root, absl::FunctionRef<void(const Entry&)> fn);

// Content equality of two roots; subtrees at the same offset are skipped without reading.
// Under Bounded, damage reads as "not equal".
template <ReadPolicy P>
bool SubtreesEqual(P& policy, Offset a, Offset b);
bool SubtreesEqual(const Arena& arena, Offset a, Offset b);

// Differences from `a` to `b`, in time proportional to the parts that differ: identical child
// offsets are skipped. Each key is reported once: in `added` (only in b), `removed` (only in a)
// or `changed` (in both, value bytes differ). Under Bounded, the visitor sees only checked
// entries, and nothing after the first damage.
struct DiffVisitor {
  absl::FunctionRef<void(const Entry& added)> added;
  absl::FunctionRef<void(const Entry& removed)> removed;
  absl::FunctionRef<void(const Entry& before, const Entry& after)> changed;
};
template <ReadPolicy P>
void DiffSubtrees(P& policy, Offset a, Offset b, const DiffVisitor& visitor);
void DiffSubtrees(const Arena& arena, Offset a, Offset b, const DiffVisitor& visitor);

// Every block `version` reaches, with the byte count it was allocated with: the record, each
// node, each blob. Shared blocks of other versions are included (it is a walk of one version).
void ForEachBlock(const Arena& arena, Offset version,
                  absl::FunctionRef<void(Offset block, std::uint64_t bytes)> fn);

// A text dump of the shape (bitmaps, counts, key lengths), for tests of canonical form.
std::string DumpStructure(const Arena& arena, Offset root);

}  // namespace atomap::internal::hamt

#endif  // ATOMAP_SRC_HAMT_READ_H_

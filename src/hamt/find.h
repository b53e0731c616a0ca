// The bodies of the two readers on a get's path, ReadVersion and Find (declared in read.h), in a
// header so that Map::get (map.cc) inlines them: a get is then one function with no call on its
// path but the key's hash (issue 14: the calls, their register saves and the argument spills
// were a third of a get's instructions). read.cc instantiates both policies for every other
// caller.
//
// Same contract as read.h: they only read, and are safe from any thread of any process while
// the version they are given stays alive.
#ifndef ATOMAP_SRC_HAMT_FIND_H_
#define ATOMAP_SRC_HAMT_FIND_H_

#include <cstdint>

#include "arena/arena.h"
#include "common/offset.h"
#include "hamt/bits.h"
#include "hamt/entry.h"
#include "hamt/node.h"
#include "hamt/read.h"
#include "hamt/read_bounds.h"

namespace atomap::internal::hamt {

template <ReadPolicy P>
VersionRecord ReadVersion(P& p, Offset version) {
  if (version == kNullOffset || !p.Record(version)) return VersionRecord{};
  // Field by field: `observed` may be stored concurrently by a writer (V5 in atom/atom.cc), and
  // no reader needs it.
  const VersionRecord& record = *p.arena().template At<const VersionRecord>(version);
  VersionRecord copy{record.root_node, record.entry_count, record.version_number, {}, 0, 0};
  if ((record.observed.LoadRelaxed() & kWideRecordBit) != 0) {  // p.Record checked all 48 bytes
    copy.tag = record.tag;
    // With kCombineTableBit only: format 4 reserved the word (always 0).
    if (HasCombineTable(record.observed.LoadRelaxed())) {
      copy.combine_entries = record.combine_entries;
    }
  }
  return copy;
}

// The version's root node alone: what a lookup needs, without the width test of the record's
// `observed` word that ReadVersion makes for the wide fields (two instructions per get).
template <ReadPolicy P>
Offset ReadRoot(P& p, Offset version) {
  if (version == kNullOffset || !p.Record(version)) return kNullOffset;
  return p.arena().template At<const VersionRecord>(version)->root_node;
}

template <ReadPolicy P>
const Entry* Find(P& p, Offset root, std::uint64_t hash, const ProbeKey& key) {
  const Arena& arena = p.arena();
  Offset node = root;
  if (node == kNullOffset) return nullptr;
  for (int level = 0; level < kCollisionLevel; ++level) {
    if (!p.Node(node, level)) return nullptr;
    const NodeHeader* h = arena.At<const NodeHeader>(node);
    const Bitmap bit = BitFor(Fragment(hash, level));
    const Offset* children = reinterpret_cast<const Offset*>(h + 1);
    if (h->nodemap & bit) {
      node = children[IndexOf(h->nodemap, bit)];
      continue;
    }
    if (!(h->datamap & bit)) return nullptr;
    const Entry* e =
        reinterpret_cast<const Entry*>(children + Count(h->nodemap)) + IndexOf(h->datamap, bit);
    if (!p.EntryOk(*e)) return nullptr;
    return key.Matches(arena, *e) ? e : nullptr;
  }
  if (!p.Node(node, kCollisionLevel)) return nullptr;
  CollisionNodeRef c(arena, node);
  // Every entry is checked, not only those before a match: a writer's sorted insert into this
  // node (transient.cc) reads any of them. (Under Trusting this loop is empty.)
  for (std::uint32_t i = 0; i < c.count(); ++i) {
    if (!p.EntryOk(c.entries()[i])) return nullptr;
  }
  for (std::uint32_t i = 0; i < c.count(); ++i) {
    if (key.Matches(arena, c.entries()[i])) return &c.entries()[i];
  }
  return nullptr;
}

}  // namespace atomap::internal::hamt

#endif  // ATOMAP_SRC_HAMT_FIND_H_

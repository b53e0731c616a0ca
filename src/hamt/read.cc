#include "hamt/read.h"

#include "absl/strings/str_format.h"
#include "alloc/allocator.h"
#include "hamt/find.h"

namespace atomap::internal::hamt {
namespace {

// Every walker below takes its read policy first (read_bounds.h). Under Trusting every check
// is a constant true and the walk is the plain one; under Bounded, each node is checked before
// it is read and each entry before its bytes are compared or handed out, and a failed check
// makes every later one fail, so the walk unwinds at once.

template <ReadPolicy P>
void ForEachEntryAt(P& p, Offset node, int level, absl::FunctionRef<void(const Entry&)> fn) {
  if (!p.Node(node, level)) return;
  const Arena& arena = p.arena();
  const auto visit = [&](const Entry* entries, std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
      if (!p.EntryOk(entries[i])) return false;
      fn(entries[i]);
    }
    return true;
  };
  if (level == kCollisionLevel) {
    CollisionNodeRef c(arena, node);
    visit(c.entries(), c.count());
    return;
  }
  BitmapNodeRef n(arena, node);
  if (!visit(n.entries(), n.entry_count())) return;
  for (int i = 0; i < n.child_count(); ++i) ForEachEntryAt(p, n.children()[i], level + 1, fn);
}

bool SameEntry(const Arena& arena, const Entry& a, const Entry& b) {
  return SameKey(arena, a, b) && SameValue(arena, a, b);
}

template <ReadPolicy P>
bool EntriesEqual(P& p, const Entry* a, const Entry* b, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    if (!p.EntryOk(a[i]) || !p.EntryOk(b[i])) return false;
    if (!SameEntry(p.arena(), a[i], b[i])) return false;
  }
  return true;
}

template <ReadPolicy P>
bool NodesEqual(P& p, Offset a, Offset b, int level) {
  if (a == b) return true;
  if (a == kNullOffset || b == kNullOffset) return false;
  if (!p.Node(a, level) || !p.Node(b, level)) return false;
  const Arena& arena = p.arena();
  if (level == kCollisionLevel) {
    CollisionNodeRef ca(arena, a), cb(arena, b);
    return ca.count() == cb.count() && EntriesEqual(p, ca.entries(), cb.entries(), ca.count());
  }
  BitmapNodeRef na(arena, a), nb(arena, b);
  if (na.datamap() != nb.datamap() || na.nodemap() != nb.nodemap()) return false;
  if (!EntriesEqual(p, na.entries(), nb.entries(), na.entry_count())) return false;
  for (int i = 0; i < na.child_count(); ++i) {
    if (!NodesEqual(p, na.children()[i], nb.children()[i], level + 1)) return false;
  }
  return true;
}

// One entry of `a` against a whole subtree of `b` (or the reverse, `a_is_single` false).
// REQUIRES: p.EntryOk(single).
template <ReadPolicy P>
void DiffEntryAgainstSubtree(P& p, const Entry& single, Offset subtree, int level,
                             bool single_is_before, const DiffVisitor& v) {
  const Arena& arena = p.arena();
  bool matched = false;
  ForEachEntryAt(p, subtree, level, [&](const Entry& e) {
    if (!matched && SameKey(arena, single, e)) {
      matched = true;
      if (SameValue(arena, single, e)) return;
      if (single_is_before) {
        v.changed(single, e);
      } else {
        v.changed(e, single);
      }
      return;
    }
    if (single_is_before) {
      v.added(e);
    } else {
      v.removed(e);
    }
  });
  if (!matched && p.ok()) {
    if (single_is_before) {
      v.removed(single);
    } else {
      v.added(single);
    }
  }
}

template <ReadPolicy P>
void DiffCollisions(P& p, Offset a, Offset b, const DiffVisitor& v) {
  const Arena& arena = p.arena();
  CollisionNodeRef ca(arena, a), cb(arena, b);
  // Both sorted by key bytes: merge.
  std::uint32_t i = 0, j = 0;
  while (i < ca.count() || j < cb.count()) {
    const Entry* ea = i < ca.count() ? &ca.entries()[i] : nullptr;
    const Entry* eb = j < cb.count() ? &cb.entries()[j] : nullptr;
    if ((ea != nullptr && !p.EntryOk(*ea)) || (eb != nullptr && !p.EntryOk(*eb))) return;
    int order = !ea ? 1 : !eb ? -1 : KeyOf(arena, *ea).compare(KeyOf(arena, *eb));
    if (order < 0) {
      v.removed(*ea), ++i;
    } else if (order > 0) {
      v.added(*eb), ++j;
    } else {
      if (!SameValue(arena, *ea, *eb)) v.changed(*ea, *eb);
      ++i, ++j;
    }
  }
}

template <ReadPolicy P>
void DiffNodes(P& p, Offset a, Offset b, int level, const DiffVisitor& v) {
  if (a == b) return;
  if (a == kNullOffset) return ForEachEntryAt(p, b, level, v.added);
  if (b == kNullOffset) return ForEachEntryAt(p, a, level, v.removed);
  if (!p.Node(a, level) || !p.Node(b, level)) return;
  if (level == kCollisionLevel) return DiffCollisions(p, a, b, v);
  const Arena& arena = p.arena();
  BitmapNodeRef na(arena, a), nb(arena, b);
  const Bitmap all = na.datamap() | na.nodemap() | nb.datamap() | nb.nodemap();
  for (Bitmap rest = all; rest != 0 && p.ok(); rest &= rest - 1) {
    const Bitmap bit = rest & (~rest + 1);
    const bool a_data = na.datamap() & bit, a_child = na.nodemap() & bit;
    const bool b_data = nb.datamap() & bit, b_child = nb.nodemap() & bit;
    if (a_data && !p.EntryOk(na.entry_at(bit))) return;
    if (b_data && !p.EntryOk(nb.entry_at(bit))) return;
    if (a_child && b_child) {
      DiffNodes(p, na.child_at(bit), nb.child_at(bit), level + 1, v);
    } else if (a_data && b_data) {
      const Entry& ea = na.entry_at(bit);
      const Entry& eb = nb.entry_at(bit);
      if (!SameKey(arena, ea, eb)) {
        v.removed(ea), v.added(eb);
      } else if (!SameValue(arena, ea, eb)) {
        v.changed(ea, eb);
      }
    } else if (a_data && b_child) {
      DiffEntryAgainstSubtree(p, na.entry_at(bit), nb.child_at(bit), level + 1, true, v);
    } else if (a_child && b_data) {
      DiffEntryAgainstSubtree(p, nb.entry_at(bit), na.child_at(bit), level + 1, false, v);
    } else if (a_data) {
      v.removed(na.entry_at(bit));
    } else if (a_child) {
      ForEachEntryAt(p, na.child_at(bit), level + 1, v.removed);
    } else if (b_data) {
      v.added(nb.entry_at(bit));
    } else {
      ForEachEntryAt(p, nb.child_at(bit), level + 1, v.added);
    }
  }
}

void ForEachBlockAt(const Arena& arena, Offset node, int level,
                    absl::FunctionRef<void(Offset, std::uint64_t)> fn) {
  const auto blobs = [&](const Entry* entries, std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) {
      if (!IsInline(entries[i].key_len)) fn(entries[i].key_word, entries[i].key_len);
      if (!IsInline(entries[i].value_len)) fn(entries[i].value_word, entries[i].value_len);
    }
  };
  if (level == kCollisionLevel) {
    CollisionNodeRef c(arena, node);
    fn(node, c.bytes());
    blobs(c.entries(), c.count());
    return;
  }
  BitmapNodeRef n(arena, node);
  fn(node, n.bytes());
  blobs(n.entries(), n.entry_count());
  for (int i = 0; i < n.child_count(); ++i) ForEachBlockAt(arena, n.children()[i], level + 1, fn);
}

void DumpAt(const Arena& arena, Offset node, int level, std::string* out) {
  out->append(2 * level, ' ');
  if (level == kCollisionLevel) {
    CollisionNodeRef c(arena, node);
    absl::StrAppendFormat(out, "collision n=%u\n", c.count());
    return;
  }
  BitmapNodeRef n(arena, node);
  absl::StrAppendFormat(out, "node data=%08x children=%08x\n", n.datamap(), n.nodemap());
  for (int i = 0; i < n.child_count(); ++i) DumpAt(arena, n.children()[i], level + 1, out);
}

}  // namespace

// ---- Bounded (read_bounds.h) -------------------------------------------------------------

Bounded::Bounded(const Arena& arena, Offset data_begin)
    : arena_(arena), data_begin_(data_begin), limit_(arena.mapped_size()), visits_left_(0) {
  visits_left_ = visit_budget();
}

std::uint64_t Bounded::visit_budget() const {
  // A whole version reaches each node once, and nodes are distinct blocks of at least
  // kBlockAlign bytes: more visits than the mapping holds blocks is a cycle or a shared subtree.
  return limit_ > data_begin_ ? (limit_ - data_begin_) / kBlockAlign + 1 : 1;
}

bool Bounded::Damage(const char* what, Offset at, int level) {
  if (what_ == nullptr) {
    what_ = what;
    at_ = at;
    level_ = level;
  }
  return false;
}

bool Bounded::Record(Offset version) {
  if (!ok()) return false;
  // The narrow part first: it holds the word that says whether the record is wide; then the
  // wide part, which holds the combining table's count.
  if (!IsBlock(version, kNarrowVersionRecordBytes) ||
      !IsBlock(version, VersionRecordBytes(
                            arena_.At<const VersionRecord>(version)->observed.LoadRelaxed(), 0)) ||
      !IsBlock(version, VersionRecordBytesAt(arena_, version))) {
    return Damage("the version record is not an aligned block inside the data region", version, -1);
  }
  return true;
}

bool Bounded::Node(Offset off, int level) {
  if (!ok()) return false;
  if (visits_left_ == 0) {
    return Damage("more nodes reached than the mapping can hold (a cycle)", off, level);
  }
  --visits_left_;
  if (level == kCollisionLevel) {
    if (!IsBlock(off, sizeof(CollisionHeader))) {
      return Damage("a collision node is not an aligned block inside the data region", off, level);
    }
    const std::uint32_t count = arena_.At<const CollisionHeader>(off)->count;
    if (count < 2 || CollisionNodeBytes(count) > Allocator::kMaxBlockBytes ||
        !IsBlock(off, CollisionNodeBytes(count))) {
      return Damage("a collision node's count is implausible", off, level);
    }
    return true;
  }
  if (!IsBlock(off, sizeof(NodeHeader))) {
    return Damage("a node is not an aligned block inside the data region", off, level);
  }
  const NodeHeader h = *arena_.At<const NodeHeader>(off);
  if ((h.datamap & h.nodemap) != 0) return Damage("a node's two bitmaps overlap", off, level);
  if (level == kLastLevel && ((h.datamap | h.nodemap) >> (1u << kLastLevelBits)) != 0) {
    return Damage("a last-level node uses more than 16 branches", off, level);
  }
  if (!IsBlock(off, BitmapNodeBytes(Count(h.nodemap), Count(h.datamap)))) {
    return Damage("a node runs past the end of the mapping", off, level);
  }
  return true;
}

bool Bounded::Bytes(std::uint64_t word, std::uint32_t len) {
  if (!ok()) return false;
  if (IsInline(len)) return true;
  if (len > Allocator::kMaxBlockBytes) return Damage("an entry's length is impossible", word, -1);
  if (!IsBlock(word, len)) {
    return Damage("a key or value is not an aligned block inside the data region", word, -1);
  }
  return true;
}

absl::Status Bounded::status() const {
  if (ok()) return absl::OkStatus();
  if (level_ < 0) {
    return absl::DataLossError(
        absl::StrFormat("%s: damaged map: %s (offset %d)", arena_.path(), what_, at_));
  }
  return absl::DataLossError(absl::StrFormat("%s: damaged map: %s (offset %d, level %d)",
                                             arena_.path(), what_, at_, level_));
}

// ---- Readers ------------------------------------------------------------------------------

// ReadVersion and Find: hamt/find.h (inlined into Map::get).

template <ReadPolicy P>
void ForEachEntry(P& p, Offset root, absl::FunctionRef<void(const Entry&)> fn) {
  if (root != kNullOffset) ForEachEntryAt(p, root, 0, fn);
}

template <ReadPolicy P>
bool SubtreesEqual(P& p, Offset a, Offset b) {
  return NodesEqual(p, a, b, 0);
}

template <ReadPolicy P>
void DiffSubtrees(P& p, Offset a, Offset b, const DiffVisitor& visitor) {
  DiffNodes(p, a, b, 0, visitor);
}

// Both instantiations of each reader, and the trusting forms over a bare Arena.
#define ATOMAP_HAMT_READERS(P)                                                      \
  template VersionRecord ReadVersion<P>(P&, Offset);                                \
  template const Entry* Find<P>(P&, Offset, std::uint64_t, const ProbeKey&);        \
  template void ForEachEntry<P>(P&, Offset, absl::FunctionRef<void(const Entry&)>); \
  template bool SubtreesEqual<P>(P&, Offset, Offset);                               \
  template void DiffSubtrees<P>(P&, Offset, Offset, const DiffVisitor&);
ATOMAP_HAMT_READERS(Trusting)
ATOMAP_HAMT_READERS(Bounded)
#undef ATOMAP_HAMT_READERS

VersionRecord ReadVersion(const Arena& arena, Offset version) {
  Trusting p(arena);
  return ReadVersion(p, version);
}

const Entry* Find(const Arena& arena, Offset root, std::uint64_t hash, const ProbeKey& key) {
  Trusting p(arena);
  return Find(p, root, hash, key);
}

void ForEachEntry(const Arena& arena, Offset root, absl::FunctionRef<void(const Entry&)> fn) {
  Trusting p(arena);
  ForEachEntry(p, root, fn);
}

bool SubtreesEqual(const Arena& arena, Offset a, Offset b) {
  Trusting p(arena);
  return SubtreesEqual(p, a, b);
}

void DiffSubtrees(const Arena& arena, Offset a, Offset b, const DiffVisitor& visitor) {
  Trusting p(arena);
  DiffSubtrees(p, a, b, visitor);
}

void ForEachBlock(const Arena& arena, Offset version,
                  absl::FunctionRef<void(Offset, std::uint64_t)> fn) {
  if (version == kNullOffset) return;
  fn(version, VersionRecordBytesAt(arena, version));
  const Offset root = ReadVersion(arena, version).root_node;
  if (root != kNullOffset) ForEachBlockAt(arena, root, 0, fn);
}

std::string DumpStructure(const Arena& arena, Offset root) {
  std::string out;
  if (root != kNullOffset) DumpAt(arena, root, 0, &out);
  return out;
}

}  // namespace atomap::internal::hamt

#include "hamt/read.h"

#include "absl/strings/str_format.h"

namespace atomap::internal::hamt {
namespace {

void ForEachEntryAt(const Arena& arena, Offset node, int level,
                    absl::FunctionRef<void(const Entry&)> fn) {
  if (level == kCollisionLevel) {
    CollisionNodeRef c(arena, node);
    for (std::uint32_t i = 0; i < c.count(); ++i) fn(c.entries()[i]);
    return;
  }
  BitmapNodeRef n(arena, node);
  for (int i = 0; i < n.entry_count(); ++i) fn(n.entries()[i]);
  for (int i = 0; i < n.child_count(); ++i) ForEachEntryAt(arena, n.children()[i], level + 1, fn);
}

bool SameEntry(const Arena& arena, const Entry& a, const Entry& b) {
  return SameKey(arena, a, b) && SameValue(arena, a, b);
}

bool EntriesEqual(const Arena& arena, const Entry* a, const Entry* b, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    if (!SameEntry(arena, a[i], b[i])) return false;
  }
  return true;
}

bool NodesEqual(const Arena& arena, Offset a, Offset b, int level) {
  if (a == b) return true;
  if (a == kNullOffset || b == kNullOffset) return false;
  if (level == kCollisionLevel) {
    CollisionNodeRef ca(arena, a), cb(arena, b);
    return ca.count() == cb.count() && EntriesEqual(arena, ca.entries(), cb.entries(), ca.count());
  }
  BitmapNodeRef na(arena, a), nb(arena, b);
  if (na.datamap() != nb.datamap() || na.nodemap() != nb.nodemap()) return false;
  if (!EntriesEqual(arena, na.entries(), nb.entries(), na.entry_count())) return false;
  for (int i = 0; i < na.child_count(); ++i) {
    if (!NodesEqual(arena, na.children()[i], nb.children()[i], level + 1)) return false;
  }
  return true;
}

// One entry of `a` against a whole subtree of `b` (or the reverse, `a_is_single` false).
void DiffEntryAgainstSubtree(const Arena& arena, const Entry& single, Offset subtree, int level,
                             bool single_is_before, const DiffVisitor& v) {
  bool matched = false;
  ForEachEntryAt(arena, subtree, level, [&](const Entry& e) {
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
  if (!matched) {
    if (single_is_before) {
      v.removed(single);
    } else {
      v.added(single);
    }
  }
}

void DiffCollisions(const Arena& arena, Offset a, Offset b, const DiffVisitor& v) {
  CollisionNodeRef ca(arena, a), cb(arena, b);
  // Both sorted by key bytes: merge.
  std::uint32_t i = 0, j = 0;
  while (i < ca.count() || j < cb.count()) {
    const Entry* ea = i < ca.count() ? &ca.entries()[i] : nullptr;
    const Entry* eb = j < cb.count() ? &cb.entries()[j] : nullptr;
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

void DiffNodes(const Arena& arena, Offset a, Offset b, int level, const DiffVisitor& v) {
  if (a == b) return;
  if (a == kNullOffset) return ForEachEntryAt(arena, b, level, v.added);
  if (b == kNullOffset) return ForEachEntryAt(arena, a, level, v.removed);
  if (level == kCollisionLevel) return DiffCollisions(arena, a, b, v);
  BitmapNodeRef na(arena, a), nb(arena, b);
  const Bitmap all = na.datamap() | na.nodemap() | nb.datamap() | nb.nodemap();
  for (Bitmap rest = all; rest != 0; rest &= rest - 1) {
    const Bitmap bit = rest & (~rest + 1);
    const bool a_data = na.datamap() & bit, a_child = na.nodemap() & bit;
    const bool b_data = nb.datamap() & bit, b_child = nb.nodemap() & bit;
    if (a_child && b_child) {
      DiffNodes(arena, na.child_at(bit), nb.child_at(bit), level + 1, v);
    } else if (a_data && b_data) {
      const Entry& ea = na.entry_at(bit);
      const Entry& eb = nb.entry_at(bit);
      if (!SameKey(arena, ea, eb)) {
        v.removed(ea), v.added(eb);
      } else if (!SameValue(arena, ea, eb)) {
        v.changed(ea, eb);
      }
    } else if (a_data && b_child) {
      DiffEntryAgainstSubtree(arena, na.entry_at(bit), nb.child_at(bit), level + 1, true, v);
    } else if (a_child && b_data) {
      DiffEntryAgainstSubtree(arena, nb.entry_at(bit), na.child_at(bit), level + 1, false, v);
    } else if (a_data) {
      v.removed(na.entry_at(bit));
    } else if (a_child) {
      ForEachEntryAt(arena, na.child_at(bit), level + 1, v.removed);
    } else if (b_data) {
      v.added(nb.entry_at(bit));
    } else {
      ForEachEntryAt(arena, nb.child_at(bit), level + 1, v.added);
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

VersionRecord ReadVersion(const Arena& arena, Offset version) {
  if (version == kNullOffset) return VersionRecord{};
  // Field by field: `observed` may be stored concurrently by a writer (A5 in atom/atom.cc), and
  // no reader needs it.
  const VersionRecord& record = *arena.At<const VersionRecord>(version);
  return VersionRecord{record.root_node, record.entry_count, record.version_number, 0};
}

const Entry* Find(const Arena& arena, Offset root, std::uint64_t hash, const ProbeKey& key) {
  Offset node = root;
  if (node == kNullOffset) return nullptr;
  for (int level = 0; level < kCollisionLevel; ++level) {
    const NodeHeader* h = arena.At<const NodeHeader>(node);
    const Bitmap bit = BitFor(Fragment(hash, level));
    const Offset* children = reinterpret_cast<const Offset*>(h + 1);
    if (h->nodemap & bit) {
      node = children[IndexOf(h->nodemap, bit)];
      continue;
    }
    if (!(h->datamap & bit)) return nullptr;
    const Entry* e = reinterpret_cast<const Entry*>(children + Count(h->nodemap)) +
                     IndexOf(h->datamap, bit);
    return key.Matches(arena, *e) ? e : nullptr;
  }
  CollisionNodeRef c(arena, node);
  for (std::uint32_t i = 0; i < c.count(); ++i) {
    if (key.Matches(arena, c.entries()[i])) return &c.entries()[i];
  }
  return nullptr;
}

void ForEachEntry(const Arena& arena, Offset root, absl::FunctionRef<void(const Entry&)> fn) {
  if (root != kNullOffset) ForEachEntryAt(arena, root, 0, fn);
}

bool SubtreesEqual(const Arena& arena, Offset a, Offset b) { return NodesEqual(arena, a, b, 0); }

void DiffSubtrees(const Arena& arena, Offset a, Offset b, const DiffVisitor& visitor) {
  DiffNodes(arena, a, b, 0, visitor);
}

void ForEachBlock(const Arena& arena, Offset version,
                  absl::FunctionRef<void(Offset, std::uint64_t)> fn) {
  if (version == kNullOffset) return;
  fn(version, sizeof(VersionRecord));
  const Offset root = ReadVersion(arena, version).root_node;
  if (root != kNullOffset) ForEachBlockAt(arena, root, 0, fn);
}

std::string DumpStructure(const Arena& arena, Offset root) {
  std::string out;
  if (root != kNullOffset) DumpAt(arena, root, 0, &out);
  return out;
}

}  // namespace atomap::internal::hamt

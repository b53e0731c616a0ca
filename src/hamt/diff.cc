#include "atomap/diff.h"

#include "hamt/access.h"
#include "hamt/entry.h"
#include "hamt/read.h"
#include "hamt/read_bounds.h"

namespace atomap {
namespace {

using internal::MapAccess;
using internal::hamt::Entry;

// The differences from `before` to `after`, read under policy `p`.
template <class P>
MapDiff DiffWith(P& p, const Map& before, const Map& after) {
  MapDiff diff;
  const internal::Arena& arena = p.arena();
  const auto root = [&](const Map& m) {
    return MapAccess::Context(m) == nullptr
               ? internal::Offset{0}
               : internal::hamt::ReadVersion(p, MapAccess::Version(m)).root_node;
  };
  const auto key = [&](const Entry& e) { return std::string(internal::hamt::KeyOf(arena, e)); };
  const auto value = [&](const Entry& e) { return std::string(internal::hamt::ValueOf(arena, e)); };
  const auto added = [&](const Entry& e) { diff.added.emplace_back(key(e), value(e)); };
  const auto removed = [&](const Entry& e) { diff.removed.emplace_back(key(e), value(e)); };
  const auto changed = [&](const Entry& old_entry, const Entry& new_entry) {
    diff.changed.push_back(MapDiff::Change{key(old_entry), value(old_entry), value(new_entry)});
  };
  internal::hamt::DiffSubtrees(p, root(before), root(after),
                               internal::hamt::DiffVisitor{added, removed, changed});
  return diff;
}

}  // namespace

absl::StatusOr<MapDiff> Diff(const Map& before, const Map& after) {
  const internal::TrieContext* a = MapAccess::Context(before);
  const internal::TrieContext* b = MapAccess::Context(after);
  if (a != nullptr && b != nullptr && a->arena != b->arena) {
    return absl::InvalidArgumentError("Diff of maps from two different domains");
  }
  const internal::TrieContext* context = a != nullptr ? a : b;
  if (context == nullptr) return MapDiff();
  if ((a != nullptr && a->verify_reads) || (b != nullptr && b->verify_reads)) {
    internal::hamt::Bounded bounds(*context->arena, context->data_begin);
    MapDiff diff = DiffWith(bounds, before, after);
    if (!bounds.ok()) return bounds.status();
    return diff;
  }
  internal::hamt::Trusting trusting(*context->arena);
  return DiffWith(trusting, before, after);
}

}  // namespace atomap

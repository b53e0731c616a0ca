#include "atomap/map.h"

#include "absl/container/flat_hash_set.h"
#include "hamt/entry.h"
#include "hamt/read.h"
#include "hamt/trie_context.h"

namespace atomap {
namespace {

using internal::hamt::Entry;

internal::hamt::VersionRecord Record(const internal::TrieContext* context,
                                     std::uint64_t version) {
  if (context == nullptr) return {};
  return internal::hamt::ReadVersion(*context->arena, version);
}

// Slow path for maps of different domains: entry by entry.
bool SameContents(const Map& a, const Map& b) {
  if (a.size() != b.size()) return false;
  bool equal = true;
  a.ForEach([&](std::string_view key, std::string_view value) {
    if (equal && b.get(key) != value) equal = false;
  });
  return equal;
}

}  // namespace

std::optional<std::string_view> Map::get(std::string_view key) const {
  if (context_ == nullptr || version_ == 0) return std::nullopt;
  const internal::Arena& arena = *context_->arena;
  const Entry* e = internal::hamt::Find(arena, Record(context_, version_).root_node,
                                        context_->hasher(key), internal::hamt::ProbeKey(key));
  if (e == nullptr) return std::nullopt;
  return internal::hamt::ValueOf(arena, *e);
}

std::uint64_t Map::size() const { return Record(context_, version_).entry_count; }

std::uint64_t Map::version_number() const { return Record(context_, version_).version_number; }

void Map::ForEach(absl::FunctionRef<void(std::string_view, std::string_view)> fn) const {
  if (context_ == nullptr) return;
  const internal::Arena& arena = *context_->arena;
  internal::hamt::ForEachEntry(arena, Record(context_, version_).root_node, [&](const Entry& e) {
    fn(internal::hamt::KeyOf(arena, e), internal::hamt::ValueOf(arena, e));
  });
}

bool operator==(const Map& a, const Map& b) {
  if (a.context_ == nullptr || b.context_ == nullptr || a.context_->arena != b.context_->arena) {
    return SameContents(a, b);
  }
  if (a.version_ == b.version_) return true;
  const auto ra = Record(a.context_, a.version_);
  const auto rb = Record(b.context_, b.version_);
  return ra.entry_count == rb.entry_count &&
         internal::hamt::SubtreesEqual(*a.context_->arena, ra.root_node, rb.root_node);
}

}  // namespace atomap

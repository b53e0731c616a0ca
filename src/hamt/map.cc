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

// ---- iteration ----------------------------------------------------------------------------

namespace {

struct NodeCounts {
  std::uint32_t entries;
  std::uint32_t children;
};

NodeCounts CountsOf(const internal::Arena& arena, std::uint64_t node, std::uint32_t level) {
  if (static_cast<int>(level) == internal::hamt::kCollisionLevel) {
    return {internal::hamt::CollisionNodeRef(arena, node).count(), 0};
  }
  internal::hamt::BitmapNodeRef n(arena, node);
  return {static_cast<std::uint32_t>(n.entry_count()), static_cast<std::uint32_t>(n.child_count())};
}

const Entry& EntryAt(const internal::Arena& arena, std::uint64_t node, std::uint32_t level,
                     std::uint32_t i) {
  if (static_cast<int>(level) == internal::hamt::kCollisionLevel) {
    return internal::hamt::CollisionNodeRef(arena, node).entries()[i];
  }
  return internal::hamt::BitmapNodeRef(arena, node).entries()[i];
}

}  // namespace

Map::Iterator::Iterator(const internal::TrieContext* context, std::uint64_t root)
    : context_(context) {
  static_assert(std::tuple_size_v<decltype(path_)> >= internal::hamt::kMaxDepth,
                "the path must hold the deepest branch");
  if (root == 0) return;
  path_[0] = Frame{root, 0, 0};
  depth_ = 1;
  Settle();
}

void Map::Iterator::Settle() {
  const internal::Arena& arena = *context_->arena;
  while (depth_ > 0) {
    Frame& top = path_[depth_ - 1];
    const NodeCounts counts = CountsOf(arena, top.node, top.level);
    if (top.position < counts.entries) return;
    if (top.position < counts.entries + counts.children) {
      const std::uint32_t child = top.position++ - counts.entries;
      const std::uint64_t child_node = internal::hamt::BitmapNodeRef(arena, top.node).children()[child];
      path_[depth_++] = Frame{child_node, 0, top.level + 1};
      continue;
    }
    --depth_;
  }
}

Map::Iterator::value_type Map::Iterator::operator*() const {
  const internal::Arena& arena = *context_->arena;
  const Frame& top = path_[depth_ - 1];
  const Entry& e = EntryAt(arena, top.node, top.level, top.position);
  return {internal::hamt::KeyOf(arena, e), internal::hamt::ValueOf(arena, e)};
}

Map::Iterator& Map::Iterator::operator++() {
  ++path_[depth_ - 1].position;
  Settle();
  return *this;
}

bool operator==(const Map::Iterator& a, const Map::Iterator& b) {
  if (a.depth_ != b.depth_) return false;
  if (a.depth_ == 0) return true;
  const Map::Iterator::Frame& x = a.path_[a.depth_ - 1];
  const Map::Iterator::Frame& y = b.path_[b.depth_ - 1];
  return x.node == y.node && x.position == y.position;
}

Map::Iterator Map::begin() const {
  if (context_ == nullptr) return Iterator();
  return Iterator(context_, Record(context_, version_).root_node);
}

// ---- equality -------------------------------------------------------------------------------

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

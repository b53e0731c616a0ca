#include "atomap/map.h"

#include "absl/container/flat_hash_set.h"
#include "common/hash_inline.h"
#include "hamt/access.h"
#include "hamt/entry.h"
#include "hamt/find.h"
#include "hamt/read.h"
#include "hamt/read_bounds.h"
#include "hamt/trie_context.h"

namespace atomap {
namespace {

using internal::TrieContext;
using internal::hamt::Bounded;
using internal::hamt::Entry;
using internal::hamt::Trusting;

Bounded Bounds(const TrieContext& context) { return Bounded(*context.arena, context.data_begin); }

internal::hamt::VersionRecord Record(const TrieContext* context, std::uint64_t version) {
  if (context == nullptr) return {};
  if (context->verify_reads) {
    Bounded bounds = Bounds(*context);
    return internal::hamt::ReadVersion(bounds, version);
  }
  return internal::hamt::ReadVersion(*context->arena, version);
}

template <class P>
std::optional<std::string_view> GetWith(P& p, const TrieContext& context, std::uint64_t version,
                                        std::string_view key) {
  const Entry* e = internal::hamt::Find(p, internal::hamt::ReadRoot(p, version),
                                        internal::HashInline(context.hasher, key),
                                        internal::hamt::ProbeKey(key));
  if (e == nullptr) return std::nullopt;
  return internal::hamt::ValueOf(p.arena(), *e);  // Find checked it (read.h)
}

template <class P>
void ForEachWith(P& p, std::uint64_t version,
                 absl::FunctionRef<void(std::string_view, std::string_view)> fn) {
  const internal::Arena& arena = p.arena();
  internal::hamt::ForEachEntry(p, internal::hamt::ReadRoot(p, version), [&](const Entry& e) {
    fn(internal::hamt::KeyOf(arena, e), internal::hamt::ValueOf(arena, e));
  });
}

// Slow path for maps of different domains: entry by entry. Damage reads as "not equal".
bool SameContents(const Map& a, const Map& b) {
  if (a.size() != b.size()) return false;
  bool equal = true;
  const absl::Status read = a.CheckedForEach([&](std::string_view key, std::string_view value) {
    if (equal && b.get(key) != value) equal = false;
  });
  return equal && read.ok();
}

}  // namespace

std::optional<std::string_view> Map::get(std::string_view key) const {
  if (context_ == nullptr || version_ == 0) return std::nullopt;
  if (context_->verify_reads) [[unlikely]] {
    absl::StatusOr<std::optional<std::string_view>> checked = checked_get(key);
    return checked.ok() ? *checked : std::nullopt;
  }
  Trusting trusting(*context_->arena);
  return GetWith(trusting, *context_, version_, key);
}

absl::StatusOr<std::optional<std::string_view>> Map::checked_get(std::string_view key) const {
  if (context_ == nullptr || version_ == 0) return std::nullopt;
  Bounded bounds = Bounds(*context_);
  const std::optional<std::string_view> value = GetWith(bounds, *context_, version_, key);
  if (!bounds.ok()) return bounds.status();
  return value;
}

std::uint64_t Map::size() const { return Record(context_, version_).entry_count; }

std::uint64_t Map::version_number() const { return Record(context_, version_).version_number; }

std::uint64_t Map::tag() const { return Record(context_, version_).tag; }

void Map::ForEach(absl::FunctionRef<void(std::string_view, std::string_view)> fn) const {
  if (context_ == nullptr) return;
  if (context_->verify_reads) {
    (void)CheckedForEach(fn);  // stops at damage; CheckedForEach is how to learn of it
    return;
  }
  Trusting trusting(*context_->arena);
  ForEachWith(trusting, version_, fn);
}

absl::Status Map::CheckedForEach(
    absl::FunctionRef<void(std::string_view, std::string_view)> fn) const {
  if (context_ == nullptr) return absl::OkStatus();
  Bounded bounds = Bounds(*context_);
  ForEachWith(bounds, version_, fn);
  return bounds.status();
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
  if (context_->verify_reads) visits_left_ = Bounds(*context_).visit_budget();
  path_[0] = Frame{root, 0, 0};
  depth_ = 1;
  Settle();
}

void Map::Iterator::Settle() {
  if (context_->verify_reads) {
    // The budget of node visits is the iteration's, not one step's: carried between steps.
    Bounded bounds = Bounds(*context_);
    bounds.set_visits_left(visits_left_);
    SettleWith(bounds);
    visits_left_ = bounds.visits_left();
    return;
  }
  Trusting trusting(*context_->arena);
  SettleWith(trusting);
}

// Under Bounded, a node is checked when its frame is entered (position 0) and an entry when the
// iterator stops at it; damage ends the iteration (depth 0).
template <class P>
void Map::Iterator::SettleWith(P& p) {
  const internal::Arena& arena = p.arena();
  while (depth_ > 0) {
    Frame& top = path_[depth_ - 1];
    if (top.position == 0 && !p.Node(top.node, static_cast<int>(top.level))) {
      depth_ = 0;
      return;
    }
    const NodeCounts counts = CountsOf(arena, top.node, top.level);
    if (top.position < counts.entries) {
      if (!p.EntryOk(EntryAt(arena, top.node, top.level, top.position))) depth_ = 0;
      return;
    }
    if (top.position < counts.entries + counts.children) {
      const std::uint32_t child = top.position++ - counts.entries;
      const std::uint64_t child_node =
          internal::hamt::BitmapNodeRef(arena, top.node).children()[child];
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
  if (a.context_->verify_reads || b.context_->verify_reads) {
    Bounded bounds = Bounds(*a.context_);
    const auto ra = internal::hamt::ReadVersion(bounds, a.version_);
    const auto rb = internal::hamt::ReadVersion(bounds, b.version_);
    return ra.entry_count == rb.entry_count &&
           internal::hamt::SubtreesEqual(bounds, ra.root_node, rb.root_node) && bounds.ok();
  }
  const internal::Arena& arena = *a.context_->arena;
  const auto ra = internal::hamt::ReadVersion(arena, a.version_);
  const auto rb = internal::hamt::ReadVersion(arena, b.version_);
  return ra.entry_count == rb.entry_count &&
         internal::hamt::SubtreesEqual(arena, ra.root_node, rb.root_node);
}

namespace internal {

absl::Status MapAccess::VerifyRecord(const Map& map) {
  if (map.context_ == nullptr || !map.context_->verify_reads || map.version_ == 0) {
    return absl::OkStatus();
  }
  Bounded bounds = Bounds(*map.context_);
  (void)bounds.Record(map.version_);
  return bounds.status();
}

}  // namespace internal
}  // namespace atomap

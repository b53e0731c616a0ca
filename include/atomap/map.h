// atomap::Map: a read-only view of one version of a map.
//
// Contract
//  - A Map names one immutable version. Reading it never blocks and is never blocked by writers:
//    a writer publishes a new version instead of changing this one.
//  - get() returns a view into the shared mapping (zero-copy). The view, like the Map, is valid
//    while the version is alive: as long as the snapshot that produced the Map is held (see the
//    atom's snapshot API). Copy the bytes to keep them longer.
//  - Iteration (begin/end or ForEach) visits each entry once, in trie order: deterministic for a
//    given set of keys in a given domain, unrelated to key order or insertion order. An iterator
//    is valid as long as its Map's version is alive.
//  - operator== compares contents; subtrees the two versions share are skipped without being
//    read, so comparing a version with a small edit of itself costs only the edited paths.
//  - A default-constructed Map is the empty map of no domain.
//
// Damaged files (docs/reliability.md, "Reading a damaged file")
//  - checked_get() and CheckedForEach() bounds-check every offset they follow and every loop
//    they run, whatever the domain's options: a damaged version (a flipped byte, a truncated or
//    live-copied file) is DataLoss naming the file, what is wrong and its offset, never a read
//    outside the mapping, a signal or a hang.
//  - On a domain opened with Options::verify_reads, every other reader checks the same way:
//    get() returns nullopt, iteration and ForEach stop, operator== says "different", size()
//    and version_number() read 0 when the version record itself is misplaced, and atomap::Diff
//    returns DataLoss. They never crash; to learn that damage was the reason, use the checked
//    calls. Without verify_reads these readers trust the file (the fastest get).
//  - size() is the count the version record holds: on a damaged file it may be anything, so
//    never size an allocation by it.
//
// Lifetime: a Map belongs to the Snapshot that produced it (snapshot.h) and is reached only by
// reference: it cannot be copied or moved, so it cannot escape or outlive the pin that keeps its
// version alive. (Only the empty map of no domain can be made by hand: `atomap::Map()`.)
//
// Thread safety: every method is const and safe to call from any number of threads at once.
//
// Usage:
//   const atomap::Map& config = snapshot.map();
//   if (std::optional<std::string_view> port = config.get("port")) Listen(*port);
//   for (const auto& [key, value] : config) Print(key, value);
#ifndef ATOMAP_MAP_H_
#define ATOMAP_MAP_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string_view>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace atomap {
class Snapshot;
namespace internal {
struct TrieContext;
class MapAccess;
}  // namespace internal

class Map {
 public:
  // A forward iterator over (key, value) views. Holds its own path (no allocation).
  class Iterator {
   public:
    using value_type = std::pair<std::string_view, std::string_view>;
    using reference = value_type;
    using difference_type = std::ptrdiff_t;
    using iterator_category = std::forward_iterator_tag;

    Iterator() = default;
    value_type operator*() const;
    Iterator& operator++();
    Iterator operator++(int) {
      Iterator before = *this;
      ++*this;
      return before;
    }
    friend bool operator==(const Iterator& a, const Iterator& b);

   private:
    friend class Map;
    struct Frame {
      std::uint64_t node;       // offset of a node on the path
      std::uint32_t position;   // entries first, then children
      std::uint32_t level;
    };
    Iterator(const internal::TrieContext* context, std::uint64_t root);
    void Settle();  // moves down or up until the top frame points at an entry (or the end)
    template <class Policy>
    void SettleWith(Policy& policy);  // Settle under a read policy (src/hamt/read_bounds.h)

    const internal::TrieContext* context_ = nullptr;
    int depth_ = 0;  // 0: the end
    std::uint64_t visits_left_ = 0;  // verify_reads only: nodes this iteration may still visit
    std::array<Frame, 15> path_{};
  };

  Map() = default;

  std::optional<std::string_view> get(std::string_view key) const;
  // As get(), bounds-checked: DataLoss if the path to `key` is damaged.
  absl::StatusOr<std::optional<std::string_view>> checked_get(std::string_view key) const;
  bool contains(std::string_view key) const { return get(key).has_value(); }
  std::uint64_t size() const;
  bool empty() const { return size() == 0; }
  // Counts the commits since the map was created (0: the initial empty version).
  std::uint64_t version_number() const;
  // The version's tag: the word its writer set with Transaction::set_tag (carried forward from
  // version to version until changed; 0 if never set).
  std::uint64_t tag() const;

  void ForEach(absl::FunctionRef<void(std::string_view key, std::string_view value)> fn) const;
  // As ForEach(), bounds-checked: DataLoss at the first damage (the entries before it have been
  // passed to fn by then).
  absl::Status CheckedForEach(
      absl::FunctionRef<void(std::string_view key, std::string_view value)> fn) const;
  Iterator begin() const;
  Iterator end() const { return Iterator(); }

  friend bool operator==(const Map& a, const Map& b);

 private:
  friend class Snapshot;
  friend class internal::MapAccess;
  Map(const internal::TrieContext* context, std::uint64_t version)
      : context_(context), version_(version) {}
  // Private: only the library copies a Map (a Snapshot being moved copies its own). No move is
  // declared, so a move is this copy too.
  Map(const Map&) = default;
  Map& operator=(const Map&) = default;

  const internal::TrieContext* context_ = nullptr;
  std::uint64_t version_ = 0;  // offset of the version record in the domain; 0: empty
};

}  // namespace atomap

#endif  // ATOMAP_MAP_H_

// atomap::Map: a read-only view of one version of a map.
//
// Contract
//  - A Map names one immutable version. Reading it never blocks and is never blocked by writers:
//    a writer publishes a new version instead of changing this one.
//  - get() returns a view into the shared mapping (zero-copy). The view, like the Map, is valid
//    while the version is alive: as long as the snapshot that produced the Map is held (see the
//    atom's snapshot API). Copy the bytes to keep them longer.
//  - Iteration (ForEach) visits each entry once, in trie order: deterministic for a given set of
//    keys in a given domain, unrelated to key order or insertion order.
//  - operator== compares contents; subtrees the two versions share are skipped without being
//    read, so comparing a version with a small edit of itself costs only the edited paths.
//  - A default-constructed Map is the empty map of no domain.
//
// Thread safety: a Map is a small value (a pointer and an offset); every method is const and
// safe to call from any number of threads at once.
//
// Usage:
//   atomap::Map config = snapshot.map();
//   if (std::optional<std::string_view> port = config.get("port")) Listen(*port);
//   config.ForEach([](std::string_view key, std::string_view value) { Print(key, value); });
#ifndef ATOMAP_MAP_H_
#define ATOMAP_MAP_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/functional/function_ref.h"

namespace atomap {
namespace internal {
struct TrieContext;
class MapAccess;
}  // namespace internal

class Map {
 public:
  Map() = default;

  std::optional<std::string_view> get(std::string_view key) const;
  bool contains(std::string_view key) const { return get(key).has_value(); }
  std::uint64_t size() const;
  bool empty() const { return size() == 0; }
  // Counts the commits since the map was created (0: the initial empty version).
  std::uint64_t version_number() const;

  void ForEach(absl::FunctionRef<void(std::string_view key, std::string_view value)> fn) const;

  friend bool operator==(const Map& a, const Map& b);

 private:
  friend class internal::MapAccess;
  Map(const internal::TrieContext* context, std::uint64_t version)
      : context_(context), version_(version) {}

  const internal::TrieContext* context_ = nullptr;
  std::uint64_t version_ = 0;  // offset of the version record in the domain; 0: empty
};

}  // namespace atomap

#endif  // ATOMAP_MAP_H_

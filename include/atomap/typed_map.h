// atomap::TypedMap<K, V> and atomap::TypedTransaction<K, V>: Map and Transaction seen through
// codecs (codec.h), so that keys and values are C++ values instead of byte strings.
//
// Contract
//  - K and V must be Codable; anything else is a compile-time error.
//  - A stored value whose bytes do not decode as V (another program wrote another type under
//    the same atom) reads as absent from get(), and is skipped by ForEach.
//  - Same lifetime and thread-safety rules as the wrapped Map / Transaction; each wrapper refers
//    to a Map or Transaction it does not own (a Map cannot be copied out of its Snapshot), so the
//    Snapshot or Transaction must outlive it.
//
// Usage:
//   atomap::TypedMap<std::uint64_t, double> prices(snapshot.map());
//   std::optional<double> p = prices.get(42);
//   atomap::TypedTransaction<std::uint64_t, double> typed(tx);
//   absl::Status s = typed.set(42, 9.5);
#ifndef ATOMAP_TYPED_MAP_H_
#define ATOMAP_TYPED_MAP_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "atomap/codec.h"
#include "atomap/map.h"
#include "atomap/transaction.h"

namespace atomap {

template <Codable K, Codable V>
class TypedMap {
 public:
  // REQUIRES: `map` (its Snapshot) outlives this wrapper.
  explicit TypedMap(const Map& map) : map_(&map) {}
  TypedMap(const Map&&) = delete;  // a temporary Map would dangle

  std::optional<V> get(const K& key) const {
    const auto encoded = Codec<K>::Encode(key);
    const std::optional<std::string_view> bytes = map_->get(std::string_view(encoded));
    if (!bytes.has_value()) return std::nullopt;
    return Codec<V>::Decode(*bytes);
  }
  bool contains(const K& key) const {
    const auto encoded = Codec<K>::Encode(key);
    return map_->contains(std::string_view(encoded));
  }
  std::uint64_t size() const { return map_->size(); }
  bool empty() const { return map_->empty(); }

  void ForEach(absl::FunctionRef<void(const K& key, const V& value)> fn) const {
    map_->ForEach([&](std::string_view key_bytes, std::string_view value_bytes) {
      std::optional<K> key = Codec<K>::Decode(key_bytes);
      std::optional<V> value = Codec<V>::Decode(value_bytes);
      if (key.has_value() && value.has_value()) fn(*key, *value);
    });
  }

  const Map& untyped() const { return *map_; }
  friend bool operator==(const TypedMap& a, const TypedMap& b) { return *a.map_ == *b.map_; }

 private:
  const Map* map_;
};

template <Codable K, Codable V>
class TypedTransaction {
 public:
  // REQUIRES: `tx` outlives this wrapper.
  explicit TypedTransaction(Transaction& tx) : tx_(&tx) {}

  absl::Status set(const K& key, const V& value) {
    const auto k = Codec<K>::Encode(key);
    const auto v = Codec<V>::Encode(value);
    return tx_->set(std::string_view(k), std::string_view(v));
  }
  absl::StatusOr<bool> erase(const K& key) {
    const auto k = Codec<K>::Encode(key);
    return tx_->erase(std::string_view(k));
  }
  // `fn` maps the old value (nullopt: absent or undecodable) to the new one (nullopt: erase).
  template <class Fn>
    requires std::is_invocable_r_v<std::optional<V>, Fn&, std::optional<V>>
  absl::Status update(const K& key, Fn&& fn) {
    const auto k = Codec<K>::Encode(key);
    return tx_->update(
        std::string_view(k),
        [&](std::optional<std::string_view> old_bytes) -> std::optional<std::string> {
          std::optional<V> old_value;
          if (old_bytes.has_value()) old_value = Codec<V>::Decode(*old_bytes);
          const std::optional<V> new_value = fn(std::move(old_value));
          if (!new_value.has_value()) return std::nullopt;
          const auto v = Codec<V>::Encode(*new_value);
          return std::string(std::string_view(v));
        });
  }
  std::optional<V> get(const K& key) const {
    const auto k = Codec<K>::Encode(key);
    const std::optional<std::string_view> bytes = tx_->get(std::string_view(k));
    if (!bytes.has_value()) return std::nullopt;
    return Codec<V>::Decode(*bytes);
  }
  std::uint64_t size() const { return tx_->size(); }

  Transaction& untyped() { return *tx_; }

 private:
  Transaction* tx_;
};

}  // namespace atomap

#endif  // ATOMAP_TYPED_MAP_H_

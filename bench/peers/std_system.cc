// The in-process ceiling: std::unordered_map behind a std::shared_mutex (shared lock per read
// session, exclusive lock per write transaction). One process only.
#include <cstdlib>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "fixed_bytes.h"
#include "system.h"

namespace atomap::peers {
namespace {

template <std::size_t KeyBytes, std::size_t ValueBytes>
class StdSystem final : public System {
  using K = Fixed<KeyBytes>;
  using V = Fixed<ValueBytes>;

 public:
  std::string_view name() const override { return "std_unordered_map"; }
  bool multi_process() const override { return false; }

  void Create(const std::string&, const Keys&, std::uint64_t capacity) override {
    map_.clear();
    map_.reserve(capacity);
  }
  void Close() override {}
  void Attach() override {}

  void Load(const Keys& keys, std::uint64_t n) override {
    std::unique_lock lock(mu_);
    for (std::uint64_t i = 0; i < n; ++i) {
      map_.insert_or_assign(FromBytes<K>(keys.Key(i)), FromBytes<V>(keys.Value(i)));
    }
  }
  std::uint64_t Get(std::string_view key) override {
    std::shared_lock lock(mu_);
    return Lookup(key);
  }
  std::uint64_t GetMany(const std::vector<std::string>& keys) override {
    std::shared_lock lock(mu_);
    std::uint64_t sum = 0;
    for (const std::string& k : keys) sum += Lookup(k);
    return sum;
  }
  void Put(std::string_view key, std::string_view value) override {
    std::unique_lock lock(mu_);
    map_.insert_or_assign(FromBytes<K>(key), FromBytes<V>(value));
  }
  void PutMany(const std::vector<std::pair<std::string, std::string>>& entries) override {
    std::unique_lock lock(mu_);
    for (const auto& [k, v] : entries) map_.insert_or_assign(FromBytes<K>(k), FromBytes<V>(v));
  }
  void Increment(std::string_view key) override {
    std::unique_lock lock(mu_);
    V& v = map_[FromBytes<K>(key)];
    std::uint64_t n = First8(v) + 1;
    std::memcpy(&v, &n, 8);
  }
  std::string DataFile() const override { return ""; }

 private:
  std::uint64_t Lookup(std::string_view key) const {
    const auto it = map_.find(FromBytes<K>(key));
    return it == map_.end() ? ~std::uint64_t{0} : First8(it->second);
  }

  std::shared_mutex mu_;
  std::unordered_map<K, V, FixedHash> map_;
};

}  // namespace

std::unique_ptr<System> MakeStdUnorderedMap(const Keys& shape) {
  if (shape.key_bytes() == 8 && shape.value_bytes() == 8)
    return std::make_unique<StdSystem<8, 8>>();
  if (shape.key_bytes() == 16 && shape.value_bytes() == 100) {
    return std::make_unique<StdSystem<16, 100>>();
  }
  return nullptr;
}

}  // namespace atomap::peers

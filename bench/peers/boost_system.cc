// Boost.Interprocess: boost::unordered_map in a managed_mapped_file, behind an
// interprocess_sharable_mutex that lives in the same file (sharable lock per read session,
// exclusive per write transaction).
#include <boost/interprocess/allocators/allocator.hpp>
#include <boost/interprocess/managed_mapped_file.hpp>
#include <boost/interprocess/sync/interprocess_sharable_mutex.hpp>
#include <boost/interprocess/sync/scoped_lock.hpp>
#include <boost/interprocess/sync/sharable_lock.hpp>
#include <boost/unordered_map.hpp>
#include <cstdlib>
#include <optional>

#include "fixed_bytes.h"
#include "system.h"

namespace atomap::peers {
namespace {

namespace bip = boost::interprocess;

template <std::size_t KeyBytes, std::size_t ValueBytes>
class BoostSystem final : public System {
  using K = Fixed<KeyBytes>;
  using V = Fixed<ValueBytes>;
  using Alloc = bip::allocator<std::pair<const K, V>, bip::managed_mapped_file::segment_manager>;
  using MapT = boost::unordered_map<K, V, FixedHash, std::equal_to<K>, Alloc>;

 public:
  std::string_view name() const override { return "boost_interprocess"; }

  void Create(const std::string& dir, const Keys&, std::uint64_t capacity) override {
    path_ = dir + "/data.bip";
    // The segment cannot grow while other processes map it: sized up front, generously
    // (node, bucket and allocator overhead per entry).
    const std::uint64_t per_entry = sizeof(K) + sizeof(V) + 64;
    const std::uint64_t size = (std::uint64_t{64} << 20) + capacity * per_entry * 2;
    file_.emplace(bip::create_only, path_.c_str(), size);
    map_ = file_->construct<MapT>("map")(0, FixedHash(), std::equal_to<K>(),
                                         Alloc(file_->get_segment_manager()));
    mu_ = file_->construct<bip::interprocess_sharable_mutex>("mutex")();
    map_->reserve(capacity);
  }
  void Close() override {
    map_ = nullptr;
    mu_ = nullptr;
    file_.reset();
  }
  void Attach() override {
    file_.emplace(bip::open_only, path_.c_str());
    map_ = file_->find<MapT>("map").first;
    mu_ = file_->find<bip::interprocess_sharable_mutex>("mutex").first;
    if (map_ == nullptr || mu_ == nullptr) std::abort();
  }

  void Load(const Keys& keys, std::uint64_t n) override {
    bip::scoped_lock lock(*mu_);
    for (std::uint64_t i = 0; i < n; ++i) {
      (*map_)[FromBytes<K>(keys.Key(i))] = FromBytes<V>(keys.Value(i));
    }
  }
  std::uint64_t Get(std::string_view key) override {
    bip::sharable_lock lock(*mu_);
    return Lookup(key);
  }
  std::uint64_t GetMany(const std::vector<std::string>& keys) override {
    bip::sharable_lock lock(*mu_);
    std::uint64_t sum = 0;
    for (const std::string& k : keys) sum += Lookup(k);
    return sum;
  }
  void Put(std::string_view key, std::string_view value) override {
    bip::scoped_lock lock(*mu_);
    (*map_)[FromBytes<K>(key)] = FromBytes<V>(value);
  }
  void PutMany(const std::vector<std::pair<std::string, std::string>>& entries) override {
    bip::scoped_lock lock(*mu_);
    for (const auto& [k, v] : entries) (*map_)[FromBytes<K>(k)] = FromBytes<V>(v);
  }
  void Increment(std::string_view key) override {
    bip::scoped_lock lock(*mu_);
    V& v = (*map_)[FromBytes<K>(key)];
    std::uint64_t n = First8(v) + 1;
    std::memcpy(&v, &n, 8);
  }
  std::string DataFile() const override { return path_; }
  std::vector<std::pair<std::string, std::uint64_t>> SpaceFigures() override {
    return {{"live_bytes", file_->get_size() - file_->get_free_memory()}};
  }

 private:
  std::uint64_t Lookup(std::string_view key) const {
    const auto it = map_->find(FromBytes<K>(key));
    return it == map_->end() ? ~std::uint64_t{0} : First8(it->second);
  }

  std::string path_;
  std::optional<bip::managed_mapped_file> file_;
  MapT* map_ = nullptr;
  bip::interprocess_sharable_mutex* mu_ = nullptr;
};

}  // namespace

std::unique_ptr<System> MakeBoostInterprocess(const Keys& shape) {
  if (shape.key_bytes() == 8 && shape.value_bytes() == 8) {
    return std::make_unique<BoostSystem<8, 8>>();
  }
  if (shape.key_bytes() == 16 && shape.value_bytes() == 100) {
    return std::make_unique<BoostSystem<16, 100>>();
  }
  return nullptr;
}

}  // namespace atomap::peers

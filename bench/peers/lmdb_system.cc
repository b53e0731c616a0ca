// LMDB: one environment, the unnamed database; every write is one write transaction.
// Flags MDB_NOSYNC|MDB_WRITEMAP|MDB_NOMETASYNC, or (durable) none: a full sync per commit.
#include <lmdb.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "system.h"

namespace atomap::peers {
namespace {

void Check(int rc, const char* what) {
  if (rc == MDB_SUCCESS) return;
  std::fprintf(stderr, "lmdb %s: %s\n", what, mdb_strerror(rc));
  std::abort();
}

MDB_val Val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }

class LmdbSystem final : public System {
 public:
  explicit LmdbSystem(bool durable) : durable_(durable) {}
  std::string_view name() const override { return durable_ ? "lmdb_sync" : "lmdb"; }

  void Create(const std::string& dir, const Keys& keys, std::uint64_t capacity) override {
    dir_ = dir;
    // Map size fixed up front (LMDB cannot grow it while other processes are attached):
    // generous room for the entries, their pages and copy-on-write.
    const std::uint64_t per_entry = keys.key_bytes() + keys.value_bytes() + 64;
    map_size_ = (std::uint64_t{1} << 30) + capacity * per_entry * 4;
    Attach();
  }
  void Close() override {
    if (read_ != nullptr) mdb_txn_abort(read_);
    read_ = nullptr;
    if (env_ != nullptr) mdb_env_close(env_);
    env_ = nullptr;
  }
  void Attach() override {
    Check(mdb_env_create(&env_), "env_create");
    Check(mdb_env_set_mapsize(env_, map_size_), "set_mapsize");
    const unsigned flags = durable_ ? 0u : (MDB_NOSYNC | MDB_WRITEMAP | MDB_NOMETASYNC);
    Check(mdb_env_open(env_, dir_.c_str(), flags, 0600), "env_open");
    MDB_txn* txn;
    Check(mdb_txn_begin(env_, nullptr, 0, &txn), "txn_begin");
    Check(mdb_dbi_open(txn, nullptr, 0, &dbi_), "dbi_open");
    Check(mdb_txn_commit(txn), "commit");
    Check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &read_), "read txn");
    mdb_txn_reset(read_);
  }

  void Load(const Keys& keys, std::uint64_t n) override {
    Write([&](MDB_txn* txn) {
      for (std::uint64_t i = 0; i < n; ++i) Put(txn, keys.Key(i), keys.Value(i));
    });
  }
  std::uint64_t Get(std::string_view key) override {
    Check(mdb_txn_renew(read_), "txn_renew");
    const std::uint64_t v = Lookup(key);
    mdb_txn_reset(read_);
    return v;
  }
  std::uint64_t GetMany(const std::vector<std::string>& keys) override {
    Check(mdb_txn_renew(read_), "txn_renew");
    std::uint64_t sum = 0;
    for (const std::string& k : keys) sum += Lookup(k);
    mdb_txn_reset(read_);
    return sum;
  }
  void Put(std::string_view key, std::string_view value) override {
    Write([&](MDB_txn* txn) { Put(txn, key, value); });
  }
  void PutMany(const std::vector<std::pair<std::string, std::string>>& entries) override {
    Write([&](MDB_txn* txn) {
      for (const auto& [k, v] : entries) Put(txn, k, v);
    });
  }
  void Increment(std::string_view key) override {
    Write([&](MDB_txn* txn) {
      MDB_val k = Val(key), v;
      std::uint64_t n = 0;
      std::string value(8, '\0');
      const int rc = mdb_get(txn, dbi_, &k, &v);
      if (rc == MDB_SUCCESS) value.assign(static_cast<const char*>(v.mv_data), v.mv_size);
      else Check(rc == MDB_NOTFOUND ? MDB_SUCCESS : rc, "get");
      std::memcpy(&n, value.data(), 8);
      ++n;
      std::memcpy(value.data(), &n, 8);
      Put(txn, key, value);
    });
  }

  std::string DataFile() const override { return dir_ + "/data.mdb"; }

 private:
  template <class Fn>
  void Write(Fn&& fn) {
    MDB_txn* txn;
    Check(mdb_txn_begin(env_, nullptr, 0, &txn), "txn_begin");
    fn(txn);
    Check(mdb_txn_commit(txn), "commit");
  }
  void Put(MDB_txn* txn, std::string_view key, std::string_view value) {
    MDB_val k = Val(key), v = Val(value);
    Check(mdb_put(txn, dbi_, &k, &v, 0), "put");
  }
  std::uint64_t Lookup(std::string_view key) {
    MDB_val k = Val(key), v;
    if (mdb_get(read_, dbi_, &k, &v) != MDB_SUCCESS || v.mv_size < 8) return ~std::uint64_t{0};
    std::uint64_t out;
    std::memcpy(&out, v.mv_data, 8);
    return out;
  }

  bool durable_;
  std::string dir_;
  std::uint64_t map_size_ = 0;
  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
  MDB_txn* read_ = nullptr;
};

}  // namespace

std::unique_ptr<System> MakeLmdb(bool durable) { return std::make_unique<LmdbSystem>(durable); }

}  // namespace atomap::peers

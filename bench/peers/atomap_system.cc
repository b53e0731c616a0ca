// atomap: one domain file, one atom; every write is one swap (one published version), the
// declarative add (Atom::add) one apply: as one swap, or combined (the counter_combine rows).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "atomap/domain.h"
#include "system.h"

namespace atomap::peers {
namespace {

[[noreturn]] void Die(const absl::Status& s) {
  std::fprintf(stderr, "atomap: %s\n", s.ToString().c_str());
  std::abort();
}

template <class T>
T Must(absl::StatusOr<T> v) {
  if (!v.ok()) Die(v.status());
  return std::move(*v);
}

std::uint64_t First8(std::optional<std::string_view> v) {
  if (!v.has_value() || v->size() < 8) return ~std::uint64_t{0};
  std::uint64_t out;
  std::memcpy(&out, v->data(), 8);
  return out;
}

class AtomapSystem final : public System {
 public:
  std::string_view name() const override { return "atomap"; }

  void Create(const std::string& dir, const Keys&, std::uint64_t) override {
    path_ = dir + "/data.atomap";
    Attach();
  }
  void Close() override {
    atom_.reset();
    domain_.reset();
    batch_views_ = {};
    batch_ = {};
  }
  void Attach() override {
    Options options;
    options.combine_writes = combining_;
    domain_.emplace(Must(Domain::Open(path_, options)));
    atom_.emplace(Must(domain_->atom("bench")));
  }

  void Load(const Keys& keys, std::uint64_t n) override {
    Swap([&](Transaction& tx) {
      for (std::uint64_t i = 0; i < n; ++i) {
        if (absl::Status s = tx.set(keys.Key(i), keys.Value(i)); !s.ok()) return s;
      }
      return absl::OkStatus();
    });
  }
  void PrepareBatch(const Keys& keys, std::uint64_t n) override {
    batch_.clear();
    batch_.reserve(n);
    for (std::uint64_t i = 0; i < n; ++i) batch_.emplace_back(keys.Key(i), keys.Value(i));
    batch_views_.assign(batch_.begin(), batch_.end());
  }
  void LoadBatch(const Keys& /*keys*/, std::uint64_t /*n*/) override {
    Swap([&](Transaction& tx) { return tx.set_many(batch_views_); });
  }
  std::uint64_t Get(std::string_view key) override {
    const Snapshot snap = Must(atom_->load());
    return First8(snap.map().get(key));
  }
  std::uint64_t GetMany(const std::vector<std::string>& keys) override {
    const Snapshot snap = Must(atom_->load());
    std::uint64_t sum = 0;
    for (const std::string& k : keys) sum += First8(snap.map().get(k));
    return sum;
  }
  void Put(std::string_view key, std::string_view value) override {
    Swap([&](Transaction& tx) { return tx.set(key, value); });
  }
  void PutMany(const std::vector<std::pair<std::string, std::string>>& entries) override {
    Swap([&](Transaction& tx) {
      for (const auto& [k, v] : entries) {
        if (absl::Status s = tx.set(k, v); !s.ok()) return s;
      }
      return absl::OkStatus();
    });
  }
  void Increment(std::string_view key) override {
    Swap([&](Transaction& tx) {
      return tx.update(key, [](std::optional<std::string_view> old) {
        std::string v = old.has_value() ? std::string(*old) : std::string(8, '\0');
        std::uint64_t n;
        std::memcpy(&n, v.data(), 8);
        ++n;
        std::memcpy(v.data(), &n, 8);
        return std::optional<std::string>(std::move(v));
      });
    });
  }
  void SetCombining(bool on) override { combining_ = on; }
  void AddOne(std::string_view key) override {
    if (absl::StatusOr<std::uint64_t> r = atom_->add(key, 1); !r.ok()) Die(r.status());
  }
  void AddSixteen(std::string_view key) override {
    const std::vector<Op> ops(16, Op::AddU64(key, 1));
    if (absl::StatusOr<ApplyResult> r = atom_->apply(ops); !r.ok()) Die(r.status());
  }

  std::string DataFile() const override { return path_; }
  std::vector<std::pair<std::string, std::uint64_t>> SpaceFigures() override {
    const DomainStats st = domain_->stats();
    return {{"live_bytes", st.live_bytes},
            {"free_bytes", st.free_bytes},
            {"unused_bytes", st.unused_bytes},
            {"pending_garbage_bytes", st.pending_garbage_bytes},
            {"data_bytes", st.data_bytes}};
  }

 private:
  void Swap(Atom::SwapFunction fn) {
    if (absl::StatusOr<Snapshot> r = atom_->swap(fn); !r.ok()) Die(r.status());
  }

  std::string path_;
  bool combining_ = false;
  std::optional<Domain> domain_;
  std::optional<Atom> atom_;
  // LoadBatch's input (PrepareBatch), released by Close.
  std::vector<std::pair<std::string, std::string>> batch_;
  std::vector<std::pair<std::string_view, std::string_view>> batch_views_;
};

}  // namespace

std::unique_ptr<System> MakeAtomap() { return std::make_unique<AtomapSystem>(); }

}  // namespace atomap::peers

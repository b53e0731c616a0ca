// Model-based property test of the trie against std::map: random sequences of set, erase, get,
// iterate, commit, abort, diff and equality, as one generic body run with the real hash, with
// the collision-forcing test hash, and in a tiny domain where allocation fails.
#include <rapidcheck.h>
#include <rapidcheck/catch.h>

#include <catch2/catch.hpp>
#include <deque>

#include "atomap/diff.h"
#include "hamt_test_util.h"

namespace atomap::internal::hamt {
namespace {

struct ModelConfig {
  HashKind hash = HashKind::kXxh3;
  std::uint64_t max_bytes = std::uint64_t{1} << 30;
  int max_value_len = 20;
  bool may_exhaust = false;
};

// Uniform in [lo, hi) whatever rapidcheck's current size (inRange alone scales with it, which
// would make early runs all writes).
int Uniform(int lo, int hi) { return *rc::gen::resize(100, rc::gen::inRange(lo, hi)); }

std::string GenKey() {
  // Few distinct short keys (overwrites, erases that hit), some long ones (blobs). Letters
  // 'a'..'d' differ only in their low 4 bits: under kTestWeak same-length keys that differ only
  // in the last letter collide in all 64 bits.
  const int len = *rc::gen::weightedOneOf<int>(
      {{6, rc::gen::inRange(0, 4)}, {2, rc::gen::inRange(9, 24)}, {1, rc::gen::just(8)}});
  return *rc::gen::container<std::string>(len, rc::gen::elementOf(std::string("abcd")));
}

std::string GenValue(const ModelConfig& config) {
  const int len = Uniform(0, config.max_value_len + 1);
  return std::string(len, *rc::gen::elementOf(std::string("xyz")));
}

MapDiff ModelDiff(const Model& before, const Model& after) {
  MapDiff d;
  for (const auto& [k, v] : before) {
    auto it = after.find(k);
    if (it == after.end()) {
      d.removed.emplace_back(k, v);
    } else if (it->second != v) {
      d.changed.push_back({k, v, it->second});
    }
  }
  for (const auto& [k, v] : after) {
    if (!before.contains(k)) d.added.emplace_back(k, v);
  }
  return d;
}

void Normalize(MapDiff& d) {
  std::sort(d.added.begin(), d.added.end());
  std::sort(d.removed.begin(), d.removed.end());
  std::sort(d.changed.begin(), d.changed.end(),
            [](const auto& a, const auto& b) { return a.key < b.key; });
}

struct Version {
  Offset offset;
  Model model;
  std::vector<Block> replaced_by_next;  // what the commit on top of it replaced
};

// The system under test and its model, with a window of live versions (the oldest is dropped,
// and what its successor replaced freed, as epoch reclamation would).
class ModelRun {
 public:
  explicit ModelRun(const ModelConfig& config)
      : config_(config), domain_(config.max_bytes, config.hash) {
    versions_.push_back(Version{kNullOffset, {}, {}});
    StartTransaction();
  }

  void Step() {
    const int op = Uniform(0, 100);
    if (op < 45) return Set(GenKey(), GenValue(config_));
    if (op < 62) return Erase(GenKey());
    if (op < 72) return Get(GenKey());
    if (op < 80) return Commit();
    if (op < 83) return Abort();
    if (op < 88) return CheckVersion(versions_.back());
    if (op < 94) return CheckDiff();
    return CheckEquality();
  }

  int exhausted() const { return exhausted_; }
  int committed() const { return committed_; }

  void Finish() {
    tx_->Abort();
    for (const Version& v : versions_) CheckVersion(v);
    std::vector<Offset> live;
    for (const Version& v : versions_) live.push_back(v.offset);
    RC_ASSERT(domain_.LiveBytes() == domain_.ReachableBytes(live));
  }

 private:
  void StartTransaction() {
    tx_ = std::make_unique<TrieTransaction>(domain_.context(), versions_.back().offset);
    pending_ = versions_.back().model;
  }

  // An allocation failure aborted the transaction: the model drops its pending writes, and
  // every committed version must be intact.
  void OnError(const absl::Status& s) {
    RC_ASSERT(config_.may_exhaust);
    RC_ASSERT(s.code() == absl::StatusCode::kResourceExhausted);
    RC_ASSERT(!tx_->open());
    RC_ASSERT(tx_->Set("k", "v").code() == absl::StatusCode::kFailedPrecondition);
    for (const Version& v : versions_) CheckVersion(v);
    ++exhausted_;
    StartTransaction();
  }

  void Set(const std::string& key, const std::string& value) {
    absl::Status s = tx_->Set(key, value);
    if (!s.ok()) return OnError(s);
    pending_[key] = value;
    RC_ASSERT(tx_->size() == pending_.size());
  }

  void Erase(const std::string& key) {
    absl::StatusOr<bool> removed = tx_->Erase(key);
    if (!removed.ok()) return OnError(removed.status());
    RC_ASSERT(*removed == (pending_.erase(key) == 1));
    RC_ASSERT(tx_->size() == pending_.size());
  }

  void Get(const std::string& key) {
    auto it = pending_.find(key);
    const std::optional<std::string_view> got = tx_->Get(key);
    RC_ASSERT(got.has_value() == (it != pending_.end()));
    if (got) RC_ASSERT(std::string(*got) == it->second);
    const Version& base = versions_.back();
    auto base_it = base.model.find(key);
    const std::optional<std::string_view> in_base = domain_.MapOf(base.offset).get(key);
    RC_ASSERT(in_base.has_value() == (base_it != base.model.end()));
    if (in_base) RC_ASSERT(std::string(*in_base) == base_it->second);
  }

  void Commit() {
    absl::StatusOr<CommitResult> result = tx_->Commit();
    if (!result.ok()) return OnError(result.status());
    ++committed_;
    versions_.back().replaced_by_next = std::move(result->replaced);
    versions_.push_back(Version{result->version, pending_, {}});
    if (versions_.size() > 4) {
      domain_.Free(versions_.front().replaced_by_next);
      versions_.pop_front();
    }
    StartTransaction();
  }

  void Abort() {
    tx_->Abort();
    StartTransaction();
  }

  void CheckVersion(const Version& v) {
    const Map map = domain_.MapOf(v.offset);
    RC_ASSERT(map.size() == v.model.size());
    std::uint64_t visited = 0;
    map.ForEach([&](std::string_view, std::string_view) { ++visited; });
    RC_ASSERT(visited == v.model.size());  // each entry once
    RC_ASSERT(Contents(map) == v.model);
    std::vector<std::pair<std::string_view, std::string_view>> by_foreach, by_iterator;
    map.ForEach([&](std::string_view k, std::string_view val) { by_foreach.emplace_back(k, val); });
    for (const auto& kv : map) by_iterator.push_back(kv);
    RC_ASSERT(by_foreach == by_iterator);
    for (const auto& [k, value] : v.model)
      RC_ASSERT(map.get(k) == std::optional<std::string_view>(value));
  }

  const Version& OlderVersion() {
    return versions_[Uniform(0, static_cast<int>(versions_.size()))];
  }

  void CheckDiff() {
    const Version& a = OlderVersion();
    const Version& b = versions_.back();
    absl::StatusOr<MapDiff> got = Diff(domain_.MapOf(a.offset), domain_.MapOf(b.offset));
    RC_ASSERT(got.ok());
    MapDiff want = ModelDiff(a.model, b.model);
    Normalize(*got);
    Normalize(want);
    RC_ASSERT(got->added == want.added);
    RC_ASSERT(got->removed == want.removed);
    RC_ASSERT(got->changed.size() == want.changed.size());
    for (std::size_t i = 0; i < want.changed.size(); ++i) {
      RC_ASSERT(got->changed[i].key == want.changed[i].key);
      RC_ASSERT(got->changed[i].old_value == want.changed[i].old_value);
      RC_ASSERT(got->changed[i].new_value == want.changed[i].new_value);
    }
  }

  void CheckEquality() {
    const Version& a = OlderVersion();
    const Version& b = versions_.back();
    RC_ASSERT((domain_.MapOf(a.offset) == domain_.MapOf(b.offset)) == (a.model == b.model));
  }

  ModelConfig config_;
  TestDomain domain_;
  std::deque<Version> versions_;
  std::unique_ptr<TrieTransaction> tx_;
  Model pending_;
  int exhausted_ = 0;
  int committed_ = 0;
};

void RunModel(const ModelConfig& config) {
  ModelRun run(config);
  const int steps = *rc::gen::inRange(1, 1500);
  for (int i = 0; i < steps; ++i) run.Step();
  run.Finish();
  RC_CLASSIFY(run.exhausted() > 0, "ran out of space");
  RC_CLASSIFY(run.committed() > 3, "more than 3 commits");
}

TEST_CASE("trie matches std::map, real hash", "[hamt][model]") {
  rc::prop("xxh3", [] { RunModel(ModelConfig{}); }, /*verbose=*/true);
}

TEST_CASE("trie matches std::map, every key collides somewhere", "[hamt][model]") {
  rc::prop("weak hash", [] { RunModel(ModelConfig{.hash = HashKind::kTestWeak}); }, true);
}

TEST_CASE("trie matches std::map in a tiny domain that runs out of space", "[hamt][model]") {
  rc::prop(
      "tiny arena",
      [] {
        RunModel(ModelConfig{.max_bytes = 192 << 10, .max_value_len = 8000, .may_exhaust = true});
      },
      true);
}

}  // namespace
}  // namespace atomap::internal::hamt

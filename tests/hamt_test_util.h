// Helpers for the trie's tests: a scratch domain that builds versions from a model.
#ifndef ATOMAP_TESTS_HAMT_TEST_UTIL_H_
#define ATOMAP_TESTS_HAMT_TEST_UTIL_H_

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <stdexcept>

#include "hamt/scratch_domain.h"

namespace atomap::internal::hamt {

using Model = std::map<std::string, std::string>;

// ScratchDomain plus a one-call builder of versions from a model.
class TestDomain : public ScratchDomain {
 public:
  using ScratchDomain::ScratchDomain;

  // Commits `sets` then `erases` on top of `base` in one transaction, one Set at a time (sets
  // into an empty trie are not deferred: the generic tests are of Set's paths; the deferred
  // bulk build has its own, hamt_bulk_build_test.cc).
  CommitResult Build(Offset base, const Model& sets, const std::vector<std::string>& erases = {}) {
    TrieTransaction tx(context(), base);
    (void)tx.size();  // a call other than Set first: nothing is deferred
    for (const auto& [k, v] : sets) Require(tx.Set(k, v));
    for (const auto& k : erases) Require(tx.Erase(k).status());
    return std::move(tx.Commit().value());
  }

 private:
  static void Require(const absl::Status& s) {
    if (!s.ok()) throw std::runtime_error(s.ToString());
  }
};

inline Model Contents(const Map& map) {
  Model out;
  map.ForEach([&](std::string_view k, std::string_view v) { out.emplace(k, v); });
  return out;
}

}  // namespace atomap::internal::hamt

#endif  // ATOMAP_TESTS_HAMT_TEST_UTIL_H_

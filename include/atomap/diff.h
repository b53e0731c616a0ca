// atomap::Diff: what changed between two versions of a map.
//
// Contract
//  - Diff(before, after) lists every key whose presence or value differs, each exactly once:
//    added (only in `after`), removed (only in `before`), changed (in both, different bytes).
//  - Cost is proportional to the parts that differ: subtrees the versions share are skipped.
//    Two versions one commit apart differ along the paths that commit touched.
//  - Both maps must come from the same domain (or be default-constructed); otherwise
//    InvalidArgument. The result holds copies: it outlives both versions.
//  - Order within each list is trie order (deterministic, not sorted).
//
// Thread safety: reads only; safe from any thread.
//
// Usage:
//   absl::StatusOr<atomap::MapDiff> d = atomap::Diff(old_config, new_config);
//   if (d.ok()) for (const auto& [key, value] : d->added) Apply(key, value);
#ifndef ATOMAP_DIFF_H_
#define ATOMAP_DIFF_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "atomap/map.h"

namespace atomap {

struct MapDiff {
  struct Change {
    std::string key;
    std::string old_value;
    std::string new_value;
  };
  std::vector<std::pair<std::string, std::string>> added;    // key, value in `after`
  std::vector<std::pair<std::string, std::string>> removed;  // key, value in `before`
  std::vector<Change> changed;

  bool empty() const { return added.empty() && removed.empty() && changed.empty(); }
};

absl::StatusOr<MapDiff> Diff(const Map& before, const Map& after);

}  // namespace atomap

#endif  // ATOMAP_DIFF_H_

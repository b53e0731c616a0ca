#include "atomap/watcher.h"

#include <utility>

namespace atomap {
namespace {

// Checked whatever the domain's options (the copy costs more than the checks): a damaged
// version is DataLoss, never a crash.
absl::StatusOr<std::map<std::string, std::string>> Contents(const Map& map) {
  std::map<std::string, std::string> contents;
  absl::Status status = map.CheckedForEach(
      [&](std::string_view key, std::string_view value) { contents.emplace(key, value); });
  if (!status.ok()) return status;
  return contents;
}

// Both maps are sorted: one merge pass.
MapDiff DiffSorted(const std::map<std::string, std::string>& before,
                   const std::map<std::string, std::string>& after) {
  MapDiff diff;
  auto b = before.begin();
  auto a = after.begin();
  while (b != before.end() || a != after.end()) {
    if (a == after.end() || (b != before.end() && b->first < a->first)) {
      diff.removed.emplace_back(b->first, b->second);
      ++b;
    } else if (b == before.end() || a->first < b->first) {
      diff.added.emplace_back(a->first, a->second);
      ++a;
    } else {
      if (a->second != b->second) diff.changed.push_back({a->first, b->second, a->second});
      ++a;
      ++b;
    }
  }
  return diff;
}

}  // namespace

absl::StatusOr<Watcher> Watcher::Start(Atom atom) {
  absl::StatusOr<Snapshot> now = atom.load();
  if (!now.ok()) return now.status();
  absl::StatusOr<std::map<std::string, std::string>> contents = Contents(now->map());
  if (!contents.ok()) return contents.status();
  return Watcher(atom, now->version(), *std::move(contents));
}

absl::StatusOr<bool> Watcher::Next(Callback fn, absl::Duration timeout) {
  absl::StatusOr<Snapshot> now = atom_.wait_for_change(version_, timeout);
  if (now.status().code() == absl::StatusCode::kDeadlineExceeded) return false;
  if (!now.ok()) return now.status();
  absl::StatusOr<std::map<std::string, std::string>> contents = Contents(now->map());
  if (!contents.ok()) return contents.status();
  const MapDiff diff = DiffSorted(contents_, *contents);
  fn(diff, *now);
  contents_ = *std::move(contents);
  version_ = now->version();
  return true;
}

}  // namespace atomap

// atomap::Watcher: each change of an atom, delivered as a diff — how a process reloads shared
// configuration.
//
// Usage:
//
//   absl::StatusOr<atomap::Watcher> watcher = atomap::Watcher::Start(*domain->atom("config"));
//   for (;;) {
//     absl::StatusOr<bool> changed = watcher->Next([](const atomap::MapDiff& diff,
//                                                     const atomap::Snapshot& now) {
//       for (const auto& [key, value] : diff.added) Apply(key, value);
//       for (const auto& change : diff.changed) Apply(change.key, change.new_value);
//       for (const auto& [key, value] : diff.removed) Remove(key);
//     });
//     if (!changed.ok()) return changed.status();
//   }
//
// Contract
//  - Start() records the atom's current contents as the baseline; Next() sleeps (in the kernel,
//    no polling) until the atom's version moves past the last one delivered, then calls `fn` once
//    with the difference between the last delivered contents and the newest version. Several
//    changes published while the watcher was busy arrive as one diff.
//  - While waiting, the watcher holds no snapshot, so a watcher that waits for hours holds back
//    no one's reclamation. The price: it keeps the last delivered contents as a process-local
//    copy, and each diff costs a pass over the map (O(size)). For large maps whose changes are
//    small, hold two snapshots and call atomap::Diff, which skips shared subtrees.
//  - Keys in each part of the diff are in ascending byte order.
//  - Start() and Next() read the map bounds-checked (Map::CheckedForEach): a damaged version is
//    DataLoss naming the file, never a crash.
//
// Thread safety: one thread at a time.
#ifndef ATOMAP_WATCHER_H_
#define ATOMAP_WATCHER_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "atomap/atom.h"
#include "atomap/diff.h"
#include "atomap/snapshot.h"

namespace atomap {

class Watcher {
 public:
  using Callback = absl::FunctionRef<void(const MapDiff& diff, const Snapshot& now)>;

  static absl::StatusOr<Watcher> Start(Atom atom);

  // True if `fn` was called; false if `timeout` passed without a change.
  absl::StatusOr<bool> Next(Callback fn, absl::Duration timeout = absl::InfiniteDuration());

  // The version last delivered (or found by Start).
  std::uint64_t version() const { return version_; }

 private:
  Watcher(Atom atom, std::uint64_t version, std::map<std::string, std::string> contents)
      : atom_(atom), version_(version), contents_(std::move(contents)) {}

  Atom atom_;
  std::uint64_t version_;
  std::map<std::string, std::string> contents_;
};

}  // namespace atomap

#endif  // ATOMAP_WATCHER_H_

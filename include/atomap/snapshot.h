// atomap::Snapshot: one version of an atom's map, held still while you read it.
//
// Usage:
//
//   absl::StatusOr<atomap::Snapshot> snap = atom.load();
//   if (!snap.ok()) return snap.status();
//   if (std::optional<std::string_view> port = snap->map().get("port")) Use(*port);
//   // *port and everything else read from snap->map() stays valid until `snap` is destroyed.
//
// Contract
//  - A Snapshot pins its thread's participant: while it lives, no process frees any block of
//    its version, so views returned by map() are zero-copy and stay valid. Nothing read from a
//    snapshot outlives it.
//  - Taking and dropping a snapshot writes only the caller's own slot (no shared cache line).
//  - A snapshot held for a long time holds back the reclamation of every version replaced since
//    it was taken, in every process: memory use grows until it is dropped. Take, read, drop.
//  - Snapshots nest: several may be alive in one thread at once.
//
// Thread safety: a Snapshot belongs to the thread that took it and must be destroyed on that
// thread, before the Domain is closed. Its Map may be read from any thread while it lives.
#ifndef ATOMAP_SNAPSHOT_H_
#define ATOMAP_SNAPSHOT_H_

#include <cstdint>

#include "atomap/map.h"

namespace atomap {
namespace internal {
class Participant;
class SnapshotAccess;
}  // namespace internal

class Snapshot {
 public:
  Snapshot(Snapshot&& other) noexcept;
  Snapshot& operator=(Snapshot&& other) noexcept;
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;
  ~Snapshot();

  const Map& map() const { return map_; }
  // The atom's version number: 0 for the empty map it starts as, +1 for each published change.
  std::uint64_t version() const { return map_.version_number(); }

 private:
  friend class internal::SnapshotAccess;
  Snapshot(internal::Participant* participant, Map map);  // REQUIRES: participant pinned (or null)
  void Release();

  internal::Participant* participant_ = nullptr;  // null for read-only domains (nothing to pin)
  Map map_;
};

}  // namespace atomap

#endif  // ATOMAP_SNAPSHOT_H_

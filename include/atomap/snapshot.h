// atomap::Snapshot: one version of an atom's map, held still while you read it.
//
// Usage:
//
//   absl::StatusOr<atomap::Snapshot> snap = atom.load();
//   if (!snap.ok()) return snap.status();
//   const atomap::Map& config = snap->map();
//   if (std::optional<std::string_view> port = config.get("port")) Use(*port);
//   // *port and everything else read from config stays valid until `snap` is destroyed.
//
// Contract
//  - A Snapshot pins its thread's participant: while it lives, no process frees any block of
//    its version, so views returned by map() are zero-copy and stay valid. Nothing read from a
//    snapshot outlives it: its Map cannot be copied or moved out of it (map.h).
//  - Moving a snapshot moves its pin: the pin is released once, when the snapshot that holds it
//    last is destroyed or assigned to. A moved-from snapshot holds no pin and reads as the
//    empty map.
//  - Taking and dropping a snapshot writes only the caller's own slot (no shared cache line).
//  - A snapshot held for a long time holds back the reclamation of every version replaced since
//    it was taken, in every process: memory use grows until it is dropped. Take, read, drop.
//  - Snapshots nest: several may be alive in one thread at once.
//
// Thread safety: a Snapshot belongs to the thread that took it and must be destroyed on that
// thread, before the Domain is closed; or, once that thread has exited, on any thread (one at a
// time: a language binding whose garbage collector drops it late). A thread that exits with a
// snapshot alive keeps its slot until the Domain is closed, and the snapshot's pin holds
// reclamation back until it is destroyed. Its Map may be read from any thread while it lives.
#ifndef ATOMAP_SNAPSHOT_H_
#define ATOMAP_SNAPSHOT_H_

#include <cstdint>
#include <utility>

#include "atomap/internal/pin_guard.h"
#include "atomap/map.h"

namespace atomap {
namespace internal {
class SnapshotAccess;
// What only the library can make (SnapshotAccess): the key to Snapshot's in-place constructor.
class SnapshotKey {
 private:
  friend class SnapshotAccess;
  SnapshotKey() = default;
};
}  // namespace internal

class Snapshot {
 public:
  Snapshot(Snapshot&& other) noexcept : pin_(std::move(other.pin_)), map_(other.map_) {
    other.map_ = Map();
  }
  Snapshot& operator=(Snapshot&& other) noexcept {
    if (this != &other) {
      pin_ = std::move(other.pin_);  // releases this snapshot's own pin first
      map_ = other.map_;
      other.map_ = Map();
    }
    return *this;
  }
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;
  ~Snapshot() = default;  // the pin is released after the map is gone

  // For the library only (the key cannot be made outside it): the private constructor below,
  // callable from absl::StatusOr's in-place constructor, so that Atom::load() builds the
  // snapshot where it returns it (src/atom/atom.cc LoadPinned: why it is never moved).
  Snapshot(internal::SnapshotKey, internal::PinGuard&& pin, const internal::TrieContext* context,
           std::uint64_t version)
      : pin_(std::move(pin)), map_(context, version) {}

  const Map& map() const& { return map_; }
  // Not of a temporary: the Map would dangle as soon as the statement ends.
  const Map& map() const&& = delete;
  // The atom's version number: 0 for the empty map it starts as, +1 for each published change.
  std::uint64_t version() const { return map_.version_number(); }
  // The version's tag (Transaction::set_tag).
  std::uint64_t tag() const { return map_.tag(); }

 private:
  friend class internal::SnapshotAccess;
  // REQUIRES: `pin` was taken before `version` was read from the atom's root (G2), or is empty
  // for a read-only domain (G3).
  Snapshot(internal::PinGuard pin, const internal::TrieContext* context, std::uint64_t version)
      : pin_(std::move(pin)), map_(context, version) {}

  internal::PinGuard pin_;  // declared first: destroyed last, after map_
  Map map_;
};

}  // namespace atomap

#endif  // ATOMAP_SNAPSHOT_H_

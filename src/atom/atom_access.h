// Internal factories for Atom and Snapshot (their constructors are private to the public API).
#ifndef ATOMAP_SRC_ATOM_ATOM_ACCESS_H_
#define ATOMAP_SRC_ATOM_ATOM_ACCESS_H_

#include "atomap/atom.h"
#include "atomap/snapshot.h"

namespace atomap::internal {

class AtomAccess {
 public:
  static Atom Make(Runtime* runtime, std::uint32_t index) { return Atom(runtime, index); }
};

class SnapshotAccess {
 public:
  // REQUIRES: `participant` is pinned once on behalf of this snapshot (or null: read-only).
  static Snapshot Make(Participant* participant, Map map) {
    return Snapshot(participant, std::move(map));
  }
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_ATOM_ATOM_ACCESS_H_

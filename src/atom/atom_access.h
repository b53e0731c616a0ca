// Internal factories for Atom and Snapshot (their constructors are private to the public API).
#ifndef ATOMAP_SRC_ATOM_ATOM_ACCESS_H_
#define ATOMAP_SRC_ATOM_ATOM_ACCESS_H_

#include <utility>

#include "atomap/atom.h"
#include "atomap/internal/pin_guard.h"
#include "atomap/snapshot.h"
#include "common/offset.h"

namespace atomap::internal {

class AtomAccess {
 public:
  static Atom Make(Runtime* runtime, std::uint32_t index) { return Atom(runtime, index); }
};

class SnapshotAccess {
 public:
  // The snapshot of `version`, which owns `pin` from now on. REQUIRES: `pin` was taken before
  // `version` was read from a root (G2), or is empty for a read-only domain (G3).
  static Snapshot Make(PinGuard pin, const TrieContext* context, Offset version) {
    return Snapshot(std::move(pin), context, version);
  }
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_ATOM_ATOM_ACCESS_H_

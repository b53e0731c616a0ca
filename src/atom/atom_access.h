// Internal factories for Atom and Snapshot (their constructors are private to the public API).
#ifndef ATOMAP_SRC_ATOM_ATOM_ACCESS_H_
#define ATOMAP_SRC_ATOM_ATOM_ACCESS_H_

#include <cstdint>
#include <type_traits>
#include <utility>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "absl/status/statusor.h"
#include "atomap/atom.h"
#include "atomap/internal/pin_guard.h"
#include "atomap/snapshot.h"
#include "common/offset.h"

namespace atomap::internal {

class AtomAccess {
 public:
  static Atom Make(Runtime* runtime, std::uint32_t index) { return Atom(runtime, index); }
  static Runtime* RuntimeOf(const Atom& atom) { return atom.runtime_; }
  static std::uint32_t IndexOf(const Atom& atom) { return atom.index_; }
};

class SnapshotAccess {
 public:
  // The snapshot of `version`, which owns `pin` from now on. REQUIRES: `pin` was taken before
  // `version` was read from a root (G2), or is empty for a read-only domain (G3).
  static Snapshot Make(PinGuard pin, const TrieContext* context, Offset version) {
    return Snapshot(std::move(pin), context, version);
  }
  // The same, made in place in the StatusOr returned (never moved: atom.cc LoadPinned). Its Map
  // is written with one 16-byte store: a caller that moves the snapshot out of the StatusOr (a
  // compiler copies a Map with one 16-byte load) then reads it forwarded from that store, where
  // two 8-byte stores could not be forwarded and would stall the move until they retired.
  static absl::StatusOr<Snapshot> InPlace(PinGuard&& pin, const TrieContext* context,
                                          Offset version) {
    absl::StatusOr<Snapshot> snapshot(absl::in_place, SnapshotKey(), std::move(pin), context,
                                      version);
    StoreWhole(*snapshot, context, version);
    return snapshot;
  }

 private:
  static void StoreWhole(Snapshot& snapshot, const TrieContext* context, Offset version) {
#if defined(__SSE2__)
    static_assert(sizeof(Map) == 16 && std::is_trivially_copyable_v<Map>);
    _mm_storeu_si128(
        reinterpret_cast<__m128i*>(&snapshot.map_),
        _mm_set_epi64x(static_cast<long long>(version),
                       static_cast<long long>(reinterpret_cast<std::uintptr_t>(context))));
#else
    (void)snapshot, (void)context, (void)version;  // the constructor's stores stand
#endif
  }
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_ATOM_ATOM_ACCESS_H_

// The two steps of a swap that combining (atom/combine.cc) shares with Atom::swap (atom.cc):
// a writer's pinned load of an atom's current version, and the publication of a transaction
// begun from it. Both are defined in atom.cc, whose invariants (V1)-(V5) and ordering edges
// (1)-(8) they carry.
#ifndef ATOMAP_SRC_ATOM_PUBLISH_H_
#define ATOMAP_SRC_ATOM_PUBLISH_H_

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"
#include "atomap/snapshot.h"
#include "atomap/transaction.h"

namespace atomap::internal {

class Participant;
class Runtime;

// The atom's current version, pinned in the participant's site: atom.cc (1).
absl::StatusOr<Snapshot> LoadForWrite(Runtime* runtime, std::uint32_t index,
                                      Participant* participant);

// Commits `tx` and publishes it if the atom still holds its base: the new version as a
// snapshot, nullopt if another writer published first (tx's work freed), or the error. Every
// publication drops the combining entries that their posters acknowledged (combine.h C4).
absl::StatusOr<std::optional<Snapshot>> PublishTransaction(Runtime* runtime, std::uint32_t index,
                                                           Participant* participant,
                                                           Transaction& tx);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_ATOM_PUBLISH_H_

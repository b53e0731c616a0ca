#include "atom/reader_participant.h"

#include <utility>

namespace atomap::internal {

ReaderParticipant::ReaderParticipant(Runtime& runtime, ReaderLease lease)
    : lease_(std::move(lease)), pin_site_(runtime, &lease_.slot()) {}

void ReaderParticipant::RecordSnapshot(std::uint32_t atom, std::uint64_t version) {
  ReaderSlot& slot = lease_.slot();
  slot.pinned_atom.StoreRelaxed(atom + 1);  // own line: no other writer (RP1)
  slot.pinned_version.StoreRelaxed(version);
}

}  // namespace atomap::internal

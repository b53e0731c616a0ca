// ReaderParticipant: one thread's membership in a read-only domain: a reader slot of the
// registry (file/reader_registry.h) and the pins announced there. A reader owns no blocks, no
// retire list and no lanes, so its death costs only its pin, which a writer clears
// (ReaderRegistry::ClearIfDead, from Participant::Reclaim) or a later claimer takes over.
//
// Invariants
//  (RP1) Only the owning thread pins through it (PinSite PS1) or records its snapshot.
//  (RP2) pinned_atom / pinned_version describe the outermost snapshot of the current pin, or
//        are stale values of an earlier one (informational only: `atomap stat --readers`).
//
// Thread safety: belongs to one thread (RP1).
#ifndef ATOMAP_SRC_ATOM_READER_PARTICIPANT_H_
#define ATOMAP_SRC_ATOM_READER_PARTICIPANT_H_

#include <cstdint>

#include "atom/pin_site.h"
#include "file/reader_registry.h"

namespace atomap::internal {

class Runtime;

class ReaderParticipant {
 public:
  ReaderParticipant(Runtime& runtime, ReaderLease lease);
  // Releases the slot (lease). REQUIRES: not pinned.
  ~ReaderParticipant() = default;
  ReaderParticipant(const ReaderParticipant&) = delete;
  ReaderParticipant& operator=(const ReaderParticipant&) = delete;

  // Forgets the slot without releasing it (an inherited copy in a child of fork()).
  void Abandon() { lease_.Abandon(); }
  bool pinned() const { return pin_site_.pinned(); }
  std::uint32_t slot() const { return lease_.index(); }
  PinSite& pin_site() { return pin_site_; }

  // Records the outermost snapshot of the current pin (RP2): atom number, its version number.
  void RecordSnapshot(std::uint32_t atom, std::uint64_t version);

 private:
  ReaderLease lease_;
  PinSite pin_site_;
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_ATOM_READER_PARTICIPANT_H_

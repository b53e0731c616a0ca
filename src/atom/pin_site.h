// PinSite: where one participant's pins go, writer or reader. Both kinds of participant own one;
// a PinGuard (atomap/internal/pin_guard.h) points at it. Non-virtual: a writer's pin is the
// writers' EpochTable::Pin behind one predictable branch, a reader's the validated PinReader.
//
// Invariants
//  (PS1) Pins nest (Participant P2): only the outermost Pin announces, only the matching Unpin
//        clears. Only a PinGuard pins and unpins.
//  (PS2) In a child of fork() an inherited site writes nothing: the announcement is the parent's.
//
// Thread safety: belongs to its participant's thread.
#ifndef ATOMAP_SRC_ATOM_PIN_SITE_H_
#define ATOMAP_SRC_ATOM_PIN_SITE_H_

#include <cstdint>

#include "file/reader_slot.h"

namespace atomap::internal {

class PinGuard;
class Runtime;

class PinSite {
 public:
  // A writer's: announces in writer slot `slot` of the slot table.
  PinSite(Runtime& runtime, std::uint32_t slot) : runtime_(runtime), slot_(slot) {}
  // A reader's: announces in `reader_slot` of the registry (validated pins, RR1).
  PinSite(Runtime& runtime, ReaderSlot* reader_slot)
      : runtime_(runtime), reader_slot_(reader_slot) {}
  PinSite(const PinSite&) = delete;
  PinSite& operator=(const PinSite&) = delete;

  bool pinned() const { return depth_ > 0; }
  bool reader() const { return reader_slot_ != nullptr; }

 private:
  friend class PinGuard;  // the only caller of Pin and Unpin (PS1)

  void Pin();
  void Unpin();

  Runtime& runtime_;
  std::uint32_t slot_ = 0;
  ReaderSlot* reader_slot_ = nullptr;
  int depth_ = 0;
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_ATOM_PIN_SITE_H_

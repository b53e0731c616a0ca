// PinSite: where one participant's pins go, writer or reader. Both kinds of participant own one;
// a PinGuard (atomap/internal/pin_guard.h) points at it. Non-virtual: a writer's pin is the
// writers' EpochTable::Pin behind one predictable branch, a reader's the validated PinReader.
//
// Invariants
//  (PS1) Pins nest (Participant P2): only the outermost Pin announces, only the matching Unpin
//        clears. Only a PinGuard pins and unpins.
//  (PS2) In a child of fork() an inherited site writes nothing: the announcement is the parent's.
//  (PS3) Nested pins slide forward. Each guard belongs to one of two generations: the announced
//        epoch `announced_`, or `later_` (> announced_), for a nested guard that saw the global
//        epoch G past the announcement when it was taken. When the last guard of the announced
//        generation goes while later ones live, the announcement moves up to later_. So a thread
//        that keeps a snapshot while it takes the next and then drops the old one (hand over
//        hand: the shared-configuration reader) holds back no more than its newest snapshot,
//        instead of pinning its first epoch for ever. A guard that reads no root after it is
//        taken (a transaction's, whose base another guard loaded) joins the announced
//        generation (PinOldest): it may be the last to protect that base.
//
// Why a later guard is safe under an announcement of later_ (PS3): it loaded G = later_ with a
// seq_cst load before its seq_cst load of the root (atom.cc (1)). A block it reaches is
// unlinked by a seq_cst root CAS after that root load in the total order S, and stamped with a
// seq_cst load of G after the CAS (EpochTable (7)); so the stamp r >= later_ (S is consistent
// with the modification order of G). The block is freed only once G >= r + 2 >= later_ + 2, and
// G cannot pass later_ + 1 while this site announces <= later_ (E1: later_ was read after the
// pin's fence). Raising an announcement
// never needs a fence: a scanner that still sees the old, lower one is only more careful.
// For a reader, later_ is a valid pin (RR3): pinned at announced_, G <= announced_ + 1, and G
// was seen at later_ > announced_, so later_ = announced_ + 1 = G when it is raised.
//
// Thread safety: belongs to its participant's thread.
#ifndef ATOMAP_SRC_ATOM_PIN_SITE_H_
#define ATOMAP_SRC_ATOM_PIN_SITE_H_

#include <cstdint>

#include "atomap/internal/pin_guard.h"
#include "common/fork_generation.h"
#include "epoch/epoch_table.h"
#include "file/reader_slot.h"

namespace atomap::internal {

class PinGuard;
class Runtime;

class PinSite {
 public:
  // A writer's: announces in writer slot `slot` of the slot table.
  PinSite(Runtime& runtime, std::uint32_t slot);
  // A reader's: announces in `reader_slot` of the registry (validated pins, RR1).
  PinSite(Runtime& runtime, ReaderSlot* reader_slot);
  PinSite(const PinSite&) = delete;
  PinSite& operator=(const PinSite&) = delete;

  bool pinned() const { return guards_[0] + guards_[1] > 0; }
  bool reader() const { return reader_slot_ != nullptr; }

  // A guard of a new pin (one more level if pinned already, PS1), for the load's hot path: the
  // outermost pin inline, the nested one out of line. REQUIRES: the calling thread owns the site.
  PinGuard Guard();

 private:
  friend class PinGuard;  // the only caller of Pin and Unpin (PS1)

  // Returns the guard's generation (PS3), named by its epoch (announced_ or later_): a name that
  // stays right when the announcement slides up to later_. The outermost pin inline: it is the
  // one every hot snapshot takes.
  std::uint64_t Pin() {
    // No fork check here: participants come from Runtime::ThisThread / ThisReader, which refuse
    // an inherited runtime, so only Unpin (of a snapshot taken before fork()) can meet one (PS2).
    if (guards_[0] + guards_[1] != 0) return PinNested();
    guards_[0] = 1;
    announced_ = reader_slot_ == nullptr ? epochs_.Pin(slot_)  // EpochTable (1)
                                         : epochs_.PinReader(reader_slot_->announcement);  // RR1
    return announced_;
  }
  std::uint64_t PinNested();
  // A pin for a guard that loads no root of its own and protects what older guards read (a
  // transaction's base): it joins the announced generation, never a later one. PS3's argument
  // needs the root load after the generation's G load; such a guard has none.
  std::uint64_t PinOldest();
  // The last guard's unpin inline (the hot snapshot's), the others out of line.
  void Unpin(std::uint64_t generation) {
    if (guards_[0] + guards_[1] != 1) return UnpinNested(generation);
    guards_[0] = guards_[1] = 0;
    if (inherited()) return;  // PS2
    if (reader_slot_ == nullptr) {
      epochs_.Unpin(slot_);  // (2)
    } else {
      EpochTable::UnpinReader(reader_slot_->announcement);  // RR2
    }
  }
  void UnpinNested(std::uint64_t generation);
  bool inherited() const { return ForkGeneration() != fork_generation_; }
  void Announce(std::uint64_t word);

  Runtime& runtime_;
  const EpochTable& epochs_;  // runtime_.epochs()
  // The fork generation the site was made in: its runtime's, as participants are made only in
  // the process that opened the domain (Runtime::ThisThread refuses an inherited one). A later
  // one is a child of fork(), where this site writes nothing (PS2).
  const std::uint64_t fork_generation_;
  std::uint32_t slot_ = 0;
  ReaderSlot* reader_slot_ = nullptr;
  std::uint64_t announced_ = 0;  // the epoch this site's announcement says (while pinned)
  std::uint64_t later_ = 0;  // the later generation's epoch, while guards_[1] > 0
  std::uint32_t guards_[2] = {0, 0};  // live guards per generation (PS1, PS3)
};

inline PinGuard PinSite::Guard() {
  const std::uint64_t generation = Pin();
  return PinGuard(this, generation);
}

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_ATOM_PIN_SITE_H_

// internal::PinGuard: the proof that the calling thread is pinned. Not part of the API: it is
// installed only because atomap::Snapshot holds one by value (so that taking and dropping a
// snapshot allocates nothing and follows no extra pointer).
//
//   internal::PinGuard pin(*participant);               // pins (src/atom/participant.h, P2)
//   const Offset version = LoadRootSeqCst(pin, runtime, atom);
//   return SnapshotAccess::Make(std::move(pin), context, version);  // the snapshot owns the pin
//
// Invariants
//  (G1) A guard that holds a pin accounts for exactly one level of its participant's nested pin
//       (P2): taken when it is constructed, given back once, by whichever guard holds it last,
//       when that guard is destroyed or assigned to. Moving transfers it; the moved-from guard
//       is empty. Pins are taken and given back only by guards (Participant::Pin is private).
//  (G2) A root offset is read only with a guard in hand, and what is reached from it is read
//       only while that guard, or the one it was moved to, lives: Snapshot pairs its Map with
//       the guard that pinned the Map's version.
//  (G3) An empty guard pins nothing: a moved-from guard, and an unregistered reader (a
//       read-only domain with no reader registry it can write: a read-only file system, which
//       nobody can write, so nothing it reads is ever freed). A registered reader pins through
//       its ReaderParticipant (src/atom/reader_participant.h) like a writer.
//  (G4) A guard points at its participant's PinSite (src/atom/pin_site.h), writer or reader
//       alike, and remembers its generation there (nested pins slide forward: PS3); the
//       writers' outermost pin is the same call it always was.
//
// Thread safety: a guard belongs to the thread whose participant it pins (P1), and must be
// destroyed on that thread. Never shared, never copied.
#ifndef ATOMAP_INTERNAL_PIN_GUARD_H_
#define ATOMAP_INTERNAL_PIN_GUARD_H_

#include <cstdint>
#include <utility>

namespace atomap::internal {

class Participant;
class PinSite;
class ReaderParticipant;

class PinGuard {
 public:
  // An empty guard (G3).
  PinGuard() = default;
  // Pins `participant` (one more level if it is pinned already, P2). REQUIRES: `participant`
  // belongs to the calling thread and outlives this guard.
  explicit PinGuard(Participant& participant);
  // A pin for a guard that reads no root of its own but keeps what the thread already reads (a
  // transaction's base): it joins the oldest generation of the site (src/atom/pin_site.h PS3).
  enum OldestGeneration { kOldestGeneration };
  PinGuard(Participant& participant, OldestGeneration);
  // Pins a registered reader (G3), likewise.
  explicit PinGuard(ReaderParticipant& reader);
  PinGuard(PinGuard&& other) noexcept
      : site_(std::exchange(other.site_, nullptr)), generation_(other.generation_) {}
  PinGuard& operator=(PinGuard&& other) noexcept {
    if (this != &other) {
      if (site_ != nullptr) Release();
      site_ = std::exchange(other.site_, nullptr);
      generation_ = other.generation_;
    }
    return *this;
  }
  PinGuard(const PinGuard&) = delete;
  PinGuard& operator=(const PinGuard&) = delete;
  ~PinGuard() {
    if (site_ != nullptr) Release();
  }

  bool holds_pin() const { return site_ != nullptr; }

 private:
  friend class PinSite;  // PinSite::Guard, the load's inline pin
  PinGuard(PinSite* site, std::uint64_t generation) : site_(site), generation_(generation) {}

  void Release();  // unpins and empties the guard (G1). REQUIRES: holds_pin()

  PinSite* site_ = nullptr;  // (G4)
  std::uint64_t generation_ = 0;  // its site's generation it holds (pin_site.h PS3)
};

}  // namespace atomap::internal

#endif  // ATOMAP_INTERNAL_PIN_GUARD_H_

// internal::PinGuard: the proof that the calling thread is pinned. Not part of the API: it is
// installed only because atomap::Snapshot holds one by value (so that taking and dropping a
// snapshot allocates nothing and follows no extra pointer).
//
//   internal::PinGuard pin(*participant);               // pins (src/atom/participant.h, P2)
//   const Offset version = LoadRootAcquire(pin, runtime, atom);
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
//  (G3) An empty guard pins nothing: a moved-from guard, and a reader of a read-only domain
//       (which claims no participant, so has nothing to pin).
//
// Thread safety: a guard belongs to the thread whose participant it pins (P1), and must be
// destroyed on that thread. It is a single pointer: never shared, never copied.
#ifndef ATOMAP_INTERNAL_PIN_GUARD_H_
#define ATOMAP_INTERNAL_PIN_GUARD_H_

#include <utility>

namespace atomap::internal {

class Participant;

class PinGuard {
 public:
  // An empty guard (G3).
  PinGuard() = default;
  // Pins `participant` (one more level if it is pinned already, P2). REQUIRES: `participant`
  // belongs to the calling thread and outlives this guard.
  explicit PinGuard(Participant& participant);
  PinGuard(PinGuard&& other) noexcept : participant_(std::exchange(other.participant_, nullptr)) {}
  PinGuard& operator=(PinGuard&& other) noexcept {
    if (this != &other) {
      if (participant_ != nullptr) Release();
      participant_ = std::exchange(other.participant_, nullptr);
    }
    return *this;
  }
  PinGuard(const PinGuard&) = delete;
  PinGuard& operator=(const PinGuard&) = delete;
  ~PinGuard() {
    if (participant_ != nullptr) Release();
  }

  bool holds_pin() const { return participant_ != nullptr; }

 private:
  void Release();  // unpins and empties the guard (G1). REQUIRES: holds_pin()

  Participant* participant_ = nullptr;
};

}  // namespace atomap::internal

#endif  // ATOMAP_INTERNAL_PIN_GUARD_H_

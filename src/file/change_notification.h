// Change notification: how a waiter sleeps until an atom's version changes, and how whoever
// publishes a version wakes it. Both halves live here, next to the atom table whose words they
// use, because two layers publish: the writer (atom/atom.cc) and the survivor that finds that a
// dead writer's root CAS won (intent/intent_recovery.cc). Neither duplicates the other's notify.
//
// Words of an atom's record (file/atom_table.h, docs/format.md "Atom table"):
//   change_counter  +1 per notification; the futex word waiters sleep on.
//   waiting_for     0, or the newest change_counter value some waiter awaits (the value after
//                   the one it sleeps on). A mark, not a count: raised by waiters, cleared by the
//                   notifier whose change reached it; a waiter never takes it back. A waiter
//                   killed in its sleep (or timed out) thus costs at most the next notification's
//                   wake call, and nobody has to notice that it died.
//   waiters         the sleeper count that builds before this one kept. This build never raises
//                   it; a notifier still wakes while it is non-zero (an older build's waiter may
//                   share the domain), and a writable open that finds the domain alone clears it
//                   (ForgetLegacyWaiters: nobody can be asleep then).
//
// Invariants
//  (K1) A waiter that sleeps on counter value v has first raised waiting_for to a value no older
//       than v + 1 (modular 32-bit order; 0 is skipped, see Awaited).
//  (K2) A notifier whose increment made the counter n clears waiting_for only while it holds a
//       value no newer than n: every waiter it unregisters awaits a change that has happened.
//  (K3) No waiter sleeps longer than kWaitSlice. Each slice ends in a fresh read of the root by
//       the caller (Atom::wait_for_change), so a version that was published and never notified
//       (its writer was killed between the root CAS and the notification, and no survivor has
//       recovered its slot yet) is seen within one slice.
//  (K4) A notification may be repeated for one version (a survivor's recovery after a writer
//       that died after notifying but before clearing its intent): waiters re-check the version,
//       so an extra increment is a spurious wake-up, never a missed one.
//
// Memory ordering
//  (1) notifier: seq_cst increment of change_counter, then (2) seq_cst loads of waiting_for and
//      waiters. Partners: (3) the waiter's seq_cst CAS raising waiting_for (an RMW even when
//      the mark is already high enough), then (4) its seq_cst load of change_counter. Of a
//      notifier and a waiter at least one sees the other's write (Dekker): the notifier sees a
//      mark and wakes, or the waiter sees the new count and does not sleep.
//  (5) notifier: seq_cst CAS of waiting_for to 0 (K2), before its wake. If it cleared a mark
//      that a sleeping waiter relies on, that waiter awaits a change no newer than n, whose
//      increment (1) precedes this wake in this process: the kernel's futex check then either
//      finds the counter changed or the waiter is queued and woken. A mark raised after (2) by
//      a waiter awaiting a later change makes the CAS fail, so it stays.
//
// Thread safety: safe from any thread of any process that maps the file.
#ifndef ATOMAP_SRC_FILE_CHANGE_NOTIFICATION_H_
#define ATOMAP_SRC_FILE_CHANGE_NOTIFICATION_H_

#include <cstdint>

#include "absl/time/time.h"

namespace atomap::internal {

class AtomTable;

// The longest a waiter sleeps before it reads the root again (K3). Short enough that a change
// whose notification died with its writer is seen within a second; long enough that an idle
// waiter costs nothing measurable (four wake-ups a second).
inline constexpr absl::Duration kWaitSlice = absl::Milliseconds(200);

// Announces a published version of `atom`: counts it and wakes its waiters in every process.
// REQUIRES: a writable mapping; called after the CAS that published the version.
void NotifyChange(AtomTable& atoms, std::uint32_t atom);

// One sleep of a waiter that read `seen_counter` from the atom's change_counter before it found
// the version unchanged: returns when the counter moves, after min(timeout, kWaitSlice), or
// spuriously. `can_register`: false on a read-only mapping, which cannot write the mark; such a
// waiter is woken by notifications only while another waiter is registered, otherwise by the
// end of its slice.
void SleepUntilChange(AtomTable& atoms, std::uint32_t atom, std::uint32_t seen_counter,
                      absl::Duration timeout, bool can_register);

// Clears every atom's legacy `waiters` count. REQUIRES: no other handle has the domain open
// (the opener found itself alone), and a writable mapping.
void ForgetLegacyWaiters(AtomTable& atoms);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_FILE_CHANGE_NOTIFICATION_H_

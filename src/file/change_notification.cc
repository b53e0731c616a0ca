#include "file/change_notification.h"

#include <algorithm>

#include "common/futex.h"
#include "file/atom_table.h"

namespace atomap::internal {
namespace {

// Counter values wrap: `a` is newer than `b` if it is less than half the circle ahead. Marks
// live only until the next notification, so they are never that far apart.
bool Newer(std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b) > 0; }

// The mark of a waiter sleeping on `seen_counter`: the next value, or 1 where that is 0 (which
// means "no mark"). 1 is one change later: it keeps the mark for one more notification, never
// fewer (K1).
std::uint32_t Awaited(std::uint32_t seen_counter) {
  const std::uint32_t next = seen_counter + 1;
  return next == 0 ? 1 : next;
}

}  // namespace

void NotifyChange(AtomTable& atoms, std::uint32_t atom) {
  SharedU32& counter = atoms.ChangeCounter(atom);
  SharedU32& mark = atoms.WaitingFor(atom);
  const std::uint32_t now = counter.FetchAddSeqCst(1) + 1;       // (1)
  std::uint32_t seen = mark.LoadSeqCst();                         // (2)
  const bool legacy = atoms.Waiters(atom).LoadSeqCst() != 0;      // (2)
  if (seen == 0 && !legacy) return;  // the swap's path when nobody waits: no write, no syscall
  // (5), (K2): a failed CAS reloads `seen`; a mark newer than this change stays.
  while (seen != 0 && !Newer(seen, now) && !mark.CasWeakSeqCst(seen, 0)) {
  }
  WakeAll(counter);
}

void SleepUntilChange(AtomTable& atoms, std::uint32_t atom, std::uint32_t seen_counter,
                      absl::Duration timeout, bool can_register) {
  SharedU32& counter = atoms.ChangeCounter(atom);
  if (can_register) {
    SharedU32& mark = atoms.WaitingFor(atom);
    const std::uint32_t awaited = Awaited(seen_counter);
    std::uint32_t seen = mark.LoadRelaxed();
    // (3): raise only; never lower a mark that protects a waiter for a later change (K1).
    while (!mark.CasWeakSeqCst(seen, seen == 0 || Newer(awaited, seen) ? awaited : seen)) {
    }
  }
  if (counter.LoadSeqCst() != seen_counter) return;  // (4)
  WaitWhileEqual(counter, seen_counter, std::min(timeout, kWaitSlice));  // (K3)
}

void ForgetLegacyWaiters(AtomTable& atoms) {
  atoms.ForEach([&atoms](std::uint32_t atom, std::string_view) {
    // Read first: a record never waited on is not written (its page may be a hole).
    SharedU32& waiters = atoms.Waiters(atom);
    if (waiters.LoadRelaxed() != 0) waiters.StoreRelaxed(0);
  });
}

}  // namespace atomap::internal

// Domain::check(): a read-only consistency and space audit of a domain, with optional repair.
//
// Usage:
//
//   absl::StatusOr<atomap::CheckReport> report = domain.check();
//   if (!report.ok()) return report.status();          // could not run (e.g. read-only repair)
//   for (const std::string& p : report->problems) std::puts(p.c_str());
//
// What it verifies: every atom's current version (offsets in bounds and aligned, bitmaps,
// canonical shape, each key's hash in the branch it sits in, entry counts matching the version
// record), and the space accounting of the data region: every byte carved from it is reachable
// from a root, in a free list or cache, pending in a retire list, or unused carve space.
// Anything else is leaked. A damaged file is reported as problems, never a crash: every offset
// is bounds-checked before it is followed.
//
// On a live domain (other handles attached) check() never reports damage that is not there.
// It first tries to have the domain to itself (the exclusive attach lock; new openers wait
// while it is held), retrying for CheckOptions::wait_for_exclusive:
//  - alone: the full check above; space_checked is true and leaked bytes are problems.
//  - not alone, writable handle: each atom's current version is walked under a pin of this
//    thread, so it cannot be freed while it is read, and checked structurally as above. The
//    free lists, retire lists and bump pointer change under every writer, so space accounting
//    is skipped: space_checked is false, the byte figures are 0, `skipped` says why, and
//    problems lists only damage of the pinned versions.
//  - read-only handle: it can neither pin nor take the lock exclusive, so it runs the full
//    check (leaks as figures, not problems) only if no participant slot has a live owner in
//    another process before and after it, and otherwise returns FailedPrecondition naming the
//    file. (Writers in this process are the caller's to stop: see REQUIRES.)
// Repair always needs the domain to itself (FailedPrecondition otherwise, after the wait).
//
// REQUIRES: no other thread uses this handle during check() (the attach lock keeps other
// handles out, not this one's threads), and for a read-only handle no thread of this process
// writes the domain through any handle.
#ifndef ATOMAP_INCLUDE_ATOMAP_CHECK_H_
#define ATOMAP_INCLUDE_ATOMAP_CHECK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace atomap {

struct CheckOptions {
  // Free leaked blocks and rebuild the free lists. Needs a writable domain with no other handle
  // attached (FailedPrecondition otherwise); never frees a block that a root reaches.
  bool repair = false;
  // How long to keep trying to have the domain to itself (polling) before checking it as a
  // live domain (or refusing repair or a read-only check). Zero: try once.
  absl::Duration wait_for_exclusive = absl::ZeroDuration();
  // The caller vouches that every other attached handle is idle (stopped, or waiting) for the
  // whole check: the full check then runs with them attached, leaks as figures, not problems
  // (tests of online recovery measure what it left). A writer meanwhile makes its figures and
  // problems meaningless.
  bool others_idle = false;
};

struct CheckReport {
  // One sentence each, naming the atom, offset or field at fault. Empty when all is well.
  std::vector<std::string> problems;
  std::uint64_t reachable_bytes = 0;  // in blocks some atom's current version reaches
  std::uint64_t free_bytes = 0;       // in free lists and allocator caches
  std::uint64_t pending_bytes = 0;    // retired, waiting for reclamation (retire lists, orphans)
  std::uint64_t unused_bytes = 0;     // carved for participants, not yet split into blocks
  std::uint64_t in_flight_bytes = 0;  // owned by open transactions (recorded in their lanes)
  std::uint64_t leaked_bytes = 0;     // in none of the above (freed by repair)
  // Which parts were verified. true: the structure and the space accounting (the figures
  // above). false: the domain was open elsewhere, so only each atom's pinned version was
  // checked; the byte figures are 0 and `skipped` says why, in one line.
  bool space_checked = true;
  std::uint32_t atoms_checked = 0;    // atoms whose current version was walked
  std::uint32_t others_attached = 0;  // when !space_checked: slots held by other processes
  std::string skipped;
  bool ok() const { return problems.empty(); }
};

}  // namespace atomap

#endif  // ATOMAP_INCLUDE_ATOMAP_CHECK_H_

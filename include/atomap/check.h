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
// Space figures are exact only while no other participant is writing; check() run with others
// attached reports what it saw (leaks may then be blocks of a swap in flight, so repair is
// refused unless this handle is alone).
#ifndef ATOMAP_INCLUDE_ATOMAP_CHECK_H_
#define ATOMAP_INCLUDE_ATOMAP_CHECK_H_

#include <cstdint>
#include <string>
#include <vector>

namespace atomap {

struct CheckOptions {
  // Free leaked blocks and rebuild the free lists. Needs a writable domain with no other handle
  // attached (FailedPrecondition otherwise); never frees a block that a root reaches.
  bool repair = false;
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
  bool ok() const { return problems.empty(); }
};

}  // namespace atomap

#endif  // ATOMAP_INCLUDE_ATOMAP_CHECK_H_

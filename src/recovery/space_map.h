// SpaceMap: every block the checker found, by what holds it, and the accounting of the data
// region built from them.
//
// Invariants (of a healthy quiescent domain; the checker reports each violation)
//  (M1) Every extent lies inside [data_begin, bump), is 16-byte aligned, and is as long as its
//       size class (blocks) or its region (unused bump regions).
//  (M2) No two extents overlap, except that one block may be found twice by the same holder
//       kind (a node two atoms share, a batch listed as both `reclaiming` and in the list), and
//       that a lane may still list a block its published version reaches, or that a later
//       writer retired (a writer between its CAS and emptying its lane, or killed there).
//  (M3) Σ extents + leaked gaps == bump - data_begin: the gaps are exactly the leaked bytes.
//
// Not lock-free, not shared: process-local bookkeeping of one check. No memory ordering.
#ifndef ATOMAP_SRC_RECOVERY_SPACE_MAP_H_
#define ATOMAP_SRC_RECOVERY_SPACE_MAP_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/offset.h"

namespace atomap::internal {

enum class Holder : std::uint8_t {
  kReachable,    // some atom's current version reaches it
  kSharedFree,   // on a shared free list
  kCachedFree,   // on a participant cache's private list
  kPending,      // retired (or a retire batch), waiting for reclamation
  kUnused,       // a participant's private bump region, not yet carved
  kInFlight,     // owned by an open transaction (its lane lists it), or a lane's own batch
};
inline constexpr int kNumHolders = 6;
const char* HolderName(Holder holder);

struct Extent {
  Offset offset;
  std::uint64_t bytes;  // the class size for blocks (what the block occupies)
  Holder holder;
  std::uint32_t size_class;  // meaningful for blocks only
};

struct SpaceTotals {
  std::uint64_t by_holder[kNumHolders] = {};
  std::uint64_t leaked = 0;
  std::vector<Extent> leaked_gaps;  // holder unused; sorted
};

class SpaceMap {
 public:
  void Add(const Extent& extent) { extents_.push_back(extent); }
  const std::vector<Extent>& extents() const { return extents_; }

  // Sorts, reports overlaps (M2) into `problems`, and returns the totals over
  // [data_begin, bump) with the gaps as leaked (M3).
  SpaceTotals Account(Offset data_begin, Offset bump, std::vector<std::string>& problems);

 private:
  std::vector<Extent> extents_;
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_RECOVERY_SPACE_MAP_H_

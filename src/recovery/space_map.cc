#include "recovery/space_map.h"

#include <algorithm>

#include "absl/strings/str_format.h"

namespace atomap::internal {

const char* HolderName(Holder holder) {
  switch (holder) {
    case Holder::kReachable:
      return "reachable";
    case Holder::kSharedFree:
      return "on a shared free list";
    case Holder::kCachedFree:
      return "in a participant cache";
    case Holder::kPending:
      return "pending reclamation";
    case Holder::kUnused:
      return "unused bump region";
    case Holder::kInFlight:
      return "owned by an open transaction";
  }
  return "?";
}

SpaceTotals SpaceMap::Account(Offset data_begin, Offset bump, std::vector<std::string>& problems) {
  std::sort(extents_.begin(), extents_.end(), [](const Extent& a, const Extent& b) {
    if (a.offset != b.offset) return a.offset < b.offset;
    return a.bytes != b.bytes ? a.bytes < b.bytes : a.holder < b.holder;
  });
  SpaceTotals totals;
  const auto report = [&problems](std::string problem) {
    if (problems.size() < 200)
      problems.push_back(std::move(problem));  // bounded, like CheckContext
  };
  Offset covered_to = data_begin;  // every byte below it is accounted for
  const Extent* last = nullptr;
  for (const Extent& e : extents_) {
    if (last != nullptr && e.offset == last->offset && e.bytes == last->bytes &&
        e.holder == last->holder) {
      continue;  // the same block found twice by one kind of holder (M2)
    }
    if (last != nullptr && e.holder == Holder::kInFlight && e.offset == last->offset &&
        (last->holder == Holder::kReachable || last->holder == Holder::kPending)) {
      continue;  // a lane still lists a block published or retired since (M2)
    }
    if (e.offset < covered_to) {
      report(absl::StrFormat(
          "block at offset %d (%d bytes, %s) overlaps the block at offset %d (%d bytes, %s)",
          e.offset, e.bytes, HolderName(e.holder), last->offset, last->bytes,
          HolderName(last->holder)));
    } else if (e.offset > covered_to) {
      totals.leaked_gaps.push_back(Extent{covered_to, e.offset - covered_to, Holder::kUnused, 0});
      totals.leaked += e.offset - covered_to;
    }
    if (e.offset + e.bytes > bump) {
      report(absl::StrFormat(
          "block at offset %d (%d bytes, %s) ends past the allocator's bump pointer %d", e.offset,
          e.bytes, HolderName(e.holder), bump));
    }
    totals.by_holder[static_cast<int>(e.holder)] += e.bytes;
    covered_to = std::max(covered_to, e.offset + e.bytes);
    last = &e;
  }
  if (covered_to < bump) {
    totals.leaked_gaps.push_back(Extent{covered_to, bump - covered_to, Holder::kUnused, 0});
    totals.leaked += bump - covered_to;
  }
  return totals;
}

}  // namespace atomap::internal

// The walks that find every block not reachable from a root: the allocator's shared free lists,
// each slot's cache (private lists and bump region), each slot's retire list, and the domain's
// orphan chain. Each is bounds-checked and bounded in length (a cycle in a damaged list ends the
// walk with a problem, never a hang).
//
// REQUIRES (for exact figures): no participant allocates, frees or retires meanwhile. Run
// concurrently, the walks stay inside the mapping but may see torn lists (reported as problems).
#ifndef ATOMAP_SRC_RECOVERY_HOLDERS_WALK_H_
#define ATOMAP_SRC_RECOVERY_HOLDERS_WALK_H_

#include <cstdint>

#include "alloc/allocator_state.h"
#include "epoch/retire_list.h"
#include "recovery/check_context.h"

namespace atomap::internal {

void WalkSharedFreeLists(CheckContext& ctx, const AllocatorState& state);
void WalkCache(CheckContext& ctx, const ParticipantCache& cache, std::uint32_t slot);
void WalkReclaimArea(CheckContext& ctx, const ReclaimArea& area, std::uint32_t slot);
// The orphan chain (Header::orphan_retired): garbage of dead participants awaiting adoption.
void WalkOrphanChain(CheckContext& ctx, Offset chain);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_RECOVERY_HOLDERS_WALK_H_

// CollectStats: what Domain::stats() reports (epochs, participants, pending garbage, space),
// gathered from the file.
//
// Thread safety: safe from any thread while other threads and processes use the domain; the
// figures are a moment's, each read once (relaxed), and may be stale by the time they are used.
#ifndef ATOMAP_SRC_ATOM_STATS_H_
#define ATOMAP_SRC_ATOM_STATS_H_

#include "atom/runtime.h"
#include "atomap/domain.h"

namespace atomap::internal {

DomainStats CollectStats(Runtime& runtime);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_ATOM_STATS_H_

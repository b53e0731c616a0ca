// Durability: the file's flushes to stable storage, for Durability::kSync and Domain::sync().
//
// Invariants (kSync; see docs/reliability.md)
//  (D1) Nodes before root: Publish syncs the file after the transaction's blocks are written and
//       before the root CAS, so a root that reaches the disk never points at a node that did not.
//  (D2) Root before return: Publish syncs again after a won CAS, so a swap that returned is on
//       the disk. Its replaced blocks are freed only after that (they are retired after the CAS,
//       and the second sync precedes the return), so the disk's newest root stays intact.
//  (D3) Growth: fdatasync also writes the file's new length, which reading the new blocks needs.
//  The allocator's words and lists may reach the disk older or newer than the versions: after a
//  power loss they are rebuilt from the versions by the recovery sweep (recovery/checker.h).
#ifndef ATOMAP_SRC_RECOVERY_DURABILITY_H_
#define ATOMAP_SRC_RECOVERY_DURABILITY_H_

#include <functional>
#include <string>

#include "absl/status/status.h"

namespace atomap::internal {

class DomainImpl;

// fdatasync of the domain's file (nothing for other kinds). Internal with errno on failure.
absl::Status SyncDomain(DomainImpl& domain);

// For tests of power loss: called after each successful SyncDomain with the file's path, so a
// test can keep a copy of what stable storage holds. nullptr removes it. Process-wide.
void SetSyncObserverForTesting(std::function<void(const std::string& path)> observer);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_RECOVERY_DURABILITY_H_

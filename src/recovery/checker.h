// CheckDomain: the audit behind Domain::check() (see include/atomap/check.h).
#ifndef ATOMAP_SRC_RECOVERY_CHECKER_H_
#define ATOMAP_SRC_RECOVERY_CHECKER_H_

#include <cstdint>
#include <functional>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "atomap/check.h"
#include "atomap/snapshot.h"

namespace atomap::internal {

class DomainImpl;

// A pinned snapshot of atom `atom`'s current version (Atom::load of the domain's runtime): the
// walk of a live domain reads each version under it (checker.cc C5).
using PinVersion = absl::FunctionRef<absl::StatusOr<Snapshot>(std::uint32_t atom)>;

// REQUIRES: no other thread of this process uses the domain meanwhile (through any handle),
// except through another writable handle when this one is writable: then only pinned reads are
// made, as by any reader.
absl::StatusOr<CheckReport> CheckDomain(DomainImpl& domain, const CheckOptions& options,
                                        PinVersion pin);

// For tests: called on the checking thread by a check of a live domain after atom `atom`'s
// version is pinned and before it is walked (a test lets writers free and reuse memory there).
// Set it only while no check runs. An empty function removes it.
using LiveCheckHook = std::function<void(std::uint32_t atom)>;
void SetLiveCheckHook(LiveCheckHook hook);

// The backstop of crash recovery: when a writable Open found no other handle attached and the
// domain was not closed cleanly, frees everything no root reaches and no live participant holds
// (CheckDomain with repair). Does nothing otherwise, or if another handle attached meanwhile.
// REQUIRES: called from Open, before any thread of this process uses the domain.
void SweepIfAloneAfterCrash(DomainImpl& domain);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_RECOVERY_CHECKER_H_

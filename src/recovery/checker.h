// CheckDomain: the audit behind Domain::check() (see include/atomap/check.h).
#ifndef ATOMAP_SRC_RECOVERY_CHECKER_H_
#define ATOMAP_SRC_RECOVERY_CHECKER_H_

#include "absl/status/statusor.h"
#include "atomap/check.h"

namespace atomap::internal {

class DomainImpl;

absl::StatusOr<CheckReport> CheckDomain(DomainImpl& domain, const CheckOptions& options);

// The backstop of crash recovery: when a writable Open found no other handle attached and the
// domain was not closed cleanly, frees everything no root reaches and no live participant holds
// (CheckDomain with repair). Does nothing otherwise, or if another handle attached meanwhile.
// REQUIRES: called from Open, before any thread of this process uses the domain.
void SweepIfAloneAfterCrash(DomainImpl& domain);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_RECOVERY_CHECKER_H_

// CheckDomain: the audit behind Domain::check() (see include/atomap/check.h).
#ifndef ATOMAP_SRC_RECOVERY_CHECKER_H_
#define ATOMAP_SRC_RECOVERY_CHECKER_H_

#include "absl/status/statusor.h"
#include "atomap/check.h"

namespace atomap::internal {

class DomainImpl;

absl::StatusOr<CheckReport> CheckDomain(DomainImpl& domain, const CheckOptions& options);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_RECOVERY_CHECKER_H_

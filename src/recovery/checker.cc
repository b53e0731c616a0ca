#include "recovery/checker.h"

#include "absl/status/status.h"
#include "domain/domain_impl.h"

namespace atomap::internal {

absl::StatusOr<CheckReport> CheckDomain(DomainImpl& domain, const CheckOptions& options) {
  if (options.repair && domain.read_only())
    return absl::FailedPreconditionError(domain.path() + ": repair needs a writable domain");
  return CheckReport{};
}

}  // namespace atomap::internal

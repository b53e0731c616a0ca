// Domain::check(): the public entry; the audit itself is in recovery/checker.cc.
#include "atomap/check.h"
#include "atomap/domain.h"
#include "domain/domain_impl.h"
#include "recovery/checker.h"

namespace atomap {

absl::StatusOr<CheckReport> Domain::check(const CheckOptions& options) {
  return internal::CheckDomain(*impl_, options);
}

}  // namespace atomap

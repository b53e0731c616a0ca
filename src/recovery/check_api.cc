// Domain::check(): the public entry; the audit itself is in recovery/checker.cc.
#include "atom/atom_access.h"
#include "atomap/check.h"
#include "atomap/domain.h"
#include "domain/domain_impl.h"
#include "recovery/checker.h"

namespace atomap {

absl::StatusOr<CheckReport> Domain::check(const CheckOptions& options) {
  internal::Runtime* runtime = runtime_.get();
  return internal::CheckDomain(*impl_, options, [runtime](std::uint32_t atom) {
    return internal::AtomAccess::Make(runtime, atom).load();
  });
}

}  // namespace atomap

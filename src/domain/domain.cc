// The public Domain: a thin owner of its DomainImpl.
#include "atomap/domain.h"

#include <utility>

#include "domain/domain_impl.h"

namespace atomap {

absl::StatusOr<Domain> Domain::Open(std::string_view path, const Options& options) {
  absl::StatusOr<std::unique_ptr<internal::DomainImpl>> impl =
      internal::DomainImpl::Open(path, options);
  if (!impl.ok()) return impl.status();
  return Domain(*std::move(impl));
}

Domain::Domain(std::unique_ptr<internal::DomainImpl> impl) : impl_(std::move(impl)) {}
Domain::Domain(Domain&&) noexcept = default;
Domain& Domain::operator=(Domain&&) noexcept = default;
Domain::~Domain() = default;

const std::string& Domain::path() const { return impl_->path(); }
DomainKind Domain::kind() const { return impl_->kind(); }
bool Domain::read_only() const { return impl_->read_only(); }
DomainInfo Domain::info() const { return impl_->Info(); }

namespace internal {
DomainImpl& Access(Domain& domain) { return *domain.impl_; }
const DomainImpl& Access(const Domain& domain) { return *domain.impl_; }
}  // namespace internal

}  // namespace atomap

// The public Domain: a thin owner of its DomainImpl.
#include "atomap/domain.h"

#include <algorithm>
#include <utility>

#include "atom/runtime.h"
#include "domain/domain_impl.h"
#include "recovery/checker.h"

namespace atomap {

absl::StatusOr<Domain> Domain::Open(std::string_view path, const Options& options) {
  absl::StatusOr<std::unique_ptr<internal::DomainImpl>> impl =
      internal::DomainImpl::Open(path, options);
  if (!impl.ok()) return impl.status();
  internal::SweepIfAloneAfterCrash(**impl);  // the crash-recovery backstop (recovery/checker.h)
  return Domain(*std::move(impl));
}

absl::StatusOr<Domain> Domain::CreateUnpublished(std::string_view path, const Options& options) {
  absl::StatusOr<std::unique_ptr<internal::DomainImpl>> impl =
      internal::DomainImpl::CreateUnpublished(path, options);
  if (!impl.ok()) return impl.status();
  return Domain(*std::move(impl));  // created: nothing for the recovery backstop to sweep
}

absl::Status Domain::Publish() { return impl_->Publish(); }

Domain::Domain(std::unique_ptr<internal::DomainImpl> impl)
    : impl_(std::move(impl)), runtime_(std::make_unique<internal::Runtime>(*impl_)) {}
Domain::Domain(Domain&&) noexcept = default;
Domain& Domain::operator=(Domain&& other) noexcept {
  runtime_.reset();  // before the mapping its participants live in
  impl_ = std::move(other.impl_);
  runtime_ = std::move(other.runtime_);
  return *this;
}
Domain::~Domain() = default;

const std::string& Domain::path() const { return impl_->path(); }
DomainKind Domain::kind() const { return impl_->kind(); }
bool Domain::read_only() const { return impl_->read_only(); }
DomainInfo Domain::info() const { return impl_->Info(); }
bool Domain::created() const { return impl_->created(); }
bool Domain::was_clean() const { return impl_->was_clean(); }

std::vector<std::string> Domain::atom_names() const {
  std::vector<std::string> names;
  impl_->atoms().ForEach([&](std::uint32_t, std::string_view name) { names.emplace_back(name); });
  std::sort(names.begin(), names.end());
  return names;
}

namespace internal {
DomainImpl& Access(Domain& domain) { return *domain.impl_; }
const DomainImpl& Access(const Domain& domain) { return *domain.impl_; }
}  // namespace internal

}  // namespace atomap

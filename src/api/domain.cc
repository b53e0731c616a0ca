// The public Domain: a thin owner of its DomainImpl. Every member function of Domain is here;
// each hands its work to the layer that owns it (atom/, recovery/, domain/).
#include "atomap/domain.h"

#include <algorithm>
#include <utility>

#include "atom/atom_access.h"
#include "atom/runtime.h"
#include "atom/stats.h"
#include "atomap/check.h"
#include "domain/domain_impl.h"
#include "recovery/checker.h"
#include "recovery/durability.h"

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
  // A damaged index may list one record twice: name it once.
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

absl::StatusOr<Atom> Domain::atom(std::string_view name) {
  if (impl_->read_only()) return find_atom(name);
  absl::StatusOr<std::uint32_t> index = impl_->atoms().FindOrCreate(name);
  if (!index.ok()) return index.status();
  return internal::AtomAccess::Make(runtime_.get(), *index);
}

absl::StatusOr<Atom> Domain::find_atom(std::string_view name) {
  absl::StatusOr<std::uint32_t> index = impl_->atoms().Find(name);
  if (!index.ok()) return index.status();
  return internal::AtomAccess::Make(runtime_.get(), *index);
}

absl::Status Domain::sync() { return internal::SyncDomain(*impl_); }

DomainStats Domain::stats() const { return internal::CollectStats(*runtime_); }
DomainStats Domain::stats(const StatsOptions& options) const {
  return internal::CollectStats(*runtime_, options);
}

// The audit itself is in recovery/checker.cc.
absl::StatusOr<CheckReport> Domain::check(const CheckOptions& options) {
  internal::Runtime* runtime = runtime_.get();
  return internal::CheckDomain(*impl_, options, [runtime](std::uint32_t atom) {
    return internal::AtomAccess::Make(runtime, atom).load();
  });
}

namespace internal {
DomainImpl& Access(Domain& domain) { return *domain.impl_; }
const DomainImpl& Access(const Domain& domain) { return *domain.impl_; }
}  // namespace internal

}  // namespace atomap

#include "atomap/transaction.h"

#include "alloc/allocator.h"
#include "hamt/node.h"
#include "hamt/transient.h"

namespace atomap {

// The public limits are the trie's and the allocator's: one set of numbers.
static_assert(kMaxKeyBytes == internal::hamt::kMaxKeyBytes);
static_assert(kMaxValueBytes == internal::Allocator::kMaxBlockBytes);

absl::Status CheckKeyValue(std::string_view key, std::string_view value) {
  return internal::hamt::CheckKeyValue(key, value);
}

Transaction::Transaction(std::unique_ptr<internal::hamt::TrieTransaction> impl)
    : impl_(std::move(impl)) {}
Transaction::Transaction(Transaction&&) noexcept = default;
Transaction& Transaction::operator=(Transaction&&) noexcept = default;
Transaction::~Transaction() = default;

absl::Status Transaction::set(std::string_view key, std::string_view value) {
  return impl_->Set(key, value);
}

absl::StatusOr<bool> Transaction::erase(std::string_view key) { return impl_->Erase(key); }

absl::Status Transaction::update(std::string_view key, UpdateFunction fn) {
  if (absl::Status s = impl_->CheckOpen(); !s.ok()) return s;
  if (impl_->context().verify_reads) [[unlikely]] {  // damage is DataLoss, not "absent"
    if (absl::Status s = impl_->CheckPath(key); !s.ok()) return s;
  }
  // The user's function runs before anything changes; if it throws, nothing did.
  const std::optional<std::string_view> old_value = impl_->Get(key);
  const std::optional<std::string> new_value = fn(old_value);
  if (!new_value.has_value()) return impl_->Erase(key).status();
  return impl_->Set(key, *new_value);
}

absl::Status Transaction::set_many(
    absl::Span<const std::pair<std::string_view, std::string_view>> entries) {
  return impl_->SetMany(entries);
}

std::optional<std::string_view> Transaction::get(std::string_view key) const {
  return impl_->Get(key);
}

void Transaction::set_tag(std::uint64_t tag) { impl_->SetTag(tag); }

std::uint64_t Transaction::tag() const { return impl_->tag(); }

std::uint64_t Transaction::size() const { return impl_->size(); }

bool Transaction::active() const { return impl_->open(); }

}  // namespace atomap

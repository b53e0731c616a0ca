#include "alloc/chain_walk.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "alloc/allocator.h"

namespace atomap::internal {

static_assert(kMaxPlausibleBlockBytes == Allocator::kMaxBlockBytes);

BlockBounds ChainWalk::Bounds() const {
  return allocator_ != nullptr ? allocator_->bounds() : bounds_;
}

bool ChainWalk::AcceptsAfterRefresh(Offset link) {
  if (allocator_ == nullptr || !allocator_->MayBeBlock(link, bytes_)) return false;
  bounds_ = allocator_->bounds();
  return true;
}

bool ChainWalk::ExtendBudget() {
  bounds_ = Bounds();
  budget_ = std::max(bounds_.MaxBlocks(bytes_), kFreeSteps);
  return accepted_ < budget_;
}

bool ChainWalk::RepeatExact(Offset link) {
  if (seen_ == nullptr) {  // the second link: the first is in saved_
    seen_ = std::make_unique<absl::flat_hash_set<Offset>>();
    seen_->insert(saved_);
  }
  return !seen_->insert(link).second;
}

std::string ChainWalk::Describe() const {
  const BlockBounds bounds = Bounds();
  switch (end_) {
    case End::kNotABlock:
      return absl::StrFormat(
          "a link to offset %d, which is not an aligned block of %d bytes inside the data region "
          "[%d, %d), after %d blocks",
          stopped_at_, bytes_, bounds.data_begin, bounds.limit, accepted_);
    case End::kRepeat:
      return absl::StrFormat("a cycle: offset %d is reached twice, after %d blocks", stopped_at_,
                             accepted_);
    case End::kTooLong:
      return absl::StrFormat(
          "longer than the data region [%d, %d) holds blocks of %d bytes (%d): a cycle",
          bounds.data_begin, bounds.limit, bytes_, accepted_);
    case End::kWalking:
    case End::kNull:
      break;
  }
  return "";
}

absl::Status ChainWalk::Status(std::string_view path, std::string_view chain) const {
  if (!damaged()) return absl::OkStatus();
  return absl::DataLossError(absl::StrFormat("%s: %s: %s", path, chain, Describe()));
}

}  // namespace atomap::internal

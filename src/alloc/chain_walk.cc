#include "alloc/chain_walk.h"

#include "absl/strings/str_format.h"
#include "alloc/allocator.h"

namespace atomap::internal {

static_assert(kMaxPlausibleBlockBytes == Allocator::kMaxBlockBytes);

ChainWalk::ChainWalk(const Allocator& allocator, std::uint64_t bytes, Repeats repeats)
    : allocator_(&allocator),
      bounds_(allocator.bounds()),
      bytes_(bytes),
      repeats_(repeats),
      budget_(bounds_.MaxBlocks(bytes)) {}

ChainWalk::ChainWalk(BlockBounds bounds, std::uint64_t bytes, Repeats repeats)
    : allocator_(nullptr),
      bounds_(bounds),
      bytes_(bytes),
      repeats_(repeats),
      budget_(bounds.MaxBlocks(bytes)) {}

BlockBounds ChainWalk::Bounds() const {
  return allocator_ != nullptr ? allocator_->bounds() : bounds_;
}

bool ChainWalk::Stop(End end, Offset link) {
  end_ = end;
  stopped_at_ = link;
  return false;
}

bool ChainWalk::Accepts(Offset link) {
  return allocator_ != nullptr ? allocator_->MayBeBlock(link, bytes_) : bounds_.Holds(link, bytes_);
}

// (W3) Brent: the link at every power-of-two step is saved; a cycle of length L entered after
// M steps brings the walk back to a saved link once the saved step is past M and the next
// power of two is past L, so within about 2 * (M + L) steps.
bool ChainWalk::Repeat(Offset link) {
  if (repeats_ == Repeats::kExact) {
    if (accepted_ == 0) {
      first_ = link;
      return false;
    }
    if (seen_ == nullptr) {
      seen_ = std::make_unique<absl::flat_hash_set<Offset>>();
      seen_->insert(first_);
    }
    return !seen_->insert(link).second;
  }
  if (accepted_ > 0 && link == saved_) return true;
  if ((accepted_ & (accepted_ + 1)) == 0) saved_ = link;  // steps 1, 2, 4, 8, ... (1-based)
  return false;
}

bool ChainWalk::Continues(Offset link) {
  if (end_ != End::kWalking) return false;  // (W4)
  if (link == kNullOffset) return Stop(End::kNull, kNullOffset);
  if (!Accepts(link)) return Stop(End::kNotABlock, link);  // (W1)
  if (accepted_ >= budget_) {
    budget_ = Bounds().MaxBlocks(bytes_);  // (W2) the mapping may have grown meanwhile
    if (accepted_ >= budget_) return Stop(End::kTooLong, link);
  }
  if (Repeat(link)) return Stop(End::kRepeat, link);  // (W3)
  ++accepted_;
  return true;
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

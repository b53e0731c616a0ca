// The first bytes of a new domain that are not zero: the header, then the allocator's formatted
// state. Every other byte of a new domain (slots, atom table, data) starts as zero. Both ways of
// creating a domain (a file built unnamed and linked into place, or in-process memory) lay down
// exactly this prefix, so a domain is complete before anyone can see it.
#ifndef ATOMAP_SRC_FILE_INITIAL_PREFIX_H_
#define ATOMAP_SRC_FILE_INITIAL_PREFIX_H_

#include <cstdint>
#include <memory>

#include "common/layout.h"
#include "file/header.h"

namespace atomap::internal {

struct alignas(64) InitialPrefix {
  std::uint8_t bytes[kHeaderBytes + kAllocatorStateBytes];
};

// REQUIRES: header.allocator_state_offset == kHeaderBytes (ComputeLayout's).
std::unique_ptr<InitialPrefix> MakeInitialPrefix(const Header& header);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_FILE_INITIAL_PREFIX_H_

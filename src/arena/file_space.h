// Backing a domain file's bytes with real blocks. A store through a shared mapping into a hole of
// a file whose file system is full gets SIGBUS from the kernel, not an error; so every byte the
// library will write through a mapping is allocated first, by a call that can fail politely.
#ifndef ATOMAP_SRC_ARENA_FILE_SPACE_H_
#define ATOMAP_SRC_ARENA_FILE_SPACE_H_

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"

namespace atomap::internal {

// What to do where the file system has no fallocate (EOPNOTSUPP).
enum class ZeroFill {
  // Leave the range as it is. For ranges that other processes may be writing through their
  // mappings right now: writing zeros there would overwrite their stores.
  kNever,
  // Write zeros over the range, so that its blocks are real. Only for ranges nobody uses yet: a
  // file not yet linked into place, or bytes past the domain's published size (Arena I3).
  kAllowed,
};

// Allocates the blocks of [offset, offset + length) of `fd`, extending the file if the range
// ends past its end; bytes already there are unchanged (fallocate mode 0). ResourceExhausted,
// naming `path` and `what` (e.g. "growing the domain to 4194304 bytes"), when the device or the
// quota is full: the file's length may then have grown by what was allocated, never shrunk.
absl::Status AllocateFileRange(int fd, std::uint64_t offset, std::uint64_t length,
                               std::string_view path, std::string_view what, ZeroFill zero_fill);

// Testing only: behave as on a file system without fallocate (the zero-filling fallback).
void ForceNoFallocateForTesting(bool force);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_ARENA_FILE_SPACE_H_

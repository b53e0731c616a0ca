// KeyHasher's hash, inlined where a key is hashed on a hot path (Map::get, issue 14).
//
// XXH3 of a short key is about 20 instructions; calling KeyHasher (a branch on the kind, a call,
// the register saves and spills the call forces on its caller) cost as much again. This header
// lets a caller compile XXH3 in place (xxhash's XXH_INLINE_ALL: every xxhash symbol becomes
// static to the including file), with the same function and seed as KeyHasher::Xxh3, so both
// give the same hash. Include it only from .cc files that need it: it brings all of xxhash.h.
#ifndef ATOMAP_SRC_COMMON_HASH_INLINE_H_
#define ATOMAP_SRC_COMMON_HASH_INLINE_H_

#include <cstdint>
#include <string_view>

#include "common/hash.h"

#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#include <xxhash.h>

namespace atomap::internal {

// The same value as hasher(key).
inline std::uint64_t HashInline(const KeyHasher& hasher, std::string_view key) {
  if (hasher.kind() == HashKind::kXxh3) [[likely]] {
    return XXH3_64bits_withSeed(key.data(), key.size(), hasher.seed());
  }
  return hasher(key);  // kTestWeak: tests only
}

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_COMMON_HASH_INLINE_H_

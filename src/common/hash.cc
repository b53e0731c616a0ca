#include "common/hash.h"

#include <sys/random.h>

#include <cstring>
#include <string>

#include "common/hash_inline.h"  // xxhash, configured once for both

namespace atomap::internal {

bool IsKnownHashKind(std::uint32_t kind) {
  return kind == static_cast<std::uint32_t>(HashKind::kXxh3) ||
         kind == static_cast<std::uint32_t>(HashKind::kTestWeak);
}

std::uint64_t KeyHasher::Xxh3(std::string_view key) const {
  return XXH3_64bits_withSeed(key.data(), key.size(), seed_);
}

std::uint64_t KeyHasher::Weak(std::string_view key) const {
  if (key.empty()) return Xxh3(key) & 0xFFF0;
  char buf[64];
  std::string heap;
  char* copy = buf;
  if (key.size() > sizeof buf) {
    heap.assign(key);
    copy = heap.data();
  } else {
    std::memcpy(buf, key.data(), key.size());
  }
  copy[key.size() - 1] = static_cast<char>(copy[key.size() - 1] & ~0x0F);
  return XXH3_64bits_withSeed(copy, key.size(), seed_) & 0xFFF0;
}

std::uint64_t RandomSeed() {
  std::uint64_t seed = 0;
  while (getrandom(&seed, sizeof seed, 0) != sizeof seed) {
  }
  return seed;
}

}  // namespace atomap::internal

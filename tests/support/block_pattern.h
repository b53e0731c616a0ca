// A recognisable pattern written into allocated blocks, so that a test notices a block that was
// handed out twice, overlapped, or overwritten while it was live: the first 256 bytes and the
// last 64 (the whole block if smaller), derived from the block's offset and a per-allocation
// seed.
#ifndef ATOMAP_TESTS_SUPPORT_BLOCK_PATTERN_H_
#define ATOMAP_TESTS_SUPPORT_BLOCK_PATTERN_H_

#include <cstdint>

#include "arena/arena.h"
#include "common/offset.h"

namespace atomap::internal {

inline std::uint64_t PatternWord(Offset off, std::uint64_t seed, std::uint64_t i) {
  return (off * 0x9E3779B97F4A7C15ULL) ^ (seed << 20) ^ (i * 0xBF58476D1CE4E5B9ULL);
}

template <class F>
void ForPatternWords(std::uint64_t bytes, F f) {
  const std::uint64_t words = bytes / 8;
  for (std::uint64_t i = 0; i < words; ++i) {
    if (i < 32 || i + 8 >= words) f(i);
  }
}

// REQUIRES (both): [off, off + bytes) is mapped.
inline void FillPattern(const Arena& arena, Offset off, std::uint64_t bytes, std::uint64_t seed) {
  auto* w = arena.At<std::uint64_t>(off);
  ForPatternWords(bytes, [&](std::uint64_t i) { w[i] = PatternWord(off, seed, i); });
}

inline bool PatternIntact(const Arena& arena, Offset off, std::uint64_t bytes, std::uint64_t seed) {
  const auto* w = arena.At<std::uint64_t>(off);
  bool ok = true;
  ForPatternWords(bytes, [&](std::uint64_t i) { ok = ok && w[i] == PatternWord(off, seed, i); });
  return ok;
}

}  // namespace atomap::internal

#endif  // ATOMAP_TESTS_SUPPORT_BLOCK_PATTERN_H_

// Reading the key and value bytes of an entry, wherever they live (inline word or blob).
//
// The views returned point into the mapping (zero-copy): into the node itself for inline bytes,
// into the blob otherwise. They stay valid while the version that reached the entry is alive
// (see node.h, N2).
#ifndef ATOMAP_SRC_HAMT_ENTRY_H_
#define ATOMAP_SRC_HAMT_ENTRY_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "arena/arena.h"
#include "hamt/node.h"

namespace atomap::internal::hamt {

inline std::string_view BytesOf(const Arena& arena, const std::uint64_t& word, std::uint32_t len) {
  const char* p = IsInline(len) ? reinterpret_cast<const char*>(&word) : arena.At<const char>(word);
  return {p, len};
}
inline std::string_view KeyOf(const Arena& arena, const Entry& e) {
  return BytesOf(arena, e.key_word, e.key_len);
}
inline std::string_view ValueOf(const Arena& arena, const Entry& e) {
  return BytesOf(arena, e.value_word, e.value_len);
}

// The inline word of at most 8 bytes (zero padded). Eight bytes (a u64 key, the common case) is
// one load; a memcpy of a length unknown here is a library call (12 instructions of a get).
inline std::uint64_t InlineWord(std::string_view bytes) {
  std::uint64_t word = 0;
  if (bytes.size() == kInlineBytes) {
    std::memcpy(&word, bytes.data(), kInlineBytes);
  } else if (!bytes.empty()) {  // an empty view may hold a null pointer, which memcpy must not get
    std::memcpy(&word, bytes.data(), bytes.size());
  }
  return word;
}

// A key prepared for repeated comparison against entries along a path.
class ProbeKey {
 public:
  explicit ProbeKey(std::string_view key)
      : key_(key), word_(IsInline(Len()) ? InlineWord(key) : 0) {}
  std::string_view bytes() const { return key_; }

  bool Matches(const Arena& arena, const Entry& e) const {
    if (e.key_len != Len()) return false;
    if (IsInline(e.key_len)) [[likely]] {
      return e.key_word == word_;
    }
    return MatchesBlob(arena.At<const char>(e.key_word), key_.data(), key_.size());
  }

 private:
  // Out of line, and static (no `this`, so the ProbeKey need not be spilled to memory): the
  // memcmp call would make every caller's walk save and restore registers for keys of at most
  // 8 bytes too.
  [[gnu::noinline]] static bool MatchesBlob(const char* blob, const char* key, std::size_t n) {
    return std::memcmp(blob, key, n) == 0;
  }
  std::uint32_t Len() const { return static_cast<std::uint32_t>(key_.size()); }
  std::string_view key_;
  std::uint64_t word_;
};

inline bool SameBytes(const Arena& arena, const std::uint64_t& wa, std::uint32_t la,
                      const std::uint64_t& wb, std::uint32_t lb) {
  if (la != lb) return false;
  if (wa == wb) return true;  // equal inline bytes, or the very same blob
  return !IsInline(la) && BytesOf(arena, wa, la) == BytesOf(arena, wb, lb);
}
inline bool SameKey(const Arena& arena, const Entry& a, const Entry& b) {
  return SameBytes(arena, a.key_word, a.key_len, b.key_word, b.key_len);
}
inline bool SameValue(const Arena& arena, const Entry& a, const Entry& b) {
  return SameBytes(arena, a.value_word, a.value_len, b.value_word, b.value_len);
}

}  // namespace atomap::internal::hamt

#endif  // ATOMAP_SRC_HAMT_ENTRY_H_

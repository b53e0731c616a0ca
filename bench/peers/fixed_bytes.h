// Fixed-size key and value types for the peers that store plain C++ objects (Boost.Interprocess
// and std::unordered_map): u64 for 8 bytes, a byte array otherwise; conversion from the byte
// strings the workloads pass.
#ifndef ATOMAP_BENCH_PEERS_FIXED_BYTES_H_
#define ATOMAP_BENCH_PEERS_FIXED_BYTES_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string_view>
#include <type_traits>

namespace atomap::peers {

template <std::size_t N>
struct ByteArray {
  char bytes[N];
  friend bool operator==(const ByteArray& a, const ByteArray& b) {
    return std::memcmp(a.bytes, b.bytes, N) == 0;
  }
};

template <std::size_t N>
using Fixed = std::conditional_t<N == 8, std::uint64_t, ByteArray<N>>;

// std::hash for u64 (identity, as both std and Boost containers use it); the bytes' string hash
// for arrays.
struct FixedHash {
  std::size_t operator()(std::uint64_t v) const { return std::hash<std::uint64_t>{}(v); }
  template <std::size_t N>
  std::size_t operator()(const ByteArray<N>& v) const {
    return std::hash<std::string_view>{}(std::string_view(v.bytes, N));
  }
};

// REQUIRES: bytes.size() == sizeof(T).
template <class T>
T FromBytes(std::string_view bytes) {
  T out;
  std::memcpy(&out, bytes.data(), sizeof(T));
  return out;
}

template <class T>
std::uint64_t First8(const T& v) {
  std::uint64_t out;
  std::memcpy(&out, &v, 8);
  return out;
}

}  // namespace atomap::peers

#endif  // ATOMAP_BENCH_PEERS_FIXED_BYTES_H_

// Keys and values of the peer benchmarks: the entry i of a shape (u64 -> u64, or 16-byte keys
// with 100-byte values, or any value size for the attach workload), built the same way for
// every system. Walks use the trie benchmarks' scattered order (bench/hamt_workload.h).
#ifndef ATOMAP_BENCH_PEERS_KEYS_H_
#define ATOMAP_BENCH_PEERS_KEYS_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace atomap::peers {

class Keys {
 public:
  Keys(std::string label, std::uint32_t key_bytes, std::uint32_t value_bytes)
      : label_(std::move(label)),
        key_bytes_(key_bytes),
        value_bytes_(value_bytes),
        value_(value_bytes, 'v') {}

  const std::string& label() const { return label_; }
  std::uint32_t key_bytes() const { return key_bytes_; }
  std::uint32_t value_bytes() const { return value_bytes_; }

  // Key i: its 8 native bytes, then (16-byte keys) 8 more derived from it.
  std::string_view Key(std::uint64_t i) const {
    std::memcpy(key_, &i, 8);
    if (key_bytes_ == 16) {
      const std::uint64_t hi = i * 0x9E3779B97F4A7C15ull;
      std::memcpy(key_ + 8, &hi, 8);
    }
    return {key_, key_bytes_};
  }
  // Value of key i at generation gen: first 8 bytes i * 3 + gen, the rest constant filler.
  // The view is valid until the next Value call.
  std::string_view Value(std::uint64_t i, std::uint64_t gen = 0) const {
    const std::uint64_t v = i * 3 + gen;
    std::memcpy(value_.data(), &v, 8);
    return value_;
  }

 private:
  std::string label_;
  std::uint32_t key_bytes_;
  std::uint32_t value_bytes_;
  mutable char key_[16] = {};
  mutable std::string value_;
};

}  // namespace atomap::peers

#endif  // ATOMAP_BENCH_PEERS_KEYS_H_

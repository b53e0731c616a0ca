// The keyed, stable hash of every key and atom name stored in a domain.
//
// XXH3-64 with the domain's random seed (chosen at creation, stored in the header): stable across
// processes, builds and restarts, and an attacker who does not know the seed cannot pick keys
// that collide (hash flooding). Never std::hash or absl::Hash for anything stored: both may
// differ between processes or builds.
//
// kTestWeak exists so that tests can force collisions at every depth of the trie: it keeps 12
// bits of the real hash (bits 4..15; all others zero), and ignores the low 4 bits of a key's last
// byte, so keys that differ only there collide in all 64 bits and groups of about 4096 share
// every level below the third. A domain records its hash kind in the header; opening it needs no
// choice by the user.
#ifndef ATOMAP_SRC_COMMON_HASH_H_
#define ATOMAP_SRC_COMMON_HASH_H_

#include <cstdint>
#include <string_view>

namespace atomap::internal {

enum class HashKind : std::uint32_t {
  kXxh3 = 1,
  kTestWeak = 2,
};

bool IsKnownHashKind(std::uint32_t kind);

// The hash function of a domain: its kind and its seed. Cheap to copy.
class KeyHasher {
 public:
  KeyHasher() = default;
  KeyHasher(HashKind kind, std::uint64_t seed) : kind_(kind), seed_(seed) {}

  std::uint64_t operator()(std::string_view key) const {
    return kind_ == HashKind::kXxh3 ? Xxh3(key) : Weak(key);
  }

  HashKind kind() const { return kind_; }
  std::uint64_t seed() const { return seed_; }

 private:
  std::uint64_t Xxh3(std::string_view key) const;
  std::uint64_t Weak(std::string_view key) const;

  HashKind kind_ = HashKind::kXxh3;
  std::uint64_t seed_ = 0;
};

// A fresh random seed from the kernel (getrandom).
std::uint64_t RandomSeed();

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_COMMON_HASH_H_

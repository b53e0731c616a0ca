// Workloads of the trie benchmarks on u64 -> u64 maps, written once so that a peer-comparison
// program (LMDB, immer, ...) can run the same operations on the same key sequences.
//
// Keys are the 8 native bytes of 0..n-1; values the 8 bytes of key * 3 (+ a generation for
// updates). Lookups and updates walk keys in a fixed scattered order (a multiplicative
// permutation), so no run is a sequential scan.
#ifndef ATOMAP_BENCH_HAMT_WORKLOAD_H_
#define ATOMAP_BENCH_HAMT_WORKLOAD_H_

#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>

#include "hamt/scratch_domain.h"

namespace atomap::bench {

using internal::Offset;
using internal::hamt::CommitResult;
using internal::hamt::ScratchDomain;
using internal::hamt::TrieTransaction;

// The native bytes of a u64, as a key or value.
class U64Bytes {
 public:
  explicit U64Bytes(std::uint64_t v) { std::memcpy(bytes_, &v, sizeof v); }
  std::string_view view() const { return {bytes_, sizeof bytes_}; }

 private:
  char bytes_[8];
};

// The i-th key of a walk over [0, n) in a fixed scattered order: a permutation of [0, n) for
// the first n steps when n has no factor 2654435761 (a prime), true of every size used here.
inline std::uint64_t ScatteredKey(std::uint64_t i, std::uint64_t n) {
  return (i % n) * 2654435761ull % n;
}

// Builds keys [0, n) -> key * 3 in one transaction and commits it. Aborts the program on error
// (a benchmark has no recovery).
inline CommitResult BuildU64(ScratchDomain& domain, Offset base, std::uint64_t n) {
  TrieTransaction tx(domain.context(), base);
  for (std::uint64_t k = 0; k < n; ++k) {
    if (!tx.Set(U64Bytes(k).view(), U64Bytes(k * 3).view()).ok()) std::abort();
  }
  return std::move(tx.Commit().value());
}

// One transaction that sets (or, with erase, removes) one key; commits it and frees what it
// replaced at once (no reader holds the old version in a benchmark). Returns the new version.
inline Offset CommitOneU64(ScratchDomain& domain, Offset base, std::uint64_t key,
                           std::uint64_t value, bool erase = false) {
  TrieTransaction tx(domain.context(), base);
  const absl::Status s = erase ? tx.Erase(U64Bytes(key).view()).status()
                               : tx.Set(U64Bytes(key).view(), U64Bytes(value).view());
  if (!s.ok()) std::abort();
  CommitResult r = std::move(tx.Commit().value());
  domain.Free(r.replaced);
  return r.version;
}

// A version that differs from `base` in `changes` keys (values rewritten), as one commit.
// The base stays alive (its replaced blocks are not freed).
inline Offset ChangeKeysU64(ScratchDomain& domain, Offset base, std::uint64_t n,
                            std::uint64_t changes) {
  TrieTransaction tx(domain.context(), base);
  for (std::uint64_t i = 0; i < changes; ++i) {
    const std::uint64_t k = ScatteredKey(i, n);
    if (!tx.Set(U64Bytes(k).view(), U64Bytes(k + 1).view()).ok()) std::abort();
  }
  return tx.Commit().value().version;
}

}  // namespace atomap::bench

#endif  // ATOMAP_BENCH_HAMT_WORKLOAD_H_

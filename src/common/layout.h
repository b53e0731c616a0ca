// Fixed sizes of the regions at the start of a domain file. These are the contract between the
// layers that share the file: the domain (header, slot table, atom table), the allocator (its
// shared state and each slot's cache) and the reclamation layer (each slot's retire list).
// Changing any of them changes the file format: bump kFormatVersion and update docs/format.md.
//
//   [0, kHeaderBytes)                      header (immutable part checksummed, mutable part after)
//   [kHeaderBytes, +kAllocatorStateBytes)  AllocatorState
//   slot table: slot_capacity * kSlotBytes
//   atom table: index words, then records
//   data region (page aligned) — the allocator's blocks
#ifndef ATOMAP_SRC_COMMON_LAYOUT_H_
#define ATOMAP_SRC_COMMON_LAYOUT_H_

#include <cstdint>

namespace atomap::internal {

// The one source of the format version: CMake reads it from this line into the installed
// ATOMAP_FORMAT_VERSION (cmake/version.h.in; file/header.cc asserts the two agree). No include of
// the generated header here: internal headers must compile without a build tree (fuzz/build.sh).
inline constexpr std::uint32_t kFormatVersion = 5;

inline constexpr std::uint64_t kHeaderBytes = 4096;
inline constexpr std::uint64_t kAllocatorStateBytes = 4096;

// One participant slot. Three parts, each starting on its own cache line:
//   [0, 64)      liveness and the pinned epoch: written by the owner, read by reclaimers
//   [64, 256)    reclamation: retire-list heads and intent records (the atoms layer)
//   [256, 832)   the allocator's per-participant cache (ParticipantCache), then reserved
//   [832, 1024)  the combining mailbox (since format 5; reserved and zero before)
inline constexpr std::uint64_t kSlotBytes = 1024;
inline constexpr std::uint64_t kSlotReclaimOffset = 64;
inline constexpr std::uint64_t kSlotReclaimBytes = 192;
inline constexpr std::uint64_t kSlotAllocCacheOffset = 256;
inline constexpr std::uint64_t kSlotAllocCacheBytes = 768;
static_assert(kSlotAllocCacheOffset + kSlotAllocCacheBytes == kSlotBytes);
static_assert(kSlotReclaimOffset + kSlotReclaimBytes == kSlotAllocCacheOffset);
// The combining mailbox: the last three cache lines of the allocator's part, which the
// ParticipantCache (544 bytes) never reached. Kept across owners (not zeroed at a claim).
inline constexpr std::uint64_t kSlotCombineOffset = 832;
inline constexpr std::uint64_t kSlotCombineBytes = 192;
static_assert(kSlotCombineOffset + kSlotCombineBytes == kSlotBytes);
static_assert(kSlotCombineOffset % 64 == 0);
// Where, in a slot's first cache line, the reclamation layer's pinned-epoch word lives.
inline constexpr std::uint64_t kSlotPinnedEpochOffset = 16;

inline constexpr std::uint32_t kDefaultSlotCapacity = 1024;
inline constexpr std::uint32_t kDefaultAtomCapacity = 4096;
inline constexpr std::uint32_t kMaxAtomNameBytes = 255;

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_COMMON_LAYOUT_H_

// An allocator over an in-process (anonymous) arena, for tests of the allocator and of what is
// built on it without a domain (the retire list):
//
//   [0, kHeaderBytes)                       header (unused here)
//   [kHeaderBytes, +kAllocatorStateBytes)   AllocatorState
//   slots: kTestSlots * kSlotBytes, each with its ParticipantCache at kSlotAllocCacheOffset
//   data region from kTestDataBegin, page aligned
#ifndef ATOMAP_TESTS_SUPPORT_TEST_ALLOCATOR_H_
#define ATOMAP_TESTS_SUPPORT_TEST_ALLOCATOR_H_

#include <catch2/catch.hpp>
#include <cstdint>
#include <memory>
#include <vector>

#include "alloc/allocator.h"
#include "alloc/allocator_state.h"
#include "arena/arena.h"
#include "common/layout.h"

namespace atomap::internal {

inline constexpr std::uint64_t kTestSlots = 8;
inline constexpr std::uint64_t kTestSlotsBegin = kHeaderBytes + kAllocatorStateBytes;
inline constexpr std::uint64_t kTestDataBegin =
    RoundUp(kTestSlotsBegin + kTestSlots * kSlotBytes, 4096);

struct TestAllocator {
  explicit TestAllocator(std::uint64_t max_size, std::uint64_t initial_size = kTestDataBegin) {
    auto a = Arena::Anonymous(max_size, initial_size);
    REQUIRE(a.ok());
    arena = std::move(*a);
    state = arena->At<AllocatorState>(kHeaderBytes);
    Allocator::Format(state, kTestDataBegin);
    alloc = std::make_unique<Allocator>(arena.get(), state);
    for (std::uint64_t i = 0; i < kTestSlots; ++i) {
      caches.push_back(arena->At<ParticipantCache>(SlotBegin(i) + kSlotAllocCacheOffset));
      Allocator::FormatCache(caches.back());
    }
  }
  static Offset SlotBegin(std::uint64_t slot) { return kTestSlotsBegin + slot * kSlotBytes; }
  AllocatorStats Stats() const {
    return alloc->Stats(std::vector<const ParticipantCache*>(caches.begin(), caches.end()));
  }

  std::unique_ptr<Arena> arena;
  AllocatorState* state = nullptr;
  std::unique_ptr<Allocator> alloc;
  std::vector<ParticipantCache*> caches;
};

}  // namespace atomap::internal

#endif  // ATOMAP_TESTS_SUPPORT_TEST_ALLOCATOR_H_

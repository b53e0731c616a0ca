// Allocator micro-benchmarks (in-process arena; noisy on a 2-core machine — compare ranges).
//   BM_AllocFreePair/<bytes>   the hot path: Allocate then Free of one block (a cache hit)
//   BM_AllocMany/<bytes>       allocate 64K blocks then free them: carving, spills to the shared
//                              lists and refills from them
//   BM_AllocFreeThreads        the hot path from several threads, each with its own cache
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "alloc/allocator.h"
#include "alloc/allocator_state.h"
#include "arena/arena.h"
#include "common/layout.h"

namespace atomap::internal {
namespace {

constexpr std::uint64_t kSlots = 16;
constexpr std::uint64_t kSlotsBegin = kHeaderBytes + kAllocatorStateBytes;
constexpr std::uint64_t kDataBegin = RoundUp(kSlotsBegin + kSlots * kSlotBytes, 4096);

struct BenchAllocator {
  BenchAllocator() {
    arena = std::move(*Arena::Anonymous(std::uint64_t{16} << 30, kDataBegin));
    auto* state = arena->At<AllocatorState>(kHeaderBytes);
    Allocator::Format(state, kDataBegin);
    alloc = std::make_unique<Allocator>(arena.get(), state);
    for (std::uint64_t i = 0; i < kSlots; ++i) {
      caches.push_back(
          arena->At<ParticipantCache>(kSlotsBegin + i * kSlotBytes + kSlotAllocCacheOffset));
      Allocator::FormatCache(caches.back());
    }
  }
  std::unique_ptr<Arena> arena;
  std::unique_ptr<Allocator> alloc;
  std::vector<ParticipantCache*> caches;
};

void BM_AllocFreePair(benchmark::State& state) {
  BenchAllocator b;
  const auto bytes = static_cast<std::uint64_t>(state.range(0));
  for (auto _ : state) {
    auto r = b.alloc->Allocate(b.caches[0], bytes);
    benchmark::DoNotOptimize(*r);
    b.alloc->Free(b.caches[0], *r, bytes);
  }
}
BENCHMARK(BM_AllocFreePair)->Arg(32)->Arg(56)->Arg(256)->Arg(4096)->Arg(65536);

void BM_AllocMany(benchmark::State& state) {
  BenchAllocator b;
  const auto bytes = static_cast<std::uint64_t>(state.range(0));
  std::vector<Offset> blocks(65536);
  for (auto _ : state) {
    for (Offset& off : blocks) off = *b.alloc->Allocate(b.caches[0], bytes);
    for (Offset off : blocks) b.alloc->Free(b.caches[1], off, bytes);  // spills to shared
    b.alloc->Flush(b.caches[1]);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(blocks.size()));
}
BENCHMARK(BM_AllocMany)->Arg(32)->Arg(56)->Arg(256);

void BM_AllocFreeThreads(benchmark::State& state) {
  static BenchAllocator* shared = new BenchAllocator();  // thread-safe init; lives to exit
  ParticipantCache* cache = shared->caches[static_cast<std::size_t>(state.thread_index())];
  for (auto _ : state) {
    auto r = shared->alloc->Allocate(cache, 56);
    benchmark::DoNotOptimize(*r);
    shared->alloc->Free(cache, *r, 56);
  }
}
BENCHMARK(BM_AllocFreeThreads)->Threads(1)->Threads(2);

}  // namespace
}  // namespace atomap::internal

BENCHMARK_MAIN();

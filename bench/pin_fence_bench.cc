// The asymmetric pin fence (epoch/pin_fence.h; docs/benchmarks.md, "The asymmetric fence"):
// wall clock only (callgrind does not show a fence's cost). Noisy on a 2-core machine: compare
// medians of repetitions (--benchmark_repetitions=5).
//   BM_PinFence/light|full    announcement store, PinFence(), one load: the pin's own edge
//   BM_LoadDrop/light|full    atom.load() and its destruction: a whole snapshot, in-process
//   BM_HeavyFence             one membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) with its fences
//   BM_TryAdvance/light|full  one TryAdvance of an idle 16-slot domain: (3H) against (3)
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <optional>

#include "atomap/atom.h"
#include "atomap/domain.h"
#include "common/heavy_fence.h"
#include "domain/domain_impl.h"
#include "epoch/pin_fence.h"

namespace atomap::internal {
namespace {

// Full pins in this process while `attachment` lives, as an attached kFull domain makes them
// (PF1), when the benchmark's argument asks for them.
void ForceFullIfAsked(const benchmark::State& state,
                      std::optional<PinFenceAttachment>& attachment) {
  if (state.range(0) != 0) attachment.emplace(PinFenceMode::kFull);
}

void BM_PinFence(benchmark::State& state) {
  PinFenceAttachment registered(PinFenceMode::kLight);
  std::optional<PinFenceAttachment> full;
  ForceFullIfAsked(state, full);
  alignas(64) std::atomic<std::uint64_t> announcement{0};
  alignas(64) std::atomic<std::uint64_t> root{42};
  std::uint64_t epoch = 0;
  for (auto _ : state) {
    announcement.store((++epoch << 1) | 1, std::memory_order_relaxed);
    PinFence();
    benchmark::DoNotOptimize(root.load(std::memory_order_relaxed));
    announcement.store(0, std::memory_order_release);
  }
  state.SetLabel(PinsAreLight() ? "light" : "full");
}
BENCHMARK(BM_PinFence)->Arg(0)->Arg(1)->ArgName("full");

Domain OpenInProcess() {
  Options options;
  options.kind = DomainKind::kInProcess;
  options.max_size = std::uint64_t{64} << 20;
  options.slot_capacity = 16;
  options.atom_capacity = 16;
  return *Domain::Open("pin-fence-bench", options);
}

void BM_LoadDrop(benchmark::State& state) {
  Domain domain = OpenInProcess();
  std::optional<PinFenceAttachment> full;
  ForceFullIfAsked(state, full);
  Atom atom = *domain.atom("a");
  (void)atom.swap([](Transaction& tx) { return tx.set("k", "v"); });
  for (auto _ : state) {
    absl::StatusOr<Snapshot> snapshot = atom.load();
    benchmark::DoNotOptimize(snapshot);
  }
  state.SetLabel(PinsAreLight() ? "light" : "full");
}
BENCHMARK(BM_LoadDrop)->Arg(0)->Arg(1)->ArgName("full");

void BM_HeavyFence(benchmark::State& state) {
  PinFenceAttachment registered(PinFenceMode::kLight);
  bool issued = true;
  for (auto _ : state) issued &= HeavyFence();
  if (!issued) state.SkipWithError("membarrier GLOBAL_EXPEDITED failed");
}
BENCHMARK(BM_HeavyFence);

void BM_TryAdvance(benchmark::State& state) {
  const bool full = state.range(0) != 0;
  SetHeavyFencesUnavailableForTesting(full);  // the creator's answer decides the header's mode
  Domain domain = OpenInProcess();
  SetHeavyFencesUnavailableForTesting(false);
  const EpochTable epochs = Access(domain).epochs();
  for (auto _ : state) benchmark::DoNotOptimize(epochs.TryAdvance());
  state.SetLabel(epochs.fence_mode() == PinFenceMode::kLight ? "light domain (3H)"
                                                             : "full domain (3)");
}
BENCHMARK(BM_TryAdvance)->Arg(0)->Arg(1)->ArgName("full");

}  // namespace
}  // namespace atomap::internal

BENCHMARK_MAIN();

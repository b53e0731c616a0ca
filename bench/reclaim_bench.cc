// The swap's tail (issue 14): the per-swap latency distribution of single-key swaps on a 1M-entry
// u64 -> u64 map in a domain file (p50, p99, max over every swap of the run, as counters), and
// the cost of one EpochTable::TryAdvance with 1, 64 or 1024 writer slots in use (below the slot
// table's high water), against the scan of the whole 1024-slot table that every pass made
// before the high water existed (BM_TryAdvanceWholeTable).
//
//   build/release/bench/reclaim_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "atomap/domain.h"
#include "atomap/options.h"
#include "epoch/epoch_table.h"
#include "file/slot.h"
#include "hamt_workload.h"  // ScatteredKey

namespace atomap::bench {
namespace {

constexpr std::uint64_t kEntries = 1'000'000;

std::string U64(std::uint64_t v) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &v, 8);
  return s;
}

// A domain file holding kEntries keys, built once per process in a fresh directory.
struct LoadedDomain {
  LoadedDomain() {
    char tmpl[] = "/tmp/atomap-reclaim-bench.XXXXXX";
    dir = mkdtemp(tmpl);
    Options options;
    options.max_size = std::uint64_t{4} << 30;  // valgrind cannot reserve the default 64 GiB
    domain.emplace(*Domain::Open(dir + "/data.atomap", options));
    atom.emplace(*domain->atom("bench"));
    (void)atom->swap([](Transaction& tx) {
      for (std::uint64_t i = 0; i < kEntries; ++i) {
        if (absl::Status s = tx.set(U64(i), U64(i)); !s.ok()) return s;
      }
      return absl::OkStatus();
    });
  }
  ~LoadedDomain() {
    atom.reset();
    domain.reset();
    std::filesystem::remove_all(dir);
  }
  std::string dir;
  std::optional<Domain> domain;
  std::optional<Atom> atom;
};

LoadedDomain& Loaded() {
  static LoadedDomain loaded;
  return loaded;
}

double Quantile(std::vector<std::uint64_t>& ns, double q) {
  std::sort(ns.begin(), ns.end());
  return static_cast<double>(ns[std::min(ns.size() - 1, static_cast<std::size_t>(q * ns.size()))]);
}

// One swap per iteration, each timed alone: the reclamation a swap does (its bounded frees, and
// every kRetiresPerReclaim-th swap's epoch scan) is inside the timed region.
void BM_SwapTail(benchmark::State& state) {
  LoadedDomain& d = Loaded();
  std::vector<std::uint64_t> each;
  each.reserve(1 << 20);
  std::uint64_t i = 0;
  for (auto _ : state) {
    const std::uint64_t k = ScatteredKey(i, kEntries);
    const std::string key = U64(k), value = U64(k + ++i);
    const auto t0 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(d.atom->swap([&](Transaction& tx) { return tx.set(key, value); }));
    each.push_back(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
            .count()));
  }
  state.counters["p50_ns"] = Quantile(each, 0.50);
  state.counters["p99_ns"] = Quantile(each, 0.99);
  state.counters["max_ns"] = static_cast<double>(each.back());
  state.counters["pending_blocks"] = static_cast<double>(d.domain->stats().pending_garbage_blocks);
}
BENCHMARK(BM_SwapTail)->Iterations(200'000)->Unit(benchmark::kMicrosecond);

// A slot table of 1024 slots (the default capacity) of which the first `in_use` were ever
// claimed (the high water). None is pinned: each scan reads every announcement below the high
// water, finds no blocker and advances G, the common case of a writer's periodic scan.
struct SlotTableImage {
  static constexpr std::uint32_t kCapacity = 1024;
  explicit SlotTableImage(std::uint32_t in_use) : slots(kCapacity) { high_water.InitPlain(in_use); }
  alignas(64) internal::SharedU64 global_epoch{};
  alignas(64) internal::SharedU32 high_water{};
  std::vector<internal::Slot> slots;
};

void ScanLoop(benchmark::State& state, const internal::SharedU32* high_water,
              SlotTableImage& image) {
  const internal::EpochTable epochs(&image.global_epoch, image.slots.data(),
                                    SlotTableImage::kCapacity, nullptr, nullptr, high_water);
  for (auto _ : state) benchmark::DoNotOptimize(epochs.TryAdvance());
}

void BM_TryAdvance(benchmark::State& state) {
  SlotTableImage image(static_cast<std::uint32_t>(state.range(0)));
  ScanLoop(state, &image.high_water, image);
}
BENCHMARK(BM_TryAdvance)->Arg(1)->Arg(64)->Arg(1024);

// Before the high water: every scan read all 1024 announcements, whatever was in use.
void BM_TryAdvanceWholeTable(benchmark::State& state) {
  SlotTableImage image(1);
  ScanLoop(state, nullptr, image);
}
BENCHMARK(BM_TryAdvanceWholeTable);

}  // namespace
}  // namespace atomap::bench

BENCHMARK_MAIN();

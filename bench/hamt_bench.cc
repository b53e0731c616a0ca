// Micro-benchmarks of the trie on u64 -> u64 maps of 1K, 1M (and, with ATOMAP_BENCH_10M=1,
// 10M) entries: get (trusting, and bounds-checked as with Options::verify_reads), single-key
// update and erase as committed versions, iteration, bulk build,
// and diff of versions 1 or 100 keys apart. Each reports bytes_per_entry: the allocator's block
// bytes a version reaches, divided by its entries.
//
//   build/release/bench/hamt_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <map>
#include <memory>

#include "atomap/diff.h"
#include "hamt_workload.h"

namespace atomap::bench {
namespace {

// One domain per size holding the base version, built once and shared by the read-only
// benchmarks.
struct BuiltMap {
  std::unique_ptr<ScratchDomain> domain;
  Offset version;
};

BuiltMap& SharedMap(std::uint64_t n) {
  static std::map<std::uint64_t, BuiltMap> maps;
  auto it = maps.find(n);
  if (it == maps.end()) {
    auto domain = std::make_unique<ScratchDomain>(std::uint64_t{16} << 30);
    const Offset v = BuildU64(*domain, internal::kNullOffset, n).version;
    it = maps.emplace(n, BuiltMap{std::move(domain), v}).first;
  }
  return it->second;
}

// Frees a previous build entirely (every block `version` reaches), so that each iteration
// builds into the same space. A null version is nothing to free.
void FreeBuild(ScratchDomain& domain, Offset version) {
  if (version == internal::kNullOffset) return;
  std::vector<internal::hamt::Block> blocks;
  internal::hamt::ForEachBlock(domain.arena(), version, [&](Offset off, std::uint64_t bytes) {
    blocks.push_back({off, bytes});
  });
  domain.Free(blocks);
}

void ReportBytes(benchmark::State& state, const ScratchDomain& domain, Offset version,
                 std::uint64_t n) {
  state.counters["bytes_per_entry"] =
      static_cast<double>(domain.ReachableBytes({version})) / static_cast<double>(n);
}

void BM_Get(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  BuiltMap& built = SharedMap(n);
  const Map map = built.domain->MapOf(built.version);
  std::uint64_t i = 0;
  for (auto _ : state) {
    const U64Bytes key(ScatteredKey(i++, n));
    benchmark::DoNotOptimize(map.get(key.view()));
  }
  ReportBytes(state, *built.domain, built.version, n);
}

// get() on a domain opened with Options::verify_reads: every offset and bitmap on the path, and
// the entry's key and value, bounds-checked (hamt/read_bounds.h Bounded). Compare with BM_Get.
void BM_GetChecked(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  BuiltMap& built = SharedMap(n);
  internal::TrieContext checked = built.domain->context();
  checked.data_begin = ScratchDomain::kDataBegin;
  checked.verify_reads = true;
  const Map map = internal::MapAccess::Make(&checked, built.version);
  std::uint64_t i = 0;
  for (auto _ : state) {
    const U64Bytes key(ScatteredKey(i++, n));
    benchmark::DoNotOptimize(map.get(key.view()));
  }
}

void BM_UpdateOneKeyCommit(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  ScratchDomain domain(std::uint64_t{16} << 30);
  Offset version = BuildU64(domain, internal::kNullOffset, n).version;
  std::uint64_t i = 0;
  for (auto _ : state) {
    version = CommitOneU64(domain, version, ScatteredKey(i, n), i);
    ++i;
  }
  ReportBytes(state, domain, version, n);
}

void BM_EraseOneKeyCommit(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  ScratchDomain domain(std::uint64_t{16} << 30);
  Offset version = BuildU64(domain, internal::kNullOffset, n).version;
  std::uint64_t i = 0;
  for (auto _ : state) {
    const std::uint64_t key = ScatteredKey(i++, n);
    version = CommitOneU64(domain, version, key, 0, /*erase=*/true);
    state.PauseTiming();
    version = CommitOneU64(domain, version, key, key * 3);  // put it back: size stays n
    state.ResumeTiming();
  }
  ReportBytes(state, domain, version, n);
}

void BM_Iterate(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  BuiltMap& built = SharedMap(n);
  const Map map = built.domain->MapOf(built.version);
  for (auto _ : state) {
    std::uint64_t bytes = 0;
    map.ForEach([&](std::string_view k, std::string_view v) { bytes += k.size() + v.size(); });
    benchmark::DoNotOptimize(bytes);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
}

void BM_BulkBuild(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  ScratchDomain domain(std::uint64_t{16} << 30);
  Offset version = internal::kNullOffset;
  for (auto _ : state) {
    CommitResult r = BuildU64(domain, internal::kNullOffset, n);
    state.PauseTiming();
    FreeBuild(domain, version);
    version = r.version;
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
  ReportBytes(state, domain, version, n);
}

// The same entries through SetMany (the bottom-up build of bulk_build.cc); the entries are
// materialised once, outside the timing.
void BM_BulkSetMany(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  ScratchDomain domain(std::uint64_t{16} << 30);
  std::vector<U64Bytes> keys, values;
  std::vector<std::pair<std::string_view, std::string_view>> entries;
  keys.reserve(n);
  values.reserve(n);
  for (std::uint64_t k = 0; k < n; ++k) {
    keys.push_back(U64Bytes(k));
    values.push_back(U64Bytes(k * 3));
  }
  for (std::uint64_t k = 0; k < n; ++k) entries.emplace_back(keys[k].view(), values[k].view());
  Offset version = internal::kNullOffset;
  for (auto _ : state) {
    internal::hamt::TrieTransaction tx(domain.context(), internal::kNullOffset);
    if (!tx.SetMany(entries).ok()) std::abort();
    CommitResult r = std::move(tx.Commit().value());
    state.PauseTiming();
    FreeBuild(domain, version);
    version = r.version;
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * n));
  ReportBytes(state, domain, version, n);
}

void BM_Diff(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  const auto changes = static_cast<std::uint64_t>(state.range(1));
  BuiltMap& built = SharedMap(n);
  const Offset changed = ChangeKeysU64(*built.domain, built.version, n, changes);
  const Map before = built.domain->MapOf(built.version);
  const Map after = built.domain->MapOf(changed);
  for (auto _ : state) {
    absl::StatusOr<MapDiff> d = Diff(before, after);
    if (!d.ok() || d->changed.size() != changes) std::abort();
    benchmark::DoNotOptimize(d);
  }
}

bool Want10M() {
  const char* flag = std::getenv("ATOMAP_BENCH_10M");
  return flag != nullptr && flag[0] == '1';
}

void Sizes(benchmark::internal::Benchmark* b) {
  b->Arg(1'000)->Arg(1'000'000);
  if (Want10M()) b->Arg(10'000'000);
}

void DiffSizes(benchmark::internal::Benchmark* b) {
  for (std::int64_t n : {std::int64_t{1'000}, std::int64_t{1'000'000}}) {
    b->Args({n, 1})->Args({n, 100});
  }
  if (Want10M()) b->Args({10'000'000, 1})->Args({10'000'000, 100});
}

BENCHMARK(BM_Get)->Apply(Sizes);
BENCHMARK(BM_GetChecked)->Apply(Sizes);
BENCHMARK(BM_UpdateOneKeyCommit)->Apply(Sizes);
BENCHMARK(BM_EraseOneKeyCommit)->Apply(Sizes);
BENCHMARK(BM_Iterate)->Apply(Sizes)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BulkBuild)->Apply(Sizes)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BulkSetMany)->Apply(Sizes)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Diff)->Apply(DiffSizes)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace atomap::bench

BENCHMARK_MAIN();

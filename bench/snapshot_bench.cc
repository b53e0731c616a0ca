// Micro-benchmarks of the snapshot (issue 14): Atom::load() and dropping the Snapshot, hot (the
// same thread, again and again), for a writer participant and for a registered read-only reader;
// and load + one get + drop of a u64 -> u64 map of 1K and 1M entries (the peers' "get, own
// snapshot", without the peers' harness). A domain file in $TMPDIR (or /tmp) per size.
//
//   build/release/bench/snapshot_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only
//
// Instruction counts: `--count=N` runs N iterations of one loop between callgrind's start and stop
// of instrumentation instead of the benchmarks (loops: snapshot, reader_snapshot, get_1k, get_1m):
//
//   valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/dev/null
//       build/release/bench/snapshot_bench --count=1000000 --loop=get_1m   (one command line)
//   (the "Collected" total divided by N is the loop's instructions per iteration)
#include <benchmark/benchmark.h>
#include <unistd.h>
#include <valgrind/callgrind.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "atomap/domain.h"
#include "hamt_workload.h"  // U64Bytes, ScatteredKey

namespace atomap::bench {
namespace {

[[noreturn]] void Die(const absl::Status& s) {
  std::fprintf(stderr, "snapshot_bench: %s\n", s.ToString().c_str());
  std::abort();
}

// A domain file holding `n` entries k -> 3k in atom "bench", with a writer handle and a
// registered read-only handle on it. Removed at exit.
struct BenchDomain {
  std::string path;
  std::optional<Domain> writer;
  std::optional<Atom> writer_atom;
  std::optional<Domain> reader;
  std::optional<Atom> reader_atom;

  ~BenchDomain() {
    reader_atom.reset();
    reader.reset();
    writer_atom.reset();
    writer.reset();
    std::remove(path.c_str());
    std::remove((path + ".readers").c_str());
  }
};

template <class T>
T Must(absl::StatusOr<T> v) {
  if (!v.ok()) Die(v.status());
  return *std::move(v);
}

BenchDomain& SharedDomain(std::uint64_t n) {
  static std::map<std::uint64_t, std::unique_ptr<BenchDomain>> domains;
  auto it = domains.find(n);
  if (it != domains.end()) return *it->second;
  auto d = std::make_unique<BenchDomain>();
  const char* tmp = std::getenv("TMPDIR");
  d->path = std::string(tmp != nullptr ? tmp : "/tmp") + "/snapshot_bench." +
            std::to_string(getpid()) + "." + std::to_string(n) + ".atomap";
  Options options;
  options.max_size = std::uint64_t{4} << 30;  // valgrind reserves at most ~32 GiB
  d->writer.emplace(Must(Domain::Open(d->path, options)));
  d->writer_atom.emplace(Must(d->writer->atom("bench")));
  absl::StatusOr<Snapshot> built = d->writer_atom->swap([n](Transaction& tx) {
    for (std::uint64_t k = 0; k < n; ++k) {
      if (absl::Status s = tx.set(U64Bytes(k).view(), U64Bytes(3 * k).view()); !s.ok()) return s;
    }
    return absl::OkStatus();
  });
  if (!built.ok()) Die(built.status());
  options.read_only = true;
  d->reader.emplace(Must(Domain::Open(d->path, options)));
  d->reader_atom.emplace(Must(d->reader->atom("bench")));
  return *domains.emplace(n, std::move(d)).first->second;
}

// One snapshot, taken and dropped (kept in memory, so that nothing of it is optimised away).
inline void SnapshotOnce(const Atom& atom) {
  absl::StatusOr<Snapshot> snap = atom.load();
  if (!snap.ok()) Die(snap.status());
  benchmark::DoNotOptimize(snap);
}

// Load, one get of the i-th scattered key, drop.
inline void LoadGetOnce(const Atom& atom, std::uint64_t i, std::uint64_t n) {
  absl::StatusOr<Snapshot> snap = atom.load();
  if (!snap.ok()) Die(snap.status());
  const U64Bytes key(ScatteredKey(i, n));
  benchmark::DoNotOptimize(snap->map().get(key.view()));
}

void BM_Snapshot(benchmark::State& state) {
  const Atom& atom = *SharedDomain(1000).writer_atom;
  for (auto _ : state) SnapshotOnce(atom);
}
BENCHMARK(BM_Snapshot);

void BM_ReaderSnapshot(benchmark::State& state) {
  const Atom& atom = *SharedDomain(1000).reader_atom;
  for (auto _ : state) SnapshotOnce(atom);
}
BENCHMARK(BM_ReaderSnapshot);

// A snapshot nested in one the thread already holds (no announcement of its own: PS1).
void BM_NestedSnapshot(benchmark::State& state) {
  const Atom& atom = *SharedDomain(1000).writer_atom;
  const Snapshot outer = Must(atom.load());
  for (auto _ : state) SnapshotOnce(atom);
}
BENCHMARK(BM_NestedSnapshot);

void BM_LoadGet(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  const Atom& atom = *SharedDomain(n).writer_atom;
  std::uint64_t i = 0;
  for (auto _ : state) LoadGetOnce(atom, i++, n);
}
BENCHMARK(BM_LoadGet)->Arg(1000)->Arg(1000000);

// For comparison: the same gets, 1000 in one snapshot.
void BM_GetInBatch(benchmark::State& state) {
  const auto n = static_cast<std::uint64_t>(state.range(0));
  const Atom& atom = *SharedDomain(n).writer_atom;
  std::uint64_t i = 0;
  std::optional<Snapshot> snap;
  for (auto _ : state) {
    if (i % 1000 == 0) {
      snap.reset();
      snap.emplace(Must(atom.load()));
    }
    const U64Bytes key(ScatteredKey(i++, n));
    benchmark::DoNotOptimize(snap->map().get(key.view()));
  }
}
BENCHMARK(BM_GetInBatch)->Arg(1000)->Arg(1000000);

// --count=N --loop=NAME: N iterations of one loop under callgrind's instrumentation only.
int CountInstructions(std::uint64_t count, std::string_view loop) {
  const bool reader = loop == "reader_snapshot";
  const bool get = loop == "get_1k" || loop == "get_1m";
  if (!reader && !get && loop != "snapshot") {
    std::fprintf(stderr, "snapshot_bench: unknown --loop=%.*s\n", static_cast<int>(loop.size()),
                 loop.data());
    return 2;
  }
  const std::uint64_t n = loop == "get_1m" ? 1000000 : 1000;
  BenchDomain& d = SharedDomain(n);
  const Atom& atom = reader ? *d.reader_atom : *d.writer_atom;
  SnapshotOnce(atom);  // claims the thread's participant outside the count
  CALLGRIND_START_INSTRUMENTATION;
  for (std::uint64_t i = 0; i < count; ++i) {
    if (get) {
      LoadGetOnce(atom, i, n);
    } else {
      SnapshotOnce(atom);
    }
  }
  CALLGRIND_STOP_INSTRUMENTATION;
  std::printf("%s: %llu iterations\n", std::string(loop).c_str(),
              static_cast<unsigned long long>(count));
  return 0;
}

}  // namespace
}  // namespace atomap::bench

int main(int argc, char** argv) {
  std::uint64_t count = 0;
  std::string_view loop = "get_1m";
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.starts_with("--count=")) count = std::strtoull(argv[i] + 8, nullptr, 10);
    if (arg.starts_with("--loop=")) loop = arg.substr(7);
  }
  if (count > 0) return atomap::bench::CountInstructions(count, loop);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

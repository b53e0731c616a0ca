#include "workloads.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "hamt_workload.h"  // ScatteredKey
#include "measure.h"
#include "procs.h"

namespace atomap::peers {
namespace {

using atomap::bench::ScatteredKey;

std::uint64_t AllocatedBytes(const std::string& file) {
  struct stat st;
  if (file.empty() || stat(file.c_str(), &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

// A sink the optimizer cannot see through.
void Keep(std::uint64_t v) { asm volatile("" : : "r"(v) : "memory"); }

// Per-process timing of `ops` lookups, for the multi-process workloads.
ChildResult TimedLookups(System& s, const Keys& keys, std::uint64_t n, std::uint64_t ops,
                         std::uint64_t salt) {
  ChildResult r;
  const std::uint64_t t0 = NowNs();
  for (std::uint64_t i = 0; i < ops; ++i) Keep(s.Get(keys.Key(ScatteredKey(i + salt, n))));
  r.ns = NowNs() - t0;
  r.ops = ops;
  return r;
}

}  // namespace

namespace {

// The bytes_on_disk row of a store just loaded with `n` entries (nothing if it has no file).
void WriteSpaceRow(System& s, const std::string& workload, std::uint64_t n, Output& out) {
  const std::uint64_t disk = AllocatedBytes(s.DataFile());
  if (disk == 0) return;
  Row row{s.name(), workload, n, 1, Sample{n, 0, {}, {}}};
  row.extra["bytes_on_disk"] = disk;
  row.extra["bytes_per_entry"] = static_cast<double>(disk) / static_cast<double>(n);
  for (const auto& [name, bytes] : s.SpaceFigures()) {
    row.extra[name] = bytes;
    row.extra[name + "_per_entry"] = static_cast<double>(bytes) / static_cast<double>(n);
  }
  out.Write(row);
}

}  // namespace

void RunLoad(System& s, const Keys& keys, std::uint64_t n, const std::string& dir, Output& out) {
  s.Create(dir, keys, n);
  const Sample load = MeasureOnce(n, [&] { s.Load(keys, n); });
  out.Write({s.name(), "bulk_load_" + keys.label(), n, 1, load});
  WriteSpaceRow(s, "bytes_on_disk_" + keys.label(), n, out);
}

void RunLoadBatch(System& s, const Keys& keys, std::uint64_t n, const std::string& dir,
                  Output& out) {
  s.Create(dir, keys, n);
  s.PrepareBatch(keys, n);
  const Sample load = MeasureOnce(n, [&] { s.LoadBatch(keys, n); });
  out.Write({s.name(), "bulk_load_set_many_" + keys.label(), n, 1, load});
  WriteSpaceRow(s, "bytes_on_disk_set_many_" + keys.label(), n, out);
  s.Close();
}

void RunGet(System& s, const Keys& keys, std::uint64_t n, std::uint64_t ops, Output& out) {
  const Sample sample =
      Measure(ops, [&](std::uint64_t i) { Keep(s.Get(keys.Key(ScatteredKey(i, n)))); });
  out.Write({s.name(), "get_" + keys.label(), n, 1, sample});
}

void RunGetBatch(System& s, const Keys& keys, std::uint64_t n, std::uint64_t ops, Output& out) {
  constexpr std::uint64_t kBatch = 1000;
  const std::uint64_t batches = std::max<std::uint64_t>(1, ops / kBatch);
  std::vector<std::vector<std::string>> key_batches(batches);
  for (std::uint64_t b = 0; b < batches; ++b) {
    for (std::uint64_t i = 0; i < kBatch; ++i) {
      key_batches[b].emplace_back(keys.Key(ScatteredKey(b * kBatch + i, n)));
    }
  }
  Sample sample = MeasureOnce(batches * kBatch, [&] {
    for (const auto& batch : key_batches) Keep(s.GetMany(batch));
  });
  out.Write({s.name(), "get_batch1000_" + keys.label(), n, 1, sample});
}

void RunSnapshot(System& s, const Keys& keys, std::uint64_t n, std::uint64_t ops, Output& out) {
  const std::vector<std::string> nothing;
  const Sample sample = Measure(ops, [&](std::uint64_t) { Keep(s.GetMany(nothing)); });
  out.Write({s.name(), "snapshot_" + keys.label(), n, 1, sample});
}

void RunUpdate(System& s, const Keys& keys, std::uint64_t n, std::uint64_t ops, Output& out) {
  const Sample sample = Measure(ops, [&](std::uint64_t i) {
    const std::uint64_t k = ScatteredKey(i, n);
    s.Put(keys.Key(k), keys.Value(k, i + 1));
  });
  out.Write({s.name(), "update_" + keys.label(), n, 1, sample});
}

namespace {

std::uint64_t MinorFaults() {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<std::uint64_t>(usage.ru_minflt);
}

}  // namespace

void RunUpdateAfterReopen(System& s, const Keys& keys, std::uint64_t n, Output& out) {
  constexpr std::uint64_t kSwaps = 1000;
  // Each update timed alone; `salt` keeps the two passes on different keys.
  auto timed = [&](std::uint64_t salt) {
    std::vector<std::uint64_t> each(kSwaps);
    for (std::uint64_t i = 0; i < kSwaps; ++i) {
      const std::uint64_t k = ScatteredKey(i + salt, n);
      const std::uint64_t t0 = NowNs();
      s.Put(keys.Key(k), keys.Value(k, i + salt + 1));
      each[i] = NowNs() - t0;
    }
    return each;
  };
  s.Close();
  const std::vector<ChildResult> results = RunProcesses(
      {Worker{[&] { s.Attach(); },  // the open itself is the attach workload's: not timed here
              [&] {
                ChildResult r;
                const std::uint64_t faults = MinorFaults();
                std::vector<std::uint64_t> cold = timed(7 * n);
                r.minor_faults = MinorFaults() - faults;
                const std::uint64_t warm_faults = MinorFaults();
                std::vector<std::uint64_t> warm = timed(11 * n);
                r.warm_minor_faults = MinorFaults() - warm_faults;
                r.ops = kSwaps;
                for (std::uint64_t ns : cold) r.ns += ns;
                r.p50_ns = static_cast<std::uint64_t>(Quantile(cold, 0.50));
                r.p99_ns = static_cast<std::uint64_t>(Quantile(cold, 0.99));
                r.warm_p99_ns = static_cast<std::uint64_t>(Quantile(warm, 0.99));
                s.Close();
                return r;
              }}});
  s.Attach();
  const ChildResult& r = results[0];
  Sample sample{kSwaps, static_cast<double>(r.ns) / kSwaps, static_cast<double>(r.p50_ns),
                static_cast<double>(r.p99_ns)};
  Row row{s.name(), "update_after_reopen_" + keys.label(), n, 1, sample};
  row.extra["warm_p99_ns"] = r.warm_p99_ns;
  row.extra["minor_faults_per_op"] = static_cast<double>(r.minor_faults) / kSwaps;
  row.extra["warm_minor_faults_per_op"] = static_cast<double>(r.warm_minor_faults) / kSwaps;
  out.Write(row);
}

void RunTxn16(System& s, const Keys& keys, std::uint64_t n, std::uint64_t ops, Output& out) {
  std::vector<std::pair<std::string, std::string>> entries(16);
  const Sample sample = Measure(ops, [&](std::uint64_t t) {
    for (std::uint64_t j = 0; j < 16; ++j) {
      const std::uint64_t k = ScatteredKey(t * 16 + j, n);
      entries[j].first.assign(keys.Key(k));
      entries[j].second.assign(keys.Value(k, t + 1));
    }
    s.PutMany(entries);
  });
  out.Write({s.name(), "txn16_" + keys.label(), n, 1, sample});
}

namespace {

// `procs` processes each calling `add` (which adds `per_call`) on one counter key until it has
// added `ops_per_proc`, as row `workload` (ns per add); verifies the final count (aborts on a
// lost update). Leaves s attached. REQUIRES: per_call divides ops_per_proc.
void RunCounterWith(System& s, const Keys& keys, std::uint64_t n, int procs,
                    std::uint64_t ops_per_proc, const std::string& workload,
                    void (System::*add)(std::string_view), std::uint64_t per_call, Output& out,
                    bool combine = false) {
  const std::string counter(keys.Key(n));  // not among the loaded keys
  const std::uint64_t absent = ~std::uint64_t{0};
  std::uint64_t before = s.Get(counter);
  if (before == absent) before = 0;
  s.Close();
  s.SetCombining(combine);  // the children attach with it
  std::vector<Worker> workers(procs, Worker{[&] { s.Attach(); },
                                            [&] {
                                              ChildResult r;
                                              const std::uint64_t t0 = NowNs();
                                              for (std::uint64_t i = 0; i < ops_per_proc;
                                                   i += per_call) {
                                                (s.*add)(counter);
                                              }
                                              r.ns = NowNs() - t0;
                                              r.ops = ops_per_proc;
                                              s.Close();
                                              return r;
                                            }});
  const std::vector<ChildResult> results = RunProcesses(workers);
  s.SetCombining(false);
  s.Attach();
  const std::uint64_t after = s.Get(counter);
  if (after != before + ops_per_proc * procs) {
    std::fprintf(stderr, "%.*s: %s: counter %llu, expected %llu: lost updates\n",
                 static_cast<int>(s.name().size()), s.name().data(), workload.c_str(),
                 static_cast<unsigned long long>(after),
                 static_cast<unsigned long long>(before + ops_per_proc * procs));
    std::abort();
  }
  std::uint64_t longest = 0;
  for (const ChildResult& r : results) longest = std::max(longest, r.ns);
  const std::uint64_t total = ops_per_proc * procs;
  Row row{s.name(), workload, n, procs,
          Sample{total, static_cast<double>(longest) / static_cast<double>(total), {}, {}}};
  row.extra["ops_per_s"] = static_cast<double>(total) * 1e9 / static_cast<double>(longest);
  out.Write(row);
}

}  // namespace

void RunCounter(System& s, const Keys& keys, std::uint64_t n, int procs, std::uint64_t ops_per_proc,
                Output& out) {
  RunCounterWith(s, keys, n, procs, ops_per_proc, "counter", &System::Increment, 1, out);
}

void RunCounterApply(System& s, const Keys& keys, std::uint64_t n, int procs,
                     std::uint64_t ops_per_proc, Output& out) {
  RunCounterWith(s, keys, n, procs, ops_per_proc, "counter_apply_" + std::to_string(procs) + "proc",
                 &System::AddOne, 1, out);
}

void RunCounterCombine(System& s, const Keys& keys, std::uint64_t n, int procs,
                       std::uint64_t ops_per_proc, Output& out) {
  RunCounterWith(s, keys, n, procs, ops_per_proc,
                 "counter_combine_" + std::to_string(procs) + "proc", &System::AddOne, 1, out,
                 /*combine=*/true);
}

void RunCounterFold16(System& s, const Keys& keys, std::uint64_t n, int procs,
                      std::uint64_t ops_per_proc, Output& out) {
  RunCounterWith(s, keys, n, procs, ops_per_proc / 16 * 16,
                 "counter_apply_fold16_" + std::to_string(procs) + "proc", &System::AddSixteen, 16,
                 out);
}

void RunReaders(System& s, const Keys& keys, std::uint64_t n, int readers,
                std::uint64_t ops_per_reader, Output& out) {
  SharedFlag stop;
  s.Close();
  std::vector<Worker> workers;
  workers.push_back(Worker{[&] { s.Attach(); },
                           [&] {
                             ChildResult r;
                             const std::uint64_t t0 = NowNs();
                             while (stop.get().load(std::memory_order_relaxed) == 0) {
                               const std::uint64_t k = ScatteredKey(r.ops, n);
                               s.Put(keys.Key(k), keys.Value(k, r.ops + 1));
                               ++r.ops;
                             }
                             r.ns = NowNs() - t0;
                             s.Close();
                             return r;
                           }});
  std::vector<int> reader_index;
  for (int i = 1; i <= readers; ++i) {
    reader_index.push_back(i);
    workers.push_back(Worker{[&] { s.Attach(); },
                             [&, i] {
                               ChildResult r = TimedLookups(s, keys, n, ops_per_reader,
                                                            static_cast<std::uint64_t>(i) * 7919);
                               s.Close();
                               return r;
                             }});
  }
  const std::vector<ChildResult> results =
      RunProcesses(workers, reader_index, [&] { stop.get().store(1); });
  s.Attach();
  std::uint64_t longest = 0, total = 0;
  for (int i : reader_index) {
    longest = std::max(longest, results[i].ns);
    total += results[i].ops;
  }
  Row row{s.name(), "read_with_writer", n, readers,
          Sample{total, static_cast<double>(longest) / static_cast<double>(total), {}, {}}};
  row.extra["reads_per_s"] = static_cast<double>(total) * 1e9 / static_cast<double>(longest);
  row.extra["writes_per_s"] =
      static_cast<double>(results[0].ops) * 1e9 / static_cast<double>(results[0].ns);
  out.Write(row);
}

namespace {

// p50 etc. of `repeats` timed Attach() calls, each followed by one get and Close().
Sample TimeAttaches(System& s, const Keys& big, std::uint64_t n, int repeats) {
  std::vector<std::uint64_t> each;
  for (int i = 0; i < repeats; ++i) {
    const std::uint64_t t0 = NowNs();
    s.Attach();
    each.push_back(NowNs() - t0);
    Keep(s.Get(big.Key(static_cast<std::uint64_t>(i) % n)));
    s.Close();
  }
  std::uint64_t sum = 0;
  for (std::uint64_t v : each) sum += v;
  Sample sample{static_cast<std::uint64_t>(repeats), static_cast<double>(sum) / repeats, {}, {}};
  sample.p50_ns = Quantile(each, 0.5);
  sample.p99_ns = Quantile(each, 0.99);
  return sample;
}

}  // namespace

void RunAttach(System& s, const std::string& dir, std::uint64_t bytes, int repeats,
               bool other_attached, Output& out) {
  const Keys big("1MiB", 8, 1u << 20);
  const std::uint64_t n = bytes >> 20;
  s.Create(dir, big, n);
  s.Load(big, n);
  s.Close();
  Sample sample;
  if (!other_attached) {
    sample = TimeAttaches(s, big, n, repeats);
  } else {
    // A child holds the store open, blocked on a pipe that the parent closes when done.
    int hold[2];
    if (pipe(hold) != 0) std::abort();
    Worker holder{[&] {
                    close(hold[1]);
                    s.Attach();
                  },
                  [&] {
                    char c;
                    while (read(hold[0], &c, 1) > 0) {
                    }
                    s.Close();
                    return ChildResult{};
                  }};
    RunProcesses({holder}, {}, [&] {
      sample = TimeAttaches(s, big, n, repeats);
      close(hold[1]);
    });
    close(hold[0]);
  }
  Row row{s.name(), other_attached ? "attach_shared" : "attach", n, other_attached ? 2 : 1, sample};
  row.extra["bytes_on_disk"] = AllocatedBytes(s.DataFile());
  out.Write(row);
}

}  // namespace atomap::peers

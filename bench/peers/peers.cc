// peers: runs the same workloads on atomap, LMDB, Boost.Interprocess and std::unordered_map in
// one run, systems interleaved (A B C D, then again) so that machine drift hits all alike, and
// writes one JSON line per measurement. See docs/benchmarks.md.
//
//   peers [--quick] [--out FILE] [--dir DIR] [--reps N] [--max-entries N] [--only WORKLOAD]
//
// --quick: small sizes and few operations (the CI smoke test; well under 2 minutes).
// Default: 1K, 1M and 10M entries; --max-entries caps the sizes (e.g. 1000000).
// --only: run just the workloads whose name starts with WORKLOAD (get, update, txn16, counter,
// counter_apply, counter_combine, read_with_writer, wake_latency, attach; loads always run), e.g.
// to profile one of them. The output is validated (every line parses, with the required fields)
// before exiting.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "output.h"
#include "system.h"
#include "workloads.h"

namespace atomap::peers {
namespace {

struct Plan {
  bool quick = false;
  std::string out = "peers.jsonl";
  std::string dir;
  int reps = 1;
  int rounds = 2;  // interleaved repetitions of each short workload within a rep
  std::uint64_t max_entries = 10'000'000;
  std::string only;
  bool Wants(std::string_view workload) const { return workload.starts_with(only); }
  std::vector<std::uint64_t> sizes;
  std::uint64_t mid = 0;  // the size of the update, transaction and multi-process workloads
  std::uint64_t get_ops = 0, update_ops = 0, txn_ops = 0, counter_ops = 0, reader_ops = 0;
  std::uint64_t sync_update_ops = 0, wake_rounds = 0, attach_bytes = 0;
  int attach_repeats = 0;
};

Plan ParseArgs(int argc, char** argv) {
  Plan p;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--quick") p.quick = true;
    else if (a == "--out") p.out = next();
    else if (a == "--dir") p.dir = next();
    else if (a == "--reps") p.reps = std::stoi(next());
    else if (a == "--max-entries") p.max_entries = std::stoull(next());
    else if (a == "--only") p.only = next();
    else {
      std::fprintf(stderr, "usage: peers [--quick] [--out FILE] [--dir DIR] [--reps N] "
                           "[--max-entries N] [--only WORKLOAD]\n");
      std::exit(2);
    }
  }
  if (p.quick) {
    p.sizes = {1000, 20000};
    p.mid = 20000;
    p.get_ops = 20000, p.update_ops = 2000, p.txn_ops = 500, p.counter_ops = 2000;
    p.reader_ops = 20000, p.sync_update_ops = 20, p.wake_rounds = 200;
    p.attach_bytes = std::uint64_t{64} << 20, p.attach_repeats = 5;
  } else {
    for (std::uint64_t n : {1000ull, 1000000ull, 10000000ull}) {
      if (n <= p.max_entries) p.sizes.push_back(n);
    }
    p.mid = std::min<std::uint64_t>(1000000, p.sizes.back());
    p.get_ops = 500000, p.update_ops = 100000, p.txn_ops = 10000, p.counter_ops = 200000;
    p.reader_ops = 1000000, p.sync_update_ops = 200, p.wake_rounds = 2000;
    p.attach_bytes = std::uint64_t{1} << 30, p.attach_repeats = 20;
  }
  if (p.dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    p.dir =
        std::string(tmp != nullptr ? tmp : "/tmp") + "/atomap-peers." + std::to_string(getpid());
  }
  return p;
}

std::string FreshDir(const std::string& root, const std::string& name) {
  const std::string d = root + "/" + name;
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

std::vector<std::unique_ptr<System>> MakeSystems(const Keys& keys) {
  std::vector<std::unique_ptr<System>> v;
  v.push_back(MakeAtomap());
  v.push_back(MakeLmdb(/*durable=*/false));
  v.push_back(MakeBoostInterprocess(keys));
  v.push_back(MakeStdUnorderedMap(keys));
  return v;
}

// Every workload at one (shape, size): systems loaded side by side, each workload interleaved.
void RunSize(const Plan& p, const Keys& keys, std::uint64_t n, Output& out) {
  std::vector<std::unique_ptr<System>> systems = MakeSystems(keys);
  const std::string tag = keys.label() + "-" + std::to_string(n) + "-";
  if (p.Wants("bulk_load")) {
    for (auto& s : MakeSystems(keys)) {
      RunLoadBatch(*s, keys, n, FreshDir(p.dir, tag + "batch-" + std::string(s->name())), out);
    }
  }
  for (auto& s : systems) RunLoad(*s, keys, n, FreshDir(p.dir, tag + std::string(s->name())), out);
  const std::uint64_t get_ops = n >= 10'000'000 ? p.get_ops / 2 : p.get_ops;
  for (int r = 0; r < p.rounds && p.Wants("get"); ++r) {
    for (auto& s : systems) RunGet(*s, keys, n, get_ops, out);
  }
  for (auto& s : systems) {
    if (p.Wants("get_batch")) RunGetBatch(*s, keys, n, get_ops, out);
  }
  for (int r = 0; r < p.rounds && p.Wants("snapshot"); ++r) {
    for (auto& s : systems) RunSnapshot(*s, keys, n, get_ops, out);
  }
  if (keys.key_bytes() != 8) return;  // writes: u64 -> u64 only
  for (int r = 0; r < p.rounds && p.Wants("update"); ++r) {
    for (auto& s : systems) RunUpdate(*s, keys, n, p.update_ops, out);
  }
  if (n == p.sizes.back() && p.Wants("update_after_reopen")) {
    for (auto& s : systems) {
      if (s->multi_process()) RunUpdateAfterReopen(*s, keys, n, out);
    }
  }
  if (n != p.mid) return;
  for (int r = 0; r < p.rounds && p.Wants("txn16"); ++r) {
    for (auto& s : systems) RunTxn16(*s, keys, n, p.txn_ops, out);
  }
  if (p.Wants("update")) {
    std::unique_ptr<System> sync = MakeLmdb(/*durable=*/true);
    RunLoad(*sync, keys, n, FreshDir(p.dir, tag + "lmdb_sync"), out);
    RunUpdate(*sync, keys, n, p.sync_update_ops, out);
    sync->Close();
  }
  for (int procs : {1, 2}) {
    if (!p.Wants("counter")) break;
    for (auto& s : systems) {
      if (s->multi_process()) RunCounter(*s, keys, n, procs, p.counter_ops, out);
    }
  }
  // The declarative add (Atom::add) at 1-8 processes, with LMDB's counter at the same counts.
  for (int procs : {1, 2, 4, 8}) {
    if (!p.Wants("counter_apply")) break;
    for (auto& s : systems) {
      if (s->name() == "atomap" || s->name() == "lmdb") {
        RunCounterApply(*s, keys, n, procs, p.counter_ops, out);
      }
    }
  }
  // Atom::add combining across processes (atomap only; LMDB's rows are counter_apply's).
  for (int procs : {1, 2, 4, 8}) {
    if (!p.Wants("counter_combine")) break;
    for (auto& s : systems) {
      if (s->name() == "atomap") RunCounterCombine(*s, keys, n, procs, p.counter_ops, out);
    }
  }
  // The best a combiner folding 16 adds per version could do (atomap only).
  for (int procs : {1, 8}) {
    if (!p.Wants("counter_apply_fold16")) break;
    for (auto& s : systems) {
      if (s->name() == "atomap") RunCounterFold16(*s, keys, n, procs, p.counter_ops, out);
    }
  }
  for (int readers : {1, 2}) {
    if (!p.Wants("read_with_writer")) break;
    for (auto& s : systems) {
      if (s->multi_process()) RunReaders(*s, keys, n, readers, p.reader_ops, out);
    }
  }
  for (auto& s : systems) s->Close();
}

void RunAll(const Plan& p, Output& out) {
  const Keys u64("u64", 8, 8);
  const Keys k16v100("k16v100", 16, 100);
  for (int rep = 0; rep < p.reps; ++rep) {
    for (std::uint64_t n : p.sizes) {
      RunSize(p, u64, n, out);
      std::filesystem::remove_all(p.dir);
      if (n < 10'000'000) RunSize(p, k16v100, n, out);  // 10M x 116 B x 4 systems: too big here
      std::filesystem::remove_all(p.dir);
    }
    if (p.Wants("wake_latency")) RunWaitLatency(FreshDir(p.dir, "wait"), p.wake_rounds, out);
    for (int r = 0; r < p.rounds && p.Wants("attach"); ++r) {
      for (bool shared : {false, true}) {
        for (auto make : {MakeAtomap, +[] { return MakeLmdb(false); }}) {
          std::unique_ptr<System> s = make();
          const std::string dir = FreshDir(p.dir, "attach-" + std::string(s->name()));
          RunAttach(*s, dir, p.attach_bytes, p.attach_repeats, shared, out);
          std::filesystem::remove_all(dir);
        }
      }
    }
    std::filesystem::remove_all(p.dir);
  }
}

}  // namespace
}  // namespace atomap::peers

int main(int argc, char** argv) {
  using namespace atomap::peers;
  const Plan plan = ParseArgs(argc, argv);
  char run[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(run, sizeof run, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  {
    Output out(plan.out, run);
    RunAll(plan, out);
  }
  const std::string problem = ValidateJsonLines(plan.out);
  if (!problem.empty()) {
    std::fprintf(stderr, "%s\n", problem.c_str());
    return 1;
  }
  std::fprintf(stderr, "peers: wrote %s\n", plan.out.c_str());
  return 0;
}

// lookup_profile: the cost of one Map::get in a batch (issue 14), three ways.
//
//   lookup_profile [--n N] [--path FILE] [--kind file|shm|inprocess] [--batches B] [--reps R]
//                  [--shape]
//
// Loads N u64 -> u64 entries (default 1M; keys as bench/peers' u64 shape) into one atom, then
// runs B batches of 1000 gets (bench/peers' get_batch1000 order), each batch in one snapshot:
//  - wall clock: ns per get of each repetition, and their median and range;
//  - callgrind: the loop of the last repetition is bracketed by CALLGRIND_START/STOP_
//    INSTRUMENTATION, so `valgrind --tool=callgrind --instr-atstart=no lookup_profile ...`
//    counts the instructions of exactly the gets (divide Ir by B * 1000);
//  - --shape: per lookup, the nodes visited and the distinct 64-byte lines read (dependent
//    accesses), from the real offsets, and what they would be with nodes aligned to 64 bytes.
#include <valgrind/callgrind.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "alloc/size_classes.h"
#include "atomap/domain.h"
#include "hamt/access.h"
#include "hamt/node.h"
#include "hamt/read.h"
#include "hamt_workload.h"  // ScatteredKey

namespace {

using atomap::bench::ScatteredKey;
namespace hamt = atomap::internal::hamt;

struct Args {
  std::uint64_t n = 1'000'000;
  std::string path;
  atomap::DomainKind kind = atomap::DomainKind::kFile;
  std::uint64_t batches = 500;
  int reps = 5;
  bool shape = false;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "lookup_profile: %s\n", what.c_str());
  std::exit(1);
}

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value after " + arg);
      return argv[++i];
    };
    if (arg == "--n") a.n = std::stoull(next());
    else if (arg == "--path") a.path = next();
    else if (arg == "--batches") a.batches = std::stoull(next());
    else if (arg == "--reps") a.reps = std::stoi(next());
    else if (arg == "--shape") a.shape = true;
    else if (arg == "--kind") {
      const std::string k = next();
      if (k == "file") a.kind = atomap::DomainKind::kFile;
      else if (k == "shm") a.kind = atomap::DomainKind::kSharedMemory;
      else if (k == "inprocess") a.kind = atomap::DomainKind::kInProcess;
      else Die("unknown kind " + k);
    } else {
      Die("usage: lookup_profile [--n N] [--path FILE] [--kind file|shm|inprocess] "
          "[--batches B] [--reps R] [--shape]");
    }
  }
  if (a.path.empty()) {
    a.path = a.kind == atomap::DomainKind::kFile ? "/tmp/lookup_profile.atomap" : "lookup_profile";
  }
  return a;
}

template <class T>
T Must(absl::StatusOr<T> v) {
  if (!v.ok()) Die(v.status().ToString());
  return std::move(*v);
}

std::string U64(std::uint64_t v) { return std::string(reinterpret_cast<const char*>(&v), 8); }

// Lines (64 B) a lookup of `hash` reads, in order; each depends on the one before.
struct Walk {
  int nodes = 0;
  int lines = 0;
  int lines_aligned = 0;  // the same walk with every node starting a line
};

int LinesOf(std::uint64_t node, std::uint64_t first, std::uint64_t last, std::uint64_t* prev) {
  // Distinct lines of [first, last] not already the previous access's line.
  int lines = 0;
  for (std::uint64_t line = (node + first) / 64; line <= (node + last) / 64; ++line) {
    if (line != *prev) ++lines;
    *prev = line;
  }
  return lines;
}

Walk WalkOf(const atomap::internal::Arena& arena, std::uint64_t root, std::uint64_t hash) {
  Walk w;
  std::uint64_t node = root, prev = ~0ull, prev_aligned = ~0ull, aligned_base = 0;
  for (int level = 0; level < hamt::kCollisionLevel; ++level) {
    ++w.nodes;
    const hamt::BitmapNodeRef n(arena, node);
    const hamt::Bitmap bit = hamt::BitFor(hamt::Fragment(hash, level));
    // Header, then the slot it leads to (child offset or entry).
    std::uint64_t slot_first, slot_last;
    const bool child = (n.nodemap() & bit) != 0;
    if (child) {
      slot_first = 8 + 8 * hamt::IndexOf(n.nodemap(), bit);
      slot_last = slot_first + 7;
    } else if ((n.datamap() & bit) != 0) {
      slot_first = 8 + 8 * n.child_count() + 24 * hamt::IndexOf(n.datamap(), bit);
      slot_last = slot_first + 23;
    } else {
      slot_first = slot_last = 0;
    }
    w.lines += LinesOf(node, 0, 7, &prev) + LinesOf(node, slot_first, slot_last, &prev);
    aligned_base += 1 << 20;  // a fresh, line-aligned address per node
    w.lines_aligned += LinesOf(aligned_base, 0, 7, &prev_aligned) +
                       LinesOf(aligned_base, slot_first, slot_last, &prev_aligned);
    if (!child) return w;
    node = n.child_at(bit);
  }
  ++w.nodes;
  w.lines += 1;
  w.lines_aligned += 1;
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = Parse(argc, argv);
  atomap::Options options;
  options.kind = a.kind;
  options.error_if_exists = false;
  options.max_size = std::uint64_t{4} << 30;  // valgrind cannot reserve the default 64 GiB
  if (a.kind == atomap::DomainKind::kFile) std::remove(a.path.c_str());
  atomap::Domain domain = Must(atomap::Domain::Open(a.path, options));
  atomap::Atom atom = Must(domain.atom("bench"));
  const atomap::Snapshot before = Must(atom.load());
  const bool loaded = before.map().size() == a.n;
  if (!loaded) {
    (void)Must(atom.swap([&](atomap::Transaction& tx) {
      for (std::uint64_t i = 0; i < a.n; ++i) {
        if (absl::Status s = tx.set(U64(i), U64(i * 3)); !s.ok()) return s;
      }
      return absl::OkStatus();
    }));
  }

  std::vector<std::vector<std::string>> batches(a.batches);
  for (std::uint64_t b = 0; b < a.batches; ++b) {
    for (std::uint64_t i = 0; i < 1000; ++i)
      batches[b].push_back(U64(ScatteredKey(b * 1000 + i, a.n)));
  }

  std::vector<double> ns;
  std::uint64_t sum = 0;
  for (int rep = 0; rep < a.reps; ++rep) {
    const bool last = rep + 1 == a.reps;
    const auto t0 = std::chrono::steady_clock::now();
    if (last) CALLGRIND_START_INSTRUMENTATION;
    for (const auto& batch : batches) {
      const atomap::Snapshot snap = Must(atom.load());
      for (const std::string& k : batch) {
        const std::optional<std::string_view> v = snap.map().get(k);
        sum += v.has_value() ? static_cast<unsigned char>((*v)[0]) : 1;
      }
    }
    if (last) CALLGRIND_STOP_INSTRUMENTATION;
    const auto t1 = std::chrono::steady_clock::now();
    ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() /
                 static_cast<double>(a.batches * 1000));
  }
  std::vector<double> sorted = ns;
  std::sort(sorted.begin(), sorted.end());
  std::printf("n=%llu gets=%llu ns/get:", static_cast<unsigned long long>(a.n),
              static_cast<unsigned long long>(a.batches * 1000));
  for (double v : ns) std::printf(" %.1f", v);
  std::printf("  median %.1f range %.1f-%.1f (checksum %llu)\n", sorted[sorted.size() / 2],
              sorted.front(), sorted.back(), static_cast<unsigned long long>(sum));

  // How much of this process's memory huge pages map (Arena advises MADV_HUGEPAGE on tmpfs and
  // in-process domains; whether the kernel obliges depends on its THP settings).
  if (std::FILE* f = std::fopen("/proc/self/smaps_rollup", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      if (std::strstr(line, "AnonHugePages") || std::strstr(line, "ShmemPmdMapped") ||
          std::strstr(line, "FilePmdMapped")) {
        std::printf("%s", line);
      }
    }
    std::fclose(f);
  }

  if (a.shape) {
    const atomap::Snapshot snap = Must(atom.load());
    const atomap::internal::TrieContext& context =
        *atomap::internal::MapAccess::Context(snap.map());
    const std::uint64_t root =
        hamt::ReadVersion(*context.arena, atomap::internal::MapAccess::Version(snap.map()))
            .root_node;
    double nodes = 0, lines = 0, lines_aligned = 0;
    for (std::uint64_t i = 0; i < a.n; ++i) {
      const Walk w = WalkOf(*context.arena, root, context.hasher(U64(i)));
      nodes += w.nodes, lines += w.lines, lines_aligned += w.lines_aligned;
    }
    std::printf("per lookup: nodes %.2f, lines %.2f, lines if nodes were 64-B aligned %.2f\n",
                nodes / a.n, lines / a.n, lines_aligned / a.n);
    // Space: every block as its size class holds it today, and rounded up to whole lines (what
    // a node that starts a line would occupy: the next node starts a line too).
    double today = 0, aligned = 0;
    hamt::ForEachBlock(*context.arena, atomap::internal::MapAccess::Version(snap.map()),
                       [&](std::uint64_t, std::uint64_t bytes) {
                         namespace sc = atomap::internal::size_classes;
                         today += static_cast<double>(sc::ClassBytes(sc::ClassOf(bytes)));
                         aligned += static_cast<double>((bytes + 63) / 64 * 64);
                       });
    std::printf("bytes per entry (blocks of the version): %.1f today, %.1f with 64-B nodes\n",
                today / a.n, aligned / a.n);
  }
  return 0;
}

// bulk_profile: the cost of one bulk load of N u64 -> u64 entries into a fresh file (issue 15),
// by the library alone: the input is built before the clock starts.
//
//   bulk_profile [--n N] [--path FILE] [--reps R] [--mode set_many|set_loop]
//
// Each repetition removes FILE, opens a fresh domain, and times one swap that loads the entries
// (`set_many`, or a loop of `set` into the empty atom: both build bottom up). Prints ns per
// entry of each repetition, their median and range, and the file's bytes per entry. Run it
// under `perf record` to see where a load spends its time.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "atomap/atom.h"
#include "atomap/domain.h"
#include "atomap/transaction.h"

namespace {

struct Args {
  std::uint64_t n = 1'000'000;
  std::string path = "/tmp/atomap-bulk-profile.atomap";
  int reps = 5;
  bool set_loop = false;
};

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--n") a.n = std::stoull(value);
    else if (flag == "--path") a.path = value;
    else if (flag == "--reps") a.reps = std::stoi(value);
    else if (flag == "--mode") a.set_loop = value == "set_loop";
    else {
      std::fprintf(stderr, "usage: bulk_profile [--n N] [--path FILE] [--reps R] "
                           "[--mode set_many|set_loop]\n");
      std::exit(2);
    }
  }
  return a;
}

std::string U64(std::uint64_t x) {
  std::string s(8, '\0');
  std::memcpy(s.data(), &x, 8);
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = Parse(argc, argv);
  std::vector<std::pair<std::string, std::string>> owned;
  owned.reserve(args.n);
  for (std::uint64_t i = 0; i < args.n; ++i) owned.emplace_back(U64(i), U64(i * 3));
  const std::vector<std::pair<std::string_view, std::string_view>> entries(owned.begin(),
                                                                           owned.end());
  std::vector<double> ns;
  double bytes_per_entry = 0;
  for (int r = 0; r < args.reps; ++r) {
    unlink(args.path.c_str());
    absl::StatusOr<atomap::Domain> domain = atomap::Domain::Open(args.path);
    if (!domain.ok()) return std::fprintf(stderr, "%s\n", domain.status().ToString().c_str()), 1;
    absl::StatusOr<atomap::Atom> atom = domain->atom("bulk");
    if (!atom.ok()) return 1;
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<atomap::Snapshot> done = atom->swap([&](atomap::Transaction& tx) {
      if (!args.set_loop) return tx.set_many(entries);
      for (const auto& [k, v] : entries) {
        if (absl::Status s = tx.set(k, v); !s.ok()) return s;
      }
      return absl::OkStatus();
    });
    const double elapsed =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
    if (!done.ok()) return std::fprintf(stderr, "%s\n", done.status().ToString().c_str()), 1;
    ns.push_back(elapsed / static_cast<double>(args.n));
    struct stat st;
    if (stat(args.path.c_str(), &st) == 0) {
      bytes_per_entry = static_cast<double>(st.st_blocks) * 512 / static_cast<double>(args.n);
    }
    std::printf("rep %d: %.1f ns per entry\n", r, ns.back());
  }
  unlink(args.path.c_str());
  std::sort(ns.begin(), ns.end());
  std::printf("%s of %llu u64 entries: median %.1f ns per entry (%.1f-%.1f), %.2f bytes on disk "
              "per entry\n",
              args.set_loop ? "set loop" : "set_many", static_cast<unsigned long long>(args.n),
              ns[ns.size() / 2], ns.front(), ns.back(), bytes_per_entry);
  return 0;
}

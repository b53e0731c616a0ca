// Writers keep their speed (issue 12, promise 3; DESIGN-12 T8): a swap gains no system call
// from registered readers, beyond the registry pread of a reclamation pass (at most one per 64
// swaps).
//
// Counts the system calls of a writer process under `strace -f -c`: a run of N1 swaps and one of
// N2, so that the difference is the swaps' own cost (opening and closing cancel out); once with
// no reader registered and once with 64 idle registered readers (each a process that opened the
// domain read-only, loaded once and holds its slot). Fails if, over the N2 - N1 extra swaps,
// the readers add more than (N2 - N1) / 64 + kSlack system calls, or more than that many preads.
//
//   swap_syscalls_stress [--dir DIR] [--readers 64] [--swaps 2000]
//
// Exit 0: within bounds; 1: not (the table says where); 77: strace is missing or may not
// trace here (ctest reports a skip). Not run under the sanitizers, whose runtimes add calls.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "atomap/atom.h"
#include "atomap/domain.h"

namespace {

constexpr int kSkip = 77;
// Calls a run may differ by for reasons that are not per swap (a growth step, a page fault
// retried, a wake of a waiter).
constexpr std::int64_t kSlack = 16;

using Counts = std::map<std::string, std::int64_t>;  // syscall -> calls; "total" too

atomap::Options DomainOptions() {
  atomap::Options options;
  options.max_size = std::uint64_t{1} << 30;
  options.slot_capacity = 16;
  options.atom_capacity = 16;
  return options;
}

// The measured process: open, `swaps` swaps over 64 keys, close.
int Swapper(const std::string& path, int swaps) {
  absl::StatusOr<atomap::Domain> domain = atomap::Domain::Open(path, DomainOptions());
  if (!domain.ok()) {
    std::fprintf(stderr, "swapper: %s\n", domain.status().ToString().c_str());
    return 2;
  }
  absl::StatusOr<atomap::Atom> atom = domain->atom("syscalls");
  if (!atom.ok()) return 2;
  const std::string value(48, 'v');
  for (int i = 0; i < swaps; ++i) {
    char key[8];
    std::snprintf(key, sizeof key, "k%d", i % 64);
    absl::Status s =
        atom->swap([&](atomap::Transaction& tx) { return tx.set(key, value); }).status();
    if (!s.ok()) {
      std::fprintf(stderr, "swapper: swap %d: %s\n", i, s.ToString().c_str());
      return 2;
    }
  }
  return 0;
}

int RunAndWait(const std::vector<std::string>& args, bool quiet) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (quiet) {
      std::freopen("/dev/null", "w", stdout);
      std::freopen("/dev/null", "w", stderr);
    }
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// strace -c's table: "% time  seconds  usecs/call  calls  [errors]  syscall".
Counts ParseStraceSummary(const std::string& file) {
  Counts counts;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::vector<std::string> f;
    for (std::string word; fields >> word;) f.push_back(word);
    if (f.size() < 5 || f[0].find_first_not_of("0123456789.") != std::string::npos) continue;
    counts[f.back()] = std::atoll(f[3].c_str());
  }
  return counts;
}

// The writer's calls for `swaps` swaps, under strace; nullopt-like empty map on failure.
Counts Measure(const std::string& self, const std::string& path, const std::string& out,
               int swaps) {
  const int rc =
      RunAndWait({"strace", "-f", "-c", "-o", out, self, "--swapper", path, std::to_string(swaps)},
                 /*quiet=*/false);
  if (rc != 0) {
    std::fprintf(stderr, "strace run of %d swaps exited %d\n", swaps, rc);
    return {};
  }
  return ParseStraceSummary(out);
}

// `n` reader processes that open the domain read-only, load once (claiming a slot) and wait
// for `hold_fd` to close. Returns their pids once every one has registered.
std::vector<pid_t> StartIdleReaders(const std::string& path, int n, int* hold_write_fd) {
  int ready[2];
  int hold[2];
  if (pipe(ready) != 0 || pipe(hold) != 0) return {};
  std::vector<pid_t> pids;
  for (int i = 0; i < n; ++i) {
    const pid_t pid = fork();
    if (pid == 0) {
      close(ready[0]);
      close(hold[1]);
      atomap::Options options = DomainOptions();
      options.read_only = true;
      absl::StatusOr<atomap::Domain> domain = atomap::Domain::Open(path, options);
      char ok = 0;
      if (domain.ok()) {
        absl::StatusOr<atomap::Atom> atom = domain->find_atom("syscalls");
        ok = atom.ok() && atom->load().ok() ? 1 : 0;
      }
      if (write(ready[1], &ok, 1) != 1) _exit(1);
      char c;
      while (read(hold[0], &c, 1) > 0) {
      }
      _exit(0);
    }
    pids.push_back(pid);
  }
  close(ready[1]);
  close(hold[0]);
  int registered = 0;
  for (int i = 0; i < n; ++i) {
    char ok = 0;
    if (read(ready[0], &ok, 1) == 1) registered += ok;
  }
  close(ready[0]);
  if (registered != n) std::fprintf(stderr, "only %d of %d readers registered\n", registered, n);
  *hold_write_fd = hold[1];
  return pids;
}

std::int64_t Get(const Counts& c, const std::string& name) {
  auto it = c.find(name);
  return it == c.end() ? 0 : it->second;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 4 && std::strcmp(argv[1], "--swapper") == 0)
    return Swapper(argv[2], std::atoi(argv[3]));
  std::string dir;
  int readers = 64;
  int swaps = 2000;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
    if (std::strcmp(argv[i], "--readers") == 0) readers = std::atoi(argv[i + 1]);
    if (std::strcmp(argv[i], "--swaps") == 0) swaps = std::atoi(argv[i + 1]);
  }
  if (RunAndWait({"strace", "-f", "-c", "-o", "/dev/null", "true"}, /*quiet=*/true) != 0) {
    std::printf("SKIP: strace is missing or may not trace here\n");
    return kSkip;
  }
  const bool made_dir = dir.empty();
  if (made_dir) {
    char pattern[] = "/tmp/atomap-syscalls-XXXXXX";
    if (mkdtemp(pattern) == nullptr) return 2;
    dir = pattern;
  }
  const std::string self = "/proc/self/exe";
  char exe[4096] = {};
  if (readlink(self.c_str(), exe, sizeof exe - 1) <= 0) return 2;
  const std::string path = dir + "/syscalls.atomap";
  if (Swapper(path, 1) != 0) return 2;  // create it, and the atom

  const int n1 = swaps;
  const int n2 = 3 * swaps;
  Counts base[2];
  Counts with[2];
  base[0] = Measure(exe, path, dir + "/base1", n1);
  base[1] = Measure(exe, path, dir + "/base2", n2);
  int hold_fd = -1;
  std::vector<pid_t> pids = StartIdleReaders(path, readers, &hold_fd);
  with[0] = Measure(exe, path, dir + "/with1", n1);
  with[1] = Measure(exe, path, dir + "/with2", n2);
  close(hold_fd);
  for (pid_t pid : pids) waitpid(pid, nullptr, 0);
  if (base[0].empty() || base[1].empty() || with[0].empty() || with[1].empty()) return 2;

  // Per syscall: the extra swaps' calls without and with readers.
  const std::int64_t extra_swaps = n2 - n1;
  const std::int64_t allowed = extra_swaps / 64 + kSlack;
  std::map<std::string, bool> names;
  for (const Counts* c : {&base[0], &base[1], &with[0], &with[1]}) {
    for (const auto& [name, calls] : *c) names[name] = true;
  }
  std::printf("%-20s %12s %12s   (calls for %lld extra swaps; %d idle readers)\n", "syscall",
              "no readers", "readers", static_cast<long long>(extra_swaps), readers);
  bool ok = true;
  for (const auto& [name, unused] : names) {
    const std::int64_t b = Get(base[1], name) - Get(base[0], name);
    const std::int64_t w = Get(with[1], name) - Get(with[0], name);
    if (b == 0 && w == 0 && name != "total") continue;  // only what the swaps themselves call
    std::printf("%-20s %12lld %12lld\n", name.c_str(), static_cast<long long>(b),
                static_cast<long long>(w));
  }
  const std::int64_t total_gain = (Get(with[1], "total") - Get(with[0], "total")) -
                                  (Get(base[1], "total") - Get(base[0], "total"));
  const std::int64_t preads = Get(with[1], "pread64") - Get(with[0], "pread64");
  if (total_gain > allowed) {
    std::printf("FAIL: readers added %lld calls over %lld swaps (allowed %lld)\n",
                static_cast<long long>(total_gain), static_cast<long long>(extra_swaps),
                static_cast<long long>(allowed));
    ok = false;
  }
  if (preads > allowed) {
    std::printf("FAIL: %lld preads over %lld swaps with readers (allowed %lld)\n",
                static_cast<long long>(preads), static_cast<long long>(extra_swaps),
                static_cast<long long>(allowed));
    ok = false;
  }
  std::printf("%s: readers added %lld calls, %lld preads, over %lld swaps (bound %lld)\n",
              ok ? "OK" : "FAIL", static_cast<long long>(total_gain),
              static_cast<long long>(preads), static_cast<long long>(extra_swaps),
              static_cast<long long>(allowed));
  if (made_dir) {
    const std::string rm = "rm -rf '" + dir + "'";
    if (std::system(rm.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", dir.c_str());
  }
  return ok ? 0 : 1;
}

// atomap demo: the library's three uses at once, on one file.
//
//  - Worker processes swap concurrently on shared counters in atom "counters": every swap adds 1
//    to "hot" (contended by all) and to the worker's own "worker/<i>" in one transaction.
//  - Now and then a worker changes atom "config" (leader, generation); a watcher process prints
//    each change as it happens.
//  - At the end the totals are verified exactly, and the file is reopened after every other
//    process has exited: the state is in the file, not in any process.
//
// Processes: the parent forks the workers and the watcher before it opens the domain itself, and
// each child opens its own Domain (a child must not use a Domain its parent opened). They
// synchronise only on pipes: children report "ready" on their pipe, wait for the start gate
// (a pipe the parent closes), and report progress, their latencies and their end time on their
// pipe; the watcher sends the lines to print. No sleeps anywhere.
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "atomap/watcher.h"
#include "cli.h"

namespace atomap::cli {
namespace {

constexpr char kCountersAtom[] = "counters";
constexpr char kConfigAtom[] = "config";
constexpr char kHotKey[] = "hot";
constexpr char kStatusKey[] = "status";  // "running", then "finished" when the run is over
constexpr int kConfigChangesPerWorker = 3;

// What a worker sends on its pipe, as 64-bit words: a tag, then its operands.
enum WorkerMessage : std::uint64_t {
  kReady = 1,      // ()
  kProgress = 2,   // (swaps done)
  kFinished = 3,   // (monotonic ns at the last swap's end, n, then n latencies in ns)
};
constexpr char kWatcherReady[] = "ready";

std::string DefaultPath() {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/atomap-demo.atomap";
}

std::string WorkerKey(int worker) { return absl::StrFormat("worker/%d", worker); }

std::uint64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::uint64_t ParseCounter(std::optional<std::string_view> text) {
  std::uint64_t n = 0;
  if (text.has_value()) std::from_chars(text->data(), text->data() + text->size(), n);
  return n;
}

absl::Status Increment(Transaction& tx, std::string_view key) {
  return tx.update(key, [](std::optional<std::string_view> old) {
    return std::optional<std::string>(std::to_string(ParseCounter(old) + 1));
  });
}

bool WriteAll(int fd, const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

void SendWords(int fd, std::initializer_list<std::uint64_t> words) {
  const std::vector<std::uint64_t> buffer(words);
  WriteAll(fd, buffer.data(), buffer.size() * sizeof(std::uint64_t));
}

// Blocks until the parent closes the gate's write end.
void WaitForGate(int gate_fd) {
  char byte;
  while (::read(gate_fd, &byte, 1) < 0 && errno == EINTR) {
  }
}

absl::StatusOr<Domain> OpenDemoDomain(const std::string& path) {
  CommonArgs args;
  args.path = path;
  return OpenExistingDomain(args);
}

int ChildFailed(const char* who, const absl::Status& status) {
  std::fprintf(stderr, "atomap demo: %s: %s\n", who, std::string(status.message()).c_str());
  return 1;
}

int RunWorker(const std::string& path, int worker, std::uint64_t ops, int out_fd, int gate_fd) {
  absl::StatusOr<Domain> domain = OpenDemoDomain(path);
  if (!domain.ok()) return ChildFailed("worker", domain.status());
  absl::StatusOr<Atom> counters = domain->atom(kCountersAtom);
  absl::StatusOr<Atom> config = domain->atom(kConfigAtom);
  if (!counters.ok()) return ChildFailed("worker", counters.status());
  if (!config.ok()) return ChildFailed("worker", config.status());
  const std::string own_key = WorkerKey(worker);
  const std::string leader = absl::StrFormat("worker-%d", worker);
  const std::uint64_t progress_every = std::max<std::uint64_t>(1, ops / 100);
  const std::uint64_t config_every = std::max<std::uint64_t>(1, ops / kConfigChangesPerWorker);
  std::vector<std::uint64_t> latencies;
  latencies.reserve(ops);

  SendWords(out_fd, {kReady});
  WaitForGate(gate_fd);
  for (std::uint64_t op = 1; op <= ops; ++op) {
    const std::uint64_t start = NowNanos();
    absl::StatusOr<Snapshot> published = counters->swap([&](Transaction& tx) {
      absl::Status status = Increment(tx, kHotKey);
      if (status.ok()) status = Increment(tx, own_key);
      return status;
    });
    latencies.push_back(NowNanos() - start);
    if (!published.ok()) return ChildFailed("worker", published.status());
    if (op % progress_every == 0) SendWords(out_fd, {kProgress, op});
    if (op % config_every == 0) {
      absl::StatusOr<Snapshot> changed = config->swap([&](Transaction& tx) {
        absl::Status status = tx.set("leader", leader);
        if (status.ok()) status = Increment(tx, "generation");
        return status;
      });
      if (!changed.ok()) return ChildFailed("worker", changed.status());
    }
  }
  const std::uint64_t end = NowNanos();
  SendWords(out_fd, {kFinished, end, latencies.size()});
  WriteAll(out_fd, latencies.data(), latencies.size() * sizeof(std::uint64_t));
  return 0;
}

// Prints (through the parent) each change of the config atom until the parent marks the run
// finished.
int RunWatcher(const std::string& path, int out_fd) {
  absl::StatusOr<Domain> domain = OpenDemoDomain(path);
  if (!domain.ok()) return ChildFailed("watcher", domain.status());
  absl::StatusOr<Atom> config = domain->atom(kConfigAtom);
  if (!config.ok()) return ChildFailed("watcher", config.status());
  absl::StatusOr<Watcher> watcher = Watcher::Start(*config);
  if (!watcher.ok()) return ChildFailed("watcher", watcher.status());
  const std::string ready = std::string(kWatcherReady) + "\n";
  WriteAll(out_fd, ready.data(), ready.size());
  for (bool finished = false; !finished;) {
    absl::StatusOr<bool> changed = watcher->Next([&](const MapDiff& diff, const Snapshot& now) {
      const std::string line =
          absl::StrFormat("[watcher pid %d] config %s\n", getpid(), DiffText(now.version(), diff));
      WriteAll(out_fd, line.data(), line.size());
      finished = now.map().get(kStatusKey) == std::optional<std::string_view>("finished");
    });
    if (!changed.ok()) return ChildFailed("watcher", changed.status());
  }
  return 0;
}

// One child process as the parent sees it.
struct Child {
  pid_t pid = -1;
  int fd = -1;  // the read end of its pipe; -1 after end of file
  bool watcher = false;
  bool ready = false;
  std::string buffer;  // bytes received, not yet parsed
  std::uint64_t done = 0;
  std::uint64_t end_nanos = 0;
  std::vector<std::uint64_t> latencies;
};

// Forks a child that runs `body` with the write end of a new pipe and _exits with its result.
// The child closes every descriptor it must not hold: the gate's write end (else the gate never
// opens) and the read ends of its siblings' pipes. It dies with the demo: the kernel sends it
// SIGKILL when the parent dies however it dies (the watcher would otherwise wait for
// "finished" forever). Being killed anywhere is safe for a participant.
template <class Body>
Child ForkChild(const std::vector<Child>& siblings, int gate_write_fd, Body body) {
  int fds[2];
  if (::pipe(fds) != 0) return Child{};
  std::fflush(nullptr);  // or the child would print the parent's buffered output again
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // If the parent died before prctl, the signal will never come: leave at once.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) ::_exit(1);
    ::close(fds[0]);
    ::close(gate_write_fd);
    for (const Child& sibling : siblings) ::close(sibling.fd);
    const int code = body(fds[1]);
    std::fflush(nullptr);
    ::_exit(code);
  }
  ::close(fds[1]);
  if (pid < 0) {
    ::close(fds[0]);
    return Child{};
  }
  Child child;
  child.pid = pid;
  child.fd = fds[0];
  return child;
}

// Moves complete messages out of a worker's buffer.
void ParseWorkerMessages(Child& child) {
  constexpr std::size_t kWord = sizeof(std::uint64_t);
  for (;;) {
    const std::size_t words = child.buffer.size() / kWord;
    if (words == 0) return;
    std::vector<std::uint64_t> w(std::min<std::size_t>(words, 3));
    std::memcpy(w.data(), child.buffer.data(), w.size() * kWord);
    std::size_t consumed = 0;
    if (w[0] == kReady) {
      child.ready = true;
      consumed = 1;
    } else if (w[0] == kProgress && words >= 2) {
      child.done = w[1];
      consumed = 2;
    } else if (w[0] == kFinished && words >= 3 && words - 3 >= w[2]) {
      child.end_nanos = w[1];
      child.latencies.resize(w[2]);
      std::memcpy(child.latencies.data(), child.buffer.data() + 3 * kWord, w[2] * kWord);
      child.done = w[2];
      consumed = 3 + w[2];
    } else {
      return;  // incomplete
    }
    child.buffer.erase(0, consumed * kWord);
  }
}

// Prints the watcher's complete lines, except its ready signal.
void PrintWatcherLines(Child& child, Progress& progress) {
  for (std::size_t end; (end = child.buffer.find('\n')) != std::string::npos;) {
    const std::string line = child.buffer.substr(0, end);
    child.buffer.erase(0, end + 1);
    if (line == kWatcherReady) {
      child.ready = true;
      continue;
    }
    progress.Clear();
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }
}

// Waits for input from any child still connected and handles it.
void Pump(std::vector<Child>& children, Progress& progress) {
  std::vector<pollfd> polled;
  std::vector<Child*> owners;
  for (Child& child : children) {
    if (child.fd < 0) continue;
    polled.push_back(pollfd{child.fd, POLLIN, 0});
    owners.push_back(&child);
  }
  if (polled.empty()) return;
  if (::poll(polled.data(), polled.size(), -1) < 0) return;  // EINTR: the caller loops
  for (std::size_t i = 0; i < polled.size(); ++i) {
    if (polled[i].revents == 0) continue;
    Child& child = *owners[i];
    char data[65536];
    const ssize_t n = ::read(child.fd, data, sizeof data);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // end of file: the child finished (or died)
      ::close(child.fd);
      child.fd = -1;
      child.ready = true;  // never wait for a dead child to become ready
      continue;
    }
    child.buffer.append(data, static_cast<std::size_t>(n));
    if (child.watcher) {
      PrintWatcherLines(child, progress);
    } else {
      ParseWorkerMessages(child);
    }
  }
}

struct Counters {
  std::uint64_t hot = 0;
  std::vector<std::uint64_t> workers;
};

absl::StatusOr<Counters> ReadCounters(Domain& domain, int processes) {
  absl::StatusOr<Atom> atom = domain.atom(kCountersAtom);
  if (!atom.ok()) return atom.status();
  absl::StatusOr<Snapshot> snapshot = atom->load();
  if (!snapshot.ok()) return snapshot.status();
  Counters counters;
  counters.hot = ParseCounter(snapshot->map().get(kHotKey));
  for (int i = 0; i < processes; ++i) {
    counters.workers.push_back(ParseCounter(snapshot->map().get(WorkerKey(i))));
  }
  return counters;
}

// Checks the exact totals: every swap counted once, in "hot" and in its worker's key.
absl::Status VerifyCounters(const Counters& before, const Counters& after, int processes,
                            std::uint64_t ops) {
  const std::uint64_t expected_hot = before.hot + processes * ops;
  if (after.hot != expected_hot) {
    return absl::DataLossError(
        absl::StrFormat("verification FAILED: hot = %d, expected %d", after.hot, expected_hot));
  }
  for (int i = 0; i < processes; ++i) {
    if (after.workers[i] != before.workers[i] + ops) {
      return absl::DataLossError(absl::StrFormat("verification FAILED: %s = %d, expected %d",
                                                 WorkerKey(i), after.workers[i],
                                                 before.workers[i] + ops));
    }
  }
  return absl::OkStatus();
}

absl::Status SetStatus(Domain& domain, std::string_view status) {
  absl::StatusOr<Atom> config = domain.atom(kConfigAtom);
  if (!config.ok()) return config.status();
  return config->swap([&](Transaction& tx) { return tx.set(kStatusKey, status); }).status();
}

double Micros(std::uint64_t nanos) { return static_cast<double>(nanos) / 1000.0; }

void PrintLatencies(std::vector<std::uint64_t> latencies) {
  if (latencies.empty()) return;
  std::sort(latencies.begin(), latencies.end());
  auto at = [&](double q) {
    return latencies[std::min(latencies.size() - 1,
                              static_cast<std::size_t>(q * static_cast<double>(latencies.size())))];
  };
  std::printf("swap latency: p50 %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us\n",
              Micros(at(0.50)), Micros(at(0.90)), Micros(at(0.99)), Micros(latencies.back()));
}

// Reopens the file once every other process is gone and prints what it holds.
absl::Status ShowSurvivingState(const std::string& path, int processes) {
  absl::StatusOr<Domain> domain = OpenDemoDomain(path);
  if (!domain.ok()) return domain.status();
  absl::StatusOr<Counters> counters = ReadCounters(*domain, processes);
  if (!counters.ok()) return counters.status();
  absl::StatusOr<Atom> config = domain->atom(kConfigAtom);
  if (!config.ok()) return config.status();
  absl::StatusOr<Snapshot> snapshot = config->load();
  if (!snapshot.ok()) return snapshot.status();
  const DomainStats stats = domain->stats();
  std::printf("reopened %s after every process exited (last closed cleanly: %s):\n", path.c_str(),
              domain->was_clean() ? "yes" : "no");
  std::printf("  counters: hot=%llu", static_cast<unsigned long long>(counters->hot));
  for (int i = 0; i < processes; ++i) {
    std::printf(" %s=%llu", WorkerKey(i).c_str(),
                static_cast<unsigned long long>(counters->workers[i]));
  }
  std::printf("\n  config (version %llu):", static_cast<unsigned long long>(snapshot->version()));
  for (const char* key : {"leader", "generation", kStatusKey}) {
    std::printf(" %s=%s", key, std::string(snapshot->map().get(key).value_or("-")).c_str());
  }
  std::printf("\n  space: %llu bytes live, %llu free, %llu pending garbage\n",
              static_cast<unsigned long long>(stats.live_bytes),
              static_cast<unsigned long long>(stats.free_bytes),
              static_cast<unsigned long long>(stats.pending_garbage_bytes));
  return absl::OkStatus();
}

}  // namespace

absl::Status RunDemo(const DemoArgs& args) {
  const std::string path = args.path.empty() ? DefaultPath() : args.path;
  const int processes = args.processes;
  const std::uint64_t ops = args.ops;
  {
    // Create the file (or validate the one a previous run left) before any child opens it,
    // and undo a previous run's "finished" before the watcher starts.
    absl::StatusOr<Domain> domain = Domain::Open(path);
    if (!domain.ok()) return domain.status();
    if (absl::Status status = SetStatus(*domain, "running"); !status.ok()) return status;
  }
  std::printf("atomap demo on %s: %d worker processes x %llu swaps, and a watcher process\n",
              path.c_str(), processes, static_cast<unsigned long long>(ops));
  std::printf("  each swap adds 1 to \"hot\" (shared by all) and to \"worker/<i>\" in atom "
              "\"counters\";\n  now and then a worker changes atom \"config\", and the watcher "
              "prints it\n");

  int gate[2];
  if (::pipe(gate) != 0) return absl::InternalError("demo: pipe failed");
  std::vector<Child> children;
  Child watcher = ForkChild(children, gate[1], [&](int fd) { return RunWatcher(path, fd); });
  watcher.watcher = true;
  std::printf("  watcher process: pid %d\n", static_cast<int>(watcher.pid));
  std::fflush(stdout);  // a script (or a test) can learn the watcher's pid at once
  children.push_back(std::move(watcher));
  for (int i = 0; i < processes; ++i) {
    children.push_back(ForkChild(children, gate[1],
                                 [&, i](int fd) { return RunWorker(path, i, ops, fd, gate[0]); }));
  }
  ::close(gate[0]);

  // The parent opens its own handle only now, after the last fork.
  absl::StatusOr<Domain> domain = OpenDemoDomain(path);
  absl::StatusOr<Counters> before =
      domain.ok() ? ReadCounters(*domain, processes) : absl::StatusOr<Counters>(domain.status());
  if (before.ok() && before->hot != 0) {
    std::printf("  (the file already holds hot=%llu from earlier runs: the demo verifies the "
                "increase)\n",
                static_cast<unsigned long long>(before->hot));
  }
  const std::uint64_t total = processes * ops;
  Progress progress("swaps", total);
  auto all_ready = [&] {
    return std::all_of(children.begin(), children.end(),
                       [](const Child& c) { return c.ready || c.fd < 0; });
  };
  auto workers_done = [&] {
    return std::all_of(children.begin() + 1, children.end(),
                       [](const Child& c) { return c.fd < 0; });
  };
  while (!all_ready()) Pump(children, progress);

  const std::uint64_t start = NowNanos();
  ::close(gate[1]);  // the start gate opens: every worker's read returns end of file
  while (!workers_done()) {
    Pump(children, progress);
    std::uint64_t done = 0;
    for (std::size_t i = 1; i < children.size(); ++i) done += children[i].done;
    progress.Update(done);
  }
  progress.Clear();

  absl::Status status = domain.ok() ? before.status() : domain.status();
  absl::StatusOr<Counters> after =
      status.ok() ? ReadCounters(*domain, processes) : absl::StatusOr<Counters>(status);
  if (status.ok()) status = after.status();
  if (status.ok()) status = SetStatus(*domain, "finished");  // the watcher exits when it sees it
  while (children[0].fd >= 0) Pump(children, progress);

  int failed_children = 0;
  for (const Child& child : children) {
    int wstatus = 0;
    if (child.pid < 0 || ::waitpid(child.pid, &wstatus, 0) < 0 || !WIFEXITED(wstatus) ||
        WEXITSTATUS(wstatus) != 0) {
      ++failed_children;
    }
  }
  if (status.ok() && failed_children > 0) {
    status =
        absl::InternalError(absl::StrFormat("demo: %d child process(es) failed", failed_children));
  }
  if (!status.ok()) return status;
  status = VerifyCounters(*before, *after, processes, ops);
  if (!status.ok()) return status;

  std::uint64_t end = start;
  std::vector<std::uint64_t> latencies;
  for (std::size_t i = 1; i < children.size(); ++i) {
    end = std::max(end, children[i].end_nanos);
    latencies.insert(latencies.end(), children[i].latencies.begin(), children[i].latencies.end());
  }
  const double seconds = static_cast<double>(end - start) / 1e9;
  std::printf("verified: hot increased by %llu = %d processes x %llu swaps; each worker/<i> by "
              "%llu\n",
              static_cast<unsigned long long>(total), processes,
              static_cast<unsigned long long>(ops), static_cast<unsigned long long>(ops));
  std::printf("throughput: %.0f swaps/s (%llu swaps in %.2f s)\n",
              seconds > 0 ? static_cast<double>(total) / seconds : 0.0,
              static_cast<unsigned long long>(total), seconds);
  PrintLatencies(std::move(latencies));

  domain = absl::CancelledError("closed");  // closes the parent's handle: now no process has it
  return ShowSurvivingState(path, processes);
}

}  // namespace atomap::cli

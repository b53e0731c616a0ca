// replicate_bench: versions per second carried from one domain to another through a real
// nats-server (docs/replication.md), and the lag from a writer's swap to the follower's apply,
// for small diffs and for one 100K-key bulk change; against a naive full copy of the atom per
// version (the same path with --full-every 1: every record is the whole map).
//
// Usage: replicate_bench [--server /usr/sbin/nats-server] [--keys 10000] [--versions 20000]
//                        [--closed 500] [--bulk 100000]
// It starts its own nats-server -js on 127.0.0.1 (a free port, a temporary store) and stops it.
// One process: the writer (main thread), a publisher thread and a follower thread, each on its
// own domain handle (a snapshot belongs to its thread).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "atomap/domain.h"
#include "atomap/replicate.h"

namespace atomap {
namespace {

struct Args {
  std::string server = "/usr/sbin/nats-server";
  int keys = 10000;       // the atom's size for the small-diff runs
  int versions = 20000;   // swaps in the open-loop (throughput) run
  int closed = 500;       // swaps in the closed-loop (lag) run
  int bulk = 100000;      // keys of the bulk change
};

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

bool Accepts(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

void Die(const std::string& what) {
  std::fprintf(stderr, "replicate_bench: %s\n", what.c_str());
  std::exit(1);
}

template <class T>
T Must(absl::StatusOr<T> value, const char* what) {
  if (!value.ok()) Die(absl::StrCat(what, ": ", value.status().ToString()));
  return *std::move(value);
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

std::string Value(int key, int round) {
  return absl::StrCat("value-", key, "-", round, "-xxxxxxxx");
}

// One run: a fresh source and replica atom, a publisher and a follower thread.
class Run {
 public:
  Run(Domain& a, Domain& b, const std::string& url, const std::string& atom,
      std::uint64_t full_every)
      : source_(Must(a.atom(atom), "source atom")), replica_(Must(b.atom(atom), "replica atom")) {
    options_.nats_url = url;
    options_.stream = "BENCH";
    options_.full_every = full_every;
  }

  void Fill(int keys) {
    Must(source_.swap([&](Transaction& tx) {
      for (int i = 0; i < keys; ++i) {
        if (absl::Status s = tx.set(absl::StrCat("key", i), Value(i, 0)); !s.ok()) return s;
      }
      return absl::OkStatus();
    }),
         "fill");
  }

  // Starts both threads; returns once the follower holds the source's current version.
  void Start() {
    write_ns_ = std::vector<std::atomic<std::int64_t>>(1 << 20);
    next_version_ = Must(source_.version(), "version") + 1;
    publisher_ = std::thread([this] {
      ReplicationPublisher p = Must(ReplicationPublisher::Start(source_, options_), "publisher");
      while (!stop_.load()) Must(p.PublishNext(absl::Milliseconds(50)), "publish");
    });
    follower_ = std::thread([this] {
      ReplicationFollower f = Must(ReplicationFollower::Start(replica_, options_), "follower");
      while (!stop_.load()) {
        if (!Must(f.ApplyNext(absl::Milliseconds(50)), "follow")) continue;
        const std::uint64_t v = f.stats().last_version;
        const std::int64_t now = absl::ToUnixNanos(absl::Now());
        // Every version the record covered: its lag from the writer's swap.
        for (std::uint64_t w = applied_.load() + 1; w <= v && w < write_ns_.size(); ++w) {
          const std::int64_t written = write_ns_[w].load();
          if (written != 0) lags_.push_back(static_cast<double>(now - written) / 1e6);
        }
        records_.fetch_add(1);
        applied_.store(v);
        applied_.notify_all();
      }
    });
    WaitApplied(Must(source_.version(), "version"));
    lags_.clear();  // the threads' start and the initial full record are not measured
  }

  // One swap changing `n` keys (round-robin over `keys`); returns its version. Its time is
  // stored before it is published (this is the atom's only writer: the version is known).
  std::uint64_t Swap(int n, int keys) {
    ++round_;
    if (next_version_ < write_ns_.size())
      write_ns_[next_version_].store(absl::ToUnixNanos(absl::Now()));
    Snapshot s = Must(source_.swap([&](Transaction& tx) {
      for (int i = 0; i < n; ++i) {
        const int key = (round_ * 7919 + i) % keys;
        if (absl::Status st = tx.set(absl::StrCat("key", key), Value(key, round_)); !st.ok()) {
          return st;
        }
      }
      return absl::OkStatus();
    }),
                      "swap");
    if (s.version() != next_version_) Die("another writer changed the bench's atom");
    ++next_version_;
    return s.version();
  }

  void WaitApplied(std::uint64_t version) {
    for (std::uint64_t seen = applied_.load(); seen < version; seen = applied_.load()) {
      applied_.wait(seen);  // the follower thread notifies after each record
    }
  }

  void Stop() {
    stop_.store(true);
    publisher_.join();
    follower_.join();
  }

  std::vector<double> TakeLags() {
    std::vector<double> out;
    out.swap(lags_);
    return out;
  }
  std::uint64_t records() const { return records_.load(); }

 private:
  Atom source_, replica_;
  ReplicationOptions options_;
  std::thread publisher_, follower_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> applied_{0};
  std::atomic<std::uint64_t> records_{0};
  std::vector<std::atomic<std::int64_t>> write_ns_;  // by version: when its swap began
  std::uint64_t next_version_ = 0;
  std::vector<double> lags_;            // ms; the follower thread's, read after WaitApplied
  int round_ = 0;
};

void Report(const char* name, double seconds, std::uint64_t versions, std::uint64_t records,
            const std::vector<double>& lags) {
  std::printf("%-44s %9.0f versions/s %9.0f records/s  lag p50 %8.3f ms  p99 %8.3f ms\n", name,
              static_cast<double>(versions) / seconds, static_cast<double>(records) / seconds,
              Percentile(lags, 0.5), Percentile(lags, 0.99));
  std::fflush(stdout);
}

void SmallDiffs(Domain& a, Domain& b, const std::string& url, const Args& args,
                std::uint64_t full_every, const char* label) {
  Run run(a, b, url, absl::StrCat("small-", full_every), full_every);
  run.Fill(args.keys);
  run.Start();
  // Open loop: the writer as fast as it goes; the publisher merges what it has not seen yet.
  std::uint64_t records_before = run.records();
  absl::Time t0 = absl::Now();
  std::uint64_t last = 0;
  for (int i = 0; i < args.versions; ++i) last = run.Swap(1 + i % 4, args.keys);
  run.WaitApplied(last);
  double seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  Report(absl::StrCat(label, ", open loop").c_str(), seconds, args.versions,
         run.records() - records_before, run.TakeLags());
  // Closed loop: one swap, then wait for the follower: each record one version, lag unqueued.
  records_before = run.records();
  t0 = absl::Now();
  for (int i = 0; i < args.closed; ++i) run.WaitApplied(run.Swap(1 + i % 4, args.keys));
  seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  Report(absl::StrCat(label, ", closed loop").c_str(), seconds, args.closed,
         run.records() - records_before, run.TakeLags());
  run.Stop();
}

void Bulk(Domain& a, Domain& b, const std::string& url, const Args& args) {
  Run run(a, b, url, "bulk", 1000);
  run.Start();
  std::vector<double> lags;
  const int rounds = 3;
  absl::Time t0 = absl::Now();
  for (int i = 0; i < rounds; ++i) {
    run.WaitApplied(run.Swap(args.bulk, args.bulk));  // every key set (new values each round)
    std::vector<double> some = run.TakeLags();
    lags.insert(lags.end(), some.begin(), some.end());
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  Report(absl::StrCat("bulk change of ", args.bulk, " keys, closed loop").c_str(), seconds, rounds,
         rounds, lags);
  run.Stop();
}

int Main(int argc, char** argv) {
  Args args;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--server") args.server = argv[i + 1];
    else if (flag == "--keys") args.keys = std::atoi(argv[i + 1]);
    else if (flag == "--versions") args.versions = std::atoi(argv[i + 1]);
    else if (flag == "--closed") args.closed = std::atoi(argv[i + 1]);
    else if (flag == "--bulk") args.bulk = std::atoi(argv[i + 1]);
    else Die("unknown flag " + flag);
  }
  char dir_template[] = "/tmp/atomap-replicate-bench-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) Die("mkdtemp failed");
  const std::string dir = dir_template;
  const int port = FreePort();
  // The server first, before any thread of this process starts (libnats, the runs).
  const pid_t server = fork();
  if (server == 0) {
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    execl(args.server.c_str(), args.server.c_str(), "-js", "-a", "127.0.0.1", "-p",
          std::to_string(port).c_str(), "-sd", (dir + "/js").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!Accepts(port)) {
    if (absl::Now() > give_up) Die("nats-server did not start: " + args.server);
    absl::SleepFor(absl::Milliseconds(20));
  }
  const std::string url = absl::StrCat("nats://127.0.0.1:", port);
  {
    Domain a = Must(Domain::Open(dir + "/a.atomap"), "domain a");
    Domain b = Must(Domain::Open(dir + "/b.atomap"), "domain b");
    std::printf("atomap replicate_bench: %d-key atom, %d open-loop and %d closed-loop swaps of 1-4 "
                "keys; nats-server at %s\n",
                args.keys, args.versions, args.closed, url.c_str());
    SmallDiffs(a, b, url, args, 1000, "small diffs (a full record every 1000)");
    SmallDiffs(a, b, url, args, 1, "naive: a full copy per version");
    Bulk(a, b, url, args);
  }
  kill(server, SIGTERM);
  waitpid(server, nullptr, 0);
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace atomap

int main(int argc, char** argv) { return atomap::Main(argc, argv); }

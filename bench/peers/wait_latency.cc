// atomap only: publish-to-wake latency of wait_for_change across two processes. The parent
// publishes its clock in atom "ping" and waits on "pong"; the child, blocked on "ping", takes
// the time it woke minus the published time, then publishes "pong". The monotonic clock is the
// same in both processes.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <vector>

#include "atomap/domain.h"
#include "measure.h"
#include "procs.h"
#include "workloads.h"

namespace atomap::peers {
namespace {

template <class T>
T Must(absl::StatusOr<T> v) {
  if (!v.ok()) {
    std::fprintf(stderr, "atomap: %s\n", v.status().ToString().c_str());
    std::abort();
  }
  return std::move(*v);
}

struct Pair {
  Domain domain;
  Atom ping, pong;
};

Pair OpenPair(const std::string& path) {
  Domain d = Must(Domain::Open(path));
  Atom ping = Must(d.atom("ping"));
  Atom pong = Must(d.atom("pong"));
  return Pair{std::move(d), ping, pong};
}

void Publish(Atom& atom, std::uint64_t value) {
  char bytes[8];
  std::memcpy(bytes, &value, 8);
  Must(atom.swap([&](Transaction& tx) { return tx.set("t", std::string_view(bytes, 8)); }));
}

}  // namespace

void RunWaitLatency(const std::string& dir, std::uint64_t rounds, Output& out) {
  const std::string path = dir + "/wait.atomap";
  std::optional<Pair> child;
  std::uint64_t seen = 0;
  Worker waiter{[&] {
                  child.emplace(OpenPair(path));
                  seen = Must(child->ping.version());
                },
                [&] {
                  std::vector<std::uint64_t> lat;
                  for (std::uint64_t i = 0; i < rounds; ++i) {
                    Snapshot snap = Must(child->ping.wait_for_change(seen));
                    const std::uint64_t woke = NowNs();
                    seen = snap.version();
                    std::uint64_t sent = 0;
                    if (auto v = snap.map().get("t"); v && v->size() == 8) {
                      std::memcpy(&sent, v->data(), 8);
                    }
                    lat.push_back(woke - sent);
                    Publish(child->pong, i);
                  }
                  ChildResult r;
                  r.ops = rounds;
                  for (std::uint64_t v : lat) r.ns += v;
                  r.p50_ns = static_cast<std::uint64_t>(Quantile(lat, 0.5));
                  r.p99_ns = static_cast<std::uint64_t>(Quantile(lat, 0.99));
                  child.reset();
                  return r;
                }};
  const std::vector<ChildResult> r = RunProcesses({waiter}, {}, [&] {
    Pair parent = OpenPair(path);
    std::uint64_t pong_seen = Must(parent.pong.version());
    for (std::uint64_t i = 0; i < rounds; ++i) {
      Publish(parent.ping, NowNs());
      pong_seen = Must(parent.pong.wait_for_change(pong_seen)).version();
    }
  });
  Sample s{rounds, static_cast<double>(r[0].ns) / static_cast<double>(rounds),
           static_cast<double>(r[0].p50_ns), static_cast<double>(r[0].p99_ns)};
  out.Write({"atomap", "wake_latency", 1, 2, s});
}

}  // namespace atomap::peers

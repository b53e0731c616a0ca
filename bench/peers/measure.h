// Timing of one workload on one system: the mean over an untimed-per-op pass, and p50/p99 from
// a second pass that times every operation (the clock's cost stays out of the mean).
#ifndef ATOMAP_BENCH_PEERS_MEASURE_H_
#define ATOMAP_BENCH_PEERS_MEASURE_H_

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace atomap::peers {

inline std::uint64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Sample {
  std::uint64_t ops = 0;
  double ns_per_op = 0;
  std::optional<double> p50_ns, p99_ns;
};

// The q-quantile (0..1) of `ns`, which it sorts.
inline double Quantile(std::vector<std::uint64_t>& ns, double q) {
  if (ns.empty()) return 0;
  std::sort(ns.begin(), ns.end());
  return static_cast<double>(ns[std::min(ns.size() - 1, static_cast<std::size_t>(q * ns.size()))]);
}

// Runs op(i) for i in [0, ops) twice: once for the mean, once timing each call.
template <class Op>
Sample Measure(std::uint64_t ops, Op&& op) {
  Sample s;
  s.ops = ops;
  const std::uint64_t t0 = NowNs();
  for (std::uint64_t i = 0; i < ops; ++i) op(i);
  s.ns_per_op = static_cast<double>(NowNs() - t0) / static_cast<double>(ops);
  std::vector<std::uint64_t> each(ops);
  for (std::uint64_t i = 0; i < ops; ++i) {
    const std::uint64_t a = NowNs();
    op(ops + i);
    each[i] = NowNs() - a;
  }
  s.p50_ns = Quantile(each, 0.50);
  s.p99_ns = Quantile(each, 0.99);
  return s;
}

// One timed run of fn() (for operations done once: a bulk load, an open).
template <class Fn>
Sample MeasureOnce(std::uint64_t ops, Fn&& fn) {
  const std::uint64_t t0 = NowNs();
  fn();
  Sample s;
  s.ops = ops;
  s.ns_per_op = static_cast<double>(NowNs() - t0) / static_cast<double>(ops);
  return s;
}

}  // namespace atomap::peers

#endif  // ATOMAP_BENCH_PEERS_MEASURE_H_

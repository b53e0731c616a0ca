// Forked worker processes that start together: each child prepares (attaches), reports ready
// through a pipe and blocks on a "go" pipe that the parent closes once all are ready (no
// sleeps). Each child sends back what it measured through its own result pipe.
#ifndef ATOMAP_BENCH_PEERS_PROCS_H_
#define ATOMAP_BENCH_PEERS_PROCS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

namespace atomap::peers {

struct ChildResult {
  std::uint64_t ops = 0;
  std::uint64_t ns = 0;       // elapsed from "go" to done
  std::uint64_t p50_ns = 0;   // 0 when the child did not time single operations
  std::uint64_t p99_ns = 0;
  std::uint64_t check = 0;    // a value the parent may verify (e.g. a final count)
  std::uint64_t warm_p99_ns = 0;   // update_after_reopen: p99 of the swaps after the first ones
  std::uint64_t minor_faults = 0;  // update_after_reopen: page faults of the first swaps
  std::uint64_t warm_minor_faults = 0;  // update_after_reopen: page faults of the next ones
};

// A flag in memory shared with forked children (MAP_SHARED anonymous), for "stop".
class SharedFlag {
 public:
  SharedFlag();
  ~SharedFlag();
  SharedFlag(const SharedFlag&) = delete;
  SharedFlag& operator=(const SharedFlag&) = delete;
  std::atomic<int>& get() { return *flag_; }

 private:
  std::atomic<int>* flag_;
};

struct Worker {
  std::function<void()> prepare;       // in the child, before "ready"
  std::function<ChildResult()> run;    // in the child, after "go"
};

// Forks one child per worker and returns their results in order. `after_go` runs in the parent
// once all children were released, with the results of the children in `wait_first` collected
// first (the parent may then, e.g., raise a stop flag for the others). Aborts on failure.
std::vector<ChildResult> RunProcesses(const std::vector<Worker>& workers,
                                      const std::vector<int>& wait_first = {},
                                      const std::function<void()>& after_first = {});

}  // namespace atomap::peers

#endif  // ATOMAP_BENCH_PEERS_PROCS_H_

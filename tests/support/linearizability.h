// A linearizability checker (Wing & Gong's search, memoised as in Lowe's refinement): is there a
// total order of the operations of a concurrent history that respects real time (an operation
// that returned before another was invoked comes first) and in which every operation's result is
// what a sequential model gives?
//
// The model here is one register of an atom, holding a u64 (0 when absent), with four
// operations: read (returns the value), write (sets a unique value), increment (sets value+1
// and returns it) and compare-and-set (if the value is `expected`, sets `value` and says it
// matched; otherwise changes nothing and says it did not). Histories of a few hundred operations
// from a few processes check in milliseconds: the memo of (operations linearised, register value)
// bounds the search.
#ifndef ATOMAP_TESTS_SUPPORT_LINEARIZABILITY_H_
#define ATOMAP_TESTS_SUPPORT_LINEARIZABILITY_H_

#include <cstdint>
#include <vector>

namespace atomap {

struct RegisterOp {
  enum class Kind : std::uint32_t { kRead, kWrite, kIncrement, kCompareAndSet };
  Kind kind;
  std::uint32_t process;
  std::uint64_t value;      // kWrite/kCompareAndSet: the value written; kRead/kIncrement: the
                            // value returned
  std::int64_t invoke_ns;   // CLOCK_MONOTONIC, comparable across processes
  std::int64_t respond_ns;
  std::uint64_t expected = 0;  // kCompareAndSet: the value compared with (0: absent)
  bool matched = false;        // kCompareAndSet: what the operation reported
};

struct LinearizabilityResult {
  bool linearizable = false;
  std::uint64_t states_explored = 0;
};

// `initial`: the register's value before the history.
LinearizabilityResult CheckLinearizable(const std::vector<RegisterOp>& history,
                                        std::uint64_t initial = 0);

// CLOCK_MONOTONIC in nanoseconds.
std::int64_t MonotonicNanos();

}  // namespace atomap

#endif  // ATOMAP_TESTS_SUPPORT_LINEARIZABILITY_H_

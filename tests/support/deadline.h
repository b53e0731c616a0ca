// Runs code that a bug could make hang (a walk of a damaged chain) in a forked child with a
// deadline, so that the old code fails a test instead of hanging ctest. No sleeps: the parent
// waits on a pipe whose write end only the child holds, with poll()'s timeout as the deadline.
#ifndef ATOMAP_TESTS_SUPPORT_DEADLINE_H_
#define ATOMAP_TESTS_SUPPORT_DEADLINE_H_

#include <functional>
#include <string>

namespace atomap {

struct BoundedRun {
  bool hung = false;   // still running at the deadline (then killed)
  int exit_code = -1;  // as WaitChild: the exit code, or 128 + the signal
  std::string output;  // what the child wrote to `out_fd`
};

// Forks; the child runs `body(out_fd)` and _exits with its result (125 if it throws), or execs
// with its output sent to out_fd. Collects the output until the child exits or `deadline_ms`
// passes; then kills its process group (the child and whatever it forked) with SIGKILL.
BoundedRun RunBounded(const std::function<int(int out_fd)>& body, int deadline_ms);

}  // namespace atomap

#endif  // ATOMAP_TESTS_SUPPORT_DEADLINE_H_

#include "support/deadline.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "support/process.h"

namespace atomap {

BoundedRun RunBounded(const std::function<int(int out_fd)>& body, int deadline_ms) {
  BoundedRun run;
  int fds[2];
  if (pipe(fds) != 0) return run;
  const pid_t pid = ForkChild([&] {
    // Its own process group, so that the deadline kills whatever it forked too; and no
    // exception may leave the child (it would run the rest of the test program).
    setpgid(0, 0);
    close(fds[0]);
    try {
      return body(fds[1]);
    } catch (...) {
      return 125;
    }
  });
  setpgid(pid, pid);  // also here: the group exists before the parent may signal it
  close(fds[1]);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      run.hung = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int n = poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {
      run.hung = true;
      break;
    }
    char buffer[4096];
    const ssize_t got = read(fds[0], buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // end of file: the child has exited
    run.output.append(buffer, static_cast<std::size_t>(got));
  }
  close(fds[0]);
  if (run.hung) kill(-pid, SIGKILL);
  run.exit_code = WaitChild(pid);
  return run;
}

}  // namespace atomap

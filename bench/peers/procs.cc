#include "procs.h"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <new>

namespace atomap::peers {
namespace {

[[noreturn]] void Fail(const char* what) {
  std::perror(what);
  std::abort();
}

void WriteAll(int fd, const void* p, std::size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = write(fd, c, n);
    if (w <= 0) Fail("write");
    c += w;
    n -= static_cast<std::size_t>(w);
  }
}

void ReadAll(int fd, void* p, std::size_t n) {
  char* c = static_cast<char*>(p);
  while (n > 0) {
    const ssize_t r = read(fd, c, n);
    if (r <= 0) Fail("read (a child died?)");
    c += r;
    n -= static_cast<std::size_t>(r);
  }
}

void MakePipe(int fds[2]) {
  if (pipe(fds) != 0) Fail("pipe");
}

}  // namespace

SharedFlag::SharedFlag() {
  void* p = mmap(nullptr, sizeof(std::atomic<int>), PROT_READ | PROT_WRITE,
                 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) Fail("mmap");
  flag_ = new (p) std::atomic<int>(0);
}

SharedFlag::~SharedFlag() { munmap(flag_, sizeof(std::atomic<int>)); }

std::vector<ChildResult> RunProcesses(const std::vector<Worker>& workers,
                                      const std::vector<int>& wait_first,
                                      const std::function<void()>& after_first) {
  int ready[2], go[2];
  MakePipe(ready);
  MakePipe(go);
  std::vector<int> result_fds;
  std::vector<pid_t> pids;
  std::fflush(nullptr);
  for (const Worker& w : workers) {
    int result[2];
    MakePipe(result);
    const pid_t pid = fork();
    if (pid < 0) Fail("fork");
    if (pid == 0) {
      close(ready[0]);
      close(go[1]);
      close(result[0]);
      w.prepare();
      const char byte = 1;
      WriteAll(ready[1], &byte, 1);
      char eof;
      if (read(go[0], &eof, 1) != 0) Fail("go pipe");
      const ChildResult r = w.run();
      WriteAll(result[1], &r, sizeof r);
      _exit(0);
    }
    close(result[1]);
    result_fds.push_back(result[0]);
    pids.push_back(pid);
  }
  close(ready[1]);
  close(go[0]);
  for (std::size_t i = 0; i < workers.size(); ++i) {
    char byte;
    ReadAll(ready[0], &byte, 1);
  }
  close(go[1]);  // every child's read returns 0: all start together
  close(ready[0]);
  std::vector<ChildResult> results(workers.size());
  std::vector<bool> done(workers.size(), false);
  for (int i : wait_first) {
    ReadAll(result_fds[i], &results[i], sizeof(ChildResult));
    done[i] = true;
  }
  if (after_first) after_first();
  for (std::size_t i = 0; i < workers.size(); ++i) {
    if (!done[i]) ReadAll(result_fds[i], &results[i], sizeof(ChildResult));
    close(result_fds[i]);
  }
  for (pid_t pid : pids) {
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      Fail("child exit");
    }
  }
  return results;
}

}  // namespace atomap::peers

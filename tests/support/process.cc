#include "support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace atomap {
namespace {

void MakePipe(int* read_fd, int* write_fd) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  *read_fd = fds[0];
  *write_fd = fds[1];
}

void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

}  // namespace

Gate::Gate() { MakePipe(&read_fd_, &write_fd_); }
Gate::~Gate() {
  CloseFd(&read_fd_);
  CloseFd(&write_fd_);
}

void Gate::Wait() {
  CloseFd(&write_fd_);  // the child's copy: only the parent's may keep the pipe open
  char c;
  while (read(read_fd_, &c, 1) < 0 && errno == EINTR) {
  }
}

void Gate::Open() { CloseFd(&write_fd_); }

ReportPipe::ReportPipe() { MakePipe(&read_fd_, &write_fd_); }
ReportPipe::~ReportPipe() {
  CloseFd(&read_fd_);
  CloseFd(&write_fd_);
}

void ReportPipe::Send(const void* record, std::size_t size) {
  while (write(write_fd_, record, size) < 0 && errno == EINTR) {
  }
}

void ReportPipe::CloseWriteEnd() { CloseFd(&write_fd_); }

bool ReportPipe::Receive(void* record, std::size_t size) {
  std::size_t got = 0;
  while (got < size) {
    const ssize_t n = read(read_fd_, static_cast<char*>(record) + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got += static_cast<std::size_t>(n);
  }
  return true;
}

pid_t ForkChild(const std::function<int()>& body) {
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    // Catch2 traps fatal signals to report them; a child must die of them instead (tests check).
    for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE, SIGTERM, SIGINT}) {
      signal(sig, SIG_DFL);
    }
    _exit(body());
  }
  return pid;
}

int WaitChild(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

void ExecProgram(const std::string& path, const std::vector<std::string>& args) {
  std::vector<std::string> copies(args);  // execv takes char*, and must not write the caller's
  std::string program = path;
  std::vector<char*> argv{program.data()};
  for (std::string& arg : copies) argv.push_back(arg.data());
  argv.push_back(nullptr);
  execv(program.c_str(), argv.data());
  _exit(127);
}

ProgramRun RunCapturingStdout(const std::string& path, const std::vector<std::string>& args,
                              bool discard_stderr) {
  ProgramRun run;
  int out[2];
  if (pipe(out) != 0) return run;
  const pid_t pid = fork();
  if (pid < 0) return run;
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    if (discard_stderr) {
      const int null = open("/dev/null", O_WRONLY);
      dup2(null, STDERR_FILENO);
    }
    close(out[0]);
    close(out[1]);
    ExecProgram(path, args);
  }
  close(out[1]);
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(out[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    run.out.append(buffer, static_cast<std::size_t>(n));
  }
  close(out[0]);
  run.status = WaitChild(pid);
  return run;
}

}  // namespace atomap

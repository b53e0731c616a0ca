// Helpers for multi-process tests: fork a child that runs a function and _exits, release many
// children at once through a pipe, collect fixed-size reports through another. No sleeps: every
// wait is on a pipe or a child's exit.
#ifndef ATOMAP_TESTS_SUPPORT_PROCESS_H_
#define ATOMAP_TESTS_SUPPORT_PROCESS_H_

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace atomap {

// A one-shot barrier: children Wait() until the parent calls Open(). Create it before forking.
class Gate {
 public:
  Gate();
  ~Gate();
  Gate(const Gate&) = delete;
  Gate& operator=(const Gate&) = delete;
  // In a child: blocks until the parent opens the gate (or dies).
  void Wait();
  // In the parent: releases every waiting child.
  void Open();

 private:
  int read_fd_ = -1;
  int write_fd_ = -1;
};

// A pipe of fixed-size records from children to the parent. Create it before forking.
class ReportPipe {
 public:
  ReportPipe();
  ~ReportPipe();
  ReportPipe(const ReportPipe&) = delete;
  ReportPipe& operator=(const ReportPipe&) = delete;
  // REQUIRES: size <= PIPE_BUF (so writes of many children never interleave).
  void Send(const void* record, std::size_t size);
  // Blocks for one record; false at end of file or error.
  bool Receive(void* record, std::size_t size);
  // In the parent, after forking the only writer(s): closes the parent's write end, so that
  // Receive reports end of file once every child holding it has exited or been killed.
  void CloseWriteEnd();
  template <class T>
  void Send(const T& record) {
    Send(&record, sizeof record);
  }
  template <class T>
  std::optional<T> Receive() {
    T record;
    if (!Receive(&record, sizeof record)) return std::nullopt;
    return record;
  }

 private:
  int read_fd_ = -1;
  int write_fd_ = -1;
};

// Forks; the child runs `body` and _exits with its result (no destructors, no atexit: safe under
// the sanitizers and with Catch2's state). Returns the child's pid in the parent.
pid_t ForkChild(const std::function<int()>& body);

// Waits for `pid`: its exit code, or 128 + the signal that killed it.
int WaitChild(pid_t pid);

// In a forked child: replaces the process with `path`, given `args` (argv[0] is `path`), or
// _exits with 127 if it cannot.
[[noreturn]] void ExecProgram(const std::string& path, const std::vector<std::string>& args);

// What RunCapturingStdout collected.
struct ProgramRun {
  int status = -1;  // as WaitChild reports it
  std::string out;
};

// Runs `path` with `args` in a child, its stdout captured to the end and its stderr inherited
// (or discarded), and reaps it.
ProgramRun RunCapturingStdout(const std::string& path, const std::vector<std::string>& args,
                              bool discard_stderr = false);

}  // namespace atomap

#endif  // ATOMAP_TESTS_SUPPORT_PROCESS_H_

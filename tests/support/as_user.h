// Runs test code as other users: fork, drop to unused numeric ids (no passwd entries needed),
// run a function, report back through a pipe. Every wait of the parent has a deadline: a child
// that hangs is killed and the test fails naming what it was doing, so CI never hangs.
//
// Usage:
//
//   if (!IsRootForUsers()) { WARN("SKIP: " << kNeedsRoot); return; }
//   UserDir dir;                                  // 0755, owned by kOwner
//   UserProcess reader = UserProcess::Start(kReader, "reader", [&](UserChild& child) {
//     ...                                         // runs as uid 4202, gid 4200
//     child.report().count[0] = reads;
//     if (bad) child.report().Fail("torn: sum ", sum);
//   });
//   UserOutcome outcome = reader.Finish(/*deadline_ms=*/5000);
//   CHECK(outcome.clean());                      // exited 0, reported, no error
//
// Steps: a child calls Signal() when it reaches a point the parent waits for (a pin taken, locks
// held) and WaitGo() to block until the parent says Go() (or closes the pipe, or dies). The
// parent's WaitSignal() has a deadline too.
//
// REQUIRES: the parent forks before it starts any thread (TSan), and holds no Domain open while
// it forks (a child's inherited descriptors would keep the parent's locks alive).
#ifndef ATOMAP_TESTS_SUPPORT_AS_USER_H_
#define ATOMAP_TESTS_SUPPORT_AS_USER_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>

#include "absl/strings/str_cat.h"

namespace atomap {

// A user the test becomes: ids that no real account is expected to use.
struct TestUser {
  uid_t uid;
  gid_t gid;
  gid_t supplementary;  // the one supplementary group, or kNoGroup
};
inline constexpr gid_t kNoGroup = static_cast<gid_t>(-1);
inline constexpr gid_t kSharedGroup = 4200;
inline constexpr TestUser kOwner = {4201, kSharedGroup, kSharedGroup};     // creates, writes
inline constexpr TestUser kReader = {4202, kSharedGroup, kSharedGroup};    // reads via the group
inline constexpr TestUser kStranger = {4203, 4203, kNoGroup};              // in no shared group

inline constexpr const char* kNeedsRoot =
    "needs root to run readers as other users (sudo ctest -L users)";

// True if this process may switch users (euid 0).
bool IsRootForUsers();

// What a child tells the parent at its end. Fixed size, below PIPE_BUF: one atomic write.
struct UserReport {
  static constexpr int kCounts = 8;
  std::uint64_t count[kCounts] = {};
  std::uint32_t errors = 0;  // how many Fail() calls (only the first one's text is kept)
  char error[480] = {};

  template <class... Args>
  void Fail(const Args&... parts) {
    if (errors++ == 0) SetError(absl::StrCat(parts...));
  }
  void SetError(const std::string& text);
};

// How a child ended, as the parent saw it.
struct UserOutcome {
  std::string what;          // the name given to Start
  bool hung = false;         // still running at the deadline (then killed)
  int exit_code = -1;        // WaitChild's: the exit code, or 128 + the signal
  bool reported = false;     // its UserReport arrived
  UserReport report;
  // Exited 0 with a report and no Fail().
  bool clean() const { return !hung && exit_code == 0 && reported && report.errors == 0; }
  // One line: who, how it ended, the first error.
  std::string Describe() const;
};

// The child's side.
class UserChild {
 public:
  UserReport& report() { return report_; }
  // Tells the parent that a step is reached (its WaitSignal returns true).
  void Signal();
  // Blocks until the parent's next Go(). False if the parent closed the pipe or died instead.
  bool WaitGo();
  // True if a Go() is waiting (consumes it); never blocks. For loops that run until told.
  bool GoPending();

 private:
  friend class UserProcess;
  UserChild(int up_fd, int go_fd) : up_fd_(up_fd), go_fd_(go_fd) {}
  int up_fd_;
  int go_fd_;
  UserReport report_;
};

// The parent's side: one child running as a TestUser. Destroying it kills the child (if still
// running) and reaps it, so a failed REQUIRE leaves no process behind.
class UserProcess {
 public:
  // Forks; the child sets its groups and ids (setgroups, setresgid, setresuid), dies with the
  // parent (PR_SET_PDEATHSIG), closes every other harness pipe it inherited, runs `body`, sends
  // its report and _exits (0, or 3 if the ids could not be set, 4 if body threw).
  static UserProcess Start(const TestUser& user, std::string what,
                           const std::function<void(UserChild&)>& body);
  UserProcess(UserProcess&& other) noexcept;
  UserProcess& operator=(UserProcess&&) = delete;
  UserProcess(const UserProcess&) = delete;
  ~UserProcess();

  pid_t pid() const { return pid_; }
  const std::string& what() const { return outcome_.what; }
  // Waits up to deadline_ms for the child's next Signal(). False if it exited (or reported)
  // first, or the deadline passed; outcome() then says why.
  bool WaitSignal(int deadline_ms);
  // Lets the child's WaitGo() return true once.
  void Go();
  // Makes every later WaitGo() of the child return false.
  void CloseGo();
  // SIGKILL now (the outcome then shows 137).
  void Kill();
  // Closes the go pipe, collects the report and waits for the exit, up to deadline_ms; kills the
  // child and marks it hung past that.
  const UserOutcome& Finish(int deadline_ms);
  const UserOutcome& outcome() const { return outcome_; }

 private:
  UserProcess() = default;
  // Reads one tagged message; false at end of file or the deadline (then sets hung_reading_).
  bool ReadMessage(int deadline_ms, char* tag);
  void Reap(bool kill_first);

  pid_t pid_ = -1;
  int up_fd_ = -1;   // child -> parent: 'S' (a signal) or 'R' + UserReport
  int go_fd_ = -1;   // parent -> child: one byte per Go()
  bool reaped_ = false;
  bool timed_out_ = false;
  UserOutcome outcome_;
};

// A fresh directory under $TMPDIR (or /tmp) owned by kOwner:kSharedGroup, mode 0755, so that
// every test user can reach the files in it. Removed with everything in it at scope exit.
class UserDir {
 public:
  UserDir();
  ~UserDir();
  UserDir(const UserDir&) = delete;
  UserDir& operator=(const UserDir&) = delete;
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Deadlines scale with the build: sanitizers and 2 shared cores make everything slower.
int ScaledMs(int release_ms);
// True in an ASan or TSan build.
bool SanitizedBuild();
// ATOMAP_USERS_SCALE (default 1): a multiplier for stress runs of the counts the tests use.
int StressScale();

}  // namespace atomap

#endif  // ATOMAP_TESTS_SUPPORT_AS_USER_H_

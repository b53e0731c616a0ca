#include "support/as_user.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include "support/process.h"

namespace atomap {
namespace {

// The parent's ends of every live child's pipes: a child closes them all but its own, so that a
// sibling never holds another child's go pipe open (its WaitGo would then never see the close).
std::vector<int>& HarnessFds() {
  static std::vector<int> fds;
  return fds;
}

void Forget(int fd) {
  std::vector<int>& fds = HarnessFds();
  fds.erase(std::remove(fds.begin(), fds.end(), fd), fds.end());
}

void CloseFd(int* fd) {
  if (*fd < 0) return;
  Forget(*fd);
  close(*fd);
  *fd = -1;
}

void MakePipe(int fds[2]) {
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
}

// 256 children hold two pipe ends each in the parent: raise the soft limit to the hard one.
void RaiseFdLimit() {
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

bool WriteAll(int fd, const void* data, std::size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// Reads exactly `size` bytes, or fails at end of file.
bool ReadAll(int fd, void* data, std::size_t size) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t n = read(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

bool BecomeTestUser(const TestUser& user) {
  const int count = user.supplementary == kNoGroup ? 0 : 1;
  const gid_t groups[1] = {user.supplementary};
  if (setgroups(static_cast<std::size_t>(count), count > 0 ? groups : nullptr) != 0) return false;
  if (setresgid(user.gid, user.gid, user.gid) != 0) return false;
  if (setresuid(user.uid, user.uid, user.uid) != 0) return false;
  return geteuid() == user.uid && getegid() == user.gid;
}

// The one message a child sends at its end: 'R', then the report's bytes (no padding between).
constexpr std::size_t kReportMessageBytes = 1 + sizeof(UserReport);
static_assert(kReportMessageBytes <= PIPE_BUF, "one atomic write");

}  // namespace

bool IsRootForUsers() { return geteuid() == 0; }

void UserReport::SetError(const std::string& text) {
  const std::size_t n = std::min(text.size(), sizeof error - 1);
  std::memcpy(error, text.data(), n);
  error[n] = '\0';
}

std::string UserOutcome::Describe() const {
  std::string line = absl::StrCat(what, ": ");
  if (hung) absl::StrAppend(&line, "HUNG (killed at the deadline), ");
  absl::StrAppend(&line, "exit ", exit_code);
  if (exit_code > 128) absl::StrAppend(&line, " (signal ", exit_code - 128, ")");
  if (exit_code == 3) absl::StrAppend(&line, " (could not switch user)");
  if (exit_code == 4) absl::StrAppend(&line, " (threw)");
  if (!reported) absl::StrAppend(&line, ", no report");
  if (report.errors > 0) {
    absl::StrAppend(&line, ", ", report.errors, " error(s), first: ", report.error);
  }
  return line;
}

void UserChild::Signal() {
  const char tag = 'S';
  WriteAll(up_fd_, &tag, 1);
}

bool UserChild::WaitGo() {
  char c;
  return ReadAll(go_fd_, &c, 1);
}

bool UserChild::GoPending() {
  pollfd p{go_fd_, POLLIN, 0};
  if (poll(&p, 1, 0) <= 0) return false;
  char c;
  // A closed pipe (POLLHUP) counts as "told to stop" too.
  if (read(go_fd_, &c, 1) < 0) return false;
  return true;
}

UserProcess UserProcess::Start(const TestUser& user, std::string what,
                               const std::function<void(UserChild&)>& body) {
  RaiseFdLimit();
  int up[2];
  int go[2];
  MakePipe(up);
  MakePipe(go);
  const pid_t parent = getpid();
  const pid_t pid = ForkChild([&]() -> int {
    for (int fd : HarnessFds()) close(fd);  // siblings' pipes (see HarnessFds)
    close(up[0]);
    close(go[1]);
    if (!BecomeTestUser(user)) return 3;
    // After the switch: changing credentials clears the death signal.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) return 5;
    UserChild child(up[1], go[0]);
    try {
      body(child);
    } catch (...) {
      return 4;
    }
    char message[kReportMessageBytes];
    message[0] = 'R';
    std::memcpy(message + 1, &child.report_, sizeof child.report_);
    WriteAll(up[1], message, sizeof message);
    return 0;
  });
  close(up[1]);
  close(go[0]);
  UserProcess process;
  process.pid_ = pid;
  process.up_fd_ = up[0];
  process.go_fd_ = go[1];
  process.outcome_.what = std::move(what);
  HarnessFds().push_back(up[0]);
  HarnessFds().push_back(go[1]);
  return process;
}

UserProcess::UserProcess(UserProcess&& other) noexcept
    : pid_(other.pid_),
      up_fd_(other.up_fd_),
      go_fd_(other.go_fd_),
      reaped_(other.reaped_),
      timed_out_(other.timed_out_),
      outcome_(std::move(other.outcome_)) {
  other.pid_ = -1;
  other.up_fd_ = -1;
  other.go_fd_ = -1;
  other.reaped_ = true;
}

UserProcess::~UserProcess() {
  if (!reaped_ && pid_ > 0) Reap(/*kill_first=*/true);
  CloseFd(&up_fd_);
  CloseFd(&go_fd_);
}

bool UserProcess::ReadMessage(int deadline_ms, char* tag) {
  if (up_fd_ < 0) return false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out_ = true;
      return false;
    }
    pollfd p{up_fd_, POLLIN, 0};
    const int n = poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) {
      timed_out_ = true;
      return false;
    }
    if (!ReadAll(up_fd_, tag, 1)) return false;
    if (*tag == 'S') return true;
    // A report: the rest of it follows in the same atomic write.
    if (!ReadAll(up_fd_, &outcome_.report, sizeof outcome_.report)) return false;
    outcome_.reported = true;
    return true;
  }
}

bool UserProcess::WaitSignal(int deadline_ms) {
  char tag = 0;
  return ReadMessage(deadline_ms, &tag) && tag == 'S';
}

void UserProcess::Go() {
  const char c = 'G';
  if (go_fd_ >= 0) WriteAll(go_fd_, &c, 1);
}

void UserProcess::CloseGo() { CloseFd(&go_fd_); }

void UserProcess::Kill() {
  if (!reaped_ && pid_ > 0) kill(pid_, SIGKILL);
}

void UserProcess::Reap(bool kill_first) {
  if (kill_first) kill(pid_, SIGKILL);
  outcome_.exit_code = WaitChild(pid_);
  reaped_ = true;
}

const UserOutcome& UserProcess::Finish(int deadline_ms) {
  if (reaped_) return outcome_;
  CloseGo();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(deadline_ms);
  // Skip signals not waited for; stop at end of file (the child exited) or the deadline.
  char tag = 0;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    timed_out_ = false;
    if (!ReadMessage(static_cast<int>(std::max<std::int64_t>(left.count(), 1)), &tag)) break;
  }
  outcome_.hung = timed_out_;
  Reap(/*kill_first=*/outcome_.hung);
  CloseFd(&up_fd_);
  return outcome_;
}

UserDir::UserDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/atomap-users-XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
  if (chown(path_.c_str(), kOwner.uid, kSharedGroup) != 0 || chmod(path_.c_str(), 0755) != 0) {
    throw std::runtime_error("chown/chmod of the test directory failed: " + path_);
  }
}

UserDir::~UserDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

bool SanitizedBuild() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  return true;
#else
  return false;
#endif
#else
  return false;
#endif
}

int ScaledMs(int release_ms) { return SanitizedBuild() ? release_ms * 4 : release_ms; }

int StressScale() {
  const char* text = std::getenv("ATOMAP_USERS_SCALE");
  const int scale = text != nullptr ? std::atoi(text) : 1;
  return scale > 0 ? scale : 1;
}

}  // namespace atomap

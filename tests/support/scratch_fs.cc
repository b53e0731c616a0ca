#include "support/scratch_fs.h"
#include "support/process.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace atomap {
namespace {

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string MakeTempDirectory(const char* prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/" + prefix + "XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) return "";
  return pattern;
}

// Once per test process: its own mount namespace, so that a test killed by a timeout leaves no
// mount behind (the namespace, and every mount in it, dies with the process's last child).
// Where that is refused, the mounts live in the shared namespace and only the destructor
// removes them.
void EnterPrivateMountNamespace() {
  static const bool entered =
      unshare(CLONE_NEWNS) == 0 && mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
  (void)entered;
}

}  // namespace

bool IsRoot() { return geteuid() == 0; }

ProgramResult RunProgram(const std::vector<std::string>& argv, const std::string& input) {
  ProgramResult result;
  const std::string dir = MakeTempDirectory("atomap-run-");
  if (dir.empty()) return result;
  const std::string in_path = dir + "/in", out_path = dir + "/out", err_path = dir + "/err";
  {
    std::ofstream in(in_path, std::ios::binary);
    in << input;
  }
  const pid_t pid = fork();
  if (pid == 0) {
    const int in = open(in_path.c_str(), O_RDONLY);
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0 || err < 0) _exit(126);
    dup2(in, STDIN_FILENO);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    ExecProgram(argv[0], std::vector<std::string>(argv.begin() + 1, argv.end()));
  }
  int status = 0;
  while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.signaled = pid > 0 && WIFSIGNALED(status);
  result.status = pid < 0 ? -1 : result.signaled ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
  result.out = ReadWhole(out_path);
  result.err = ReadWhole(err_path);
  for (const std::string& p : {in_path, out_path, err_path}) unlink(p.c_str());
  rmdir(dir.c_str());
  return result;
}

bool BecomeUser(uid_t uid) {
  const gid_t gid = static_cast<gid_t>(uid);
  return setgroups(0, nullptr) == 0 && setgid(gid) == 0 && setuid(uid) == 0;
}

std::unique_ptr<ScratchFs> ScratchFs::Mount(Kind kind, std::uint64_t bytes, std::string* why_not) {
  if (!IsRoot()) {
    *why_not = "not running as root: cannot mount a small file system to fill";
    return nullptr;
  }
  EnterPrivateMountNamespace();
  std::unique_ptr<ScratchFs> fs(new ScratchFs());
  fs->kind_ = kind;
  fs->dir_ = MakeTempDirectory("atomap-fs-");
  if (fs->dir_.empty()) {
    *why_not = std::string("mkdtemp: ") + std::strerror(errno);
    return nullptr;
  }
  if (kind == Kind::kTmpfs) {
    const std::string data = "size=" + std::to_string(bytes) + ",mode=0755";
    if (mount("tmpfs", fs->dir_.c_str(), "tmpfs", 0, data.c_str()) != 0) {
      *why_not = std::string("mount -t tmpfs: ") + std::strerror(errno);
      return nullptr;
    }
    fs->mounted_ = true;
    return fs;
  }
  // mount -o loop attaches the image with autoclear: the loop device detaches itself when the
  // mount goes, and the image is unlinked at once (the loop device holds it open), so nothing
  // outlives the mount, which itself dies with this process's private mount namespace.
  const std::string image = fs->dir_ + ".img";
  const int fd = open(image.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  const bool sized = fd >= 0 && ftruncate(fd, static_cast<off_t>(bytes)) == 0;
  if (fd >= 0) close(fd);
  if (!sized) {
    *why_not = std::string("creating the ext4 image: ") + std::strerror(errno);
    unlink(image.c_str());
    return nullptr;
  }
  const ProgramResult mkfs = RunProgram({"/sbin/mkfs.ext4", "-q", "-F", image});
  const ProgramResult mounted =
      mkfs.status == 0 ? RunProgram({"/bin/mount", "-t", "ext4", "-o", "loop", image, fs->dir_})
                       : mkfs;
  unlink(image.c_str());
  if (mounted.status != 0) {
    *why_not = "mkfs.ext4 or mount -o loop failed (no loop devices here?): " + mounted.err;
    return nullptr;
  }
  fs->mounted_ = true;
  return fs;
}

ScratchFs::~ScratchFs() {
  if (mounted_ && umount2(dir_.c_str(), 0) != 0) umount2(dir_.c_str(), MNT_DETACH);
  if (!dir_.empty()) rmdir(dir_.c_str());
}

void ScratchFs::Fill() {
  static const std::string chunk(64 << 10, 'f');
  const std::string filler = File("filler");
  const int fd = open(filler.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0)
    throw std::runtime_error("cannot create the filler " + filler + ": " + std::strerror(errno));
  int last_error = 0;
  // Twice: ext4 may find a few more blocks once its journal has committed.
  for (int round = 0; round < 2; ++round) {
    for (std::size_t size = chunk.size(); size >= 512; size /= 2) {
      while (write(fd, chunk.data(), size) == static_cast<ssize_t>(size)) {
      }
      last_error = errno;
    }
    fsync(fd);
  }
  close(fd);
  // A test that believes the disk full when it is not proves nothing: say so loudly.
  if (last_error != ENOSPC) {
    throw std::runtime_error("filling " + filler +
                             " stopped without ENOSPC: " + std::strerror(last_error));
  }
}

void ScratchFs::Unfill() {
  unlink(File("filler").c_str());
  sync();
}

}  // namespace atomap

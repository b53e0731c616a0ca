// Environments for edge tests that need root: a small tmpfs or loop-mounted ext4 file system
// (to fill up), another user's identity, and a way to run a program and collect how it ended.
// Every resource is released by a destructor (unmount; the loop device detaches itself and the
// image is already unlinked), and the mounts live in the test process's own mount namespace, so
// even a test killed by a timeout leaves nothing mounted behind.
#ifndef ATOMAP_TESTS_SUPPORT_SCRATCH_FS_H_
#define ATOMAP_TESTS_SUPPORT_SCRATCH_FS_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace atomap {

bool IsRoot();

// A freshly mounted file system of `bytes` bytes on a new directory.
class ScratchFs {
 public:
  enum class Kind { kTmpfs, kExt4 };

  // Nullptr, with the reason in *why_not, when it cannot be had here (not root, no loop
  // devices, mkfs.ext4 missing, mount refused). Tests then skip with that reason.
  static std::unique_ptr<ScratchFs> Mount(Kind kind, std::uint64_t bytes, std::string* why_not);
  ~ScratchFs();
  ScratchFs(const ScratchFs&) = delete;
  ScratchFs& operator=(const ScratchFs&) = delete;

  const std::string& path() const { return dir_; }
  std::string File(const std::string& name) const { return dir_ + "/" + name; }
  const char* name() const { return kind_ == Kind::kTmpfs ? "tmpfs" : "ext4"; }

  // Writes a filler file until the file system is full (ENOSPC, twice after a sync).
  void Fill();
  // Removes the filler: the space is free again.
  void Unfill();

 private:
  ScratchFs() = default;
  Kind kind_ = Kind::kTmpfs;
  std::string dir_;
  bool mounted_ = false;
};

// How a program or a forked child ended.
struct ProgramResult {
  int status = -1;  // exit code, or 128 + signal (WaitChild's convention)
  bool signaled = false;
  std::string out;
  std::string err;
};

// Runs argv[0] (a path) with `input` on its stdin; stdout and stderr are collected.
ProgramResult RunProgram(const std::vector<std::string>& argv, const std::string& input = "");

// In a forked child: becomes user and group `uid` (setgroups, setgid, setuid). False on error.
bool BecomeUser(uid_t uid);

}  // namespace atomap

#endif  // ATOMAP_TESTS_SUPPORT_SCRATCH_FS_H_

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it at scope exit.
#ifndef ATOMAP_TESTS_SUPPORT_TEMP_DIR_H_
#define ATOMAP_TESTS_SUPPORT_TEMP_DIR_H_

#include <string>

namespace atomap {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace atomap

#endif  // ATOMAP_TESTS_SUPPORT_TEMP_DIR_H_

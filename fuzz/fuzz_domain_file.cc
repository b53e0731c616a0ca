// libFuzzer target over open, check, repair and read of mutated domain files.
// Build and run: fuzz/build.sh (`make fuzz-smoke` is its 60 s run); the corpus:
// fuzz/make_corpus.py.
#include <unistd.h>

#include <string>

#include "fuzz/fuzz_domain_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string path = std::string(getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp") +
                                  "/atomap-fuzz-" + std::to_string(getpid()) + ".atomap";
  atomap::fuzz::FuzzDomainFile(data, size, path);
  return 0;
}

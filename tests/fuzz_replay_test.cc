// Replays every file in tests/fuzz_corpus/ (seeds and any input the fuzzer ever crashed on)
// through the fuzzer's body: each must end without a crash or a sanitizer report.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "fuzz/fuzz_domain_file.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

TEST_CASE("every corpus file opens, checks and repairs without a crash", "[fuzz]") {
  const std::filesystem::path corpus = ATOMAP_FUZZ_CORPUS_DIR;
  REQUIRE(std::filesystem::is_directory(corpus));
  TempDir dir;
  int replayed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(corpus)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
    INFO(entry.path().string());
    fuzz::FuzzDomainFile(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(),
                         dir.File("replay.atomap"));
    ++replayed;
  }
  CHECK(replayed > 0);
}

}  // namespace
}  // namespace atomap

// JSON lines out: one object per measurement, and the check that a file of them is well formed.
#ifndef ATOMAP_BENCH_PEERS_OUTPUT_H_
#define ATOMAP_BENCH_PEERS_OUTPUT_H_

#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "measure.h"

namespace atomap::peers {

struct Row {
  std::string_view system;
  std::string workload;
  std::uint64_t entries = 0;
  int processes = 1;
  Sample sample;
  nlohmann::json extra = nlohmann::json::object();  // e.g. bytes_on_disk, live_bytes
};

class Output {
 public:
  // Appends to `path` (truncated first); `run` tags every row (the program's start time).
  Output(const std::string& path, std::string run);
  void Write(const Row& row);

 private:
  std::ofstream out_;
  std::string run_;
};

// Every line of `path` parses as an object with the required fields of the right types.
// Returns "" if so, else what is wrong (with the line number).
std::string ValidateJsonLines(const std::string& path);

}  // namespace atomap::peers

#endif  // ATOMAP_BENCH_PEERS_OUTPUT_H_

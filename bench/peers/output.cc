#include "output.h"

#include <cstdio>
#include <cstdlib>

namespace atomap::peers {

Output::Output(const std::string& path, std::string run) : out_(path), run_(std::move(run)) {
  if (!out_) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(2);
  }
}

void Output::Write(const Row& row) {
  nlohmann::json j = {
      {"system", row.system},       {"workload", row.workload}, {"entries", row.entries},
      {"processes", row.processes}, {"ops", row.sample.ops},    {"ns_per_op", row.sample.ns_per_op},
      {"p50_ns", nullptr},          {"p99_ns", nullptr},        {"run", run_}};
  if (row.sample.p50_ns) j["p50_ns"] = *row.sample.p50_ns;
  if (row.sample.p99_ns) j["p99_ns"] = *row.sample.p99_ns;
  for (const auto& [k, v] : row.extra.items()) j[k] = v;
  const std::string line = j.dump();
  out_ << line << '\n';
  out_.flush();
  std::fprintf(stderr, "%s\n", line.c_str());
}

std::string ValidateJsonLines(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "cannot read " + path;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    const bool ok = j.is_object() && j.value("system", nlohmann::json()).is_string() &&
                    j.value("workload", nlohmann::json()).is_string() &&
                    j.value("entries", nlohmann::json()).is_number_unsigned() &&
                    j.value("processes", nlohmann::json()).is_number_integer() &&
                    j.value("ops", nlohmann::json()).is_number_unsigned() &&
                    j.value("ns_per_op", nlohmann::json()).is_number() && j.contains("p50_ns") &&
                    j.contains("p99_ns");
    if (!ok) return path + ":" + std::to_string(n) + ": bad row: " + line;
  }
  if (n == 0) return path + ": no rows";
  return "";
}

}  // namespace atomap::peers

// What `atomap stat` prints, gathered once (StatReport) and written three ways: text, JSON and
// the Prometheus text exposition format (tools/prometheus.h). Every figure of the three comes
// from the same StatReport, so they cannot drift apart. docs/cli.md documents each field.
#ifndef ATOMAP_TOOLS_STAT_REPORT_H_
#define ATOMAP_TOOLS_STAT_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "atomap/domain.h"
#include "nlohmann/json.hpp"

namespace atomap::cli {

struct AtomReport {
  std::string name;
  std::uint64_t entries = 0;
  std::uint64_t version = 0;  // the current version_number (it counts the atom's versions)
};

struct StatReport {
  std::string path;
  DomainInfo info;
  DomainStats stats;  // with the participant list when others lists it (--readers, --prometheus)
  std::uint64_t bytes_on_disk = 0;
  bool closed_cleanly = false;
  std::vector<AtomReport> atoms;  // every atom that could be read, sorted by name
  // Every participant but this command's own writer slot, writers then readers.
  std::vector<ParticipantStats> others;
  std::uint32_t self_writers = 0;  // slots of this command among stats.writers
};

// The participant list without this process's own writer slots (stat is attached while it
// runs); `self` counts those left out.
std::vector<ParticipantStats> OtherParticipants(const std::vector<ParticipantStats>& all,
                                                std::uint32_t own_pid, std::uint32_t& self);

// `atomap stat --json`; with `readers`, every participant row in full and the registry.
nlohmann::json StatJson(const StatReport& report, bool readers);
// `atomap stat`'s text; with `readers`, the participant table after it.
void PrintStatText(const StatReport& report, bool readers);

// "-", or the duration in whole seconds and below a minute with one decimal ("4.2s", "3m07s",
// "2h05m").
std::string DurationText(absl::Duration duration);
// Bytes for a human: "812 B", "4.0 KiB", "1.5 MiB", ...
std::string HumanBytes(std::uint64_t bytes);

}  // namespace atomap::cli

#endif  // ATOMAP_TOOLS_STAT_REPORT_H_

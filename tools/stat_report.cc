#include "stat_report.h"

#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_format.h"
#include "cli.h"

namespace atomap::cli {
namespace {

const char* KindName(ParticipantStats::Kind kind) {
  return kind == ParticipantStats::Kind::kReader ? "reader" : "writer";
}

bool KnownAtom(const ParticipantStats& row) { return row.pinned && row.pinned_atom != 0; }

double Seconds(absl::Duration duration) { return absl::ToDoubleSeconds(duration); }

// One participant's row, in full (--readers --json). The old fields keep their names.
nlohmann::json ParticipantJson(const ParticipantStats& row) {
  nlohmann::json item = {{"slot", row.slot},
                         {"pid", row.pid},
                         {"kind", KindName(row.kind)},
                         {"uid", row.uid},
                         {"alive", nullptr},
                         {"dead", row.alive == false},
                         {"pinned_epoch", nullptr},
                         {"epoch_lag", nullptr},
                         {"atom", nullptr},
                         {"versions_behind", nullptr},
                         {"retained_bytes", row.retained_bytes},
                         {"pinned_seconds", nullptr}};
  if (row.alive.has_value()) item["alive"] = *row.alive;
  if (row.pinned) {
    item["pinned_epoch"] = row.pinned_epoch;
    item["epoch_lag"] = row.epoch_lag;
    item["pinned_seconds"] = Seconds(row.pinned_for);
  }
  if (KnownAtom(row)) {
    item.erase("atom");
    PutBytes(item, "atom", row.pinned_atom_name, false);
    item["versions_behind"] = row.versions_behind;
  }
  return item;
}

nlohmann::json OldestPinJson(const DomainStats& stats) {
  if (!stats.any_pinned) return nullptr;
  return {{"epoch", stats.oldest_pinned_epoch},
          {"slot", stats.oldest_pinned_slot},
          {"pid", stats.oldest_pinned_pid},
          {"kind", stats.oldest_pinned_is_reader ? "reader" : "writer"},
          {"age_seconds", Seconds(stats.oldest_pin_age)},
          {"retained_bytes", stats.oldest_pin_retained_bytes}};
}

nlohmann::json RegistryJson(const DomainStats& stats) {
  if (stats.registry_path.empty()) return nullptr;
  nlohmann::json registry = {{"capacity", stats.reader_capacity}, {"in_use", stats.readers}};
  PutBytes(registry, "path", stats.registry_path, false);
  return registry;
}

std::string AliveText(const std::optional<bool>& alive) {
  if (!alive.has_value()) return "?";
  return *alive ? "yes" : "no";
}

void PrintParticipantTable(const StatReport& report) {
  std::printf("%-6s %5s %8s %6s %-5s %8s %5s %-16s %7s %-22s %s\n", "KIND", "SLOT", "PID", "UID",
              "ALIVE", "PINNED", "LAG", "ATOM", "BEHIND", "RETAINED", "PINNED FOR");
  for (const ParticipantStats& row : report.others) {
    const std::string pinned = row.pinned ? std::to_string(row.pinned_epoch) : "-";
    const std::string lag = row.pinned ? std::to_string(row.epoch_lag) : "-";
    const std::string atom = KnownAtom(row) ? Printable(row.pinned_atom_name) : "-";
    const std::string behind = KnownAtom(row) ? std::to_string(row.versions_behind) : "-";
    std::string retained = row.pinned ? HumanBytes(row.retained_bytes) : "-";
    if (row.pinned && row.retained_bytes >= 1024) {
      retained += absl::StrFormat(" (%d B)", row.retained_bytes);
    }
    std::printf("%-6s %5u %8u %6u %-5s %8s %5s %-16s %7s %-22s %s%s\n", KindName(row.kind),
                row.slot, row.pid, row.uid, AliveText(row.alive).c_str(), pinned.c_str(),
                lag.c_str(), atom.c_str(), behind.c_str(), retained.c_str(),
                row.pinned ? DurationText(row.pinned_for).c_str() : "-",
                row.alive == false ? "  dead" : "");
  }
}

}  // namespace

std::vector<ParticipantStats> OtherParticipants(const std::vector<ParticipantStats>& all,
                                                std::uint32_t own_pid, std::uint32_t& self) {
  std::vector<ParticipantStats> others;
  self = 0;
  for (const ParticipantStats& row : all) {
    if (row.kind == ParticipantStats::Kind::kWriter && row.pid == own_pid) {
      ++self;
      continue;
    }
    others.push_back(row);
  }
  return others;
}

std::string DurationText(absl::Duration duration) {
  if (duration <= absl::ZeroDuration()) return "-";
  const double seconds = absl::ToDoubleSeconds(duration);
  if (seconds < 60) return absl::StrFormat("%.1fs", seconds);
  const std::int64_t whole = absl::ToInt64Seconds(duration);
  if (whole < 3600) return absl::StrFormat("%dm%02ds", whole / 60, whole % 60);
  return absl::StrFormat("%dh%02dm", whole / 3600, whole / 60 % 60);
}

std::string HumanBytes(std::uint64_t bytes) {
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return absl::StrFormat("%d B", bytes);
  double value = static_cast<double>(bytes) / 1024;
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) value /= 1024, ++unit;
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

nlohmann::json StatJson(const StatReport& report, bool readers) {
  const DomainStats& stats = report.stats;
  nlohmann::json out = {
      {"size", report.info.size},
      {"max_size", report.info.max_size},
      {"bytes_on_disk", report.bytes_on_disk},
      {"closed_cleanly", report.closed_cleanly},
      {"slot_capacity", report.info.slot_capacity},
      {"atom_capacity", report.info.atom_capacity},
  };
  PutBytes(out, "path", report.path, false);
  out["space"] = {{"data_bytes", stats.data_bytes},
                  {"live_bytes", stats.live_bytes},
                  {"free_bytes", stats.free_bytes},
                  {"unused_bytes", stats.unused_bytes},
                  {"pending_garbage_bytes", stats.pending_garbage_bytes},
                  {"pending_garbage_blocks", stats.pending_garbage_blocks}};
  out["epochs"] = {{"global", stats.global_epoch},
                   {"oldest_pinned", OldestPinJson(stats)},
                   {"light_pins", stats.light_pins},
                   {"this_process_advances", stats.this_process_advances_epoch}};
  // This command is attached too while it runs; leave it out.
  out["participants"] = nlohmann::json::array();
  if (readers) {
    for (const ParticipantStats& row : report.others) {
      out["participants"].push_back(ParticipantJson(row));
    }
    out["registry"] = RegistryJson(stats);
  } else {
    for (const DomainInfo::Slot& slot : report.info.slots_in_use) {
      if (slot.pid == static_cast<std::uint32_t>(getpid())) continue;
      out["participants"].push_back({{"slot", slot.index}, {"pid", slot.pid}});
    }
  }
  out["atoms"] = nlohmann::json::array();
  for (const AtomReport& atom : report.atoms) {
    nlohmann::json item = nlohmann::json::object();
    PutBytes(item, "name", atom.name, false);
    item["entries"] = atom.entries;
    item["version"] = atom.version;
    out["atoms"].push_back(std::move(item));
  }
  return out;
}

void PrintStatText(const StatReport& report, bool readers) {
  const nlohmann::json out = StatJson(report, readers);
  auto u = [](const nlohmann::json& v) {
    return static_cast<unsigned long long>(v.get<std::uint64_t>());
  };
  const DomainStats& stats = report.stats;
  const nlohmann::json& space = out["space"];
  std::printf("file            %s\n", report.path.c_str());
  std::printf("size            %llu bytes (at most %llu)\n", u(out["size"]), u(out["max_size"]));
  std::printf("on disk         %llu bytes\n", u(out["bytes_on_disk"]));
  std::printf("closed cleanly  %s\n", report.closed_cleanly ? "yes" : "no");
  std::printf("data            %llu bytes handed out: %llu live, %llu free, %llu unused\n",
              u(space["data_bytes"]), u(space["live_bytes"]), u(space["free_bytes"]),
              u(space["unused_bytes"]));
  std::printf("pending garbage %llu bytes in %llu blocks\n", u(space["pending_garbage_bytes"]),
              u(space["pending_garbage_blocks"]));
  std::printf("global epoch    %llu", u(out["epochs"]["global"]));
  if (stats.any_pinned) {
    std::printf(" (oldest pin: epoch %llu, %s slot %u, pid %u)",
                static_cast<unsigned long long>(stats.oldest_pinned_epoch),
                stats.oldest_pinned_is_reader ? "reader" : "writer", stats.oldest_pinned_slot,
                stats.oldest_pinned_pid);
  }
  if (!readers) {
    std::printf("\nparticipants    %zu of %u slots (not counting this command)\n",
                out["participants"].size(), report.info.slot_capacity);
    for (const nlohmann::json& p : out["participants"]) {
      std::printf("  slot %u: pid %u\n", p["slot"].get<unsigned>(), p["pid"].get<unsigned>());
    }
  } else {
    std::printf("\nwriters         %u of %u slots (not counting this command)\n",
                stats.writers - report.self_writers, report.info.slot_capacity);
    if (stats.registry_path.empty()) {
      std::printf("readers         no reader registry\n");
    } else {
      std::printf("readers         %u of %u slots (%s)\n", stats.readers, stats.reader_capacity,
                  stats.registry_path.c_str());
    }
  }
  std::printf("pins            %s\n",
              !stats.light_pins ? "full fences"
              : stats.this_process_advances_epoch
                  ? "light (scans issue membarrier)"
                  : "light; this process cannot issue membarrier, so it never advances the epoch");
  std::printf("atoms           %zu of %u\n", report.atoms.size(), report.info.atom_capacity);
  for (const AtomReport& atom : report.atoms) {
    std::printf("  %-20s %llu entries, version %llu\n", Printable(atom.name).c_str(),
                static_cast<unsigned long long>(atom.entries),
                static_cast<unsigned long long>(atom.version));
  }
  if (readers) {
    std::printf("\nparticipants (dead: %u; retained = pending garbage held back, by retire "
                "batch)\n",
                stats.dead_participants);
    PrintParticipantTable(report);
  }
}

}  // namespace atomap::cli

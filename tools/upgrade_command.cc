// `atomap upgrade PATH`: converts a file of an older format (2, 3 or 4) to this build's format in
// place (atomap/upgrade.h; docs/cli.md). On a file already in this format it only recreates missing
// or stale companions.
#include <cstdio>

#include "atomap/upgrade.h"
#include "cli.h"

namespace atomap::cli {

absl::Status RunUpgrade(const UpgradeArgs& args) {
  Options options;
  options.kind = args.common.shm ? DomainKind::kSharedMemory : DomainKind::kFile;
  options.allow_foreign_owner = args.common.allow_foreign;
  if (args.reader_capacity != 0) options.reader_capacity = args.reader_capacity;
  absl::StatusOr<std::uint32_t> mode = ParseMode(args.reader_mode);
  if (!mode.ok()) return mode.status();
  options.reader_permissions = *mode;
  absl::StatusOr<UpgradeReport> report = UpgradeDomain(args.common.path, options);
  if (!report.ok()) return report.status();
  if (args.common.json) {
    nlohmann::json out = nlohmann::json::object();
    PutBytes(out, "path", report->path, false);
    out["from_version"] = report->from_version;
    out["to_version"] = report->to_version;
    out["already_current"] = report->already_current;
    out["was_dirty"] = report->was_dirty;
    PrintJsonLine(out);
  } else if (report->already_current) {
    std::printf("%s: already format %u; its companion files are in place\n", report->path.c_str(),
                report->to_version);
  } else {
    std::printf("%s: upgraded from format %u to format %u%s\n", report->path.c_str(),
                report->from_version, report->to_version,
                report->was_dirty ? " (not closed cleanly: the next writer to open it alone "
                                    "sweeps it)"
                                  : "");
  }
  return absl::OkStatus();
}

}  // namespace atomap::cli

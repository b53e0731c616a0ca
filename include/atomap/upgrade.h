// UpgradeDomain: converts a domain file of an older format to this build's, in place
// (docs/format.md, "Upgrading a file"; the tool's `atomap upgrade PATH`).
//
//   absl::StatusOr<atomap::UpgradeReport> r = atomap::UpgradeDomain(path, atomap::Options{});
//   if (!r.ok()) return r.status();  // e.g. FailedPrecondition: older writers still attached
//   if (!r->already_current) LOG(INFO) << "upgraded from format " << r->from_version;
#ifndef ATOMAP_INCLUDE_ATOMAP_UPGRADE_H_
#define ATOMAP_INCLUDE_ATOMAP_UPGRADE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "atomap/options.h"

namespace atomap {

struct UpgradeReport {
  std::string path;                // the domain file
  std::uint32_t from_version = 0;  // the format found
  std::uint32_t to_version = 0;    // the format now (ATOMAP_FORMAT_VERSION)
  bool already_current = false;    // it was this build's format already: companions checked only
  bool was_dirty = false;  // not closed cleanly: the next writer that opens it alone sweeps
};

// Format 2 -> format 5: needs the domain to itself (FailedPrecondition naming how many format-2
// processes hold it otherwise); creates PATH.lock and PATH.readers (options.reader_capacity,
// options.reader_permissions), then rewrites the header with one write and syncs it. Format-2
// builds cannot open the file afterwards.
// Format 3 or 4 -> format 5: needs no format-3 (4) writer attached (FailedPrecondition naming how
// many hold PATH.lock otherwise); their readers may stay (their registrations are kept). Rewrites
// the allocator magic, the companions' and then PATH's format word in place; no record is
// rewritten (format 5 reads format 3's 32-byte version records, and a format-3 or 4 slot's zero
// mailbox as "nothing ever posted"). Older builds cannot open the file afterwards. A file already
// in this build's format: its missing or stale companions are recreated, nothing else changes.
// `path` and options.kind name the file as for Domain::Open; allow_foreign_owner and lock_timeout
// apply as there.
absl::StatusOr<UpgradeReport> UpgradeDomain(std::string_view path, const Options& options);

}  // namespace atomap

#endif  // ATOMAP_INCLUDE_ATOMAP_UPGRADE_H_

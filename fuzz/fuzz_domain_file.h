// The body of the domain-file fuzzer, shared by the libFuzzer target (fuzz/fuzz_domain_file.cc)
// and the replay test (tests/fuzz_replay_test.cc): write `bytes` to `path`, open it read-only
// with Options::verify_reads and run every reader on it unverified (ReadChecked: get, iteration,
// diff, equality, stats, and a compact-like copy into an in-process domain, as the tool does),
// then check it; then open it writable, let the lone opener's sweep run, read it checked again,
// check with repair, and, if the check found nothing wrong, read every atom with the trusting
// readers too. Any outcome but a crash, a hang (libFuzzer's -timeout) or a sanitizer report
// passes.
//
// What it proves: a hostile or damaged file is an error or a list of problems, never a read
// outside the mapping. With verify_reads every reader may meet damage; without it, reads of map
// contents are safe only after check() found no problem (the trusting readers of read.h).
#ifndef ATOMAP_FUZZ_FUZZ_DOMAIN_FILE_H_
#define ATOMAP_FUZZ_FUZZ_DOMAIN_FILE_H_

#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "atomap/check.h"
#include "atomap/diff.h"
#include "atomap/domain.h"
#include "atomap/watcher.h"
#include "domain/domain_impl.h"

namespace atomap::fuzz {

inline bool WriteFile(const std::string& path, const std::uint8_t* data, std::size_t size) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  const bool ok = size == 0 || write(fd, data, size) == static_cast<ssize_t>(size);
  close(fd);
  return ok;
}

// Reads every entry of every atom, summing lengths so the reads cannot be optimised away.
inline std::uint64_t ReadAll(Domain& domain) {
  std::vector<std::string> names;
  internal::Access(domain).atoms().ForEach(
      [&](std::uint32_t, std::string_view name) { names.emplace_back(name); });
  std::uint64_t bytes = 0;
  for (const std::string& name : names) {
    absl::StatusOr<Atom> atom = domain.atom(name);
    if (!atom.ok()) continue;
    absl::StatusOr<Snapshot> snap = atom->load();
    if (!snap.ok()) continue;
    snap->map().ForEach([&](std::string_view k, std::string_view v) {
      bytes += k.size() + v.size();
      bytes += snap->map().get(k).has_value();
    });
  }
  return bytes;
}

// Every reader of every atom's current version, on a domain opened with verify_reads (whose
// versions may be damaged): the paths of the tool's get, dump, stat, watch and compact, and of
// Diff and operator==. Returns a sum of what was read, so that nothing is optimised away.
inline std::uint64_t ReadChecked(Domain& domain) {
  std::vector<std::string> names;
  internal::Access(domain).atoms().ForEach(
      [&](std::uint32_t, std::string_view name) { names.emplace_back(name); });
  Options scratch;
  scratch.kind = DomainKind::kInProcess;
  scratch.max_size = std::uint64_t{64} << 20;
  absl::StatusOr<Domain> copy = Domain::Open("fuzz-compact", scratch);  // compact's target
  // Copies are bounded: a damaged DAG may reach one big blob many times.
  constexpr std::uint64_t kMaxCopiedBytes = std::uint64_t{8} << 20;
  std::uint64_t bytes = 0;
  std::optional<Snapshot> previous;
  for (const std::string& name : names) {
    absl::StatusOr<Atom> atom = domain.atom(name);
    if (!atom.ok()) continue;
    absl::StatusOr<Snapshot> snap = atom->load();
    if (!snap.ok()) continue;
    const Map& map = snap->map();
    bytes += map.size() + snap->version();  // read only, never used to size anything
    std::vector<std::pair<std::string, std::string>> entries;
    std::uint64_t copied = 0;
    const absl::Status read = map.CheckedForEach([&](std::string_view k, std::string_view v) {
      copied += k.size() + v.size();
      if (copied <= kMaxCopiedBytes) entries.emplace_back(k, v);
    });
    map.ForEach([&](std::string_view k, std::string_view v) { bytes += k.size() + v.size(); });
    for (Map::Iterator it = map.begin(); it != map.end(); ++it) bytes += (*it).first.size();
    for (const auto& [key, value] : entries) {
      absl::StatusOr<std::optional<std::string_view>> got = map.checked_get(key);
      bytes += got.ok() && got->has_value();
      bytes += map.get(key).has_value();
    }
    bytes += map.get("no such key").has_value() + map.checked_get("no such key").ok();
    bytes += Diff(Map(), map).ok();
    if (previous.has_value()) {
      bytes += Diff(previous->map(), map).ok() + (previous->map() == map);
    }
    if (absl::StatusOr<Watcher> watcher = Watcher::Start(*atom); watcher.ok()) {
      bytes += watcher->version();
    }
    if (read.ok() && copied <= kMaxCopiedBytes && copy.ok()) {
      std::vector<std::pair<std::string_view, std::string_view>> views(entries.begin(),
                                                                       entries.end());
      absl::StatusOr<Atom> to = copy->atom(name);
      if (to.ok()) (void)to->swap([&](Transaction& tx) { return tx.set_many(views); });
    }
    previous = std::move(*snap);
  }
  previous.reset();
  bytes += domain.stats().live_bytes;
  return bytes;
}

inline void FuzzDomainFile(const std::uint8_t* data, std::size_t size, const std::string& path) {
  if (!WriteFile(path, data, size)) return;
  Options options;
  options.create_if_missing = false;
  options.max_size = std::uint64_t{1} << 30;
  options.read_only = true;
  options.verify_reads = true;
  if (absl::StatusOr<Domain> reader = Domain::Open(path, options); reader.ok()) {
    (void)ReadChecked(*reader);
    absl::StatusOr<CheckReport> report = reader->check();
    if (report.ok() && report->ok()) (void)ReadAll(*reader);
  }
  options.read_only = false;
  if (absl::StatusOr<Domain> writer = Domain::Open(path, options); writer.ok()) {
    (void)ReadChecked(*writer);
    absl::StatusOr<CheckReport> report = writer->check({.repair = true});
    if (report.ok() && report->ok()) (void)ReadAll(*writer);
  }
  unlink(path.c_str());
}

}  // namespace atomap::fuzz

#endif  // ATOMAP_FUZZ_FUZZ_DOMAIN_FILE_H_

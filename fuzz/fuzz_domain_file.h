// The body of the domain-file fuzzer, shared by the libFuzzer target (fuzz/fuzz_domain_file.cc)
// and the replay test (tests/fuzz_replay_test.cc): write `bytes` to `path`, open it read-only and
// check it, then open it writable, let the lone opener's sweep run, check with repair, and read
// every atom whose version checked clean. Any outcome but a crash (or a sanitizer report) passes.
//
// What it proves: a hostile or damaged file is an error or a list of problems, never a read
// outside the mapping. Reads of map contents happen only after check() found no problem, which
// is the contract ("reading a damaged file in checked mode").
#ifndef ATOMAP_FUZZ_FUZZ_DOMAIN_FILE_H_
#define ATOMAP_FUZZ_FUZZ_DOMAIN_FILE_H_

#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "atomap/check.h"
#include "atomap/domain.h"
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

inline void FuzzDomainFile(const std::uint8_t* data, std::size_t size, const std::string& path) {
  if (!WriteFile(path, data, size)) return;
  Options options;
  options.create_if_missing = false;
  options.max_size = std::uint64_t{1} << 30;
  options.read_only = true;
  if (absl::StatusOr<Domain> reader = Domain::Open(path, options); reader.ok()) {
    absl::StatusOr<CheckReport> report = reader->check();
    if (report.ok() && report->ok()) (void)ReadAll(*reader);
  }
  options.read_only = false;
  if (absl::StatusOr<Domain> writer = Domain::Open(path, options); writer.ok()) {
    absl::StatusOr<CheckReport> report = writer->check({.repair = true});
    if (report.ok() && report->ok()) (void)ReadAll(*writer);
  }
  unlink(path.c_str());
}

}  // namespace atomap::fuzz

#endif  // ATOMAP_FUZZ_FUZZ_DOMAIN_FILE_H_

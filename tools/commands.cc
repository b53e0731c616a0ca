// The atomap tool's commands other than demo: create, put, get, del, dump, load, stat, check,
// watch, compact. Each returns a status; main() turns it into a message and an exit code.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "atomap/check.h"
#include "atomap/watcher.h"
#include "cli.h"
#include "prometheus.h"
#include "stat_report.h"

namespace atomap::cli {
namespace {

using Entries = std::vector<std::pair<std::string_view, std::string_view>>;

// A key or value given on the command line: its bytes, or hexadecimal with --hex.
absl::StatusOr<std::string> ArgumentBytes(const CommonArgs& args, const std::string& text,
                                          std::string_view what) {
  if (!args.hex) return text;
  absl::StatusOr<std::string> bytes = HexDecode(text);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%s \"%s\": %s", what, text, bytes.status().message()));
  }
  return bytes;
}

// Every entry of `map`, sorted by key bytes; the views live as long as the snapshot of `map`.
// DataLoss if the map is damaged. Not sized by map.size(): a damaged count may be anything.
absl::StatusOr<Entries> SortedEntries(const Map& map) {
  Entries entries;
  const absl::Status read = map.CheckedForEach(
      [&](std::string_view key, std::string_view value) { entries.emplace_back(key, value); });
  if (!read.ok()) return read;
  std::sort(entries.begin(), entries.end());
  return entries;
}

// {"atom"|"atom_hex": ..., "version": ...}: what put, del and load print with --json.
nlohmann::json AtomVersionJson(std::string_view atom, std::uint64_t version) {
  nlohmann::json out = nlohmann::json::object();
  PutBytes(out, "atom", atom, false);
  out["version"] = version;
  return out;
}

absl::Status KeyNotFound(const Domain& domain, const CommonArgs& args, std::string_view key) {
  return absl::NotFoundError(absl::StrFormat("%s: no key \"%s\" in atom \"%s\"", domain.path(),
                                             Printable(key, args.hex), args.atom));
}

std::uint64_t BytesOnDisk(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

// Reads the dump format from `in`: one JSON object per line. Later lines win over earlier ones
// with the same key. InvalidArgument naming the line for anything malformed.
absl::StatusOr<std::map<std::string, std::string>> ReadEntries(std::istream& in) {
  std::map<std::string, std::string> entries;
  Progress progress("load: lines read", 0);
  std::string line;
  for (std::uint64_t number = 1; std::getline(in, line); ++number) {
    progress.Update(number);
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank line
    auto error = [&](const std::string& why) {
      return absl::InvalidArgumentError(absl::StrFormat("<stdin>:%d: %s", number, why));
    };
    // The JSON parser stops at a NUL byte as if the text ended there, so it would accept the
    // line and drop whatever follows. JSON text never holds one (it is written \u0000).
    if (const std::size_t nul = line.find('\0'); nul != std::string::npos) {
      return error(absl::StrFormat("a NUL byte at column %d (JSON writes it \\u0000)", nul + 1));
    }
    nlohmann::json object;
    try {
      object = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      return error(e.what());
    }
    if (!object.is_object()) return error("not a JSON object");
    absl::StatusOr<std::string> key = GetBytes(object, "key");
    if (!key.ok()) return error(std::string(key.status().message()));
    absl::StatusOr<std::string> value = GetBytes(object, "value");
    if (!value.ok()) return error(std::string(value.status().message()));
    if (absl::Status s = CheckKeyValue(*key, *value); !s.ok()) {
      return error(std::string(s.message()));
    }
    entries.insert_or_assign(*std::move(key), *std::move(value));
  }
  if (in.bad()) return absl::DataLossError("<stdin>: read error");
  return entries;
}

Entries Views(const std::map<std::string, std::string>& entries) {
  return Entries(entries.begin(), entries.end());
}

nlohmann::json DiffJson(std::string_view atom, std::uint64_t version, const MapDiff& diff,
                        bool hex) {
  nlohmann::json line = nlohmann::json::object();
  PutBytes(line, "atom", atom, false);
  line["version"] = version;
  line["added"] = nlohmann::json::array();
  line["removed"] = nlohmann::json::array();
  line["changed"] = nlohmann::json::array();
  for (const auto& [key, value] : diff.added) line["added"].push_back(EntryJson(key, value, hex));
  for (const auto& [key, value] : diff.removed) {
    line["removed"].push_back(EntryJson(key, value, hex));
  }
  for (const MapDiff::Change& change : diff.changed) {
    nlohmann::json item = nlohmann::json::object();
    PutBytes(item, "key", change.key, hex);
    PutBytes(item, "old_value", change.old_value, hex);
    PutBytes(item, "new_value", change.new_value, hex);
    line["changed"].push_back(std::move(item));
  }
  return line;
}

// Reads every entry of every atom's current version through the public Map API, checking that
// each version holds as many entries as its record says. Returns the entries read.
std::uint64_t WalkAtoms(Domain& domain, std::vector<std::string>& problems) {
  const std::vector<std::string> names = domain.atom_names();
  Progress progress("check: atoms walked", names.size());
  std::uint64_t entries = 0;
  for (std::size_t i = 0; i < names.size(); ++i) {
    progress.Update(i);
    absl::StatusOr<Atom> atom = FindAtom(domain, names[i]);
    absl::StatusOr<Snapshot> snapshot =
        atom.ok() ? atom->load() : absl::StatusOr<Snapshot>(atom.status());
    if (!snapshot.ok()) {
      problems.push_back(absl::StrFormat("atom \"%s\": %s", names[i], snapshot.status().message()));
      continue;
    }
    std::uint64_t seen = 0;
    snapshot->map().ForEach([&](std::string_view, std::string_view) { ++seen; });
    if (seen != snapshot->map().size()) {
      problems.push_back(
          absl::StrFormat("atom \"%s\" version %d: %d entries reachable, %d recorded", names[i],
                          snapshot->version(), seen, snapshot->map().size()));
    }
    entries += seen;
  }
  return entries;
}

// Testing only: ATOMAP_TEST_KILL_COMPACT_AFTER=N makes compact kill itself (SIGKILL, a real
// kill -9) once it has copied N atoms, before the N+1-th (N = the atom count: after the last
// copy, before publishing). tests/cli_test.cc stops compacts there.
std::optional<std::uint64_t> TestKillCompactAfter() {
  const char* text = std::getenv("ATOMAP_TEST_KILL_COMPACT_AFTER");
  if (text == nullptr || *text == '\0') return std::nullopt;
  return std::strtoull(text, nullptr, 10);
}

// A failure after the copy began: the copy is discarded, and the message says so.
absl::Status CompactFailed(const absl::Status& status) {
  return absl::Status(status.code(),
                      absl::StrCat(status.message(), " (compact stopped; nothing was published)"));
}

// Copies atom `name`'s current version from `source` into the (new, unshared) `target`, as
// one version. Returns the entries copied.
absl::StatusOr<std::uint64_t> CopyAtom(Domain& source, Domain& target, const std::string& name) {
  absl::StatusOr<Atom> from = FindAtom(source, name);
  if (!from.ok()) return from.status();
  absl::StatusOr<Snapshot> snapshot = from->load();
  if (!snapshot.ok()) return snapshot.status();
  absl::StatusOr<Atom> to = target.atom(name);
  if (!to.ok()) return to.status();
  absl::StatusOr<Entries> sorted = SortedEntries(snapshot->map());
  if (!sorted.ok()) return sorted.status();
  const Entries& copied = *sorted;
  if (copied.empty()) return 0;  // the atom exists, empty, at version 0
  absl::StatusOr<Snapshot> published =
      to->swap([&](Transaction& tx) { return tx.set_many(copied); });
  if (!published.ok()) return published.status();
  return copied.size();
}

}  // namespace

absl::Status RunCreate(const CreateArgs& args) {
  Options options;
  options.kind = args.common.shm ? DomainKind::kSharedMemory : DomainKind::kFile;
  if (args.max_size != 0) options.max_size = args.max_size;
  if (args.slot_capacity != 0) options.slot_capacity = args.slot_capacity;
  if (args.atom_capacity != 0) options.atom_capacity = args.atom_capacity;
  if (args.reader_capacity != 0) options.reader_capacity = args.reader_capacity;
  absl::StatusOr<std::uint32_t> reader_mode = ParseMode(args.reader_mode);
  if (!reader_mode.ok()) return reader_mode.status();
  options.reader_permissions = *reader_mode;
  // Built unpublished and linked only once complete and attached: a create that fails at any
  // step (mapping included) leaves nothing at the path, and never touches what is there.
  absl::StatusOr<Domain> domain = Domain::CreateUnpublished(args.common.path, options);
  if (!domain.ok()) return domain.status();
  if (absl::Status published = domain->Publish(); !published.ok()) return published;
  const DomainInfo info = domain->info();
  if (args.common.json) {
    nlohmann::json out = nlohmann::json::object();
    PutBytes(out, "path", domain->path(), false);
    out["size"] = info.size;
    out["max_size"] = info.max_size;
    PrintJsonLine(out);
  } else {
    std::printf("created %s (%llu bytes, at most %llu)\n", domain->path().c_str(),
                static_cast<unsigned long long>(info.size),
                static_cast<unsigned long long>(info.max_size));
  }
  return absl::OkStatus();
}

absl::Status RunPut(const KeyValueArgs& args) {
  absl::StatusOr<std::string> key = ArgumentBytes(args.common, args.key, "key");
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> value = ArgumentBytes(args.common, args.value, "value");
  if (!value.ok()) return value.status();
  // The key and value are checked before anything is created: a rejected put must not leave a
  // new, empty atom behind. (A bad atom name is refused by the library before it creates one.)
  if (absl::Status s = CheckKeyValue(*key, *value); !s.ok()) return s;
  absl::StatusOr<Domain> domain = OpenExistingDomain(args.common);
  if (!domain.ok()) return domain.status();
  absl::StatusOr<Atom> atom = domain->atom(args.common.atom);
  if (!atom.ok()) return atom.status();
  absl::StatusOr<Snapshot> published =
      atom->swap([&](Transaction& tx) { return tx.set(*key, *value); });
  if (!published.ok()) return published.status();
  if (args.common.json) PrintJsonLine(AtomVersionJson(args.common.atom, published->version()));
  return absl::OkStatus();
}

absl::Status RunGet(const KeyValueArgs& args) {
  absl::StatusOr<std::string> key = ArgumentBytes(args.common, args.key, "key");
  if (!key.ok()) return key.status();
  absl::StatusOr<Domain> domain = OpenExistingDomain(args.common);
  if (!domain.ok()) return domain.status();
  absl::StatusOr<Atom> atom = FindAtom(*domain, args.common.atom);
  if (!atom.ok()) return atom.status();
  absl::StatusOr<Snapshot> snapshot = atom->load();
  if (!snapshot.ok()) return snapshot.status();
  absl::StatusOr<std::optional<std::string_view>> found = snapshot->map().checked_get(*key);
  if (!found.ok()) return found.status();
  const std::optional<std::string_view> value = *found;
  if (!value.has_value()) return KeyNotFound(*domain, args.common, *key);
  if (args.common.json) {
    PrintJsonLine(EntryJson(*key, *value, args.common.hex));
  } else {
    const std::string text = args.common.hex ? HexEncode(*value) : std::string(*value);
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
  }
  return absl::OkStatus();
}

absl::Status RunDel(const KeyValueArgs& args) {
  absl::StatusOr<std::string> key = ArgumentBytes(args.common, args.key, "key");
  if (!key.ok()) return key.status();
  absl::StatusOr<Domain> domain = OpenExistingDomain(args.common);
  if (!domain.ok()) return domain.status();
  absl::StatusOr<Atom> atom = FindAtom(*domain, args.common.atom);
  if (!atom.ok()) return atom.status();
  // An absent key fails the swap, so nothing is published.
  absl::StatusOr<Snapshot> published = atom->swap([&](Transaction& tx) -> absl::Status {
    absl::StatusOr<bool> erased = tx.erase(*key);
    if (!erased.ok()) return erased.status();
    return *erased ? absl::OkStatus() : KeyNotFound(*domain, args.common, *key);
  });
  if (!published.ok()) return published.status();
  if (args.common.json) PrintJsonLine(AtomVersionJson(args.common.atom, published->version()));
  return absl::OkStatus();
}

absl::Status RunDump(const CommonArgs& args) {
  absl::StatusOr<Domain> domain = OpenExistingDomain(args);
  if (!domain.ok()) return domain.status();
  absl::StatusOr<Atom> atom = FindAtom(*domain, args.atom);
  if (!atom.ok()) return atom.status();
  absl::StatusOr<Snapshot> snapshot = atom->load();
  if (!snapshot.ok()) return snapshot.status();
  absl::StatusOr<Entries> sorted = SortedEntries(snapshot->map());
  if (!sorted.ok()) return sorted.status();
  for (const auto& [key, value] : *sorted) PrintJsonLine(EntryJson(key, value, args.hex));
  if (std::fflush(stdout) != 0) return absl::DataLossError("<stdout>: write error");
  return absl::OkStatus();
}

absl::Status RunLoad(const LoadArgs& args) {
  // Parse and check everything before touching the domain: a bad line publishes nothing and
  // creates no atom.
  absl::StatusOr<std::map<std::string, std::string>> entries = ReadEntries(std::cin);
  if (!entries.ok()) return entries.status();
  absl::StatusOr<Domain> domain = OpenExistingDomain(args.common);
  if (!domain.ok()) return domain.status();
  absl::StatusOr<Atom> atom = domain->atom(args.common.atom);
  if (!atom.ok()) return atom.status();
  // set_many (and reset, through it) builds an empty atom bottom up: the rate says how fast.
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<Snapshot> published =
      args.replace ? atom->reset(Views(*entries))
                   : atom->swap([&](Transaction& tx) { return tx.set_many(Views(*entries)); });
  if (!published.ok()) return published.status();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double rate = seconds > 0 ? static_cast<double>(entries->size()) / seconds : 0;
  if (args.common.json) {
    nlohmann::json out = AtomVersionJson(args.common.atom, published->version());
    out["entries_loaded"] = entries->size();
    out["entries"] = published->map().size();
    PrintJsonLine(out);
  } else {
    std::printf(
        "loaded %zu entries into atom \"%s\" (now %llu entries, version %llu) at %.0f entries/s\n",
        entries->size(), args.common.atom.c_str(),
        static_cast<unsigned long long>(published->map().size()),
        static_cast<unsigned long long>(published->version()), rate);
  }
  return absl::OkStatus();
}

namespace {

// Every atom's figures. With `skip_unreadable` (--prometheus: print what can be read), an atom
// that cannot be read is left out; otherwise its error is stat's.
absl::Status AddAtomReports(Domain& domain, bool skip_unreadable, StatReport& report) {
  for (const std::string& name : domain.atom_names()) {
    absl::StatusOr<Atom> atom = FindAtom(domain, name);
    absl::StatusOr<Snapshot> snapshot =
        atom.ok() ? atom->load() : absl::StatusOr<Snapshot>(atom.status());
    if (!snapshot.ok()) {
      if (skip_unreadable) continue;
      return snapshot.status();
    }
    report.atoms.push_back(AtomReport{name, snapshot->map().size(), snapshot->version()});
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunStat(const StatArgs& args) {
  absl::StatusOr<Domain> domain = OpenExistingDomain(args.common);
  if (!domain.ok()) return domain.status();
  StatReport report;
  report.path = domain->path();
  report.info = domain->info();
  report.stats = domain->stats(StatsOptions{.participants = args.readers || args.prometheus});
  // A damaged list: exit 3, one line; --prometheus prints what it has (atomap_damage 1) first.
  const absl::Status damage = report.stats.damage;
  if (!damage.ok() && !args.prometheus) return damage;
  report.bytes_on_disk = BytesOnDisk(domain->path());
  // A read-only handle marks nothing dirty, so the state word itself says it.
  report.closed_cleanly = domain->read_only() ? report.info.clean : domain->was_clean();
  report.others = OtherParticipants(report.stats.participant_list,
                                    static_cast<std::uint32_t>(getpid()), report.self_writers);
  if (absl::Status atoms = AddAtomReports(*domain, args.prometheus, report); !atoms.ok()) {
    return atoms;
  }
  if (args.prometheus) {
    const std::string text = PrometheusText(report);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return damage;
  }
  if (args.common.json) {
    PrintJsonLine(StatJson(report, args.readers));
  } else {
    PrintStatText(report, args.readers);
  }
  return absl::OkStatus();
}

absl::Status RunCheck(const CheckArgs& args) {
  std::vector<std::string> problems;
  CheckReport report;
  std::uint64_t entries_walked = 0;
  absl::StatusOr<Domain> domain = OpenExistingDomain(args.common);
  if (absl::IsDataLoss(domain.status())) {
    // A damaged header or table is what check is for: a problem found, not a failure to run.
    problems.emplace_back(domain.status().message());
  } else if (!domain.ok()) {
    return domain.status();
  } else {
    if (args.wait_seconds > 0 && !args.common.json) {
      std::fprintf(stderr, "check: waiting up to %g s for %s to itself\n", args.wait_seconds,
                   domain->path().c_str());
    }
    absl::StatusOr<CheckReport> checked = domain->check(CheckOptions{
        .repair = args.repair, .wait_for_exclusive = absl::Seconds(args.wait_seconds)});
    if (!checked.ok()) return checked.status();
    report = *std::move(checked);
    problems = report.problems;
    // The structural audit bounds-checks every offset; only a version it passed is safe to
    // walk with the ordinary (unchecked) readers, and on a live domain the current version may
    // already be another one.
    if (problems.empty() && report.space_checked) entries_walked = WalkAtoms(*domain, problems);
  }

  const std::string& path = domain.ok() ? domain->path() : args.common.path;
  if (args.common.json) {
    nlohmann::json out = {{"ok", problems.empty()},
                          {"problems", problems},
                          {"repair", args.repair},
                          {"entries_walked", entries_walked},
                          {"reachable_bytes", report.reachable_bytes},
                          {"free_bytes", report.free_bytes},
                          {"pending_bytes", report.pending_bytes},
                          {"unused_bytes", report.unused_bytes},
                          {"in_flight_bytes", report.in_flight_bytes},
                          {"leaked_bytes", report.leaked_bytes},
                          {"space_checked", report.space_checked},
                          {"atoms_checked", report.atoms_checked},
                          {"others_attached", report.others_attached},
                          {"skipped", report.skipped}};
    PutBytes(out, "path", path, false);
    PrintJsonLine(out);  // a problem's text may quote bytes that are not UTF-8: see PrintJsonLine
  } else {
    for (const std::string& problem : problems) std::printf("problem: %s\n", problem.c_str());
    if (!report.space_checked) {
      std::printf("%s\n%s: %s; %u atoms checked under a pin\n", report.skipped.c_str(),
                  path.c_str(), problems.empty() ? "clean" : "PROBLEMS FOUND",
                  report.atoms_checked);
    } else {
      std::printf("%s: %s; %llu entries walked; bytes: %llu reachable, %llu free, %llu pending, "
                  "%llu unused, %llu in flight, %llu leaked%s\n",
                  path.c_str(), problems.empty() ? "clean" : "PROBLEMS FOUND",
                  static_cast<unsigned long long>(entries_walked),
                  static_cast<unsigned long long>(report.reachable_bytes),
                  static_cast<unsigned long long>(report.free_bytes),
                  static_cast<unsigned long long>(report.pending_bytes),
                  static_cast<unsigned long long>(report.unused_bytes),
                  static_cast<unsigned long long>(report.in_flight_bytes),
                  static_cast<unsigned long long>(report.leaked_bytes),
                  args.repair ? " (repair requested)" : "");
    }
  }
  if (problems.empty()) return absl::OkStatus();
  return WithExitCode(
      absl::DataLossError(absl::StrFormat("%s: %d problem(s) found", path, problems.size())),
      kExitNotFound);
}

absl::Status RunWatch(const WatchArgs& args) {
  absl::StatusOr<Domain> domain = OpenExistingDomain(args.common);
  if (!domain.ok()) return domain.status();
  // Watching an atom that does not exist yet is fine: it is created empty.
  absl::StatusOr<Atom> atom = domain->atom(args.common.atom);
  if (!atom.ok()) return atom.status();
  absl::StatusOr<Watcher> watcher = Watcher::Start(*atom);
  if (!watcher.ok()) return watcher.status();
  // Says on stderr when changes start to count, so that a script (or a test) can wait for it.
  std::fprintf(stderr, "watching atom \"%s\" of %s from version %llu\n", args.common.atom.c_str(),
               domain->path().c_str(), static_cast<unsigned long long>(watcher->version()));
  std::fflush(stderr);
  for (std::uint64_t seen = 0; args.count == 0 || seen < args.count; ++seen) {
    absl::StatusOr<bool> changed = watcher->Next([&](const MapDiff& diff, const Snapshot& now) {
      if (args.common.json) {
        PrintJsonLine(DiffJson(args.common.atom, now.version(), diff, args.common.hex));
      } else {
        std::printf("%s\n", DiffText(now.version(), diff, args.common.hex).c_str());
      }
      std::fflush(stdout);
    });
    if (!changed.ok()) return changed.status();
  }
  return absl::OkStatus();
}

absl::Status RunCompact(const CompactArgs& args) {
  absl::StatusOr<Domain> source = OpenExistingDomain(args.common);
  if (!source.ok()) return source.status();
  const DomainInfo source_info = source->info();
  Options options;
  // Fails early, before a long copy, if something is at NEW_PATH (AlreadyExists, exit 3). Only
  // an early answer: Publish's link is what never replaces a file that appears meanwhile.
  options.error_if_exists = true;
  options.kind = source->kind();
  options.max_size = source_info.max_size;
  options.slot_capacity = source_info.slot_capacity;
  options.atom_capacity = source_info.atom_capacity;
  // The copy is built where nobody sees it and appears at NEW_PATH only complete and synced
  // (Publish links it, never replacing anything): a compact killed, or failing, at any point
  // leaves nothing at NEW_PATH.
  absl::StatusOr<Domain> target = Domain::CreateUnpublished(args.new_path, options);
  if (!target.ok()) return target.status();

  const std::vector<std::string> names = source->atom_names();
  const std::optional<std::uint64_t> kill_after = TestKillCompactAfter();
  Progress progress("compact: atoms copied", names.size());
  std::uint64_t entries = 0;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (kill_after == i) std::raise(SIGKILL);
    progress.Update(i);
    absl::StatusOr<std::uint64_t> copied = CopyAtom(*source, *target, names[i]);
    if (!copied.ok()) return CompactFailed(copied.status());
    entries += *copied;
  }
  if (kill_after == names.size()) std::raise(SIGKILL);
  progress.Clear();
  if (absl::Status published = target->Publish(); !published.ok()) {
    return CompactFailed(published);
  }

  const std::uint64_t before = BytesOnDisk(source->path());
  const std::uint64_t after = BytesOnDisk(target->path());
  if (args.common.json) {
    nlohmann::json out = {{"atoms", names.size()},
                          {"entries", entries},
                          {"bytes_on_disk_before", before},
                          {"bytes_on_disk_after", after}};
    PutBytes(out, "path", source->path(), false);
    PutBytes(out, "new_path", target->path(), false);
    PrintJsonLine(out);
  } else {
    std::printf("compacted %s (%llu bytes on disk) into %s (%llu bytes on disk): %zu atoms, "
                "%llu entries\n",
                source->path().c_str(), static_cast<unsigned long long>(before),
                target->path().c_str(), static_cast<unsigned long long>(after), names.size(),
                static_cast<unsigned long long>(entries));
  }
  return absl::OkStatus();
}

}  // namespace atomap::cli

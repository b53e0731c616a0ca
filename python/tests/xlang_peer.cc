// xlang_peer: the C++ side of the cross-language tests (python/tests/test_cross_language.py).
// Each mode opens the domain at PATH itself, as an independent C++ process would.
//
//   xlang_peer add PATH ATOM KEY N        N swaps, each adding 1 to KEY's u64
//                                         (TypedTransaction<std::string, std::uint64_t>)
//   xlang_peer publish PATH ATOM N        N versions: version i sets "seq" = i (u64) and "k<i>",
//                                         erases "k<i-1>"; before each it reads one line of
//                                         stdin (the watcher's "ready"), so none is merged
//   xlang_peer expect PATH ATOM K=V...    exit 0 iff the atom holds exactly these string
//                                         entries (TypedMap<std::string, std::string>)
//   xlang_peer expect-u64 PATH ATOM KEY N exit 0 iff KEY's u64 is N
//   xlang_peer check PATH                 exit 0 iff Domain::check finds no problem and no leak
//
// Prints what it found on a mismatch, to stderr; "ok" on stdout when it succeeds.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "atomap/domain.h"
#include "atomap/typed_map.h"

namespace {

using Counters = atomap::TypedTransaction<std::string, std::uint64_t>;

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "xlang_peer: %s\n", status.ToString().c_str());
  return 1;
}

int Add(atomap::Atom& atom, const std::string& key, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i) {
    absl::StatusOr<atomap::Snapshot> done = atom.swap([&](atomap::Transaction& tx) {
      Counters typed(tx);
      return typed.set(key, typed.get(key).value_or(0) + 1);
    });
    if (!done.ok()) return Fail(done.status());
  }
  return 0;
}

int Publish(atomap::Atom& atom, std::uint64_t n) {
  std::string ready;
  for (std::uint64_t i = 1; i <= n; ++i) {
    if (!std::getline(std::cin, ready)) return Fail(absl::AbortedError("the watcher went away"));
    absl::StatusOr<atomap::Snapshot> done = atom.swap([&](atomap::Transaction& tx) {
      absl::Status status = atomap::TypedTransaction<std::string, std::uint64_t>(tx).set("seq", i);
      if (status.ok()) status = tx.set(absl::StrCat("k", i), std::string(i % 7 + 1, 'x'));
      if (status.ok() && i > 1) status = tx.erase(absl::StrCat("k", i - 1)).status();
      return status;
    });
    if (!done.ok()) return Fail(done.status());
  }
  return 0;
}

int Expect(const atomap::Atom& atom, int argc, char** argv) {
  std::map<std::string, std::string> want;
  for (int i = 0; i < argc; ++i) {
    const std::string_view pair = argv[i];
    const std::size_t eq = pair.find('=');
    want[std::string(pair.substr(0, eq))] =
        eq == std::string_view::npos ? "" : std::string(pair.substr(eq + 1));
  }
  absl::StatusOr<atomap::Snapshot> snapshot = atom.load();
  if (!snapshot.ok()) return Fail(snapshot.status());
  std::map<std::string, std::string> have;
  snapshot->map().ForEach([&](std::string_view key, std::string_view value) {
    have[std::string(key)] = std::string(value);
  });
  if (have == want) return 0;
  for (const auto& [key, value] : have)
    std::fprintf(stderr, "have %s=%s\n", key.c_str(), value.c_str());
  return 1;
}

int ExpectU64(const atomap::Atom& atom, const std::string& key, std::uint64_t n) {
  absl::StatusOr<atomap::Snapshot> snapshot = atom.load();
  if (!snapshot.ok()) return Fail(snapshot.status());
  const std::optional<std::uint64_t> have =
      atomap::TypedMap<std::string, std::uint64_t>(snapshot->map()).get(key);
  if (have == n) return 0;
  std::fprintf(stderr, "%s is %s, not %llu\n", key.c_str(),
               have ? std::to_string(*have).c_str() : "absent", (unsigned long long)n);
  return 1;
}

int Check(atomap::Domain& domain) {
  absl::StatusOr<atomap::CheckReport> report = domain.check();
  if (!report.ok()) return Fail(report.status());
  for (const std::string& problem : report->problems) std::fprintf(stderr, "%s\n", problem.c_str());
  std::fprintf(stderr, "check: %zu problems, %llu leaked bytes, space %s\n",
               report->problems.size(), (unsigned long long)report->leaked_bytes,
               report->space_checked ? "checked" : "not checked (others attached)");
  return report->problems.empty() && report->space_checked && report->leaked_bytes == 0 ? 0 : 1;
}

int Run(int argc, char** argv) {
  if (argc < 3) return 2;
  const std::string mode = argv[1];
  absl::StatusOr<atomap::Domain> domain = atomap::Domain::Open(argv[2]);
  if (!domain.ok()) return Fail(domain.status());
  if (mode == "check") return Check(*domain);
  if (argc < 4) return 2;
  absl::StatusOr<atomap::Atom> atom = domain->atom(argv[3]);
  if (!atom.ok()) return Fail(atom.status());
  if (mode == "add" && argc == 6) return Add(*atom, argv[4], std::strtoull(argv[5], nullptr, 10));
  if (mode == "publish" && argc == 5) return Publish(*atom, std::strtoull(argv[4], nullptr, 10));
  if (mode == "expect") return Expect(*atom, argc - 4, argv + 4);
  if (mode == "expect-u64" && argc == 6) {
    return ExpectU64(*atom, argv[4], std::strtoull(argv[5], nullptr, 10));
  }
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const int rc = Run(argc, argv);
  if (rc == 2) std::fprintf(stderr, "xlang_peer: bad arguments (see the head of xlang_peer.cc)\n");
  if (rc == 0) std::printf("ok\n");
  return rc;
}

// counters: multi-process atomic swap, or the declarative add.
//
//   counters FILE [PROCESSES] [INCREMENTS] [swap|add]
//
// Forks PROCESSES children (default 4). Each opens the domain itself (a child must never use a
// Domain its parent opened) and adds 1 to the shared counter "total", INCREMENTS times (default
// 10000), each time with swap() (the default): a read-modify-write that no other process can
// interleave with, with no lock to leave behind if a process is killed; or with add(), which
// says the same declaratively (no function of yours runs: the path a combiner can take for
// you). The parent prints the total and exits 1 unless every increment was counted exactly once.
//
// Keys and values here are typed (std::string -> std::uint64_t) through swap_typed; add()
// stores the same 8 bytes, and they can be read with the untyped API or the atomap tool.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "atomap/domain.h"

namespace {

using Counters = atomap::TypedTransaction<std::string, std::uint64_t>;

absl::StatusOr<std::uint64_t> ReadTotal(atomap::Atom& atom) {
  absl::StatusOr<atomap::Snapshot> snapshot = atom.load();
  if (!snapshot.ok()) return snapshot.status();
  atomap::TypedMap<std::string, std::uint64_t> counters(snapshot->map());
  return counters.get("total").value_or(0);
}

int Increment(const char* path, long increments, bool declarative) {
  absl::StatusOr<atomap::Domain> domain = atomap::Domain::Open(path);
  if (!domain.ok()) {
    std::fprintf(stderr, "%s\n", domain.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<atomap::Atom> atom = domain->atom("counters");
  if (!atom.ok()) return 1;
  for (long i = 0; i < increments && declarative; ++i) {
    absl::StatusOr<std::uint64_t> total = atom->add("total", 1);  // the new total
    if (!total.ok()) {
      std::fprintf(stderr, "%s\n", total.status().ToString().c_str());
      return 1;
    }
  }
  for (long i = 0; i < increments && !declarative; ++i) {
    // The function may run more than once (when another process published first), so it only
    // edits the transaction.
    absl::StatusOr<atomap::Snapshot> done =
        atom->swap_typed<std::string, std::uint64_t>([](Counters& tx) {
          return tx.update("total", [](std::optional<std::uint64_t> old) {
            return std::optional<std::uint64_t>(old.value_or(0) + 1);
          });
        });
    if (!done.ok()) {
      std::fprintf(stderr, "%s\n", done.status().ToString().c_str());
      return 1;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE [PROCESSES] [INCREMENTS] [swap|add]\n", argv[0]);
    return 2;
  }
  const char* path = argv[1];
  const int processes = argc > 2 ? std::atoi(argv[2]) : 4;
  const long increments = argc > 3 ? std::atol(argv[3]) : 10000;
  const bool declarative = argc > 4 && std::string(argv[4]) == "add";

  std::uint64_t before = 0;
  {
    // Read the starting total, and close the domain before forking.
    absl::StatusOr<atomap::Domain> domain = atomap::Domain::Open(path);
    if (!domain.ok()) {
      std::fprintf(stderr, "%s\n", domain.status().ToString().c_str());
      return 1;
    }
    absl::StatusOr<atomap::Atom> atom = domain->atom("counters");
    absl::StatusOr<std::uint64_t> total = atom.ok() ? ReadTotal(*atom) : atom.status();
    if (!total.ok()) return 1;
    before = *total;
  }

  for (int i = 0; i < processes; ++i) {
    if (fork() == 0) _exit(Increment(path, increments, declarative));
  }
  bool children_ok = true;
  for (int i = 0; i < processes; ++i) {
    int status = 0;
    wait(&status);
    children_ok = children_ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }

  absl::StatusOr<atomap::Domain> domain = atomap::Domain::Open(path);
  if (!domain.ok()) return 1;
  absl::StatusOr<atomap::Atom> atom = domain->atom("counters");
  absl::StatusOr<std::uint64_t> after = atom.ok() ? ReadTotal(*atom) : atom.status();
  if (!after.ok()) return 1;
  const std::uint64_t expected = before + static_cast<std::uint64_t>(processes) * increments;
  std::printf("%d processes x %ld increments: total %llu -> %llu (expected %llu)\n", processes,
              increments, static_cast<unsigned long long>(before),
              static_cast<unsigned long long>(*after), static_cast<unsigned long long>(expected));
  return children_ok && *after == expected ? 0 : 1;
}

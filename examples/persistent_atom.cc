// persistent_atom: state that outlives the process.
//
//   persistent_atom FILE [--expect-run N]
//
// Each run opens (or, the first time, creates) the domain in FILE, reads what the previous runs
// left in atom "state" — how many runs there were, and what the last one wrote — and records
// itself. Nothing is loaded or saved explicitly: the map lives in the file, so it is simply
// there when the process comes back, even after kill -9.
//
// With --expect-run N it exits 1 unless this is run number N (the tests run it twice).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "atomap/domain.h"

int main(int argc, char** argv) {
  if (argc != 2 && !(argc == 4 && std::strcmp(argv[2], "--expect-run") == 0)) {
    std::fprintf(stderr, "usage: %s FILE [--expect-run N]\n", argv[0]);
    return 2;
  }
  absl::StatusOr<atomap::Domain> domain = atomap::Domain::Open(argv[1]);
  if (!domain.ok()) {
    std::fprintf(stderr, "%s\n", domain.status().ToString().c_str());
    return 1;
  }
  absl::StatusOr<atomap::Atom> state = domain->atom("state");
  if (!state.ok()) return 1;

  const std::string me = "pid " + std::to_string(getpid());
  std::uint64_t run = 0;
  std::string previous;
  absl::StatusOr<atomap::Snapshot> after = state->swap([&](atomap::Transaction& tx) {
    // May run more than once if another process runs at the same time: recompute everything.
    atomap::TypedTransaction<std::string, std::uint64_t> typed(tx);
    run = typed.get("runs").value_or(0) + 1;
    previous = std::string(tx.get("last").value_or("nobody"));
    absl::Status status = typed.set("runs", run);
    if (status.ok()) status = tx.set("last", me);
    return status;
  });
  if (!after.ok()) {
    std::fprintf(stderr, "%s\n", after.status().ToString().c_str());
    return 1;
  }
  std::printf("run %llu of %s (the previous run was %s)\n", static_cast<unsigned long long>(run),
              argv[1], previous.c_str());
  if (argc == 4 && run != std::strtoull(argv[3], nullptr, 10)) {
    std::fprintf(stderr, "expected run %s, this is run %llu\n", argv[3],
                 static_cast<unsigned long long>(run));
    return 1;
  }
  return 0;
}

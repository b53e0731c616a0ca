// config: shared configuration with one writer and readers that react to changes.
//
//   config FILE [READERS]
//
// The parent is the writer; it forks READERS reader processes (default 3). Each reader opens the
// domain itself and follows atom "config" with an atomap::Watcher: Next() sleeps in the kernel
// until a new version is published, then hands over what changed. Readers print each change
// and stop when they see "shutdown". The writer publishes a few versions, each a whole new
// configuration applied atomically (several keys in one swap: a reader never sees half of it).
//
// Readers tell the writer through a pipe when they are watching and when they have handled a
// version, and the writer waits for that before the next one, so that each reader prints every
// version; no sleeps. Without that wait, a reader that is busy when several versions arrive gets
// them as one diff: watchers see the latest state, not necessarily every intermediate one.
// (A process that only needs "something changed" can call Atom::wait_for_change(version).)
//
//   config FILE --reader FD
//
// runs one reader in the foreground, telling its writer through pipe end FD: how the Python
// writer of examples/config.py starts a C++ reader on the same file.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "atomap/domain.h"
#include "atomap/watcher.h"

namespace {

// The reader's side of the pipe: "watching", then "handled a version" after each one.
void Tell(int fd) {
  const char byte = 'r';
  if (write(fd, &byte, 1) != 1) std::exit(1);
}

// The writer's side: waits for one message from each reader.
bool AwaitReaders(int fd, int readers) {
  for (int i = 0; i < readers; ++i) {
    char byte;
    if (read(fd, &byte, 1) != 1) return false;
  }
  return true;
}

int Reader(const char* path, int number, int ready_fd) {
  absl::StatusOr<atomap::Domain> domain = atomap::Domain::Open(path);
  if (!domain.ok()) return 1;
  absl::StatusOr<atomap::Atom> config = domain->atom("config");
  if (!config.ok()) return 1;
  absl::StatusOr<atomap::Watcher> watcher = atomap::Watcher::Start(*config);
  if (!watcher.ok()) return 1;
  Tell(ready_fd);

  std::string port;
  for (bool shutdown = false; !shutdown;) {
    absl::StatusOr<bool> changed =
        watcher->Next([&](const atomap::MapDiff& diff, const atomap::Snapshot& now) {
          std::string line = "reader " + std::to_string(number) + " sees version " +
                             std::to_string(now.version()) + ":";
          for (const auto& [key, value] : diff.added) line += " +" + key + "=" + value;
          for (const auto& change : diff.changed) line += " " + change.key + "=" + change.new_value;
          for (const auto& [key, value] : diff.removed) line += " -" + key;
          std::printf("%s\n", line.c_str());
          std::fflush(stdout);
          port = std::string(now.map().get("port").value_or(""));
          shutdown = now.map().contains("shutdown");
        });
    if (changed.ok() && !shutdown) Tell(ready_fd);
    if (!changed.ok()) return 1;
  }
  return port == "8083" ? 0 : 1;  // every reader ends on the writer's last configuration
}

absl::Status Publish(atomap::Atom& config, const std::string& port, const std::string& mode) {
  return config
      .swap([&](atomap::Transaction& tx) {
        absl::Status status = tx.set("port", port);
        if (status.ok()) status = tx.set("mode", mode);
        return status;
      })
      .status();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE [READERS] | FILE --reader FD\n", argv[0]);
    return 2;
  }
  const char* path = argv[1];
  if (argc == 4 && std::string_view(argv[2]) == "--reader") {
    return Reader(path, 0, std::atoi(argv[3]));
  }
  const int readers = argc > 2 ? std::atoi(argv[2]) : 3;
  {
    // Start from an empty configuration (the file may hold a previous run's).
    absl::StatusOr<atomap::Domain> domain = atomap::Domain::Open(path);
    if (!domain.ok()) {
      std::fprintf(stderr, "%s\n", domain.status().ToString().c_str());
      return 1;
    }
    absl::StatusOr<atomap::Atom> config = domain->atom("config");
    if (!config.ok()) return 1;
    absl::StatusOr<atomap::Snapshot> old = config->load();
    if (!old.ok()) return 1;
    absl::StatusOr<atomap::Snapshot> cleared = config->swap([&](atomap::Transaction& tx) {
      absl::Status status;
      old->map().ForEach([&](std::string_view key, std::string_view) {
        if (status.ok()) status = tx.erase(key).status();
      });
      return status;
    });
    if (!cleared.ok()) return 1;
  }

  int ready[2];
  if (pipe(ready) != 0) return 1;
  std::fflush(stdout);
  for (int i = 0; i < readers; ++i) {
    if (fork() == 0) {
      close(ready[0]);
      _exit(Reader(path, i, ready[1]));
    }
  }
  close(ready[1]);
  if (!AwaitReaders(ready[0], readers)) return 1;  // every reader is watching

  absl::StatusOr<atomap::Domain> domain = atomap::Domain::Open(path);
  if (!domain.ok()) return 1;
  absl::StatusOr<atomap::Atom> config = domain->atom("config");
  if (!config.ok()) return 1;
  for (const char* port : {"8081", "8082", "8083"}) {
    if (!Publish(*config, port, port[3] == '3' ? "final" : "warming-up").ok()) return 1;
    if (!AwaitReaders(ready[0], readers)) return 1;  // every reader has handled it
  }
  if (!config->swap([](atomap::Transaction& tx) { return tx.set("shutdown", "1"); }).ok()) {
    return 1;
  }

  bool readers_ok = true;
  for (int i = 0; i < readers; ++i) {
    int status = 0;
    wait(&status);
    readers_ok = readers_ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  std::printf("writer published 4 versions; %d readers %s\n", readers,
              readers_ok ? "all ended on port 8083" : "FAILED");
  return readers_ok ? 0 : 1;
}

// Registered readers end to end: a read-only handle in another process pins what it loads, so
// writers swapping thousands of times (and reclaiming) never free it; a reader SIGKILLed while
// pinned is cleared by the writers' reclamation, pending garbage drains, nothing leaks.
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "atomap/domain.h"
#include "domain/domain_impl.h"
#include "epoch/epoch_table.h"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

using internal::Access;

constexpr int kKeys = 200;
constexpr std::size_t kValueBytes = 96;

std::string Key(int i) { return absl::StrFormat("key-%04d", i); }

// A value that proves itself: "key|generation|" then a fill byte that both determine.
char Fill(const std::string& key, std::uint32_t generation) {
  std::uint32_t h = generation * 2654435761u;
  for (char c : key) h = h * 31 + static_cast<unsigned char>(c);
  return static_cast<char>('a' + h % 26);
}
std::string Value(const std::string& key, std::uint32_t generation) {
  std::string value = absl::StrFormat("%s|%08u|", key, generation);
  value.resize(kValueBytes, Fill(key, generation));
  return value;
}
bool Intact(const std::string& key, std::string_view value) {
  if (value.size() != kValueBytes || value.substr(0, key.size() + 1) != key + "|") return false;
  std::uint32_t generation = 0;
  for (char c : value.substr(key.size() + 1, 8)) {
    if (c < '0' || c > '9') return false;
    generation = generation * 10 + static_cast<std::uint32_t>(c - '0');
  }
  return std::string(value) == Value(key, generation);
}

// Entries of `snapshot` that are missing or fail their check word.
int DamagedEntries(const Snapshot& snapshot) {
  int damaged = 0;
  for (int i = 0; i < kKeys; ++i) {
    std::optional<std::string_view> value = snapshot.map().get(Key(i));
    if (!value || !Intact(Key(i), *value)) ++damaged;
  }
  return damaged;
}

absl::Status SwapSome(Atom& atom, std::uint32_t generation) {
  return atom
      .swap([&](Transaction& tx) -> absl::Status {
        for (int j = 0; j < 20; ++j) {
          const std::string key = Key(static_cast<int>((generation * 37 + j * 11) % kKeys));
          if (absl::Status s = tx.set(key, Value(key, generation)); !s.ok()) return s;
        }
        return absl::OkStatus();
      })
      .status();
}

Options ReaderOptions() {
  Options options = SmallOptions(8, 16);
  options.read_only = true;
  options.create_if_missing = false;
  return options;
}

// A domain with kKeys intact entries in atom "a", and a writable handle on it.
absl::StatusOr<Domain> FilledWriter(const std::string& path) {
  {
    absl::StatusOr<Domain> creator = Domain::Open(path, SmallOptions(8, 16));
    if (!creator.ok()) return creator.status();
    absl::StatusOr<Atom> atom = creator->atom("a");
    if (!atom.ok()) return atom.status();
    const absl::Status filled =
        atom->swap([](Transaction& tx) -> absl::Status {
              for (int i = 0; i < kKeys; ++i) {
                if (absl::Status s = tx.set(Key(i), Value(Key(i), 0)); !s.ok()) return s;
              }
              return absl::OkStatus();
            })
            .status();
    if (!filled.ok()) return filled;
  }
  return Domain::Open(path, SmallOptions(8, 16));
}

// A child that opens `path` read-only, loads atom "a", checks it, reports its reader slot, then
// (if `verify` is non-null) waits at the gate, checks its snapshot again and reports the damage.
pid_t ForkPinnedReader(const std::string& path, ReportPipe& pinned, Gate& go, ReportPipe* verify) {
  return ForkChild([&path, &pinned, &go, verify] {
    absl::StatusOr<Domain> domain = Domain::Open(path, ReaderOptions());
    if (!domain.ok()) return 1;
    absl::StatusOr<Atom> atom = domain->find_atom("a");
    if (!atom.ok()) return 2;
    absl::StatusOr<Snapshot> snapshot = atom->load();
    if (!snapshot.ok() || DamagedEntries(*snapshot) != 0) return 3;
    std::int64_t slot = -1;
    for (const internal::ReaderSlotImage& image : Access(*domain).readers()->ReadSlots()) {
      if (image.owner_pid == static_cast<std::uint32_t>(getpid()) &&
          internal::Announcement::IsPinned(image.announcement)) {
        slot = image.index;
      }
    }
    pinned.Send(slot);
    go.Wait();
    if (verify != nullptr) verify->Send(static_cast<std::int64_t>(DamagedEntries(*snapshot)));
    return 0;
  });
}

// A reader that holds a slot and a pin at `epoch`, but no handle of the data file (as a registered
// reader is after companion_file: it takes no attach lock, so writers are alone among writers).
// Reports its slot, then waits at `gate` until killed.
pid_t ForkRegistryOnlyReader(const std::string& path, std::uint64_t epoch, ReportPipe& pinned,
                             Gate& gate) {
  return ForkChild([&path, epoch, &pinned, &gate] {
    const std::string registry_path = path + ".readers";
    const int fd = open(registry_path.c_str(), O_RDWR | O_CLOEXEC);
    absl::StatusOr<internal::ReaderRegistry> registry =
        internal::ReaderRegistry::Open(fd, internal::kDefaultReaderCapacity, true, registry_path);
    if (!registry.ok()) return 1;
    absl::StatusOr<internal::ReaderLease> lease = registry->Claim();
    if (!lease.ok()) return 2;
    lease->slot().announcement.StoreRelaxed(internal::Announcement::Pinned(epoch));
    pinned.Send(static_cast<std::int64_t>(lease->index()));
    gate.Wait();
    return 0;
  });
}

TEST_CASE("a pinned reader in another process keeps its snapshot through thousands of swaps",
          "[readers][multiprocess]") {
  TempDir dir;
  const std::string path = dir.File("e2e.atomap");
  absl::StatusOr<Domain> writer = FilledWriter(path);
  REQUIRE(writer.ok());
  REQUIRE(Access(*writer).readers() != nullptr);
  absl::StatusOr<Atom> atom = writer->atom("a");
  REQUIRE(atom.ok());

  ReportPipe pinned;
  ReportPipe verdict;
  Gate go;
  const pid_t reader = ForkPinnedReader(path, pinned, go, &verdict);
  const std::optional<std::int64_t> slot = pinned.Receive<std::int64_t>();
  REQUIRE(slot.has_value());
  REQUIRE(*slot >= 0);

  for (std::uint32_t generation = 1; generation <= 3000; ++generation) {
    REQUIRE(SwapSome(*atom, generation).ok());
  }
  // The reader is what holds the epoch back, and what it pins is still pending, not reused.
  std::optional<internal::EpochBlocker> blocker = Access(*writer).epochs().TryAdvance();
  REQUIRE(blocker.has_value());
  CHECK(blocker->reader);
  CHECK(blocker->slot == static_cast<std::uint32_t>(*slot));
  const DomainStats stats = writer->stats();
  const std::uint64_t held_back = stats.pending_garbage_blocks;
  CHECK(held_back > 1000);
  CHECK(stats.any_pinned);
  CHECK(stats.oldest_pinned_is_reader);
  CHECK(stats.oldest_pinned_slot == static_cast<std::uint32_t>(*slot));
  CHECK(stats.oldest_pinned_pid == static_cast<std::uint32_t>(reader));

  go.Open();
  const std::optional<std::int64_t> damaged = verdict.Receive<std::int64_t>();
  REQUIRE(damaged.has_value());
  CHECK(*damaged == 0);
  CHECK(WaitChild(reader) == 0);

  // Released at the reader's exit: reclamation runs freely again, down to its steady level
  // (about two reclamation passes' worth of retirements).
  for (std::uint32_t generation = 3001; generation <= 3300; ++generation) {
    REQUIRE(SwapSome(*atom, generation).ok());
  }
  CHECK(writer->stats().pending_garbage_blocks < held_back / 4);
}

TEST_CASE("a reader SIGKILLed while pinned is cleared by reclamation; nothing leaks",
          "[readers][multiprocess][crash]") {
  TempDir dir;
  const std::string path = dir.File("killed.atomap");
  {
    absl::StatusOr<Domain> writer = FilledWriter(path);
    REQUIRE(writer.ok());
    absl::StatusOr<Atom> atom = writer->atom("a");
    REQUIRE(atom.ok());
    ReportPipe pinned;
    Gate never;
    const pid_t reader = ForkPinnedReader(path, pinned, never, nullptr);
    const std::optional<std::int64_t> slot = pinned.Receive<std::int64_t>();
    REQUIRE(slot.has_value());
    REQUIRE(*slot >= 0);
    for (std::uint32_t generation = 1; generation <= 1000; ++generation) {
      REQUIRE(SwapSome(*atom, generation).ok());
    }
    const std::uint64_t held_back = writer->stats().pending_garbage_blocks;
    CHECK(held_back > 1000);
    REQUIRE(kill(reader, SIGKILL) == 0);
    REQUIRE(WaitChild(reader) == 128 + SIGKILL);

    for (std::uint32_t generation = 1001; generation <= 1300; ++generation) {
      REQUIRE(SwapSome(*atom, generation).ok());
    }
    // The dead reader's slot was cleared by a writer's probe, and the garbage drained.
    for (const internal::ReaderSlotImage& image : Access(*writer).readers()->ReadSlots()) {
      if (image.index == static_cast<std::uint32_t>(*slot)) {
        CHECK(image.state == static_cast<std::uint32_t>(internal::ReaderSlotState::kFree));
        CHECK(image.announcement == 0);
      }
    }
    CHECK(writer->stats().pending_garbage_blocks < held_back / 4);
  }
  absl::StatusOr<Domain> alone = Domain::Open(path, SmallOptions(8, 16));
  REQUIRE(alone.ok());
  absl::StatusOr<CheckReport> report = alone->check();
  REQUIRE(report.ok());
  CHECK(report->space_checked);
  CHECK(report->leaked_bytes == 0);
  CHECK(report->ok());
}

TEST_CASE("reader threads of a read-only handle verify snapshots while a writer swaps",
          "[readers][threads]") {
  TempDir dir;
  const std::string path = dir.File("threads.atomap");
  absl::StatusOr<Domain> writer = FilledWriter(path);
  REQUIRE(writer.ok());
  absl::StatusOr<Domain> reader = Domain::Open(path, ReaderOptions());
  REQUIRE(reader.ok());
  absl::StatusOr<Atom> atom = writer->atom("a");
  absl::StatusOr<Atom> read_atom = reader->find_atom("a");
  REQUIRE((atom.ok() && read_atom.ok()));
  std::atomic<bool> done{false};
  std::atomic<int> damaged{0};
  std::atomic<int> loads{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      while (!done.load(std::memory_order_relaxed)) {
        absl::StatusOr<Snapshot> snapshot = read_atom->load();
        if (!snapshot.ok()) {
          damaged.fetch_add(1000);
          return;
        }
        const int first = DamagedEntries(*snapshot);
        // Held a while: the writer swaps (and reclaims) meanwhile; it must not reuse any of it.
        damaged.fetch_add(first + DamagedEntries(*snapshot));
        loads.fetch_add(1);
      }
    });
  }
  for (std::uint32_t generation = 1; generation <= 2000; ++generation) {
    REQUIRE(SwapSome(*atom, generation).ok());
  }
  done.store(true);
  for (std::thread& thread : threads) thread.join();
  CHECK(damaged.load() == 0);
  CHECK(loads.load() > 0);
}

TEST_CASE("repair refuses while a reader slot is pinned, naming it; a dead reader's pin is cleared",
          "[readers][check][crash]") {
  TempDir dir;
  const std::string path = dir.File("repair.atomap");
  absl::StatusOr<Domain> writer = FilledWriter(path);
  REQUIRE(writer.ok());
  const std::uint64_t global = Access(*writer).epochs().CurrentEpoch();
  ReportPipe pinned;
  Gate never;
  const pid_t reader = ForkRegistryOnlyReader(path, global, pinned, never);
  const std::optional<std::int64_t> slot = pinned.Receive<std::int64_t>();
  REQUIRE(slot.has_value());
  absl::StatusOr<CheckReport> refused =
      writer->check({.repair = true, .wait_for_exclusive = absl::Milliseconds(50)});
  CHECK(absl::IsFailedPrecondition(refused.status()));
  CHECK_THAT(std::string(refused.status().message()),
             Catch::Contains(absl::StrFormat("reader slot %d (pid %d)", *slot, reader)));
  CHECK_THAT(std::string(refused.status().message()), Catch::Contains("repair.atomap"));
  REQUIRE(kill(reader, SIGKILL) == 0);
  REQUIRE(WaitChild(reader) == 128 + SIGKILL);
  absl::StatusOr<CheckReport> repaired = writer->check({.repair = true});
  REQUIRE(repaired.ok());
  CHECK(repaired->ok());
  CHECK(repaired->space_checked);
}

TEST_CASE("the sweep at a lone open skips while a reader is pinned, and runs once it is gone",
          "[readers][check][crash]") {
  TempDir dir;
  const std::string path = dir.File("sweep.atomap");
  {
    REQUIRE(FilledWriter(path).ok());
  }
  // A writer killed while attached: the domain is dirty, its slot owned by the dead.
  Gate hold;
  ReportPipe swapped;
  const pid_t crashed = ForkChild([&] {
    absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(8, 16));
    if (!domain.ok()) return 1;
    absl::StatusOr<Atom> atom = domain->atom("a");
    if (!atom.ok() || !SwapSome(*atom, 1).ok()) return 2;
    swapped.Send(std::int64_t{1});
    hold.Wait();
    return 0;
  });
  REQUIRE(swapped.Receive<std::int64_t>().has_value());
  REQUIRE(kill(crashed, SIGKILL) == 0);
  REQUIRE(WaitChild(crashed) == 128 + SIGKILL);
  std::uint64_t global = 0;
  {
    absl::StatusOr<Domain> peek = Domain::Open(path, ReaderOptions());
    REQUIRE(peek.ok());
    global = Access(*peek).epochs().CurrentEpoch();
  }
  ReportPipe pinned;
  Gate never;
  const pid_t reader = ForkRegistryOnlyReader(path, global, pinned, never);
  REQUIRE(pinned.Receive<std::int64_t>().has_value());
  {
    absl::StatusOr<Domain> alone = Domain::Open(path, SmallOptions(8, 16));
    REQUIRE(alone.ok());
    CHECK_FALSE(alone->was_clean());
    CHECK(alone->info().slots_in_use.size() == 2);  // the dead writer's slot: not swept
  }
  REQUIRE(kill(reader, SIGKILL) == 0);
  REQUIRE(WaitChild(reader) == 128 + SIGKILL);
  absl::StatusOr<Domain> swept = Domain::Open(path, SmallOptions(8, 16));
  REQUIRE(swept.ok());
  CHECK_FALSE(swept->was_clean());  // still dirty: the skipped sweep left it for this one
  CHECK(swept->info().slots_in_use.size() == 1);  // swept: the dead writer's slot taken over
  absl::StatusOr<CheckReport> report = swept->check();
  REQUIRE(report.ok());
  CHECK(report->ok());
  CHECK(report->leaked_bytes == 0);
}

}  // namespace
}  // namespace atomap

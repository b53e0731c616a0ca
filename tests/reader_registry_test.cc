// The reader registry (file/reader_registry.h) and the readers' side of the epoch table
// (epoch/epoch_table.h RR1-RR5): claims and releases, exhaustion, a SIGKILLed reader's slot taken
// over by a claim or cleared by a writer's probe, the high-water mark, a truncated registry read
// by a writer; the validated pin, impossible pins ignored and counted, a reader pinned at G-1
// holding the epoch back.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "epoch/epoch_table.h"
#include "file/reader_registry.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace atomap::internal {
namespace {

// A registry file of `capacity` slots, as the creator makes it; the descriptor closes with it.
class RegistryFile {
 public:
  RegistryFile(const std::string& path, std::uint32_t capacity) : path_(path) {
    fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(fd_ >= 0);
    RegistryHeader header;
    std::memset(&header, 0, sizeof header);
    std::memcpy(header.magic, kRegistryMagic, sizeof header.magic);
    header.slot_bytes = kReaderSlotBytes;
    header.reader_capacity = capacity;
    REQUIRE(pwrite(fd_, &header, sizeof header, 0) == static_cast<ssize_t>(sizeof header));
    REQUIRE(ftruncate(fd_, static_cast<off_t>(RegistryBytes(capacity))) == 0);
  }
  ~RegistryFile() { close(fd_); }
  // Another description of the file, as another process (or a writer) opens it.
  int OpenAgain() const { return open(path_.c_str(), O_RDWR | O_CLOEXEC); }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

ReaderRegistry OpenRegistry(int fd, std::uint32_t capacity, bool map_slots,
                            const std::string& path) {
  absl::StatusOr<ReaderRegistry> registry = ReaderRegistry::Open(fd, capacity, map_slots, path);
  REQUIRE(registry.ok());
  return *std::move(registry);
}

std::optional<ReaderSlotImage> FindSlot(const std::vector<ReaderSlotImage>& slots,
                                        std::uint32_t index) {
  for (const ReaderSlotImage& slot : slots) {
    if (slot.index == index) return slot;
  }
  return std::nullopt;
}

constexpr std::uint32_t kOwned = static_cast<std::uint32_t>(ReaderSlotState::kOwned);
constexpr std::uint32_t kFree = static_cast<std::uint32_t>(ReaderSlotState::kFree);

TEST_CASE("reader slots: claim, release, exhaustion, high water", "[readers]") {
  TempDir dir;
  RegistryFile file(dir.File("d.atomap.readers"), 4);
  ReaderRegistry readers = OpenRegistry(file.fd(), 4, /*map_slots=*/true, file.path());
  ReaderRegistry writer = OpenRegistry(file.fd(), 4, /*map_slots=*/false, file.path());
  CHECK(writer.ReadSlots().empty());  // high water 0: nothing claimed yet

  std::vector<ReaderLease> leases;
  std::set<std::uint32_t> indices;
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<ReaderLease> lease = readers.Claim();
    REQUIRE(lease.ok());
    indices.insert(lease->index());
    CHECK(lease->slot().state.LoadRelaxed() == kOwned);
    CHECK(lease->slot().owner_pid.LoadRelaxed() == static_cast<std::uint32_t>(getpid()));
    CHECK(lease->slot().owner_uid.LoadRelaxed() == static_cast<std::uint32_t>(geteuid()));
    CHECK(lease->slot().owner_token.LoadRelaxed() == 1);
    leases.push_back(*std::move(lease));
  }
  CHECK(indices == std::set<std::uint32_t>{0, 1, 2, 3});
  // The writer's pread sees what the readers' mapping holds, up to the high-water mark.
  std::vector<ReaderSlotImage> seen = writer.ReadSlots();
  REQUIRE(seen.size() == 4);
  for (const ReaderSlotImage& slot : seen) CHECK(slot.state == kOwned);
  // Live owners in this very process: each lease's own description holds its lock.
  CHECK(writer.Alive(2) == std::optional<bool>(true));
  CHECK_FALSE(writer.ClearIfDead(2));

  absl::StatusOr<ReaderLease> fifth = readers.Claim();
  REQUIRE(absl::IsResourceExhausted(fifth.status()));
  CHECK(std::string(fifth.status().message()).find(file.path()) != std::string::npos);

  const std::uint32_t released = leases[1].index();
  leases[1].Release();
  CHECK_FALSE(leases[1].held());
  CHECK(FindSlot(writer.ReadSlots(), released)->state == kFree);
  CHECK(writer.Alive(released) == std::optional<bool>(false));
  absl::StatusOr<ReaderLease> again = readers.Claim();
  REQUIRE(again.ok());
  CHECK(again->index() == released);
  CHECK(again->slot().owner_token.LoadRelaxed() == 2);
  CHECK(writer.ReadSlots().size() == 4);  // high water stays 4: never lowered
}

TEST_CASE("a SIGKILLed reader's slot is taken over by a claim, or cleared by a writer",
          "[readers][crash]") {
  TempDir dir;
  RegistryFile file(dir.File("d.atomap.readers"), 2);
  const bool by_claim = GENERATE(true, false);
  ReportPipe claimed;
  Gate never;  // the child waits on it until it is killed
  const pid_t child = ForkChild([&] {
    const int fd = file.OpenAgain();
    absl::StatusOr<ReaderRegistry> registry = ReaderRegistry::Open(fd, 2, true, file.path());
    if (!registry.ok()) return 1;
    absl::StatusOr<ReaderLease> lease = registry->Claim();
    if (!lease.ok()) return 2;
    lease->slot().announcement.StoreRelaxed(Announcement::Pinned(5));
    claimed.Send(lease->index());
    never.Wait();
    return 0;
  });
  const std::optional<std::uint32_t> index = claimed.Receive<std::uint32_t>();
  REQUIRE(index.has_value());
  const int writer_fd = file.OpenAgain();
  ReaderRegistry writer = OpenRegistry(writer_fd, 2, /*map_slots=*/false, file.path());
  CHECK(writer.Alive(*index) == std::optional<bool>(true));
  CHECK_FALSE(writer.ClearIfDead(*index));  // alive: left alone
  REQUIRE(kill(child, SIGKILL) == 0);
  REQUIRE(WaitChild(child) == 128 + SIGKILL);
  CHECK(writer.Alive(*index) == std::optional<bool>(false));
  std::optional<ReaderSlotImage> dead = FindSlot(writer.ReadSlots(), *index);
  REQUIRE(dead.has_value());
  CHECK(dead->state == kOwned);  // it never released
  CHECK(dead->announcement == Announcement::Pinned(5));
  CHECK(dead->owner_pid == static_cast<std::uint32_t>(child));

  if (by_claim) {
    // Fill the free slot first, so that the next claim must probe the dead one (pass 1).
    ReaderRegistry readers = OpenRegistry(file.fd(), 2, true, file.path());
    absl::StatusOr<ReaderLease> free_one = readers.Claim();
    REQUIRE(free_one.ok());
    CHECK(free_one->index() != *index);
    absl::StatusOr<ReaderLease> taken = readers.Claim();
    REQUIRE(taken.ok());
    CHECK(taken->index() == *index);
    CHECK(taken->slot().announcement.LoadRelaxed() == 0);  // the dead pin went with it
    CHECK(taken->slot().owner_token.LoadRelaxed() == 2);
  } else {
    CHECK(writer.ClearIfDead(*index));
    std::optional<ReaderSlotImage> cleared = FindSlot(writer.ReadSlots(), *index);
    REQUIRE(cleared.has_value());
    CHECK(cleared->state == kFree);
    CHECK(cleared->announcement == 0);
    CHECK_FALSE(writer.ClearIfDead(*index));  // free already: nothing to do
    CHECK(writer.Alive(*index) == std::optional<bool>(false));  // the probe let go of its lock
  }
  close(writer_fd);
}

TEST_CASE("a truncated registry reads short in a writer, never faults", "[readers]") {
  TempDir dir;
  RegistryFile file(dir.File("d.atomap.readers"), 8);
  {
    ReaderRegistry readers = OpenRegistry(file.fd(), 8, true, file.path());
    std::vector<ReaderLease> leases;
    for (int i = 0; i < 4; ++i) leases.push_back(*readers.Claim());
    for (ReaderLease& lease : leases) lease.Abandon();  // stay "owned", as if their owners died
  }
  ReaderRegistry writer = OpenRegistry(file.fd(), 8, false, file.path());
  CHECK(writer.ReadSlots().size() == 4);
  // A hostile reader cuts the file inside slot 1, then lies about the high-water mark.
  REQUIRE(ftruncate(file.fd(), static_cast<off_t>(ReaderSlotOffset(1) + 40)) == 0);
  const std::uint32_t lie = 1u << 30;
  REQUIRE(pwrite(file.fd(), &lie, sizeof lie, offsetof(RegistryHeader, high_water)) == 4);
  std::vector<ReaderSlotImage> short_read = writer.ReadSlots();
  REQUIRE(short_read.size() == 1);  // the whole slots there are, capacity bounding the lie
  CHECK(short_read[0].state == kOwned);
  CHECK_FALSE(writer.ClearIfDead(3));  // past the end: nothing to clear, no write
  struct stat st;
  REQUIRE(fstat(file.fd(), &st) == 0);
  CHECK(static_cast<std::uint64_t>(st.st_size) == ReaderSlotOffset(1) + 40);
  REQUIRE(ftruncate(file.fd(), 0) == 0);
  CHECK(writer.ReadSlots().empty());
  // A reader refuses to map a registry shorter than its capacity (it would fault).
  CHECK(absl::IsDataLoss(ReaderRegistry::Open(file.fd(), 8, true, file.path()).status()));
  CHECK(absl::IsInvalidArgument(ReaderRegistry::Open(file.fd(), 0, false, file.path()).status()));
}

// ---- the epoch table over both tables ---------------------------------------------------------

// A registry of `capacity` slots seen both ways: mapped (readers) and by pread (writers).
struct RegistryViews {
  RegistryViews(TempDir& dir, std::uint32_t capacity)
      : file(dir.File("d.atomap.readers"), capacity),
        readers(OpenRegistry(file.fd(), capacity, true, file.path())),
        writer(OpenRegistry(file.fd(), capacity, false, file.path())) {}
  RegistryFile file;
  ReaderRegistry readers;
  ReaderRegistry writer;
};

// A writers' slot table of `n` zeroed slots, a global epoch word and an epoch_began ring.
struct EpochFixture {
  explicit EpochFixture(std::uint32_t n)
      : slots(static_cast<Slot*>(std::aligned_alloc(64, sizeof(Slot) * n))), capacity(n) {
    std::memset(static_cast<void*>(slots.get()), 0, sizeof(Slot) * n);
    std::memset(static_cast<void*>(began), 0, sizeof began);
    global.InitPlain(0);
  }
  EpochTable Table(const ReaderRegistry* readers) {
    return EpochTable(&global, slots.get(), capacity, readers, began);
  }
  struct Free {
    void operator()(Slot* p) const { std::free(p); }
  };
  std::unique_ptr<Slot, Free> slots;
  std::uint32_t capacity;
  SharedU64 global;
  EpochStart began[3];
};

TEST_CASE("a validated reader pin holds the epoch back only at G-1", "[readers][epoch]") {
  TempDir dir;
  RegistryViews views(dir, 4);
  ReaderRegistry& readers = views.readers;
  EpochFixture fixture(2);
  fixture.global.InitPlain(7);
  const EpochTable reader_view = fixture.Table(&readers);
  const EpochTable epochs = fixture.Table(&views.writer);
  absl::StatusOr<ReaderLease> lease = readers.Claim();
  REQUIRE(lease.ok());

  CHECK(reader_view.PinReader(lease->slot().announcement) == 7);
  CHECK(lease->slot().announcement.LoadRelaxed() == Announcement::Pinned(7));
  CHECK_FALSE(epochs.TryAdvance().has_value());  // pinned at G: caught up
  CHECK(fixture.global.LoadRelaxed() == 8);
  CHECK(fixture.began[8 % 3].epoch.LoadRelaxed() == 8);
  CHECK(fixture.began[8 % 3].began_ns.LoadRelaxed() > 0);
  std::optional<EpochBlocker> blocker = epochs.TryAdvance();  // pinned at G-1: holds it
  REQUIRE(blocker.has_value());
  CHECK(blocker->reader);
  CHECK(blocker->slot == lease->index());
  CHECK(blocker->pinned_epoch == 7);
  CHECK(fixture.global.LoadRelaxed() == 8);
  std::optional<EpochBlocker> oldest = epochs.OldestPinned();
  REQUIRE(oldest.has_value());
  CHECK(oldest->reader);
  CHECK(oldest->pinned_epoch == 7);

  EpochTable::UnpinReader(lease->slot().announcement);
  CHECK(lease->slot().announcement.LoadRelaxed() == 0);
  CHECK_FALSE(epochs.TryAdvance().has_value());
  CHECK(fixture.global.LoadRelaxed() == 9);
  CHECK_FALSE(epochs.OldestPinned().has_value());

  // A writer pinned behind G is found first, without reading the registry.
  epochs.Pin(1);
  CHECK_FALSE(epochs.TryAdvance().has_value());  // at G: advances to 10
  blocker = epochs.TryAdvance();
  REQUIRE(blocker.has_value());
  CHECK_FALSE(blocker->reader);
  CHECK(blocker->slot == 1);
  epochs.Unpin(1);
}

TEST_CASE("impossible reader pins are ignored and counted; free slots' pins do not count",
          "[readers][epoch]") {
  TempDir dir;
  RegistryViews views(dir, 4);
  ReaderRegistry& readers = views.readers;
  EpochFixture fixture(1);
  fixture.global.InitPlain(9);
  const EpochTable epochs = fixture.Table(&views.writer);
  absl::StatusOr<ReaderLease> hostile = readers.Claim();
  absl::StatusOr<ReaderLease> ahead = readers.Claim();
  absl::StatusOr<ReaderLease> released = readers.Claim();
  REQUIRE((hostile.ok() && ahead.ok() && released.ok()));
  // e < G-1: no validated pin can be there (RR3).
  hostile->slot().announcement.StoreRelaxed(Announcement::Pinned(3));
  // e >= G: G has not got there; not a blocker.
  ahead->slot().announcement.StoreRelaxed(Announcement::Pinned(20));
  // A pin written into a slot nobody owns (below the high-water mark): not counted.
  ReaderSlot& unowned = released->slot();
  released->Release();
  unowned.announcement.StoreRelaxed(Announcement::Pinned(8));

  const std::uint64_t ignored_before = EpochTable::ReaderPinsIgnored();
  CHECK_FALSE(epochs.TryAdvance().has_value());
  CHECK(fixture.global.LoadRelaxed() == 10);
  CHECK(EpochTable::ReaderPinsIgnored() == ignored_before + 1);
  std::optional<EpochBlocker> oldest = epochs.OldestPinned();  // the honest-looking one only
  REQUIRE(oldest.has_value());
  CHECK(oldest->pinned_epoch == 20);
  unowned.announcement.StoreRelaxed(0);
}

}  // namespace
}  // namespace atomap::internal

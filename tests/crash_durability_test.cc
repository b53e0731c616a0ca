// Durability::kSync and Domain::sync() under a simulated power loss: a sync observer keeps a
// copy of the file as it stood at each sync (what stable storage holds) and stops after the
// k-th; the copy is then opened as the machine would find it after power came back.
#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

#include "atomap/check.h"
#include "atomap/domain.h"
#include "recovery/durability.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

Options SyncOptions() {
  Options options = SmallOptions(8, 8, DomainKind::kFile, std::uint64_t{64} << 20);
  options.durability = Durability::kSync;
  return options;
}

// Keeps the file's image at each of the first `keep` syncs in `shadow`; counts all of them.
class PowerLoss {
 public:
  PowerLoss(std::string shadow, int keep) : shadow_(std::move(shadow)), keep_(keep) {
    internal::SetSyncObserverForTesting([this](const std::string& path) {
      if (++syncs_ > keep_) return;  // the power is gone: nothing later reaches the disk
      std::filesystem::copy_file(path, shadow_, std::filesystem::copy_options::overwrite_existing);
    });
  }
  ~PowerLoss() { internal::SetSyncObserverForTesting(nullptr); }
  int syncs() const { return syncs_; }

 private:
  std::string shadow_;
  int keep_;
  int syncs_ = 0;
};

std::string Record(int i) { return std::string(20 + i, static_cast<char>('a' + i % 26)); }

absl::Status SwapNumber(Atom& atom, int i) {
  return atom
      .swap([&](Transaction& tx) -> absl::Status {
        if (absl::Status s = tx.set("n", std::to_string(i)); !s.ok()) return s;
        return tx.set("rec-" + std::to_string(i), Record(i));
      })
      .status();
}

TEST_CASE("kSync: after a power loss at any sync, the last synced version is whole",
          "[durability]") {
  constexpr int kSwaps = 12;
  for (int keep : {1, 2, 3, 8, 13, 2 * kSwaps}) {
    DYNAMIC_SECTION("power lost after sync " << keep) {
      TempDir dir;
      const std::string path = dir.File("d.atomap");
      const std::string shadow = dir.File("disk.atomap");
      {
        PowerLoss power(shadow, keep);
        Domain domain = *Domain::Open(path, SyncOptions());
        Atom atom = *domain.atom("a");
        for (int i = 1; i <= kSwaps; ++i) REQUIRE(SwapNumber(atom, i).ok());
        REQUIRE(power.syncs() == 2 * kSwaps);  // one before and one after each root CAS
      }
      // Sync 2i-1 precedes swap i's CAS (its nodes, not its root); sync 2i follows it.
      const int durable = keep / 2;
      REQUIRE(std::filesystem::exists(shadow));
      Domain after = *Domain::Open(shadow, SyncOptions());
      absl::StatusOr<CheckReport> report = after.check();
      REQUIRE(report.ok());
      for (const std::string& p : report->problems) UNSCOPED_INFO(p);
      CHECK(report->ok());
      CHECK(report->leaked_bytes == 0);
      absl::StatusOr<Snapshot> snap = (*after.atom("a")).load();
      REQUIRE(snap.ok());
      if (durable == 0) {
        CHECK(snap->map().empty());
      } else {
        CHECK(snap->map().get("n") == std::to_string(durable));
      }
      for (int i = 1; i <= durable; ++i)
        CHECK(snap->map().get("rec-" + std::to_string(i)) == Record(i));
      CHECK_FALSE(snap->map().contains("rec-" + std::to_string(durable + 1)));
      CHECK(snap->map().size() == static_cast<std::uint64_t>(durable == 0 ? 0 : durable + 1));
    }
  }
}

TEST_CASE("Domain::sync() makes everything published so far survive a power loss", "[durability]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  const std::string shadow = dir.File("disk.atomap");
  Options options = SyncOptions();
  options.durability = Durability::kProcessCrash;
  {
    PowerLoss power(shadow, 1);
    Domain domain = *Domain::Open(path, options);
    Atom atom = *domain.atom("a");
    for (int i = 1; i <= 5; ++i) REQUIRE(SwapNumber(atom, i).ok());
    REQUIRE(power.syncs() == 0);  // the default mode never syncs by itself
    REQUIRE(domain.sync().ok());
    for (int i = 6; i <= 9; ++i) REQUIRE(SwapNumber(atom, i).ok());  // lost with the power
  }
  Domain after = *Domain::Open(shadow, options);
  CHECK(after.check()->ok());
  absl::StatusOr<Snapshot> snap = (*after.atom("a")).load();
  REQUIRE(snap.ok());
  CHECK(snap->map().get("n") == "5");
  CHECK(snap->map().size() == 6);
}

}  // namespace
}  // namespace atomap

// A child of fork() inherits its parent's Domain, snapshots and participants, and shares the
// parent's OFD lock descriptions. Whatever it does with them — use them, destroy them, exit
// normally so that thread-local destructors run — the parent's slot, pin and allocator cache
// must be left alone, and the child must be able to open the domain for itself.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "atomap/atom.h"
#include "atomap/check.h"
#include "atomap/domain.h"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

void Churn(Atom& atom, int rounds, const std::string& prefix) {
  for (int i = 0; i < rounds; ++i) {
    REQUIRE(atom.swap([&](Transaction& tx) {
                  return tx.set(absl::StrCat(prefix, i % 100),
                                std::string(24, static_cast<char>('a' + i % 26)));
                })
                .ok());
  }
}

TEST_CASE("a forked child cannot use or damage its parent's handles", "[fork][processes]") {
  TempDir dir;
  const std::string path = dir.File("fork.atomap");
  std::optional<Domain> domain;
  {
    absl::StatusOr<Domain> opened =
        Domain::Open(path, SmallOptions(16, 16, DomainKind::kFile, std::uint64_t{256} << 20));
    REQUIRE(opened.ok());
    domain.emplace(*std::move(opened));
  }
  Atom atom = *domain->atom("a");
  Churn(atom, 500, "parent-");  // the parent's cache now holds freed blocks
  std::optional<Snapshot> pinned(*atom.load());
  REQUIRE(domain->stats().any_pinned);
  // An open transaction, recorded in the parent's lane.
  std::optional<Transaction> open_tx(*atom.begin(*pinned));
  for (int i = 0; i < 200; ++i)
    REQUIRE(open_tx->set(absl::StrCat("open-", i), std::string(40, 'o')).ok());

  std::fflush(nullptr);
  const pid_t child = ForkChild([&] {
    // Inherited handles refuse work, naming the reason.
    absl::StatusOr<Snapshot> refused = atom.swap([](Transaction& tx) { return tx.set("x", "y"); });
    if (refused.status().code() != absl::StatusCode::kFailedPrecondition) return 1;
    if (refused.status().message().find("fork") == std::string_view::npos) return 2;
    // So does a load, though this thread's participant cache (Runtime::ThreadCache) still holds
    // the parent's participant from the load just before fork(): the hit checks the generation.
    absl::StatusOr<Snapshot> not_loaded = atom.load();
    if (not_loaded.status().code() != absl::StatusCode::kFailedPrecondition) return 5;
    // Destroying them must release nothing of the parent's.
    open_tx.reset();
    pinned.reset();
    domain.reset();
    // The child's own handle works.
    absl::StatusOr<Domain> own =
        Domain::Open(path, SmallOptions(16, 16, DomainKind::kFile, std::uint64_t{256} << 20));
    if (!own.ok()) return 3;
    absl::StatusOr<Snapshot> wrote =
        own->atom("a")->swap([](Transaction& tx) { return tx.set("child", "was here"); });
    if (!wrote.ok()) return 4;
    wrote = absl::StatusOr<Snapshot>(absl::CancelledError());  // drop the pin before exiting
    std::exit(0);  // a normal exit: thread-local destructors and atexit handlers run
  });
  REQUIRE(WaitChild(child) == 0);

  // The parent still owns its slot and its pin.
  const std::uint32_t me = static_cast<std::uint32_t>(getpid());
  bool own_slot = false;
  for (const DomainInfo::Slot& slot : domain->info().slots_in_use) own_slot |= slot.pid == me;
  CHECK(own_slot);
  const DomainStats stats = domain->stats();
  CHECK(stats.any_pinned);
  CHECK(stats.oldest_pinned_pid == me);
  // Its open transaction is intact (the child's copy freed nothing), and publishes or loses.
  CHECK(open_tx->get("open-7") == std::string(40, 'o'));
  absl::StatusOr<Snapshot> lost = atom.compare_and_set(*std::move(open_tx));
  CHECK(IsLostRace(lost.status()));  // the child swapped since its base
  open_tx.reset();
  // Its cache was not flushed under it: allocation stays exact and data stays intact.
  pinned.reset();
  Churn(atom, 5000, "after-");
  absl::StatusOr<Snapshot> now = atom.load();
  REQUIRE(now.ok());
  CHECK(now->map().get("child") == "was here");
  for (int i = 0; i < 100; ++i) {
    CHECK(now->map().get(absl::StrCat("after-", i)) ==
          std::string(24, static_cast<char>('a' + (4900 + i) % 26)));
  }
  const DomainStats end = domain->stats();
  CHECK(end.live_bytes + end.free_bytes + end.unused_bytes == end.data_bytes);
  absl::StatusOr<CheckReport> report = domain->check();
  REQUIRE(report.ok());
  CHECK(report->ok());
  CHECK(report->leaked_bytes == 0);
}

}  // namespace
}  // namespace atomap

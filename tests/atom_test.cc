// Atoms within one process: load, swap, exceptions and errors from the swap function,
// compare_and_set, reset, versions, wait_for_change's timeout, and threads racing on one atom.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "atomap/atom.h"
#include "atomap/domain.h"
#include "atomap/typed_map.h"
#include "atomap/watcher.h"
#include "common/shared_atomic.h"
#include "domain/domain_impl.h"
#include "epoch/retire_list.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

using Counters = TypedTransaction<std::string, std::uint64_t>;

std::uint64_t Get(const Snapshot& snap, const std::string& key) {
  return TypedMap<std::string, std::uint64_t>(snap.map()).get(key).value_or(0);
}

absl::Status Increment(Transaction& tx, const std::string& key) {
  Counters counters(tx);
  return counters.set(key, counters.get(key).value_or(0) + 1);
}

TEST_CASE("an atom starts empty at version 0 and each swap publishes the next version", "[atom]") {
  TempDir dir;
  for (DomainKind kind : {DomainKind::kFile, DomainKind::kInProcess}) {
    absl::StatusOr<Domain> domain = Domain::Open(
        dir.File("basic.atomap"), SmallOptions(64, 64, kind, std::uint64_t{256} << 20));
    REQUIRE(domain.ok());
    absl::StatusOr<Atom> atom = domain->atom("config");
    REQUIRE(atom.ok());
    CHECK(atom->name() == "config");
    {
      absl::StatusOr<Snapshot> empty = atom->load();
      REQUIRE(empty.ok());
      CHECK(empty->version() == 0);
      CHECK(empty->map().empty());
    }
    absl::StatusOr<Snapshot> after =
        atom->swap([](Transaction& tx) { return tx.set("port", "8080"); });
    REQUIRE(after.ok());
    CHECK(after->version() == 1);
    CHECK(after->map().get("port") == "8080");
    {
      absl::StatusOr<Snapshot> now = atom->load();
      REQUIRE(now.ok());
      CHECK(now->version() == 1);
      CHECK(now->map().get("port") == "8080");
    }
    REQUIRE(atom->swap([](Transaction& tx) { return tx.erase("port").status(); }).ok());
    CHECK(*atom->version() == 2);
    // The snapshot taken before still sees its version: it is pinned.
    CHECK(after->map().get("port") == "8080");
  }
}

TEST_CASE("the same name gives the same atom, another name another", "[atom]") {
  absl::StatusOr<Domain> domain =
      Domain::Open("names", SmallOptions(64, 64, DomainKind::kInProcess, std::uint64_t{256} << 20));
  REQUIRE(domain.ok());
  REQUIRE(domain->atom("a")->swap([](Transaction& tx) { return tx.set("k", "1"); }).ok());
  CHECK(domain->atom("a")->load()->map().get("k") == "1");
  CHECK(domain->atom("b")->load()->map().empty());
  CHECK(domain->atom(std::string(256, 'x')).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("a swap function's error or exception publishes nothing and frees its work", "[atom]") {
  TempDir dir;
  absl::StatusOr<Domain> domain = Domain::Open(
      dir.File("errors.atomap"), SmallOptions(64, 64, DomainKind::kFile, std::uint64_t{256} << 20));
  REQUIRE(domain.ok());
  Atom atom = *domain->atom("a");
  REQUIRE(atom.swap([](Transaction& tx) { return tx.set("keep", "1"); }).ok());
  const DomainStats before = domain->stats();

  absl::StatusOr<Snapshot> failed = atom.swap([](Transaction& tx) {
    for (int i = 0; i < 1000; ++i) (void)tx.set(absl::StrCat("k", i), std::string(100, 'v'));
    return absl::AbortedError("changed my mind");
  });
  CHECK(failed.status().code() == absl::StatusCode::kAborted);
  CHECK_THROWS_AS(atom.swap([](Transaction& tx) -> absl::Status {
    for (int i = 0; i < 1000; ++i) (void)tx.set(absl::StrCat("k", i), "v");
    throw std::runtime_error("user bug");
  }),
                  std::runtime_error);

  const DomainStats after = domain->stats();
  CHECK(after.live_bytes == before.live_bytes);  // everything the attempts allocated was freed
  absl::StatusOr<Snapshot> now = atom.load();
  CHECK(now->version() == 1);
  CHECK(now->map().size() == 1);
}

TEST_CASE("compare_and_set publishes only over the version it began from", "[atom]") {
  absl::StatusOr<Domain> domain =
      Domain::Open("cas", SmallOptions(64, 64, DomainKind::kInProcess, std::uint64_t{256} << 20));
  REQUIRE(domain.ok());
  Atom atom = *domain->atom("a");
  absl::StatusOr<Snapshot> base = atom.load();
  REQUIRE(base.ok());
  absl::StatusOr<Transaction> first = atom.begin(*base);
  absl::StatusOr<Transaction> second = atom.begin(*base);
  REQUIRE(first.ok());
  REQUIRE(second.ok());
  REQUIRE(first->set("who", "first").ok());
  REQUIRE(second->set("who", "second").ok());
  absl::StatusOr<Snapshot> won = atom.compare_and_set(*std::move(first));
  absl::StatusOr<Snapshot> lost = atom.compare_and_set(*std::move(second));
  REQUIRE(won.ok());
  CHECK(won->version() == 1);
  CHECK(won->map().get("who") == "first");
  CHECK(absl::IsAborted(lost.status()));
  CHECK(IsLostRace(lost.status()));
  CHECK(atom.load()->map().get("who") == "first");
}

TEST_CASE("reset makes an atom's contents equal to another map", "[atom]") {
  absl::StatusOr<Domain> domain =
      Domain::Open("reset", SmallOptions(64, 64, DomainKind::kInProcess, std::uint64_t{256} << 20));
  REQUIRE(domain.ok());
  Atom source = *domain->atom("source");
  Atom target = *domain->atom("target");
  REQUIRE(source
              .swap([](Transaction& tx) {
                absl::Status s = tx.set("a", "1");
                s.Update(tx.set("b", "2"));
                return s;
              })
              .ok());
  REQUIRE(target
              .swap([](Transaction& tx) {
                absl::Status s = tx.set("b", "old");
                s.Update(tx.set("c", "3"));
                return s;
              })
              .ok());
  absl::StatusOr<Snapshot> contents = source.load();
  REQUIRE(target.reset(contents->map()).ok());
  absl::StatusOr<Snapshot> now = target.load();
  CHECK(now->map() == contents->map());
  CHECK(now->map().size() == 2);
  CHECK(now->map().get("b") == "2");
  CHECK(!now->map().contains("c"));
}

TEST_CASE("wait_for_change returns at once on a newer version and times out otherwise", "[atom]") {
  absl::StatusOr<Domain> domain =
      Domain::Open("wait", SmallOptions(64, 64, DomainKind::kInProcess, std::uint64_t{256} << 20));
  REQUIRE(domain.ok());
  Atom atom = *domain->atom("a");
  REQUIRE(atom.swap([](Transaction& tx) { return tx.set("k", "v"); }).ok());
  absl::StatusOr<Snapshot> newer = atom.wait_for_change(0, absl::ZeroDuration());
  REQUIRE(newer.ok());
  CHECK(newer->version() == 1);

  const absl::Time start = absl::Now();
  absl::StatusOr<Snapshot> none = atom.wait_for_change(1, absl::Milliseconds(50));
  CHECK(none.status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(absl::Now() - start >= absl::Milliseconds(50));
}

TEST_CASE("threads racing on one atom lose no update", "[atom][threads]") {
  TempDir dir;
  for (DomainKind kind : {DomainKind::kFile, DomainKind::kInProcess}) {
    absl::StatusOr<Domain> domain =
        Domain::Open(dir.File("race.atomap"), SmallOptions(64, 64, kind, std::uint64_t{256} << 20));
    REQUIRE(domain.ok());
    Atom atom = *domain->atom("counters");
    constexpr int kThreads = 4;
    constexpr int kIncrements = 2000;
    std::vector<std::thread> threads;
    std::vector<absl::Status> errors(kThreads);
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        const std::string mine = absl::StrCat("thread-", t);
        for (int i = 0; i < kIncrements && errors[t].ok(); ++i) {
          absl::StatusOr<Snapshot> s = atom.swap([&](Transaction& tx) {
            absl::Status status = Increment(tx, "hot");
            status.Update(Increment(tx, mine));
            return status;
          });
          errors[t] = s.status();
          // A reader in the same thread, between writes: its snapshot is consistent.
          absl::StatusOr<Snapshot> snap = atom.load();
          if (snap.ok() && Get(*snap, mine) != static_cast<std::uint64_t>(i + 1)) {
            errors[t] = absl::InternalError("lost my own write");
          }
        }
      });
    }
    for (std::thread& t : threads) t.join();
    for (const absl::Status& e : errors) CHECK(e.ok());
    absl::StatusOr<Snapshot> end = atom.load();
    REQUIRE(end.ok());
    CHECK(Get(*end, "hot") == kThreads * kIncrements);
    CHECK(end->version() == kThreads * kIncrements);
    for (int t = 0; t < kThreads; ++t) CHECK(Get(*end, absl::StrCat("thread-", t)) == kIncrements);
    // The threads' participants left with garbage pending: it is on the orphan chain now, counted
    // once, and still allocated (pending blocks are live until freed).
    const DomainStats stats = domain->stats();
    CHECK(stats.pending_garbage_bytes <= stats.live_bytes);
    CHECK(stats.live_bytes + stats.free_bytes + stats.unused_bytes == stats.data_bytes);
  }
}

TEST_CASE("a participant that leaves with garbage pending hands it over, counted once",
          "[atom][reclaim]") {
  absl::StatusOr<Domain> domain =
      Domain::Open("leave", SmallOptions(64, 64, DomainKind::kInProcess, std::uint64_t{256} << 20));
  REQUIRE(domain.ok());
  Atom atom = *domain->atom("a");
  absl::StatusOr<Snapshot> pin = atom.load();  // holds every later version's garbage pending
  REQUIRE(pin.ok());
  std::thread writer([&] {
    for (int i = 0; i < 300; ++i) {
      REQUIRE(
          atom.swap([&](Transaction& tx) { return tx.set(absl::StrCat("k", i % 10), "v"); }).ok());
    }
  });  // its participant leaves now, with garbage it may not free yet
  writer.join();
  const DomainStats held = domain->stats();
  CHECK(held.pending_garbage_blocks >= 300);  // every replaced version record, at least
  CHECK(held.pending_garbage_bytes <= held.live_bytes);  // pending blocks are allocated, once
  internal::SlotTable& slots = internal::Access(*domain).slots();
  for (std::uint32_t i = 0; i < slots.capacity(); ++i) {
    if (slots.Head(i).state.LoadAcquire() != 0) continue;
    const internal::ReclaimArea* area = &slots.Reclaim(i);
    CHECK(area->retire_head == internal::kNullOffset);  // a free slot holds no garbage...
    CHECK(area->pending_blocks.LoadRelaxed() == 0);  // ...not even in its statistics
  }
  pin = absl::CancelledError("released");
  // The orphans are adopted and freed with the epoch: below the orphans' own count at its low
  // point, the pending figure can only be the main thread's recent garbage. (The low point, not
  // the last figure: frees are bounded per swap (Participant::FreeBudget) and the epoch moves
  // once per 64 swaps, so what the main thread has pending at a given swap depends on the phase.)
  // The main thread swaps a one-key atom: its trie's shape, so what each swap retires, does not
  // depend on the domain's random hash seed. (On "a", a seed that put "main" under one of the
  // ten keys' root entry made each swap retire a fourth block; the epoch's cycle then kept the
  // pending figure above the orphans' count at every swap, 1 run in ~200.)
  Atom other = *domain->atom("b");
  std::uint64_t lowest = held.pending_garbage_blocks;
  for (int i = 0; i < 300; ++i) {
    REQUIRE(other.swap([&](Transaction& tx) { return tx.set("main", std::to_string(i)); }).ok());
    lowest = std::min(lowest, domain->stats().pending_garbage_blocks);
  }
  CHECK(internal::Access(*domain).header().orphan_retired.LoadAcquire() == internal::kNullOffset);
  CHECK(lowest < held.pending_garbage_blocks);
}

TEST_CASE("a long pin's backlog is freed whole once the pin is gone, not drained for ever",
          "[atom][reclaim]") {
  absl::StatusOr<Domain> domain = Domain::Open(
      "backlog", SmallOptions(64, 64, DomainKind::kInProcess, std::uint64_t{256} << 20));
  REQUIRE(domain.ok());
  Atom atom = *domain->atom("a");
  const auto swap = [&](int i) {
    REQUIRE(atom.swap([&](Transaction& tx) { return tx.set("k", std::to_string(i)); }).ok());
  };
  absl::StatusOr<Snapshot> pin = atom.load();  // holds every later version's garbage pending
  REQUIRE(pin.ok());
  for (int i = 0; i < 4000; ++i) swap(i);
  const std::uint64_t held = domain->stats().pending_garbage_blocks;
  pin = absl::CancelledError("released");
  // Two epoch scans (64 retirements apart) make the backlog safe; the second frees it whole
  // (Participant::kBacklogPeriods). Drained at 1/64 per swap instead, more than 30% of it would
  // still be pending 140 swaps after the release, whatever the scans' phase.
  for (int i = 0; i < 140; ++i) swap(i);
  const std::uint64_t after = domain->stats().pending_garbage_blocks;
  INFO("held " << held << ", after " << after);
  CHECK(held >= 4000);
  CHECK(after < held / 8);
}

TEST_CASE("under churn the garbage is reused and the data region stops growing",
          "[atom][reclaim]") {
  TempDir dir;
  absl::StatusOr<Domain> domain = Domain::Open(
      dir.File("churn.atomap"), SmallOptions(64, 64, DomainKind::kFile, std::uint64_t{256} << 20));
  REQUIRE(domain.ok());
  Atom atom = *domain->atom("churn");
  auto churn = [&](int rounds) {
    for (int i = 0; i < rounds; ++i) {
      REQUIRE(atom.swap([&](Transaction& tx) {
                    return tx.set(absl::StrCat("key-", i % 500),
                                  std::string(40, static_cast<char>('a' + i % 26)));
                  })
                  .ok());
    }
  };
  // Eight phases of 10000 versions each. A leak of even one small block per swap would grow the
  // data region by about a megabyte a phase; reuse keeps it flat once warm.
  std::vector<std::uint64_t> data_bytes;
  for (int phase = 0; phase < 8; ++phase) {
    churn(10000);
    data_bytes.push_back(domain->stats().data_bytes);
  }
  INFO("data bytes after each phase: " << ::Catch::Detail::stringify(data_bytes));
  // Flat once warm, give or take one allocator chunk: how much garbage is pending at a phase's
  // end depends on when reclamation last ran, and on a loaded machine that can take one more
  // 64 KiB chunk once (seen about once in 100 runs, on 6ae7306 too). A leak grows far more.
  constexpr std::uint64_t kOneChunk = std::uint64_t{64} << 10;
  CHECK(data_bytes[7] <= data_bytes[4] + kOneChunk);
  CHECK(domain->stats().pending_garbage_blocks < 64 * 64);  // bounded by the reclaim cadence
}

}  // namespace
}  // namespace atomap

namespace atomap {
namespace {

TEST_CASE("a watcher delivers what was added, removed and changed", "[atom][watcher]") {
  absl::StatusOr<Domain> domain =
      Domain::Open("watch", SmallOptions(64, 64, DomainKind::kInProcess, std::uint64_t{256} << 20));
  REQUIRE(domain.ok());
  Atom config = *domain->atom("config");
  REQUIRE(config
              .swap([](Transaction& tx) {
                absl::Status s = tx.set("keep", "1");
                s.Update(tx.set("change", "old"));
                s.Update(tx.set("drop", "x"));
                return s;
              })
              .ok());
  absl::StatusOr<Watcher> watcher = Watcher::Start(config);
  REQUIRE(watcher.ok());
  CHECK(watcher->version() == 1);
  absl::StatusOr<bool> idle = watcher->Next(
      [](const MapDiff&, const Snapshot&) { FAIL("no change yet"); }, absl::Milliseconds(10));
  REQUIRE(idle.ok());
  CHECK(!*idle);

  REQUIRE(config
              .swap([](Transaction& tx) {
                absl::Status s = tx.set("change", "new");
                s.Update(tx.erase("drop").status());
                s.Update(tx.set("add", "y"));
                return s;
              })
              .ok());
  MapDiff seen;
  absl::StatusOr<bool> changed = watcher->Next([&](const MapDiff& diff, const Snapshot& now) {
    seen = diff;
    CHECK(now.version() == 2);
  });
  REQUIRE(changed.ok());
  CHECK(*changed);
  CHECK(watcher->version() == 2);
  REQUIRE(seen.added.size() == 1);
  CHECK(seen.added[0] == std::make_pair(std::string("add"), std::string("y")));
  REQUIRE(seen.removed.size() == 1);
  CHECK(seen.removed[0] == std::make_pair(std::string("drop"), std::string("x")));
  REQUIRE(seen.changed.size() == 1);
  CHECK(seen.changed[0].key == "change");
  CHECK(seen.changed[0].old_value == "old");
  CHECK(seen.changed[0].new_value == "new");
}

}  // namespace
}  // namespace atomap

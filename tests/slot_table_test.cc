// Slots and liveness: a killed participant's slot is taken over by the next claim (hook once),
// a full table is ResourceExhausted, concurrent attaches and thread claims get distinct slots.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdint>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "atomap/domain.h"
#include "common/shared_atomic.h"
#include "domain/domain_impl.h"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

using internal::Access;

struct Takeovers {
  std::mutex mu;
  std::vector<std::pair<std::uint32_t, internal::SlotHead>> calls;
};

TEST_CASE("a killed participant's slot is taken over by the next claim", "[slots][crash]") {
  TempDir dir;
  const std::string path = dir.File("slots.atomap");
  Takeovers takeovers;
  struct ResetHook {
    ~ResetHook() { internal::SetSlotTakeoverHook(nullptr); }
  } reset_hook;
  internal::SetSlotTakeoverHook([&takeovers](internal::DomainImpl& domain, std::uint32_t slot,
                                             const internal::SlotHead& dead) {
        // The dead owner's areas are still intact here, for the hook to recover.
    CHECK(domain.slots().Reclaim(slot).pending_blocks.LoadRelaxed() == 0xAB);
    std::lock_guard<std::mutex> lock(takeovers.mu);
    takeovers.calls.emplace_back(slot, dead);
  });
  absl::StatusOr<Domain> first = Domain::Open(path, SmallOptions(2, 16));
  REQUIRE(first.ok());
  REQUIRE(Access(*first).process_slot().index() == 0);

  struct Attached {
    std::uint32_t slot;
    std::uint32_t pid;
    std::uint64_t token;
  };
  ReportPipe reports;
  const pid_t child = ForkChild([&] {
    absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(2, 16));
    if (!domain.ok()) return 1;
    internal::DomainImpl& impl = Access(*domain);
    const std::uint32_t slot = impl.process_slot().index();
    // Something for a survivor to recover:
    impl.slots().Reclaim(slot).pending_blocks.StoreRelaxed(0xAB);
    reports.Send(Attached{slot, static_cast<std::uint32_t>(getpid()), impl.process_slot().token()});
    for (;;) pause();
  });
  std::optional<Attached> attached = reports.Receive<Attached>();
  REQUIRE(attached.has_value());
  CHECK(attached->slot == 1);
  REQUIRE(kill(child, SIGKILL) == 0);
  REQUIRE(WaitChild(child) == 128 + SIGKILL);
  CHECK(first->info().slots_in_use.size() == 2);  // the dead owner's state still says owned

  {
    absl::StatusOr<Domain> second = Domain::Open(path, SmallOptions(2, 16));
    REQUIRE(second.ok());
    internal::DomainImpl& impl = Access(*second);
    CHECK(impl.process_slot().index() == 1);
    CHECK(impl.process_slot().token() == attached->token + 1);
    CHECK(impl.slots().Reclaim(1).pending_blocks.LoadRelaxed() == 0);  // reset after the hook
    std::lock_guard<std::mutex> lock(takeovers.mu);
    REQUIRE(takeovers.calls.size() == 1);
    CHECK(takeovers.calls[0].first == 1);
    CHECK(takeovers.calls[0].second.owner_pid.LoadRelaxed() == attached->pid);
    CHECK(takeovers.calls[0].second.owner_token.LoadRelaxed() == attached->token);
  }
  // Released normally this time: the next claim reuses the slot without a takeover.
  absl::StatusOr<Domain> third = Domain::Open(path, SmallOptions(2, 16));
  REQUIRE(third.ok());
  CHECK(Access(*third).process_slot().index() == 1);
  std::lock_guard<std::mutex> lock(takeovers.mu);
  CHECK(takeovers.calls.size() == 1);
}

TEST_CASE("a full slot table is ResourceExhausted naming the capacity", "[slots]") {
  TempDir dir;
  const std::string path = dir.File("full.atomap");
  absl::StatusOr<Domain> a = Domain::Open(path, SmallOptions(2, 16));
  REQUIRE(a.ok());
  absl::StatusOr<internal::SlotLease> lease = Access(*a).ClaimSlot();
  REQUIRE(lease.ok());
  absl::StatusOr<Domain> b = Domain::Open(path, SmallOptions(2, 16));
  CHECK(b.status().code() == absl::StatusCode::kResourceExhausted);
  CHECK(b.status().message().find("2") != std::string::npos);
  CHECK(b.status().message().find(path) != std::string::npos);
  CHECK(Access(*a).ClaimSlot().status().code() == absl::StatusCode::kResourceExhausted);
  lease->Release();
  CHECK(Domain::Open(path, SmallOptions(2, 16)).ok());
}

TEST_CASE("many processes attach at once and get distinct slots", "[slots][race]") {
  TempDir dir;
  const std::string path = dir.File("many.atomap");
  {
    REQUIRE(Domain::Open(path, SmallOptions(32, 16)).ok());
  }
  constexpr int kChildren = 12;
  Gate start;
  Gate finish;
  ReportPipe reports;
  std::vector<pid_t> children;
  for (int i = 0; i < kChildren; ++i) {
    children.push_back(ForkChild([&] {
      start.Wait();
      absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(32, 16));
      const std::int64_t slot = domain.ok() ? Access(*domain).process_slot().index() : -1;
      reports.Send(slot);
      finish.Wait();
      return domain.ok() ? 0 : 1;
    }));
  }
  start.Open();
  std::set<std::int64_t> slots;
  for (int i = 0; i < kChildren; ++i) {
    std::optional<std::int64_t> slot = reports.Receive<std::int64_t>();
    REQUIRE(slot.has_value());
    CHECK(*slot >= 0);
    slots.insert(*slot);
  }
  CHECK(slots.size() == kChildren);
  absl::StatusOr<Domain> watcher = Domain::Open(path, SmallOptions(32, 16));
  REQUIRE(watcher.ok());
  CHECK(watcher->info().slots_in_use.size() == kChildren + 1);
  finish.Open();
  for (pid_t child : children) CHECK(WaitChild(child) == 0);
  CHECK(watcher->info().slots_in_use.size() == 1);
}

void ClaimConcurrently(Domain& domain, std::uint32_t capacity) {
  constexpr int kThreads = 4;
  constexpr int kClaims = 200;
  std::vector<std::atomic<int>> holders(capacity);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kClaims; ++i) {
        absl::StatusOr<internal::SlotLease> lease = Access(domain).ClaimSlot();
        if (!lease.ok()) {
          errors.fetch_add(1);
          continue;
        }
        if (holders[lease->index()].fetch_add(1) != 0) errors.fetch_add(1);  // two owners
        holders[lease->index()].fetch_sub(1);
        lease->Release();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(errors.load() == 0);
  CHECK(domain.info().slots_in_use.size() == 1);  // only the handle's own slot
}

TEST_CASE("threads claim and release distinct slots concurrently (file)", "[slots][threads]") {
  TempDir dir;
  absl::StatusOr<Domain> domain = Domain::Open(dir.File("threads.atomap"), SmallOptions(8, 16));
  REQUIRE(domain.ok());
  ClaimConcurrently(*domain, 8);
}

TEST_CASE("threads claim and release distinct slots concurrently (in-process)",
          "[slots][threads]") {
  Options options = SmallOptions(8, 16);
  options.kind = DomainKind::kInProcess;
  absl::StatusOr<Domain> domain = Domain::Open("threads", options);
  REQUIRE(domain.ok());
  ClaimConcurrently(*domain, 8);
}

TEST_CASE("a damaged slot state word is reclaimed when no slot is free", "[slots]") {
  TempDir dir;
  const std::string path = dir.File("damaged.atomap");
  absl::StatusOr<Domain> a = Domain::Open(path, SmallOptions(2, 16));
  REQUIRE(a.ok());
  Access(*a).slots().Head(1).state.StoreRelease(7);
  CHECK(a->info().slots_in_use.size() == 1);  // neither free nor owned: not listed
  absl::StatusOr<internal::SlotLease> lease = Access(*a).ClaimSlot();
  REQUIRE(lease.ok());
  CHECK(lease->index() == 1);
  CHECK(a->info().slots_in_use.size() == 2);
  Access(*a).ReleaseSlot(*lease);
  CHECK_FALSE(lease->held());
  CHECK(a->info().slots_in_use.size() == 1);
}

}  // namespace
}  // namespace atomap

#include "atom/runtime.h"

#include <pthread.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "absl/strings/str_format.h"
#include "alloc/allocator_state.h"
#include "atom/participant.h"
#include "atom/reader_participant.h"

namespace atomap::internal {
namespace {

// Runtimes alive in this process, by id. A thread that exits tells each runtime it used, if that
// runtime still lives; a runtime being destroyed leaves this set first, under the same mutex.
std::mutex live_runtimes_mu;
absl::flat_hash_map<std::uint64_t, Runtime*>& LiveRuntimes() {
  static auto* live = new absl::flat_hash_map<std::uint64_t, Runtime*>();
  return *live;
}

// Per thread: the runtimes this thread has a participant in (the hot path's one-entry cache is
// this_thread_cache, runtime.h).
struct ThreadParticipants {
  std::vector<std::uint64_t> runtimes;

  ~ThreadParticipants() {
    std::lock_guard<std::mutex> lock(live_runtimes_mu);
    for (std::uint64_t id : runtimes) {
      auto it = LiveRuntimes().find(id);
      if (it != LiveRuntimes().end()) it->second->ReleaseThread(std::this_thread::get_id());
    }
    // The cache's participants are gone: a load from a later thread-exit destructor must take
    // the slow path, never a freed participant (this_thread_cache is declared in runtime.h).
    this_thread_cache = ThreadCache{};
  }
};
thread_local ThreadParticipants this_thread_participants;

// In a child of fork(), the parent's runtimes are not this process's: forget them, so that a
// thread exiting in the child releases nothing of the parent's. prepare/parent keep the mutex
// consistent across the fork.
const bool fork_handlers_registered = [] {
  pthread_atfork([] { live_runtimes_mu.lock(); }, [] { live_runtimes_mu.unlock(); },
                 [] {
                   LiveRuntimes().clear();
                   live_runtimes_mu.unlock();
                 });
  return true;
}();

std::uint64_t NextRuntimeId() {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

constinit thread_local ThreadCache this_thread_cache;

Runtime::Runtime(DomainImpl& domain)
    : domain_(domain),
      allocator_(domain.allocator()),
      epochs_(domain.epochs()),
      read_context_{.arena = &domain.arena(),
                    .allocator = nullptr,
                    .cache = nullptr,
                    .hasher = domain.hasher(),
                    .data_begin = domain.data_begin(),
                    .verify_reads = domain.verify_reads()},
      id_(NextRuntimeId()) {
  (void)fork_handlers_registered;
  std::lock_guard<std::mutex> lock(live_runtimes_mu);
  LiveRuntimes()[id_] = this;
}

Runtime::~Runtime() {
  {
    std::lock_guard<std::mutex> lock(live_runtimes_mu);
    LiveRuntimes().erase(id_);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (inherited()) {
    for (auto& [thread, participant] : participants_) participant->Abandon();
    for (auto& [thread, reader] : readers_) reader->Abandon();
    for (auto& participant : orphans_) participant->Abandon();
    for (auto& reader : orphan_readers_) reader->Abandon();
  }
  participants_.clear();
  readers_.clear();
  orphans_.clear();
  orphan_readers_.clear();
}

absl::StatusOr<Participant*> Runtime::ClaimThisThread() {
  if (inherited()) return domain_.ClaimSlot().status();  // FailedPrecondition, naming fork()
  std::lock_guard<std::mutex> lock(mu_);
  auto it = participants_.find(std::this_thread::get_id());
  if (it == participants_.end()) {
    SlotLease process_slot = domain_.TakeProcessSlot();
    absl::StatusOr<SlotLease> lease =
        process_slot.held() ? std::move(process_slot) : domain_.ClaimSlot();
    if (!lease.ok()) return lease.status();
    it = participants_
             .emplace(std::this_thread::get_id(),
                      std::make_unique<Participant>(*this, std::move(*lease)))
             .first;
    NoteThreadUses(this_thread_participants.runtimes);
  }
  ThreadCache& mine = this_thread_cache;
  mine.runtime = id_;
  mine.participant = it->second.get();
  return mine.participant;
}

absl::StatusOr<ReaderParticipant*> Runtime::ClaimThisReader() {
  ReaderRegistry* registry = domain_.readers();
  if (inherited() || !domain_.read_only() || registry == nullptr) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "%s: no reader slot for this handle (%s)", domain_.path(),
        inherited() ? "opened by the parent of this process, before fork(); open it again"
                    : "not a registered read-only handle"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = readers_.find(std::this_thread::get_id());
  if (it == readers_.end()) {
    absl::StatusOr<ReaderLease> lease = registry->Claim();
    if (!lease.ok()) return lease.status();
    it = readers_
             .emplace(std::this_thread::get_id(),
                      std::make_unique<ReaderParticipant>(*this, *std::move(lease)))
             .first;
    NoteThreadUses(this_thread_participants.runtimes);
  }
  ThreadCache& mine = this_thread_cache;
  mine.reader_runtime = id_;
  mine.reader = it->second.get();
  return mine.reader;
}

template <class P>
void Runtime::ReleaseOrKeep(absl::flat_hash_map<std::thread::id, std::unique_ptr<P>>& by_thread,
                            std::thread::id thread, std::vector<std::unique_ptr<P>>& orphans) {
  auto it = by_thread.find(thread);
  if (it == by_thread.end()) return;
  // Still pinned: a snapshot of this thread outlives it (a binding's garbage collector drops it
  // later, on another thread). Its pin site must stay where the snapshot's guard points, and a
  // new thread that reuses the id must not find it, so it moves out of the map (RT1).
  if (it->second->pinned()) orphans.push_back(std::move(it->second));
  by_thread.erase(it);
}

void Runtime::NoteThreadUses(std::vector<std::uint64_t>& runtimes) const {
  for (std::uint64_t id : runtimes) {
    if (id == id_) return;
  }
  runtimes.push_back(id_);
}

void Runtime::ReleaseThread(std::thread::id thread) {
  std::lock_guard<std::mutex> lock(mu_);
  ReleaseOrKeep(participants_, thread, orphans_);
  ReleaseOrKeep(readers_, thread, orphan_readers_);
}

}  // namespace atomap::internal

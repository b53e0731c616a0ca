// Runtime: the process-local machinery that turns a mapped domain into atoms: the allocator
// handle, the epoch table, and one Participant per thread that uses the domain.
//
// Participants: a thread's first operation on a domain claims a slot of its own (with a file
// description of its own, so that its OFD lock is its alone); the slot is released when the
// thread exits or the Domain is closed, whichever comes first. Threads never share a slot, so a
// pin, a retire list and an allocator cache each have exactly one writer.
//
// Readers: a thread's first load on a read-only domain with a reader registry claims a reader
// slot (ReaderParticipant, src/atom/reader_participant.h), released likewise; its loads pin
// there (a validated pin, epoch/epoch_table.h RR1). A read-only domain without a registry it can
// use (DomainImpl::readers() null) is an unregistered reader: its loads pin nothing (G3).
//
// (RT1) A thread that exits while one of its snapshots still pins its participant (a language
//       binding whose garbage collector drops the snapshot later, on another thread) does not
//       free that participant: it is kept, slot and pin included, apart from the by-thread maps
//       (so a new thread that reuses the id claims a slot of its own), until the runtime is
//       destroyed. The snapshot may then be destroyed on any one thread at a time
//       (atomap/snapshot.h); until it is, its pin holds reclamation back as any pin does.
//
// Dead participants: a claim that takes over a dead owner's slot recovers it (RecoverDeadSlot in
// src/domain/slot_recovery.h); so does a participant that finds the epoch held back by a slot
// whose owner is dead (Participant::Reclaim).
//
// The hot path: each thread keeps a one-entry cache of the last runtime it used and its
// participants there (ThreadCache, below), so that ThisThread() / ThisReader() on a hit are two
// compares inline: the runtime's id, unique in the process and never reused, and the fork check
// (a child of fork() inherits the forking thread's cache, and must not use it: PS2).
//
// Thread safety: safe to use from any thread. ThisThread() returns a participant that belongs to
// the calling thread only.
#ifndef ATOMAP_SRC_ATOM_RUNTIME_H_
#define ATOMAP_SRC_ATOM_RUNTIME_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "alloc/allocator.h"
#include "domain/domain_impl.h"
#include "epoch/epoch_table.h"
#include "epoch/retire_list.h"
#include "hamt/trie_context.h"

namespace atomap::internal {

class Participant;
class ReaderParticipant;

// Per thread: the last runtime (by id; 0: none) this thread took a participant of, and its
// participant and reader participant there (each null until claimed). Written only by its own
// thread, in Runtime::ThisThread / ThisReader's slow paths and when the thread releases them.
// Trivially constructed and destroyed, so that reading it is one TLS access with no wrapper.
struct ThreadCache {
  std::uint64_t runtime = 0;
  Participant* participant = nullptr;
  std::uint64_t reader_runtime = 0;
  ReaderParticipant* reader = nullptr;
};
extern constinit thread_local ThreadCache this_thread_cache;

class Runtime {
 public:
  explicit Runtime(DomainImpl& domain);
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  DomainImpl& domain() const { return domain_; }
  Allocator& allocator() { return allocator_; }
  const EpochTable& epochs() const { return epochs_; }
  // For readers of a read-only domain, which allocate nothing: the mapping and the hash.
  const TrieContext& read_context() const { return read_context_; }

  // The calling thread's participant, claimed on first use. FailedPrecondition for read-only
  // domains (they claim no slot); ResourceExhausted when every slot has a live owner.
  absl::StatusOr<Participant*> ThisThread() {
    if (Participant* cached = CachedParticipant()) return cached;
    return ClaimThisThread();
  }
  // The calling thread's reader participant, claimed on first use. FailedPrecondition unless the
  // domain is read-only with a registry, or in a child of fork(); ResourceExhausted when every
  // reader slot has a live owner.
  absl::StatusOr<ReaderParticipant*> ThisReader() {
    if (ReaderParticipant* cached = CachedReader()) return cached;
    return ClaimThisReader();
  }
  // The hot path of ThisThread() / ThisReader(): the calling thread's participant if its cache
  // holds this runtime's (never in a child of fork(): PS2), else null (call the full one).
  Participant* CachedParticipant() const {
    const ThreadCache& mine = this_thread_cache;
    return mine.runtime == id_ && !inherited() ? mine.participant : nullptr;
  }
  ReaderParticipant* CachedReader() const {
    const ThreadCache& mine = this_thread_cache;
    return mine.reader_runtime == id_ && !inherited() ? mine.reader : nullptr;
  }

  // True in a child of fork() for a runtime its parent made: inert there.
  bool inherited() const { return domain_.inherited(); }

  // Called for a thread that exits while this runtime lives.
  void ReleaseThread(std::thread::id thread);

 private:
  absl::StatusOr<Participant*> ClaimThisThread();
  absl::StatusOr<ReaderParticipant*> ClaimThisReader();
  // Frees `thread`'s participant in `by_thread`, or moves it to `orphans` if pinned (RT1).
  template <class P>
  static void ReleaseOrKeep(absl::flat_hash_map<std::thread::id, std::unique_ptr<P>>& by_thread,
                            std::thread::id thread, std::vector<std::unique_ptr<P>>& orphans);
  // Adds this runtime to a thread's list of runtimes to tell at its exit (once).
  void NoteThreadUses(std::vector<std::uint64_t>& runtimes) const;

  DomainImpl& domain_;
  Allocator allocator_;
  EpochTable epochs_;
  TrieContext read_context_;
  const std::uint64_t id_;  // unique in this process: thread-local caches key on it
  std::mutex mu_;
  absl::flat_hash_map<std::thread::id, std::unique_ptr<Participant>> participants_;
  absl::flat_hash_map<std::thread::id, std::unique_ptr<ReaderParticipant>> readers_;
  // Participants of exited threads that were still pinned (RT1).
  std::vector<std::unique_ptr<Participant>> orphans_;
  std::vector<std::unique_ptr<ReaderParticipant>> orphan_readers_;
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_ATOM_RUNTIME_H_

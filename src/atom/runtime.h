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
// Dead participants: a claim that takes over a dead owner's slot recovers it (RecoverDeadSlot in
// src/domain/slot_recovery.h); so does a participant that finds the epoch held back by a slot
// whose owner is dead (Participant::Reclaim).
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
  absl::StatusOr<Participant*> ThisThread();
  // The calling thread's reader participant, claimed on first use. FailedPrecondition unless the
  // domain is read-only with a registry, or in a child of fork(); ResourceExhausted when every
  // reader slot has a live owner.
  absl::StatusOr<ReaderParticipant*> ThisReader();

  // True in a child of fork() for a runtime its parent made: inert there.
  bool inherited() const { return domain_.inherited(); }

  // Called for a thread that exits while this runtime lives.
  void ReleaseThread(std::thread::id thread);

 private:
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
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_ATOM_RUNTIME_H_

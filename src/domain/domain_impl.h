// DomainImpl: a Domain's internals, for the library's other layers (allocator, atoms, trie,
// tools). Reach it with internal::Access(domain).
//
// What it owns: the Arena (the mapping), the header, the slot table, the atom table and the
// domain's hasher; the descriptors of the companion files (file/companion_file.h): PATH.lock,
// whose description holds this handle's OFD locks, and PATH.readers; and this handle's
// attachment (a shared lock on kAttachedLockByte) and its process participant slot.
//
// Where the locks live: every lock of a writer (attach, grow, participant slots) is on PATH.lock,
// which only those who may write PATH can open; PATH carries none, since every reader can open
// it and a reader's read lock would stop writers (docs/design.md, "Trust boundaries"). Readers
// hold no attach lock: they open PATH.readers and claim reader slots there.
//
// Lifecycle of a writable handle: open and validate the file; map it; open (or create, or
// replace stale) PATH.lock and PATH.readers; take the attach lock (first
// trying it exclusive: success means no other handle anywhere had the domain open, recorded as
// found_alone() for the recovery pass); claim the process slot; mark the domain dirty. On
// destruction: release the slot; if the attach lock can then be taken exclusive (turning our
// shared lock, or else, when another handle held it, taking it again after letting ours go: two
// handles closing at once would otherwise each fail on the other's), this was the last handle:
// mark the domain clean; drop the lock.
//
// Memory ordering (the clean/dirty word; the attach lock orders writers of it between processes)
//  (1) Open: acquire load of state (was_clean), then release store of kDirty after attaching.
//  (2) Detach: release store of kClean while holding the attach lock exclusive; synchronises
//      with (1) of the next opener, which can take the lock shared only after it is dropped.
//
// Thread safety: safe to use from any thread of any process that maps the file. SlotLeases from
// ClaimSlot() must be released before the DomainImpl is destroyed.
#ifndef ATOMAP_SRC_DOMAIN_DOMAIN_IMPL_H_
#define ATOMAP_SRC_DOMAIN_DOMAIN_IMPL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "alloc/allocator.h"
#include "arena/arena.h"
#include "atomap/domain.h"
#include "atomap/options.h"
#include "common/fork_generation.h"
#include "common/hash.h"
#include "epoch/epoch_table.h"
#include "epoch/pin_fence.h"
#include "file/atom_table.h"
#include "file/header.h"
#include "file/reader_registry.h"
#include "file/slot_table.h"

namespace atomap::internal {

struct DomainFile;  // file/domain_file.h
struct Companions;  // file/companion_file.h

// Called when a claim in `domain` takes over `slot` from its dead owner (see SlotTable).
using DomainTakeoverHook =
    std::function<void(DomainImpl& domain, std::uint32_t slot, const SlotHead& dead_owner)>;

// Installs a process-wide observer of slot takeovers that every DomainImpl opened afterwards
// calls before it recovers the dead owner's slot (RecoverDeadSlot, which always runs). For
// tests. Pass nullptr to remove it.
void SetSlotTakeoverHook(DomainTakeoverHook hook);

class DomainImpl {
 public:
  static absl::StatusOr<std::unique_ptr<DomainImpl>> Open(std::string_view path,
                                                          const Options& options);
  // Staged creation: a new domain for `path` that no other process can open until Publish().
  // Its file is built complete and unnamed in the directory of its path (domain_file.h,
  // CreateUnpublishedDomainFile); this handle maps it and is attached as after Open. A
  // process killed before Publish(), or a handle destroyed unpublished, leaves nothing at the
  // path. InvalidArgument for kInProcess or read_only.
  static absl::StatusOr<std::unique_ptr<DomainImpl>> CreateUnpublished(std::string_view path,
                                                                       const Options& options);
  ~DomainImpl();
  DomainImpl(const DomainImpl&) = delete;
  DomainImpl& operator=(const DomainImpl&) = delete;

  Arena& arena() const { return *arena_; }
  Header& header() const { return *header_; }
  SlotTable& slots() { return *slots_; }
  AtomTable& atoms() { return *atoms_; }
  const SlotTable& slots() const { return *slots_; }
  const AtomTable& atoms() const { return *atoms_; }
  const KeyHasher& hasher() const { return hasher_; }
  // The allocator's shared state and the data region's first byte.
  AllocatorState* allocator_state() const {
    return arena_->At<AllocatorState>(header_->allocator_state_offset);
  }
  // Handles on the domain's allocator and epoch table (cheap: pointers into the mapping).
  Allocator allocator() const { return Allocator(arena_.get(), allocator_state()); }
  EpochTable epochs() const {
    return EpochTable(&header_->global_epoch, arena_->At<Slot>(header_->slot_table_offset),
                      header_->slot_capacity, readers(), header_->epoch_began,
                      &header_->slot_high_water, fence_mode_);
  }
  Offset data_begin() const { return header_->data_begin; }

  const std::string& path() const { return path_; }
  DomainKind kind() const { return kind_; }
  bool read_only() const { return read_only_; }
  // True if this domain was created by this Open.
  bool created() const { return created_; }
  // True if, at Open, no other handle (in any process) had the domain open: the recovery pass
  // may then sweep it. Always true for in-process domains.
  bool found_alone() const { return found_alone_; }
  // The clean/dirty state found at Open (before this handle marked it dirty).
  bool was_clean() const { return was_clean_; }
  // This handle's Options::durability (recovery/durability.h acts on it).
  Durability durability() const { return durability_; }
  // This handle's Options::combine_writes (atom/apply.cc acts on it).
  bool combine_writes() const { return combine_writes_; }
  // This handle's Options::verify_reads (the atoms layer puts it in every trie context).
  bool verify_reads() const { return verify_reads_; }
  // PATH.lock (the writers' lock file: every writer lock lives there) and PATH.readers (the
  // reader registry), as this handle opened them; -1 where it has none (in-process domains; a
  // reader that cannot open PATH.lock; a domain without a registry).
  int lock_fd() const { return lock_fd_; }
  int registry_fd() const { return registry_fd_; }
  // A reader on a read-only file system: nobody can write PATH, so it reads without a registry
  // slot (registry_fd() is -1).
  bool unregistered_reader() const { return unregistered_reader_; }
  // Options::lock_timeout: the bound of every lock wait of this handle.
  absl::Duration lock_timeout() const { return lock_timeout_; }
  // The reader registry, when the domain has one and this handle opened it.
  ReaderRegistry* readers() { return readers_ ? &*readers_ : nullptr; }
  const ReaderRegistry* readers() const { return readers_ ? &*readers_ : nullptr; }
  // This handle's own participant slot (not held when read-only, or once taken).
  const SlotLease& process_slot() const { return process_slot_; }
  // Hands the process slot to its first participant (the atoms layer), so that a
  // single-threaded process holds one slot, not two. Empty if already taken or read-only.
  SlotLease TakeProcessSlot() { return std::move(process_slot_); }

  // A slot for one more participant (e.g. a thread), with a file description of its own so that
  // its lock conflicts with every other participant's, in this process too. FailedPrecondition
  // when read-only; ResourceExhausted when every slot has a live owner.
  absl::StatusOr<SlotLease> ClaimSlot();
  // Marks the lease's slot free and closes its description (the same as destroying the lease).
  void ReleaseSlot(SlotLease& lease) { lease.Release(); }

  DomainInfo Info() const;

  // Makes a domain from CreateUnpublished visible at its path: syncs the file, then links it
  // there, never replacing anything (AlreadyExists, and the domain stays unpublished).
  // FailedPrecondition if it is already published (every domain from Open is).
  absl::Status Publish();
  bool published() const { return !unpublished_; }

  // True in a child of fork() for a handle its parent opened (src/common/fork_generation.h).
  bool inherited() const { return ForkGeneration() != fork_generation_; }

 private:
  DomainImpl() = default;
  // A handle with the per-handle options applied (kind, durability, verify_reads, read_only,
  // combine_writes):
  // the one place both Open and CreateUnpublished take them from.
  static std::unique_ptr<DomainImpl> WithHandleOptions(const Options& options);
  // Maps `file` (taking its fd) and records its path. REQUIRES: kind_, read_only_ set.
  absl::Status MapFile(const DomainFile& file, std::string file_path);
  // Everything after the mapping: the header, the attach lock, the tables, the dirty mark.
  absl::Status Attach();
  absl::Status AttachFile();
  absl::Status InitTables();
  void Detach();
  // Takes the companions' descriptors (and an unpublished handle's temporary names).
  void AdoptCompanions(Companions& companions);
  void CloseCompanions();

  std::unique_ptr<Arena> arena_;
  Header* header_ = nullptr;
  std::optional<SlotTable> slots_;
  std::optional<AtomTable> atoms_;
  KeyHasher hasher_;
  std::string path_;
  DomainKind kind_ = DomainKind::kFile;
  bool read_only_ = false;
  bool created_ = false;
  bool found_alone_ = false;
  bool was_clean_ = false;
  Durability durability_ = Durability::kProcessCrash;
  bool combine_writes_ = true;
  bool verify_reads_ = false;
  bool attached_ = false;      // holds the shared lock on kAttachedLockByte
  bool marked_dirty_ = false;  // this handle stored kDirty (so it may mark clean at the end)
  bool unpublished_ = false;   // from CreateUnpublished, not yet linked at path_
  std::string temp_name_;      // an unpublished file's temporary name (no O_TMPFILE), or empty
  SlotLease process_slot_;
  int lock_fd_ = -1;      // owned; closed by the destructor
  int registry_fd_ = -1;  // owned; closed by the destructor
  bool unregistered_reader_ = false;
  absl::Duration lock_timeout_ = absl::Seconds(10);
  // Unpublished only: the companions' temporary names (no O_TMPFILE), removed by Publish.
  std::string lock_temp_name_;
  std::string registry_temp_name_;
  std::optional<ReaderRegistry> readers_;
  // This handle's part in how this process pins (epoch/pin_fence.h PF1): from Attach on.
  std::optional<PinFenceAttachment> pin_fence_;
  PinFenceMode fence_mode_ = PinFenceMode::kFull;  // header's pin_fence, read once at Attach
  std::uint64_t fork_generation_ = ForkGeneration();
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_DOMAIN_DOMAIN_IMPL_H_

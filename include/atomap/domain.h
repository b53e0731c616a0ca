// Domain: one shared memory-mapped file (or /dev/shm object, or in-process memory) that many
// processes map at once; everything atomap shares lives in one.
//
// Usage:
//
//   absl::StatusOr<atomap::Domain> domain = atomap::Domain::Open("/var/lib/app/state.atomap");
//   if (!domain.ok()) return domain.status();  // names the file and, if bad, the field
//   atomap::DomainInfo info = domain->info();
//   std::printf("%llu bytes, %zu attached\n", (unsigned long long)info.size,
//               info.slots_in_use.size());
//
// Contract
//  - Open() creates the domain if nothing is at the path (Options::create_if_missing; with
//    Options::error_if_exists it fails rather than open an existing one). Creation is
//    race-free: the file is built complete under no name and then linked into place, so any
//    number of processes may call Open() on the same missing path at once; all end up with the
//    same domain (with Options::error_if_exists, exactly one of them, and the others get
//    AlreadyExists), and no process ever sees a half-written file at the path.
//  - An existing file is validated before anything is written to it. A file that is not a domain,
//    is truncated, or is from a future format is an error whose message names the path and the
//    field; the file is left untouched.
//  - While open, a writable Domain holds one participant slot of the domain (its process's).
//    When the process dies however it dies, the kernel releases the slot's lock and the next
//    process to attach takes the slot over.
//  - After fork(), the child must open the domain again. Handles it inherited (the Domain, its
//    atoms and snapshots) are inert in the child: operations return FailedPrecondition, and
//    destroying them leaves the parent's slot, pins and locks alone.
//  - Errors are values (absl::Status); no exception leaves this API.
//
// Thread safety: a Domain is safe to use from any thread of any process that maps the file; the
// const accessors never block. Moving a Domain, or destroying it, needs exclusive access.
#ifndef ATOMAP_DOMAIN_H_
#define ATOMAP_DOMAIN_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "atomap/atom.h"
#include "atomap/check.h"
#include "atomap/options.h"

namespace atomap {

class Domain;

namespace internal {
class DomainImpl;
class Runtime;
// For the library's own layers (api, atoms, trie, recovery) and its tests: the domain's
// internals. DomainImpl is defined in src/domain/domain_impl.h, which is not installed.
// REQUIRES: `domain` was not moved from.
DomainImpl& Access(Domain& domain);
const DomainImpl& Access(const Domain& domain);
}  // namespace internal

// A snapshot of a domain's state, for tools and tests. Fields may be stale as soon as returned.
struct DomainInfo {
  struct Slot {
    std::uint32_t index = 0;
    std::uint32_t pid = 0;  // as the owner recorded it (informational: pids are reused)
  };
  std::uint64_t size = 0;      // bytes of the domain now (the file's length, for files)
  std::uint64_t max_size = 0;  // the most it may grow to
  std::uint32_t slot_capacity = 0;
  std::vector<Slot> slots_in_use;
  std::uint32_t atom_count = 0;
  std::uint32_t atom_capacity = 0;
  // True if the last process to close the domain closed it normally and nobody wrote since.
  // Always false while a writable Domain is open.
  bool clean = false;
};

// One attached participant, as `atomap stat --readers` lists it (DomainStats::participant_list).
struct ParticipantStats {
  enum class Kind { kWriter, kReader };
  Kind kind = Kind::kWriter;
  std::uint32_t slot = 0;  // in the writers' slot table or the reader registry
  std::uint32_t pid = 0;   // as recorded (informational: pids are reused)
  std::uint32_t uid = 0;   // readers: as recorded; writers: PATH's owner is not recorded, 0
  // Whether the slot's owner is alive (its lock is held); nullopt where this handle cannot
  // tell (a reader cannot open PATH.lock to probe writers' locks).
  std::optional<bool> alive;
  bool pinned = false;
  std::uint64_t pinned_epoch = 0;
  std::uint64_t epoch_lag = 0;         // global epoch - pinned_epoch
  std::uint32_t pinned_atom = 0;       // atom number + 1 of its outermost snapshot; 0 unknown
  std::string pinned_atom_name;        // that atom's name; empty when unknown
  std::uint64_t versions_behind = 0;   // that atom's newest version number - the pinned one
  std::uint64_t retained_bytes = 0;    // pending garbage only this pin (or older) holds back
  absl::Duration pinned_for;           // has held reclamation back at least this long
};

// What Domain::stats() collects beyond the default figures.
struct StatsOptions {
  bool participants = false;  // fill DomainStats::participant_list
};

// Reclamation and space figures, for tools, tests and monitoring. The space figures walk the
// free lists: exact while no participant is writing, approximate (never a crash) otherwise.
struct DomainStats {
  std::uint64_t global_epoch = 0;
  // The participant whose pin holds the epoch back the longest, if any is pinned. A stopped
  // process (SIGSTOP, a debugger) shows up here while it holds a snapshot: nothing retired since
  // its pin is freed until it moves on.
  bool any_pinned = false;
  std::uint64_t oldest_pinned_epoch = 0;
  std::uint32_t oldest_pinned_slot = 0;
  std::uint32_t oldest_pinned_pid = 0;
  std::uint32_t participants = 0;  // slots in use (a dead owner's counts until taken over)
  std::uint32_t writers = 0;          // writer slots in use (participants counts these)
  std::uint32_t readers = 0;          // reader registry slots in use
  std::uint32_t reader_capacity = 0;  // 0: no registry (or this handle could not read it)
  std::uint32_t dead_participants = 0;  // in use by an owner known to be dead (writers+readers)
  std::uint32_t dead_readers = 0;       // of those, reader slots
  std::string registry_path;            // the reader registry this handle read; empty: none
  bool oldest_pinned_is_reader = false;
  absl::Duration oldest_pin_age;       // lower bound; zero when nothing is pinned
  std::uint64_t oldest_pin_retained_bytes = 0;
  std::uint64_t epoch_advances = 0;    // the global epoch (it starts at 0 and counts advances)
  // The domain lets pins use a compiler barrier instead of a fence (its creator could issue
  // membarrier's heavy fence; docs/design.md, "The asymmetric fence").
  bool light_pins = false;
  // Whether this process pins with the compiler barrier now, and whether it may advance the
  // epoch (false: the domain has light pins and this process cannot issue the heavy fence, so
  // its garbage is freed only when another process reclaims).
  bool this_process_pins_light = false;
  bool this_process_advances_epoch = true;
  // Every participant in use, writers then readers; filled by stats(StatsOptions{.participants
  // = true}) only (it walks every retire list).
  std::vector<ParticipantStats> participant_list;
  std::uint64_t pending_garbage_blocks = 0;  // retired, waiting for the epoch (orphans included)
  std::uint64_t pending_garbage_bytes = 0;
  std::uint64_t data_bytes = 0;    // handed out of the data region so far
  std::uint64_t live_bytes = 0;    // in allocated blocks (versions, pending garbage, metadata)
  std::uint64_t free_bytes = 0;    // in free blocks, reusable
  std::uint64_t unused_bytes = 0;  // carved for participants, not yet split into blocks
  // OK, or DataLoss naming the file and the first damaged list found (a free list, a cache's
  // list or the orphan chain with a cycle or a link outside the data region). Every list is
  // walked with a bound, so stats() returns promptly on any file; the figures above then count
  // only the lists' sound prefixes. A list that other processes change during its walk is
  // walked again rather than reported (it was changing, not damaged): damage is reported once
  // two walks that nothing visibly changed have found it, the same.
  absl::Status damage;
};

class Domain {
 public:
  // Opens (or creates) the domain named by `path`: a file path for DomainKind::kFile; a name of
  // letters, digits, '.', '_' and '-' for kSharedMemory (the object is /dev/shm/atomap.<name>);
  // a label only, for kInProcess.
  // Errors: NotFound (missing, !create_if_missing), AlreadyExists (anything at the path, with
  // error_if_exists), InvalidArgument (bad options or name), FailedPrecondition (not a domain,
  // incompatible format, symlink), DataLoss (damaged or truncated), ResourceExhausted (no free
  // slot, address space), PermissionDenied, Internal.
  static absl::StatusOr<Domain> Open(std::string_view path, const Options& options = {});

  // Staged creation, for building a domain that must appear complete or not at all (a copy, a
  // domain built to be shipped): creates a new domain for `path` (kFile or kSharedMemory) that
  // no other process can open until Publish(). Its file is unnamed (O_TMPFILE) in the directory
  // of its path; a process killed, or a handle destroyed, before Publish() leaves nothing at the
  // path. (On a file system without O_TMPFILE the file has a temporary name in that directory,
  // ".atomap-new-XXXXXX", removed by Publish() or the destructor; only a process killed in
  // between leaves it behind.) Errors: those of Open, and InvalidArgument for kInProcess or
  // read_only.
  static absl::StatusOr<Domain> CreateUnpublished(std::string_view path,
                                                  const Options& options = {});
  // Makes a domain from CreateUnpublished() visible at its path: writes the whole file to stable
  // storage, then links it there. Never replaces anything: AlreadyExists if the path exists (the
  // domain stays unpublished, and is discarded with the handle). FailedPrecondition if already
  // published (every domain from Open() is).
  absl::Status Publish();

  Domain(Domain&&) noexcept;
  Domain& operator=(Domain&&) noexcept;
  Domain(const Domain&) = delete;
  Domain& operator=(const Domain&) = delete;
  // Releases this handle's slot and mappings. The last process to close marks the domain clean.
  ~Domain();

  // REQUIRES (all accessors): *this was not moved from.
  // The file's path (for kSharedMemory, the /dev/shm path; for kInProcess, the label).
  const std::string& path() const;
  DomainKind kind() const;
  bool read_only() const;
  DomainInfo info() const;
  DomainStats stats() const;
  DomainStats stats(const StatsOptions& options) const;
  // True if this handle's Open() (or CreateUnpublished()) created the domain; false if it opened
  // an existing one (another process's racing Open() included). Always true for kInProcess.
  bool created() const;
  // True if the domain was clean (DomainInfo::clean) when this writable handle opened it: the
  // last process to close it closed it normally, and nobody wrote since. False when this handle
  // created it, or found it in use or left by a crash; always false for a read-only handle,
  // which does not look (DomainInfo::clean says what the file says now).
  bool was_clean() const;

  // The atom named `name` (1 to 255 bytes), created empty if it does not exist yet. Any number
  // of processes may create the same name at once: they all get the same atom. On a read-only
  // domain, NotFound if it does not exist. ResourceExhausted when the atom table is full.
  absl::StatusOr<Atom> atom(std::string_view name);
  // The atom named `name` if it exists; never creates one (a reader of a writable domain then
  // changes nothing). NotFound naming the file and the atom if there is none; InvalidArgument
  // for a name atom() would refuse.
  absl::StatusOr<Atom> find_atom(std::string_view name);
  // The names of every atom, sorted by their bytes. Atoms that other processes create
  // meanwhile may be missing; none is ever removed.
  std::vector<std::string> atom_names() const;

  // Verifies the domain's structure and space accounting (see atomap/check.h); problems found
  // are data in the report, not errors. With other handles attached, only each atom's pinned
  // version is verified (CheckReport::space_checked is false). With options.repair, frees
  // leaked blocks and rebuilds the free lists. Errors: FailedPrecondition (repair on a
  // read-only domain, or with other handles attached; a read-only check of a domain that live
  // participants may be writing).
  absl::StatusOr<CheckReport> check(const CheckOptions& options = {});

  // Writes everything this domain's file holds to stable storage (fdatasync): every version
  // published before the call survives a power loss. OK at once for shared-memory and
  // in-process domains. Internal (with the errno) if the kernel reports a write error.
  absl::Status sync();

 private:
  explicit Domain(std::unique_ptr<internal::DomainImpl> impl);
  friend internal::DomainImpl& internal::Access(Domain&);
  friend const internal::DomainImpl& internal::Access(const Domain&);

  std::unique_ptr<internal::DomainImpl> impl_;
  // Declared after impl_: destroyed first, since its participants live in impl_'s mapping.
  std::unique_ptr<internal::Runtime> runtime_;
};

}  // namespace atomap

#endif  // ATOMAP_DOMAIN_H_

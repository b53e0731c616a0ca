// Options: how a domain is opened, and how it is laid out when it is created.
//
// Usage:
//
//   atomap::Options options;
//   options.max_size = std::uint64_t{1} << 30;  // at most 1 GiB of address space and file
//   options.kind = atomap::DomainKind::kSharedMemory;
//   absl::StatusOr<atomap::Domain> domain = atomap::Domain::Open("sessions", options);
//
// The layout fields (max_size, slot_capacity, atom_capacity) are used only by the process that
// creates the domain; they are stored in its header, and every later open takes them
// from there, whatever its own Options say.
//
// Options is a plain value: copy it freely; it is not shared with anything.
#ifndef ATOMAP_OPTIONS_H_
#define ATOMAP_OPTIONS_H_

#include <cstdint>

#include "absl/time/time.h"

namespace atomap {

// Where a domain's bytes live.
enum class DomainKind {
  kFile,          // a file at the given path: persistent, survives restarts
  kSharedMemory,  // /dev/shm/atomap.<name>: shared between processes, gone at reboot
  kInProcess,     // anonymous memory of this process only: nothing else can open it
};

// What a swap that returned has survived (docs/reliability.md has the full promises).
enum class Durability {
  // A crash of any process (kill -9 included) loses nothing that a swap returned: the page
  // cache holds the file. A power loss or kernel crash may lose recent versions (those not yet
  // written back), never corrupts the file: the next open finds the newest version whose nodes
  // reached the disk, or an older one, and the recovery sweep rebuilds the free space.
  kProcessCrash,
  // A swap returns only after its nodes, and then its root, are on stable storage (fdatasync of
  // the file before and after the root CAS): a power loss loses no swap that returned. Every
  // writer of the domain must use it for the promise to hold. Costs two fdatasync per swap.
  kSync,
};

struct Options {
  // Create the domain when nothing exists at the path. An existing file is never overwritten.
  bool create_if_missing = true;
  // Fail with AlreadyExists, naming the path, if anything exists at the path: Open() then only
  // ever creates, and never reads or writes an existing file. Race-free: of any number of
  // processes opening the same missing path at once, exactly one succeeds (Domain::created() is
  // true for it). For CreateUnpublished(), an early answer before building anything (Publish()
  // is what never replaces a file that appears meanwhile). InvalidArgument with read_only or
  // without create_if_missing (an open that may not create can never succeed with it).
  bool error_if_exists = false;
  // The most bytes the domain may ever hold. Reserved as address space (not memory) by every
  // process that opens it, so that the mapping grows in place and never moves.
  std::uint64_t max_size = std::uint64_t{64} << 30;
  // Mode bits of a created file (exactly these; the umask is not applied).
  std::uint32_t permissions = 0600;
  // Open as a reader: map PATH read-only and register in the reader registry, PATH.readers, so
  // that writers never free what this handle reads (docs/design.md, "Readers"). A reader needs
  // read permission on PATH and read-write permission on PATH.readers, never write permission on
  // PATH, and nothing it does can make a writer wait. A reader that cannot write PATH.readers
  // (no permission, or a read-only file system or bind mount such as `-v x:ro`, where writers
  // may still use an rw mount of the same file) fails with an error naming PATH.readers.
  bool read_only = false;
  // With read_only: read without registering (PATH.readers is not opened). Writers then know
  // nothing of this reader and may free and reuse what it reads, so use it only for a file no
  // process writes while it is open (a shipped domain on read-only media); otherwise reads may
  // see garbage or fail with DataLoss.
  bool unregistered_reads = false;
  DomainKind kind = DomainKind::kFile;
  // How many participants (processes, or threads with their own slot) may be attached at once.
  std::uint32_t slot_capacity = 1024;
  // Created domains: how many reader handles' threads may be registered at once (1..65536).
  std::uint32_t reader_capacity = 1024;
  // Created domains: the mode of PATH.readers (exactly these bits). 0, the default: every class
  // that may read PATH (permissions) gets read-write, so whoever may read may also register
  // (0600 -> 0600, 0640 -> 0660, 0644 -> 0666). PATH.lock always gets the write bits of
  // permissions as read-write and nothing else: no reader can open it.
  std::uint32_t reader_permissions = 0;
  // The longest any lock wait of this handle may take (a writer waiting for another writer that
  // grows the file or closes the domain); past it the call fails with DeadlineExceeded naming
  // the lock. No lock a reader can take is ever waited on.
  absl::Duration lock_timeout = absl::Seconds(10);
  // How many named atoms the domain can hold.
  std::uint32_t atom_capacity = 4096;
  // Open the path even if it is a symbolic link (off: a symlink at the path is an error).
  bool follow_symlinks = false;
  // Open for writing a domain whose file is owned by another user. Off (the default), a writable
  // open (read_only false) of an existing file or shared-memory domain whose owner is not this
  // process's effective user fails with PermissionDenied naming the file, its owner and its
  // mode, before anything is read from or written to it. Read-only opens are never refused
  // (reading other users' domains is what shared configuration is for); creating is not either
  // (the creator owns what it creates, and creating never follows a symbolic link).
  // Why the owner alone, whatever the mode bits: its owner can read everything a writer stores
  // (a secret written by root into /dev/shm/atomap.x that user nobody planted, mode 0666 or
  // 0600 alike: the owner can chmod it at will) and change the file under the writer's feet;
  // group and other bits only add more such users. Files you own keep the mode you gave them
  // (permissions). Set this only when the owner is trusted, e.g. a domain shared by a group of
  // service accounts, or root repairing a user's file (sshd's StrictModes and PostgreSQL's
  // data-directory check refuse the same way).
  bool allow_foreign_owner = false;
  // Per handle: how durable this handle's swaps are (see Durability). Files only; shared-memory
  // and in-process domains do not outlive the machine's power anyway.
  Durability durability = Durability::kProcessCrash;
  // Per handle: bounds-check every read of a map (for files that may be damaged: copied while
  // written, truncated, from an untrusted source). Every reader of a Map then checks each offset
  // and loop before following it and never crashes on damage (atomap/map.h says what each one
  // returns; Map::checked_get and Map::CheckedForEach, which always check, report it); so does
  // every write of a Transaction on it, which reads the base's path to its key checked first
  // and returns DataLoss at damage (atomap/transaction.h). The atomap tool always sets it.
  // Costs a get about 8 ns on a small map and up to twice the time on a 1M-key map
  // (docs/reliability.md, "Reading a damaged file").
  bool verify_reads = false;
  // Per handle: whether Atom::apply, add and add_i64 combine (docs/design.md, "Combining"). On
  // (the default), a batch of at most 4 ops whose keys and values fit in 168 bytes (an add to a
  // key of up to 144 bytes, say) is posted in this participant's mailbox in the file, and
  // whichever writer publishes next, in any process, applies it together with every other
  // batch posted for the atom, in one version: under contention, writers share versions instead
  // of redoing lost ones. Uncontended, a batch is tried alone first (one swap attempt) and
  // posted only if that attempt loses its CAS. Each batch is still applied exactly once, all or
  // nothing, even if a process is killed anywhere. Off, or for a larger batch, apply runs as one
  // swap. The results are the same either way; combining differs in one visible detail: a
  // posted batch refused by its own op (an add on a value that is not 8 bytes) publishes a
  // version that changes no key (the record that the batch was refused lives in a version).
  bool combine_writes = true;
};

}  // namespace atomap

#endif  // ATOMAP_OPTIONS_H_

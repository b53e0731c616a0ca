// AtomTable: the domain's named atoms. Each atom is one record whose root word holds the current
// version of its map; this table only finds records by name and creates them race-free.
//
// Layout (docs/format.md): a 64-byte head (the record counter), an open-addressing index of
// 2 * capacity u32 words (0 = empty, else record number + 1), then `capacity` records of
// kAtomRecordBytes. A record's first cache line is what writers and waiters touch (root word,
// version, change counter, flags); its name follows on the next lines.
//
// Creation is lock-free and never waits on another creator (who may be dead): a creator that
// finds the name absent reserves a private record (CAS on the counter), writes the name into it,
// and publishes it with one CAS of the empty index word. If it loses that CAS to the same name it
// uses the winner's atom; its record stays private and is kept by this process for its next
// creation (a record reserved by a process that dies or exits first is never used: see
// docs/design.md).
//
// Invariants
//  (T1) An index word, once non-zero, never changes; so an atom's number never changes and a name
//       maps to at most one published record.
//  (T2) A record's name is written before the record is published in the index and never after.
//  (T3) At most `capacity` records exist, so the index is never more than half full and every
//       probe sequence ends at an empty word.
//  (T4) next_record only grows and never passes capacity.
//
// Memory ordering
//  (1) acquire load of an index word (lookup); synchronises with (3), so the name is visible.
//  (2) relaxed CAS of next_record: the record is private until (3) publishes it.
//  (3) release CAS of an index word from 0 to record + 1 (acquire on failure, synchronising with
//      the winner's (3), so the winner's name is visible).
//  The root word is the atoms layer's, and the change counter and waiter words are change
//  notification's (file/change_notification.h): each numbers its own edges.
//
// Thread safety: safe to use from any thread of any process that maps the file.
#ifndef ATOMAP_SRC_FILE_ATOM_TABLE_H_
#define ATOMAP_SRC_FILE_ATOM_TABLE_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/hash.h"
#include "common/layout.h"
#include "common/offset.h"
#include "common/shared_word.h"

namespace atomap::internal {

struct AtomTableHead {
  SharedU32 next_record;  // records reserved so far (T4)
  std::uint8_t reserved[60];
};
static_assert(sizeof(AtomTableHead) == 64);

struct AtomRecord {
  // ---- the hot line: the atoms layer's words --------------------------------------------------
  SharedU64 root;  // Offset of the current version's record; 0 = empty map
  SharedU32 waiters;  // legacy sleeper count: read, never raised (change_notification.h)
  SharedU32 waiting_for;  // the change a waiter awaits, 0: none (change_notification.h)
  SharedU32 change_counter;  // the futex word waiters sleep on
  std::uint32_t flags;
  // Since format 5: the slot + 1 of the writer combining this atom's posted batches now, 0 for
  // none (atom/combine.h C8). A hint that makes other posters wait instead of competing; never
  // needed for correctness, so a dead holder costs only a bounded wait.
  SharedU64 combiner;
  std::uint8_t reserved[32];
  // ---- the name: written once before publication ----------------------------------------------
  std::uint8_t name_length;  // 1..kMaxAtomNameBytes
  char name[kMaxAtomNameBytes];
};
static_assert(sizeof(AtomRecord) == 320);
static_assert(offsetof(AtomRecord, root) == 0);
static_assert(offsetof(AtomRecord, waiters) == 8);
static_assert(offsetof(AtomRecord, waiting_for) == 12);
static_assert(offsetof(AtomRecord, change_counter) == 16);
static_assert(offsetof(AtomRecord, flags) == 20);
static_assert(offsetof(AtomRecord, combiner) == 24);
static_assert(offsetof(AtomRecord, name_length) == 64);

inline constexpr std::uint64_t kAtomIndexOffset = sizeof(AtomTableHead);

class AtomTable {
 public:
  static constexpr std::uint64_t IndexWords(std::uint32_t capacity) {
    return 2 * std::uint64_t{capacity};
  }
  static constexpr std::uint64_t RecordsOffset(std::uint32_t capacity) {
    return kAtomIndexOffset + RoundUp(IndexWords(capacity) * sizeof(std::uint32_t), 64);
  }
  static constexpr std::uint64_t RegionBytes(std::uint32_t capacity) {
    return RecordsOffset(capacity) + std::uint64_t{capacity} * sizeof(AtomRecord);
  }

  // `region`: the table's first byte in this process's mapping. `path` is for messages.
  AtomTable(std::uint8_t* region, std::uint32_t capacity, KeyHasher hasher, bool writable,
            std::string path);

  // The atom named `name`. NotFound if it does not exist; InvalidArgument for a name that is
  // empty or longer than kMaxAtomNameBytes; DataLoss if the table is damaged.
  absl::StatusOr<std::uint32_t> Find(std::string_view name) const;
  // The atom named `name`, created (with an empty map) if missing. Concurrent callers in any
  // processes agree on the number. ResourceExhausted naming the capacity when the table is full;
  // FailedPrecondition when the domain is read-only.
  absl::StatusOr<std::uint32_t> FindOrCreate(std::string_view name);

  // Published atoms (a scan of the index: for tools and tests, not hot paths).
  std::uint32_t Count() const;
  // Calls `fn` for each published atom, in record order.
  void ForEach(absl::FunctionRef<void(std::uint32_t atom, std::string_view name)> fn) const;

  std::uint32_t capacity() const { return capacity_; }

  // An atom's shared words; each access names its order (common/shared_word.h), and the edges
  // are numbered by the word's owner (see "Memory ordering" above).
  // REQUIRES (all five): `atom` came from Find or FindOrCreate on this domain.
  SharedU64& Root(std::uint32_t atom) const { return Record(atom).root; }
  SharedU32& Waiters(std::uint32_t atom) const { return Record(atom).waiters; }
  SharedU32& WaitingFor(std::uint32_t atom) const { return Record(atom).waiting_for; }
  SharedU32& ChangeCounter(std::uint32_t atom) const { return Record(atom).change_counter; }
  SharedU64& Combiner(std::uint32_t atom) const { return Record(atom).combiner; }
  std::string_view Name(std::uint32_t atom) const;

 private:
  struct Probe {
    bool found;
    std::uint32_t atom;  // when found
  };
  AtomRecord& Record(std::uint32_t atom) const {
    return reinterpret_cast<AtomRecord*>(region_ + RecordsOffset(capacity_))[atom];
  }
  SharedU32& IndexWord(std::uint64_t i) const {
    return reinterpret_cast<SharedU32*>(region_ + kAtomIndexOffset)[i];
  }
  AtomTableHead& Head() const { return *reinterpret_cast<AtomTableHead*>(region_); }

  absl::Status CheckName(std::string_view name) const;
  // The record an index word names: DataLoss if out of range.
  absl::StatusOr<std::uint32_t> RecordOf(std::uint32_t word) const;
  absl::StatusOr<std::uint32_t> ReserveRecord(std::string_view name);
  absl::Status IndexFull() const;

  std::uint8_t* const region_;
  const std::uint32_t capacity_;
  const KeyHasher hasher_;
  const bool writable_;
  const std::string path_;

  // Records this process reserved and did not publish (lost a creation race): reused first.
  std::mutex spare_mu_;
  std::vector<std::uint32_t> spare_records_;
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_FILE_ATOM_TABLE_H_

// On-disk layout of the trie: entries, bitmap nodes, collision nodes, version records.
//
// Invariants
//  (N1) Every node, blob and version record is an allocator block; the trie refers to them by
//       Offset only (position independent).
//  (N2) A block reachable from a published version is immutable for as long as any reader may
//       hold that version: only a transaction's own, unpublished blocks are written in place.
//       A reader may therefore read a published node with plain loads and no ordering beyond
//       the acquire load of the root word that led it there.
//  (N3) The byte size of every block is recomputable from its content (node: bitmaps or count;
//       blob: the entry's length), which is what Allocator::Free needs.
//  (N4) Canonical form (CHAMP): no sub-node below the root holds exactly one entry and no
//       children; collision nodes exist only at kCollisionLevel, hold >= 2 entries, sorted by
//       key bytes. Equal contents therefore have equal shapes, which equality and diff rely on.
//
// Bitmap node (levels 0..12), 8-byte aligned fields:
//   [0, 4)  u32 datamap: fragments that hold an inline entry
//   [4, 8)  u32 nodemap: fragments that hold a child
//   [8, 8 + 8c)           u64 child offsets, c = popcount(nodemap), in fragment order
//   [8 + 8c, 8 + 8c + 24e) entries, e = popcount(datamap), in fragment order
// Children come before entries: descending reads the header and one child offset, usually in
// the same cache line (the prototype measured lookups twice as fast as entries-first).
//
// Collision node (level 13 only; the kind is known from the depth, no tag bit is spent):
//   [0, 4) u32 count, [4, 8) u32 reserved (0), [8, 8 + 24n) entries sorted by key bytes.
//
// Entry (24 bytes): u32 key_len, u32 value_len, u64 key_word, u64 value_word. A key or value of
// at most 8 bytes lives in its word (unused bytes zero, so equal words mean equal bytes);
// a longer one is the Offset of a blob of exactly that many bytes.
#ifndef ATOMAP_SRC_HAMT_NODE_H_
#define ATOMAP_SRC_HAMT_NODE_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/container/inlined_vector.h"
#include "arena/arena.h"
#include "common/offset.h"
#include "common/shared_word.h"
#include "hamt/bits.h"

namespace atomap::internal::hamt {

struct Entry {
  std::uint32_t key_len;
  std::uint32_t value_len;
  std::uint64_t key_word;
  std::uint64_t value_word;
};
static_assert(sizeof(Entry) == 24);

struct NodeHeader {
  Bitmap datamap;
  Bitmap nodemap;
};
static_assert(sizeof(NodeHeader) == 8);

struct CollisionHeader {
  std::uint32_t count;
  std::uint32_t reserved;
};
static_assert(sizeof(CollisionHeader) == 8);

// Keys up to 64 KiB; values up to the allocator's largest block.
inline constexpr std::uint64_t kMaxKeyBytes = std::uint64_t{64} << 10;
inline constexpr std::uint64_t kInlineBytes = 8;

constexpr bool IsInline(std::uint32_t len) { return len <= kInlineBytes; }

constexpr std::uint64_t BitmapNodeBytes(int children, int entries) {
  return sizeof(NodeHeader) + 8 * static_cast<std::uint64_t>(children) +
         sizeof(Entry) * static_cast<std::uint64_t>(entries);
}
constexpr std::uint64_t CollisionNodeBytes(std::uint64_t entries) {
  return sizeof(CollisionHeader) + sizeof(Entry) * entries;
}
static_assert(BitmapNodeBytes(1, 1) == 40);

// Read-only view of a bitmap node in the mapping.
class BitmapNodeRef {
 public:
  BitmapNodeRef(const Arena& arena, Offset off) : h_(arena.At<const NodeHeader>(off)) {}

  Bitmap datamap() const { return h_->datamap; }
  Bitmap nodemap() const { return h_->nodemap; }
  int child_count() const { return Count(h_->nodemap); }
  int entry_count() const { return Count(h_->datamap); }
  const Offset* children() const { return reinterpret_cast<const Offset*>(h_ + 1); }
  const Entry* entries() const {
    return reinterpret_cast<const Entry*>(children() + child_count());
  }
  Offset child_at(Bitmap bit) const { return children()[IndexOf(h_->nodemap, bit)]; }
  const Entry& entry_at(Bitmap bit) const { return entries()[IndexOf(h_->datamap, bit)]; }
  std::uint64_t bytes() const { return BitmapNodeBytes(child_count(), entry_count()); }

 private:
  const NodeHeader* h_;
};

// Read-only view of a collision node in the mapping.
class CollisionNodeRef {
 public:
  CollisionNodeRef(const Arena& arena, Offset off) : h_(arena.At<const CollisionHeader>(off)) {}
  std::uint32_t count() const { return h_->count; }
  const Entry* entries() const { return reinterpret_cast<const Entry*>(h_ + 1); }
  std::uint64_t bytes() const { return CollisionNodeBytes(count()); }

 private:
  const CollisionHeader* h_;
};

// Byte size of the node at `off`, which lies at depth `level`.
inline std::uint64_t NodeBytesAt(const Arena& arena, Offset off, int level) {
  return level == kCollisionLevel ? CollisionNodeRef(arena, off).bytes()
                                  : BitmapNodeRef(arena, off).bytes();
}

// One version of a map; a version is identified by the offset of its record. The null offset
// is also accepted everywhere as "the empty map, version 0". root_node is 0 when empty.
// Immutable once written (a commit writes it before it can be published), except the
// kObservedBit of `observed`.
//
// Three widths. A record written by a format-4 or later build is at least 48 bytes and says so
// with kWideRecordBit in `observed` (set when written, never changed); a record without it is
// format 3's 32 bytes (a file upgraded from format 3 still holds them as the current versions of
// its atoms) and reads as tag 0, no combining table. Since format 5, a wide record with
// kCombineTableBit is followed by `combine_entries` CombineEntry records (its combining table,
// docs/design.md "Combining"): 48 + 64 n bytes. Its width, like every block's size, is
// recomputable from its content (VersionRecordBytes), which is what lets `atomap upgrade` take a
// format-3 file forward without rewriting a record.
struct VersionRecord {
  Offset root_node;
  std::uint64_t entry_count;
  std::uint64_t version_number;
  // kObservedBit: 0 when written; set (never cleared) by a writer that read this version as an
  // atom's current value, before its root CAS (intent/intent_record.h). Written while readers
  // read the record. kWideRecordBit: the record is at least 48 bytes (above); kCombineTableBit:
  // a combining table follows it.
  SharedU64 observed;
  // Since format 4. A word the writer sets for its own use (Transaction::set_tag: the stream
  // sequence a replication follower applied, say); a commit carries its base's tag forward
  // unless the transaction set another. 0 in an atom's first version.
  std::uint64_t tag;
  // Since format 5 (format 4 reserved the word and wrote 0): with kCombineTableBit, how many
  // CombineEntry records follow the record; otherwise 0.
  std::uint64_t combine_entries;
};
static_assert(offsetof(VersionRecord, observed) == 24);
static_assert(offsetof(VersionRecord, tag) == 32);
static_assert(offsetof(VersionRecord, combine_entries) == 40);
static_assert(sizeof(VersionRecord) == 48);

// One entry of a version's combining table: a posted batch that this version or an ancestor
// applied (or refused), kept until its poster has read the outcome (atom/combine.h says who
// writes and drops entries, and why that makes a batch apply exactly once).
struct CombineEntry {
  std::uint32_t slot;        // the poster's writer slot
  std::uint8_t op_count;     // ops in the batch, <= kMaxCombinedOps
  std::uint8_t status;       // CombineStatus
  std::uint8_t refused_op;   // kRefused: the op whose error refused the batch
  std::uint8_t reserved;     // 0
  std::uint16_t matched;     // bit i: op i was a compare-and-set that matched
  std::uint16_t existed;     // bit i: op i found its key
  std::uint32_t reserved2;   // 0
  std::uint64_t seq;         // the poster's sequence number of the batch
  Offset version;            // the record of the version that applied it; 0: this record.
                   // Only its poster (pinned) follows it: it may outlive the block
  std::uint64_t values[4];  // op i's new integer, for an add
};
inline constexpr std::uint32_t kMaxCombinedOps = 4;
static_assert(sizeof(CombineEntry::values) / sizeof(std::uint64_t) == kMaxCombinedOps);
static_assert(sizeof(CombineEntry) == 64);
static_assert(offsetof(CombineEntry, seq) == 16);
static_assert(offsetof(CombineEntry, version) == 24);

// A commit's table, as the transaction carries it: a few entries (one per poster in flight) are
// the usual case, kept inline.
using CombineTable = absl::InlinedVector<CombineEntry, 4>;

enum class CombineStatus : std::uint8_t {
  kApplied = 0,  // the batch is in the version `version`
  kRefused = 1,  // op `refused_op` failed (an add on a value that is not 8 bytes): nothing applied
  kWithdrawn = 2,  // its poster met an error and withdrew it: nothing applied, and never will be
};

inline constexpr std::uint64_t kObservedBit = 1;
inline constexpr std::uint64_t kWideRecordBit = 2;
inline constexpr std::uint64_t kCombineTableBit = 4;
// Format 3's record: the fields up to `observed`.
inline constexpr std::uint64_t kNarrowVersionRecordBytes = offsetof(VersionRecord, tag);
// More entries than any slot table can have posters (SlotTable's capacity is a u32, but a table
// never holds more than one entry per live slot): a larger count is damage.
inline constexpr std::uint64_t kMaxCombineEntries = std::uint64_t{1} << 16;

// The byte size of a record whose `observed` word reads `observed_word` and whose
// `combine_entries` word (read only when the record is wide) reads `entries`. A count past
// kMaxCombineEntries gives a size no block has, so that bounds checks refuse it.
constexpr std::uint64_t VersionRecordBytes(std::uint64_t observed_word, std::uint64_t entries) {
  if ((observed_word & kWideRecordBit) == 0) return kNarrowVersionRecordBytes;
  if ((observed_word & kCombineTableBit) == 0) return sizeof(VersionRecord);
  if (entries > kMaxCombineEntries) entries = kMaxCombineEntries + 1;
  return sizeof(VersionRecord) + entries * sizeof(CombineEntry);
}
static_assert(VersionRecordBytes(kWideRecordBit | kObservedBit, 7) == 48);
static_assert(VersionRecordBytes(kObservedBit, 7) == 32);
static_assert(VersionRecordBytes(kWideRecordBit | kCombineTableBit, 2) == 176);

// Whether a record whose `observed` word reads `observed_word` has a combining table: only a
// wide record can (a narrow one's bit 2 is damage, and its block ends before the count).
constexpr bool HasCombineTable(std::uint64_t observed_word) {
  return (observed_word & kWideRecordBit) != 0 && (observed_word & kCombineTableBit) != 0;
}

// The byte size of the record at `version` (a block of the mapping). REQUIRES: its first
// kNarrowVersionRecordBytes are mapped, and all 48 if it says it is wide (a bounds-checking
// caller tests those first, as Bounded::Record does).
inline std::uint64_t VersionRecordBytesAt(const Arena& arena, Offset version) {
  const auto* record = arena.At<const VersionRecord>(version);
  const std::uint64_t observed = record->observed.LoadRelaxed();
  return VersionRecordBytes(observed, HasCombineTable(observed) ? record->combine_entries : 0);
}

// The combining table that follows the record at `version`: empty unless it has one.
// REQUIRES: the record's VersionRecordBytesAt bytes are a block of the mapping.
inline const CombineEntry* CombineEntriesAt(const Arena& arena, Offset version,
                                            std::uint64_t* count) {
  const auto* record = arena.At<const VersionRecord>(version);
  const std::uint64_t observed = record->observed.LoadRelaxed();
  *count = HasCombineTable(observed) ? record->combine_entries : 0;
  if (*count > kMaxCombineEntries) *count = 0;  // damage; bounds-checked readers refuse it
  return reinterpret_cast<const CombineEntry*>(record + 1);
}

}  // namespace atomap::internal::hamt

#endif  // ATOMAP_SRC_HAMT_NODE_H_

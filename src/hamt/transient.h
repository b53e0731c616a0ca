// TrieTransaction: a transient edit of one base version, producing a new version on Commit.
//
// Ownership
//  - The first touch of a base node copies it into a block the transaction owns; later touches
//    of an owned block edit it in place (or move it to a new block when its size changes). Bulk
//    building therefore costs no path copy per entry.
//  - `owned_` (process-local) maps every block this attempt allocated and still uses to its byte
//    count: it is both "what to free on Abort" and "what a failed publication must free".
//  - A block of the base that the new version no longer reaches (a copied node, a dropped blob,
//    the base's version record) is never freed here: it goes to the replaced list, for the
//    atoms layer to retire through epochs once the new version is published.
//  - The base version is never written: only owned blocks are.
//  - Sets into an empty trie are deferred (deferred_sets.h): held in process memory and built
//    bottom up, all at once (SetMany's build), by the next call that is not a Set or SetMany:
//    a Get, Erase, size, CheckPath or Commit. So their errors other than InvalidArgument (a full
//    domain) come from that call, and the transaction is then aborted as for any other.
//
// Block identity
//  An owned block is written and freed only as the size it was allocated as (owned_'s record),
//  never as a size read from its content. A healthy base never reaches an owned block (it was
//  published before the transaction allocated anything), but a damaged one can: a flipped
//  offset that lands on a block that was free, which this transaction then allocated for
//  something else (a blob, a node of another size). Reading that block's content as a node
//  gives some other size; writing or freeing it as that size would overrun the block or put
//  it on the wrong free list, and the allocator's next pop would read a neighbour's bytes as
//  its link. The same flip can make a base node a free block at the head of its list: copying
//  it on first touch then allocates that very block, and releasing the original would free
//  the copy, which the caller goes on to write (into a free block: over its link). Both
//  meetings are refused as DataLoss (like a failed bounds check, they abort the transaction);
//  the bounds checks cannot see them, as every block they are shown is a real one. What no
//  check here sees is a base that reaches a block this write allocated as the size it is read
//  as: the writes then stay inside the block, but a publication would carry the damage.
//
// Errors
//  - InvalidArgument (key or value too long): nothing changed, the transaction stays usable.
//  - Any allocation failure (ResourceExhausted) in the middle of an operation aborts the whole
//    transaction: everything it allocated is freed, the base is intact, and every later call
//    returns FailedPrecondition (Get then reads the base). A half-edited owned trie is never
//    exposed.
//  - With ctx.verify_reads (Options::verify_reads), a write reads the base only after checking
//    it: Set and Erase first walk the key's path bounds-checked (read_bounds.h: each node on it,
//    the entry in the key's slot, every entry of a collision node at its end: all that the edit
//    reads of the base), and damage there is DataLoss naming the file, and aborts the
//    transaction like a failed allocation (nothing is copied from, or released into, the damaged
//    part). Get reads checked (nullopt at damage; CheckedGet returns it). The base's version
//    record was checked by whoever loaded it (Atom::load). Nodes the transaction owns are checked
//    on the way too: they are whole blocks of the mapping, so they pass. Without the flag the
//    edits trust the base (one predictable branch per call).
//
// Thread safety: one thread at a time (a transaction is a single writer). Not shared between
// processes: nothing it owns is reachable from any published version before Commit.
#ifndef ATOMAP_SRC_HAMT_TRANSIENT_H_
#define ATOMAP_SRC_HAMT_TRANSIENT_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "hamt/block_ledger.h"
#include "hamt/deferred_sets.h"
#include "hamt/node.h"
#include "hamt/owned_blocks.h"
#include "hamt/trie_context.h"

namespace atomap::internal::hamt {

using internal::Block;
class BitmapImage;  // node_image.h

struct CommitResult {
  Offset version = kNullOffset;    // the new version's record
  std::vector<Block> replaced;     // base blocks the new version no longer reaches: retire them
  std::vector<Block> allocated;    // blocks new in `version` (record included): free them if
                                 // the new version is never published
  // With a ledger: it holds `allocated` at [0, ledger_owned) and `replaced` after.
  BlockLedger* ledger = nullptr;
  std::uint64_t ledger_owned = 0;
};

// What a transaction borrows from its writer for its whole life, released when it is destroyed:
// for the atoms layer, a pin (so the base cannot be freed and reused under it) and, when one is
// free, a ledger for its blocks (block_ledger.h; the atoms layer's is a lane in the writer's slot).
class TransactionHold {
 public:
  virtual ~TransactionHold() = default;
  // True in a child of fork() that inherited the transaction: it must write nothing (its blocks
  // and ledger are the parent's).
  virtual bool inert() const { return false; }
  // Where the transaction records its blocks; null: in process memory only.
  virtual BlockLedger* ledger() { return nullptr; }
};

// Where each hash fragment's group of a bulk build's range starts (bulk_build.cc); [32] = the end.
using FragmentStarts = std::array<std::uint32_t, kBranching + 1>;

// Validates sizes; OK or InvalidArgument naming the limit.
absl::Status CheckKeyValue(std::string_view key, std::string_view value);

class TrieTransaction {
 public:
  // With a ledger in `hold`, every block the transaction owns is recorded there as well.
  TrieTransaction(const TrieContext& ctx, Offset base,
                  std::unique_ptr<TransactionHold> hold = nullptr);
  ~TrieTransaction();  // aborts unless committed
  TrieTransaction(const TrieTransaction&) = delete;
  TrieTransaction& operator=(const TrieTransaction&) = delete;

  absl::Status Set(std::string_view key, std::string_view value);
  // Sets every entry, in order (a later duplicate key wins). All-or-nothing for InvalidArgument
  // (every size is checked first). On an empty trie with at least kBulkBuildMin entries, builds
  // bottom up (bulk_build.cc): entries partitioned by hash fragment, each node written once at
  // its final size; otherwise one Set per entry.
  absl::Status SetMany(absl::Span<const std::pair<std::string_view, std::string_view>> entries);
  static constexpr std::size_t kBulkBuildMin = 64;
  // Deferred sets beyond this much process memory are built at once, and the Sets after them
  // edit the built trie: a loop of Sets larger than memory stays possible.
  static constexpr std::uint64_t kMaxDeferredBytes = std::uint64_t{1} << 30;
  // For tests: another limit than kMaxDeferredBytes.
  void SetMaxDeferredBytes(std::uint64_t bytes) { max_deferred_bytes_ = bytes; }
  // True if the key was present.
  absl::StatusOr<bool> Erase(std::string_view key);
  // Sees this transaction's own writes. The view lives until the next write to this key or the
  // end of the transaction (or, after Commit, as long as the new version).
  // Get and CheckedGet settle deferred sets first (see "Ownership"): they are not const.
  std::optional<std::string_view> Get(std::string_view key);
  // Get, bounds-checked whatever the options: DataLoss naming the file for damage on the way.
  absl::StatusOr<std::optional<std::string_view>> CheckedGet(std::string_view key);
  // What Set and Erase run first with verify_reads: OK, or DataLoss (the transaction aborted).
  absl::Status CheckPath(std::string_view key);

  std::uint64_t size() {
    (void)Settle();  // an error aborts the transaction: size_ is then the base's
    return size_;
  }
  // The tag the new version will carry (VersionRecord::tag): the base's until SetTag.
  std::uint64_t tag() const { return tag_; }
  void SetTag(std::uint64_t tag) { tag_ = tag; }
  // The combining table the new version will carry (node.h CombineEntry; atom/combine.h owns
  // what it means): the base's, each entry's `version` naming the version that applied it,
  // until the caller edits it. Carried whole by default: dropping an entry is the atom layer's
  // decision (combine.h C4), never the trie's.
  CombineTable& combine_entries() { return combine_; }
  Offset base() const { return base_; }
  Offset root() {  // the current (possibly owned) root node
    (void)Settle();
    return root_;
  }
  bool open() const { return state_ == State::kOpen; }
  // OK while open; FailedPrecondition saying why not.
  absl::Status CheckOpen() const;
  const TrieContext& context() const { return ctx_; }

  // Writes the new version record and, with a ledger, stages the replaced blocks there. The
  // transaction is finished afterwards (the hold stays until it is destroyed).
  absl::StatusOr<CommitResult> Commit();
  // Frees everything this transaction allocated; the base is untouched. Idempotent.
  void Abort();

 private:
  enum class State { kOpen, kCommitted, kAborted };

  // Runs an edit of the root; on failure aborts the transaction.
  absl::Status Apply(absl::StatusOr<Offset> new_root);
  // Builds the deferred sets (bottom up, into the empty trie) and stops deferring. OK if there
  // were none; otherwise the build's error, the transaction aborted.
  absl::Status Settle();
  // Settle, once the deferred sets hold max_deferred_bytes_ or more; otherwise OK.
  absl::Status SettleIfLarge() {
    return deferred_.memory_bytes() < max_deferred_bytes_ ? absl::OkStatus() : Settle();
  }

  // Blocks. `bytes` is what the caller read the block as (a node's size from its content, a
  // blob's from its entry); for an owned block it must be what the block was allocated as
  // ("Block identity"), else the call fails with DataLoss and nothing is freed or written.
  absl::StatusOr<Offset> Allocate(std::uint64_t bytes);
  // Frees the block if owned; otherwise lists it as replaced.
  absl::Status Release(Offset block, std::uint64_t bytes);
  // True if owned (as `bytes`), false if the base's.
  absl::StatusOr<bool> OwnsAs(Offset block, std::uint64_t bytes);
  // Release(old) for the block `fresh` that replaces it; DataLoss if they are one block.
  absl::Status Replace(Offset old, std::uint64_t old_bytes, Offset fresh);
  // DataLoss: the base reaches an owned block (see "Block identity"), `how` says as what.
  absl::Status ReachedOwned(Offset block, std::string_view how) const;
  absl::Status Misowned(Offset block, std::uint64_t read_as, std::uint64_t allocated) const;
  void Unrecord(std::uint64_t ledger_position);  // drops a ledger record, keeping owned_ in step
  absl::StatusOr<std::uint64_t> MakeWord(std::string_view bytes);
  absl::Status ReleaseWord(std::uint64_t word, std::uint32_t len);
  absl::Status ReleaseEntry(const Entry& e);  // its key's and its value's words
  absl::StatusOr<Entry> MakeEntry(std::string_view key, std::string_view value);
  absl::StatusOr<Offset> Own(Offset node, int level);  // copy on first touch
  template <class Image>
  absl::StatusOr<Offset> Store(Offset old, int level, const Image& image);

  // Recursive edits; each returns the node's new offset (kNullOffset: the node is gone).
  absl::StatusOr<Offset> SetIn(Offset node, int level, std::uint64_t hash, std::string_view key,
                               std::string_view value, bool* added);
  absl::StatusOr<Offset> SetInCollision(Offset node, std::string_view key, std::string_view value,
                                        bool* added);
  absl::StatusOr<Offset> SetChild(Offset node, int level, Bitmap bit, Offset child);
  absl::StatusOr<Offset> MakeSubtree(const Entry& a, std::uint64_t hash_a, const Entry& b,
                                     std::uint64_t hash_b, int level);
  absl::StatusOr<Offset> EraseIn(Offset node, int level, std::uint64_t hash, std::string_view key,
                                 bool* removed);
  absl::StatusOr<Offset> EraseInCollision(Offset node, std::string_view key, bool* removed);
  // Bottom-up build (bulk_build.cc).
  struct BuildRecord {
    std::uint64_t key;  // LevelOrderKey of the key's hash (bits.h)
    Entry entry;  // made (blobs allocated) in input order; partitions keep that order
  };
  // Ranges this short are sorted by key and built without partitioning (bulk_build.cc).
  static constexpr std::ptrdiff_t kSortedRangeMax = 16;
  // A built range: a node, or one entry its parent keeps inline (node.h N4).
  struct Built {
    Offset node = kNullOffset;
    bool single = false;
    Entry entry{};
  };
  using EntrySpan = absl::Span<const std::pair<std::string_view, std::string_view>>;
  // A build's entries as BuildAll reads them (DeferredSets is the other kind).
  struct SpanSource {
    EntrySpan entries;
    std::size_t size() const { return entries.size(); }
    std::string_view key(std::size_t i) const { return entries[i].first; }
    std::string_view value(std::size_t i) const { return entries[i].second; }
  };
  // Whether n entries can be built bottom up (records index them with 32 bits).
  static bool Buildable(std::size_t n) { return n >= kBulkBuildMin && n <= UINT32_MAX; }
  // REQUIRES: the trie is empty. Source: size(), key(i), value(i).
  template <class Source>
  absl::StatusOr<Offset> BuildAll(const Source& entries);
  absl::StatusOr<Built> BuildRange(BuildRecord* begin, BuildRecord* end, BuildRecord* scratch,
                                   int level);
  // [begin, end) sorted by key (B4).
  absl::StatusOr<Built> BuildSorted(BuildRecord* begin, BuildRecord* end, int level);
  // [groups, groups + start[32]) partitioned by the fragment at `level` (group f at
  // [start[f], start[f + 1])); `scratch` is as long.
  // With `shared_scratch`, every group's scratch starts at `scratch` (B5: the root's groups).
  absl::StatusOr<Built> BuildPartitioned(BuildRecord* groups, BuildRecord* scratch,
                                         const FragmentStarts& start, int level,
                                         bool shared_scratch = false);
  // Adds one fragment's group [begin, end) to `image` under `bit`: its entry, or the child
  // built below `level` (by BuildSorted when `scratch` is null, else by BuildRange).
  absl::Status AddGroup(BitmapImage& image, Bitmap bit, BuildRecord* begin, BuildRecord* end,
                        BuildRecord* scratch, int level);
  // The node `image` makes at `level`, or its single entry for the parent (B1).
  absl::StatusOr<Built> FinishNode(BitmapImage& image, int level);
  absl::StatusOr<Built> BuildCollision(BuildRecord* begin, BuildRecord* end);
  // If `child` is a single entry with no children, moves that entry into its parent's slot.
  absl::StatusOr<Offset> InlineIfSingle(Offset node, int level, Bitmap bit, Offset child);

  TrieContext ctx_;
  Offset base_;
  std::uint64_t base_version_number_;
  Offset root_;
  std::uint64_t size_;
  std::uint64_t tag_;
  CombineTable combine_;
  State state_ = State::kOpen;
  OwnedBlocks owned_;
  DeferredSets deferred_;
  bool deferring_;  // Set defers (the trie is still empty and nothing else was called)
  std::uint64_t max_deferred_bytes_ = kMaxDeferredBytes;
  absl::Status failure_;  // the error that aborted the transaction, if one did (CheckOpen)
  bool building_ = false;  // BuildAll runs: Allocate records in owned_'s build order
  std::unique_ptr<TransactionHold> hold_;
  BlockLedger* ledger_;  // hold_'s ledger, or null
  std::uint64_t ledger_room_ = 0;  // records that fit in ledger_ without a Reserve (a lower bound)
  std::vector<Block> replaced_;
};

}  // namespace atomap::internal::hamt

#endif  // ATOMAP_SRC_HAMT_TRANSIENT_H_

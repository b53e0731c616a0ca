#include "hamt/transient.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/crash_point.h"
#include "hamt/entry.h"
#include "hamt/node_image.h"
#include "hamt/read.h"
#include "hamt/read_bounds.h"

namespace atomap::internal::hamt {
namespace {

bool KeyLess(const Arena& arena, const Entry& e, std::string_view key) {
  return KeyOf(arena, e) < key;
}

}  // namespace

absl::Status CheckKeyValue(std::string_view key, std::string_view value) {
  if (key.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("key of %d bytes is longer than the maximum %d", key.size(), kMaxKeyBytes));
  }
  if (value.size() > Allocator::kMaxBlockBytes) {
    return absl::InvalidArgumentError(
        absl::StrFormat("value of %d bytes is longer than the maximum %d", value.size(),
                        Allocator::kMaxBlockBytes));
  }
  return absl::OkStatus();
}

TrieTransaction::TrieTransaction(const TrieContext& ctx, Offset base,
                                 std::unique_ptr<TransactionHold> hold)
    : ctx_(ctx), base_(base), hold_(std::move(hold)), ledger_(hold_ ? hold_->ledger() : nullptr) {
  const VersionRecord record = ReadVersion(*ctx_.arena, base);
  base_version_number_ = record.version_number;
  tag_ = record.tag;
  if (record.combine_entries != 0) {
    std::uint64_t count = 0;
    const CombineEntry* entries = CombineEntriesAt(*ctx_.arena, base, &count);
    combine_.assign(entries, entries + count);
    for (CombineEntry& e : combine_) {
      if (e.version == kNullOffset) e.version = base;  // "this record" named from the next one
    }
  }
  root_ = record.root_node;
  size_ = record.entry_count;
  deferring_ = root_ == kNullOffset;
}

TrieTransaction::~TrieTransaction() { Abort(); }

absl::Status TrieTransaction::CheckOpen() const {
  if (state_ == State::kOpen) return absl::OkStatus();
  if (state_ == State::kCommitted) {
    return absl::FailedPreconditionError("transaction already committed");
  }
  if (!failure_.ok()) {  // say why: it may have come from a call that could not return it
    return absl::FailedPreconditionError(
        absl::StrCat("transaction aborted after an error: ", failure_.ToString()));
  }
  return absl::FailedPreconditionError("transaction aborted (after an error or by Abort)");
}

absl::Status TrieTransaction::Apply(absl::StatusOr<Offset> new_root) {
  if (!new_root.ok()) {
    failure_ = new_root.status();
    Abort();
    return new_root.status();
  }
  root_ = *new_root;
  return absl::OkStatus();
}

// ---- blocks ------------------------------------------------------------------------------

absl::StatusOr<Offset> TrieTransaction::Allocate(std::uint64_t bytes) {
  if (ledger_ != nullptr && ledger_room_ == 0) {
    absl::StatusOr<std::uint64_t> room = ledger_->Reserve(1);
    if (!room.ok()) return room.status();
    ledger_room_ = *room;
  }
  absl::StatusOr<Offset> off = ctx_.allocator->Allocate(ctx_.cache, bytes);
  if (!off.ok()) return off;
  ATOMAP_CRASH_POINT(kBuildAfterAllocate);  // (block_ledger.h): allocated, not yet recorded
  std::uint64_t index = 0;
  if (ledger_ != nullptr) {
    index = ledger_->Record(Block{*off, bytes});
    --ledger_room_;
  }
  if (building_) {
    owned_.AddFromBuild(*off, OwnedBlocks::Owned{bytes, index});
  } else {
    owned_.Add(*off, OwnedBlocks::Owned{bytes, index});
  }
  return off;
}

void TrieTransaction::Unrecord(std::uint64_t ledger_position) {
  if (ledger_ == nullptr) return;
  const Offset moved = ledger_->Forget(ledger_position);
  if (moved != kNullOffset) owned_.Find(moved)->ledger_position = ledger_position;
}

absl::Status TrieTransaction::Release(Offset block, std::uint64_t bytes) {
  const OwnedBlocks::Owned* owned = owned_.Find(block);
  if (owned == nullptr) {
    replaced_.push_back(Block{block, bytes});
    return absl::OkStatus();
  }
  if (owned->bytes != bytes) return Misowned(block, bytes, owned->bytes);
  const std::uint64_t ledger_position = owned->ledger_position;
  owned_.Erase(block);
  Unrecord(ledger_position);
  ATOMAP_CRASH_POINT(kBuildAfterRelease);  // (block_ledger.h): forgotten, not yet freed
  ctx_.allocator->Free(ctx_.cache, block, bytes);
  return absl::OkStatus();
}

absl::StatusOr<bool> TrieTransaction::OwnsAs(Offset block, std::uint64_t bytes) {
  const OwnedBlocks::Owned* owned = owned_.Find(block);
  if (owned == nullptr) return false;
  if (owned->bytes != bytes) return Misowned(block, bytes, owned->bytes);
  return true;
}

absl::Status TrieTransaction::ReachedOwned(Offset block, std::string_view how) const {
  return absl::DataLossError(absl::StrFormat(
      "%s: damaged map: the base reaches a block that this write allocated (offset %d, %s): a "
      "damaged offset into a block that was free",
      ctx_.arena->path(), block, how));
}

absl::Status TrieTransaction::Misowned(Offset block, std::uint64_t read_as,
                                       std::uint64_t allocated) const {
  return ReachedOwned(block,
                      absl::StrFormat("read as %d bytes, allocated as %d", read_as, allocated));
}

absl::Status TrieTransaction::Replace(Offset old, std::uint64_t old_bytes, Offset fresh) {
  if (fresh == old) return ReachedOwned(old, "as the block it is copied into");
  return Release(old, old_bytes);
}

absl::StatusOr<std::uint64_t> TrieTransaction::MakeWord(std::string_view bytes) {
  if (IsInline(static_cast<std::uint32_t>(bytes.size()))) return InlineWord(bytes);
  absl::StatusOr<Offset> blob = Allocate(bytes.size());
  if (!blob.ok()) return blob.status();
  std::memcpy(ctx_.arena->At<char>(*blob), bytes.data(), bytes.size());
  return *blob;
}

absl::Status TrieTransaction::ReleaseWord(std::uint64_t word, std::uint32_t len) {
  return IsInline(len) ? absl::OkStatus() : Release(word, len);
}

absl::Status TrieTransaction::ReleaseEntry(const Entry& e) {
  absl::Status s = ReleaseWord(e.key_word, e.key_len);
  return s.ok() ? ReleaseWord(e.value_word, e.value_len) : s;
}

absl::StatusOr<Entry> TrieTransaction::MakeEntry(std::string_view key, std::string_view value) {
  absl::StatusOr<std::uint64_t> key_word = MakeWord(key);
  if (!key_word.ok()) return key_word.status();
  absl::StatusOr<std::uint64_t> value_word = MakeWord(value);
  if (!value_word.ok()) return value_word.status();  // the key blob is owned: Abort frees it
  return Entry{static_cast<std::uint32_t>(key.size()), static_cast<std::uint32_t>(value.size()),
               *key_word, *value_word};
}

absl::StatusOr<Offset> TrieTransaction::Own(Offset node, int level) {
  const std::uint64_t bytes = NodeBytesAt(*ctx_.arena, node, level);
  absl::StatusOr<bool> owned = OwnsAs(node, bytes);
  if (!owned.ok()) return owned.status();
  if (*owned) return node;
  absl::StatusOr<Offset> copy = Allocate(bytes);
  if (!copy.ok()) return copy.status();
  std::memcpy(ctx_.arena->At<char>(*copy), ctx_.arena->At<const char>(node), bytes);
  if (absl::Status s = Replace(node, bytes, *copy); !s.ok()) return s;
  return *copy;
}

template <class Image>
absl::StatusOr<Offset> TrieTransaction::Store(Offset old, int level, const Image& image) {
  const std::uint64_t bytes = image.bytes();
  const std::uint64_t old_bytes = old == kNullOffset ? 0 : NodeBytesAt(*ctx_.arena, old, level);
  if (old != kNullOffset) {
    absl::StatusOr<bool> owned = OwnsAs(old, old_bytes);
    if (!owned.ok()) return owned.status();
    if (*owned && old_bytes == bytes) {
      image.StoreTo(ctx_.arena->At<char>(old));
      return old;
    }
  }
  absl::StatusOr<Offset> fresh = Allocate(bytes);
  if (!fresh.ok()) return fresh.status();
  image.StoreTo(ctx_.arena->At<char>(*fresh));
  if (old != kNullOffset) {
    if (absl::Status s = Replace(old, old_bytes, *fresh); !s.ok()) return s;
  }
  return *fresh;
}

// ---- set ---------------------------------------------------------------------------------

absl::Status TrieTransaction::CheckPath(std::string_view key) {
  absl::Status s = CheckedGet(key).status();  // settles deferred sets first
  if (!s.ok()) Abort();
  return s;
}

absl::Status TrieTransaction::Set(std::string_view key, std::string_view value) {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  if (absl::Status s = CheckKeyValue(key, value); !s.ok()) return s;
  if (deferring_) {  // into the empty trie: there is no path to check
    deferred_.Add(key, value);
    return SettleIfLarge();
  }
  if (ctx_.verify_reads) [[unlikely]] {
    if (absl::Status s = CheckPath(key); !s.ok()) return s;
  }
  bool added = false;
  absl::Status s = Apply(SetIn(root_, 0, ctx_.hasher(key), key, value, &added));
  if (s.ok() && added) ++size_;
  return s;
}

absl::StatusOr<Offset> TrieTransaction::SetIn(Offset node, int level, std::uint64_t hash,
                                              std::string_view key, std::string_view value,
                                              bool* added) {
  if (level == kCollisionLevel) return SetInCollision(node, key, value, added);
  const Bitmap bit = BitFor(Fragment(hash, level));
  if (node == kNullOffset) {  // only for the root of an empty map
    absl::StatusOr<Entry> e = MakeEntry(key, value);
    if (!e.ok()) return e.status();
    BitmapImage image;
    image.InsertEntry(bit, *e);
    *added = true;
    return Store(kNullOffset, level, image);
  }
  BitmapNodeRef n(*ctx_.arena, node);
  if (n.nodemap() & bit) {
    const Offset child = n.child_at(bit);
    absl::StatusOr<Offset> new_child = SetIn(child, level + 1, hash, key, value, added);
    if (!new_child.ok() || *new_child == child) return new_child.ok() ? node : new_child;
    return SetChild(node, level, bit, *new_child);
  }
  BitmapImage image = BitmapImage::Load(*ctx_.arena, node);
  if (n.datamap() & bit) {
    Entry& existing = image.entry(bit);
    if (ProbeKey(key).Matches(*ctx_.arena, existing)) {
      if (ValueOf(*ctx_.arena, existing) == value) return node;  // no change: keep sharing
      absl::StatusOr<std::uint64_t> word = MakeWord(value);
      if (!word.ok()) return word.status();
      if (absl::Status s = ReleaseWord(existing.value_word, existing.value_len); !s.ok()) return s;
      existing.value_word = *word;
      existing.value_len = static_cast<std::uint32_t>(value.size());
      return Store(node, level, image);
    }
    absl::StatusOr<Entry> e = MakeEntry(key, value);
    if (!e.ok()) return e.status();
    const Entry moved = existing;
    absl::StatusOr<Offset> sub =
        MakeSubtree(moved, ctx_.hasher(KeyOf(*ctx_.arena, moved)), *e, hash, level + 1);
    if (!sub.ok()) return sub.status();
    image.RemoveEntry(bit);
    image.InsertChild(bit, *sub);
    *added = true;
    return Store(node, level, image);
  }
  absl::StatusOr<Entry> e = MakeEntry(key, value);
  if (!e.ok()) return e.status();
  image.InsertEntry(bit, *e);
  *added = true;
  return Store(node, level, image);
}

absl::StatusOr<Offset> TrieTransaction::SetChild(Offset node, int level, Bitmap bit, Offset child) {
  absl::StatusOr<Offset> owned = Own(node, level);
  if (!owned.ok()) return owned;
  // An owned node: the one place a node is written other than by Store (same size, one word).
  auto* header = ctx_.arena->At<NodeHeader>(*owned);
  reinterpret_cast<Offset*>(header + 1)[IndexOf(header->nodemap, bit)] = child;
  return owned;
}

absl::StatusOr<Offset> TrieTransaction::SetInCollision(Offset node, std::string_view key,
                                                       std::string_view value, bool* added) {
  CollisionImage image = CollisionImage::Load(*ctx_.arena, node);
  const Arena& arena = *ctx_.arena;
  auto at =
      std::lower_bound(image.entries.begin(), image.entries.end(), key,
                       [&](const Entry& e, std::string_view k) { return KeyLess(arena, e, k); });
  if (at != image.entries.end() && KeyOf(arena, *at) == key) {
    if (ValueOf(arena, *at) == value) return node;
    absl::StatusOr<std::uint64_t> word = MakeWord(value);
    if (!word.ok()) return word.status();
    if (absl::Status s = ReleaseWord(at->value_word, at->value_len); !s.ok()) return s;
    at->value_word = *word;
    at->value_len = static_cast<std::uint32_t>(value.size());
    return Store(node, kCollisionLevel, image);
  }
  absl::StatusOr<Entry> e = MakeEntry(key, value);
  if (!e.ok()) return e.status();
  image.entries.insert(at, *e);
  *added = true;
  return Store(node, kCollisionLevel, image);
}

absl::StatusOr<Offset> TrieTransaction::MakeSubtree(const Entry& a, std::uint64_t hash_a,
                                                    const Entry& b, std::uint64_t hash_b,
                                                    int level) {
  if (level == kCollisionLevel) {
    CollisionImage image;
    const bool a_first = KeyOf(*ctx_.arena, a) < KeyOf(*ctx_.arena, b);
    image.entries = a_first ? std::vector<Entry>{a, b} : std::vector<Entry>{b, a};
    return Store(kNullOffset, level, image);
  }
  const Bitmap bit_a = BitFor(Fragment(hash_a, level));
  const Bitmap bit_b = BitFor(Fragment(hash_b, level));
  BitmapImage image;
  if (bit_a != bit_b) {
    image.InsertEntry(bit_a, a);
    image.InsertEntry(bit_b, b);
  } else {
    absl::StatusOr<Offset> child = MakeSubtree(a, hash_a, b, hash_b, level + 1);
    if (!child.ok()) return child;
    image.InsertChild(bit_a, *child);
  }
  return Store(kNullOffset, level, image);
}

// ---- erase -------------------------------------------------------------------------------

absl::StatusOr<bool> TrieTransaction::Erase(std::string_view key) {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  if (absl::Status s = Settle(); !s.ok()) return s;
  if (key.size() > kMaxKeyBytes) return false;  // cannot be present
  if (ctx_.verify_reads) [[unlikely]] {
    if (absl::Status s = CheckPath(key); !s.ok()) return s;
  }
  bool removed = false;
  if (absl::Status s = Apply(EraseIn(root_, 0, ctx_.hasher(key), key, &removed)); !s.ok()) {
    return s;
  }
  if (removed) --size_;
  return removed;
}

absl::StatusOr<Offset> TrieTransaction::EraseIn(Offset node, int level, std::uint64_t hash,
                                                std::string_view key, bool* removed) {
  if (node == kNullOffset) return node;
  if (level == kCollisionLevel) return EraseInCollision(node, key, removed);
  const Bitmap bit = BitFor(Fragment(hash, level));
  BitmapNodeRef n(*ctx_.arena, node);
  if (n.nodemap() & bit) {
    const Offset child = n.child_at(bit);
    absl::StatusOr<Offset> new_child = EraseIn(child, level + 1, hash, key, removed);
    if (!new_child.ok() || *new_child == child) return new_child.ok() ? node : new_child;
    return InlineIfSingle(node, level, bit, *new_child);
  }
  if (!(n.datamap() & bit) || !ProbeKey(key).Matches(*ctx_.arena, n.entry_at(bit))) return node;
  BitmapImage image = BitmapImage::Load(*ctx_.arena, node);
  const Entry gone = image.entry(bit);
  image.RemoveEntry(bit);
  *removed = true;
  if (image.empty()) {  // only the root can empty: a sub-node holds >= 2 entries (N4)
    if (absl::Status s = Release(node, n.bytes()); !s.ok()) return s;
    if (absl::Status s = ReleaseEntry(gone); !s.ok()) return s;
    return kNullOffset;
  }
  absl::StatusOr<Offset> stored = Store(node, level, image);
  if (!stored.ok()) return stored;
  if (absl::Status s = ReleaseEntry(gone); !s.ok()) return s;
  return stored;
}

absl::StatusOr<Offset> TrieTransaction::EraseInCollision(Offset node, std::string_view key,
                                                         bool* removed) {
  CollisionImage image = CollisionImage::Load(*ctx_.arena, node);
  const Arena& arena = *ctx_.arena;
  auto at = std::find_if(image.entries.begin(), image.entries.end(),
                         [&](const Entry& e) { return KeyOf(arena, e) == key; });
  if (at == image.entries.end()) return node;
  const Entry gone = *at;
  image.entries.erase(at);
  *removed = true;
  absl::StatusOr<Offset> stored = Store(node, kCollisionLevel, image);
  if (!stored.ok()) return stored;
  if (absl::Status s = ReleaseEntry(gone); !s.ok()) return s;
  return stored;
}

absl::StatusOr<Offset> TrieTransaction::InlineIfSingle(Offset node, int level, Bitmap bit,
                                                       Offset child) {
  const Arena& arena = *ctx_.arena;
  const Entry* single = nullptr;
  if (level + 1 == kCollisionLevel) {
    CollisionNodeRef c(arena, child);
    if (c.count() == 1) single = &c.entries()[0];
  } else {
    BitmapNodeRef c(arena, child);
    if (c.nodemap() == 0 && c.entry_count() == 1) single = &c.entries()[0];
  }
  if (single == nullptr) return SetChild(node, level, bit, child);
  BitmapImage image = BitmapImage::Load(arena, node);
  image.RemoveChild(bit);
  image.InsertEntry(bit, *single);
  absl::StatusOr<Offset> stored = Store(node, level, image);
  if (!stored.ok()) return stored;
  if (absl::Status s = Release(child, NodeBytesAt(arena, child, level + 1)); !s.ok()) return s;
  return stored;
}

// ---- read, commit, abort -----------------------------------------------------------------

std::optional<std::string_view> TrieTransaction::Get(std::string_view key) {
  (void)Settle();  // an error aborts the transaction: the read then sees the base
  if (ctx_.verify_reads) [[unlikely]] {
    absl::StatusOr<std::optional<std::string_view>> checked = CheckedGet(key);
    return checked.ok() ? *checked : std::nullopt;
  }
  const Entry* e = Find(*ctx_.arena, root_, ctx_.hasher(key), ProbeKey(key));
  if (e == nullptr) return std::nullopt;
  return ValueOf(*ctx_.arena, *e);
}

absl::StatusOr<std::optional<std::string_view>> TrieTransaction::CheckedGet(std::string_view key) {
  if (absl::Status s = Settle(); !s.ok()) return s;
  Bounded bounds(*ctx_.arena, ctx_.data_begin);
  const Entry* e = Find(bounds, root_, ctx_.hasher(key), ProbeKey(key));
  if (!bounds.ok()) return bounds.status();
  if (e == nullptr) return std::nullopt;
  return ValueOf(*ctx_.arena, *e);  // Find checked it (read.h)
}

absl::StatusOr<CommitResult> TrieTransaction::Commit() {
  if (absl::Status s = CheckOpen(); !s.ok()) return s;
  if (absl::Status s = Settle(); !s.ok()) return s;
  const std::uint64_t entries = combine_.size();
  absl::StatusOr<Offset> record = Allocate(sizeof(VersionRecord) + entries * sizeof(CombineEntry));
  if (!record.ok()) {
    Abort();
    return record.status();
  }
  auto* written = ctx_.arena->At<VersionRecord>(*record);
  *written = VersionRecord{root_, size_, base_version_number_ + 1, {}, tag_, entries};
  if (entries != 0) std::memcpy(written + 1, combine_.data(), entries * sizeof(CombineEntry));
  // Not observed; unpublished, so no race.
  written->observed.StoreRelaxed(kWideRecordBit | (entries != 0 ? kCombineTableBit : 0));
  if (base_ != kNullOffset) {
    replaced_.push_back(Block{base_, VersionRecordBytesAt(*ctx_.arena, base_)});
  }
  CommitResult result;
  if (ledger_ != nullptr) {
    result.ledger = ledger_;
    result.ledger_owned = ledger_->size();
    if (absl::Status s = ledger_->RecordReplaced(replaced_); !s.ok()) {
      Abort();
      return s;
    }
  }
  ATOMAP_CRASH_POINT(kCommitAfterRecord);
  result.version = *record;
  result.replaced = std::move(replaced_);
  result.allocated.reserve(owned_.size());
  owned_.ForEach([&](Offset offset, std::uint64_t bytes) {
    result.allocated.push_back(Block{offset, bytes});
  });
  owned_.clear();
  replaced_.clear();
  state_ = State::kCommitted;
  return result;
}

void TrieTransaction::Abort() {
  if (state_ != State::kOpen) return;
  deferred_.clear();
  deferring_ = false;
  if (hold_ != nullptr && hold_->inert()) {  // an inherited copy: the parent frees its blocks
    owned_.clear();
    replaced_.clear();
    state_ = State::kAborted;
    return;
  }
  if (ledger_ != nullptr) {
    ledger_->FreeAll();  // from the ledger's end, each record forgotten before its block is freed
  } else {
    owned_.ForEach([&](Offset offset, std::uint64_t bytes) {
      ctx_.allocator->Free(ctx_.cache, offset, bytes);
    });
  }
  owned_.clear();
  replaced_.clear();
  root_ = ReadVersion(*ctx_.arena, base_).root_node;
  size_ = ReadVersion(*ctx_.arena, base_).entry_count;
  state_ = State::kAborted;
}

}  // namespace atomap::internal::hamt

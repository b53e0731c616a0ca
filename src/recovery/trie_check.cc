#include "recovery/trie_check.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "hamt/bits.h"
#include "hamt/entry.h"
#include "hamt/node.h"

namespace atomap::internal {
namespace {

using hamt::Bitmap;
using hamt::CollisionHeader;
using hamt::Entry;
using hamt::NodeHeader;
using hamt::VersionRecord;

class VersionWalker {
 public:
  VersionWalker(CheckContext& ctx, const std::string& atom) : ctx_(ctx), atom_(atom) {}

  void Walk(Offset version) {
    // The narrow part first: its `observed` word says whether the record is wide (node.h).
    const auto* narrow = ctx_.Read<VersionRecord>(version, hamt::kNarrowVersionRecordBytes,
                                                  [&] { return atom_ + " version record"; });
    if (narrow == nullptr) return;
    const std::uint64_t observed = narrow->observed.LoadRelaxed();
    if ((observed & hamt::kCombineTableBit) != 0 && (observed & hamt::kWideRecordBit) == 0) {
      ctx_.Problem("%s: version record at offset %d is narrow yet says a combining table follows",
                   atom_, version);
    }
    const auto* wide = ctx_.Read<VersionRecord>(version, hamt::VersionRecordBytes(observed, 0),
                                                [&] { return atom_ + " version record"; });
    if (wide == nullptr) return;
    const std::uint64_t bytes = hamt::VersionRecordBytesAt(ctx_.arena, version);
    const auto* record =
        ctx_.Read<VersionRecord>(version, bytes, [&] { return atom_ + " version record"; });
    if (record == nullptr) return;
    CombineTable(version);
    ctx_.AddBlock(version, bytes, Holder::kReachable);
    const VersionRecord v{record->root_node, record->entry_count, record->version_number, {}, 0, 0};
    if (v.root_node != kNullOffset) Node(v.root_node, 0, 0);
    if (entries_ != v.entry_count) {
      ctx_.Problem("%s: version record at offset %d says %d entries, the trie holds %d", atom_,
                   version, v.entry_count, entries_);
    }
  }

 private:
  // The combining table after the record (node.h CombineEntry): each entry well formed, one per
  // slot. REQUIRES: the record's whole block was read plausibly.
  void CombineTable(Offset version) {
    std::uint64_t count = 0;
    const hamt::CombineEntry* entries = hamt::CombineEntriesAt(ctx_.arena, version, &count);
    absl::flat_hash_set<std::uint32_t> slots;
    for (std::uint64_t i = 0; i < count; ++i) {
      const hamt::CombineEntry& e = entries[i];
      const bool refused = e.status == static_cast<std::uint8_t>(hamt::CombineStatus::kRefused);
      if (e.op_count == 0 || e.op_count > hamt::kMaxCombinedOps ||
          e.status > static_cast<std::uint8_t>(hamt::CombineStatus::kWithdrawn) ||
          (refused && e.refused_op >= e.op_count) || e.reserved != 0 || e.reserved2 != 0) {
        ctx_.Problem("%s: version record at offset %d: combining entry %d (slot %d) is malformed",
                     atom_, version, i, e.slot);
      }
      if (!slots.insert(e.slot).second) {
        ctx_.Problem("%s: version record at offset %d: two combining entries for slot %d", atom_,
                     version, e.slot);
      }
    }
  }

  // `prefix`: the hash bits the path to this node fixed (levels below `level`).
  void Node(Offset off, int level, std::uint64_t prefix) {
    if (!visited_.insert(off).second) {
      ctx_.Problem("%s: node at offset %d is reached twice (a cycle or shared subtree)", atom_,
                   off);
      return;
    }
    if (level == hamt::kCollisionLevel) return Collision(off, prefix);
    const auto* h =
        ctx_.Read<NodeHeader>(off, sizeof(NodeHeader), [&] { return Where(off, level); });
    if (h == nullptr) return;
    const NodeHeader header = *h;
    if (!BitmapsValid(off, level, header)) return;
    const int children = hamt::Count(header.nodemap);
    const int entries = hamt::Count(header.datamap);
    const std::uint64_t bytes = hamt::BitmapNodeBytes(children, entries);
    if (ctx_.Read<NodeHeader>(off, bytes, [&] { return Where(off, level); }) == nullptr) return;
    ctx_.AddBlock(off, bytes, Holder::kReachable);
    if (level > 0 && children == 0 && entries < 2) {
      ctx_.Problem("%s: node at offset %d (level %d) has %d entries and no children: not canonical",
                   atom_, off, level, entries);
    }
    const auto* child_offsets = reinterpret_cast<const Offset*>(h + 1);
    const auto* entry_array = reinterpret_cast<const Entry*>(child_offsets + children);
    int entry_index = 0;
    int child_index = 0;
    for (unsigned fragment = 0; fragment < hamt::kBranching; ++fragment) {
      const Bitmap bit = hamt::BitFor(fragment);
      const std::uint64_t path =
          prefix | (std::uint64_t{fragment} << (level * hamt::kBitsPerLevel));
      if (header.datamap & bit) EntryAt(entry_array[entry_index++], level + 1, path);
      if (header.nodemap & bit) Node(child_offsets[child_index++], level + 1, path);
    }
  }

  bool BitmapsValid(Offset off, int level, const NodeHeader& h) {
    if ((h.datamap & h.nodemap) != 0) {
      ctx_.Problem("%s: node at offset %d: datamap %08x and nodemap %08x share bits", atom_, off,
                   h.datamap, h.nodemap);
      return false;
    }
    if (level == hamt::kLastLevel &&
        ((h.datamap | h.nodemap) >> (1u << hamt::kLastLevelBits)) != 0) {
      ctx_.Problem("%s: node at offset %d (last level) uses branches past %d", atom_, off,
                   (1 << hamt::kLastLevelBits) - 1);
      return false;
    }
    if (level > 0 && (h.datamap | h.nodemap) == 0) {
      ctx_.Problem("%s: node at offset %d (level %d) is empty", atom_, off, level);
    }
    return true;
  }

  void Collision(Offset off, std::uint64_t hash) {
    const auto* h =
        ctx_.Read<CollisionHeader>(off, sizeof(CollisionHeader), [&] { return Where(off, -1); });
    if (h == nullptr) return;
    const std::uint32_t count = h->count;
    if (count < 2 || hamt::CollisionNodeBytes(count) > Allocator::kMaxBlockBytes) {
      ctx_.Problem("%s: collision node at offset %d has count %d (needs 2 or more)", atom_, off,
                   count);
      return;
    }
    const std::uint64_t bytes = hamt::CollisionNodeBytes(count);
    if (ctx_.Read<CollisionHeader>(off, bytes, [&] { return Where(off, -1); }) == nullptr) return;
    ctx_.AddBlock(off, bytes, Holder::kReachable);
    const auto* entries = reinterpret_cast<const Entry*>(h + 1);
    std::string_view previous;
    for (std::uint32_t i = 0; i < count; ++i) {
      const std::string_view key = EntryAt(entries[i], hamt::kCollisionLevel, hash);
      if (i > 0 && key.data() != nullptr && previous.data() != nullptr && !(previous < key)) {
        ctx_.Problem("%s: collision node at offset %d: entry %d is not in key order", atom_, off,
                     i);
      }
      previous = key;
    }
  }

  // Checks one entry whose hash must agree with `path` on its first `levels` levels. Returns
  // its key bytes, or a null view if they cannot be read.
  std::string_view EntryAt(const Entry& e, int levels, std::uint64_t path) {
    ++entries_;
    const std::string_view key = Bytes(e.key_word, e.key_len, "key");
    (void)Bytes(e.value_word, e.value_len, "value");
    if (key.data() == nullptr) return key;
    const std::uint64_t hash = ctx_.hasher(key);
    const int bits = std::min(levels * hamt::kBitsPerLevel, hamt::kHashBits);
    const std::uint64_t mask = bits >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits) - 1;
    if ((hash & mask) != (path & mask)) {
      ctx_.Problem("%s: a key of %d bytes (hash %016x) sits in the branch for hash prefix %016x "
                   "(level %d)",
                   atom_, e.key_len, hash, path & mask, levels - 1);
    }
    return key;
  }

  std::string_view Bytes(const std::uint64_t& word, std::uint32_t len, const char* what) {
    if (hamt::IsInline(len)) return {reinterpret_cast<const char*>(&word), len};
    if (std::string_view(what) == "key" && len > hamt::kMaxKeyBytes) {
      ctx_.Problem("%s: a key is %d bytes long (the most is %d)", atom_, len, hamt::kMaxKeyBytes);
      return {};
    }
    if (len > Allocator::kMaxBlockBytes) {
      ctx_.Problem("%s: a %s is %d bytes long (the largest block is %d)", atom_, what, len,
                   Allocator::kMaxBlockBytes);
      return {};
    }
    const char* p =
        ctx_.Read<char>(word, len, [&] { return absl::StrCat(atom_, " ", what, " blob"); });
    if (p == nullptr) return {};
    ctx_.AddBlock(word, len, Holder::kReachable);
    return {p, len};
  }

  std::string Where(Offset off, int level) const {
    return absl::StrFormat("%s: node at offset %d (level %d)", atom_, off, level);
  }

  CheckContext& ctx_;
  const std::string& atom_;
  absl::flat_hash_set<Offset> visited_;
  std::uint64_t entries_ = 0;
};

}  // namespace

void CheckVersion(CheckContext& ctx, Offset version, const std::string& atom_label) {
  if (version == kNullOffset) return;
  VersionWalker(ctx, atom_label).Walk(version);
}

}  // namespace atomap::internal

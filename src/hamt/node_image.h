// Process-local, editable copies of one node: a transaction loads a node, edits the copy and
// stores it back (in place when it owns the block and the size is unchanged, else into a new
// block). Keeps all compressed-array index arithmetic for edits in one place.
#ifndef ATOMAP_SRC_HAMT_NODE_IMAGE_H_
#define ATOMAP_SRC_HAMT_NODE_IMAGE_H_

#include <algorithm>
#include <cstring>
#include <vector>

#include "hamt/bits.h"
#include "hamt/node.h"

namespace atomap::internal::hamt {

class BitmapImage {
 public:
  BitmapImage() = default;
  static BitmapImage Load(const Arena& arena, Offset off) {
    BitmapImage img;
    BitmapNodeRef n(arena, off);
    img.datamap_ = n.datamap();
    img.nodemap_ = n.nodemap();
    std::copy_n(n.children(), n.child_count(), img.children_);
    std::copy_n(n.entries(), n.entry_count(), img.entries_);
    return img;
  }

  Bitmap datamap() const { return datamap_; }
  Bitmap nodemap() const { return nodemap_; }
  bool empty() const { return datamap_ == 0 && nodemap_ == 0; }
  std::uint64_t bytes() const { return BitmapNodeBytes(Count(nodemap_), Count(datamap_)); }

  void InsertEntry(Bitmap bit, const Entry& e) {
    Insert(entries_, Count(datamap_), IndexOf(datamap_, bit), e);
    datamap_ |= bit;
  }
  void RemoveEntry(Bitmap bit) {
    Remove(entries_, Count(datamap_), IndexOf(datamap_, bit));
    datamap_ &= ~bit;
  }
  void InsertChild(Bitmap bit, Offset child) {
    Insert(children_, Count(nodemap_), IndexOf(nodemap_, bit), child);
    nodemap_ |= bit;
  }
  void RemoveChild(Bitmap bit) {
    Remove(children_, Count(nodemap_), IndexOf(nodemap_, bit));
    nodemap_ &= ~bit;
  }
  Entry& entry(Bitmap bit) { return entries_[IndexOf(datamap_, bit)]; }

  // REQUIRES: `dst` has bytes() bytes.
  void StoreTo(void* dst) const {
    auto* h = static_cast<NodeHeader*>(dst);
    h->datamap = datamap_;
    h->nodemap = nodemap_;
    auto* children = reinterpret_cast<Offset*>(h + 1);
    std::copy_n(children_, Count(nodemap_), children);
    std::copy_n(entries_, Count(datamap_), reinterpret_cast<Entry*>(children + Count(nodemap_)));
  }

 private:
  template <class T>
  static void Insert(T* array, int n, int at, const T& value) {
    std::copy_backward(array + at, array + n, array + n + 1);
    array[at] = value;
  }
  template <class T>
  static void Remove(T* array, int n, int at) {
    std::copy(array + at + 1, array + n, array + at);
  }

  Bitmap datamap_ = 0;
  Bitmap nodemap_ = 0;
  Offset children_[kBranching];
  Entry entries_[kBranching];
};

// A collision node's entries, kept sorted by key bytes (node.h N4).
struct CollisionImage {
  std::vector<Entry> entries;

  static CollisionImage Load(const Arena& arena, Offset off) {
    CollisionNodeRef c(arena, off);
    return CollisionImage{std::vector<Entry>(c.entries(), c.entries() + c.count())};
  }
  std::uint64_t bytes() const { return CollisionNodeBytes(entries.size()); }
  void StoreTo(void* dst) const {
    auto* h = static_cast<CollisionHeader*>(dst);
    h->count = static_cast<std::uint32_t>(entries.size());
    h->reserved = 0;
    std::copy(entries.begin(), entries.end(), reinterpret_cast<Entry*>(h + 1));
  }
};

}  // namespace atomap::internal::hamt

#endif  // ATOMAP_SRC_HAMT_NODE_IMAGE_H_

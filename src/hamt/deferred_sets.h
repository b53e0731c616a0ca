// DeferredSets: the sets a transaction received into an empty trie and has not built yet.
//
// Why: a loop of Set into an empty map is a bulk load in disguise. Building it one Set at a
// time moves each node to a bigger block on almost every insert (hundreds of ns per key, and
// the blocks left free are scattered over the file); holding the entries here and building
// them bottom up (bulk_build.cc) at the transaction's next other call writes each node once.
// The keys and values are copied (the caller's views need not outlive the call) into chunks of
// at least kChunkBytes, never moved again: no copy on growth, and no more fresh memory than
// they need (fresh pages cost as much to zero as to fill).
//
// Thread safety: one thread at a time, like the transaction that holds it. Process-local.
#ifndef ATOMAP_SRC_HAMT_DEFERRED_SETS_H_
#define ATOMAP_SRC_HAMT_DEFERRED_SETS_H_

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>
#include <vector>

namespace atomap::internal::hamt {

class DeferredSets {
 public:
  static constexpr std::size_t kChunkBytes = std::size_t{1} << 20;

  void Add(std::string_view key, std::string_view value) {
    const std::size_t bytes = key.size() + value.size();
    if (chunk_left_ < bytes) {
      const std::size_t size = std::max(kChunkBytes, bytes);
      chunks_.push_back(std::make_unique_for_overwrite<char[]>(size));
      chunk_bytes_ += size;
      cursor_ = chunks_.back().get();
      chunk_left_ = size;
    }
    if (!key.empty()) std::memcpy(cursor_, key.data(), key.size());
    if (!value.empty()) std::memcpy(cursor_ + key.size(), value.data(), value.size());
    entries_.push_back(Deferred{cursor_, static_cast<std::uint32_t>(key.size()),
                                static_cast<std::uint32_t>(value.size())});
    cursor_ += bytes;
    chunk_left_ -= bytes;
  }
  bool empty() const { return entries_.empty(); }
  std::size_t size() const { return entries_.size(); }
  // Entry i, in the order added; valid until clear.
  std::string_view key(std::size_t i) const { return {entries_[i].key, entries_[i].key_len}; }
  std::string_view value(std::size_t i) const {
    return {entries_[i].key + entries_[i].key_len, entries_[i].value_len};
  }
  // The process memory they hold.
  std::uint64_t memory_bytes() const { return chunk_bytes_ + entries_.size() * sizeof(Deferred); }
  void clear() {
    entries_ = std::vector<Deferred>();
    chunks_.clear();  // frees the chunks
    chunk_bytes_ = 0;
    cursor_ = nullptr;
    chunk_left_ = 0;
  }

 private:
  struct Deferred {
    const char* key;  // the value follows it
    std::uint32_t key_len;
    std::uint32_t value_len;
  };
  std::vector<Deferred> entries_;
  std::vector<std::unique_ptr<char[]>> chunks_;
  std::uint64_t chunk_bytes_ = 0;
  char* cursor_ = nullptr;  // where the next entry's bytes go, in chunks_.back()
  std::size_t chunk_left_ = 0;
};

}  // namespace atomap::internal::hamt

#endif  // ATOMAP_SRC_HAMT_DEFERRED_SETS_H_

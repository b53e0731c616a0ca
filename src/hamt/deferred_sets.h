// DeferredSets: the sets a transaction received into an empty trie and has not built yet.
//
// Why: a loop of Set into an empty map is a bulk load in disguise. Building it one Set at a
// time moves each node to a bigger block on almost every insert (hundreds of ns per key, and
// the blocks left free are scattered over the file); holding the entries here and building
// them bottom up (bulk_build.cc) at the transaction's next other call writes each node once.
// The keys and values are copied into one byte buffer: the caller's views need not outlive
// the call.
//
// Thread safety: one thread at a time, like the transaction that holds it. Process-local.
#ifndef ATOMAP_SRC_HAMT_DEFERRED_SETS_H_
#define ATOMAP_SRC_HAMT_DEFERRED_SETS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace atomap::internal::hamt {

class DeferredSets {
 public:
  void Add(std::string_view key, std::string_view value) {
    entries_.push_back(Deferred{bytes_.size(), static_cast<std::uint32_t>(key.size()),
                                static_cast<std::uint32_t>(value.size())});
    bytes_.append(key);
    bytes_.append(value);
  }
  bool empty() const { return entries_.empty(); }
  std::size_t size() const { return entries_.size(); }
  // The process memory they hold (the build needs about as much again).
  std::uint64_t memory_bytes() const { return bytes_.size() + entries_.size() * sizeof(Deferred); }
  // Views of every entry, in the order added; valid until the next Add or clear.
  std::vector<std::pair<std::string_view, std::string_view>> Views() const {
    std::vector<std::pair<std::string_view, std::string_view>> out;
    out.reserve(entries_.size());
    for (const Deferred& d : entries_) {
      const char* key = bytes_.data() + d.at;
      out.emplace_back(std::string_view(key, d.key_len),
                       std::string_view(key + d.key_len, d.value_len));
    }
    return out;
  }
  void clear() {
    entries_ = {};
    bytes_ = {};
  }

 private:
  struct Deferred {
    std::uint64_t at;  // the key's first byte in bytes_; the value follows it
    std::uint32_t key_len;
    std::uint32_t value_len;
  };
  std::vector<Deferred> entries_;
  std::string bytes_;
};

}  // namespace atomap::internal::hamt

#endif  // ATOMAP_SRC_HAMT_DEFERRED_SETS_H_

// What every trie operation needs to reach the file: where it is mapped, how to allocate in it,
// which participant is allocating, and the domain's key hash.
//
// Readers use only `arena`, `hasher`, `data_begin` and `verify_reads`; `allocator` and `cache`
// may be null for them.
// Process-local (holds pointers); cheap to copy; never stored in the file.
#ifndef ATOMAP_SRC_HAMT_TRIE_CONTEXT_H_
#define ATOMAP_SRC_HAMT_TRIE_CONTEXT_H_

#include "alloc/allocator.h"
#include "arena/arena.h"
#include "common/hash.h"
#include "common/offset.h"

namespace atomap::internal {

struct TrieContext {
  Arena* arena = nullptr;
  Allocator* allocator = nullptr;
  ParticipantCache* cache = nullptr;
  KeyHasher hasher;
  // The data region's first byte (bounds-checked reads refuse offsets below it), and whether the
  // domain was opened with Options::verify_reads (every reader then bounds-checks).
  Offset data_begin = 0;
  bool verify_reads = false;
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_HAMT_TRIE_CONTEXT_H_

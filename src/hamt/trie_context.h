// What every trie operation needs to reach the file: where it is mapped, how to allocate in it,
// which participant is allocating, and the domain's key hash.
//
// Readers use only `arena` and `hasher`; `allocator` and `cache` may be null for them.
// Process-local (holds pointers); cheap to copy; never stored in the file.
#ifndef ATOMAP_SRC_HAMT_TRIE_CONTEXT_H_
#define ATOMAP_SRC_HAMT_TRIE_CONTEXT_H_

#include "alloc/allocator.h"
#include "arena/arena.h"
#include "common/hash.h"

namespace atomap::internal {

struct TrieContext {
  Arena* arena = nullptr;
  Allocator* allocator = nullptr;
  ParticipantCache* cache = nullptr;
  KeyHasher hasher;
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_HAMT_TRIE_CONTEXT_H_

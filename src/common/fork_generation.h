// Which process a handle belongs to, across fork().
//
// A child of fork() inherits every Domain, participant and snapshot of its parent, and shares
// the parent's open file descriptions — and so its OFD locks. If the child released any of them
// it would clear the parent's pins, flush the parent's live allocator cache into the shared free
// lists (handing blocks out twice) and drop the parent's locks. So a handle records the fork
// generation it was made in; in a child (a later generation) it is inert: operations refuse with
// FailedPrecondition, and destroying it touches no shared state.
#ifndef ATOMAP_SRC_COMMON_FORK_GENERATION_H_
#define ATOMAP_SRC_COMMON_FORK_GENERATION_H_

#include <atomic>
#include <cstdint>

namespace atomap::internal {

// Incremented in every child of fork() by a pthread_atfork handler that fork_generation.cc
// registers during static initialisation; naming this variable links that file in.
extern std::atomic<std::uint64_t> fork_generation;

// One relaxed load, inline: every snapshot checks it (PinSite PS2, Runtime's thread cache).
inline std::uint64_t ForkGeneration() { return fork_generation.load(std::memory_order_relaxed); }

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_COMMON_FORK_GENERATION_H_

// The heavy side of an asymmetric fence between processes: membarrier(2)'s
// MEMBARRIER_CMD_GLOBAL_EXPEDITED.
//
// HeavyFence() makes every CPU that runs a thread of a registered process execute a full memory
// barrier before it returns; a thread that is not running passes through a context switch, which
// is a full barrier too. Kernel's contract (kernel/sched/membarrier.c): when the call returns,
// every such thread has passed through a state where its user-space memory accesses matched
// program order, between the call's entry and its return. So a thread of a registered process
// may replace a full fence by a compiler barrier, provided that every thread it pairs with
// issues HeavyFence() instead of its own fence (epoch/pin_fence.h says which pairs those are).
//
// Registration (MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) is per process: the kernel keeps it
// in the address space and drops it at exec. Whether a child of fork() keeps it is not
// documented in man 2 membarrier, so this file does not rely on it: a child starts unregistered
// here (a pthread_atfork handler) and registers again on its first HeavyFencesWork().
//
// What can fail: kernels before 4.16 lack the command (QUERY does not list it); seccomp (a
// container's profile) may refuse membarrier, or only some of its commands. HeavyFencesWork()
// asks once per process: QUERY, REGISTER, and one HeavyFence() as a probe; any failure means
// this process neither pins light nor issues heavy fences (full fences instead, and in a domain
// whose pins may be light it does not advance the epoch: epoch/pin_fence.h).
//
// Thread safety: safe from any thread. Registration is idempotent, so two threads racing to
// register both do it and agree on the answer.
//
// Usage:
//   if (HeavyFencesWork()) { /* this process's pinners may use a compiler barrier */ }
//   if (!HeavyFence()) { /* a scanner that may not rely on light pins: do not advance */ }
#ifndef ATOMAP_SRC_COMMON_HEAVY_FENCE_H_
#define ATOMAP_SRC_COMMON_HEAVY_FENCE_H_

namespace atomap::internal {

// True when this process is registered for heavy fences and can issue them (asked once per
// process, and once again in each child of fork()).
bool HeavyFencesWork();

// A seq_cst fence, membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), a seq_cst fence. False when
// HeavyFencesWork() is false or the call failed (then only the two fences were issued, and
// light pins of other processes may not be visible to what follows).
bool HeavyFence();

// Testing: from now on this process behaves as one whose membarrier calls fail (a seccomp
// profile that refuses them): HeavyFencesWork() and HeavyFence() return false. Call it before
// this process attaches any domain (pin_fence.h reads HeavyFencesWork() at attach).
void SetHeavyFencesUnavailableForTesting(bool unavailable);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_COMMON_HEAVY_FENCE_H_

// Crash points: deterministic kill -9 at named places of the library, for crash tests.
//
// The random SIGKILLs of the crash torture land in every step of a swap, a reclamation or a
// recovery only statistically. A crash point is a named place between two steps that matter
// (allocation, building, the root CAS, retiring, slot takeover, file growth, recovery itself,
// the sweep). In a build with ATOMAP_CRASH_POINTS=1 (CMake option ATOMAP_CRASH_POINTS; on in the
// debug, asan and tsan presets), a process armed for site S and hit count n kills itself with
// raise(SIGKILL) the n-th time it reaches S: a real kill -9, nothing flushed, no destructor run,
// every lock dropped by the kernel. Tests then prove what a survivor recovers online and what
// the sweep returns (tests/crash_points_test.cc, stress/crash_torture_stress.cc --crash-points,
// docs/reliability.md "Crash points").
//
// Usage, in the library:
//
//   PushOrphanBatches(domain, theirs.DetachChain());
//   ATOMAP_CRASH_POINT(kRecoverAfterOrphanPush);
//
// In a test, in a child of fork() (arming is per process and is inherited by fork()):
//
//   internal::ArmCrashPoint(internal::CrashSite::kGrowAfterExtend, 1);
//
// or, for a process that is exec'd: ATOMAP_CRASH_AT=grow.after_extend:1 in its environment
// (read once, on the first crash point reached).
//
// Without ATOMAP_CRASH_POINTS the macro expands to nothing: release builds carry no check at all.
// With it, a disarmed point costs one relaxed load and a branch.
//
// Thread safety: every function is safe from any thread. With several threads, exactly one of
// them performs the n-th hit of the armed site (the count is an atomic decrement) and kills the
// whole process.
#ifndef ATOMAP_SRC_COMMON_CRASH_POINT_H_
#define ATOMAP_SRC_COMMON_CRASH_POINT_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace atomap::internal {

// Every crash point of the library. The comment says where it is and who places it; the name
// table below must list them in this order.
enum class CrashSite : std::uint8_t {
  // Allocation (src/alloc/allocator.cc).
  kAllocAfterSharedPop,  // a batch popped off a shared free list, not yet in the cache
  kAllocAfterBumpCas,    // a chunk taken by the shared bump CAS, not yet the cache's bump region
  kAllocLargeReturn,     // a large (uncached) block about to be returned to the caller
  // File growth (src/arena/arena.cc, Arena::Grow).
  kGrowAfterExtend,   // the file extended (fallocate/ftruncate), the new size not yet published
  kGrowAfterPublish,  // the new size published, not yet mapped here
  // Slot takeover (src/file/slot_table.cc).
  kTakeoverLocked,  // the survivor holds the dead slot's lock; recovery has not begun
  // Recovery of a dead slot (src/domain/slot_recovery.cc, RecoverDeadSlot).
  kRecoverAfterFinishReclaim,  // the dead owner's interrupted reclaim finished
  kRecoverAfterIntentCleared,  // its lanes and intent cleared, what they listed not yet freed
  kRecoverAfterOrphanPush,     // its retire chain pushed onto the orphan chain
  kRecoverAfterFreeSpares,     // its spare retire batches freed
  kRecoverAfterFlush,          // its allocator cache flushed; its pin not yet cleared
  kRecoverAfterClearPin,       // its pin cleared; the slot not yet reset
  // The mark-and-sweep (src/recovery/checker.cc, Sweep).
  kSweepBeforeRebuild,  // audited, the shared free lists not yet rebuilt
  kSweepAfterRebuild,   // the shared free lists rebuilt
  // Reclamation (src/epoch/retire_list.cc; placed by the reclamation layer's owner).
  kReclaimMidBatch,  // RetireList::FreeEntries (a batch whole or in part), between two frees
  kRetireMid,        // Retire, between two entries
  // Building and publishing a version (src/atom, src/hamt; placed by their owner).
  kBuildAfterAllocate,   // a node allocated, not yet written
  kBuildAfterRelease,    // a node released during building
  kCommitAfterRecord,    // the new version's record written, not yet published
  kPublishBeforeCas,     // the version complete, the root CAS not yet made
  kPublishAfterCas,      // the root CAS succeeded, the replaced blocks not yet retired
  kPublishAfterRetire,   // the replaced blocks retired, swap not yet returned
  kLostCasMidFree,       // a lost root CAS: freeing the unpublished version, between two frees
                         // (the intent withdrawn; every block still listed is still allocated)
  // Combining (src/atom/combine.cc).
  kCombineMidPost,    // a batch half written into the mailbox (its post word says busy)
  kCombineAfterPost,  // a batch posted, no combine attempted yet
  kCombineBeforeAck,  // the batch's outcome read from a published version, not yet acknowledged
  kCount,                // not a site
};

inline constexpr std::size_t kNumCrashSites = static_cast<std::size_t>(CrashSite::kCount);

namespace crash_point_detail {
inline constexpr std::array<std::string_view, kNumCrashSites> kNames = {
    "alloc.after_shared_pop",
    "alloc.after_bump_cas",
    "alloc.large_return",
    "grow.after_extend",
    "grow.after_publish",
    "takeover.locked",
    "recover.after_finish_reclaim",
    "recover.after_intent_cleared",
    "recover.after_orphan_push",
    "recover.after_free_spares",
    "recover.after_flush",
    "recover.after_clear_pin",
    "sweep.before_rebuild",
    "sweep.after_rebuild",
    "reclaim.mid_batch",
    "retire.mid",
    "build.after_allocate",
    "build.after_release",
    "commit.after_record",
    "publish.before_cas",
    "publish.after_cas",
    "publish.after_retire",
    "lost_cas.mid_free",
    "combine.mid_post",
    "combine.after_post",
    "combine.before_ack",
};
// Every entry named (a missing one would be an empty view), and no name twice.
constexpr bool NamesComplete() {
  for (std::size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i].empty()) return false;
    for (std::size_t j = 0; j < i; ++j) {
      if (kNames[i] == kNames[j]) return false;
    }
  }
  return true;
}
static_assert(NamesComplete(), "the crash site name table must name every CrashSite, once");
}  // namespace crash_point_detail

// The site's name, as ATOMAP_CRASH_AT spells it ("alloc.after_shared_pop").
constexpr std::string_view CrashSiteName(CrashSite site) {
  return crash_point_detail::kNames[static_cast<std::size_t>(site)];
}

// The site of that name, if there is one.
std::optional<CrashSite> CrashSiteFromName(std::string_view name);

// Whether the library was built with ATOMAP_CRASH_POINTS=1 (otherwise arming does nothing).
bool CrashPointsCompiledIn();

// Arms this process: the nth (>= 1) hit of `site` from now on kills it. Replaces any arming.
void ArmCrashPoint(CrashSite site, std::uint64_t nth);

// Disarms this process (and makes it ignore ATOMAP_CRASH_AT from now on).
void DisarmCrashPoints();

// The body of ATOMAP_CRASH_POINT. Kills the process if armed for `site` and this is the hit.
void CrashPointSlow(CrashSite site);

namespace crash_point_detail {
// Non-zero while armed, or before ATOMAP_CRASH_AT was read. Accessed only with __atomic builtins.
extern std::uint32_t armed_word;
}  // namespace crash_point_detail

// One relaxed load and a branch when disarmed.
inline void CrashPoint(CrashSite site) {
  if (__atomic_load_n(&crash_point_detail::armed_word, __ATOMIC_RELAXED) != 0) CrashPointSlow(site);
}

}  // namespace atomap::internal

#if defined(ATOMAP_CRASH_POINTS) && ATOMAP_CRASH_POINTS
#define ATOMAP_CRASH_POINT(site) ::atomap::internal::CrashPoint(::atomap::internal::CrashSite::site)
#else
#define ATOMAP_CRASH_POINT(site) \
  do {                           \
  } while (false)
#endif

#endif  // ATOMAP_SRC_COMMON_CRASH_POINT_H_

#include "common/fork_generation.h"

#include <pthread.h>

namespace atomap::internal {

std::atomic<std::uint64_t> fork_generation{0};

namespace {

// Registered before main() by static initialisation of this translation unit's object, which
// every user of ForkGeneration() links in (it names fork_generation, defined here).
[[maybe_unused]] const bool registered = [] {
  pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1, std::memory_order_relaxed); });
  return true;
}();

}  // namespace
}  // namespace atomap::internal

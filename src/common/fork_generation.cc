#include "common/fork_generation.h"

#include <pthread.h>

#include <atomic>

namespace atomap::internal {
namespace {

std::atomic<std::uint64_t> generation{0};

// Registered before main() by static initialisation of this translation unit's object.
const bool registered = [] {
  pthread_atfork(nullptr, nullptr, [] { generation.fetch_add(1, std::memory_order_relaxed); });
  return true;
}();

}  // namespace

std::uint64_t ForkGeneration() {
  (void)registered;
  return generation.load(std::memory_order_relaxed);
}

}  // namespace atomap::internal

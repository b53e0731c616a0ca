#include "epoch/pin_fence.h"

#include <pthread.h>

#include <mutex>

#include "common/fork_generation.h"

namespace atomap::internal {
namespace {

// Attached handles of kFull domains in this process (PF1), and the mutex that orders every
// change of it with the store of light_pins that follows.
std::mutex attachments_mu;
std::uint64_t full_attachments = 0;

// REQUIRES: attachments_mu held.
void UpdateLightPins() {
  pin_fence_internal::light_pins.store(full_attachments == 0 && HeavyFencesWork(),
                                       std::memory_order_relaxed);
}

// A child of fork() has attached nothing yet: its inherited handles are inert (they pin
// nothing), and it registers again at its first attach (common/heavy_fence.h).
const bool fork_handlers_registered = [] {
  pthread_atfork([] { attachments_mu.lock(); }, [] { attachments_mu.unlock(); },
                 [] {
                   full_attachments = 0;
                   pin_fence_internal::light_pins.store(false, std::memory_order_relaxed);
                   attachments_mu.unlock();
                 });
  return true;
}();

}  // namespace

PinFenceAttachment::PinFenceAttachment(PinFenceMode domain_mode)
    : mode_(domain_mode), fork_generation_(ForkGeneration()) {
  (void)fork_handlers_registered;
  std::lock_guard<std::mutex> lock(attachments_mu);
  if (mode_ == PinFenceMode::kFull) ++full_attachments;
  UpdateLightPins();
}

PinFenceAttachment::~PinFenceAttachment() {
  if (ForkGeneration() != fork_generation_) return;  // the parent's: not counted here
  std::lock_guard<std::mutex> lock(attachments_mu);
  if (mode_ == PinFenceMode::kFull) --full_attachments;
  UpdateLightPins();
}

}  // namespace atomap::internal

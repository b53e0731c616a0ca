// The two sides of the pin's store-load fence (EpochTable (1), (RR1) and their partner (3)).
//
// A pin stores its announcement and then reads roots; a scan reads the announcements and then
// advances the epoch. Each side needs a full fence between its store and its loads. PinFence is
// the pinner's side (on every snapshot: the hot one), ScanFence the scanner's (once per
// TryAdvance). Today both are seq_cst fences.
//
// Thread safety: safe to call from any thread.
#ifndef ATOMAP_SRC_EPOCH_PIN_FENCE_H_
#define ATOMAP_SRC_EPOCH_PIN_FENCE_H_

#include "common/shared_atomic.h"

namespace atomap::internal {

// (1), (RR1): between a pin's announcement store and its first root (or G) load.
inline void PinFence() noexcept { FullFence(); }

// (3): between a scan's load of G and its loads of the announcements.
inline void ScanFence() noexcept { FullFence(); }

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_EPOCH_PIN_FENCE_H_

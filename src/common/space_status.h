// The status of a write that found no room: the domain at its max_size, or the device full while
// the file grew. Marked with a payload so that the atoms layer can tell it from every other
// ResourceExhausted (a full slot table, a caller's own): only for this one can reclaiming old
// versions make room (atom.cc, Atom::swap).
#ifndef ATOMAP_SRC_COMMON_SPACE_STATUS_H_
#define ATOMAP_SRC_COMMON_SPACE_STATUS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/cord.h"

namespace atomap::internal {

inline constexpr char kNoRoomPayload[] = "atomap/no_room";

// ResourceExhausted(message), marked as "no room".
inline absl::Status NoRoomError(const std::string& message) {
  absl::Status status = absl::ResourceExhaustedError(message);
  status.SetPayload(kNoRoomPayload, absl::Cord());
  return status;
}

inline bool IsNoRoom(const absl::Status& status) {
  return absl::IsResourceExhausted(status) && status.GetPayload(kNoRoomPayload).has_value();
}

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_COMMON_SPACE_STATUS_H_

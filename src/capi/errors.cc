// The C API's errors (a code returned, a message kept per thread), argument checks and versions.
#include <cstdint>
#include <new>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "atomap/atom.h"
#include "atomap/c.h"
#include "atomap/version.h"
#include "capi/handles.h"

// atomap_code's values are absl::StatusCode's (c.h promises it; FromStatus casts).
static_assert(ATOMAP_CANCELLED == static_cast<int>(absl::StatusCode::kCancelled));
static_assert(ATOMAP_INVALID_ARGUMENT == static_cast<int>(absl::StatusCode::kInvalidArgument));
static_assert(ATOMAP_DEADLINE_EXCEEDED == static_cast<int>(absl::StatusCode::kDeadlineExceeded));
static_assert(ATOMAP_NOT_FOUND == static_cast<int>(absl::StatusCode::kNotFound));
static_assert(ATOMAP_ALREADY_EXISTS == static_cast<int>(absl::StatusCode::kAlreadyExists));
static_assert(ATOMAP_PERMISSION_DENIED == static_cast<int>(absl::StatusCode::kPermissionDenied));
static_assert(ATOMAP_RESOURCE_EXHAUSTED == static_cast<int>(absl::StatusCode::kResourceExhausted));
static_assert(ATOMAP_FAILED_PRECONDITION ==
              static_cast<int>(absl::StatusCode::kFailedPrecondition));
static_assert(ATOMAP_ABORTED == static_cast<int>(absl::StatusCode::kAborted));
static_assert(ATOMAP_OUT_OF_RANGE == static_cast<int>(absl::StatusCode::kOutOfRange));
static_assert(ATOMAP_UNIMPLEMENTED == static_cast<int>(absl::StatusCode::kUnimplemented));
static_assert(ATOMAP_INTERNAL == static_cast<int>(absl::StatusCode::kInternal));
static_assert(ATOMAP_UNAVAILABLE == static_cast<int>(absl::StatusCode::kUnavailable));
static_assert(ATOMAP_DATA_LOSS == static_cast<int>(absl::StatusCode::kDataLoss));
static_assert(ATOMAP_UNAUTHENTICATED == static_cast<int>(absl::StatusCode::kUnauthenticated));

namespace atomap::capi {
namespace {

// Per thread, so that one thread's failure never overwrites the message another is reading.
// `message` is what atomap_last_error() points into: valid until this thread fails again.
struct LastError {
  std::string message;
  const char* text = "";  // message.c_str(), or a static text when copying it failed
  std::uint64_t failures = 0;
};

LastError& ThisThreadError() {
  thread_local LastError error;
  return error;
}

}  // namespace

atomap_code Fail(atomap_code code, std::string_view message) {
  LastError& error = ThisThreadError();
  ++error.failures;
  try {
    error.message.assign(message.data(), message.size());
    error.text = error.message.c_str();
  } catch (const std::bad_alloc&) {
    // The code still says what failed; the text says why it cannot say more.
    error.text = "atomap: out of memory while recording an error message";
  }
  return code;
}

atomap_code FromStatus(const absl::Status& status) {
  if (status.ok()) return ATOMAP_OK;
  // absl::string_view need not be std::string_view (Debian's abseil has its own).
  const std::string_view message(status.message().data(), status.message().size());
  if (IsLostRace(status)) return Fail(ATOMAP_LOST_RACE, message);
  return Fail(static_cast<atomap_code>(status.code()), message);
}

absl::StatusCode ToStatusCode(atomap_code code) {
  if (code == ATOMAP_LOST_RACE) return absl::StatusCode::kAborted;
  if (code < ATOMAP_OK || code > ATOMAP_UNAUTHENTICATED) return absl::StatusCode::kUnknown;
  return static_cast<absl::StatusCode>(code);  // the same numbers (c.h)
}

std::uint64_t FailureCount() { return ThisThreadError().failures; }

const std::string& LastErrorMessage() { return ThisThreadError().message; }

atomap_code NotNull(const char* function, const void* pointer, const char* what) {
  if (pointer != nullptr) return ATOMAP_OK;
  return Fail(ATOMAP_INVALID_ARGUMENT, absl::StrCat(function, ": ", what, " is NULL"));
}

atomap_code Bytes(const char* function, const void* data, std::size_t length, const char* what,
                  std::string_view* out) {
  if (data == nullptr && length != 0) {
    return Fail(ATOMAP_INVALID_ARGUMENT,
                absl::StrCat(function, ": ", what, " is NULL with length ", length));
  }
  *out = data == nullptr ? std::string_view()
                         : std::string_view(static_cast<const char*>(data), length);
  return ATOMAP_OK;
}

atomap_code KnownSize(const char* function, const char* type, std::size_t given,
                      std::size_t known) {
  if (given == known) return ATOMAP_OK;
  return Fail(
      ATOMAP_INVALID_ARGUMENT,
      absl::StrCat(function, ": ", type, ".struct_size is ", given, ", and this library (C API ",
                   ATOMAP_C_API_VERSION, ", atomap ", ATOMAP_VERSION_STRING, ") knows only ", known,
                   ": fill it with ", type, "_init()"));
}

atomap_code OnOwnerThread(const char* function, std::thread::id owner, const char* what) {
  if (owner == std::this_thread::get_id()) return ATOMAP_OK;
  return Fail(ATOMAP_FAILED_PRECONDITION,
              absl::StrCat(function, ": the ", what,
                           " belongs to the thread that made it; nothing was done (call this on "
                           "that thread)"));
}

}  // namespace atomap::capi

extern "C" {

const char* atomap_last_error(void) { return atomap::capi::ThisThreadError().text; }

const char* atomap_code_name(atomap_code code) {
  switch (code) {
    case ATOMAP_OK:
      return "OK";
    case ATOMAP_CANCELLED:
      return "CANCELLED";
    case ATOMAP_UNKNOWN:
      return "UNKNOWN";
    case ATOMAP_INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case ATOMAP_DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case ATOMAP_NOT_FOUND:
      return "NOT_FOUND";
    case ATOMAP_ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case ATOMAP_PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case ATOMAP_RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case ATOMAP_FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case ATOMAP_ABORTED:
      return "ABORTED";
    case ATOMAP_OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case ATOMAP_UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case ATOMAP_INTERNAL:
      return "INTERNAL";
    case ATOMAP_UNAVAILABLE:
      return "UNAVAILABLE";
    case ATOMAP_DATA_LOSS:
      return "DATA_LOSS";
    case ATOMAP_UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    case ATOMAP_LOST_RACE:
      return "LOST_RACE";
  }
  return "UNKNOWN_CODE";
}

const char* atomap_version(void) { return ATOMAP_VERSION_STRING; }

int atomap_c_api_version(void) { return ATOMAP_C_API_VERSION; }

}  // extern "C"

// The Python exception hierarchy of the binding, and the one way statuses become exceptions.
//
// Invariants
//  (E1) Every absl::Status the library returns reaches Python as an atomap.Error, or the subclass
//       its code maps to, whose message is the status's message unchanged.
//  (E2) The classes are created once, at import (RegisterErrors), and live as long as the process
//       (they are module attributes; the pointers here are never released).
//
// Thread safety: ThrowIfError needs no GIL to build its C++ exception; pybind11 sets the Python
// error when the exception reaches the binding's boundary, with the GIL held.
#ifndef ATOMAP_PYTHON_SRC_ERRORS_H_
#define ATOMAP_PYTHON_SRC_ERRORS_H_

#include <pybind11/pybind11.h>

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace atomap::python {

// Thrown by the binding; translated into the Python class its status code maps to (E1).
class StatusError : public std::exception {
 public:
  explicit StatusError(absl::Status status)
      : status_(std::move(status)), message_(status_.message()) {}
  const absl::Status& status() const { return status_; }
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  absl::Status status_;
  std::string message_;
};

// Creates atomap.Error and its subclasses in `module` and installs the translator (E2).
void RegisterErrors(pybind11::module_& module);

inline void ThrowIfError(const absl::Status& status) {
  if (!status.ok()) throw StatusError(status);
}

template <class T>
T ValueOrThrow(absl::StatusOr<T>&& result) {
  if (!result.ok()) throw StatusError(result.status());
  return *std::move(result);
}

// The binding's own refusals (a closed domain, a handle used after fork()), with the code that
// picks their class.
[[noreturn]] inline void Fail(absl::StatusCode code, std::string message) {
  throw StatusError(absl::Status(code, message));
}

}  // namespace atomap::python

#endif  // ATOMAP_PYTHON_SRC_ERRORS_H_

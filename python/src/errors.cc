#include "errors.h"

#include <Python.h>

#include <initializer_list>

#include "atomap/atom.h"

namespace atomap::python {
namespace {

namespace py = pybind11;

// (E2): created at import, never freed.
PyObject* error_base = nullptr;
PyObject* lost_race = nullptr;
PyObject* by_code[32] = {};

// A new class atomap.<name> with `bases` (the first one is the class Python lays it out from),
// stored as a module attribute.
PyObject* NewClass(py::module_& module, const char* name, std::initializer_list<PyObject*> bases,
                   const char* doc) {
  py::tuple tuple(bases.size());
  std::size_t i = 0;
  for (PyObject* base : bases) tuple[i++] = py::reinterpret_borrow<py::object>(base);
  const std::string qualified = std::string("atomap.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, tuple.ptr(), nullptr);
  if (type == nullptr) throw py::error_already_set();
  module.add_object(name, py::reinterpret_borrow<py::object>(type));
  return type;  // the new reference is the one E2 keeps
}

PyObject* ClassFor(const absl::Status& status) {
  if (IsLostRace(status)) return lost_race;
  const int code = static_cast<int>(status.code());
  if (code >= 0 && code < 32 && by_code[code] != nullptr) return by_code[code];
  return error_base;
}

}  // namespace

void RegisterErrors(py::module_& module) {
  error_base = NewClass(module, "Error", {PyExc_Exception},
                        "Base class of every error atomap raises; str() is the library's message.");
  auto sub = [&](absl::StatusCode code, const char* name, std::initializer_list<PyObject*> bases,
                 const char* doc) {
    by_code[static_cast<int>(code)] = NewClass(module, name, bases, doc);
  };
  sub(absl::StatusCode::kNotFound, "NotFoundError", {error_base},
      "A file, shared-memory object or atom that does not exist (and may not be created).");
  sub(absl::StatusCode::kAlreadyExists, "AlreadyExistsError", {error_base},
      "Something exists where the call must create (open(..., exclusive) and the like).");
  sub(absl::StatusCode::kInvalidArgument, "InvalidArgument", {error_base, PyExc_ValueError},
      "A bad argument: an oversized key or value, a bad name or option (also a ValueError).");
  sub(absl::StatusCode::kPermissionDenied, "PermissionDeniedError",
      {error_base, PyExc_PermissionError},
      "The file's mode or owner refuses the access (also a PermissionError).");
  sub(absl::StatusCode::kDataLoss, "DataLossError", {error_base},
      "The file is damaged or truncated; the message names the file and the offset.");
  sub(absl::StatusCode::kResourceExhausted, "ResourceExhaustedError", {error_base},
      "The domain is full (max_size), or it has no free participant slot or atom entry.");
  sub(absl::StatusCode::kFailedPrecondition, "FailedPreconditionError", {error_base},
      "The call does not fit the handle's state: a write on a read-only domain, a closed "
      "domain, a handle inherited across fork(), a file that is not a domain.");
  sub(absl::StatusCode::kDeadlineExceeded, "DeadlineExceededError",
      {error_base, PyExc_TimeoutError}, "A lock wait ran past lock_timeout (also a TimeoutError).");
  lost_race = NewClass(module, "LostRace", {error_base},
                       "compare_and_set lost: another writer published first. Begin again from "
                       "a newer snapshot.");
  py::register_exception_translator([](std::exception_ptr thrown) {
    try {
      if (thrown) std::rethrow_exception(thrown);
    } catch (const StatusError& error) {
      PyErr_SetString(ClassFor(error.status()), error.what());
    }
  });
}

}  // namespace atomap::python

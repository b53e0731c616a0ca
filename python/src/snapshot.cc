// atomap.Snapshot: a read-only Mapping over one pinned version, and its zero-copy views.
//
// Views (Snapshot.view): each memoryview is exported by a small object of its own (ViewExporter,
// below) that holds a reference to the Python Snapshot, so the snapshot cannot be collected
// while a view lives, and counts itself in the snapshot's exports while the buffer is held:
// close() refuses with BufferError while any is (as mmap.close() does), because the bytes are
// the shared mapping's and are freed for reuse once the pin goes.
#include <Python.h>
#include <pybind11/stl.h>

#include <string>
#include <string_view>
#include <utility>

#include "errors.h"
#include "handles.h"

namespace atomap::python {
namespace {

namespace py = pybind11;

struct ViewExporter {
  PyObject_HEAD PyObject* owner;       // the Python Snapshot (a strong reference)
  PySnapshot* snapshot;  // owner's C++ object
  const char* data;
  Py_ssize_t size;
};

int ViewGetBuffer(PyObject* self, Py_buffer* view, int flags) {
  auto* exporter = reinterpret_cast<ViewExporter*>(self);
  if (exporter->snapshot->closed()) {
    PyErr_SetString(PyExc_BufferError, "atomap: the snapshot of this view is closed");
    return -1;
  }
  if (PyBuffer_FillInfo(view, self, const_cast<char*>(exporter->data), exporter->size,
                        /*readonly=*/1, flags) != 0) {
    return -1;
  }
  exporter->snapshot->AddExport();
  return 0;
}

void ViewReleaseBuffer(PyObject* self, Py_buffer*) {
  reinterpret_cast<ViewExporter*>(self)->snapshot->DropExport();
}

void ViewDealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  Py_XDECREF(reinterpret_cast<ViewExporter*>(self)->owner);
  type->tp_free(self);
  Py_DECREF(type);  // a heap type's instances own a reference to it
}

PyTypeObject* ViewExporterType() {
  static PyTypeObject* type = [] {
    static PyType_Slot slots[] = {
        {Py_bf_getbuffer, reinterpret_cast<void*>(&ViewGetBuffer)},
        {Py_bf_releasebuffer, reinterpret_cast<void*>(&ViewReleaseBuffer)},
        {Py_tp_dealloc, reinterpret_cast<void*>(&ViewDealloc)},
        {Py_tp_doc, const_cast<char*>("Exports one value of an atomap.Snapshot as a buffer.")},
        {0, nullptr},
    };
    static PyType_Spec spec = {"atomap._ViewExporter", sizeof(ViewExporter), 0, Py_TPFLAGS_DEFAULT,
                               slots};
    PyObject* made = PyType_FromSpec(&spec);
    if (made == nullptr) throw py::error_already_set();
    return reinterpret_cast<PyTypeObject*>(made);  // kept for the process's life
  }();
  return type;
}

py::object View(py::object self_object, const py::handle key) {
  PySnapshot& self = self_object.cast<PySnapshot&>();
  const std::string encoded = Encode(self.codecs().key, key);
  const std::shared_ptr<const PinnedSnapshot> held = self.Hold();
  const std::optional<std::string_view> value = held->snapshot->map().get(encoded);
  if (!value.has_value()) throw py::key_error(py::repr(key));
  PyTypeObject* type = ViewExporterType();
  auto* exporter = PyObject_New(ViewExporter, type);
  if (exporter == nullptr) throw py::error_already_set();
  exporter->owner = self_object.release().ptr();
  exporter->snapshot = &self;
  exporter->data = value->data();
  exporter->size = static_cast<Py_ssize_t>(value->size());
  py::object holder = py::reinterpret_steal<py::object>(reinterpret_cast<PyObject*>(exporter));
  PyObject* view = PyMemoryView_FromObject(holder.ptr());
  if (view == nullptr) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(view);
}

// The decoded value of `key`, or a null object if absent or undecodable (codec.h C2).
py::object Lookup(const PySnapshot& self, py::handle key) {
  const std::string encoded = Encode(self.codecs().key, key);
  const std::shared_ptr<const PinnedSnapshot> held = self.Hold();
  const std::optional<std::string_view> value = held->snapshot->map().get(encoded);
  if (!value.has_value()) return py::object();
  return Decode(self.codecs().value, *value);
}

// Calls fn(key, value) with each decodable entry (C2), in trie order.
template <class Fn>
void ForEachDecoded(const PySnapshot& self, Fn&& fn) {
  const std::shared_ptr<const PinnedSnapshot> held = self.Hold();
  for (const auto& [key, value] : held->snapshot->map()) {
    py::object k = Decode(self.codecs().key, key);
    if (!k) continue;
    py::object v = Decode(self.codecs().value, value);
    if (!v) continue;
    fn(std::move(k), std::move(v));
  }
}

}  // namespace

PySnapshot::PySnapshot(std::unique_ptr<PinnedSnapshot> pinned, Codecs codecs) : codecs_(codecs) {
  ThrowIfError(pinned->snapshot.status());
  std::shared_ptr<ThreadBox> box = ThreadBox::ForThisThread();  // after the load: B1
  pinned_ = std::shared_ptr<PinnedSnapshot>(pinned.release(), [box](PinnedSnapshot* released) {
    ThreadBox::Release(box, std::unique_ptr<Pinned>(released));
  });
}

std::shared_ptr<const PinnedSnapshot> PySnapshot::Hold() const {
  if (!pinned_) Fail(absl::StatusCode::kFailedPrecondition, "atomap: the snapshot is closed");
  CheckSameProcess(*pinned_->domain);
  return pinned_;
}

void PySnapshot::Close() {
  if (exports_ > 0) {
    throw py::buffer_error("atomap: cannot close the snapshot: " + std::to_string(exports_) +
                           " memoryview(s) from view() are still alive (release them first)");
  }
  pinned_.reset();
}

void BindSnapshot(py::module_& module) {
  py::class_<PySnapshot>(module, "Snapshot",
                         "One version of an atom: a read-only Mapping, pinned (held still) until "
                         "closed. A context manager: `with` closes it. Values read are copies; "
                         "view() gives a zero-copy memoryview valid until close().")
      .def(
          "__getitem__",
          [](const PySnapshot& self, py::handle key) {
            py::object value = Lookup(self, key);
            if (!value) throw py::key_error(py::repr(key));
            return value;
          },
          py::arg("key"))
      .def(
          "get",
          [](const PySnapshot& self, py::handle key, py::object fallback) {
            py::object value = Lookup(self, key);
            return value ? value : fallback;
          },
          py::arg("key"), py::arg("default") = py::none(),
          "The value of `key`, or `default` if absent.")
      .def("__contains__",
           [](const PySnapshot& self, py::handle key) { return bool(Lookup(self, key)); })
      .def("__len__", [](const PySnapshot& self) { return self.Hold()->snapshot->map().size(); })
      .def("__iter__",
           [](const PySnapshot& self) {
             py::list keys;
             ForEachDecoded(self, [&](py::object k, py::object) { keys.append(std::move(k)); });
             return py::iter(keys);
           })
      .def(
          "keys",
          [](const PySnapshot& self) {
            py::list keys;
            ForEachDecoded(self, [&](py::object k, py::object) { keys.append(std::move(k)); });
            return keys;
          },
          "The keys, as a list (in the trie's order: deterministic, not sorted).")
      .def(
          "values",
          [](const PySnapshot& self) {
            py::list values;
            ForEachDecoded(self, [&](py::object, py::object v) { values.append(std::move(v)); });
            return values;
          },
          "The values, as a list, in keys()' order.")
      .def(
          "items",
          [](const PySnapshot& self) {
            py::list items;
            ForEachDecoded(self, [&](py::object k, py::object v) {
              items.append(py::make_tuple(std::move(k), std::move(v)));
            });
            return items;
          },
          "The (key, value) pairs, as a list.")
      .def("view", &View, py::arg("key"),
           "A read-only memoryview of `key`'s stored bytes, zero-copy (KeyError if absent); "
           "valid until the snapshot is closed, which refuses (BufferError) while one lives.")
      .def_property_readonly(
          "version", [](const PySnapshot& self) { return self.Hold()->snapshot->version(); },
          "The atom's version number (0: never changed; +1 per published change).")
      .def_property_readonly(
          "tag", [](const PySnapshot& self) { return self.Hold()->snapshot->tag(); },
          "The version's tag: the word its writer set (Transaction.tag).")
      .def_property_readonly("closed", &PySnapshot::closed, "True once close() was called.")
      .def("close", &PySnapshot::Close,
           "Releases the pin (idempotent). BufferError while views from view() are alive.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PySnapshot& self, py::args) { self.Close(); })
      .def("__repr__", [](const PySnapshot& self) {
        if (self.closed()) return std::string("<atomap.Snapshot closed>");
        return "<atomap.Snapshot version " + std::to_string(self.Hold()->snapshot->version()) +
               ", " + std::to_string(self.Hold()->snapshot->map().size()) + " entries>";
      });
}

}  // namespace atomap::python

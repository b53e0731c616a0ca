// atomap.Transaction: the edits of a swap function (borrowed, handles.h H5) or of begin()
// (owned, pinned on the thread that began it, H4).
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "errors.h"
#include "handles.h"

namespace atomap::python {
namespace {

namespace py = pybind11;

std::optional<std::string_view> Get(PyTransaction& self, py::handle key) {
  return self.tx().get(Encode(self.codecs().key, key));
}

// The decoded value, or a null object if absent or undecodable (codec.h C2).
py::object Lookup(PyTransaction& self, py::handle key) {
  const std::optional<std::string_view> value = Get(self, key);
  if (!value.has_value()) return py::object();
  return Decode(self.codecs().value, *value);
}

void SetMany(PyTransaction& self, py::handle entries) {
  Transaction& tx = self.tx();
  const std::vector<std::pair<std::string, std::string>> encoded =
      EncodeEntries(entries, self.codecs());
  const std::vector<std::pair<std::string_view, std::string_view>> views = Views(encoded);
  absl::Status status;
  if (views.size() >= kReleaseGilEntries) {
    py::gil_scoped_release unlocked;
    status = tx.set_many(views);
  } else {
    status = tx.set_many(views);
  }
  ThrowIfError(status);
}

void Update(PyTransaction& self, py::handle key, py::function fn) {
  const CodecKind value_codec = self.codecs().value;
  // A Python exception from fn propagates through the C++ update, which changes nothing then
  // (transaction.h).
  ThrowIfError(self.tx().update(
      Encode(self.codecs().key, key),
      [&](std::optional<std::string_view> old) -> std::optional<std::string> {
        py::object before = old.has_value() ? Decode(value_codec, *old) : py::object();
        py::object after = fn(before ? before : py::none());
        if (after.is_none()) return std::nullopt;
        return Encode(value_codec, after);
      }));
}

}  // namespace

std::vector<std::pair<std::string, std::string>> EncodeEntries(py::handle entries,
                                                               const Codecs& codecs) {
  py::object pairs = py::hasattr(entries, "items") ? entries.attr("items")()
                                                   : py::reinterpret_borrow<py::object>(entries);
  std::vector<std::pair<std::string, std::string>> encoded;
  if (py::hasattr(pairs, "__len__")) encoded.reserve(py::len(pairs));
  for (py::handle pair : pairs) {
    py::tuple kv = py::reinterpret_borrow<py::object>(pair).cast<py::tuple>();
    if (kv.size() != 2) throw py::value_error("atomap: each entry must be a (key, value) pair");
    encoded.emplace_back(Encode(codecs.key, kv[0]), Encode(codecs.value, kv[1]));
  }
  return encoded;
}

std::vector<std::pair<std::string_view, std::string_view>> Views(
    const std::vector<std::pair<std::string, std::string>>& entries) {
  std::vector<std::pair<std::string_view, std::string_view>> views;
  views.reserve(entries.size());
  for (const auto& [key, value] : entries) views.emplace_back(key, value);
  return views;
}

PyTransaction::PyTransaction(std::unique_ptr<PinnedTransaction> owned, Codecs codecs)
    : tx_(&*owned->tx),
      domain_(owned->domain.get()),
      owned_(std::move(owned)),
      box_(ThreadBox::ForThisThread()),  // after begin: B1
      codecs_(codecs),
      borrowed_(false) {}

PyTransaction::~PyTransaction() {
  if (owned_) ThreadBox::Release(box_, std::move(owned_));
}

Transaction& PyTransaction::tx() {
  if (borrowed_) {
    if (tx_ == nullptr) {
      Fail(absl::StatusCode::kFailedPrecondition,
           "atomap: a swap function's transaction is usable only while that function runs");
    }
    CheckSameProcess(*domain_);
    return *tx_;
  }
  if (!owned_ || !owned_->tx.has_value()) {
    Fail(absl::StatusCode::kFailedPrecondition,
         "atomap: the transaction was already passed to compare_and_set");
  }
  CheckUsable(*owned_->domain);
  if (!ThreadBox::IsThisThread(box_.get())) {
    Fail(absl::StatusCode::kFailedPrecondition,
         "atomap: a Transaction from begin() is usable only on the thread that began it");
  }
  ThreadBox::Drain();
  return *owned_->tx;
}

Transaction PyTransaction::Take() {
  if (borrowed_) {
    Fail(absl::StatusCode::kInvalidArgument,
         "atomap: compare_and_set takes a Transaction from begin(), not a swap function's");
  }
  Transaction taken = std::move(tx());
  owned_->tx.reset();
  tx_ = nullptr;
  return taken;
}

void BindTransaction(py::module_& module) {
  py::class_<PyTransaction>(
      module, "Transaction",
      "A private, editable copy of one version: what a swap function edits (usable only while "
      "it runs), or what begin() returns for compare_and_set (usable only on its thread). "
      "get, [] and len see its own writes.")
      .def(
          "set",
          [](PyTransaction& self, py::handle key, py::handle value) {
            const std::string k = Encode(self.codecs().key, key);
            const std::string v = Encode(self.codecs().value, value);
            ThrowIfError(self.tx().set(k, v));
          },
          py::arg("key"), py::arg("value"), "Sets `key` to `value`.")
      .def(
          "erase",
          [](PyTransaction& self, py::handle key) {
            return ValueOrThrow(self.tx().erase(Encode(self.codecs().key, key)));
          },
          py::arg("key"), "Erases `key`; True if it was present.")
      .def(
          "get",
          [](PyTransaction& self, py::handle key, py::object fallback) {
            py::object value = Lookup(self, key);
            return value ? value : fallback;
          },
          py::arg("key"), py::arg("default") = py::none(),
          "The value of `key` (as this transaction has it), or `default`.")
      .def("__getitem__",
           [](PyTransaction& self, py::handle key) {
             py::object value = Lookup(self, key);
             if (!value) throw py::key_error(py::repr(key));
             return value;
           })
      .def("__setitem__",
           [](PyTransaction& self, py::handle key, py::handle value) {
             const std::string k = Encode(self.codecs().key, key);
             const std::string v = Encode(self.codecs().value, value);
             ThrowIfError(self.tx().set(k, v));
           })
      .def("__delitem__",
           [](PyTransaction& self, py::handle key) {
             if (!ValueOrThrow(self.tx().erase(Encode(self.codecs().key, key)))) {
               throw py::key_error(py::repr(key));
             }
           })
      .def("__contains__",
           [](PyTransaction& self, py::handle key) { return Get(self, key).has_value(); })
      .def("__len__", [](PyTransaction& self) { return self.tx().size(); })
      .def("update", &Update, py::arg("key"), py::arg("fn"),
           "Sets `key` to fn(old value or None); a None result erases it. An exception from fn "
           "propagates and leaves the transaction as it was.")
      .def("set_many", &SetMany, py::arg("entries"),
           "Sets every (key, value) of `entries` (a mapping, or an iterable of pairs); of equal "
           "keys the last wins. All or nothing for bad sizes. Large inputs are written with the "
           "GIL released.")
      .def_property(
          "tag", [](PyTransaction& self) { return self.tx().tag(); },
          [](PyTransaction& self, std::uint64_t tag) { self.tx().set_tag(tag); },
          "The 64-bit tag the published version will carry (its base's unless set).")
      .def_property_readonly(
          "active",
          [](PyTransaction& self) {
            try {
              return self.tx().active();
            } catch (const StatusError&) {
              return false;
            }
          },
          "False once published, or no longer usable.");
}

}  // namespace atomap::python

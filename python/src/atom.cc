// atomap.Atom: load, get, swap, begin / compare_and_set, wait_for_change, watch, reset.
#include <Python.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "atom_handle.h"
#include "atomap/watcher.h"
#include "errors.h"
#include "handles.h"

namespace atomap::python {
namespace {

namespace py = pybind11;

// Waits are cut into slices this long, so that Ctrl-C (signals) and close() are noticed while a
// thread waits with the GIL released.
constexpr absl::Duration kWaitSlice = absl::Milliseconds(200);

// atomap.Change (a namedtuple made at import; kept for the process's life, like a type).
PyObject* change_type = nullptr;

py::object Wrap(std::unique_ptr<PinnedSnapshot> pinned, Codecs codecs) {
  return py::cast(new PySnapshot(std::move(pinned), codecs),
                  py::return_value_policy::take_ownership);
}

absl::Time DeadlineOf(const std::optional<double>& timeout) {
  if (!timeout.has_value()) return absl::InfiniteFuture();
  if (!(*timeout >= 0)) throw py::value_error("atomap: timeout must be None or seconds >= 0");
  return absl::Now() + absl::Seconds(*timeout);
}

// Between two slices of a wait (with the GIL): a pending signal's exception (KeyboardInterrupt),
// or the domain closed meanwhile.
void BetweenSlices(const DomainHolder& domain) {
  if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  CheckUsable(domain);
}

py::object Load(PyAtom& self) {
  Atom& atom = self.atom();
  return Wrap(std::make_unique<PinnedSnapshot>(self.domain(), [&] { return atom.load(); }),
              self.codecs());
}

py::object GetOne(PyAtom& self, py::handle key, py::object fallback) {
  Atom& atom = self.atom();
  const std::string encoded = Encode(self.codecs().key, key);
  absl::StatusOr<Snapshot> snapshot = atom.load();  // dropped on this thread, below
  ThrowIfError(snapshot.status());
  const std::optional<std::string_view> value = snapshot->map().get(encoded);
  if (!value.has_value()) return fallback;
  py::object decoded = Decode(self.codecs().value, *value);
  return decoded ? decoded : fallback;
}

py::object Swap(PyAtom& self, py::function fn) {
  Atom& atom = self.atom();
  const Codecs codecs = self.codecs();
  const DomainHolder* domain = self.domain().get();
  std::optional<py::error_already_set> raised;
  auto pinned = std::make_unique<PinnedSnapshot>(self.domain(), [&] {
    return atom.swap([&](Transaction& tx) -> absl::Status {
      auto* handle = new PyTransaction(&tx, domain, codecs);
      py::object py_tx = py::cast(handle, py::return_value_policy::take_ownership);
      try {
        fn(py_tx);
      } catch (py::error_already_set& error) {
        handle->EndBorrow();
        raised.emplace(std::move(error));
        // Not published; swap frees the attempt and returns this status, and the Python
        // exception is raised below instead.
        return absl::CancelledError("atomap: the swap function raised");
      }
      handle->EndBorrow();
      return absl::OkStatus();
    });
  });
  if (raised.has_value()) {
    pinned.reset();
    raised->restore();  // the function's exception, unchanged
    throw py::error_already_set();
  }
  return Wrap(std::move(pinned), codecs);
}

py::object Begin(PyAtom& self, const PySnapshot& base) {
  Atom& atom = self.atom();
  Transaction tx = ValueOrThrow(atom.begin(*base.Hold()->snapshot));
  return py::cast(
      new PyTransaction(std::make_unique<PinnedTransaction>(self.domain(), std::move(tx)),
                        self.codecs()),
      py::return_value_policy::take_ownership);
}

py::object CompareAndSet(PyAtom& self, PyTransaction& tx) {
  Atom& atom = self.atom();
  Transaction taken = tx.Take();
  return Wrap(std::make_unique<PinnedSnapshot>(
                  self.domain(), [&] { return atom.compare_and_set(std::move(taken)); }),
              self.codecs());
}

py::object Reset(PyAtom& self, py::handle entries) {
  Atom& atom = self.atom();
  const std::vector<std::pair<std::string, std::string>> encoded =
      EncodeEntries(entries, self.codecs());
  const std::vector<std::pair<std::string_view, std::string_view>> views = Views(encoded);
  std::unique_ptr<PinnedSnapshot> pinned;
  if (views.size() >= kReleaseGilEntries) {
    py::gil_scoped_release unlocked;
    pinned = std::make_unique<PinnedSnapshot>(self.domain(), [&] { return atom.reset(views); });
  } else {
    pinned = std::make_unique<PinnedSnapshot>(self.domain(), [&] { return atom.reset(views); });
  }
  return Wrap(std::move(pinned), self.codecs());
}

py::object WaitForChange(PyAtom& self, std::uint64_t seen, std::optional<double> timeout) {
  Atom& atom = self.atom();
  const absl::Time deadline = DeadlineOf(timeout);
  for (;;) {
    const absl::Duration slice =
        std::clamp(deadline - absl::Now(), absl::ZeroDuration(), kWaitSlice);
    std::unique_ptr<PinnedSnapshot> pinned;
    {
      py::gil_scoped_release unlocked;
      pinned = std::make_unique<PinnedSnapshot>(self.domain(),
                                                [&] { return atom.wait_for_change(seen, slice); });
    }
    if (pinned->snapshot.ok()) return Wrap(std::move(pinned), self.codecs());
    if (pinned->snapshot.status().code() != absl::StatusCode::kDeadlineExceeded) {
      ThrowIfError(pinned->snapshot.status());
    }
    if (absl::Now() >= deadline) return py::none();
    BetweenSlices(*self.domain());
  }
}

// A change as the watcher's callback saw it (C++ only: the callback runs without the GIL).
struct RawChange {
  const char* kind;
  std::string key;
  std::optional<std::string> old_value;
  std::optional<std::string> new_value;
};

// Atom.watch()'s iterator: a Watcher, and the changes of its last diff not yet yielded.
class WatchIterator {
 public:
  WatchIterator(DomainRef domain, Watcher watcher, Codecs codecs, std::optional<double> timeout)
      : domain_(std::move(domain)),
        watcher_(std::move(watcher)),
        codecs_(codecs),
        timeout_(timeout) {}

  py::object Next() {
    CheckUsable(*domain_);
    const absl::Time deadline = DeadlineOf(timeout_);
    while (pending_.empty()) {
      const absl::Duration slice =
          std::clamp(deadline - absl::Now(), absl::ZeroDuration(), kWaitSlice);
      std::vector<RawChange> raw;
      absl::StatusOr<bool> delivered;
      {
        py::gil_scoped_release unlocked;
        std::lock_guard<std::mutex> lock(mu_);  // Watcher: one thread at a time
        ThreadBox::Drain();
        delivered =
            watcher_.Next([&](const MapDiff& diff, const Snapshot&) { Collect(diff, raw); }, slice);
      }
      if (!delivered.ok()) ThrowIfError(delivered.status());
      // One diff's changes in key order, whatever their kind (each part is sorted already).
      std::sort(raw.begin(), raw.end(),
                [](const RawChange& a, const RawChange& b) { return a.key < b.key; });
      for (RawChange& change : raw) Queue(change);
      if (!pending_.empty()) break;
      if (!*delivered && absl::Now() >= deadline) throw py::stop_iteration();
      BetweenSlices(*domain_);
    }
    py::object next = std::move(pending_.front());
    pending_.pop_front();
    return next;
  }

  std::uint64_t version() const {
    // Another thread's Next may hold mu_ for a wait slice: wait for it without the GIL.
    py::gil_scoped_release unlocked;
    std::lock_guard<std::mutex> lock(mu_);
    return watcher_.version();
  }

 private:
  static void Collect(const MapDiff& diff, std::vector<RawChange>& out) {
    for (const auto& [key, value] : diff.added) out.push_back({"added", key, std::nullopt, value});
    for (const auto& [key, value] : diff.removed) {
      out.push_back({"removed", key, value, std::nullopt});
    }
    for (const MapDiff::Change& change : diff.changed) {
      out.push_back({"changed", change.key, change.old_value, change.new_value});
    }
  }

  // Entries that do not decode are skipped (codec.h C2).
  void Queue(const RawChange& change) {
    py::object key = Decode(codecs_.key, change.key);
    if (!key) return;
    py::object old_value = py::none();
    py::object new_value = py::none();
    if (change.old_value && !(old_value = Decode(codecs_.value, *change.old_value))) return;
    if (change.new_value && !(new_value = Decode(codecs_.value, *change.new_value))) return;
    pending_.push_back(
        py::reinterpret_borrow<py::object>(change_type)(change.kind, key, old_value, new_value));
  }

  DomainRef domain_;
  mutable std::mutex mu_;
  Watcher watcher_;  // guarded by mu_
  Codecs codecs_;
  std::optional<double> timeout_;
  std::deque<py::object> pending_;  // GIL-guarded
};

py::object Watch(PyAtom& self, std::optional<double> timeout) {
  Atom& atom = self.atom();
  absl::StatusOr<Watcher> watcher;
  {
    py::gil_scoped_release unlocked;  // copies the map
    watcher = Watcher::Start(atom);
  }
  return py::cast(
      new WatchIterator(self.domain(), ValueOrThrow(std::move(watcher)), self.codecs(), timeout),
      py::return_value_policy::take_ownership);
}

}  // namespace

PyAtom MakeAtom(DomainRef domain, const std::string& name, Codecs codecs, bool create) {
  absl::StatusOr<Atom> atom;
  {
    py::gil_scoped_release unlocked;  // creating may wait for the domain's locks
    atom = create ? domain->domain.atom(name) : domain->domain.find_atom(name);
  }
  return PyAtom(domain, ValueOrThrow(std::move(atom)), codecs);
}

void BindAtom(py::module_& module) {
  py::object namedtuple = py::module_::import("collections").attr("namedtuple");
  py::object change = namedtuple("Change", "kind key old new", py::arg("module") = "atomap");
  change.attr("__doc__") =
      "One change a watch() delivers: kind is 'added', 'removed' or 'changed'; old is None for "
      "'added', new is None for 'removed'.";
  change_type = change.inc_ref().ptr();
  module.add_object("Change", change);

  py::class_<WatchIterator>(module, "WatchIterator",
                            "Atom.watch()'s iterator of Change; waits with the GIL released.")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &WatchIterator::Next)
      .def_property_readonly("version", &WatchIterator::version,
                             "The version last delivered (or found at start).");

  py::class_<PyAtom>(module, "Atom",
                     "A named map of the domain that many processes change atomically. Keys and "
                     "values are encoded with its codecs (key=, value= of Domain.atom).")
      .def_property_readonly("name", &PyAtom::name, "The atom's name.")
      .def_property_readonly(
          "key_codec", [](const PyAtom& self) { return self.codecs().key; },
          "The codec of its keys.")
      .def_property_readonly(
          "value_codec", [](const PyAtom& self) { return self.codecs().value; },
          "The codec of its values.")
      .def("load", &Load, "The current version, as a Snapshot (close it, or use `with`).")
      .def("get", &GetOne, py::arg("key"), py::arg("default") = py::none(),
           "The current value of `key` (a copy), or `default`: a load, a get and a close.")
      .def(
          "version", [](PyAtom& self) { return ValueOrThrow(self.atom().version()); },
          "The current version number (0: never changed).")
      .def("swap", &Swap, py::arg("fn"),
           "Runs fn(tx) on a Transaction over the current version and publishes the result "
           "atomically; returns the published Snapshot. fn MAY RUN MORE THAN ONCE (another "
           "writer published first): keep it free of other side effects. An exception from fn "
           "propagates unchanged and leaves the atom unchanged.")
      .def("begin", &Begin, py::arg("base"),
           "A Transaction over `base`'s version, to publish with compare_and_set (usable only "
           "on this thread).")
      .def("compare_and_set", &CompareAndSet, py::arg("tx"),
           "Publishes `tx` if the atom still holds the version it began from; returns the "
           "published Snapshot. LostRace if another writer published first.")
      .def("wait_for_change", &WaitForChange, py::arg("seen_version"),
           py::arg("timeout") = py::none(),
           "Waits (GIL released) until the version differs from `seen_version`, and returns the "
           "newer Snapshot; None after `timeout` seconds without a change (None: no limit).")
      .def("watch", &Watch, py::arg("timeout") = py::none(),
           "An iterator of Change: each key added, removed or changed since the previous step, "
           "waiting (GIL released) for the next version. Stops after `timeout` seconds without "
           "a change (None: never).")
      .def(
          "add",
          [](PyAtom& self, py::handle key, std::uint64_t delta) {
            const std::string encoded = Encode(self.codecs().key, key);
            return ValueOrThrow(self.atom().add(encoded, delta));
          },
          py::arg("key"), py::arg("delta") = 1,
          "Adds `delta` to the u64 at `key` (8 bytes as the U64 codec stores them; absent: 0; "
          "wrapping) as one published version, and returns the new value: Atom::add, the "
          "declarative form, which runs no Python code. FailedPreconditionError if the value "
          "is not 8 bytes.")
      .def(
          "add_i64",
          [](PyAtom& self, py::handle key, std::int64_t delta) {
            const std::string encoded = Encode(self.codecs().key, key);
            return ValueOrThrow(self.atom().add_i64(encoded, delta));
          },
          py::arg("key"), py::arg("delta") = 1,
          "As add, for the signed i64 of the I64 codec; returns the new value.")
      .def("reset", &Reset, py::arg("entries"),
           "Makes the atom hold exactly `entries` (a mapping or (key, value) pairs), as one "
           "published version; returns it.")
      .def("__repr__", [](const PyAtom& self) {
        return "<atomap.Atom " + self.name() + " key=" + CodecName(self.codecs().key) +
               " value=" + CodecName(self.codecs().value) + ">";
      });
}

}  // namespace atomap::python

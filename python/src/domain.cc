// atomap.open and atomap.Domain (handles.h H1-H3).
#include <pthread.h>
#include <pybind11/stl.h>

#include <atomic>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "atom_handle.h"
#include "errors.h"
#include "handles.h"

namespace atomap::python {
namespace {

namespace py = pybind11;

absl::Duration Seconds(double seconds, const char* what) {
  if (std::isnan(seconds) || seconds < 0) {
    throw py::value_error(std::string(what) + " must be a number of seconds >= 0");
  }
  if (std::isinf(seconds)) return absl::InfiniteDuration();
  return absl::Seconds(seconds);
}

double ToSeconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

DomainKind KindOf(const std::string& kind) {
  if (kind == "file") return DomainKind::kFile;
  if (kind == "shm") return DomainKind::kSharedMemory;
  if (kind == "memory") return DomainKind::kInProcess;
  throw py::value_error("atomap.open: kind must be \"file\", \"shm\" or \"memory\", not \"" + kind +
                        "\"");
}

const char* KindName(DomainKind kind) {
  switch (kind) {
    case DomainKind::kFile:
      return "file";
    case DomainKind::kSharedMemory:
      return "shm";
    case DomainKind::kInProcess:
      return "memory";
  }
  return "?";
}

Durability DurabilityOf(const std::string& durability) {
  if (durability == "process") return Durability::kProcessCrash;
  if (durability == "sync") return Durability::kSync;
  throw py::value_error("atomap.open: durability must be \"process\" or \"sync\", not \"" +
                        durability + "\"");
}

class PyDomain {
 public:
  explicit PyDomain(DomainRef domain) : path_(domain->path), domain_(std::move(domain)) {}

  // The holder, checked usable (H2, H3).
  const DomainRef& ref() const {
    if (!domain_) {
      Fail(absl::StatusCode::kFailedPrecondition,
           absl::StrFormat("atomap: the domain %s is closed", path_));
    }
    CheckUsable(*domain_);
    return domain_;
  }
  bool closed() const { return !domain_ || domain_->closed.load(); }

  void Close() {
    if (!domain_) return;
    domain_->closed.store(true);
    DomainRef last = std::move(domain_);
    // The C++ Domain closes here unless atoms, snapshots or transactions still hold it (H1).
    py::gil_scoped_release unlocked;
    last.reset();
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  DomainRef domain_;  // null once closed
};

py::dict ParticipantDict(const ParticipantStats& p) {
  py::dict d;
  d["kind"] = p.kind == ParticipantStats::Kind::kWriter ? "writer" : "reader";
  d["slot"] = p.slot;
  d["pid"] = p.pid;
  d["uid"] = p.uid;
  d["alive"] = p.alive.has_value() ? py::object(py::bool_(*p.alive)) : py::object(py::none());
  d["pinned"] = p.pinned;
  d["pinned_epoch"] = p.pinned_epoch;
  d["epoch_lag"] = p.epoch_lag;
  d["pinned_atom_name"] = p.pinned_atom_name;
  d["versions_behind"] = p.versions_behind;
  d["retained_bytes"] = p.retained_bytes;
  d["pinned_for"] = ToSeconds(p.pinned_for);
  return d;
}

py::dict StatsDict(const DomainStats& s, bool participants) {
  py::dict d;
  d["global_epoch"] = s.global_epoch;
  d["any_pinned"] = s.any_pinned;
  d["oldest_pinned_epoch"] = s.oldest_pinned_epoch;
  d["oldest_pinned_slot"] = s.oldest_pinned_slot;
  d["oldest_pinned_pid"] = s.oldest_pinned_pid;
  d["oldest_pinned_is_reader"] = s.oldest_pinned_is_reader;
  d["oldest_pin_age"] = ToSeconds(s.oldest_pin_age);
  d["oldest_pin_retained_bytes"] = s.oldest_pin_retained_bytes;
  d["participants"] = s.participants;
  d["writers"] = s.writers;
  d["readers"] = s.readers;
  d["reader_capacity"] = s.reader_capacity;
  d["dead_participants"] = s.dead_participants;
  d["dead_readers"] = s.dead_readers;
  d["registry_path"] = s.registry_path;
  d["epoch_advances"] = s.epoch_advances;
  d["light_pins"] = s.light_pins;
  d["pending_garbage_blocks"] = s.pending_garbage_blocks;
  d["pending_garbage_bytes"] = s.pending_garbage_bytes;
  d["data_bytes"] = s.data_bytes;
  d["live_bytes"] = s.live_bytes;
  d["free_bytes"] = s.free_bytes;
  d["unused_bytes"] = s.unused_bytes;
  if (participants) {
    py::list list;
    for (const ParticipantStats& p : s.participant_list) list.append(ParticipantDict(p));
    d["participant_list"] = list;
  }
  d["damage"] =
      s.damage.ok() ? py::object(py::none()) : py::object(py::str(std::string(s.damage.message())));
  return d;
}

py::dict CheckDict(const CheckReport& r) {
  py::dict d;
  d["ok"] = r.ok();
  d["problems"] = r.problems;
  d["reachable_bytes"] = r.reachable_bytes;
  d["free_bytes"] = r.free_bytes;
  d["pending_bytes"] = r.pending_bytes;
  d["unused_bytes"] = r.unused_bytes;
  d["in_flight_bytes"] = r.in_flight_bytes;
  d["leaked_bytes"] = r.leaked_bytes;
  d["space_checked"] = r.space_checked;
  d["atoms_checked"] = r.atoms_checked;
  d["others_attached"] = r.others_attached;
  d["skipped"] = r.skipped;
  return d;
}

// A str, bytes or os.PathLike path, as the bytes the library opens (os.fsencode).
std::string PathOf(py::handle path) {
  py::object encoded = py::module_::import("os").attr("fsencode")(path);
  return std::string(encoded.cast<py::bytes>());
}

PyDomain Open(py::handle path_object, bool create, bool read_only, const std::string& kind,
              std::optional<std::uint64_t> max_size, std::uint32_t permissions, bool verify_reads,
              const std::string& durability, double lock_timeout, bool allow_foreign_owner,
              bool exclusive) {
  const std::string path = PathOf(path_object);
  Options options;
  options.create_if_missing = create;
  options.error_if_exists = exclusive;
  options.read_only = read_only;
  options.kind = KindOf(kind);
  if (max_size.has_value()) options.max_size = *max_size;
  options.permissions = permissions;
  options.verify_reads = verify_reads;
  options.durability = DurabilityOf(durability);
  options.lock_timeout = Seconds(lock_timeout, "lock_timeout");
  options.allow_foreign_owner = allow_foreign_owner;
  absl::StatusOr<Domain> opened;
  {
    py::gil_scoped_release unlocked;  // Open may wait for another writer's lock
    opened = Domain::Open(path, options);
  }
  return PyDomain(std::make_shared<DomainHolder>(ValueOrThrow(std::move(opened))));
}

std::atomic<std::uint64_t> fork_generation{0};
const bool fork_handler_registered = [] {
  pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1, std::memory_order_relaxed); });
  return true;
}();

}  // namespace

std::uint64_t ForkGeneration() {
  (void)fork_handler_registered;
  return fork_generation.load(std::memory_order_relaxed);
}

void CheckSameProcess(const DomainHolder& domain) {
  if (domain.Inherited()) {
    const pid_t now = getpid();
    Fail(absl::StatusCode::kFailedPrecondition,
         absl::StrFormat("atomap: %s was opened by process %d, before fork(); a handle inherited "
                         "across fork() is inert in the child (process %d): call atomap.open "
                         "again in the child",
                         domain.path, domain.pid, now));
  }
}

void CheckUsable(const DomainHolder& domain) {
  CheckSameProcess(domain);
  if (domain.closed.load()) {
    Fail(absl::StatusCode::kFailedPrecondition,
         absl::StrFormat("atomap: the domain %s is closed", domain.path));
  }
}

void BindDomain(py::module_& module) {
  py::class_<PyDomain> domain(module, "Domain",
                              "One open domain: a shared file (or /dev/shm object, or in-process "
                              "memory) holding named atoms. A context manager: `with` closes it.");
  domain
      .def(
          "atom",
          [](const PyDomain& self, const std::string& name, CodecKind key, CodecKind value) {
            return MakeAtom(self.ref(), name, Codecs{key, value}, /*create=*/true);
          },
          py::arg("name"), py::kw_only(), py::arg("key") = CodecKind::kBytes,
          py::arg("value") = CodecKind::kBytes,
          "The atom named `name`, created empty if it does not exist (NotFoundError on a "
          "read-only domain). `key` and `value` are the codecs its entries are read and written "
          "with (atomap.BYTES by default).")
      .def(
          "find_atom",
          [](const PyDomain& self, const std::string& name, CodecKind key, CodecKind value) {
            return MakeAtom(self.ref(), name, Codecs{key, value}, /*create=*/false);
          },
          py::arg("name"), py::kw_only(), py::arg("key") = CodecKind::kBytes,
          py::arg("value") = CodecKind::kBytes,
          "The atom named `name` if it exists (NotFoundError otherwise); never creates one.")
      .def(
          "atom_names", [](const PyDomain& self) { return self.ref()->domain.atom_names(); },
          "The names of every atom, sorted by their bytes.")
      .def(
          "stats",
          [](const PyDomain& self, bool participants) {
            DomainRef ref = self.ref();
            DomainStats stats;
            {
              py::gil_scoped_release unlocked;  // walks the free lists
              stats = ref->domain.stats(StatsOptions{.participants = participants});
            }
            return StatsDict(stats, participants);
          },
          py::kw_only(), py::arg("participants") = false,
          "Reclamation and space figures (a dict): pending_garbage_blocks/bytes, participants, "
          "the oldest pin, live/free/unused bytes, ... as atomap::DomainStats. With "
          "participants=True also `participant_list`: a dict per attached writer and reader "
          "(pid, pinned, epoch_lag, pinned_atom_name, retained_bytes, pinned_for, ...).")
      .def(
          "check",
          [](const PyDomain& self, bool repair, double wait_for_exclusive) {
            DomainRef ref = self.ref();
            CheckOptions options;
            options.repair = repair;
            options.wait_for_exclusive = Seconds(wait_for_exclusive, "wait_for_exclusive");
            absl::StatusOr<CheckReport> report;
            {
              py::gil_scoped_release unlocked;
              report = ref->domain.check(options);
            }
            return CheckDict(ValueOrThrow(std::move(report)));
          },
          py::kw_only(), py::arg("repair") = false, py::arg("wait_for_exclusive") = 0.0,
          "Verifies the domain's structure and space accounting; returns a dict whose "
          "`problems` lists what is wrong (empty: all is well). With repair=True frees leaked "
          "blocks (needs the domain to itself). Do not use the domain from other threads "
          "meanwhile.")
      .def(
          "sync",
          [](const PyDomain& self) {
            DomainRef ref = self.ref();
            absl::Status status;
            {
              py::gil_scoped_release unlocked;
              status = ref->domain.sync();
            }
            ThrowIfError(status);
          },
          "Writes the file to stable storage: every version published before the call survives "
          "a power loss.")
      .def("close", &PyDomain::Close,
           "Closes the domain: every later call through it or its atoms raises "
           "FailedPreconditionError. The file is detached once no atom, snapshot or transaction "
           "of it is left. Idempotent.")
      .def("__enter__", [](py::object self) { return self; })
      .def("__exit__", [](PyDomain& self, py::args) { self.Close(); })
      .def_property_readonly("path", &PyDomain::path,
                             "The file's path (for kind=\"shm\" the /dev/shm path).")
      .def_property_readonly(
          "read_only", [](const PyDomain& self) { return self.ref()->domain.read_only(); },
          "True if opened read_only.")
      .def_property_readonly(
          "kind", [](const PyDomain& self) { return KindName(self.ref()->domain.kind()); },
          "\"file\", \"shm\" or \"memory\".")
      .def_property_readonly(
          "created", [](const PyDomain& self) { return self.ref()->domain.created(); },
          "True if this open created the domain.")
      .def_property_readonly("closed", &PyDomain::closed, "True once close() was called.")
      .def("__repr__", [](const PyDomain& self) {
        return std::string("<atomap.Domain ") + (self.closed() ? "closed " : "") + self.path() +
               ">";
      });

  module.def("open", &Open, py::arg("path"), py::kw_only(), py::arg("create") = true,
             py::arg("read_only") = false, py::arg("kind") = "file",
             py::arg("max_size") = py::none(), py::arg("permissions") = 0600,
             py::arg("verify_reads") = false, py::arg("durability") = "process",
             py::arg("lock_timeout") = 10.0, py::arg("allow_foreign_owner") = false,
             py::arg("exclusive") = false,
             R"doc(Opens (or, with create=True, creates) the domain at `path` and returns a Domain.

kind: "file" (a file at path), "shm" (/dev/shm/atomap.<path>, path a plain name) or "memory"
(this process only). max_size: the most bytes the domain may hold (None: the library's 64 GiB;
used only when creating). permissions: mode bits of a created file. read_only: open as a
registered reader. verify_reads: bounds-check every read (for files that may be damaged).
durability: "process" (a crash of processes loses nothing) or "sync" (every swap is on stable
storage when it returns). lock_timeout: seconds any lock wait may take. allow_foreign_owner:
open for writing a file another user owns. exclusive: only ever create (AlreadyExistsError if
anything is at path; of processes racing to create, exactly one succeeds). The GIL is released while it waits for locks.)doc");
}

}  // namespace atomap::python

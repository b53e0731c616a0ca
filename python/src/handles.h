// The objects the binding hands to Python, and the rules that keep the C++ handles behind them
// valid whatever order Python drops them in.
//
// Invariants
//  (H1) The C++ Domain lives in a DomainHolder, shared (std::shared_ptr) by every Python object
//       made from it: Domain, Atom, Snapshot, Transaction, watch iterator. It is destroyed when
//       the last of them goes, so it outlives every snapshot and transaction (snapshot.h).
//  (H2) Domain.close() marks the holder closed: every later call through the Domain or its atoms
//       raises FailedPreconditionError ("closed"). Open snapshots stay readable until closed.
//  (H3) A holder remembers the pid that opened it. In a child of fork() every call raises
//       FailedPreconditionError naming fork() and telling to call atomap.open again; the C++
//       handles are inert there (domain.h), so dropping them is harmless.
//  (H4) A C++ Snapshot or Transaction lives in a Pinned (thread_box.h) together with its holder
//       (declared first, destroyed last), and is released through ThreadBox::Release, on its
//       owner thread or handed to it (B3). A snapshot's Pinned is shared by the Python object
//       and the reads in progress (PySnapshot::Hold): released when the last of them lets go.
//  (H5) A swap's transaction is borrowed: the Python Transaction points at it only while the
//       swap function runs, and refuses every call after (`tx unusable after fn returns`).
//  (H6) Python objects are touched only with the GIL held; the GIL is released around waits and
//       long calls, with every argument converted to C++ values first.
//
// Thread safety: the Python-facing state of these objects is guarded by the GIL; the C++ handles
// follow their own contracts (Domain and Atom from any thread; Snapshot and Transaction pinned
// to their thread, H4).
#ifndef ATOMAP_PYTHON_SRC_HANDLES_H_
#define ATOMAP_PYTHON_SRC_HANDLES_H_

#include <pybind11/pybind11.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "atomap/domain.h"
#include "atomap/snapshot.h"
#include "atomap/transaction.h"
#include "codec.h"
#include "thread_box.h"

namespace atomap::python {

// Counts the fork()s this process descends from (a pthread_atfork child handler adds one): a
// cheaper test than getpid(), a system call, on every call (H3).
std::uint64_t ForkGeneration();

struct DomainHolder {
  explicit DomainHolder(Domain opened)
      : domain(std::move(opened)),
        pid(getpid()),
        generation(ForkGeneration()),
        path(domain.path()) {}

  bool Inherited() const { return ForkGeneration() != generation; }

  Domain domain;
  const pid_t pid;  // for the message (H3)
  const std::uint64_t generation;  // (H3)
  const std::string path;
  std::atomic<bool> closed{false};  // (H2)
};
using DomainRef = std::shared_ptr<DomainHolder>;

// Raises FailedPreconditionError after fork() (H3) or close() (H2).
void CheckUsable(const DomainHolder& domain);
// Only the fork check (H3): for snapshots, which stay readable after close().
void CheckSameProcess(const DomainHolder& domain);

// A key and a value codec: what a typed atom and everything read from it decode with.
struct Codecs {
  CodecKind key = CodecKind::kBytes;
  CodecKind value = CodecKind::kBytes;
};

// (H4): built in place from the load (never moved: atom.cc LoadPinned says why).
struct PinnedSnapshot final : Pinned {
  template <class Load>
  PinnedSnapshot(DomainRef holder, Load&& load) : domain(std::move(holder)), snapshot(load()) {}
  bool Inherited() const override { return domain->Inherited(); }
  DomainRef domain;  // declared first: destroyed last
  absl::StatusOr<Snapshot> snapshot;
};

struct PinnedTransaction final : Pinned {
  PinnedTransaction(DomainRef holder, Transaction begun)
      : domain(std::move(holder)), tx(std::move(begun)) {}
  bool Inherited() const override { return domain->Inherited(); }
  DomainRef domain;  // declared first: destroyed last
  std::optional<Transaction> tx;  // empty once compare_and_set took it
};

class PySnapshot {
 public:
  // Takes a loaded snapshot (raises its error if it failed). Call on the loading thread.
  PySnapshot(std::unique_ptr<PinnedSnapshot> pinned, Codecs codecs);
  PySnapshot(const PySnapshot&) = delete;
  PySnapshot& operator=(const PySnapshot&) = delete;

  // The pinned version, held for the caller's read; raises Error once closed, and after fork().
  // Why a shared hold: Python code that a read runs (a garbage collection's finalizers, while
  // it makes objects) may close this snapshot meanwhile, even from another thread; the version
  // is released (through the box, B3) when the last holder lets go.
  std::shared_ptr<const PinnedSnapshot> Hold() const;
  const Codecs& codecs() const { return codecs_; }
  bool closed() const { return pinned_ == nullptr; }
  // BufferError while memoryviews from view() are alive (as mmap.close()).
  void Close();

  // The buffer exporter's bookkeeping (snapshot.cc).
  void AddExport() { ++exports_; }
  void DropExport() { --exports_; }

 private:
  std::shared_ptr<PinnedSnapshot> pinned_;  // its deleter hands it to ThreadBox::Release
  Codecs codecs_;
  int exports_ = 0;  // live memoryviews (GIL-guarded)
};

class PyTransaction {
 public:
  // A swap function's transaction (H5).
  PyTransaction(Transaction* borrowed, const DomainHolder* domain, Codecs codecs)
      : tx_(borrowed), domain_(domain), codecs_(codecs) {}
  // begin()'s: owned, pinned on the calling thread.
  PyTransaction(std::unique_ptr<PinnedTransaction> owned, Codecs codecs);
  ~PyTransaction();
  PyTransaction(const PyTransaction&) = delete;
  PyTransaction& operator=(const PyTransaction&) = delete;

  // The transaction, or an Error saying why it is no longer usable.
  Transaction& tx();
  const Codecs& codecs() const { return codecs_; }
  void EndBorrow() { tx_ = nullptr; }
  // For compare_and_set: the owned transaction, checked to be this thread's (it allocates from
  // this thread's slot).
  Transaction Take();

 private:
  Transaction* tx_;
  const DomainHolder* domain_;
  std::unique_ptr<PinnedTransaction> owned_;
  std::shared_ptr<ThreadBox> box_;
  Codecs codecs_;
  bool borrowed_ = true;
};

// The entries of a mapping (its items()) or of an iterable of (key, value) pairs, encoded.
std::vector<std::pair<std::string, std::string>> EncodeEntries(pybind11::handle entries,
                                                               const Codecs& codecs);
// Views of `entries`, for Transaction::set_many and Atom::reset.
std::vector<std::pair<std::string_view, std::string_view>> Views(
    const std::vector<std::pair<std::string, std::string>>& entries);
// Inputs at least this long are written with the GIL released (after conversion, H6).
inline constexpr std::size_t kReleaseGilEntries = 1024;

void BindDomain(pybind11::module_& module);
void BindSnapshot(pybind11::module_& module);
void BindTransaction(pybind11::module_& module);
void BindAtom(pybind11::module_& module);

}  // namespace atomap::python

#endif  // ATOMAP_PYTHON_SRC_HANDLES_H_

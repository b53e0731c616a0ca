// The C API's handles (the structs behind include/atomap/c.h's opaque types) and the error
// plumbing every entry point shares. Only the C API's own sources include this; they use only
// the installed C++ headers.
//
// Invariants
//  (H1) A domain owns its atom handles: one per name, made once, freed by atomap_close, so an
//       atomap_atom* is stable and never freed while its domain is open.
//  (H2) atomap_domain::live counts the snapshots and transactions alive over it: atomap_close
//       refuses while it is not 0, because their pins and allocations live in its mapping
//       (atomap/snapshot.h: destroyed before the Domain is closed).
//  (H3) A snapshot or transaction records the thread that made it; only that thread releases
//       it (its pin or allocations live in that thread's slot).
#ifndef ATOMAP_SRC_CAPI_HANDLES_H_
#define ATOMAP_SRC_CAPI_HANDLES_H_

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "atomap/atom.h"
#include "atomap/c.h"
#include "atomap/domain.h"
#include "atomap/snapshot.h"
#include "atomap/transaction.h"

struct atomap_atom {
  atomap::Atom atom;
  atomap_domain* domain;
  std::string name;
};

struct atomap_domain {
  atomap_domain(atomap::Domain opened, bool verify)
      : domain(std::move(opened)), verify_reads(verify) {}

  atomap::Domain domain;
  bool verify_reads;  // Options::verify_reads: reads report damage (checked_get, CheckedForEach)
  std::mutex atoms_mu;
  std::map<std::string, std::unique_ptr<atomap_atom>, std::less<>> atoms;  // (H1)
  std::atomic<std::int64_t> live{0};                                       // (H2)
};

struct atomap_snapshot {
  // Built in place from load()'s result (never moved: see Atom::load's LoadPinned).
  absl::StatusOr<atomap::Snapshot> snapshot;
  const atomap_atom* atom;  // whose version it is
  atomap_domain* domain;
  std::thread::id owner;  // (H3)
  // Bookkeeping, not contents: counted by iterators over a const snapshot.
  mutable std::atomic<std::int64_t> iterators{0};
};

struct atomap_txn {
  // From atomap_begin: the transaction itself (empty once compare_and_set took it). A swap
  // function's transaction is borrowed: `tx` points at the swap's own.
  std::optional<atomap::Transaction> owned;
  atomap::Transaction* tx;  // nullptr once spent
  atomap_atom* atom;
  std::thread::id owner;  // (H3)
  bool borrowed;
};

struct atomap_iter {
  const atomap_snapshot* snapshot;
  atomap::Map::Iterator at;
};

namespace atomap::capi {

// Records `message` as the calling thread's last error and returns `code`.
atomap_code Fail(atomap_code code, std::string_view message);
// ATOMAP_OK for OK; otherwise the status's code (ATOMAP_LOST_RACE for IsLostRace) after
// recording its message.
atomap_code FromStatus(const absl::Status& status);
// The absl code a C code stands for (ATOMAP_LOST_RACE: Aborted; unknown values: Unknown).
absl::StatusCode ToStatusCode(atomap_code code);
// How many failures this thread has recorded: a swap function's failure is told apart from a
// plain non-OK return by whether this moved.
std::uint64_t FailureCount();
const std::string& LastErrorMessage();

// Runs `body` (returning atomap_code) so that no exception leaves: one is ATOMAP_INTERNAL
// naming `function`.
template <class Body>
atomap_code Guarded(const char* function, Body&& body) noexcept {
  try {
    return body();
  } catch (const std::exception& e) {
    return Fail(ATOMAP_INTERNAL, std::string(function) + ": " + e.what());
  } catch (...) {
    return Fail(ATOMAP_INTERNAL, std::string(function) + ": an exception of unknown type");
  }
}

// INVALID_ARGUMENT "FUNCTION: WHAT is NULL" unless `pointer` is set.
atomap_code NotNull(const char* function, const void* pointer, const char* what);
// The bytes a (pointer, length) pair names: NULL is allowed with length 0 only.
atomap_code Bytes(const char* function, const void* data, std::size_t length, const char* what,
                  std::string_view* out);
// INVALID_ARGUMENT unless `given` (a struct's struct_size) is `known`, the only size of that
// struct this library has had; later versions accept every earlier size.
atomap_code KnownSize(const char* function, const char* type, std::size_t given, std::size_t known);
// FAILED_PRECONDITION unless the calling thread is `owner`.
atomap_code OnOwnerThread(const char* function, std::thread::id owner, const char* what);

// Runs `produce` (returning absl::StatusOr<Snapshot>) and wraps the snapshot in a handle bound
// to this thread, built in place. The handle counts in the domain's live (H2). On error,
// nullptr, with the error recorded and returned in *code.
template <class Produce>
atomap_snapshot* MakeSnapshot(const atomap_atom* atom, Produce&& produce, atomap_code* code) {
  atomap_domain* domain = atom->domain;
  std::unique_ptr<atomap_snapshot> handle(
      new atomap_snapshot{produce(), atom, domain, std::this_thread::get_id()});
  if (!handle->snapshot.ok()) {
    *code = FromStatus(handle->snapshot.status());
    return nullptr;
  }
  domain->live.fetch_add(1, std::memory_order_relaxed);
  *code = ATOMAP_OK;
  return handle.release();
}

}  // namespace atomap::capi

#endif  // ATOMAP_SRC_CAPI_HANDLES_H_

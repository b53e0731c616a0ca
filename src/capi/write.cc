// The C API's writes: swap with a C callback, transactions (bound to their thread, H3), and
// begin + compare_and_set.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "atomap/c.h"
#include "atomap/transaction.h"
#include "capi/handles.h"

using atomap::capi::Bytes;
using atomap::capi::Fail;
using atomap::capi::FromStatus;
using atomap::capi::Guarded;
using atomap::capi::NotNull;

namespace atomap::capi {
namespace {

// The published version as a snapshot handle in *out, or (out NULL) only its status.
template <class Produce>
atomap_code Deliver(const atomap_atom* atom, Produce&& produce, atomap_snapshot** out) {
  if (out == nullptr) return FromStatus(produce().status());
  atomap_code code = ATOMAP_OK;
  atomap_snapshot* snapshot = MakeSnapshot(atom, std::forward<Produce>(produce), &code);
  if (snapshot != nullptr) *out = snapshot;
  return code;
}

// `tx` may be used by this thread now: not NULL, this thread's, not yet given to
// compare_and_set.
atomap_code Usable(const char* function, const atomap_txn* tx) {
  if (atomap_code k = NotNull(function, tx, "tx")) return k;
  if (atomap_code k = OnOwnerThread(function, tx->owner, "transaction")) return k;
  if (tx->tx == nullptr) {
    return Fail(ATOMAP_FAILED_PRECONDITION,
                absl::StrCat(function, ": the transaction was already given to "
                                       "atomap_compare_and_set (only atomap_txn_free remains)"));
  }
  return ATOMAP_OK;
}

// What a swap function's non-OK return becomes inside the C++ swap: a status with the message
// of the failing call fn made (if it made one since `failures_before`), so that swap's caller
// reads the real reason in atomap_last_error().
absl::Status SwapFunctionStatus(atomap_code code, std::uint64_t failures_before) {
  if (FailureCount() != failures_before)
    return absl::Status(ToStatusCode(code), LastErrorMessage());
  return absl::Status(ToStatusCode(code),
                      absl::StrCat("atomap_swap: the swap function returned ATOMAP_",
                                   atomap_code_name(code), "; nothing was published"));
}

}  // namespace
}  // namespace atomap::capi

extern "C" {

atomap_code atomap_swap(atomap_atom* atom, atomap_swap_fn fn, void* user, atomap_snapshot** out) {
  return Guarded("atomap_swap", [&] {
    if (atomap_code k = NotNull("atomap_swap", atom, "atom")) return k;
    if (fn == nullptr) return Fail(ATOMAP_INVALID_ARGUMENT, "atomap_swap: fn is NULL");
    // The code fn returned, passed on exactly (the C++ status would turn LOST_RACE and codes
    // this library does not know into others).
    std::optional<atomap_code> refused;
    auto run = [&](atomap::Transaction& tx) -> absl::Status {
      atomap_txn borrowed{std::nullopt, &tx, atom, std::this_thread::get_id(), true};
      const std::uint64_t failures_before = atomap::capi::FailureCount();
      const atomap_code code = fn(&borrowed, user);
      if (code == ATOMAP_OK) return absl::OkStatus();
      refused = code;
      return atomap::capi::SwapFunctionStatus(code, failures_before);
    };
    const atomap_code code = atomap::capi::Deliver(atom, [&] { return atom->atom.swap(run); }, out);
    if (code != ATOMAP_OK && refused) return *refused;  // the message is already recorded
    return code;
  });
}

atomap_code atomap_txn_set(atomap_txn* tx, const void* key, size_t key_len, const void* value,
                           size_t value_len) {
  return Guarded("atomap_txn_set", [&] {
    if (atomap_code k = atomap::capi::Usable("atomap_txn_set", tx)) return k;
    std::string_view k, v;
    if (atomap_code c = Bytes("atomap_txn_set", key, key_len, "key", &k)) return c;
    if (atomap_code c = Bytes("atomap_txn_set", value, value_len, "value", &v)) return c;
    return FromStatus(tx->tx->set(k, v));
  });
}

atomap_code atomap_txn_erase(atomap_txn* tx, const void* key, size_t key_len, int* existed) {
  return Guarded("atomap_txn_erase", [&] {
    if (atomap_code k = atomap::capi::Usable("atomap_txn_erase", tx)) return k;
    std::string_view k;
    if (atomap_code c = Bytes("atomap_txn_erase", key, key_len, "key", &k)) return c;
    absl::StatusOr<bool> erased = tx->tx->erase(k);
    if (!erased.ok()) return FromStatus(erased.status());
    if (existed != nullptr) *existed = *erased ? 1 : 0;
    return ATOMAP_OK;
  });
}

atomap_code atomap_txn_get(const atomap_txn* tx, const void* key, size_t key_len,
                           const void** value, size_t* value_len, int* found) {
  return Guarded("atomap_txn_get", [&] {
    if (atomap_code k = atomap::capi::Usable("atomap_txn_get", tx)) return k;
    if (atomap_code k = NotNull("atomap_txn_get", value, "value")) return k;
    if (atomap_code k = NotNull("atomap_txn_get", value_len, "value_len")) return k;
    if (atomap_code k = NotNull("atomap_txn_get", found, "found")) return k;
    std::string_view k;
    if (atomap_code c = Bytes("atomap_txn_get", key, key_len, "key", &k)) return c;
    const std::optional<std::string_view> got = tx->tx->get(k);
    *value = got ? got->data() : nullptr;
    *value_len = got ? got->size() : 0;
    *found = got ? 1 : 0;
    return ATOMAP_OK;
  });
}

uint64_t atomap_txn_size(const atomap_txn* tx) {
  if (tx == nullptr || tx->tx == nullptr || tx->owner != std::this_thread::get_id()) return 0;
  return tx->tx->size();
}

atomap_code atomap_txn_set_many(atomap_txn* tx, const atomap_entry* entries, size_t count) {
  return Guarded("atomap_txn_set_many", [&] {
    if (atomap_code k = atomap::capi::Usable("atomap_txn_set_many", tx)) return k;
    if (count != 0) {
      if (atomap_code k = NotNull("atomap_txn_set_many", entries, "entries")) return k;
    }
    std::vector<std::pair<std::string_view, std::string_view>> views(count);
    for (std::size_t i = 0; i < count; ++i) {
      const std::string what = absl::StrCat("entries[", i, "]");
      if (atomap_code c = Bytes("atomap_txn_set_many", entries[i].key, entries[i].key_len,
                                (what + ".key").c_str(), &views[i].first)) {
        return c;
      }
      if (atomap_code c = Bytes("atomap_txn_set_many", entries[i].value, entries[i].value_len,
                                (what + ".value").c_str(), &views[i].second)) {
        return c;
      }
    }
    return FromStatus(tx->tx->set_many(views));
  });
}

atomap_code atomap_txn_set_tag(atomap_txn* tx, uint64_t tag) {
  return Guarded("atomap_txn_set_tag", [&] {
    if (atomap_code k = atomap::capi::Usable("atomap_txn_set_tag", tx)) return k;
    tx->tx->set_tag(tag);
    return ATOMAP_OK;
  });
}

uint64_t atomap_txn_tag(const atomap_txn* tx) {
  if (tx == nullptr || tx->tx == nullptr || tx->owner != std::this_thread::get_id()) return 0;
  return tx->tx->tag();
}

atomap_code atomap_begin(atomap_atom* atom, const atomap_snapshot* base, atomap_txn** out) {
  return Guarded("atomap_begin", [&] {
    if (atomap_code k = NotNull("atomap_begin", atom, "atom")) return k;
    if (atomap_code k = NotNull("atomap_begin", base, "base")) return k;
    if (atomap_code k = NotNull("atomap_begin", out, "out")) return k;
    if (base->atom != atom) {
      return Fail(ATOMAP_INVALID_ARGUMENT,
                  absl::StrCat("atomap_begin: the base snapshot is of atom \"", base->atom->name,
                               "\", not of \"", atom->name, "\""));
    }
    absl::StatusOr<atomap::Transaction> tx = atom->atom.begin(*base->snapshot);
    if (!tx.ok()) return FromStatus(tx.status());
    auto* handle = new atomap_txn{std::nullopt, nullptr, atom, std::this_thread::get_id(), false};
    handle->owned.emplace(*std::move(tx));
    handle->tx = &*handle->owned;
    atom->domain->live.fetch_add(1, std::memory_order_relaxed);
    *out = handle;
    return ATOMAP_OK;
  });
}

atomap_code atomap_compare_and_set(atomap_atom* atom, atomap_txn* tx, atomap_snapshot** out) {
  return Guarded("atomap_compare_and_set", [&] {
    if (atomap_code k = NotNull("atomap_compare_and_set", atom, "atom")) return k;
    if (atomap_code k = atomap::capi::Usable("atomap_compare_and_set", tx)) return k;
    if (tx->borrowed) {
      return Fail(ATOMAP_FAILED_PRECONDITION,
                  "atomap_compare_and_set: a swap function's transaction is published by its "
                  "swap, not by compare_and_set");
    }
    if (tx->atom != atom) {
      return Fail(ATOMAP_INVALID_ARGUMENT,
                  absl::StrCat("atomap_compare_and_set: the transaction began on atom \"",
                               tx->atom->name, "\", not on \"", atom->name, "\""));
    }
    atomap::Transaction taken = *std::move(tx->owned);
    tx->owned.reset();
    tx->tx = nullptr;  // spent, whatever the outcome
    return atomap::capi::Deliver(
        atom, [&] { return atom->atom.compare_and_set(std::move(taken)); }, out);
  });
}

atomap_code atomap_txn_free(atomap_txn* tx) {
  return Guarded("atomap_txn_free", [&] {
    if (tx == nullptr) return ATOMAP_OK;
    if (tx->borrowed) {
      return Fail(ATOMAP_FAILED_PRECONDITION,
                  "atomap_txn_free: a swap function's transaction belongs to its swap");
    }
    if (atomap_code k = atomap::capi::OnOwnerThread("atomap_txn_free", tx->owner, "transaction")) {
      return k;
    }
    atomap_domain* domain = tx->atom->domain;
    delete tx;  // abandons it if unpublished: frees what it allocated, from this thread's slot
    domain->live.fetch_sub(1, std::memory_order_release);
    return ATOMAP_OK;
  });
}

}  // extern "C"

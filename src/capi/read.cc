// The C API's reads: snapshots (bound to their thread, H3), get, foreach, iterators, waiting.
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "atomap/c.h"
#include "atomap/map.h"
#include "capi/handles.h"

using atomap::capi::Bytes;
using atomap::capi::Fail;
using atomap::capi::FromStatus;
using atomap::capi::Guarded;
using atomap::capi::NotNull;

namespace atomap::capi {
namespace {

const Map& MapOf(const atomap_snapshot* snapshot) { return snapshot->snapshot->map(); }

void SetView(std::optional<std::string_view> found, const void** value, std::size_t* value_len,
             int* has) {
  *value = found ? found->data() : nullptr;
  *value_len = found ? found->size() : 0;
  *has = found ? 1 : 0;
}

// The plain walk, which may stop early (CheckedForEach, which reports damage, cannot).
atomap_code IterateTrusting(const Map& map, atomap_entry_fn fn, void* user) {
  for (auto [key, value] : map) {
    if (atomap_code k = fn(key.data(), key.size(), value.data(), value.size(), user)) return k;
  }
  return ATOMAP_OK;
}

// verify_reads: the checked walk; after fn stops it, the rest of the walk only looks for damage.
atomap_code IterateChecked(const Map& map, atomap_entry_fn fn, void* user) {
  atomap_code stopped = ATOMAP_OK;
  const absl::Status status = map.CheckedForEach([&](std::string_view key, std::string_view value) {
    if (stopped == ATOMAP_OK)
      stopped = fn(key.data(), key.size(), value.data(), value.size(), user);
  });
  if (stopped != ATOMAP_OK) return stopped;
  return FromStatus(status);
}

}  // namespace
}  // namespace atomap::capi

extern "C" {

atomap_code atomap_load(const atomap_atom* atom, atomap_snapshot** out) {
  return Guarded("atomap_load", [&] {
    if (atomap_code k = NotNull("atomap_load", atom, "atom")) return k;
    if (atomap_code k = NotNull("atomap_load", out, "out")) return k;
    atomap_code code = ATOMAP_OK;
    atomap_snapshot* snapshot =
        atomap::capi::MakeSnapshot(atom, [&] { return atom->atom.load(); }, &code);
    if (snapshot != nullptr) *out = snapshot;
    return code;
  });
}

atomap_code atomap_snapshot_get(const atomap_snapshot* snapshot, const void* key, size_t key_len,
                                const void** value, size_t* value_len, int* found) {
  return Guarded("atomap_snapshot_get", [&] {
    if (atomap_code k = NotNull("atomap_snapshot_get", snapshot, "snapshot")) return k;
    if (atomap_code k = NotNull("atomap_snapshot_get", value, "value")) return k;
    if (atomap_code k = NotNull("atomap_snapshot_get", value_len, "value_len")) return k;
    if (atomap_code k = NotNull("atomap_snapshot_get", found, "found")) return k;
    std::string_view k;
    if (atomap_code c = Bytes("atomap_snapshot_get", key, key_len, "key", &k)) return c;
    const atomap::Map& map = atomap::capi::MapOf(snapshot);
    if (!snapshot->domain->verify_reads) {
      atomap::capi::SetView(map.get(k), value, value_len, found);
      return ATOMAP_OK;
    }
    absl::StatusOr<std::optional<std::string_view>> checked = map.checked_get(k);
    if (!checked.ok()) return FromStatus(checked.status());
    atomap::capi::SetView(*checked, value, value_len, found);
    return ATOMAP_OK;
  });
}

uint64_t atomap_snapshot_size(const atomap_snapshot* snapshot) {
  return snapshot == nullptr ? 0 : atomap::capi::MapOf(snapshot).size();
}

uint64_t atomap_snapshot_version(const atomap_snapshot* snapshot) {
  return snapshot == nullptr ? 0 : snapshot->snapshot->version();
}

uint64_t atomap_snapshot_tag(const atomap_snapshot* snapshot) {
  return snapshot == nullptr ? 0 : snapshot->snapshot->tag();
}

atomap_code atomap_snapshot_foreach(const atomap_snapshot* snapshot, atomap_entry_fn fn,
                                    void* user) {
  return Guarded("atomap_snapshot_foreach", [&] {
    if (atomap_code k = NotNull("atomap_snapshot_foreach", snapshot, "snapshot")) return k;
    if (fn == nullptr) return Fail(ATOMAP_INVALID_ARGUMENT, "atomap_snapshot_foreach: fn is NULL");
    const atomap::Map& map = atomap::capi::MapOf(snapshot);
    return snapshot->domain->verify_reads ? atomap::capi::IterateChecked(map, fn, user)
                                          : atomap::capi::IterateTrusting(map, fn, user);
  });
}

atomap_code atomap_iter_new(const atomap_snapshot* snapshot, atomap_iter** out) {
  return Guarded("atomap_iter_new", [&] {
    if (atomap_code k = NotNull("atomap_iter_new", snapshot, "snapshot")) return k;
    if (atomap_code k = NotNull("atomap_iter_new", out, "out")) return k;
    *out = new atomap_iter{snapshot, atomap::capi::MapOf(snapshot).begin()};
    snapshot->iterators.fetch_add(1, std::memory_order_relaxed);
    return ATOMAP_OK;
  });
}

atomap_code atomap_iter_next(atomap_iter* iter, const void** key, size_t* key_len,
                             const void** value, size_t* value_len, int* has) {
  return Guarded("atomap_iter_next", [&] {
    if (atomap_code k = NotNull("atomap_iter_next", iter, "iter")) return k;
    if (atomap_code k = NotNull("atomap_iter_next", key, "key")) return k;
    if (atomap_code k = NotNull("atomap_iter_next", key_len, "key_len")) return k;
    if (atomap_code k = NotNull("atomap_iter_next", value, "value")) return k;
    if (atomap_code k = NotNull("atomap_iter_next", value_len, "value_len")) return k;
    if (atomap_code k = NotNull("atomap_iter_next", has, "has")) return k;
    if (iter->at == atomap::capi::MapOf(iter->snapshot).end()) {
      *key = *value = nullptr;
      *key_len = *value_len = 0;
      *has = 0;
      return ATOMAP_OK;
    }
    const auto [k, v] = *iter->at;
    ++iter->at;
    *key = k.data();
    *key_len = k.size();
    *value = v.data();
    *value_len = v.size();
    *has = 1;
    return ATOMAP_OK;
  });
}

void atomap_iter_free(atomap_iter* iter) {
  if (iter == nullptr) return;
  iter->snapshot->iterators.fetch_sub(1, std::memory_order_release);
  delete iter;
}

atomap_code atomap_snapshot_release(atomap_snapshot* snapshot) {
  return Guarded("atomap_snapshot_release", [&] {
    if (snapshot == nullptr) return ATOMAP_OK;
    if (atomap_code k =
            atomap::capi::OnOwnerThread("atomap_snapshot_release", snapshot->owner, "snapshot")) {
      return k;
    }
    if (const std::int64_t n = snapshot->iterators.load(std::memory_order_acquire); n != 0) {
      return Fail(ATOMAP_FAILED_PRECONDITION,
                  absl::StrCat("atomap_snapshot_release: ", n,
                               " iterators over the snapshot are still alive; free them first "
                               "(the snapshot stays held)"));
    }
    atomap_domain* domain = snapshot->domain;
    delete snapshot;  // releases the pin, on its own thread
    domain->live.fetch_sub(1, std::memory_order_release);
    return ATOMAP_OK;
  });
}

atomap_code atomap_wait_for_change(const atomap_atom* atom, uint64_t seen_version,
                                   int64_t timeout_ms, atomap_snapshot** out) {
  return Guarded("atomap_wait_for_change", [&] {
    if (atomap_code k = NotNull("atomap_wait_for_change", atom, "atom")) return k;
    if (atomap_code k = NotNull("atomap_wait_for_change", out, "out")) return k;
    const absl::Duration timeout =
        timeout_ms < 0 ? absl::InfiniteDuration() : absl::Milliseconds(timeout_ms);
    atomap_code code = ATOMAP_OK;
    atomap_snapshot* snapshot = atomap::capi::MakeSnapshot(
        atom, [&] { return atom->atom.wait_for_change(seen_version, timeout); }, &code);
    if (snapshot != nullptr) *out = snapshot;
    return code;
  });
}

}  // extern "C"

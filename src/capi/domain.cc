// The C API's domains and atoms: open/close, options, atom handles (H1), stats, check, sync.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "atomap/c.h"
#include "atomap/check.h"
#include "atomap/domain.h"
#include "atomap/options.h"
#include "capi/handles.h"

namespace atomap::capi {
namespace {

absl::Duration Milliseconds(std::int64_t ms) {
  return ms < 0 ? absl::InfiniteDuration() : absl::Milliseconds(ms);
}

atomap_code ToKind(std::int32_t kind, DomainKind* out) {
  switch (kind) {
    case ATOMAP_KIND_FILE:
      *out = DomainKind::kFile;
      return ATOMAP_OK;
    case ATOMAP_KIND_SHARED_MEMORY:
      *out = DomainKind::kSharedMemory;
      return ATOMAP_OK;
    case ATOMAP_KIND_IN_PROCESS:
      *out = DomainKind::kInProcess;
      return ATOMAP_OK;
  }
  return Fail(ATOMAP_INVALID_ARGUMENT,
              absl::StrCat("atomap_open: atomap_options.kind is ", kind,
                           ", not an atomap_kind (ATOMAP_KIND_FILE, _SHARED_MEMORY, _IN_PROCESS)"));
}

atomap_code ToDurability(std::int32_t durability, Durability* out) {
  switch (durability) {
    case ATOMAP_DURABILITY_PROCESS_CRASH:
      *out = Durability::kProcessCrash;
      return ATOMAP_OK;
    case ATOMAP_DURABILITY_SYNC:
      *out = Durability::kSync;
      return ATOMAP_OK;
  }
  return Fail(ATOMAP_INVALID_ARGUMENT,
              absl::StrCat("atomap_open: atomap_options.durability is ", durability,
                           ", not an atomap_durability (ATOMAP_DURABILITY_PROCESS_CRASH, _SYNC)"));
}

// The C++ options `c` stands for (NULL: the defaults).
atomap_code ToOptions(const atomap_options* c, Options* out) {
  if (c == nullptr) return ATOMAP_OK;
  if (atomap_code k = KnownSize("atomap_open", "atomap_options", c->struct_size, sizeof *c)) {
    return k;
  }
  if (atomap_code k = ToKind(c->kind, &out->kind)) return k;
  if (atomap_code k = ToDurability(c->durability, &out->durability)) return k;
  out->create_if_missing = c->create_if_missing != 0;
  out->error_if_exists = c->error_if_exists != 0;
  out->read_only = c->read_only != 0;
  out->unregistered_reads = c->unregistered_reads != 0;
  out->verify_reads = c->verify_reads != 0;
  out->follow_symlinks = c->follow_symlinks != 0;
  out->allow_foreign_owner = c->allow_foreign_owner != 0;
  out->permissions = c->permissions;
  out->reader_permissions = c->reader_permissions;
  out->slot_capacity = c->slot_capacity;
  out->reader_capacity = c->reader_capacity;
  out->atom_capacity = c->atom_capacity;
  out->max_size = c->max_size;
  out->lock_timeout = Milliseconds(c->lock_timeout_ms);
  return ATOMAP_OK;
}

// The handle of the atom `find` returns, made once per name (H1).
template <class Find>
atomap_code AtomHandle(const char* function, atomap_domain* domain, const char* name,
                       std::size_t name_len, atomap_atom** out, Find&& find) {
  if (atomap_code k = NotNull(function, domain, "domain")) return k;
  if (atomap_code k = NotNull(function, out, "out")) return k;
  std::string_view key;
  if (atomap_code k = Bytes(function, name, name_len, "name", &key)) return k;
  std::lock_guard<std::mutex> lock(domain->atoms_mu);
  if (auto it = domain->atoms.find(key); it != domain->atoms.end()) {
    *out = it->second.get();
    return ATOMAP_OK;
  }
  absl::StatusOr<Atom> atom = find(key);
  if (!atom.ok()) return FromStatus(atom.status());
  auto handle = std::make_unique<atomap_atom>(atomap_atom{*atom, domain, std::string(key)});
  *out = handle.get();
  domain->atoms.emplace(std::string(key), std::move(handle));
  return ATOMAP_OK;
}

void FillStats(const DomainStats& s, const DomainInfo& info, atomap_stats* out) {
  out->global_epoch = s.global_epoch;
  out->epoch_advances = s.epoch_advances;
  out->participants = s.participants;
  out->writers = s.writers;
  out->readers = s.readers;
  out->reader_capacity = s.reader_capacity;
  out->dead_participants = s.dead_participants;
  out->dead_readers = s.dead_readers;
  out->any_pinned = s.any_pinned ? 1 : 0;
  out->oldest_pinned_is_reader = s.oldest_pinned_is_reader ? 1 : 0;
  out->oldest_pinned_epoch = s.oldest_pinned_epoch;
  out->oldest_pinned_slot = s.oldest_pinned_slot;
  out->oldest_pinned_pid = s.oldest_pinned_pid;
  out->oldest_pin_age_us = static_cast<std::uint64_t>(absl::ToInt64Microseconds(s.oldest_pin_age));
  out->oldest_pin_retained_bytes = s.oldest_pin_retained_bytes;
  out->pending_garbage_blocks = s.pending_garbage_blocks;
  out->pending_garbage_bytes = s.pending_garbage_bytes;
  out->data_bytes = s.data_bytes;
  out->live_bytes = s.live_bytes;
  out->free_bytes = s.free_bytes;
  out->unused_bytes = s.unused_bytes;
  out->size = info.size;
  out->max_size = info.max_size;
  out->slot_capacity = info.slot_capacity;
  out->atom_count = info.atom_count;
  out->atom_capacity = info.atom_capacity;
  out->damaged = s.damage.ok() ? 0 : 1;
}

void FillReport(const CheckReport& r, atomap_check_report* out) {
  out->ok = r.ok() ? 1 : 0;
  out->problems = r.problems.size();
  out->space_checked = r.space_checked ? 1 : 0;
  out->atoms_checked = r.atoms_checked;
  out->others_attached = r.others_attached;
  out->reachable_bytes = r.reachable_bytes;
  out->free_bytes = r.free_bytes;
  out->pending_bytes = r.pending_bytes;
  out->unused_bytes = r.unused_bytes;
  out->in_flight_bytes = r.in_flight_bytes;
  out->leaked_bytes = r.leaked_bytes;
}

}  // namespace
}  // namespace atomap::capi

using atomap::capi::Fail;
using atomap::capi::FromStatus;
using atomap::capi::Guarded;
using atomap::capi::KnownSize;
using atomap::capi::NotNull;

extern "C" {

void atomap_options_init(atomap_options* options) {
  if (options == nullptr) return;
  const atomap::Options d;
  *options = atomap_options{};
  options->struct_size = sizeof *options;
  options->create_if_missing = d.create_if_missing ? 1 : 0;
  options->error_if_exists = d.error_if_exists ? 1 : 0;
  options->read_only = d.read_only ? 1 : 0;
  options->unregistered_reads = d.unregistered_reads ? 1 : 0;
  options->kind = ATOMAP_KIND_FILE;
  options->durability = ATOMAP_DURABILITY_PROCESS_CRASH;
  options->verify_reads = d.verify_reads ? 1 : 0;
  options->follow_symlinks = d.follow_symlinks ? 1 : 0;
  options->allow_foreign_owner = d.allow_foreign_owner ? 1 : 0;
  options->permissions = d.permissions;
  options->reader_permissions = d.reader_permissions;
  options->slot_capacity = d.slot_capacity;
  options->reader_capacity = d.reader_capacity;
  options->atom_capacity = d.atom_capacity;
  options->max_size = d.max_size;
  options->lock_timeout_ms = absl::ToInt64Milliseconds(d.lock_timeout);
}

atomap_code atomap_open(const char* path, const atomap_options* options, atomap_domain** out) {
  return Guarded("atomap_open", [&] {
    if (atomap_code k = NotNull("atomap_open", path, "path")) return k;
    if (atomap_code k = NotNull("atomap_open", out, "out")) return k;
    atomap::Options cpp;
    if (atomap_code k = atomap::capi::ToOptions(options, &cpp)) return k;
    absl::StatusOr<atomap::Domain> domain = atomap::Domain::Open(path, cpp);
    if (!domain.ok()) return FromStatus(domain.status());
    *out = new atomap_domain(*std::move(domain), cpp.verify_reads);
    return ATOMAP_OK;
  });
}

atomap_code atomap_close(atomap_domain* domain) {
  return Guarded("atomap_close", [&] {
    if (domain == nullptr) return ATOMAP_OK;
    if (const std::int64_t live = domain->live.load(std::memory_order_acquire); live != 0) {
      return Fail(ATOMAP_FAILED_PRECONDITION,
                  absl::StrCat("atomap_close: ", live, " snapshots or transactions of ",
                               domain->domain.path(),
                               " are still alive; release them first (the domain stays open)"));
    }
    delete domain;
    return ATOMAP_OK;
  });
}

const char* atomap_domain_path(const atomap_domain* domain) {
  return domain == nullptr ? "" : domain->domain.path().c_str();
}

int atomap_domain_read_only(const atomap_domain* domain) {
  return domain != nullptr && domain->domain.read_only() ? 1 : 0;
}

int atomap_domain_created(const atomap_domain* domain) {
  return domain != nullptr && domain->domain.created() ? 1 : 0;
}

atomap_code atomap_sync(atomap_domain* domain) {
  return Guarded("atomap_sync", [&] {
    if (atomap_code k = NotNull("atomap_sync", domain, "domain")) return k;
    return FromStatus(domain->domain.sync());
  });
}

atomap_code atomap_open_atom(atomap_domain* domain, const char* name, size_t name_len,
                             atomap_atom** out) {
  return Guarded("atomap_open_atom", [&] {
    return atomap::capi::AtomHandle("atomap_open_atom", domain, name, name_len, out,
                                    [&](std::string_view key) { return domain->domain.atom(key); });
  });
}

atomap_code atomap_find_atom(atomap_domain* domain, const char* name, size_t name_len,
                             atomap_atom** out) {
  return Guarded("atomap_find_atom", [&] {
    return atomap::capi::AtomHandle(
        "atomap_find_atom", domain, name, name_len, out,
        [&](std::string_view key) { return domain->domain.find_atom(key); });
  });
}

const char* atomap_atom_name(const atomap_atom* atom, size_t* len) {
  if (atom == nullptr) {
    if (len != nullptr) *len = 0;
    return "";
  }
  if (len != nullptr) *len = atom->name.size();
  return atom->name.data();
}

atomap_code atomap_atom_version(const atomap_atom* atom, uint64_t* version) {
  return Guarded("atomap_atom_version", [&] {
    if (atomap_code k = NotNull("atomap_atom_version", atom, "atom")) return k;
    if (atomap_code k = NotNull("atomap_atom_version", version, "version")) return k;
    absl::StatusOr<std::uint64_t> v = atom->atom.version();
    if (!v.ok()) return FromStatus(v.status());
    *version = *v;
    return ATOMAP_OK;
  });
}

void atomap_stats_init(atomap_stats* stats) {
  if (stats == nullptr) return;
  *stats = atomap_stats{};
  stats->struct_size = sizeof *stats;
}

atomap_code atomap_stats_get(const atomap_domain* domain, atomap_stats* stats) {
  return Guarded("atomap_stats_get", [&] {
    if (atomap_code k = NotNull("atomap_stats_get", domain, "domain")) return k;
    if (atomap_code k = NotNull("atomap_stats_get", stats, "stats")) return k;
    if (atomap_code k =
            KnownSize("atomap_stats_get", "atomap_stats", stats->struct_size, sizeof *stats)) {
      return k;
    }
    const atomap::DomainStats s = domain->domain.stats();
    atomap::capi::FillStats(s, domain->domain.info(), stats);
    return FromStatus(s.damage);
  });
}

void atomap_check_options_init(atomap_check_options* options) {
  if (options == nullptr) return;
  *options = atomap_check_options{};
  options->struct_size = sizeof *options;
}

void atomap_check_report_init(atomap_check_report* report) {
  if (report == nullptr) return;
  *report = atomap_check_report{};
  report->struct_size = sizeof *report;
}

atomap_code atomap_check(atomap_domain* domain, const atomap_check_options* options,
                         atomap_check_report* report) {
  return Guarded("atomap_check", [&] {
    if (atomap_code k = NotNull("atomap_check", domain, "domain")) return k;
    if (atomap_code k = NotNull("atomap_check", report, "report")) return k;
    if (atomap_code k =
            KnownSize("atomap_check", "atomap_check_report", report->struct_size, sizeof *report)) {
      return k;
    }
    atomap::CheckOptions cpp;
    if (options != nullptr) {
      if (atomap_code k = KnownSize("atomap_check", "atomap_check_options", options->struct_size,
                                    sizeof *options)) {
        return k;
      }
      cpp.repair = options->repair != 0;
      cpp.others_idle = options->others_idle != 0;
      // A negative wait is no wait: check() has no "forever".
      cpp.wait_for_exclusive =
          absl::Milliseconds(std::max<std::int64_t>(0, options->wait_for_exclusive_ms));
    }
    absl::StatusOr<atomap::CheckReport> r = domain->domain.check(cpp);
    if (!r.ok()) return FromStatus(r.status());
    if (options != nullptr && options->on_problem != nullptr) {
      for (const std::string& problem : r->problems)
        options->on_problem(problem.c_str(), options->user);
    }
    atomap::capi::FillReport(*r, report);
    return ATOMAP_OK;
  });
}

}  // extern "C"

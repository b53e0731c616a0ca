#include "file/header.h"

#include <sys/random.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_format.h"
#include "atomap/version.h"
#include "common/layout.h"
#include "common/offset.h"
#include "file/atom_table.h"
#include "file/reader_slot.h"
#include "file/slot_table.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace atomap::internal {

static_assert(kFormatVersion == ATOMAP_FORMAT_VERSION, "include/atomap/version.h is stale");

namespace {

absl::Status FieldError(absl::StatusCode code, std::string_view path, std::string_view field,
                        std::string_view what) {
  return absl::Status(code, absl::StrFormat("%s: header field '%s': %s", path, field, what));
}

absl::Status Damaged(std::string_view path, std::string_view field, std::string_view what) {
  return FieldError(absl::StatusCode::kDataLoss, path, field, what);
}

absl::Status Incompatible(std::string_view path, std::string_view field, std::string_view what) {
  return FieldError(absl::StatusCode::kFailedPrecondition, path, field, what);
}

absl::Status ExpectEqual(std::string_view path, std::string_view field, std::uint64_t found,
                         std::uint64_t expected) {
  if (found == expected) return absl::OkStatus();
  return Damaged(path, field, absl::StrFormat("is %d, the layout needs %d", found, expected));
}

// The fields that make a file one of ours and readable by this build.
absl::Status ValidateIdentity(const Header& h, std::string_view path) {
  if (std::memcmp(h.magic, kDomainMagic, sizeof kDomainMagic) != 0) {
    return Incompatible(path, "magic", "not an atomap domain (bad magic)");
  }
  if (h.format_version == 0) return Damaged(path, "format_version", "is 0");
  if (h.format_version > kFormatVersion) {
    return Incompatible(path, "format_version",
                        absl::StrFormat("is %d, from a newer atomap; this build reads up to %d",
                                        h.format_version, kFormatVersion));
  }
  if (h.format_version >= 2 && h.format_version <= 4) {
    // Format 3 moved every lock off PATH onto PATH.lock: a format-2 process would lock bytes of
    // PATH that no format-3 process looks at. Format 4's version records are wider, and a
    // format-3 writer would clear the bit that says so. Format 5's records may carry a combining
    // table that a format-4 writer would free as a 48-byte block, and its slots a mailbox that a
    // format-4 writer would ignore. The conversion is explicit (recovery/upgrade.h).
    const char* const releases[] = {"0.2", "0.3", "0.4-dev"};
    const char* release = releases[h.format_version - 2];
    return Incompatible(
        path, "format_version",
        absl::StrFormat("format %d (atomap %s); run 'atomap upgrade %s' to convert it in place "
                        "(it needs the domain to itself; atomap %s cannot open it afterwards)",
                        h.format_version, release, path, release));
  }
  if (h.format_version < kFormatVersion) {
    // Format 2 added intent records and ownership lanes to each slot; a format-1 file carries
    // none, and a format-1 library would sweep a format-2 file's lanes away as leaks.
    return Incompatible(path, "format_version",
                        absl::StrFormat("is %d, from an older atomap; this build reads format %d "
                                        "only (dump it with the older tool and load it anew)",
                                        h.format_version, kFormatVersion));
  }
  if (h.endian_check != kEndianCheck) {
    return Incompatible(
        path, "endian_check",
        absl::StrFormat("is 0x%08x: written by a host of another byte order", h.endian_check));
  }
  if (h.word_bytes != sizeof(std::uint64_t)) {
    return Incompatible(
        path, "word_bytes",
        absl::StrFormat("is %d, this host uses %d", h.word_bytes, sizeof(std::uint64_t)));
  }
  if (h.pointer_bytes != sizeof(void*)) {
    return Incompatible(
        path, "pointer_bytes",
        absl::StrFormat("is %d, this host uses %d", h.pointer_bytes, sizeof(void*)));
  }
  if (h.page_bytes != HostPageBytes()) {
    return Incompatible(path, "page_bytes",
                        absl::StrFormat("is %d, this host uses %d", h.page_bytes, HostPageBytes()));
  }
  return absl::OkStatus();
}

absl::Status ValidateLayout(const Header& h, std::string_view path) {
  if (!IsKnownHashKind(h.hash_kind)) {
    return Damaged(path, "hash_kind", absl::StrFormat("unknown kind %d", h.hash_kind));
  }
  if (h.slot_capacity == 0 || h.slot_capacity > kMaxSlotCapacity) {
    return Damaged(path, "slot_capacity",
                   absl::StrFormat("is %d, not in [1, %d]", h.slot_capacity, kMaxSlotCapacity));
  }
  if (h.atom_capacity == 0 || h.atom_capacity > kMaxAtomCapacity) {
    return Damaged(path, "atom_capacity",
                   absl::StrFormat("is %d, not in [1, %d]", h.atom_capacity, kMaxAtomCapacity));
  }
  const RegionLayout want = ComputeLayout(h.slot_capacity, h.atom_capacity, h.page_bytes);
  if (absl::Status s = ExpectEqual(path, "allocator_state_offset", h.allocator_state_offset,
                                   want.allocator_state_offset);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ExpectEqual(path, "slot_table_offset", h.slot_table_offset, want.slot_table_offset);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ExpectEqual(path, "atom_table_offset", h.atom_table_offset, want.atom_table_offset);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ExpectEqual(path, "data_begin", h.data_begin, want.data_begin); !s.ok()) {
    return s;
  }
  if (h.max_size < h.data_begin || h.max_size > kMaxDomainSize || h.max_size % h.page_bytes != 0) {
    return Damaged(path, "max_size",
                   absl::StrFormat("is %d, not a multiple of the page size in [%d, %d]", h.max_size,
                                   h.data_begin, kMaxDomainSize));
  }
  if (h.reader_capacity == 0 || h.reader_capacity > kMaxReaderCapacity) {
    return Damaged(path, "reader_capacity",
                   absl::StrFormat("is %d, not in [1, %d]", h.reader_capacity, kMaxReaderCapacity));
  }
  if (h.pin_fence != static_cast<std::uint32_t>(PinFenceMode::kFull) &&
      h.pin_fence != static_cast<std::uint32_t>(PinFenceMode::kLight)) {
    return Damaged(path, "pin_fence",
                   absl::StrFormat("is %d, not 0 (full fences) or 1 (light pins)", h.pin_fence));
  }
  return absl::OkStatus();
}

absl::Status ValidateMutable(const Header& h, std::uint64_t file_length, std::string_view path) {
  // `h` is a private copy: relaxed loads are plain reads of it.
  const std::uint64_t size = h.size.LoadRelaxed();
  const std::uint32_t state = h.state.LoadRelaxed();
  if (size < h.data_begin || size > h.max_size || size % h.page_bytes != 0) {
    return Damaged(path, "size",
                   absl::StrFormat("is %d, not a multiple of the page size in [%d, %d]", size,
                                   h.data_begin, h.max_size));
  }
  if (size > file_length) {
    return Damaged(
        path, "size",
        absl::StrFormat("is %d but the file has only %d bytes (truncated)", size, file_length));
  }
  if (state != static_cast<std::uint32_t>(DomainState::kDirty) &&
      state != static_cast<std::uint32_t>(DomainState::kClean)) {
    return Damaged(path, "state", absl::StrFormat("unknown state %d", state));
  }
  // Above the capacity, a scan bounded by it would read past the slot table (S4).
  if (const std::uint32_t high = h.slot_high_water.LoadRelaxed(); high > h.slot_capacity) {
    return Damaged(path, "slot_high_water",
                   absl::StrFormat("is %d, above slot_capacity %d", high, h.slot_capacity));
  }
  return absl::OkStatus();
}

}  // namespace

std::uint64_t HostPageBytes() {
  static const std::uint64_t page = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  return page;
}

RegionLayout ComputeLayout(std::uint32_t slot_capacity, std::uint32_t atom_capacity,
                           std::uint64_t page_bytes) {
  RegionLayout layout;
  layout.allocator_state_offset = kHeaderBytes;
  layout.slot_table_offset = layout.allocator_state_offset + kAllocatorStateBytes;
  layout.atom_table_offset = layout.slot_table_offset + SlotTable::RegionBytes(slot_capacity);
  layout.data_begin =
      RoundUp(layout.atom_table_offset + AtomTable::RegionBytes(atom_capacity), page_bytes);
  return layout;
}

std::uint64_t HeaderChecksum(const Header& header) {
  std::uint8_t immutable[kImmutableHeaderBytes];
  std::memcpy(immutable, &header, sizeof immutable);
  std::memset(immutable + offsetof(Header, checksum), 0, sizeof header.checksum);
  return XXH3_64bits(immutable, sizeof immutable);
}

std::uint64_t NewDomainId() {
  std::uint64_t id = 0;
  while (id == 0) {
    if (getrandom(&id, sizeof id, 0) != static_cast<ssize_t>(sizeof id)) id = RandomSeed();
  }
  return id;
}

absl::Status CheckParams(const HeaderParams& p) {
  if (p.slot_capacity == 0 || p.slot_capacity > kMaxSlotCapacity) {
    return absl::InvalidArgumentError(absl::StrFormat("option slot_capacity is %d, not in [1, %d]",
                                                      p.slot_capacity, kMaxSlotCapacity));
  }
  if (p.atom_capacity == 0 || p.atom_capacity > kMaxAtomCapacity) {
    return absl::InvalidArgumentError(absl::StrFormat("option atom_capacity is %d, not in [1, %d]",
                                                      p.atom_capacity, kMaxAtomCapacity));
  }
  if (!IsKnownHashKind(static_cast<std::uint32_t>(p.hash_kind))) {
    return absl::InvalidArgumentError(
        absl::StrFormat("hash kind %d is unknown", static_cast<std::uint32_t>(p.hash_kind)));
  }
  if (p.reader_capacity == 0 || p.reader_capacity > kMaxReaderCapacity) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "option reader_capacity is %d, not in [1, %d]", p.reader_capacity, kMaxReaderCapacity));
  }
  const RegionLayout layout = ComputeLayout(p.slot_capacity, p.atom_capacity, HostPageBytes());
  if (p.max_size < layout.data_begin || p.max_size > kMaxDomainSize) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "option max_size is %d, not in [%d, %d] (the low bound is the size of the tables)",
        p.max_size, layout.data_begin, kMaxDomainSize));
  }
  return absl::OkStatus();
}

Header MakeHeader(const HeaderParams& p) {
  Header h;
  std::memset(&h, 0, sizeof h);
  std::memcpy(h.magic, kDomainMagic, sizeof kDomainMagic);
  h.format_version = kFormatVersion;
  h.endian_check = kEndianCheck;
  h.word_bytes = sizeof(std::uint64_t);
  h.pointer_bytes = sizeof(void*);
  h.page_bytes = static_cast<std::uint32_t>(HostPageBytes());
  h.hash_kind = static_cast<std::uint32_t>(p.hash_kind);
  h.hash_seed = p.hash_seed;
  h.max_size = RoundUp(p.max_size, HostPageBytes());
  h.slot_capacity = p.slot_capacity;
  h.atom_capacity = p.atom_capacity;
  const RegionLayout layout = ComputeLayout(p.slot_capacity, p.atom_capacity, HostPageBytes());
  h.allocator_state_offset = layout.allocator_state_offset;
  h.slot_table_offset = layout.slot_table_offset;
  h.atom_table_offset = layout.atom_table_offset;
  h.data_begin = layout.data_begin;
  h.domain_id = NewDomainId();
  h.reader_capacity = p.reader_capacity;
  h.reader_mode = p.reader_mode & 07777;
  h.pin_fence = static_cast<std::uint32_t>(p.pin_fence);
  h.checksum = HeaderChecksum(h);
  h.size.InitPlain(layout.data_begin);
  h.state.InitPlain(static_cast<std::uint32_t>(DomainState::kDirty));
  h.global_epoch.InitPlain(0);
  return h;
}

absl::Status Validate(const Header& header, std::uint64_t file_length, std::string_view path) {
  if (file_length == 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("%s: the file is empty, not an atomap domain", path));
  }
  if (absl::Status s = ValidateIdentity(header, path); !s.ok()) {
    // A header cut short reads as zeroes past the end: say truncated when the magic survived.
    if (file_length < kHeaderBytes &&
        std::memcmp(header.magic, kDomainMagic, sizeof kDomainMagic) == 0) {
      return Damaged(path, "header",
                     absl::StrFormat("the file has %d bytes, shorter than the %d-byte header "
                                     "(truncated)",
                                     file_length, kHeaderBytes));
    }
    return s;
  }
  if (file_length < kHeaderBytes) {
    return Damaged(path, "header",
                   absl::StrFormat("the file has %d bytes, shorter than the %d-byte header "
                                   "(truncated)",
                                   file_length, kHeaderBytes));
  }
  if (absl::Status s = ValidateLayout(header, path); !s.ok()) return s;
  if (header.checksum != HeaderChecksum(header)) {
    return Damaged(path, "checksum",
                   absl::StrFormat("is 0x%016x, the immutable fields hash to 0x%016x",
                                   header.checksum, HeaderChecksum(header)));
  }
  return ValidateMutable(header, file_length, path);
}

}  // namespace atomap::internal

// The domain header: the first kHeaderBytes of every domain, and the rules that say whether a
// file is a domain this build can open.
//
// Layout (docs/format.md has the byte table): the immutable fields come first and are covered by
// an XXH3 checksum; the mutable fields follow, each on its own cache line so that writers of one
// do not invalidate readers of another. All fields are fixed-width little-endian integers; the
// library builds only on little-endian hosts, and the endianness word detects a file written by
// any other kind of host.
//
// Invariants
//  (H1) The immutable fields never change after creation; the checksum covers all of them: the
//       whole immutable part [0, kImmutableHeaderBytes), the checksum field read as zero (format
//       2 covered [0, 88) only; recovery/upgrade.cc keeps that rule for the files it converts).
//  (H2) The regions are in this order, back to back, each at the offset ComputeLayout() gives for
//       the capacities: header, allocator state, slot table, atom table, data region (page
//       aligned). data_begin <= size <= max_size; size only grows (see Arena I2).
//  (H3) A header is validated (Validate) before any byte of the file is written or mapped.
#ifndef ATOMAP_SRC_FILE_HEADER_H_
#define ATOMAP_SRC_FILE_HEADER_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "common/hash.h"
#include "common/layout.h"
#include "common/shared_word.h"

namespace atomap::internal {

static_assert(std::endian::native == std::endian::little, "the file format is little-endian");

inline constexpr char kDomainMagic[8] = {'A', 'T', 'O', 'M', 'A', 'P', '\r', '\n'};
inline constexpr std::uint32_t kEndianCheck = 0x01020304;

// Limits of the layout fields (Options are checked against them at creation, headers at open).
inline constexpr std::uint32_t kMaxSlotCapacity = 1u << 16;
inline constexpr std::uint32_t kMaxAtomCapacity = 1u << 20;
inline constexpr std::uint64_t kMaxDomainSize = std::uint64_t{1} << 46;  // 64 TiB

enum class DomainState : std::uint32_t {
  kDirty = 0,  // some process has (or had) it open for writing and did not close it normally
  kClean = 1,  // the last writer closed it normally
};

// Header::pin_fence: how the domain's pins order their announcement before their first read
// (epoch/pin_fence.h; docs/design.md, "The asymmetric fence"). Chosen by the creator, immutable.
enum class PinFenceMode : std::uint32_t {
  // Every pin issues a full fence, every scan a full fence: the creator could not issue heavy
  // fences (membarrier), or the file predates the field (it read 0).
  kFull = 0,
  // A pin of a process registered for heavy fences may use a compiler barrier only; so every
  // scan issues the heavy fence, and a process that cannot does not advance the epoch.
  kLight = 1,
};

// One entry of the header's ring of epoch start times.
struct EpochStart {
  SharedU64 epoch;
  SharedU64 began_ns;
};

struct Header {
  // ---- immutable: written once by the creator, checksummed ----------------------------------
  char magic[8];
  std::uint32_t format_version;
  std::uint32_t endian_check;
  std::uint32_t word_bytes;     // sizeof(std::uint64_t) atomics are lock-free words of this size
  std::uint32_t pointer_bytes;  // sizeof(void*) of the creator
  std::uint32_t page_bytes;     // the creator's page size; must equal the opener's
  std::uint32_t hash_kind;      // a HashKind
  std::uint64_t hash_seed;
  std::uint64_t max_size;
  std::uint32_t slot_capacity;
  std::uint32_t atom_capacity;
  std::uint64_t allocator_state_offset;
  std::uint64_t slot_table_offset;
  std::uint64_t atom_table_offset;
  std::uint64_t data_begin;
  std::uint64_t checksum;  // XXH3-64 (seed 0) of [0, 128), this field read as 0
  std::uint64_t domain_id;        // random at creation: binds PATH.lock and PATH.readers to PATH
  std::uint32_t reader_capacity;  // reader slots in PATH.readers, 1..65536
  std::uint32_t reader_mode;      // PATH.readers' mode at creation and at recreation
  std::uint32_t pin_fence;        // a PinFenceMode
  std::uint8_t reserved_immutable[12];
  // ---- mutable: one cache line each, shared words (common/shared_word.h) --------------------
  alignas(64) SharedU64 size;  // the domain's size; Arena::BindSizeWord binds it
  alignas(64) SharedU32 state;  // a DomainState
  alignas(64) SharedU64 global_epoch;  // the reclamation layer's epoch (0 at creation)
  // When the last epochs began (CLOCK_MONOTONIC ns), on G's own line: written by the advancer
  // right after its CAS of G (which owns the line then), read for pin ages. Entry e % 3.
  EpochStart epoch_began[3];
  // Head of the chain of retire batches left by participants that detached or died with garbage
  // still pending (RetireList::Adopt takes it). Pushed by CAS, taken whole by exchange.
  alignas(64) SharedU64 orphan_retired;
  // Participants taken over since the last sweep. A takeover recovers what a dead participant
  // recorded, but not what it was between recording (the windows of docs/reliability.md): while
  // this is nonzero, the last close does not mark the domain clean, so the next lone open sweeps
  // (which resets it).
  alignas(64) SharedU64 deaths_since_sweep;
  // The slot table's high water (file/slot_table.h S4): every slot ever claimed is below it. Epoch
  // scans read the pins of [0, slot_high_water) only. At most slot_capacity (validated on open).
  alignas(64) SharedU32 slot_high_water;
  alignas(64) std::uint8_t reserved_mutable[64 * 5];
};

static_assert(offsetof(Header, magic) == 0);
static_assert(offsetof(Header, format_version) == 8);
static_assert(offsetof(Header, endian_check) == 12);
static_assert(offsetof(Header, word_bytes) == 16);
static_assert(offsetof(Header, pointer_bytes) == 20);
static_assert(offsetof(Header, page_bytes) == 24);
static_assert(offsetof(Header, hash_kind) == 28);
static_assert(offsetof(Header, hash_seed) == 32);
static_assert(offsetof(Header, max_size) == 40);
static_assert(offsetof(Header, slot_capacity) == 48);
static_assert(offsetof(Header, atom_capacity) == 52);
static_assert(offsetof(Header, allocator_state_offset) == 56);
static_assert(offsetof(Header, slot_table_offset) == 64);
static_assert(offsetof(Header, atom_table_offset) == 72);
static_assert(offsetof(Header, data_begin) == 80);
static_assert(offsetof(Header, checksum) == 88);
static_assert(offsetof(Header, domain_id) == 96);
static_assert(offsetof(Header, reader_capacity) == 104);
static_assert(offsetof(Header, reader_mode) == 108);
static_assert(offsetof(Header, pin_fence) == 112);
static_assert(offsetof(Header, size) == 128);
static_assert(offsetof(Header, epoch_began) == 264);
static_assert(offsetof(Header, state) == 192);
static_assert(offsetof(Header, global_epoch) == 256);
static_assert(offsetof(Header, orphan_retired) == 320);
static_assert(offsetof(Header, deaths_since_sweep) == 384);
static_assert(offsetof(Header, slot_high_water) == 448);
static_assert(sizeof(Header) <= kHeaderBytes);
// The immutable part: everything before the first mutable line.
inline constexpr std::size_t kImmutableHeaderBytes = offsetof(Header, size);
static_assert(kImmutableHeaderBytes == 128);

// Where each region lies for given capacities; the only source of region offsets.
struct RegionLayout {
  std::uint64_t allocator_state_offset;
  std::uint64_t slot_table_offset;
  std::uint64_t atom_table_offset;
  std::uint64_t data_begin;
};
RegionLayout ComputeLayout(std::uint32_t slot_capacity, std::uint32_t atom_capacity,
                           std::uint64_t page_bytes);

std::uint64_t HeaderChecksum(const Header& header);

// The fields a creator chooses.
struct HeaderParams {
  std::uint64_t max_size;
  std::uint32_t slot_capacity;
  std::uint32_t atom_capacity;
  HashKind hash_kind;
  std::uint64_t hash_seed;
  std::uint32_t reader_capacity;  // 1..kMaxReaderCapacity (file/reader_slot.h)
  std::uint32_t reader_mode;  // the mode bits PATH.readers is created with
  PinFenceMode pin_fence = PinFenceMode::kFull;
};

// A fresh random domain id (getrandom), never 0: what binds PATH.lock and PATH.readers to PATH.
std::uint64_t NewDomainId();

// InvalidArgument naming the option when a creator's choices are out of range.
absl::Status CheckParams(const HeaderParams& params);

// A complete header for a new domain (size = data_begin, state dirty, epoch 0, a new domain_id,
// checksum set).
// REQUIRES: CheckParams(params).ok().
Header MakeHeader(const HeaderParams& params);

// Whether `header` (a copy read from a file of `file_length` bytes) is a domain this build can
// open. FailedPrecondition: not a domain, or incompatible (future version, other endianness, word
// or page size). DataLoss: damaged (bad checksum, field out of range, shorter than it claims).
// Every message starts with `path` and names the field.
absl::Status Validate(const Header& header, std::uint64_t file_length, std::string_view path);

std::uint64_t HostPageBytes();

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_FILE_HEADER_H_

// The layout of the reader registry, PATH.readers (docs/format.md, "Reader registry"): plain
// structs and constants, no behaviour. The registry lets a process that may only read PATH pin
// what it reads: every reader can write this file, nobody but writers can write PATH, and no
// writer ever waits on anything in it (docs/design.md, "Trust boundaries").
//
//   [0, kRegistryHeaderBytes)          RegistryHeader
//   then reader_capacity ReaderSlots   one cache line each
//
// The registry's capacity and domain id are copies: the truth is PATH's header, which readers
// cannot write. Every opener checks the copies against it.
#ifndef ATOMAP_SRC_FILE_READER_SLOT_H_
#define ATOMAP_SRC_FILE_READER_SLOT_H_

#include <cstddef>
#include <cstdint>

#include "common/shared_word.h"

namespace atomap::internal {

inline constexpr char kRegistryMagic[8] = {'A', 'T', 'O', 'M', 'A', 'P', 'R', 'G'};
inline constexpr std::uint64_t kRegistryHeaderBytes = 4096;
inline constexpr std::uint64_t kReaderSlotBytes = 64;
inline constexpr std::uint32_t kDefaultReaderCapacity = 1024;
inline constexpr std::uint32_t kMaxReaderCapacity = 1u << 16;

struct RegistryHeader {
  char magic[8];                 // kRegistryMagic
  std::uint32_t format_version;  // kFormatVersion
  std::uint32_t slot_bytes;      // kReaderSlotBytes
  std::uint64_t domain_id;       // PATH's header domain_id
  std::uint32_t reader_capacity;  // PATH's header reader_capacity
  std::uint32_t reserved0;
  std::uint8_t reserved[kRegistryHeaderBytes - 64 - 32];
  // One past the highest slot ever claimed (raised by claimers, never lowered): writers read the
  // slots below it only. A reader may lie here; it can clear other readers' pins anyway. On the
  // header's last cache line, right before the slots: a writer's scan reads it and the slots in
  // one pread.
  alignas(64) SharedU32 high_water;
  std::uint8_t reserved_tail[60];
};
static_assert(sizeof(RegistryHeader) == kRegistryHeaderBytes);
static_assert(offsetof(RegistryHeader, domain_id) == 16);
static_assert(offsetof(RegistryHeader, reader_capacity) == 24);
static_assert(offsetof(RegistryHeader, high_water) == kRegistryHeaderBytes - 64);

enum class ReaderSlotState : std::uint32_t { kFree = 0, kOwned = 1 };

// One reader's slot: one cache line, written only by its owner (or by whoever takes a dead
// owner's slot over, under its lock).
struct ReaderSlot {
  SharedU64 announcement;     // 0, or Announcement::Pinned(e) (epoch/epoch_table.h)
  SharedU32 state;            // a ReaderSlotState
  SharedU32 owner_pid;        // informational (pids are reused; the lock is the truth)
  SharedU64 owner_token;      // +1 per claim
  SharedU32 owner_uid;        // informational (geteuid() of the claimer)
  SharedU32 pinned_atom;      // atom number + 1 of the outermost snapshot; 0 none
  SharedU64 pinned_version;   // that snapshot's version_number
  std::uint8_t reserved[24];
};
static_assert(sizeof(ReaderSlot) == kReaderSlotBytes);
static_assert(offsetof(ReaderSlot, state) == 8);
static_assert(offsetof(ReaderSlot, owner_token) == 16);
static_assert(offsetof(ReaderSlot, owner_uid) == 24);
static_assert(offsetof(ReaderSlot, pinned_atom) == 28);
static_assert(offsetof(ReaderSlot, pinned_version) == 32);

constexpr std::uint64_t RegistryBytes(std::uint32_t capacity) {
  return kRegistryHeaderBytes + std::uint64_t{capacity} * kReaderSlotBytes;
}
constexpr std::uint64_t ReaderSlotOffset(std::uint32_t slot) {
  return kRegistryHeaderBytes + std::uint64_t{slot} * kReaderSlotBytes;
}

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_FILE_READER_SLOT_H_

// The replication record: one NATS message per atom version (or per chunk of one), as
// docs/replication.md ("Record format") lays it out. Encoding and decoding only: no NATS here,
// so the tests can build damaged records by hand.
//
// Layout (little-endian), record version 1:
//   header (56 bytes): magic "AMR1", u16 record version, u8 kind (1 diff, 2 full), u8 flags (0),
//     u64 version, u64 base, u64 full_seq, u64 start_seq, u64 published_unix_ns,
//     u16 chunk_index, u16 chunk_count, u32 entry_count
//   entry_count entries: u8 op (1 set, 2 erase), u32 key length, u32 value length (0 for
//     erase), the key's bytes, the value's bytes
//   trailer: u64 XXH3-64 of every byte before it.
//
// Thread safety: plain values and pure functions.
#ifndef ATOMAP_REPLICATE_RECORD_H_
#define ATOMAP_REPLICATE_RECORD_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace atomap::replicate {

inline constexpr std::string_view kRecordMagic = "AMR1";
inline constexpr std::uint16_t kRecordVersion = 1;
inline constexpr std::size_t kRecordHeaderBytes = 56;
inline constexpr std::size_t kRecordTrailerBytes = 8;
// What one entry costs besides its bytes: op, key length, value length.
inline constexpr std::size_t kEntryOverheadBytes = 9;

enum class RecordKind : std::uint8_t { kDiff = 1, kFull = 2 };
enum class EntryOp : std::uint8_t { kSet = 1, kErase = 2 };

struct RecordHeader {
  RecordKind kind = RecordKind::kDiff;
  // The publisher's atom version this record brings a follower to.
  std::uint64_t version = 0;
  // A diff applies over exactly this version; a full record: the version of the record before
  // it in the stream (0 if none), for information only.
  std::uint64_t base = 0;
  // The stream sequence of the first chunk of the newest complete full record before this
  // record (0: none yet): where a new follower starts.
  std::uint64_t full_seq = 0;
  // In chunks after the first: the stream sequence of the record's first chunk. 0 in the first.
  std::uint64_t start_seq = 0;
  std::uint64_t published_unix_ns = 0;  // the publisher's clock when it encoded the record
  std::uint16_t chunk_index = 0;
  std::uint16_t chunk_count = 1;
};

struct RecordEntry {
  EntryOp op = EntryOp::kSet;
  std::string key;
  std::string value;  // empty for kErase
};

struct Record {
  RecordHeader header;
  std::vector<RecordEntry> entries;
};

// The bytes of one message. REQUIRES: every key and value fits a u32 length.
std::string EncodeRecord(const RecordHeader& header, const std::vector<RecordEntry>& entries);

// Parses one message. DataLoss naming what is wrong (`where` first: the stream and sequence)
// for a short message, a wrong magic, an unknown record version or kind, a bad checksum, an
// entry that runs past the end or bytes left over.
absl::StatusOr<Record> DecodeRecord(std::string_view bytes, std::string_view where);

}  // namespace atomap::replicate

#endif  // ATOMAP_REPLICATE_RECORD_H_

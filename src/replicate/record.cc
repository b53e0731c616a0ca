// The replication record's codec (record.h; docs/replication.md, "Record format").
#include "replicate/record.h"

#include <xxhash.h>

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace atomap::replicate {
namespace {

template <class T>
void Put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // x86-64 only (README): little-endian
  out.append(bytes, sizeof(T));
}

// Reads fixed-size fields from the front of a message, never past its end.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  template <class T>
  bool Get(T& value) {
    if (bytes_.size() < sizeof(T)) return false;
    std::memcpy(&value, bytes_.data(), sizeof(T));
    bytes_.remove_prefix(sizeof(T));
    return true;
  }
  bool Take(std::size_t n, std::string& out) {
    if (bytes_.size() < n) return false;
    out.assign(bytes_.data(), n);
    bytes_.remove_prefix(n);
    return true;
  }
  std::size_t left() const { return bytes_.size(); }

 private:
  std::string_view bytes_;
};

absl::Status Bad(std::string_view where, std::string_view what) {
  return absl::DataLossError(
      absl::StrFormat("%s: not a usable replication record: %s", where, what));
}

}  // namespace

std::string EncodeRecord(const RecordHeader& header, const std::vector<RecordEntry>& entries) {
  std::size_t size = kRecordHeaderBytes + kRecordTrailerBytes;
  for (const RecordEntry& entry : entries) {
    size += kEntryOverheadBytes + entry.key.size() + entry.value.size();
  }
  std::string out;
  out.reserve(size);
  out.append(kRecordMagic);
  Put<std::uint16_t>(out, kRecordVersion);
  Put<std::uint8_t>(out, static_cast<std::uint8_t>(header.kind));
  Put<std::uint8_t>(out, 0);  // flags
  Put<std::uint64_t>(out, header.version);
  Put<std::uint64_t>(out, header.base);
  Put<std::uint64_t>(out, header.full_seq);
  Put<std::uint64_t>(out, header.start_seq);
  Put<std::uint64_t>(out, header.published_unix_ns);
  Put<std::uint16_t>(out, header.chunk_index);
  Put<std::uint16_t>(out, header.chunk_count);
  Put<std::uint32_t>(out, static_cast<std::uint32_t>(entries.size()));
  for (const RecordEntry& entry : entries) {
    Put<std::uint8_t>(out, static_cast<std::uint8_t>(entry.op));
    Put<std::uint32_t>(out, static_cast<std::uint32_t>(entry.key.size()));
    Put<std::uint32_t>(out, static_cast<std::uint32_t>(entry.value.size()));
    out.append(entry.key);
    out.append(entry.value);
  }
  Put<std::uint64_t>(out, XXH3_64bits(out.data(), out.size()));
  return out;
}

absl::StatusOr<Record> DecodeRecord(std::string_view bytes, std::string_view where) {
  if (bytes.size() < kRecordHeaderBytes + kRecordTrailerBytes) {
    return Bad(where, absl::StrFormat("%d bytes, shorter than a header and checksum (%d)",
                                      bytes.size(), kRecordHeaderBytes + kRecordTrailerBytes));
  }
  if (bytes.substr(0, kRecordMagic.size()) != kRecordMagic) return Bad(where, "no \"AMR1\" magic");
  // The checksum first: a field read from a damaged record would only mislead the messages below.
  std::uint64_t stored = 0;
  std::memcpy(&stored, bytes.data() + bytes.size() - kRecordTrailerBytes, sizeof stored);
  const std::string_view body = bytes.substr(0, bytes.size() - kRecordTrailerBytes);
  if (XXH3_64bits(body.data(), body.size()) != stored) return Bad(where, "bad checksum");

  Reader in(body.substr(kRecordMagic.size()));
  Record record;
  RecordHeader& h = record.header;
  std::uint16_t version = 0;
  std::uint8_t kind = 0, flags = 0;
  std::uint32_t count = 0;
  in.Get(version);
  in.Get(kind);
  in.Get(flags);
  in.Get(h.version);
  in.Get(h.base);
  in.Get(h.full_seq);
  in.Get(h.start_seq);
  in.Get(h.published_unix_ns);
  in.Get(h.chunk_index);
  in.Get(h.chunk_count);
  in.Get(count);  // the size check above covers the whole header
  if (version != kRecordVersion) {
    return Bad(where,
               absl::StrFormat("record version %d (this build reads %d)", version, kRecordVersion));
  }
  if (kind != static_cast<std::uint8_t>(RecordKind::kDiff) &&
      kind != static_cast<std::uint8_t>(RecordKind::kFull)) {
    return Bad(where, absl::StrFormat("unknown kind %d", kind));
  }
  h.kind = static_cast<RecordKind>(kind);
  if (h.chunk_count == 0 || h.chunk_index >= h.chunk_count) {
    return Bad(where, absl::StrFormat("chunk %d of %d", h.chunk_index, h.chunk_count));
  }
  // Not reserved from `count`: a damaged count could be anything; entries cost >= 9 bytes each.
  for (std::uint32_t i = 0; i < count; ++i) {
    RecordEntry entry;
    std::uint8_t op = 0;
    std::uint32_t key_len = 0, value_len = 0;
    if (!in.Get(op) || !in.Get(key_len) || !in.Get(value_len) || !in.Take(key_len, entry.key) ||
        !in.Take(value_len, entry.value)) {
      return Bad(where, absl::StrFormat("entry %d of %d runs past the end", i, count));
    }
    if (op != static_cast<std::uint8_t>(EntryOp::kSet) &&
        op != static_cast<std::uint8_t>(EntryOp::kErase)) {
      return Bad(where, absl::StrFormat("entry %d: unknown op %d", i, op));
    }
    entry.op = static_cast<EntryOp>(op);
    record.entries.push_back(std::move(entry));
  }
  if (in.left() != 0)
    return Bad(where, absl::StrFormat("%d bytes after the last entry", in.left()));
  return record;
}

}  // namespace atomap::replicate

// ReplicationPublisher (atomap/replicate.h): one record per observed version, compare-and-appended
// to the atom's subject.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "atomap/diff.h"
#include "atomap/replicate.h"
#include "replicate/nats_log.h"
#include "replicate/record.h"

namespace atomap {

using replicate::EntryOp;
using replicate::LogMessage;
using replicate::NatsLog;
using replicate::Record;
using replicate::RecordEntry;
using replicate::RecordHeader;
using replicate::RecordKind;

namespace {

// Room left in a message for NATS's own headers (the expected-sequence header and the reply).
constexpr std::int64_t kMessageSlack = 1024;

std::uint64_t NowUnixNanos() { return static_cast<std::uint64_t>(absl::ToUnixNanos(absl::Now())); }

// Splits `entries` into runs whose encoded size fits `budget` bytes each (at least one run).
// ResourceExhausted if one entry alone does not fit.
absl::StatusOr<std::vector<std::vector<RecordEntry>>> Chunk(std::vector<RecordEntry> entries,
                                                            std::size_t budget,
                                                            std::int64_t max_payload) {
  std::vector<std::vector<RecordEntry>> chunks(1);
  std::size_t used = 0;
  for (RecordEntry& entry : entries) {
    const std::size_t size = replicate::kEntryOverheadBytes + entry.key.size() + entry.value.size();
    if (size > budget) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "an entry of %d bytes (key of %d) does not fit one NATS message (server max_payload "
          "%d): raise max_payload in the server's configuration",
          size, entry.key.size(), max_payload));
    }
    if (used + size > budget) {
      chunks.emplace_back();
      used = 0;
    }
    used += size;
    chunks.back().push_back(std::move(entry));
  }
  return chunks;
}

// What the subject's last message says about the stream, for a publisher resuming.
struct StreamPosition {
  std::uint64_t last_seq = 0;
  std::uint64_t version = 0;   // the publisher version its last complete record holds
  std::uint64_t full_seq = 0;  // first message of the newest complete full record
  bool complete = true;        // false: the last record lost chunks with its publisher
};

absl::StatusOr<StreamPosition> ReadPosition(NatsLog& log, const std::string& subject) {
  absl::StatusOr<std::optional<LogMessage>> last = log.Last(subject);
  if (!last.ok()) return last.status();
  StreamPosition position;
  if (!last->has_value()) return position;
  const LogMessage& m = **last;
  absl::StatusOr<Record> record = replicate::DecodeRecord(
      m.data, absl::StrFormat("NATS stream %s, %s, sequence %d", log.stream(), subject, m.seq));
  if (!record.ok()) return record.status();
  const RecordHeader& h = record->header;
  position.last_seq = m.seq;
  position.version = h.version;
  position.complete = h.chunk_index + 1 == h.chunk_count;
  position.full_seq = h.full_seq;
  if (position.complete && h.kind == RecordKind::kFull) {
    position.full_seq = h.chunk_index == 0 ? m.seq : h.start_seq;
  }
  return position;
}

}  // namespace

class ReplicationPublisher::Impl {
 public:
  Impl(Atom atom, ReplicationOptions options, std::unique_ptr<NatsLog> log)
      : atom_(atom),
        options_(std::move(options)),
        log_(std::move(log)),
        subject_(ReplicationSubject(options_.subject_prefix, atom_.name())) {}

  absl::Status Resume() {
    absl::StatusOr<StreamPosition> position = ReadPosition(*log_, subject_);
    if (!position.ok()) return position.status();
    last_seq_ = position->last_seq;
    full_seq_ = position->full_seq;
    absl::StatusOr<Snapshot> now = atom_.load();
    if (!now.ok()) return now.status();
    if (position->last_seq != 0 && now->version() < position->version) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "NATS stream %s, %s holds version %d of atom \"%s\", which is at version %d here: the "
          "stream belongs to another domain (use another --stream or subject prefix)",
          log_->stream(), subject_, position->version, atom_.name(), now->version()));
    }
    stats_.last_seq = position->last_seq;
    stats_.last_version = position->version;
    if (position->last_seq != 0 && position->complete && now->version() == position->version) {
      last_ = std::move(*now);  // the stream is where the atom is: diffs resume from here
      return absl::OkStatus();
    }
    // An empty subject, or versions this domain no longer holds: the whole state.
    return AppendFull(*std::move(now), position->version);
  }

  absl::StatusOr<bool> PublishNext(absl::Duration timeout) {
    absl::StatusOr<Snapshot> next = atom_.wait_for_change(last_->version(), timeout);
    if (absl::IsDeadlineExceeded(next.status())) return false;
    if (!next.ok()) return next.status();
    if (options_.full_every != 0 && since_full_ + 1 >= options_.full_every) {
      if (absl::Status s = AppendFull(*std::move(next), last_->version()); !s.ok()) return s;
      return true;
    }
    absl::StatusOr<MapDiff> diff = Diff(last_->map(), next->map());
    if (!diff.ok()) return diff.status();
    std::vector<RecordEntry> entries;
    entries.reserve(diff->added.size() + diff->changed.size() + diff->removed.size());
    for (auto& [key, value] : diff->added) {
      entries.push_back({EntryOp::kSet, std::move(key), std::move(value)});
    }
    for (MapDiff::Change& change : diff->changed) {
      entries.push_back({EntryOp::kSet, std::move(change.key), std::move(change.new_value)});
    }
    for (auto& [key, value] : diff->removed)
      entries.push_back({EntryOp::kErase, std::move(key), {}});
    RecordHeader header;
    header.kind = RecordKind::kDiff;
    header.version = next->version();
    header.base = last_->version();
    if (absl::Status s = Append(header, std::move(entries)); !s.ok()) return s;
    last_ = *std::move(next);
    return true;
  }

  absl::Status PublishFull() {
    absl::StatusOr<Snapshot> now = atom_.load();
    if (!now.ok()) return now.status();
    return AppendFull(*std::move(now), last_ ? last_->version() : 0);
  }

  const ReplicationStats& stats() const { return stats_; }
  const std::string& subject() const { return subject_; }

 private:
  absl::Status AppendFull(Snapshot now, std::uint64_t previous_version) {
    std::vector<RecordEntry> entries;
    absl::Status read = now.map().CheckedForEach([&](std::string_view key, std::string_view value) {
      entries.push_back({EntryOp::kSet, std::string(key), std::string(value)});
    });
    if (!read.ok()) return read;
    RecordHeader header;
    header.kind = RecordKind::kFull;
    header.version = now.version();
    header.base = previous_version;
    if (absl::Status s = Append(header, std::move(entries)); !s.ok()) return s;
    last_ = std::move(now);
    return absl::OkStatus();
  }

  // Appends one record, in as many chunks as max_payload needs, each compare-and-appended on the
  // sequence the previous one got.
  absl::Status Append(RecordHeader header, std::vector<RecordEntry> entries) {
    const std::int64_t max_payload = log_->max_payload();
    const std::int64_t budget =
        max_payload - kMessageSlack -
        static_cast<std::int64_t>(replicate::kRecordHeaderBytes + replicate::kRecordTrailerBytes);
    absl::StatusOr<std::vector<std::vector<RecordEntry>>> chunks =
        Chunk(std::move(entries), static_cast<std::size_t>(std::max<std::int64_t>(budget, 1)),
              max_payload);
    if (!chunks.ok()) return chunks.status();
    if (chunks->size() > 0xFFFF) {
      return absl::ResourceExhaustedError(
          absl::StrFormat("a record of %d chunks (more than 65535): raise the server's max_payload",
                          chunks->size()));
    }
    header.full_seq = full_seq_;
    header.published_unix_ns = NowUnixNanos();
    header.chunk_count = static_cast<std::uint16_t>(chunks->size());
    std::uint64_t first_seq = 0;
    for (std::size_t i = 0; i < chunks->size(); ++i) {
      header.chunk_index = static_cast<std::uint16_t>(i);
      header.start_seq = first_seq;
      absl::StatusOr<std::uint64_t> seq =
          AppendMessage(replicate::EncodeRecord(header, (*chunks)[i]));
      if (!seq.ok()) return seq.status();
      if (i == 0) first_seq = *seq;
    }
    log_->Notify(subject_);  // the record is whole: followers waiting may read it
    const std::uint64_t covered = header.version - std::min(header.version, stats_.last_version);
    ++stats_.records;
    stats_.versions += covered;
    stats_.last_seq = last_seq_;
    stats_.last_version = header.version;
    if (absl::StatusOr<std::uint64_t> now = atom_.version(); now.ok()) {
      stats_.lag_versions = *now - std::min(*now, header.version);
    }
    if (header.kind == RecordKind::kFull) {
      full_seq_ = first_seq;
      since_full_ = 0;
      ++stats_.full_records;
    } else {
      ++since_full_;
    }
    return absl::OkStatus();
  }

  // One message, on the condition that the subject still ends at last_seq_. If the condition
  // fails because our own earlier try went through (its acknowledgement was lost in a reconnect),
  // the subject's last message is byte for byte this one: that counts as success.
  absl::StatusOr<std::uint64_t> AppendMessage(const std::string& data) {
    absl::StatusOr<std::uint64_t> seq = log_->Append(subject_, data, last_seq_);
    if (replicate::IsWrongLastSequence(seq.status())) {
      absl::StatusOr<std::optional<LogMessage>> last = log_->Last(subject_);
      if (last.ok() && last->has_value() && (*last)->data == data) seq = (*last)->seq;
    }
    if (!seq.ok()) return seq.status();
    last_seq_ = *seq;
    return seq;
  }

  Atom atom_;
  ReplicationOptions options_;
  std::unique_ptr<NatsLog> log_;
  std::string subject_;
  std::optional<Snapshot> last_;  // the version last published (held: the next diff's base)
  std::uint64_t last_seq_ = 0;  // the subject's last sequence, as far as we know
  std::uint64_t full_seq_ = 0;
  std::uint64_t since_full_ = 0;  // records since the last full one (by this process)
  ReplicationStats stats_;
};

std::string ReplicationSubject(std::string_view prefix, std::string_view atom_name) {
  std::string subject(prefix);
  subject += '.';
  for (const char c : atom_name) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '_' || c == '-';
    if (plain) {
      subject += c;
    } else {
      subject += absl::StrFormat("=%02X", static_cast<unsigned char>(c));
    }
  }
  return subject;
}

absl::StatusOr<ReplicationPublisher> ReplicationPublisher::Start(
    Atom atom, const ReplicationOptions& options) {
  absl::StatusOr<std::unique_ptr<NatsLog>> log = NatsLog::ConnectToStream(options);
  if (!log.ok()) return log.status();
  auto impl = std::make_unique<Impl>(atom, options, *std::move(log));
  if (absl::Status s = impl->Resume(); !s.ok()) return s;
  return ReplicationPublisher(std::move(impl));
}

ReplicationPublisher::ReplicationPublisher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ReplicationPublisher::ReplicationPublisher(ReplicationPublisher&&) noexcept = default;
ReplicationPublisher& ReplicationPublisher::operator=(ReplicationPublisher&&) noexcept = default;
ReplicationPublisher::~ReplicationPublisher() = default;

absl::StatusOr<bool> ReplicationPublisher::PublishNext(absl::Duration timeout) {
  return impl_->PublishNext(timeout);
}
absl::Status ReplicationPublisher::PublishFull() { return impl_->PublishFull(); }
const ReplicationStats& ReplicationPublisher::stats() const { return impl_->stats(); }
const std::string& ReplicationPublisher::subject() const { return impl_->subject(); }

}  // namespace atomap

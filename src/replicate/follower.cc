// ReplicationFollower (atomap/replicate.h): records applied in stream order, each as one swap
// that also stores its stream sequence in the version's tag.
#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
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

// The longest one wait for a wake-up lasts (then the stream is read again): a wake-up lost in a
// reconnect, or a record appended by something that does not announce it, costs at most this
// much lag; an idle follower reads the stream this often.
constexpr absl::Duration kLongestWait = absl::Milliseconds(250);
// How often the stream's newest version is read for stats().lag_versions while applying.
constexpr absl::Duration kLagRefresh = absl::Seconds(1);
// Lost races of one apply before giving up: only another writer of the atom causes them.
constexpr int kMaxApplyTries = 16;

}  // namespace

class ReplicationFollower::Impl {
 public:
  Impl(Atom atom, ReplicationOptions options, std::unique_ptr<NatsLog> log)
      : atom_(atom),
        options_(std::move(options)),
        log_(std::move(log)),
        subject_(ReplicationSubject(options_.subject_prefix, atom_.name())) {}

  // Where to resume: after the tag's sequence, whose record says which version we hold.
  absl::Status Resume() {
    absl::StatusOr<Snapshot> now = atom_.load();
    if (!now.ok()) return now.status();
    applied_seq_ = now->tag();
    if (applied_seq_ == 0) return absl::OkStatus();  // bootstrap at the first ApplyNext
    absl::StatusOr<LogMessage> at = log_->At(applied_seq_);
    if (!at.ok()) {
      return absl::Status(at.status().code(),
                          absl::StrFormat("atom \"%s\" last applied sequence %d: %s", atom_.name(),
                                          applied_seq_, at.status().message()));
    }
    absl::StatusOr<Record> record = replicate::DecodeRecord(at->data, Where(at->seq));
    if (!record.ok()) return record.status();
    if (record->header.chunk_index + 1 != record->header.chunk_count) {
      return absl::DataLossError(absl::StrFormat(
          "%s: atom \"%s\" says it applied a record ending here, but this is chunk %d of %d",
          Where(at->seq), atom_.name(), record->header.chunk_index, record->header.chunk_count));
    }
    applied_version_ = record->header.version;
    next_from_ = applied_seq_ + 1;
    stats_.last_seq = applied_seq_;
    stats_.last_version = applied_version_;
    return absl::OkStatus();
  }

  absl::StatusOr<bool> ApplyNext(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      if (next_from_ == 0) {
        if (absl::Status s = FindBootstrap(); !s.ok()) return s;
      }
      if (next_from_ != 0) {
        absl::StatusOr<std::optional<LogMessage>> m = log_->NextFrom(subject_, next_from_);
        if (!m.ok()) return m.status();
        if (m->has_value()) {
          next_from_ = (*m)->seq + 1;
          absl::StatusOr<bool> applied = Take(**m);
          if (!applied.ok() || *applied) return applied;
          continue;  // a chunk: read on
        }
        stats_.lag_versions = 0;  // nothing newer in the stream
      }
      const absl::Time now = absl::Now();
      if (now >= deadline) return false;
      if (absl::Status s = log_->WaitForAppend(subject_, std::min(deadline - now, kLongestWait));
          !s.ok()) {
        return s;
      }
    }
  }

  const ReplicationStats& stats() const { return stats_; }
  const std::string& subject() const { return subject_; }

 private:
  std::string Where(std::uint64_t seq) const {
    return absl::StrFormat("NATS stream %s, %s, sequence %d", log_->stream(), subject_, seq);
  }

  // A new follower starts at the first message of the newest complete full record, which the
  // subject's last message names (or is). Leaves next_from_ 0 while there is none yet.
  absl::Status FindBootstrap() {
    absl::StatusOr<std::optional<LogMessage>> last = log_->Last(subject_);
    if (!last.ok()) return last.status();
    if (!last->has_value()) return absl::OkStatus();
    absl::StatusOr<Record> record = replicate::DecodeRecord((*last)->data, Where((*last)->seq));
    if (!record.ok()) return record.status();
    const RecordHeader& h = record->header;
    std::uint64_t start = h.full_seq;
    if (h.kind == RecordKind::kFull && h.chunk_index + 1 == h.chunk_count) {
      start = h.chunk_index == 0 ? (*last)->seq : h.start_seq;
    }
    next_from_ = start;
    return absl::OkStatus();
  }

  // One message: a whole record (applied: true) or a chunk of one (false until its last).
  absl::StatusOr<bool> Take(const LogMessage& m) {
    absl::StatusOr<Record> record = replicate::DecodeRecord(m.data, Where(m.seq));
    if (!record.ok()) return record.status();
    const RecordHeader& h = record->header;
    if (h.chunk_index == 0) {
      // Chunks pending here were a record its publisher never finished (killed, or its append
      // failed): they were never applied, and the record after them is checked against what was
      // (a restarted publisher sends a full one; a publisher that goes on, a diff over the
      // version before them).
      pending_.clear();
      pending_first_seq_ = m.seq;
    } else if (pending_.empty() || h.start_seq != pending_first_seq_ ||
               h.chunk_index != pending_.size() || h.version != pending_[0].header.version) {
      return absl::DataLossError(absl::StrFormat(
          "%s: chunk %d of %d of version %d (first chunk at %d) does not continue the chunks "
          "read before it (%d, from %d)",
          Where(m.seq), h.chunk_index, h.chunk_count, h.version, h.start_seq, pending_.size(),
          pending_first_seq_));
    }
    const bool last_chunk = h.chunk_index + 1 == h.chunk_count;
    pending_.push_back(*std::move(record));
    if (!last_chunk) return false;
    absl::Status applied = Apply(m.seq);
    pending_.clear();
    if (!applied.ok()) return applied;
    return true;
  }

  // Applies pending_ (one whole record ending at `seq`) as one swap tagged `seq`.
  absl::Status Apply(std::uint64_t seq) {
    const RecordHeader& h = pending_[0].header;
    const bool full = h.kind == RecordKind::kFull;
    if (!full && applied_seq_ == 0) {
      return absl::DataLossError(absl::StrFormat(
          "%s: a new follower must start at a full record, and this is a diff", Where(seq)));
    }
    if (!full && h.base != applied_version_) {
      return absl::DataLossError(absl::StrFormat(
          "%s: a gap: this diff goes from version %d to %d, but atom \"%s\" last applied version "
          "%d (sequence %d); nothing applied",
          Where(seq), h.base, h.version, atom_.name(), applied_version_, applied_seq_));
    }
    if (full && applied_seq_ != 0 && h.version < applied_version_) {
      return absl::DataLossError(absl::StrFormat(
          "%s: a full record of version %d, older than version %d applied at sequence %d",
          Where(seq), h.version, applied_version_, applied_seq_));
    }
    absl::Status swapped = SwapIn(full, seq);
    if (!swapped.ok()) return swapped;
    const std::uint64_t covered = h.version - std::min(h.version, applied_version_);
    stats_.versions += covered;
    stats_.lag_versions -= std::min(stats_.lag_versions, covered);  // until the next refresh
    applied_seq_ = seq;
    applied_version_ = h.version;
    ++stats_.records;
    if (full) ++stats_.full_records;
    stats_.last_seq = seq;
    stats_.last_version = h.version;
    stats_.lag_seconds =
        std::max(0.0, static_cast<double>(absl::ToUnixNanos(absl::Now()) -
                                          static_cast<std::int64_t>(h.published_unix_ns)) /
                          1e9);
    RefreshLag();
    return absl::OkStatus();
  }

  // The stream's newest version against ours, at most once per kLagRefresh (one request).
  void RefreshLag() {
    const absl::Time now = absl::Now();
    if (now - lag_checked_ < kLagRefresh) return;
    lag_checked_ = now;
    absl::StatusOr<std::optional<LogMessage>> last = log_->Last(subject_);
    if (!last.ok() || !last->has_value()) return;
    absl::StatusOr<Record> record = replicate::DecodeRecord((*last)->data, Where((*last)->seq));
    if (!record.ok()) return;  // reported when the follower reaches it
    const std::uint64_t newest = record->header.version;
    stats_.lag_versions = newest - std::min(newest, applied_version_);
  }

  // One compare-and-set over the current version, which must carry the tag we last set (else
  // another follower applies to this atom too).
  absl::Status SwapIn(bool full, std::uint64_t seq) {
    for (int attempt = 0; attempt < kMaxApplyTries; ++attempt) {
      absl::StatusOr<Snapshot> base = atom_.load();
      if (!base.ok()) return base.status();
      if (base->tag() != applied_seq_) {
        return absl::FailedPreconditionError(absl::StrFormat(
            "atom \"%s\" moved to sequence %d while this follower was at %d: another follower "
            "applies to it",
            atom_.name(), base->tag(), applied_seq_));
      }
      absl::StatusOr<Transaction> tx = atom_.begin(*base);
      if (!tx.ok()) return tx.status();
      absl::Status edits = full ? WriteFull(*base, *tx) : WriteDiff(*tx);
      if (!edits.ok()) return edits;
      tx->set_tag(seq);
      absl::StatusOr<Snapshot> published = atom_.compare_and_set(*std::move(tx));
      if (published.ok()) return absl::OkStatus();
      if (!IsLostRace(published.status())) return published.status();
    }
    return absl::AbortedError(absl::StrFormat(
        "atom \"%s\": %d lost races applying sequence %d: something else writes the follower's "
        "atom",
        atom_.name(), kMaxApplyTries, seq));
  }

  absl::Status WriteDiff(Transaction& tx) {
    for (const Record& chunk : pending_) {
      for (const RecordEntry& entry : chunk.entries) {
        if (entry.op == EntryOp::kSet) {
          if (absl::Status s = tx.set(entry.key, entry.value); !s.ok()) return s;
        } else if (absl::StatusOr<bool> s = tx.erase(entry.key); !s.ok()) {
          return s.status();
        }
      }
    }
    return absl::OkStatus();
  }

  // The whole state: every entry of the record set, every other key of `base` erased.
  absl::Status WriteFull(const Snapshot& base, Transaction& tx) {
    absl::flat_hash_set<std::string_view> keys;
    for (const Record& chunk : pending_) {
      for (const RecordEntry& entry : chunk.entries) keys.insert(entry.key);
    }
    std::vector<std::string_view> stale;
    absl::Status read = base.map().CheckedForEach([&](std::string_view key, std::string_view) {
      if (!keys.contains(key)) stale.push_back(key);
    });
    if (!read.ok()) return read;
    for (std::string_view key : stale) {
      if (absl::StatusOr<bool> s = tx.erase(key); !s.ok()) return s.status();
    }
    return WriteDiff(tx);  // a full record holds only sets
  }

  Atom atom_;
  ReplicationOptions options_;
  std::unique_ptr<NatsLog> log_;
  std::string subject_;
  std::uint64_t applied_seq_ = 0;  // the tag: last message of the last applied record
  std::uint64_t applied_version_ = 0;  // the publisher version that record holds
  std::uint64_t next_from_ = 0;  // 0: not yet placed (bootstrap)
  std::vector<Record> pending_;  // chunks of the record being read
  std::uint64_t pending_first_seq_ = 0;
  absl::Time lag_checked_ = absl::InfinitePast();
  ReplicationStats stats_;
};

absl::StatusOr<ReplicationFollower> ReplicationFollower::Start(Atom atom,
                                                               const ReplicationOptions& options) {
  absl::StatusOr<std::unique_ptr<NatsLog>> log = NatsLog::ConnectToStream(options);
  if (!log.ok()) return log.status();
  auto impl = std::make_unique<Impl>(atom, options, *std::move(log));
  if (absl::Status s = impl->Resume(); !s.ok()) return s;
  return ReplicationFollower(std::move(impl));
}

ReplicationFollower::ReplicationFollower(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ReplicationFollower::ReplicationFollower(ReplicationFollower&&) noexcept = default;
ReplicationFollower& ReplicationFollower::operator=(ReplicationFollower&&) noexcept = default;
ReplicationFollower::~ReplicationFollower() = default;

absl::StatusOr<bool> ReplicationFollower::ApplyNext(absl::Duration timeout) {
  return impl_->ApplyNext(timeout);
}
const ReplicationStats& ReplicationFollower::stats() const { return impl_->stats(); }
const std::string& ReplicationFollower::subject() const { return impl_->subject(); }

}  // namespace atomap

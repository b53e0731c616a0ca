// atomap replication: an atom's versions carried to other machines through a NATS JetStream
// stream (docs/replication.md). A separate library, atomap_replicate (CMake option
// ATOMAP_BUILD_REPLICATION, on when libnats is found): the core library does not use NATS.
//
// Usage:
//
//   atomap::ReplicationOptions options;
//   options.nats_url = "nats://10.0.0.5:4222";
//   options.stream = "STATE";
//   // On the machine that writes the atom:
//   absl::StatusOr<atomap::ReplicationPublisher> pub =
//       atomap::ReplicationPublisher::Start(*domain->atom("config"), options);
//   for (;;) if (absl::StatusOr<bool> s = pub->PublishNext(absl::Seconds(1)); !s.ok()) break;
//   // On each machine that reads it (its own domain, its own atom of the same name):
//   absl::StatusOr<atomap::ReplicationFollower> fol =
//       atomap::ReplicationFollower::Start(*replica->atom("config"), options);
//   for (;;) if (absl::StatusOr<bool> s = fol->ApplyNext(absl::Seconds(1)); !s.ok()) break;
//
// Contract
//  - The publisher appends one record per version it observes to subject
//    `<subject_prefix>.<atom>` (the atom's name with bytes other than letters, digits, '_' and
//    '-' written "=XX"): a diff against the version it published before, or, first on an empty
//    subject, every `full_every` records, after its own restart and on PublishFull(), the whole
//    contents. Versions published while it was busy arrive merged in one record (which carries
//    both version numbers). Every append is compare-and-append on the subject's last sequence:
//    two publishers of one atom never interleave (the second gets an Aborted naming the subject).
//    A record larger than the server's max_payload is split into chunks that a follower applies
//    together.
//  - The follower applies each record as ONE swap of its atom that also sets the version's tag
//    to the stream sequence of the record's last message (Snapshot::tag()). It resumes after
//    that sequence, so a crash at any moment neither applies a record twice nor skips one. A new
//    follower (tag 0) starts from the newest full record. Its atom's versions are thus a prefix,
//    in order, of the publisher's (merged where the publisher merged them); it lags behind.
//  - A diff whose base is not the version the follower last applied (a gap: a record deleted from
//    the stream, two publishers of different domains), a record that fails its checksum or does
//    not parse is DataLoss naming the stream, the sequence and what is wrong; nothing is applied.
//  - NATS outages (no server, a restart, timeouts) are retried for `retry_for`, then Unavailable.
//  - The follower must be the only writer of its atom: another writer's keys are not detected
//    (they stay until the next full record). A second follower of the same atom is: the tag
//    moves under it (FailedPrecondition).
//
// Thread safety: a publisher is used only by the thread that started it (it holds a snapshot of
// the version it published last, and a snapshot belongs to the thread that took it); a follower
// by one thread at a time. Each holds its own NATS connection. Fork before starting one: libnats
// runs threads.
#ifndef ATOMAP_REPLICATE_H_
#define ATOMAP_REPLICATE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "atomap/atom.h"

namespace atomap {

struct ReplicationOptions {
  std::string nats_url = "nats://127.0.0.1:4222";
  std::string stream = "ATOMAP";  // created (file storage, allow_direct) by a publisher if missing
  std::string subject_prefix = "atomap";  // the stream holds `<subject_prefix>.>`
  std::uint64_t full_every = 1000;  // a full-state record after this many records
  absl::Duration retry_for = absl::Seconds(30);  // how long NATS failures are retried
};

// What a publisher or follower has done, and how far behind it is.
struct ReplicationStats {
  std::uint64_t records = 0;  // records appended (publisher) or applied (follower) by it
  std::uint64_t full_records = 0;  // of which full-state
  std::uint64_t versions = 0;  // publisher atom versions they covered
  std::uint64_t last_seq = 0;  // stream sequence of the last record's last message
  std::uint64_t last_version = 0;  // the publisher's atom version that record holds
  // Publisher: its atom's version minus last_version, when it last looked. Follower: the stream's
  // newest record's version minus last_version, after its last apply.
  std::uint64_t lag_versions = 0;
  // Follower: now minus the applied record's publication time, at the apply (clocks of two
  // machines: as good as their synchronisation).
  double lag_seconds = 0;
};

class ReplicationPublisher {
 public:
  // Connects, creates the stream if missing, and learns from the subject's last record which
  // version the stream holds. Appends a full-state record at once if the subject is empty or the
  // atom has moved past that version (the versions in between are gone from the domain).
  // FailedPrecondition if the stream holds a newer version than the atom (another domain's
  // stream?).
  static absl::StatusOr<ReplicationPublisher> Start(Atom atom, const ReplicationOptions& options);
  ReplicationPublisher(ReplicationPublisher&&) noexcept;
  ReplicationPublisher& operator=(ReplicationPublisher&&) noexcept;
  ~ReplicationPublisher();

  // Waits up to `timeout` for the atom to change, then appends one record covering every version
  // since the last one. False if nothing changed.
  absl::StatusOr<bool> PublishNext(absl::Duration timeout);
  // Appends a full-state record of the atom's current version now.
  absl::Status PublishFull();
  const ReplicationStats& stats() const;
  const std::string& subject() const;

  class Impl;

 private:
  explicit ReplicationPublisher(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class ReplicationFollower {
 public:
  // Connects and finds where to start: after the sequence in the atom's tag, or (tag 0) at the
  // newest full-state record (an empty subject is waited for by ApplyNext). NotFound if the
  // tag's sequence is no longer in the stream (trimmed): bootstrap a new, empty atom instead.
  static absl::StatusOr<ReplicationFollower> Start(Atom atom, const ReplicationOptions& options);
  ReplicationFollower(ReplicationFollower&&) noexcept;
  ReplicationFollower& operator=(ReplicationFollower&&) noexcept;
  ~ReplicationFollower();

  // Waits up to `timeout` for the next record and applies it (one swap). False if none came.
  absl::StatusOr<bool> ApplyNext(absl::Duration timeout);
  const ReplicationStats& stats() const;
  const std::string& subject() const;

  class Impl;

 private:
  explicit ReplicationFollower(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The subject an atom's records go to: `<prefix>.<name>`, bytes of the name other than ASCII
// letters, digits, '_' and '-' written "=XX" (hexadecimal).
std::string ReplicationSubject(std::string_view prefix, std::string_view atom_name);

}  // namespace atomap

#endif  // ATOMAP_REPLICATE_H_

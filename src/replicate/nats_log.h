// NatsLog: the few JetStream operations replication needs, over one connection, with NATS
// statuses turned into absl ones. Transient failures (no server, a timeout, a reconnect in
// progress) are retried, with a short pause, for up to `retry_for`; only then are they
// Unavailable naming the server and what was being done.
//
// Thread safety: one thread at a time (the publisher or follower that owns it).
#ifndef ATOMAP_REPLICATE_NATS_LOG_H_
#define ATOMAP_REPLICATE_NATS_LOG_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "atomap/replicate.h"

namespace atomap::replicate {

// One stored message: its stream sequence and its bytes.
struct LogMessage {
  std::uint64_t seq = 0;
  std::string data;
};

// Where appends to `subject` are announced: "_atomap_wake." + subject, a subject no stream of
// ours captures, so a wake-up costs a few bytes rather than a second copy of the record.
std::string WakeSubject(const std::string& subject);

// True for Append's answer when the subject's last sequence was not the expected one.
bool IsWrongLastSequence(const absl::Status& status);

class NatsLog {
 public:
  struct Handles;  // the libnats objects (nats_log.cc)

  static absl::StatusOr<std::unique_ptr<NatsLog>> Connect(std::string url, std::string stream,
                                                          absl::Duration retry_for);
  // Connect to options.nats_url and EnsureStream over `<subject_prefix>.>`: how a publisher and
  // a follower both start.
  static absl::StatusOr<std::unique_ptr<NatsLog>> ConnectToStream(
      const ReplicationOptions& options);
  ~NatsLog();
  NatsLog(const NatsLog&) = delete;
  NatsLog& operator=(const NatsLog&) = delete;

  // Creates the stream (file storage, direct get allowed) over `subjects` if it does not exist.
  // FailedPrecondition if it exists without direct get (followers read with it).
  absl::Status EnsureStream(const std::string& subjects);
  // Appends `data` to `subject` if the subject's last sequence is `expected_last` (0: the
  // subject holds no message); returns the new message's sequence. Otherwise an Aborted for
  // which IsWrongLastSequence is true.
  absl::StatusOr<std::uint64_t> Append(const std::string& subject, std::string_view data,
                                       std::uint64_t expected_last);
  // The subject's newest message; nullopt if it has none.
  absl::StatusOr<std::optional<LogMessage>> Last(const std::string& subject);
  // The subject's first message at sequence `from` or later; nullopt if none yet.
  absl::StatusOr<std::optional<LogMessage>> NextFrom(const std::string& subject,
                                                     std::uint64_t from);
  // The message at `seq`: NotFound if there is none (deleted or never written).
  absl::StatusOr<LogMessage> At(std::uint64_t seq);
  // Tells the waiters of WaitForAppend(subject) that something was appended: an empty core NATS
  // message on WakeSubject(subject), outside the stream (best effort: lost while disconnected).
  void Notify(const std::string& subject);
  // Subscribes (once) to the wake-ups of `subject`, then returns when one arrives or `timeout`
  // passes, whichever is first. Only a hint: check the log again after it.
  absl::Status WaitForAppend(const std::string& subject, absl::Duration timeout);
  // The largest message the server takes.
  std::int64_t max_payload() const;
  const std::string& url() const { return url_; }
  const std::string& stream() const { return stream_; }

 private:
  NatsLog(std::string url, std::string stream, absl::Duration retry_for);

  std::string url_;
  std::string stream_;
  absl::Duration retry_for_;
  std::unique_ptr<Handles> handles_;
};

}  // namespace atomap::replicate

#endif  // ATOMAP_REPLICATE_NATS_LOG_H_

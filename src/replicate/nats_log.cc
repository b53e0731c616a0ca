// NatsLog over libnats (nats_log.h).
#include "replicate/nats_log.h"

#include <nats/nats.h>

#include <algorithm>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace atomap::replicate {

struct NatsLog::Handles {
  natsOptions* options = nullptr;
  natsConnection* connection = nullptr;
  jsCtx* js = nullptr;
  natsSubscription* wake = nullptr;  // WaitForAppend's subscription
  std::string wake_subject;
  ~Handles() {
    if (wake != nullptr) natsSubscription_Destroy(wake);
    if (js != nullptr) jsCtx_Destroy(js);
    if (connection != nullptr) natsConnection_Destroy(connection);
    if (options != nullptr) natsOptions_Destroy(options);
  }
};

namespace {

// The payload of Aborted statuses from Append that mean "the subject moved on".
constexpr char kWrongLastMark[] = "atomap.replicate.wrong_last_sequence";
// Between two tries of an operation that failed for want of a server.
constexpr absl::Duration kRetryPause = absl::Milliseconds(100);

// Failures that a working server, reached again, would not give: worth retrying.
bool Transient(natsStatus s, jsErrCode jerr) {
  switch (s) {
    case NATS_TIMEOUT:
    case NATS_NO_SERVER:
    case NATS_IO_ERROR:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NOT_YET_CONNECTED:
    case NATS_NO_RESPONDERS:
    case NATS_STALE_CONNECTION:
      return true;
    default:
      break;
  }
  // JetStream still starting (its store being recovered after a restart).
  return jerr == JSClusterNotAvailErr || jerr == JSNotEnabledErr ||
         jerr == JSNotEnabledForAccountErr || jerr == JSStreamStoreFailedErr;
}

std::string Describe(natsStatus s, jsErrCode jerr) {
  std::string text = natsStatus_GetText(s);
  natsStatus last = NATS_OK;
  if (const char* detail = nats_GetLastError(&last); detail != nullptr && *detail != '\0') {
    absl::StrAppend(&text, " (", detail, ")");
  }
  if (jerr != 0) absl::StrAppend(&text, ", JetStream error ", static_cast<int>(jerr));
  return text;
}

// Takes a libnats message's sequence and bytes, and frees it.
LogMessage TakeMessage(natsMsg* msg) {
  LogMessage out;
  out.seq = natsMsg_GetSequence(msg);
  out.data.assign(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
  natsMsg_Destroy(msg);
  return out;
}

}  // namespace

bool IsWrongLastSequence(const absl::Status& status) {
  return absl::IsAborted(status) && status.GetPayload(kWrongLastMark).has_value();
}

NatsLog::NatsLog(std::string url, std::string stream, absl::Duration retry_for)
    : url_(std::move(url)),
      stream_(std::move(stream)),
      retry_for_(retry_for),
      handles_(std::make_unique<Handles>()) {}

absl::StatusOr<std::unique_ptr<NatsLog>> NatsLog::ConnectToStream(
    const ReplicationOptions& options) {
  absl::StatusOr<std::unique_ptr<NatsLog>> log =
      Connect(options.nats_url, options.stream, options.retry_for);
  if (!log.ok()) return log.status();
  if (absl::Status s = (*log)->EnsureStream(options.subject_prefix + ".>"); !s.ok()) return s;
  return log;
}

NatsLog::~NatsLog() = default;

absl::StatusOr<std::unique_ptr<NatsLog>> NatsLog::Connect(std::string url, std::string stream,
                                                          absl::Duration retry_for) {
  std::unique_ptr<NatsLog> log(new NatsLog(std::move(url), std::move(stream), retry_for));
  Handles& h = *log->handles_;
  natsStatus s = natsOptions_Create(&h.options);
  if (s == NATS_OK) s = natsOptions_SetURL(h.options, log->url_.c_str());
  // Reconnect forever, quickly: a server restart is an outage to wait out, not an error; the
  // operations themselves give up after retry_for.
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(h.options, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(h.options, 100);
  if (s == NATS_OK) s = natsOptions_SetTimeout(h.options, 2000);
  if (s != NATS_OK) {
    return absl::InvalidArgumentError(
        absl::StrFormat("NATS options for %s: %s", log->url_, Describe(s, jsErrCode(0))));
  }
  const absl::Time give_up = absl::Now() + retry_for;
  for (;;) {
    s = natsConnection_Connect(&h.connection, h.options);
    if (s == NATS_OK || !Transient(s, jsErrCode(0)) || absl::Now() >= give_up) break;
    absl::SleepFor(kRetryPause);
  }
  if (s != NATS_OK) {
    return absl::UnavailableError(
        absl::StrFormat("cannot connect to NATS at %s: %s", log->url_, Describe(s, jsErrCode(0))));
  }
  jsOptions js_options;
  jsOptions_Init(&js_options);
  js_options.Wait = 2000;  // ms per JetStream request; retried up to retry_for
  s = natsConnection_JetStream(&h.js, h.connection, &js_options);
  if (s != NATS_OK) {
    return absl::UnavailableError(absl::StrFormat("NATS at %s: no JetStream context: %s", log->url_,
                                                  Describe(s, jsErrCode(0))));
  }
  return log;
}

// Runs `attempt` (which returns a natsStatus and sets its jsErrCode) until it succeeds, fails
// for good, or retry_for has passed since the first try.
template <class Attempt>
static natsStatus Retry(absl::Duration retry_for, jsErrCode& jerr, Attempt attempt) {
  const absl::Time give_up = absl::Now() + retry_for;
  for (;;) {
    jerr = jsErrCode(0);
    const natsStatus s = attempt();
    if (s == NATS_OK || !Transient(s, jerr) || absl::Now() >= give_up) return s;
    absl::SleepFor(kRetryPause);
  }
}

absl::Status NatsLog::EnsureStream(const std::string& subjects) {
  jsErrCode jerr = jsErrCode(0);
  jsStreamInfo* info = nullptr;
  natsStatus s = Retry(retry_for_, jerr, [&] {
    return js_GetStreamInfo(&info, handles_->js, stream_.c_str(), nullptr, &jerr);
  });
  if (s == NATS_OK) {
    const bool direct = info->Config != nullptr && info->Config->AllowDirect;
    jsStreamInfo_Destroy(info);
    if (!direct) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "NATS stream %s at %s does not allow direct get (allow_direct), which followers read "
          "with: recreate it with allow_direct, or let the publisher create it",
          stream_, url_));
    }
    return absl::OkStatus();
  }
  if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr) {
    return absl::UnavailableError(
        absl::StrFormat("NATS stream %s at %s: %s", stream_, url_, Describe(s, jerr)));
  }
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  config.Name = stream_.c_str();
  const char* subject_list[] = {subjects.c_str()};
  config.Subjects = subject_list;
  config.SubjectsLen = 1;
  config.Storage = js_FileStorage;
  config.AllowDirect = true;
  s = Retry(retry_for_, jerr,
            [&] { return js_AddStream(&info, handles_->js, &config, nullptr, &jerr); });
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(info);
    return absl::OkStatus();
  }
  if (jerr == JSStreamNameExistErr) return EnsureStream(subjects);  // another process made it
  return absl::UnavailableError(absl::StrFormat("cannot create NATS stream %s (%s) at %s: %s",
                                                stream_, subjects, url_, Describe(s, jerr)));
}

absl::StatusOr<std::uint64_t> NatsLog::Append(const std::string& subject, std::string_view data,
                                              std::uint64_t expected_last) {
  jsErrCode jerr = jsErrCode(0);
  jsPubAck* ack = nullptr;
  const std::string expected = std::to_string(expected_last);
  const natsStatus s = Retry(retry_for_, jerr, [&] {
    natsMsg* msg = nullptr;
    natsStatus made =
        natsMsg_Create(&msg, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size()));
    // Set by hand: libnats sends no header for an expected sequence of 0, which here means "the
    // subject must be empty" (the first record of an atom).
    if (made == NATS_OK) {
      made = natsMsgHeader_Set(msg, "Nats-Expected-Last-Subject-Sequence", expected.c_str());
    }
    if (made == NATS_OK) made = js_PublishMsg(&ack, handles_->js, msg, nullptr, &jerr);
    natsMsg_Destroy(msg);
    return made;
  });
  if (s == NATS_OK) {
    const std::uint64_t seq = ack->Sequence;
    jsPubAck_Destroy(ack);
    return seq;
  }
  if (jerr == JSStreamWrongLastSequenceErr) {
    absl::Status lost = absl::AbortedError(absl::StrFormat(
        "NATS stream %s, subject %s: the subject's last sequence is no longer %d (another "
        "publisher appended?)",
        stream_, subject, expected_last));
    lost.SetPayload(kWrongLastMark, absl::Cord("1"));
    return lost;
  }
  if (s == NATS_MAX_PAYLOAD) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "NATS at %s: a record chunk of %d bytes exceeds the server's max_payload (%d)", url_,
        data.size(), max_payload()));
  }
  return absl::UnavailableError(absl::StrFormat("cannot append to NATS stream %s, subject %s: %s",
                                                stream_, subject, Describe(s, jerr)));
}

absl::StatusOr<std::optional<LogMessage>> NatsLog::Last(const std::string& subject) {
  jsErrCode jerr = jsErrCode(0);
  natsMsg* msg = nullptr;
  const natsStatus s = Retry(retry_for_, jerr, [&] {
    return js_GetLastMsg(&msg, handles_->js, stream_.c_str(), subject.c_str(), nullptr, &jerr);
  });
  if (s == NATS_OK) return std::optional<LogMessage>(TakeMessage(msg));
  if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) return std::optional<LogMessage>();
  return absl::UnavailableError(
      absl::StrFormat("NATS stream %s: cannot read the last message of %s: %s", stream_, subject,
                      Describe(s, jerr)));
}

absl::StatusOr<std::optional<LogMessage>> NatsLog::NextFrom(const std::string& subject,
                                                            std::uint64_t from) {
  jsErrCode jerr = jsErrCode(0);
  natsMsg* msg = nullptr;
  jsDirectGetMsgOptions get;
  jsDirectGetMsgOptions_Init(&get);
  get.Sequence = from;
  get.NextBySubject = subject.c_str();
  const natsStatus s = Retry(retry_for_, jerr, [&] {
    return js_DirectGetMsg(&msg, handles_->js, stream_.c_str(), nullptr, &get);
  });
  if (s == NATS_OK) return std::optional<LogMessage>(TakeMessage(msg));
  if (s == NATS_NOT_FOUND) return std::optional<LogMessage>();
  return absl::UnavailableError(
      absl::StrFormat("NATS stream %s: cannot read %s from sequence %d: %s", stream_, subject, from,
                      Describe(s, jerr)));
}

absl::StatusOr<LogMessage> NatsLog::At(std::uint64_t seq) {
  jsErrCode jerr = jsErrCode(0);
  natsMsg* msg = nullptr;
  const natsStatus s = Retry(retry_for_, jerr, [&] {
    return js_GetMsg(&msg, handles_->js, stream_.c_str(), seq, nullptr, &jerr);
  });
  if (s == NATS_OK) return TakeMessage(msg);
  if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr) {
    return absl::NotFoundError(
        absl::StrFormat("NATS stream %s holds no message at sequence %d", stream_, seq));
  }
  return absl::UnavailableError(absl::StrFormat("NATS stream %s: cannot read sequence %d: %s",
                                                stream_, seq, Describe(s, jerr)));
}

std::string WakeSubject(const std::string& subject) { return "_atomap_wake." + subject; }

void NatsLog::Notify(const std::string& subject) {
  // No retry, no error: a lost wake-up costs a follower at most its longest wait.
  natsConnection_Publish(handles_->connection, WakeSubject(subject).c_str(), nullptr, 0);
}

absl::Status NatsLog::WaitForAppend(const std::string& subject, absl::Duration timeout) {
  Handles& h = *handles_;
  if (h.wake == nullptr || h.wake_subject != subject) {
    if (h.wake != nullptr) natsSubscription_Destroy(h.wake);
    h.wake = nullptr;
    const natsStatus s =
        natsConnection_SubscribeSync(&h.wake, h.connection, WakeSubject(subject).c_str());
    if (s != NATS_OK) {
      // Not fatal: without a wake-up the caller only waits out its timeout before looking again.
      absl::SleepFor(timeout);
      return absl::OkStatus();
    }
    h.wake_subject = subject;
    return absl::OkStatus();  // subscribed after the caller looked: it must look again first
  }
  natsMsg* msg = nullptr;
  const int64_t ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout));
  const natsStatus s = natsSubscription_NextMsg(&msg, h.wake, ms);
  if (s == NATS_OK) natsMsg_Destroy(msg);
  // Drop the wake-ups already queued: one look at the log covers them all.
  std::uint64_t queued = 0;
  while (natsSubscription_QueuedMsgs(h.wake, &queued) == NATS_OK && queued > 0 &&
         natsSubscription_NextMsg(&msg, h.wake, 1) == NATS_OK) {
    natsMsg_Destroy(msg);
  }
  return absl::OkStatus();
}

std::int64_t NatsLog::max_payload() const {
  return natsConnection_GetMaxPayload(handles_->connection);
}

}  // namespace atomap::replicate

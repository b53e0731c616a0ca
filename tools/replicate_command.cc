// `atomap replicate publish|follow`: an atom carried through NATS JetStream
// (docs/replication.md). Built only with ATOMAP_BUILD_REPLICATION (tools/CMakeLists.txt).
#include <csignal>
#include <cstdio>
#include <string>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "atomap/replicate.h"
#include "cli.h"

namespace atomap::cli {
namespace {

// How long one wait for a change (publish) or a record (follow) lasts: the progress line is
// redrawn at least this often.
constexpr absl::Duration kProgressEvery = absl::Seconds(1);

// Set by SIGUSR1: the publisher appends a full-state record at its next step (within a second).
volatile std::sig_atomic_t full_requested = 0;
extern "C" void RequestFull(int) { full_requested = 1; }

// The progress line: JSON on stdout with --json, else a line on stderr.
void Report(const ReplicateArgs& args, const ReplicationStats& stats, std::string_view subject,
            bool final_line) {
  if (args.common.json) {
    nlohmann::json line = nlohmann::json::object();
    line["mode"] = args.mode;
    PutBytes(line, "atom", args.common.atom, false);
    line["subject"] = std::string(subject);
    line["records"] = stats.records;
    line["full_records"] = stats.full_records;
    line["versions"] = stats.versions;
    line["last_seq"] = stats.last_seq;
    line["last_version"] = stats.last_version;
    line["lag_versions"] = stats.lag_versions;
    line["lag_seconds"] = stats.lag_seconds;
    line["final"] = final_line;
    PrintJsonLine(line);
    std::fflush(stdout);
    return;
  }
  std::fprintf(stderr,
               "replicate %s %s: %llu records (%llu full), %llu versions, sequence %llu, "
               "version %llu, lag %llu versions, %.3f s\n",
               args.mode.c_str(), std::string(subject).c_str(),
               static_cast<unsigned long long>(stats.records),
               static_cast<unsigned long long>(stats.full_records),
               static_cast<unsigned long long>(stats.versions),
               static_cast<unsigned long long>(stats.last_seq),
               static_cast<unsigned long long>(stats.last_version),
               static_cast<unsigned long long>(stats.lag_versions), stats.lag_seconds);
  std::fflush(stderr);
}

// Runs `step` (one record: true if one was published or applied) until --count records, or
// forever, reporting progress about once a second and when anything happened since.
template <class Handle, class Step>
absl::Status Loop(const ReplicateArgs& args, Handle& handle, Step step) {
  Report(args, handle.stats(), handle.subject(), false);  // started: a script can wait for it
  absl::Time next_report = absl::Now() + kProgressEvery;
  std::uint64_t reported = handle.stats().records;
  while (args.count == 0 || handle.stats().records < args.count) {
    absl::StatusOr<bool> done = step(handle);
    if (!done.ok()) {
      Report(args, handle.stats(), handle.subject(), true);
      return done.status();
    }
    if (absl::Now() >= next_report && handle.stats().records != reported) {
      Report(args, handle.stats(), handle.subject(), false);
      reported = handle.stats().records;
      next_report = absl::Now() + kProgressEvery;
    }
  }
  Report(args, handle.stats(), handle.subject(), true);
  return absl::OkStatus();
}

}  // namespace

absl::Status RunReplicate(const ReplicateArgs& args) {
  absl::StatusOr<Domain> domain = OpenExistingDomain(args.common);
  if (!domain.ok()) return domain.status();
  ReplicationOptions options;
  options.nats_url = args.nats_url;
  options.stream = args.stream;
  options.subject_prefix = args.subject_prefix;
  options.full_every = args.full_every;
  options.retry_for = absl::Seconds(args.retry_seconds);
  if (args.mode == "publish") {
    absl::StatusOr<Atom> atom = FindAtom(*domain, args.common.atom);
    if (!atom.ok()) return atom.status();
    absl::StatusOr<ReplicationPublisher> publisher = ReplicationPublisher::Start(*atom, options);
    if (!publisher.ok()) return publisher.status();
    std::signal(SIGUSR1, RequestFull);
    return Loop(args, *publisher, [](ReplicationPublisher& p) -> absl::StatusOr<bool> {
      if (full_requested != 0) {
        full_requested = 0;
        if (absl::Status s = p.PublishFull(); !s.ok()) return s;
        return true;
      }
      return p.PublishNext(kProgressEvery);
    });
  }
  // A follower's atom is created if missing: it starts empty and bootstraps from a full record.
  absl::StatusOr<Atom> atom = domain->atom(args.common.atom);
  if (!atom.ok()) return atom.status();
  absl::StatusOr<ReplicationFollower> follower = ReplicationFollower::Start(*atom, options);
  if (!follower.ok()) return follower.status();
  return Loop(args, *follower, [](ReplicationFollower& f) { return f.ApplyNext(kProgressEvery); });
}

}  // namespace atomap::cli

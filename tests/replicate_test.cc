// Replication through a real NATS JetStream server (docs/replication.md). Each case starts its
// own `nats-server -js` on 127.0.0.1 (a free port, a temporary store) and runs the real
// `atomap replicate publish|follow` processes between two domains of this machine, killing them
// (kill -9) and the server at chosen moments. Waits are on real conditions: the server accepting
// a connection (retried within a bounded time) and the follower's atom changing.
//
// Skipped, with "SKIP: nats-server cannot start", where /usr/sbin/nats-server is absent or
// does not start (tests/CMakeLists.txt: SKIP_REGULAR_EXPRESSION).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "atomap/domain.h"
#include "atomap/replicate.h"
#include "replicate/nats_log.h"
#include "replicate/record.h"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

using replicate::NatsLog;

// The server to run: $ATOMAP_NATS_SERVER if set (a missing one shows the skip), else Debian's.
std::string NatsServerPath() {
  const char* path = std::getenv("ATOMAP_NATS_SERVER");
  return path != nullptr ? path : "/usr/sbin/nats-server";
}
constexpr const char* kSkip = "SKIP: nats-server cannot start";
constexpr const char* kStream = "REPL";

// A port nobody listens on now (the kernel's pick for a socket bound to port 0).
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

bool Accepts(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// Forks and execs `path` with `args`, its stdout and stderr appended to `log`.
pid_t Spawn(const std::string& path, const std::vector<std::string>& args, const std::string& log) {
  return ForkChild([&] {
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    ExecProgram(path, args);
    return 127;  // not reached: ExecProgram does not return
  });
}

// A real nats-server with JetStream, on its own port and store directory.
class NatsServer {
 public:
  explicit NatsServer(const TempDir& dir)
      : port_(FreePort()), store_(dir.File("js")), log_(dir.File("nats.log")) {}
  ~NatsServer() { Stop(SIGKILL); }

  // Starts it and waits (at most 10 s) until it accepts connections. False if it cannot.
  bool Start() {
    const std::string binary = NatsServerPath();
    if (access(binary.c_str(), X_OK) != 0 || port_ == 0) return false;
    pid_ =
        Spawn(binary, {"-js", "-a", "127.0.0.1", "-p", std::to_string(port_), "-sd", store_}, log_);
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (!Accepts(port_)) {
      if (absl::Now() > give_up) return false;
      absl::SleepFor(absl::Milliseconds(20));  // polling a real condition, bounded
    }
    return true;
  }
  void Stop(int signal) {
    if (pid_ <= 0) return;
    kill(pid_, signal);
    WaitChild(pid_);
    pid_ = -1;
  }
  std::string url() const { return absl::StrCat("nats://127.0.0.1:", port_); }

 private:
  int port_;
  std::string store_;
  std::string log_;
  pid_t pid_ = -1;
};

// One `atomap replicate MODE PATH --json` process, restartable. Start() returns once the
// process has printed its first progress line (connected, and placed in the stream), read from
// a pipe: its stdout. The pipe is not read after that; it holds far more lines (one a second at
// most) than a test lasts.
class Replicator {
 public:
  Replicator(std::string mode, std::string path, std::string url, std::string log,
             std::vector<std::string> extra = {})
      : mode_(std::move(mode)),
        path_(std::move(path)),
        url_(std::move(url)),
        log_(std::move(log)),
        extra_(std::move(extra)) {}
  ~Replicator() { Kill(); }
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  void Start() {
    std::vector<std::string> args = {"replicate", mode_,   path_,    "--nats",  url_,
                                     "--stream",  kStream, "--json", "--retry", "60"};
    args.insert(args.end(), extra_.begin(), extra_.end());
    int fds[2];
    REQUIRE(pipe2(fds, O_CLOEXEC) == 0);
    const std::string log = log_;
    pid_ = ForkChild([&] {
      const int err = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (err >= 0) dup2(err, 2);
      dup2(fds[1], 1);
      ExecProgram(ATOMAP_TOOL_PATH, args);
      return 127;  // not reached: ExecProgram does not return
    });
    close(fds[1]);
    out_ = fds[0];
    std::string line;
    char c = 0;
    while (read(out_, &c, 1) == 1 && c != '\n') line += c;
    INFO("atomap replicate " << mode_ << " did not start; its stderr is in " << log_);
    REQUIRE(line.find("\"records\"") != std::string::npos);
  }
  void Signal(int signal) { kill(pid_, signal); }
  // Waits for the process to end by itself: its exit code.
  int Wait() {
    const int status = WaitChild(pid_);
    pid_ = -1;
    close(out_);
    out_ = -1;
    return status;
  }
  // kill -9; returns how it ended (137 if the signal killed it, its exit code if it had died).
  int Kill() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGKILL);
    const int status = WaitChild(pid_);
    pid_ = -1;
    close(out_);
    out_ = -1;
    return status;
  }

 private:
  std::string mode_, path_, url_, log_;
  std::vector<std::string> extra_;
  pid_t pid_ = -1;
  int out_ = -1;  // the read end of its stdout
};

// Waits for up to `n` more versions of `atom` (each wait at most 5 s): a moment in the middle
// of a follower's work, as chosen by its own progress.
void WaitVersions(Atom& atom, int n) {
  for (int i = 0; i < n; ++i) {
    absl::StatusOr<std::uint64_t> now = atom.version();
    REQUIRE(now.ok());
    if (!atom.wait_for_change(*now, absl::Seconds(5)).ok()) return;
  }
}

std::map<std::string, std::string> Contents(const Map& map) {
  std::map<std::string, std::string> out;
  map.ForEach([&](std::string_view k, std::string_view v) { out.emplace(k, v); });
  return out;
}

// Random multi-key swaps: sets of binary values (NUL bytes included, empty too) and erases.
class Workload {
 public:
  explicit Workload(std::uint32_t seed) : rng_(seed) {}
  void Swap(Atom& atom) {
    const int ops = std::uniform_int_distribution<int>(1, 5)(rng_);
    std::vector<std::pair<std::string, std::optional<std::string>>> edits;
    for (int i = 0; i < ops; ++i) {
      std::string key = absl::StrCat("k", std::uniform_int_distribution<int>(0, 399)(rng_));
      if (std::uniform_int_distribution<int>(0, 3)(rng_) == 0) {
        edits.emplace_back(std::move(key), std::nullopt);
        continue;
      }
      std::string value(std::uniform_int_distribution<int>(0, 40)(rng_), '\0');
      for (char& c : value) c = static_cast<char>(std::uniform_int_distribution<int>(0, 255)(rng_));
      edits.emplace_back(std::move(key), std::move(value));
    }
    absl::StatusOr<Snapshot> done = atom.swap([&](Transaction& tx) {
      for (const auto& [key, value] : edits) {
        if (value) {
          if (absl::Status s = tx.set(key, *value); !s.ok()) return s;
        } else if (absl::StatusOr<bool> s = tx.erase(key); !s.ok()) {
          return s.status();
        }
      }
      return absl::OkStatus();
    });
    REQUIRE(done.ok());
  }
  std::mt19937& rng() { return rng_; }

 private:
  std::mt19937 rng_;
};

// Waits (on the follower atom's changes, at most `limit`) until it holds what `source` holds and
// its tag is the subject's last sequence; returns a description of the difference otherwise.
std::string Converge(Atom& source, Atom& follower, NatsLog& log, const std::string& subject,
                     absl::Duration limit = absl::Seconds(60)) {
  const absl::Time give_up = absl::Now() + limit;
  std::string why;
  for (;;) {
    std::uint64_t seen = 0;
    {
      absl::StatusOr<Snapshot> want = source.load();
      absl::StatusOr<Snapshot> got = follower.load();
      REQUIRE(want.ok());
      REQUIRE(got.ok());
      absl::StatusOr<std::optional<replicate::LogMessage>> last = log.Last(subject);
      REQUIRE(last.ok());
      const std::uint64_t last_seq = last->has_value() ? (*last)->seq : 0;
      const bool same = Contents(want->map()) == Contents(got->map());
      if (same && got->tag() == last_seq) return "";
      why = absl::StrCat("source has ", want->map().size(), " keys at version ", want->version(),
                         ", follower ", got->map().size(), " keys, ", same ? "equal" : "different",
                         ", tag ", got->tag(), " vs the subject's last sequence ", last_seq);
      seen = got->version();
    }
    const absl::Time now = absl::Now();
    if (now >= give_up) return why;
    (void)follower.wait_for_change(seen, std::min(give_up - now, absl::Seconds(1)));
  }
}

// Two domains, a server, the log client the test reads the stream with.
struct Rig {
  TempDir dir;
  NatsServer server{dir};
  std::optional<Domain> a, b, c;
  std::optional<Atom> source, replica, reference;  // reference: a second replica, in c
  std::unique_ptr<NatsLog> log;
  std::string subject = ReplicationSubject("atomap", "default");

  bool Start() {
    if (!server.Start()) return false;
    absl::StatusOr<Domain> da = Domain::Open(dir.File("a.atomap"), SmallOptions());
    absl::StatusOr<Domain> db = Domain::Open(dir.File("b.atomap"), SmallOptions());
    REQUIRE(da.ok());
    REQUIRE(db.ok());
    a.emplace(*std::move(da));
    b.emplace(*std::move(db));
    absl::StatusOr<Atom> sa = a->atom("default");
    absl::StatusOr<Atom> sb = b->atom("default");
    REQUIRE(sa.ok());
    REQUIRE(sb.ok());
    source = *sa;
    replica = *sb;
    absl::StatusOr<Domain> dc = Domain::Open(dir.File("c.atomap"), SmallOptions());
    REQUIRE(dc.ok());
    c.emplace(*std::move(dc));
    absl::StatusOr<Atom> sc = c->atom("default");
    REQUIRE(sc.ok());
    reference = *sc;
    absl::StatusOr<std::unique_ptr<NatsLog>> connected =
        NatsLog::Connect(server.url(), kStream, absl::Seconds(30));
    REQUIRE(connected.ok());
    log = *std::move(connected);
    REQUIRE(log->EnsureStream("atomap.>").ok());
    return true;
  }
  Replicator Publisher(std::vector<std::string> extra = {}) {
    return Replicator("publish", dir.File("a.atomap"), server.url(), dir.File("publish.log"),
                      std::move(extra));
  }
  Replicator Follower(const std::string& path = "") {
    return Replicator("follow", path.empty() ? dir.File("b.atomap") : path, server.url(),
                      dir.File("follow.log"));
  }
  Replicator ReferenceFollower() {
    return Replicator("follow", dir.File("c.atomap"), server.url(), dir.File("reference.log"));
  }
  // `n` swaps, each other one followed by waiting until `paced_by` has caught up: many small
  // records, not one merged one.
  void PacedSwaps(Workload& work, int n, Atom& paced_by) {
    for (int i = 0; i < n; ++i) {
      work.Swap(*source);
      if (i % 2 == 1) REQUIRE(Converge(*source, paced_by, *log, subject) == "");
    }
  }
  std::string Logs() const {
    ProgramRun cat = RunCapturingStdout(
        "/usr/bin/tail", {"-n", "5", dir.File("publish.log"), dir.File("follow.log")}, true);
    return cat.out;
  }
};

TEST_CASE("replication: the follower's dump equals the publisher's after 2000 swaps",
          "[replication]") {
  Rig rig;
  if (!rig.Start()) {
    WARN(kSkip);
    return;
  }
  Workload work(17);
  Replicator publisher = rig.Publisher();
  Replicator follower = rig.Follower();
  publisher.Start();
  follower.Start();
  // Caught up every few swaps, so that most records are diffs of one to four swaps (the
  // publisher merges what it has not seen yet).
  for (int i = 0; i < 2000; ++i) {
    work.Swap(*rig.source);
    if (i % 4 == 3) REQUIRE(Converge(*rig.source, *rig.replica, *rig.log, rig.subject) == "");
  }
  const std::string why = Converge(*rig.source, *rig.replica, *rig.log, rig.subject);
  INFO(rig.Logs());
  CHECK(why == "");
}

TEST_CASE("replication: a follower killed -9 at random moments resumes without loss or repeat",
          "[replication]") {
  Rig rig;
  if (!rig.Start()) {
    WARN(kSkip);
    return;
  }
  Workload work(29);
  Replicator publisher = rig.Publisher();
  Replicator reference = rig.ReferenceFollower();  // paces the swaps into many records
  Replicator follower = rig.Follower();
  publisher.Start();
  reference.Start();
  for (int round = 0; round < 10; ++round) {
    // A backlog of about a hundred records, then the follower killed while it applies them,
    // after a random number of them.
    rig.PacedSwaps(work, std::uniform_int_distribution<int>(150, 250)(work.rng()), *rig.reference);
    follower.Start();
    WaitVersions(*rig.replica, std::uniform_int_distribution<int>(0, 60)(work.rng()));
    CHECK(follower.Kill() == 128 + SIGKILL);  // it was still applying, not dead of an error
  }
  follower.Start();
  const std::string why = Converge(*rig.source, *rig.replica, *rig.log, rig.subject);
  INFO(rig.Logs());
  CHECK(why == "");
  // One subject, one message per record, from sequence 1: a follower that applied each record
  // exactly once made exactly one version per sequence.
  absl::StatusOr<Snapshot> replica = rig.replica->load();
  REQUIRE(replica.ok());
  CHECK(replica->version() == replica->tag());
}

TEST_CASE("replication: a publisher killed -9 and restarted loses nothing", "[replication]") {
  Rig rig;
  if (!rig.Start()) {
    WARN(kSkip);
    return;
  }
  Workload work(31);
  Replicator publisher = rig.Publisher();
  Replicator follower = rig.Follower();
  publisher.Start();
  follower.Start();
  for (int round = 0; round < 8; ++round) {
    rig.PacedSwaps(work, std::uniform_int_distribution<int>(50, 300)(work.rng()), *rig.replica);
    // Killed while it publishes the last few swaps (0 to 5 of them, not waited for).
    const int unpaced = std::uniform_int_distribution<int>(0, 5)(work.rng());
    for (int i = 0; i < unpaced; ++i) work.Swap(*rig.source);
    CHECK(publisher.Kill() == 128 + SIGKILL);
    // Changes while no publisher runs: its restart must carry them in a full record.
    for (int i = 0; i < 20; ++i) work.Swap(*rig.source);
    publisher.Start();
  }
  const std::string why = Converge(*rig.source, *rig.replica, *rig.log, rig.subject);
  INFO(rig.Logs());
  CHECK(why == "");
}

TEST_CASE("replication: a restart of nats-server mid-run loses nothing", "[replication]") {
  Rig rig;
  if (!rig.Start()) {
    WARN(kSkip);
    return;
  }
  Workload work(37);
  Replicator publisher = rig.Publisher();
  Replicator follower = rig.Follower();
  publisher.Start();
  follower.Start();
  rig.PacedSwaps(work, 1000, *rig.replica);
  // SIGTERM: the server shuts down cleanly, its store on disk (a SIGKILL may lose what it had
  // not yet written out: docs/replication.md, "Failure modes").
  rig.server.Stop(SIGTERM);
  for (int i = 0; i < 300; ++i) work.Swap(*rig.source);  // published once the server is back
  REQUIRE(rig.server.Start());
  rig.PacedSwaps(work, 700, *rig.replica);
  const std::string why = Converge(*rig.source, *rig.replica, *rig.log, rig.subject);
  INFO(rig.Logs());
  CHECK(why == "");
}

TEST_CASE("replication: a new follower bootstraps from the newest full record", "[replication]") {
  Rig rig;
  if (!rig.Start()) {
    WARN(kSkip);
    return;
  }
  Workload work(41);
  Replicator publisher = rig.Publisher({"--full-every", "50"});
  publisher.Start();
  // A first follower, caught up every other swap: about 300 records, so about 6 full ones.
  Replicator first = rig.Follower();
  first.Start();
  rig.PacedSwaps(work, 600, *rig.replica);
  REQUIRE(Converge(*rig.source, *rig.replica, *rig.log, rig.subject) == "");

  Atom& fresh = *rig.reference;  // empty, tag 0
  Replicator second = rig.ReferenceFollower();
  second.Start();
  const std::string why = Converge(*rig.source, fresh, *rig.log, rig.subject);
  INFO(rig.Logs());
  CHECK(why == "");
  // Each applied record is one version of the follower's atom: from a full record at most 50
  // back, not the whole history of 600 and more.
  absl::StatusOr<std::uint64_t> applied = fresh.version();
  REQUIRE(applied.ok());
  CHECK(*applied <= 50);
  CHECK(*applied >= 1);

  // On demand (SIGUSR1): a full record of the unchanged atom, which the followers apply too.
  const std::uint64_t before = *fresh.version();
  publisher.Signal(SIGUSR1);
  WaitVersions(fresh, 1);
  CHECK(*fresh.version() == before + 1);
  absl::StatusOr<std::optional<replicate::LogMessage>> last = rig.log->Last(rig.subject);
  REQUIRE(last.ok());
  REQUIRE(last->has_value());
  absl::StatusOr<replicate::Record> record = replicate::DecodeRecord((*last)->data, "last");
  REQUIRE(record.ok());
  CHECK(record->header.kind == replicate::RecordKind::kFull);
  CHECK(Converge(*rig.source, fresh, *rig.log, rig.subject) == "");
}

TEST_CASE("replication: `atomap replicate follow` stops at a damaged record, exit 3, naming it",
          "[replication]") {
  Rig rig;
  if (!rig.Start()) {
    WARN(kSkip);
    return;
  }
  Workload work(67);
  Replicator publisher = rig.Publisher();
  Replicator follower = rig.Follower();
  publisher.Start();
  follower.Start();
  rig.PacedSwaps(work, 20, *rig.replica);
  publisher.Kill();  // so that the damaged record is the subject's last
  absl::StatusOr<std::optional<replicate::LogMessage>> last = rig.log->Last(rig.subject);
  REQUIRE(last.ok());
  REQUIRE(last->has_value());
  const std::uint64_t damaged_seq = (*last)->seq + 1;
  REQUIRE(
      rig.log
          ->Append(rig.subject, "AMR1 and then nothing that parses: no record at all", (*last)->seq)
          .ok());
  CHECK(follower.Wait() == 3);
  ProgramRun log = RunCapturingStdout("/usr/bin/cat", {rig.dir.File("follow.log")});
  CHECK_THAT(log.out, Catch::Contains(absl::StrCat("sequence ", damaged_seq,
                                                   ": not a usable replication record")));
  absl::StatusOr<Snapshot> replica = rig.replica->load();
  REQUIRE(replica.ok());
  CHECK(replica->tag() == damaged_seq - 1);  // everything before it, nothing of it
}

// ---- Damaged streams: the library in this process, records written by hand -------------------

struct InProcess {
  Rig rig;
  std::optional<ReplicationFollower> follower;
  ReplicationOptions options;

  bool Start() {
    if (!rig.Start()) return false;
    options.nats_url = rig.server.url();
    options.stream = kStream;
    options.retry_for = absl::Seconds(10);
    return true;
  }
  // Publishes the source's current state, then applies everything to the replica.
  void PublishAndFollow(Workload& work, int swaps) {
    absl::StatusOr<ReplicationPublisher> publisher =
        ReplicationPublisher::Start(*rig.source, options);
    REQUIRE(publisher.ok());
    for (int i = 0; i < swaps; ++i) {
      work.Swap(*rig.source);
      absl::StatusOr<bool> published = publisher->PublishNext(absl::Seconds(5));
      REQUIRE(published.ok());
      REQUIRE(*published);
    }
    absl::StatusOr<ReplicationFollower> started = ReplicationFollower::Start(*rig.replica, options);
    REQUIRE(started.ok());
    follower.emplace(*std::move(started));
    for (int i = 0; i <= swaps; ++i) {  // the full record, then one diff per swap
      absl::StatusOr<bool> applied = follower->ApplyNext(absl::Seconds(5));
      REQUIRE(applied.ok());
      REQUIRE(*applied);
    }
  }
  std::uint64_t LastSeq() {
    absl::StatusOr<std::optional<replicate::LogMessage>> last = rig.log->Last(rig.subject);
    REQUIRE(last.ok());
    REQUIRE(last->has_value());
    return (*last)->seq;
  }
};

TEST_CASE("replication: a record with a bad checksum is DataLoss, and nothing is applied",
          "[replication]") {
  InProcess t;
  if (!t.Start()) {
    WARN(kSkip);
    return;
  }
  Workload work(43);
  t.PublishAndFollow(work, 20);
  absl::StatusOr<std::uint64_t> before = t.rig.replica->version();
  REQUIRE(before.ok());

  replicate::RecordHeader header;
  header.version = 22;
  header.base = 21;
  std::string bytes = replicate::EncodeRecord(header, {{replicate::EntryOp::kSet, "x", "y"}});
  bytes[replicate::kRecordHeaderBytes + 10] ^= 0x40;  // a flipped bit in the entry's key
  REQUIRE(t.rig.log->Append(t.rig.subject, bytes, t.LastSeq()).ok());
  absl::StatusOr<bool> applied = t.follower->ApplyNext(absl::Seconds(5));
  CHECK(absl::IsDataLoss(applied.status()));
  CHECK_THAT(std::string(applied.status().message()), Catch::Contains("bad checksum"));
  CHECK(*t.rig.replica->version() == *before);
}

TEST_CASE("replication: a diff over a version the follower does not hold is a gap error",
          "[replication]") {
  InProcess t;
  if (!t.Start()) {
    WARN(kSkip);
    return;
  }
  Workload work(47);
  t.PublishAndFollow(work, 10);
  absl::StatusOr<Snapshot> before = t.rig.replica->load();
  REQUIRE(before.ok());
  const std::uint64_t version_before = before->version();
  const std::uint64_t tag_before = before->tag();
  before = absl::UnknownError("dropped");  // no snapshot held across the follower's swaps

  replicate::RecordHeader header;
  header.version = 40;
  header.base = 39;  // the follower holds version 10 of the publisher's atom
  REQUIRE(t.rig.log
              ->Append(t.rig.subject,
                       replicate::EncodeRecord(header, {{replicate::EntryOp::kSet, "x", "y"}}),
                       t.LastSeq())
              .ok());
  absl::StatusOr<bool> applied = t.follower->ApplyNext(absl::Seconds(5));
  CHECK(absl::IsDataLoss(applied.status()));
  CHECK_THAT(std::string(applied.status().message()), Catch::Contains("a gap"));
  absl::StatusOr<Snapshot> after = t.rig.replica->load();
  REQUIRE(after.ok());
  CHECK(after->version() == version_before);
  CHECK(after->tag() == tag_before);
}

TEST_CASE("replication: a second publisher of the same subject is refused, not interleaved",
          "[replication]") {
  InProcess t;
  if (!t.Start()) {
    WARN(kSkip);
    return;
  }
  absl::StatusOr<ReplicationPublisher> one = ReplicationPublisher::Start(*t.rig.source, t.options);
  REQUIRE(one.ok());
  absl::StatusOr<ReplicationPublisher> two = ReplicationPublisher::Start(*t.rig.source, t.options);
  REQUIRE(two.ok());  // the stream was where the atom is: nothing to append yet
  Workload work(53);
  work.Swap(*t.rig.source);
  REQUIRE(one->PublishNext(absl::Seconds(5)).ok());
  absl::StatusOr<bool> second = two->PublishNext(absl::Seconds(5));
  CHECK(replicate::IsWrongLastSequence(second.status()));
}

TEST_CASE("replication: a record larger than max_payload travels in chunks, applied as one version",
          "[replication]") {
  InProcess t;
  if (!t.Start()) {
    WARN(kSkip);
    return;
  }
  Workload work(59);
  t.PublishAndFollow(work, 3);
  // About 3.2 MB in one version: more than the server's 1 MiB max_payload.
  std::vector<std::string> values;
  for (int i = 0; i < 30000; ++i)
    values.push_back(std::string(100, static_cast<char>('a' + i % 26)));
  absl::StatusOr<ReplicationPublisher> publisher =
      ReplicationPublisher::Start(*t.rig.source, t.options);
  REQUIRE(publisher.ok());
  REQUIRE(t.rig.source
              ->swap([&](Transaction& tx) {
                for (int i = 0; i < 30000; ++i) {
                  if (absl::Status s = tx.set(absl::StrCat("bulk", i), values[i]); !s.ok())
                    return s;
                }
                return absl::OkStatus();
              })
              .ok());
  const std::uint64_t seq_before = t.LastSeq();
  absl::StatusOr<bool> published = publisher->PublishNext(absl::Seconds(5));
  REQUIRE(published.ok());
  CHECK(t.LastSeq() - seq_before >= 4);  // at least four messages
  absl::StatusOr<std::uint64_t> before = t.rig.replica->version();
  REQUIRE(before.ok());
  absl::StatusOr<bool> applied = t.follower->ApplyNext(absl::Seconds(10));
  REQUIRE(applied.ok());
  CHECK(*applied);
  CHECK(*t.rig.replica->version() == *before + 1);  // the whole record, one version
  CHECK(Converge(*t.rig.source, *t.rig.replica, *t.rig.log, t.rig.subject) == "");
}

TEST_CASE("replication: chunks of a record its publisher never finished are skipped",
          "[replication]") {
  InProcess t;
  if (!t.Start()) {
    WARN(kSkip);
    return;
  }
  Workload work(61);
  t.PublishAndFollow(work, 5);
  work.Swap(*t.rig.source);
  // What a publisher killed after the first of two chunks leaves behind.
  replicate::RecordHeader header;
  header.kind = replicate::RecordKind::kFull;
  header.version = *t.rig.source->version();
  header.chunk_index = 0;
  header.chunk_count = 2;
  REQUIRE(t.rig.log
              ->Append(t.rig.subject,
                       replicate::EncodeRecord(header, {{replicate::EntryOp::kSet, "ghost", "1"}}),
                       t.LastSeq())
              .ok());
  // Its restart sees an unfinished record: the whole state again, after it.
  absl::StatusOr<ReplicationPublisher> restarted =
      ReplicationPublisher::Start(*t.rig.source, t.options);
  REQUIRE(restarted.ok());
  CHECK(restarted->stats().full_records == 1);
  absl::StatusOr<bool> applied = t.follower->ApplyNext(absl::Seconds(5));
  REQUIRE(applied.ok());
  CHECK(*applied);
  CHECK(Converge(*t.rig.source, *t.rig.replica, *t.rig.log, t.rig.subject) == "");
  CHECK_FALSE(t.rig.replica->load()->map().contains("ghost"));
  // A new follower starts at that full record.
  absl::StatusOr<ReplicationFollower> fresh =
      ReplicationFollower::Start(*t.rig.reference, t.options);
  REQUIRE(fresh.ok());
  applied = fresh->ApplyNext(absl::Seconds(5));
  REQUIRE(applied.ok());
  CHECK(*applied);
  CHECK(fresh->stats().full_records == 1);
  CHECK(Converge(*t.rig.source, *t.rig.reference, *t.rig.log, t.rig.subject) == "");
}

// ---- The record codec alone ------------------------------------------------------------------

TEST_CASE("replication records round-trip and refuse damage", "[replication]") {
  replicate::RecordHeader header;
  header.kind = replicate::RecordKind::kFull;
  header.version = 7;
  header.base = 3;
  header.full_seq = 11;
  header.start_seq = 12;
  header.published_unix_ns = 99;
  header.chunk_index = 1;
  header.chunk_count = 3;
  const std::vector<replicate::RecordEntry> entries = {
      {replicate::EntryOp::kSet, std::string("a\0b", 3), std::string("\xff\0", 2)},
      {replicate::EntryOp::kErase, "gone", ""},
      {replicate::EntryOp::kSet, "", ""}};
  const std::string bytes = replicate::EncodeRecord(header, entries);
  absl::StatusOr<replicate::Record> back = replicate::DecodeRecord(bytes, "here");
  REQUIRE(back.ok());
  CHECK(back->header.kind == replicate::RecordKind::kFull);
  CHECK(back->header.version == 7);
  CHECK(back->header.base == 3);
  CHECK(back->header.full_seq == 11);
  CHECK(back->header.start_seq == 12);
  CHECK(back->header.published_unix_ns == 99);
  CHECK(back->header.chunk_index == 1);
  CHECK(back->header.chunk_count == 3);
  REQUIRE(back->entries.size() == 3);
  CHECK(back->entries[0].key == std::string("a\0b", 3));
  CHECK(back->entries[0].value == std::string("\xff\0", 2));
  CHECK(back->entries[1].op == replicate::EntryOp::kErase);

  for (std::size_t i = 0; i < bytes.size(); ++i) {  // every flipped byte is refused
    std::string damaged = bytes;
    damaged[i] ^= 0x01;
    CHECK(absl::IsDataLoss(replicate::DecodeRecord(damaged, "here").status()));
  }
  CHECK(absl::IsDataLoss(replicate::DecodeRecord(bytes.substr(0, 30), "here").status()));
  absl::Status bad = replicate::DecodeRecord("garbage that is long enough to hold a header and "
                                             "its checksum, but is not a record",
                                             "stream S, sequence 5")
                         .status();
  CHECK(absl::IsDataLoss(bad));
  CHECK_THAT(std::string(bad.message()), Catch::StartsWith("stream S, sequence 5"));
}

}  // namespace
}  // namespace atomap

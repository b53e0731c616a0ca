// Tests of the atomap command-line tool: runs the built binary (ATOMAP_TOOL_PATH) and checks
// its output, exit codes and JSON schemas. Every wait is on a pipe or a child's exit.
#include <poll.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "atomap/domain.h"
#include "atomap/version.h"
#include "catch2/catch.hpp"
#include "common/layout.h"
#include "nlohmann/json.hpp"
#include "support/process.h"
#include "support/temp_dir.h"

#ifndef ATOMAP_TOOL_PATH
#error "ATOMAP_TOOL_PATH must name the atomap binary (tests/CMakeLists.txt)"
#endif

namespace atomap {
namespace {

using nlohmann::json;

struct ToolResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// What a run of the tool gets besides its arguments.
struct ToolSetup {
  std::vector<std::pair<std::string, std::string>> env;  // set in the child before exec
  rlim_t address_space = 0;  // RLIMIT_AS for the child; 0: unchanged
};

// One run of the tool, with pipes on its stdin, stdout and stderr.
class ToolProcess {
 public:
  explicit ToolProcess(const std::vector<std::string>& args, const ToolSetup& setup = {}) {
    int in[2], out[2], err[2];
    REQUIRE(pipe(in) == 0);
    REQUIRE(pipe(out) == 0);
    REQUIRE(pipe(err) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      dup2(in[0], STDIN_FILENO);
      dup2(out[1], STDOUT_FILENO);
      dup2(err[1], STDERR_FILENO);
      for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
      for (const auto& [name, value] : setup.env) setenv(name.c_str(), value.c_str(), 1);
      if (setup.address_space != 0) {
        const rlimit limit{setup.address_space, setup.address_space};
        if (setrlimit(RLIMIT_AS, &limit) != 0) _exit(126);
      }
      ExecProgram(ATOMAP_TOOL_PATH, args);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    in_fd_ = in[1];
    out_fd_ = out[0];
    err_fd_ = err[0];
  }

  // Reads stderr up to and including the first newline (kept in the result's err).
  std::string ReadErrLine() { return ReadLine(err_fd_, err_prefix_); }
  // The same for stdout (kept in the result's out).
  std::string ReadOutLine() { return ReadLine(out_fd_, out_prefix_); }

  pid_t pid() const { return pid_; }

  // kill -9 of the tool; returns once it is reaped, without waiting for its pipes to close
  // (children it forked may hold them). The exit code as Finish reports it.
  int KillAndWait() {
    kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    for (int* fd : {&in_fd_, &out_fd_, &err_fd_}) CloseFd(*fd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  // Writes `input` to stdin (then closes it), collects stdout and stderr, waits for the exit.
  ToolResult Finish(const std::string& input = "") {
    ToolResult result;
    result.err = err_prefix_;
    result.out = out_prefix_;
    std::size_t written = 0;
    if (input.empty()) CloseFd(in_fd_);
    while (out_fd_ >= 0 || err_fd_ >= 0) {
      std::vector<pollfd> fds;
      if (in_fd_ >= 0) fds.push_back({in_fd_, POLLOUT, 0});
      if (out_fd_ >= 0) fds.push_back({out_fd_, POLLIN, 0});
      if (err_fd_ >= 0) fds.push_back({err_fd_, POLLIN, 0});
      if (poll(fds.data(), fds.size(), -1) < 0) continue;
      for (const pollfd& p : fds) {
        if (p.revents == 0) continue;
        if (p.fd == in_fd_) {
          const ssize_t n = write(in_fd_, input.data() + written, input.size() - written);
          if (n > 0) written += static_cast<std::size_t>(n);
          if (n < 0 || written == input.size()) CloseFd(in_fd_);
          continue;
        }
        char buffer[4096];
        const ssize_t n = read(p.fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        std::string& sink = p.fd == out_fd_ ? result.out : result.err;
        if (n <= 0) {
          CloseFd(p.fd == out_fd_ ? out_fd_ : err_fd_);
        } else {
          sink.append(buffer, static_cast<std::size_t>(n));
        }
      }
    }
    CloseFd(in_fd_);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
  }

 private:
  static std::string ReadLine(int fd, std::string& prefix) {
    std::string line;
    char c;
    while (true) {
      const ssize_t n = read(fd, &c, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      line.push_back(c);
      if (c == '\n') break;
    }
    prefix += line;
    return line;
  }

  static void CloseFd(int& fd) {
    if (fd >= 0) close(fd);
    fd = -1;
  }

  pid_t pid_ = -1;
  int in_fd_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string err_prefix_;
  std::string out_prefix_;
};

ToolResult Run(const std::vector<std::string>& args, const std::string& input = "",
               const ToolSetup& setup = {}) {
  return ToolProcess(args, setup).Finish(input);
}

json ParseJson(const std::string& text) {
  INFO(text);
  REQUIRE(json::accept(text));
  return json::parse(text);
}

int LineCount(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string CreateDomain(const TempDir& dir, const std::string& name) {
  const std::string path = dir.File(name);
  REQUIRE(Run({"create", path}).exit_code == 0);
  return path;
}

// Every byte value in keys and values, NUL included, plus text and an empty value.
std::string BinaryInput() {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  json lines[] = {
      {{"key", "text"}, {"value", "h\u00e9llo \"quoted\"\n"}},
      {{"key", "empty"}, {"value", ""}},
      {{"key_hex", "00ff80"}, {"value", "bytes key"}},
      {{"key", "all bytes"},
       {"value_hex",
        [&] {
          std::string hex;
          for (unsigned char c : bytes)
            hex += "0123456789abcdef"[c >> 4], hex += "0123456789abcdef"[c & 15];
          return hex;
        }()}},
  };
  std::string input;
  for (const json& line : lines) input += line.dump() + "\n";
  return input;
}

TEST_CASE("atomap --version prints the library's version and the file format, exit 0") {
  const ToolResult version = Run({"--version"});
  CHECK(version.exit_code == 0);
  CHECK(version.out == std::string("atomap ") + ATOMAP_VERSION_STRING + " (file format " +
                           std::to_string(atomap::internal::kFormatVersion) + ")\n");
}

TEST_CASE("create makes a domain once; --json reports it") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  const ToolResult created = Run({"create", path, "--json", "--max-size", "1073741824"});
  REQUIRE(created.exit_code == 0);
  const json out = ParseJson(created.out);
  CHECK(out["path"] == path);
  CHECK(out["max_size"] == 1073741824);
  CHECK(out["size"].get<std::uint64_t>() > 0);

  const ToolResult again = Run({"create", path});
  CHECK(again.exit_code == 3);
  CHECK(LineCount(again.err) == 1);
  CHECK(again.err.find(path) != std::string::npos);
}

TEST_CASE(
    "create --slot-capacity and --atom-capacity size the tables; out of range is a usage error") {
  TempDir dir;
  const std::string path = dir.File("small.atomap");
  REQUIRE(Run({"create", path, "--slot-capacity", "2", "--atom-capacity", "4"}).exit_code == 0);
  const json stat = ParseJson(Run({"stat", path, "--json"}).out);
  CHECK(stat["slot_capacity"] == 2);
  CHECK(stat["atom_capacity"] == 4);
  CHECK(Run({"create", dir.File("zero.atomap"), "--slot-capacity", "0"}).exit_code != 0);
  CHECK(Run({"create", dir.File("huge.atomap"), "--atom-capacity", "2000000"}).exit_code != 0);
  CHECK_FALSE(std::filesystem::exists(dir.File("zero.atomap")));
}

TEST_CASE("put, get and del, in text, --json and --hex") {
  TempDir dir;
  const std::string path = CreateDomain(dir, "d.atomap");
  REQUIRE(Run({"put", path, "port", "8080"}).exit_code == 0);
  const ToolResult put = Run({"put", path, "--json", "--atom", "config", "host", "db1"});
  REQUIRE(put.exit_code == 0);
  CHECK(ParseJson(put.out) == json{{"atom", "config"}, {"version", 1}});

  ToolResult get = Run({"get", path, "port"});
  CHECK(get.exit_code == 0);
  CHECK(get.out == "8080\n");
  get = Run({"get", path, "--atom", "config", "--json", "host"});
  CHECK(ParseJson(get.out) == json{{"key", "host"}, {"value", "db1"}});

  REQUIRE(Run({"put", path, "--hex", "00ff", "80"}).exit_code == 0);
  get = Run({"get", path, "--hex", "00ff"});
  CHECK(get.out == "80\n");
  get = Run({"get", path, "--json", "--hex", "00ff"});
  CHECK(ParseJson(get.out) == json{{"key_hex", "00ff"}, {"value_hex", "80"}});
  CHECK(Run({"put", path, "--hex", "0g", "80"}).exit_code == 2);

  SECTION("a missing key or atom exits 1 with one line naming the file") {
    const ToolResult missing = Run({"get", path, "nope"});
    CHECK(missing.exit_code == 1);
    CHECK(missing.out.empty());
    CHECK(LineCount(missing.err) == 1);
    CHECK(missing.err.find(path) != std::string::npos);
    CHECK(Run({"get", path, "--atom", "no-such-atom", "port"}).exit_code == 1);
    // A reading command does not create the atom it looked for.
    const json stat = ParseJson(Run({"stat", path, "--json"}).out);
    CHECK(stat["atoms"].size() == 2);
  }
  SECTION("del erases, and exits 1 for an absent key without publishing") {
    const ToolResult del = Run({"del", path, "--json", "port"});
    CHECK(del.exit_code == 0);
    CHECK(ParseJson(del.out)["version"] == 3);
    CHECK(Run({"get", path, "port"}).exit_code == 1);
    CHECK(Run({"del", path, "port"}).exit_code == 1);
    const json stat = ParseJson(Run({"stat", path, "--json"}).out);
    CHECK(stat["atoms"][1]["name"] == "default");
    CHECK(stat["atoms"][1]["version"] == 3);
  }
}

TEST_CASE("errors: a foreign or missing file exits 3, bad usage exits 2") {
  TempDir dir;
  const std::string foreign = dir.File("notes.txt");
  WriteFile(foreign, std::string(8192, 'x'));
  for (const std::vector<std::string>& args : {std::vector<std::string>{"get", foreign, "k"},
                                               {"stat", foreign},
                                               {"dump", foreign},
                                               {"put", foreign, "k", "v"},
                                               {"check", foreign}}) {
    const ToolResult result = Run(args);
    INFO(args[0] << ": " << result.err);
    CHECK(result.exit_code == 3);
    CHECK(LineCount(result.err) == 1);
    CHECK(result.err.find(foreign) != std::string::npos);
  }
  std::ifstream in(foreign, std::ios::binary);
  CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == std::string(8192, 'x'));

  const ToolResult missing = Run({"get", dir.File("missing.atomap"), "k"});
  CHECK(missing.exit_code == 3);
  CHECK(missing.err.find("missing.atomap") != std::string::npos);

  CHECK(Run({}).exit_code == 2);
  CHECK(Run({"frobnicate"}).exit_code == 2);
  CHECK(Run({"get", dir.File("d")}).exit_code == 2);
  CHECK(Run({"--help"}).exit_code == 0);
}

TEST_CASE("dump, load, dump round-trips binary data exactly") {
  TempDir dir;
  const std::string first = CreateDomain(dir, "first.atomap");
  const ToolResult loaded = Run({"load", first, "--json"}, BinaryInput());
  REQUIRE(loaded.exit_code == 0);
  CHECK(ParseJson(loaded.out) ==
        json{{"atom", "default"}, {"entries", 4}, {"entries_loaded", 4}, {"version", 1}});
  const ToolResult dump = Run({"dump", first});
  REQUIRE(dump.exit_code == 0);
  CHECK(LineCount(dump.out) == 4);
  std::istringstream lines(dump.out);
  std::string previous_key;
  for (std::string line; std::getline(lines, line);) {
    const json entry = ParseJson(line);
    CHECK(entry.size() == 2);
    CHECK((entry.contains("key") != entry.contains("key_hex")));
    CHECK((entry.contains("value") != entry.contains("value_hex")));
  }
  CHECK(dump.out.find(R"({"key":"all bytes","value_hex":"000102)") != std::string::npos);
  CHECK(dump.out.find(R"({"key_hex":"00ff80","value":"bytes key"})") != std::string::npos);

  const std::string second = CreateDomain(dir, "second.atomap");
  REQUIRE(Run({"load", second}, dump.out).exit_code == 0);
  CHECK(Run({"dump", second}).out == dump.out);

  SECTION("--hex dumps load back to the same contents") {
    const ToolResult hex = Run({"dump", first, "--hex"});
    CHECK(hex.out.find("\"key\":") == std::string::npos);
    const std::string third = CreateDomain(dir, "third.atomap");
    REQUIRE(Run({"load", third}, hex.out).exit_code == 0);
    CHECK(Run({"dump", third}).out == dump.out);
  }
  SECTION("--replace makes the atom equal to the input") {
    REQUIRE(Run({"put", second, "extra", "1"}).exit_code == 0);
    REQUIRE(Run({"load", second, "--replace"}, dump.out).exit_code == 0);
    CHECK(Run({"dump", second}).out == dump.out);
  }
}

TEST_CASE("a malformed line aborts the whole load: nothing is published") {
  TempDir dir;
  const std::string path = CreateDomain(dir, "d.atomap");
  REQUIRE(Run({"put", path, "kept", "1"}).exit_code == 0);
  const std::string before = Run({"dump", path}).out;
  const std::string bad_lines[] = {
      "{\"key\": \"a\", \"value\": \"b\"}\n{\"key\": \"c\", \"value\": \n",  // not JSON
      "{\"key\": \"a\", \"value\": \"b\"}\n[1, 2]\n",                          // not an object
      "{\"key\": \"a\", \"value\": \"b\"}\n{\"key\": \"c\"}\n",                  // no value
      "{\"key\": \"a\", \"value\": \"b\"}\n{\"key_hex\": \"zz\", \"value\": \"\"}\n",
      "{\"key\": \"a\", \"value\": \"b\"}\n{\"key\": \"c\", \"key_hex\": \"00\", \"value\": "
      "\"\"}\n",
  };
  for (const std::string& input : bad_lines) {
    const ToolResult result = Run({"load", path}, input);
    INFO(input << result.err);
    CHECK(result.exit_code == 2);
    CHECK(LineCount(result.err) == 1);
    CHECK(result.err.find("<stdin>:2:") != std::string::npos);
  }
  CHECK(Run({"dump", path}).out == before);
  CHECK(ParseJson(Run({"stat", path, "--json"}).out)["atoms"][0]["version"] == 1);
}

TEST_CASE("stat reports space, epochs, atoms and the other attached processes") {
  TempDir dir;
  const std::string path = CreateDomain(dir, "d.atomap");
  REQUIRE(Run({"load", path, "--atom", "a"}, BinaryInput()).exit_code == 0);
  // This test process attaches too: stat lists it (and not itself).
  absl::StatusOr<Domain> held = Domain::Open(path);
  REQUIRE(held.ok());
  const ToolResult result = Run({"stat", path, "--json"});
  REQUIRE(result.exit_code == 0);
  const json stat = ParseJson(result.out);
  for (const char* field :
       {"path", "size", "max_size", "bytes_on_disk", "closed_cleanly", "slot_capacity",
        "atom_capacity", "space", "epochs", "participants", "atoms"}) {
    CHECK(stat.contains(field));
  }
  for (const char* field : {"data_bytes", "live_bytes", "free_bytes", "unused_bytes",
                            "pending_garbage_bytes", "pending_garbage_blocks"}) {
    CHECK(stat["space"].contains(field));
  }
  CHECK(stat["epochs"]["global"].is_number());
  CHECK(stat["bytes_on_disk"].get<std::uint64_t>() > 0);
  REQUIRE(stat["participants"].size() == 1);
  CHECK(stat["participants"][0]["pid"] == getpid());
  CHECK(stat["atoms"] == json::array({{{"name", "a"}, {"entries", 4}, {"version", 1}}}));

  const ToolResult text = Run({"stat", path});
  CHECK(text.exit_code == 0);
  CHECK(text.out.find("pid " + std::to_string(getpid())) != std::string::npos);
}

TEST_CASE("check passes a healthy domain; compact packs a churned one") {
  TempDir dir;
  const std::string path = CreateDomain(dir, "d.atomap");
  // Churn: versions of a large atom (megabytes: the file grows), then shrink it to a few entries.
  std::string big;
  for (int i = 0; i < 2000; ++i) {
    big +=
        json{{"key", "key-" + std::to_string(i)}, {"value", std::string(2000, 'v')}}.dump() + "\n";
  }
  for (int round = 0; round < 2; ++round) {
    REQUIRE(Run({"load", path, "--replace", "--atom", "churn"}, big).exit_code == 0);
  }
  REQUIRE(Run({"load", path, "--replace", "--atom", "churn"}, BinaryInput()).exit_code == 0);
  REQUIRE(Run({"put", path, "--atom", "small", "k", "v"}).exit_code == 0);

  const ToolResult checked = Run({"check", path, "--json"});
  CHECK(checked.exit_code == 0);
  const json report = ParseJson(checked.out);
  CHECK(report["ok"] == true);
  CHECK(report["problems"] == json::array());
  CHECK(report["entries_walked"] == 5);
  for (const char* field : {"path", "repair", "reachable_bytes", "free_bytes", "pending_bytes",
                            "unused_bytes", "leaked_bytes"}) {
    CHECK(report.contains(field));
  }

  const std::string packed = dir.File("packed.atomap");
  const ToolResult compacted = Run({"compact", path, packed, "--json"});
  REQUIRE(compacted.exit_code == 0);
  const json summary = ParseJson(compacted.out);
  CHECK(summary["atoms"] == 2);
  CHECK(summary["entries"] == 5);
  CHECK(summary["bytes_on_disk_after"].get<std::uint64_t>() <
        summary["bytes_on_disk_before"].get<std::uint64_t>());

  CHECK(Run({"check", packed}).exit_code == 0);
  for (const char* atom : {"churn", "small"}) {
    CHECK(Run({"dump", packed, "--atom", atom, "--read-only"}).out ==
          Run({"dump", path, "--atom", atom}).out);
  }
  CHECK(Run({"stat", packed, "--read-only"}).exit_code == 0);
  CHECK(Run({"compact", path, packed}).exit_code == 3);  // never overwrites
}

TEST_CASE("check reports a damaged header as a problem (exit 1) without changing the file") {
  TempDir dir;
  const std::string path = CreateDomain(dir, "d.atomap");
  REQUIRE(Run({"put", path, "k", "v"}).exit_code == 0);
  {
    // docs/format.md: slot_table_offset, 8 bytes at offset 64, must be 8192.
    std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(64);
    file.put('\x5a');
  }
  std::ifstream before_stream(path, std::ios::binary);
  const std::string before(std::istreambuf_iterator<char>(before_stream), {});

  const ToolResult text = Run({"check", path});
  CHECK(text.exit_code == 1);
  CHECK(text.out.find("problem: " + path + ": header field 'slot_table_offset'") !=
        std::string::npos);
  CHECK(LineCount(text.err) == 1);
  const ToolResult machine = Run({"check", path, "--json"});
  CHECK(machine.exit_code == 1);
  const json report = ParseJson(machine.out);
  CHECK(report["ok"] == false);
  CHECK(report["problems"].size() == 1);
  CHECK(Run({"get", path, "k"}).exit_code == 3);  // other commands: a bad file

  std::ifstream after_stream(path, std::ios::binary);
  CHECK(std::string(std::istreambuf_iterator<char>(after_stream), {}) == before);
}

TEST_CASE("watch prints a change made by another process") {
  TempDir dir;
  const std::string path = CreateDomain(dir, "d.atomap");
  REQUIRE(Run({"put", path, "--atom", "config", "old", "1"}).exit_code == 0);

  SECTION("text") {
    ToolProcess watch({"watch", path, "--atom", "config", "--count", "1"});
    CHECK(watch.ReadErrLine().find("from version 1") != std::string::npos);  // ready
    REQUIRE(Run({"put", path, "--atom", "config", "port", "8080"}).exit_code == 0);
    const ToolResult result = watch.Finish();
    CHECK(result.exit_code == 0);
    CHECK(result.out == "version 2: +port=8080\n");
  }
  SECTION("--json, with a load that adds, changes and removes in one version") {
    ToolProcess watch({"watch", path, "--atom", "config", "--count", "1", "--json"});
    watch.ReadErrLine();
    const std::string input = json{{"key", "new"}, {"value", "2"}}.dump() + "\n" +
                              json{{"key", "bin"}, {"value_hex", "ff"}}.dump() + "\n";
    REQUIRE(Run({"load", path, "--atom", "config", "--replace"}, input).exit_code == 0);
    const ToolResult result = watch.Finish();
    CHECK(result.exit_code == 0);
    CHECK(ParseJson(result.out) ==
          json{{"atom", "config"},
               {"version", 2},
               {"added", {{{"key", "bin"}, {"value_hex", "ff"}}, {{"key", "new"}, {"value", "2"}}}},
               {"removed", {{{"key", "old"}, {"value", "1"}}}},
               {"changed", json::array()}});
  }
}

TEST_CASE("demo runs with small numbers and verifies its totals") {
  TempDir dir;
  const std::string path = dir.File("demo.atomap");
  for (int run = 0; run < 2; ++run) {  // the second run starts from the first's counters
    const ToolResult demo = Run({"demo", "--path", path, "--processes", "3", "--ops", "300"});
    INFO(demo.out << demo.err);
    CHECK(demo.exit_code == 0);
    CHECK(demo.out.find("verified: hot increased by 900") != std::string::npos);
    CHECK(demo.out.find("throughput:") != std::string::npos);
    CHECK(demo.out.find("p99") != std::string::npos);
    CHECK(demo.out.find("config version") != std::string::npos);
    CHECK(demo.out.find("status=finished") != std::string::npos);
    CHECK(demo.out.find("hot=" + std::to_string(900 * (run + 1))) != std::string::npos);
  }
  CHECK(Run({"get", path, "--atom", "counters", "hot"}).out == "1800\n");
  CHECK(Run({"check", path}).exit_code == 0);
}

// ---- Nothing changes when the tool fails or refuses (docs/reliability.md) ----------------------

// The names in `dir`, dot files included.
std::set<std::string> DirEntries(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    names.insert(name);
  }
  return names;
}

// `count` lines of the dump format: key-<i> with `value_bytes` bytes of value each.
std::string Lines(int count, std::size_t value_bytes) {
  std::string input;
  for (int i = 0; i < count; ++i) {
    input +=
        json{{"key", "key-" + std::to_string(i)}, {"value", std::string(value_bytes, 'v')}}.dump() +
        "\n";
  }
  return input;
}

// A domain at dir/source.atomap with atoms atom-0 .. atom-<atoms-1>, `entries` entries each.
std::string SourceWithAtoms(const TempDir& dir, int atoms, int entries) {
  const std::string path = CreateDomain(dir, "source.atomap");
  for (int i = 0; i < atoms; ++i) {
    REQUIRE(Run({"load", path, "--atom", "atom-" + std::to_string(i)}, Lines(entries + i, 100))
                .exit_code == 0);
  }
  return path;
}

// A compacted copy must hold every atom of the (quiet) source exactly, and pass check.
void RequireCompleteCopy(const std::string& source, const std::string& copy, int atoms) {
  REQUIRE(Run({"check", copy}).exit_code == 0);
  const json stat = ParseJson(Run({"stat", copy, "--json", "--read-only"}).out);
  REQUIRE(stat["atoms"].size() == static_cast<std::size_t>(atoms));
  for (int i = 0; i < atoms; ++i) {
    const std::string atom = "atom-" + std::to_string(i);
    REQUIRE(Run({"dump", copy, "--atom", atom, "--read-only"}).out ==
            Run({"dump", source, "--atom", atom, "--read-only"}).out);
  }
}

constexpr int kKilledBySigkill = 128 + SIGKILL;

TEST_CASE("compact killed between atoms leaves nothing at NEW_PATH, and no temporary file") {
  TempDir dir;
  constexpr int kAtoms = 6;
  const std::string source = SourceWithAtoms(dir, kAtoms, 50);
  const std::string target = dir.File("packed.atomap");
  // ATOMAP_TEST_KILL_COMPACT_AFTER=N: the tool raises SIGKILL on itself once N atoms are copied
  // (N = kAtoms: every atom copied, not yet published).
  for (int copied = 0; copied <= kAtoms; ++copied) {
    const ToolResult result =
        Run({"compact", source, target}, "",
            ToolSetup{.env = {{"ATOMAP_TEST_KILL_COMPACT_AFTER", std::to_string(copied)}}});
    INFO("killed after " << copied << " atoms: " << result.err);
    CHECK(result.exit_code == kKilledBySigkill);
    CHECK_FALSE(std::filesystem::exists(target));
    CHECK(DirEntries(dir.path()) ==
          std::set<std::string>{"source.atomap", "source.atomap.lock", "source.atomap.readers"});
  }
  // And the next compact, not killed, publishes a complete copy.
  REQUIRE(Run({"compact", source, target}).exit_code == 0);
  RequireCompleteCopy(source, target, kAtoms);
}

TEST_CASE("compact killed at random moments: NEW_PATH is absent, or complete") {
  TempDir dir;
  constexpr int kAtoms = 12;
  const std::string source = SourceWithAtoms(dir, kAtoms, 300);
  const std::string target = dir.File("packed.atomap");
  // How long one compact takes here: the kills land anywhere from before exec to after the exit.
  const auto begin = std::chrono::steady_clock::now();
  REQUIRE(Run({"compact", source, target}).exit_code == 0);
  const auto duration = std::chrono::steady_clock::now() - begin;
  RequireCompleteCopy(source, target, kAtoms);
  std::filesystem::remove(target);
  std::filesystem::remove(target + ".lock");
  std::filesystem::remove(target + ".readers");

  const unsigned seed = std::random_device()();
  INFO("seed " << seed);
  std::mt19937 random(seed);
  std::uniform_int_distribution<long long> delay_us(
      0, std::chrono::duration_cast<std::chrono::microseconds>(duration).count());
  int killed = 0;
  for (int round = 0; round < 16; ++round) {
    ToolProcess compact({"compact", source, target});
    // The random moment is the thing under test; the outcome is read from the file, not timed.
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(random)));
    kill(compact.pid(), SIGKILL);
    const ToolResult result = compact.Finish();
    INFO("round " << round << ": exit " << result.exit_code << " " << result.err);
    if (result.exit_code == kKilledBySigkill) ++killed;
    if (std::filesystem::exists(target)) {
      RequireCompleteCopy(source, target, kAtoms);
      std::filesystem::remove(target);
    } else {
      CHECK(result.exit_code == kKilledBySigkill);
    }
    // A domain is three files; companions left without their domain (a kill inside Publish,
    // which links them first) are stale leftovers that the next creator replaces.
    std::filesystem::remove(target + ".lock");
    std::filesystem::remove(target + ".readers");
    CHECK(DirEntries(dir.path()) ==
          std::set<std::string>{"source.atomap", "source.atomap.lock", "source.atomap.readers"});
  }
  CHECK(killed > 0);
}

// A small tmpfs mounted on a fresh directory, unmounted at scope exit (root only).
class SmallTmpfs {
 public:
  explicit SmallTmpfs(const std::string& mount_point, const char* size) : path_(mount_point) {
    std::filesystem::create_directory(path_);
    const std::string data = std::string("size=") + size;
    mounted_ = geteuid() == 0 && mount("tmpfs", path_.c_str(), "tmpfs", 0, data.c_str()) == 0;
  }
  ~SmallTmpfs() {
    if (mounted_) umount2(path_.c_str(), MNT_DETACH);
  }
  SmallTmpfs(const SmallTmpfs&) = delete;
  SmallTmpfs& operator=(const SmallTmpfs&) = delete;
  bool mounted() const { return mounted_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool mounted_ = false;
};

TEST_CASE("compact into a full file system fails clearly and leaves nothing behind") {
  TempDir dir;
  const SmallTmpfs small(dir.File("small"), "4m");
  if (!small.mounted()) {
    WARN("skipped: mounting a tmpfs needs root (and mount(2)); this test is not run");
    return;
  }
  // About 8 MB of values: twice what the destination can hold. One large atom after a small one,
  // so that the destination fills while the large atom's version is built.
  const std::string source = CreateDomain(dir, "source.atomap");
  REQUIRE(Run({"put", source, "--atom", "atom-0", "k", "v"}).exit_code == 0);
  REQUIRE(Run({"load", source, "--atom", "atom-1"}, Lines(4000, 2000)).exit_code == 0);
  const std::string target = small.File("packed.atomap");
  const ToolResult result = Run({"compact", source, target});
  INFO(result.err);
  CHECK(result.exit_code == 3);
  CHECK(LineCount(result.err) == 1);
  CHECK(result.err.find(target) != std::string::npos);
  CHECK(result.err.find("nothing was published") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(target));
  CHECK(DirEntries(small.path()).empty());
  CHECK(Run({"check", source}).exit_code == 0);  // the source is untouched
}

TEST_CASE("a rejected put or load creates no atom and changes nothing") {
  TempDir dir;
  const std::string path = CreateDomain(dir, "d.atomap");
  const std::string long_key(64 * 1024 + 1, 'k');
  const ToolResult put = Run({"put", path, "--atom", "new", long_key, "v"});
  CHECK(put.exit_code == 2);
  CHECK(LineCount(put.err) == 1);
  CHECK(put.err.find("key of 65537 bytes") != std::string::npos);
  const ToolResult load = Run({"load", path, "--atom", "new"},
                              json{{"key", "ok"}, {"value", "1"}}.dump() + "\n" +
                                  json{{"key", long_key}, {"value", "1"}}.dump() + "\n");
  CHECK(load.exit_code == 2);
  CHECK(load.err.find("<stdin>:2: key of 65537 bytes") != std::string::npos);
  CHECK(Run({"load", path, "--atom", "new"}, "{\"key\": \"a\"}\n").exit_code == 2);
  CHECK(Run({"put", path, "--atom", "new", "--hex", "0g", "00"}).exit_code == 2);
  CHECK(Run({"put", path, "--atom", std::string(256, 'a'), "k", "v"}).exit_code == 2);
  const json stat = ParseJson(Run({"stat", path, "--json"}).out);
  CHECK(stat["atoms"] == json::array());
  CHECK(stat["closed_cleanly"] == true);
}

TEST_CASE("load refuses a line with a NUL byte, naming the line, and publishes nothing") {
  TempDir dir;
  const std::string path = CreateDomain(dir, "d.atomap");
  using namespace std::string_literals;
  // The JSON parser alone would stop at the NUL and accept the first object of each line.
  for (const std::string& input :
       {"{\"key\": \"a\", \"value\": \"b\"}\n{\"key\": \"c\", \"value\": \"d\"}\0{\"x\n"s,
        "{\"key\": \"a\", \"value\": \"b\"}\n{\"key\": \"c\", \"value\": \"d\"}\0\n"s}) {
    const ToolResult result = Run({"load", path, "--atom", "nul"}, input);
    INFO(result.err);
    CHECK(result.exit_code == 2);
    CHECK(LineCount(result.err) == 1);
    CHECK(result.err.find("<stdin>:2: a NUL byte") != std::string::npos);
  }
  CHECK(ParseJson(Run({"stat", path, "--json"}).out)["atoms"] == json::array());
  // A NUL written as JSON writes it is data like any other byte.
  REQUIRE(Run({"load", path, "--atom", "nul"}, "{\"key\": \"a\\u0000b\", \"value\": \"\"}\n")
              .exit_code == 0);
  CHECK(Run({"get", path, "--atom", "nul", "--hex", "610062"}).exit_code == 0);
}

TEST_CASE("--json escapes atom names and paths that are not UTF-8, in every command") {
  TempDir dir;
  const std::string bad_path = dir.File("\xff\xfe.atomap");
  auto hex_of = [](const std::string& bytes) {
    std::string hex;
    for (unsigned char c : bytes)
      hex += "0123456789abcdef"[c >> 4], hex += "0123456789abcdef"[c & 15];
    return hex;
  };
  const std::string atom = "caf\xe9";  // Latin-1, not UTF-8
  auto run_json = [&](const std::vector<std::string>& args, const std::string& input = "") {
    const ToolResult result = Run(args, input);
    INFO(args[0] << ": exit " << result.exit_code << " " << result.err);
    REQUIRE(result.exit_code == 0);
    return ParseJson(result.out);
  };
  const json created = run_json({"create", bad_path, "--json"});
  CHECK(created["path_hex"] == hex_of(bad_path));
  CHECK_FALSE(created.contains("path"));
  CHECK(run_json({"put", bad_path, "--json", "--atom", atom, "k", "v"}) ==
        json{{"atom_hex", hex_of(atom)}, {"version", 1}});
  CHECK(
      run_json({"load", bad_path, "--json", "--atom", atom}, "{\"key\":\"k2\",\"value\":\"\"}\n") ==
      json{{"atom_hex", hex_of(atom)}, {"version", 2}, {"entries_loaded", 1}, {"entries", 2}});
  CHECK(run_json({"get", bad_path, "--json", "--atom", atom, "k"}) ==
        json{{"key", "k"}, {"value", "v"}});
  const ToolResult dump = Run({"dump", bad_path, "--json", "--atom", atom});
  CHECK(dump.exit_code == 0);
  CHECK(dump.out == "{\"key\":\"k\",\"value\":\"v\"}\n{\"key\":\"k2\",\"value\":\"\"}\n");
  const json stat = run_json({"stat", bad_path, "--json"});
  CHECK(stat["path_hex"] == hex_of(bad_path));
  CHECK(stat["atoms"] ==
        json::array({{{"name_hex", hex_of(atom)}, {"entries", 2}, {"version", 2}}}));
  const json check = run_json({"check", bad_path, "--json"});
  CHECK(check["path_hex"] == hex_of(bad_path));
  CHECK(check["ok"] == true);
  const std::string bad_copy = dir.File("copy\xff.atomap");
  const json compact = run_json({"compact", bad_path, bad_copy, "--json"});
  CHECK(compact["path_hex"] == hex_of(bad_path));
  CHECK(compact["new_path_hex"] == hex_of(bad_copy));

  ToolProcess watch({"watch", bad_path, "--json", "--atom", atom, "--count", "1"});
  watch.ReadErrLine();  // ready
  CHECK(run_json({"del", bad_path, "--json", "--atom", atom, "k2"}) ==
        json{{"atom_hex", hex_of(atom)}, {"version", 3}});
  const ToolResult watched = watch.Finish();
  CHECK(watched.exit_code == 0);
  CHECK(ParseJson(watched.out) == json{{"atom_hex", hex_of(atom)},
                                       {"version", 3},
                                       {"added", json::array()},
                                       {"changed", json::array()},
                                       {"removed", {{{"key", "k2"}, {"value", ""}}}}});
  // Every command ran to its end: the domain was closed cleanly each time.
  CHECK(ParseJson(Run({"stat", bad_path, "--json"}).out)["closed_cleanly"] == true);
}

TEST_CASE("a create that fails after the mapping leaves no file behind") {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  WARN("skipped under a sanitizer: its shadow memory does not start under an RLIMIT_AS limit");
  return;
#endif
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  // 1 GiB of address space: enough for the tool, not for the default 64 GiB reservation, which
  // fails only once the new file is complete (Arena::MapFile).
  const ToolResult result =
      Run({"create", path}, "", ToolSetup{.env = {}, .address_space = rlim_t{1} << 30});
  INFO(result.err);
  CHECK(result.exit_code == 3);
  CHECK(LineCount(result.err) == 1);
  CHECK(result.err.find("address space") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(path));
  CHECK(DirEntries(dir.path()).empty());
  // With the address space it needs, the same create works.
  CHECK(Run({"create", path, "--max-size", "268435456"}, "",
            ToolSetup{.env = {}, .address_space = rlim_t{1} << 30})
            .exit_code == 0);
}

// A descriptor that becomes readable when `pid` exits (pidfd_open, Linux 5.3): the test then
// waits on the kernel's word that the process is gone, not on a poll of /proc. -1 if `pid` is
// already gone (ESRCH).
int OpenPidFd(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

// True once the process of `pidfd` has exited, waiting at most `timeout_ms`.
bool ExitsWithin(int pidfd, int timeout_ms) {
  pollfd p{pidfd, POLLIN, 0};
  int rc;
  while ((rc = poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
  }
  return rc == 1;
}

TEST_CASE("the demo's watcher exits when the demo is killed") {
  TempDir dir;
  // Enough swaps to run for minutes: the demo is killed long before it would finish.
  ToolProcess demo(
      {"demo", "--path", dir.File("demo.atomap"), "--processes", "1", "--ops", "3000000"});
  pid_t watcher = -1;
  for (std::string line; watcher < 0 && !(line = demo.ReadOutLine()).empty();) {
    if (const std::size_t at = line.find("watcher"); at != std::string::npos) {
      if (const std::size_t pid = line.find("pid ", at); pid != std::string::npos) {
        watcher = static_cast<pid_t>(std::stol(line.substr(pid + 4)));
      }
    }
  }
  REQUIRE(watcher > 0);
  // Opened while the demo (the watcher's parent) still lives, so the pid is still the watcher's.
  const int pidfd = OpenPidFd(watcher);
  REQUIRE(pidfd >= 0);
  CHECK(demo.KillAndWait() == kKilledBySigkill);
  const bool gone = ExitsWithin(pidfd, 10000);
  if (!gone) kill(watcher, SIGKILL);  // do not leave it behind when the test fails
  close(pidfd);
  CHECK(gone);
}

#ifdef ATOMAP_SOURCE_DIR
TEST_CASE("upgrade converts the format-2 fixture; other commands name the remedy") {
  TempDir dir;
  const std::string path = dir.File("f2.atomap");
  std::filesystem::copy_file(std::string(ATOMAP_SOURCE_DIR) + "/tests/data/format2.atomap", path);
  const ToolResult refused = Run({"get", path, "key1"});
  CHECK(refused.exit_code == 3);
  CHECK(refused.err.find("run 'atomap upgrade " + path + "'") != std::string::npos);
  const ToolResult upgraded = Run({"upgrade", path});
  REQUIRE(upgraded.exit_code == 0);
  CHECK(upgraded.out == path + ": upgraded from format 2 to format 5\n");
  CHECK(Run({"get", path, "key1"}).out == "value1\n");
  CHECK(Run({"check", path}).exit_code == 0);
  const ToolResult again = Run({"upgrade", path, "--json"});
  REQUIRE(again.exit_code == 0);
  CHECK(ParseJson(again.out)["already_current"] == true);
}
#endif

TEST_CASE("create --reader-mode and --reader-capacity shape PATH.readers") {
  TempDir dir;
  const std::string path = dir.File("r.atomap");
  REQUIRE(Run({"create", path, "--reader-mode", "0640", "--reader-capacity", "8"}).exit_code == 0);
  CHECK((std::filesystem::status(path + ".readers").permissions() & std::filesystem::perms::mask) ==
        static_cast<std::filesystem::perms>(0640));
  CHECK(std::filesystem::file_size(path + ".readers") == 4096 + 8 * 64);
  CHECK(Run({"create", dir.File("bad.atomap"), "--reader-mode", "0999"}).exit_code == 2);
}

}  // namespace
}  // namespace atomap

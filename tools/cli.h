// The atomap command-line tool: what every command shares.
//
// Each command is a function from its parsed arguments to an absl::Status. Errors stay statuses
// until main(), which prints the message as one line on stderr and maps it to the exit code in
// one place (ExitCodeFor):
//   0 success; 1 not found (key, atom) or problems found (check); 2 usage; 3 I/O or corruption.
// A status may carry its exit code explicitly (WithExitCode) when its absl code alone would
// map wrongly, e.g. a missing domain file is NotFound to the library but an I/O error here.
#ifndef ATOMAP_TOOLS_CLI_H_
#define ATOMAP_TOOLS_CLI_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "atomap/diff.h"
#include "atomap/domain.h"
#include "nlohmann/json.hpp"

namespace atomap::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitNotFound = 1,  // also: check found problems
  kExitUsage = 2,
  kExitIoError = 3,  // also: corruption, a file that is not a domain
};

// Attaches `code` to `status` as the exit code main() will use.
absl::Status WithExitCode(absl::Status status, ExitCode code);
// The exit code for `status`: its attached one, else by absl code (NotFound 1,
// InvalidArgument 2, anything else 3).
int ExitCodeFor(const absl::Status& status);

// The arguments most commands share.
struct CommonArgs {
  std::string path;           // file path, or a /dev/shm name with --shm
  std::string atom = "default";
  bool json = false;          // machine-readable output
  bool hex = false;           // keys and values as hexadecimal
  bool shm = false;           // the domain lives in shared memory (/dev/shm/atomap.<path>)
  bool read_only = false;     // open as a registered reader
  bool unregistered = false;  // with read_only: Options::unregistered_reads
  bool allow_foreign = false; // write even to a domain another user owns (allow_foreign_owner)
};

// Opens the existing domain named by `args` (never creates one). Errors name the file; a
// missing one exits 3, like any other file that cannot be used.
absl::StatusOr<Domain> OpenExistingDomain(const CommonArgs& args);

// The atom `name` if it exists (never creates it): NotFound naming the atom and the file.
absl::StatusOr<Atom> FindAtom(Domain& domain, std::string_view name);

// ---- Bytes in text and JSON -----------------------------------------------------------------
std::string HexEncode(std::string_view bytes);
absl::StatusOr<std::string> HexDecode(std::string_view hex);
bool IsValidUtf8(std::string_view bytes);

// Stores `bytes` in `object` under `field` if it is valid UTF-8 (and !force_hex), otherwise
// under `field` + "_hex" as lower-case hexadecimal. JSON strings cannot hold other bytes.
void PutBytes(nlohmann::json& object, const std::string& field, std::string_view bytes,
              bool force_hex);
// The bytes PutBytes stored: exactly one of `field` and `field` + "_hex" must be a string.
absl::StatusOr<std::string> GetBytes(const nlohmann::json& object, const std::string& field);

// One entry as the dump format's JSON object: {"key"|"key_hex": ..., "value"|"value_hex": ...}.
nlohmann::json EntryJson(std::string_view key, std::string_view value, bool force_hex);

// `bytes` for a human: as is if valid UTF-8 (and !force_hex), else "0x" and hexadecimal.
std::string Printable(std::string_view bytes, bool force_hex = false);

// One version's changes for a human: "version 7: +added=value ~changed=new_value -removed".
std::string DiffText(std::uint64_t version, const MapDiff& diff, bool force_hex = false);

// Writes `value` as one line on stdout. Never throws: a string that is not UTF-8 has its bad
// bytes replaced by U+FFFD, so names and paths must go in through PutBytes ("path_hex").
void PrintJsonLine(const nlohmann::json& value);

// A one-line progress display on stderr, drawn only when stderr is a terminal. A total of 0
// means unknown: the display is then a running count.
class Progress {
 public:
  Progress(std::string label, std::uint64_t total);
  ~Progress();  // erases the line
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Update(std::uint64_t done);
  // Erases the line so that other output can be printed; the next Update redraws it.
  void Clear();
  bool enabled() const { return enabled_; }

 private:
  std::string label_;
  std::uint64_t total_;
  bool enabled_;
  bool drawn_ = false;
  int last_percent_ = -1;
};

// ---- Commands (tools/commands.cc, tools/demo.cc) ----------------------------------------------
struct CreateArgs {
  CommonArgs common;
  std::uint64_t max_size = 0;  // 0: the library's default
  std::uint32_t slot_capacity = 0;  // 0: the library's default
  std::uint32_t atom_capacity = 0;  // 0: the library's default
  std::uint32_t reader_capacity = 0;  // 0: the library's default
  std::string reader_mode;            // octal; empty: derived from the domain's mode
};
struct UpgradeArgs {
  CommonArgs common;
  std::uint32_t reader_capacity = 0;  // 0: the library's default
  std::string reader_mode;            // octal; empty: derived from the domain's mode
};

// An octal mode ("0660") for --reader-mode: 0 when empty; InvalidArgument unless in [1, 07777].
absl::StatusOr<std::uint32_t> ParseMode(const std::string& text);
struct KeyValueArgs {
  CommonArgs common;
  std::string key;
  std::string value;
};
struct LoadArgs {
  CommonArgs common;
  bool replace = false;  // make the atom hold exactly the loaded entries
};
struct CheckArgs {
  CommonArgs common;
  bool repair = false;
  double wait_seconds = 0;  // --wait: how long to wait for the domain to itself
};
struct WatchArgs {
  CommonArgs common;
  std::uint64_t count = 0;  // 0: forever
};
struct CompactArgs {
  CommonArgs common;
  std::string new_path;
};
struct StatArgs {
  CommonArgs common;
  bool readers = false;     // --readers: one row per participant, writers then readers
  bool prometheus = false;  // --prometheus: the text exposition format instead
};
// `atomap replicate publish|follow` (tools/replicate_command.cc; only with
// ATOMAP_BUILD_REPLICATION).
struct ReplicateArgs {
  CommonArgs common;
  std::string mode;  // "publish" or "follow"
  std::string nats_url = "nats://127.0.0.1:4222";
  std::string stream = "ATOMAP";
  std::string subject_prefix = "atomap";
  std::uint64_t full_every = 1000;
  double retry_seconds = 30;
  std::uint64_t count = 0;  // stop after this many records (0: never)
};
struct DemoArgs {
  std::string path;  // empty: the default file
  int processes = 4;
  std::uint64_t ops = 100000;  // about a second on 2 cores
};

absl::Status RunCreate(const CreateArgs& args);
absl::Status RunPut(const KeyValueArgs& args);
absl::Status RunGet(const KeyValueArgs& args);
absl::Status RunDel(const KeyValueArgs& args);
absl::Status RunDump(const CommonArgs& args);
absl::Status RunLoad(const LoadArgs& args);
absl::Status RunStat(const StatArgs& args);
absl::Status RunCheck(const CheckArgs& args);
absl::Status RunWatch(const WatchArgs& args);
absl::Status RunCompact(const CompactArgs& args);
absl::Status RunDemo(const DemoArgs& args);
absl::Status RunUpgrade(const UpgradeArgs& args);
absl::Status RunReplicate(const ReplicateArgs& args);

}  // namespace atomap::cli

#endif  // ATOMAP_TOOLS_CLI_H_

// What the atomap tool's commands share: opening, exit codes, byte encodings, output, progress.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli.h"

namespace atomap::cli {
namespace {

constexpr char kExitCodePayload[] = "atomap.cli/exit_code";

}  // namespace

absl::Status WithExitCode(absl::Status status, ExitCode code) {
  status.SetPayload(kExitCodePayload, absl::Cord(std::to_string(static_cast<int>(code))));
  return status;
}

int ExitCodeFor(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  if (auto code = status.GetPayload(kExitCodePayload)) {
    return std::stoi(std::string(*code));
  }
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    case absl::StatusCode::kInvalidArgument:
      return kExitUsage;
    default:
      return kExitIoError;
  }
}

absl::StatusOr<Domain> OpenExistingDomain(const CommonArgs& args) {
  Options options;
  options.create_if_missing = false;
  options.read_only = args.read_only;
  options.unregistered_reads = args.unregistered;
  options.allow_foreign_owner = args.allow_foreign;
  options.verify_reads = true;  // a damaged file is an error (exit 3), never a crash
  options.kind = args.shm ? DomainKind::kSharedMemory : DomainKind::kFile;
  absl::StatusOr<Domain> domain = Domain::Open(args.path, options);
  if (absl::IsNotFound(domain.status())) {
    // To the library a missing file is NotFound; to a user of the tool it is a bad path (exit
    // 3), not an absent key (exit 1).
    return WithExitCode(absl::NotFoundError(args.path + ": no such domain file"), kExitIoError);
  }
  return domain;
}

absl::StatusOr<Atom> FindAtom(Domain& domain, std::string_view name) {
  // find_atom, not atom(): on a writable domain atom() would create the atom, and a reading
  // command must not change the file.
  absl::StatusOr<Atom> found = domain.find_atom(name);
  if (absl::IsNotFound(found.status())) {
    return absl::NotFoundError(
        absl::StrFormat("%s: no atom named \"%s\"", domain.path(), std::string(name)));
  }
  return found;
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * bytes.size());
  for (const unsigned char c : bytes) {
    hex.push_back(kDigits[c >> 4]);
    hex.push_back(kDigits[c & 15]);
  }
  return hex;
}

absl::StatusOr<std::string> HexDecode(std::string_view hex) {
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) {
    return absl::InvalidArgumentError("odd number of hexadecimal digits");
  }
  std::string bytes;
  bytes.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int high = digit(hex[i]);
    const int low = digit(hex[i + 1]);
    if (high < 0 || low < 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("not a hexadecimal digit at position %d", high < 0 ? i : i + 1));
    }
    bytes.push_back(static_cast<char>(high << 4 | low));
  }
  return bytes;
}

// RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF — what a JSON parser
// (nlohmann's included) accepts in a string.
bool IsValidUtf8(std::string_view bytes) {
  std::size_t i = 0;
  const std::size_t n = bytes.size();
  auto continuation = [&](std::size_t at, unsigned char low = 0x80, unsigned char high = 0xBF) {
    if (at >= n) return false;
    const unsigned char c = static_cast<unsigned char>(bytes[at]);
    return c >= low && c <= high;
  };
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c < 0x80) {
      i += 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      if (!continuation(i + 1)) return false;
      i += 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      const unsigned char low = c == 0xE0 ? 0xA0 : 0x80;
      const unsigned char high = c == 0xED ? 0x9F : 0xBF;
      if (!continuation(i + 1, low, high) || !continuation(i + 2)) return false;
      i += 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      const unsigned char low = c == 0xF0 ? 0x90 : 0x80;
      const unsigned char high = c == 0xF4 ? 0x8F : 0xBF;
      if (!continuation(i + 1, low, high) || !continuation(i + 2) || !continuation(i + 3)) {
        return false;
      }
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}

void PutBytes(nlohmann::json& object, const std::string& field, std::string_view bytes,
              bool force_hex) {
  if (!force_hex && IsValidUtf8(bytes)) {
    object[field] = std::string(bytes);
  } else {
    object[field + "_hex"] = HexEncode(bytes);
  }
}

absl::StatusOr<std::string> GetBytes(const nlohmann::json& object, const std::string& field) {
  const std::string hex_field = field + "_hex";
  const bool has_text = object.contains(field);
  const bool has_hex = object.contains(hex_field);
  if (has_text == has_hex) {
    return absl::InvalidArgumentError(
        absl::StrFormat("needs exactly one of \"%s\" and \"%s\"", field, hex_field));
  }
  const nlohmann::json& value = has_text ? object[field] : object[hex_field];
  if (!value.is_string()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("\"%s\" is not a string", has_text ? field : hex_field));
  }
  if (has_text) return value.get<std::string>();
  absl::StatusOr<std::string> bytes = HexDecode(value.get_ref<const std::string&>());
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("\"%s\": %s", hex_field, bytes.status().message()));
  }
  return bytes;
}

nlohmann::json EntryJson(std::string_view key, std::string_view value, bool force_hex) {
  nlohmann::json entry = nlohmann::json::object();
  PutBytes(entry, "key", key, force_hex);
  PutBytes(entry, "value", value, force_hex);
  return entry;
}

std::string Printable(std::string_view bytes, bool force_hex) {
  if (!force_hex && IsValidUtf8(bytes)) return std::string(bytes);
  return absl::StrCat("0x", HexEncode(bytes));
}

std::string DiffText(std::uint64_t version, const MapDiff& diff, bool force_hex) {
  // absl::StrCat, not operator+: GCC 12 reports a false -Wrestrict on chained std::string +.
  std::vector<std::string> parts;
  for (const auto& [key, value] : diff.added) {
    parts.push_back(absl::StrCat("+", Printable(key, force_hex), "=", Printable(value, force_hex)));
  }
  for (const MapDiff::Change& change : diff.changed) {
    parts.push_back(absl::StrCat("~", Printable(change.key, force_hex), "=",
                                 Printable(change.new_value, force_hex)));
  }
  for (const auto& [key, value] : diff.removed) {
    parts.push_back(absl::StrCat("-", Printable(key, force_hex)));
  }
  return absl::StrFormat("version %d: %s", version, absl::StrJoin(parts, " "));
}

void PrintJsonLine(const nlohmann::json& value) {
  // Bytes that must survive exactly (keys, values, atom names, paths) went in through PutBytes,
  // as UTF-8 text or as hexadecimal. Free text that may quote other bytes (a check problem
  // naming an atom) has them replaced by U+FFFD here: the strict handler would throw, and an
  // uncaught exception aborts the tool after its work is done.
  const std::string line =
      value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
}

Progress::Progress(std::string label, std::uint64_t total)
    : label_(std::move(label)), total_(total), enabled_(isatty(STDERR_FILENO) == 1) {}

Progress::~Progress() { Clear(); }

void Progress::Update(std::uint64_t done) {
  if (!enabled_) return;
  if (total_ == 0) {  // total unknown: a running count, redrawn now and then
    if (drawn_ && done % 4096 != 0) return;
    std::fprintf(stderr, "\r\033[K%s: %llu", label_.c_str(), static_cast<unsigned long long>(done));
    std::fflush(stderr);
    drawn_ = true;
    return;
  }
  const int percent = static_cast<int>(std::min<std::uint64_t>(done, total_) * 100 / total_);
  if (percent == last_percent_ && drawn_) return;  // redraw only when the figure changes
  last_percent_ = percent;
  std::fprintf(stderr, "\r\033[K%s: %llu/%llu (%d%%)", label_.c_str(),
               static_cast<unsigned long long>(done), static_cast<unsigned long long>(total_),
               percent);
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::Clear() {
  if (!drawn_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

absl::StatusOr<std::uint32_t> ParseMode(const std::string& text) {
  if (text.empty()) return 0;
  std::uint32_t mode = 0;
  for (const char c : text) {
    if (c < '0' || c > '7' || mode > 07777) {
      return absl::InvalidArgumentError(
          absl::StrFormat("--reader-mode '%s': not an octal mode in [1, 7777]", text));
    }
    mode = mode * 8 + static_cast<std::uint32_t>(c - '0');
  }
  if (mode == 0 || mode > 07777) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--reader-mode '%s': not an octal mode in [1, 7777]", text));
  }
  return mode;
}

}  // namespace atomap::cli

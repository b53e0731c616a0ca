// `atomap stat --readers` and `atomap stat --prometheus`, run as the real binary
// (ATOMAP_TOOL_PATH) on a domain that a forked writer holds a pin in. The exposition output is
// read by a strict parser of the text format 0.0.4 written here, and its figures are compared
// with Domain::stats() and Domain::info(). Every wait is on a pipe or a child's exit.
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "atomap/domain.h"
#include "atomap/version.h"
#include "nlohmann/json.hpp"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

#ifndef ATOMAP_TOOL_PATH
#error "ATOMAP_TOOL_PATH must name the atomap binary (tests/CMakeLists.txt)"
#endif

namespace atomap {
namespace {

using nlohmann::json;

const std::string kOddAtom = "a\"b\\c\n";  // every character a label value must escape

// Runs the tool with stdout captured (stderr inherited).
ProgramRun RunTool(const std::vector<std::string>& args) {
  return RunCapturingStdout(ATOMAP_TOOL_PATH, args);
}

// ---- A strict reader of the text exposition format 0.0.4 ------------------------------------

using Labels = std::map<std::string, std::string>;

struct Exposition {
  std::map<std::string, std::string> types;  // family -> "counter" | "gauge" | ...
  std::map<std::string, std::string> helps;
  std::vector<std::tuple<std::string, Labels, double>> samples;

  // The one sample of `name` whose labels include `match`. FAILs unless exactly one.
  double Value(const std::string& name, const Labels& match = {}) const {
    std::vector<double> found;
    for (const auto& [sample, labels, value] : samples) {
      if (sample != name) continue;
      bool all = true;
      for (const auto& [k, v] : match) all = all && labels.count(k) != 0 && labels.at(k) == v;
      if (all) found.push_back(value);
    }
    INFO(name);
    REQUIRE(found.size() == 1);
    return found[0];
  }
};

bool IsMetricName(const std::string& name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool IsLabelName(const std::string& name) {
  return IsMetricName(name) && name.find(':') == std::string::npos;
}

// Reads `"..."` at text[pos], undoing \\, \" and \n (any other escape is an error).
std::string ReadLabelValue(const std::string& line, std::size_t& pos) {
  REQUIRE(pos < line.size());
  REQUIRE(line[pos] == '"');
  std::string value;
  for (++pos; pos < line.size() && line[pos] != '"'; ++pos) {
    if (line[pos] != '\\') {
      value += line[pos];
      continue;
    }
    REQUIRE(pos + 1 < line.size());
    const char escaped = line[++pos];
    REQUIRE((escaped == '\\' || escaped == '"' || escaped == 'n'));
    value += escaped == 'n' ? '\n' : escaped;
  }
  REQUIRE(pos < line.size());  // the closing quote
  ++pos;
  return value;
}

double ParseNumber(const std::string& text) {
  REQUIRE_FALSE(text.empty());
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  REQUIRE(end == text.c_str() + text.size());
  return value;
}

void ParseSample(const std::string& line, Exposition& exposition) {
  std::size_t pos = line.find_first_of("{ ");
  REQUIRE(pos != std::string::npos);
  const std::string name = line.substr(0, pos);
  REQUIRE(IsMetricName(name));
  // HELP and TYPE come before a family's samples (for a counter, the name is its family's).
  REQUIRE(exposition.types.count(name) == 1);
  REQUIRE(exposition.helps.count(name) == 1);
  Labels labels;
  if (line[pos] == '{') {
    ++pos;
    while (line.at(pos) != '}') {
      const std::size_t eq = line.find('=', pos);
      REQUIRE(eq != std::string::npos);
      const std::string label = line.substr(pos, eq - pos);
      REQUIRE(IsLabelName(label));
      pos = eq + 1;
      const std::string value = ReadLabelValue(line, pos);
      REQUIRE(labels.emplace(label, value).second);  // no label twice
      if (line.at(pos) == ',') ++pos;
    }
    ++pos;
  }
  REQUIRE(line.at(pos) == ' ');
  exposition.samples.emplace_back(name, labels, ParseNumber(line.substr(pos + 1)));
}

Exposition ParseExposition(const std::string& text) {
  Exposition exposition;
  REQUIRE_FALSE(text.empty());
  REQUIRE(text.back() == '\n');
  std::set<std::string> sampled;  // families whose samples have begun
  std::string last_family;
  std::size_t begin = 0;
  while (begin < text.size()) {
    const std::size_t end = text.find('\n', begin);
    const std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    INFO(line);
    REQUIRE_FALSE(line.empty());
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      const std::size_t space = line.find(' ', 7);
      REQUIRE(space != std::string::npos);
      const std::string name = line.substr(7, space - 7);
      const std::string rest = line.substr(space + 1);
      REQUIRE(IsMetricName(name));
      REQUIRE(sampled.count(name) == 0);  // before its samples
      if (line[2] == 'H') {
        REQUIRE(exposition.helps.emplace(name, rest).second);
      } else {
        REQUIRE((rest == "counter" || rest == "gauge"));
        REQUIRE(exposition.types.emplace(name, rest).second);
        // Units in names, _total on counters only.
        CHECK((rest == "counter") == (name.size() > 6 && name.ends_with("_total")));
      }
      continue;
    }
    REQUIRE(line[0] != '#');
    ParseSample(line, exposition);
    const std::string& name = std::get<0>(exposition.samples.back());
    if (name != last_family) REQUIRE(sampled.insert(name).second);  // one group per family
    last_family = name;
  }
  for (const auto& [family, type] : exposition.types) CHECK(sampled.count(family) == 1);
  return exposition;
}

TEST_CASE("the strict exposition parser rejects what the format forbids") {
  const std::string good = "# HELP a_total x\n# TYPE a_total counter\na_total{l=\"q\\\"\"} 1\n";
  CHECK(std::get<1>(ParseExposition(good).samples[0]).at("l") == "q\"");
}

// ---- The domain -------------------------------------------------------------------------------

struct PinReport {
  std::uint64_t epoch;
};

// A writer process that holds a snapshot of atom "plain" (so a pin) until killed, after telling
// the parent its pinned epoch.
pid_t ForkPinnedWriter(const std::string& path, ReportPipe& reports, Gate& never) {
  return ForkChild([&]() -> int {
    absl::StatusOr<Domain> domain = Domain::Open(path);
    if (!domain.ok()) return 2;
    absl::StatusOr<Atom> atom = domain->find_atom("plain");
    if (!atom.ok()) return 3;
    absl::StatusOr<Snapshot> held = atom->load();
    if (!held.ok()) return 4;
    const DomainStats stats = domain->stats(StatsOptions{.participants = true});
    for (const ParticipantStats& row : stats.participant_list) {
      if (row.pid == static_cast<std::uint32_t>(getpid()) && row.pinned) {
        reports.Send(PinReport{row.pinned_epoch});
      }
    }
    never.Wait();  // until SIGKILL (or the parent's death)
    return 0;
  });
}

void Put(Domain& domain, const std::string& atom, const std::string& key,
         const std::string& value) {
  absl::StatusOr<Atom> a = domain.atom(atom);
  REQUIRE(a.ok());
  REQUIRE(a->swap([&](Transaction& tx) { return tx.set(key, value); }).ok());
}

const json* RowOf(const json& stat, std::uint32_t pid) {
  const json* found = nullptr;
  for (const json& row : stat["participants"]) {
    if (row["pid"] == pid) {
      REQUIRE(found == nullptr);
      found = &row;
    }
  }
  return found;
}

// Parses the output with the prometheus_client library too, where it is installed.
void ParseWithPrometheusClient(const std::string& text, const TempDir& dir) {
  if (std::system("python3 -c 'import prometheus_client' >/dev/null 2>&1") != 0) {
    WARN("prometheus_client is not installed: only the strict in-test parser ran");
    return;
  }
  const std::string file = dir.File("metrics.prom");
  std::ofstream(file) << text;
  const std::string script =
      "import sys\nfrom prometheus_client.parser import text_string_to_metric_families as f\n"
      "n = sum(len(m.samples) for m in f(open(sys.argv[1]).read()))\nsys.exit(0 if n > 0 else 1)\n";
  std::ofstream(dir.File("parse.py")) << script;
  CHECK(std::system(("python3 " + dir.File("parse.py") + " " + file).c_str()) == 0);
}

TEST_CASE("stat --readers and --prometheus show a forked writer's pin, alive, then dead") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions());
  REQUIRE(domain.ok());
  Put(*domain, "plain", "k1", "v1");
  Put(*domain, "plain", "k2", "v2");
  Put(*domain, kOddAtom, "k", "v");

  ReportPipe reports;
  Gate never;
  const pid_t writer = ForkPinnedWriter(path, reports, never);
  reports.CloseWriteEnd();
  const std::optional<PinReport> pin = reports.Receive<PinReport>();
  REQUIRE(pin.has_value());
  // Garbage retired at epochs >= the writer's pin: what its pin holds back.
  for (int i = 0; i < 4; ++i) Put(*domain, "plain", "k1", absl::StrCat("v", i + 10));

  const ProgramRun readers = RunTool({"stat", path, "--readers", "--json"});
  REQUIRE(readers.status == 0);
  const json stat = json::parse(readers.out);
  CHECK(stat.contains("space"));  // the usual fields are all still there
  CHECK(stat.contains("epochs"));
  REQUIRE(stat["registry"].is_object());
  CHECK(stat["registry"]["path"] == path + ".readers");
  CHECK(stat["registry"]["capacity"].get<std::uint32_t>() > 0);
  const json* row = RowOf(stat, static_cast<std::uint32_t>(writer));
  REQUIRE(row != nullptr);
  CHECK((*row)["kind"] == "writer");
  CHECK((*row)["alive"] == true);
  CHECK((*row)["dead"] == false);
  CHECK((*row)["pinned_epoch"] == pin->epoch);
  CHECK((*row)["retained_bytes"].get<std::uint64_t>() > 0);
  CHECK(row->contains("slot"));
  CHECK(RowOf(stat, static_cast<std::uint32_t>(getpid())) != nullptr);  // this test: a writer
  CHECK(stat["epochs"]["oldest_pinned"]["epoch"].get<std::uint64_t>() <= pin->epoch);

  const std::uint64_t epochs_before = domain->stats().epoch_advances;
  const ProgramRun metrics = RunTool({"stat", path, "--prometheus"});
  REQUIRE(metrics.status == 0);
  const Exposition exposition = ParseExposition(metrics.out);
  ParseWithPrometheusClient(metrics.out, dir);
  for (const auto& [name, labels, value] : exposition.samples) CHECK(labels.at("path") == path);

  const DomainStats stats = domain->stats(StatsOptions{.participants = true});
  const DomainInfo info = domain->info();
  const Exposition& e = exposition;
  CHECK(e.Value("atomap_size_bytes") == info.size);
  CHECK(e.Value("atomap_max_size_bytes") == info.max_size);
  CHECK(e.Value("atomap_data_bytes") == stats.data_bytes);
  CHECK(e.Value("atomap_live_bytes") == stats.live_bytes);
  CHECK(e.Value("atomap_free_bytes") == stats.free_bytes);
  CHECK(e.Value("atomap_unused_bytes") == stats.unused_bytes);
  CHECK(e.Value("atomap_pending_garbage_bytes") == stats.pending_garbage_bytes);
  CHECK(e.Value("atomap_pending_garbage_blocks") == stats.pending_garbage_blocks);
  CHECK(e.Value("atomap_participants", {{"kind", "writer"}}) == stats.writers);  // test + writer
  CHECK(stats.writers == 2);
  CHECK(e.Value("atomap_participants", {{"kind", "reader"}}) == stats.readers);
  CHECK(e.Value("atomap_participants_dead", {{"kind", "writer"}}) == 0);
  CHECK(e.Value("atomap_slot_capacity", {{"kind", "writer"}}) == info.slot_capacity);
  CHECK(e.Value("atomap_slot_capacity", {{"kind", "reader"}}) == stats.reader_capacity);
  CHECK(e.Value("atomap_oldest_pin_retained_bytes") == stats.oldest_pin_retained_bytes);
  // The same pin, measured by the tool before stats() measured it here: never older.
  CHECK(e.Value("atomap_oldest_pin_age_seconds") <= absl::ToDoubleSeconds(stats.oldest_pin_age));
  const double advances = e.Value("atomap_epoch_advances_total");
  CHECK(advances >= epochs_before);  // stat's own exit may advance it once more
  CHECK(advances <= stats.epoch_advances);
  CHECK(e.Value("atomap_oldest_pin_epoch_lag") == advances - stats.oldest_pinned_epoch);
  CHECK(e.Value("atomap_atoms") == info.atom_count);
  CHECK(e.Value("atomap_atom_capacity") == info.atom_capacity);
  for (const std::string& name : {std::string("plain"), kOddAtom}) {
    absl::StatusOr<Atom> atom = domain->find_atom(name);
    REQUIRE(atom.ok());
    absl::StatusOr<Snapshot> now = atom->load();
    REQUIRE(now.ok());
    // The label round-trips: the parser's unescaped value is the atom's name.
    CHECK(e.Value("atomap_atom_versions_total", {{"atom", name}}) == now->version());
    CHECK(e.Value("atomap_atom_entries", {{"atom", name}}) == now->map().size());
  }
  CHECK(e.Value("atomap_closed_cleanly") == 0);
  CHECK(e.Value("atomap_damage") == 0);
  CHECK(e.Value("atomap_info", {{"version", ATOMAP_VERSION_STRING},
                                {"format", std::to_string(ATOMAP_FORMAT_VERSION)}}) == 1);

  REQUIRE(kill(writer, SIGKILL) == 0);
  REQUIRE(WaitChild(writer) == 128 + SIGKILL);
  const ProgramRun after = RunTool({"stat", path, "--readers", "--json"});
  REQUIRE(after.status == 0);
  const json dead = json::parse(after.out);
  const json* gone = RowOf(dead, static_cast<std::uint32_t>(writer));
  REQUIRE(gone != nullptr);  // its slot stays in use until a survivor takes it over
  CHECK((*gone)["alive"] == false);
  CHECK((*gone)["dead"] == true);
  CHECK((*gone)["pinned_epoch"] == pin->epoch);
}

TEST_CASE("stat --readers text: a table row per participant, dead ones marked") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  // Held open throughout: a stat that found itself alone would sweep the dead writer's slot.
  absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions());
  REQUIRE(domain.ok());
  Put(*domain, "plain", "k", "v");
  ReportPipe reports;
  Gate never;
  const pid_t writer = ForkPinnedWriter(path, reports, never);
  reports.CloseWriteEnd();
  REQUIRE(reports.Receive<PinReport>().has_value());
  REQUIRE(kill(writer, SIGKILL) == 0);
  REQUIRE(WaitChild(writer) == 128 + SIGKILL);
  const ProgramRun text = RunTool({"stat", path, "--readers"});
  REQUIRE(text.status == 0);
  INFO(text.out);
  const std::size_t table = text.out.find("KIND");
  REQUIRE(table != std::string::npos);
  // In the table only: the same number can appear above it (a byte count, the oldest pin's pid).
  const std::size_t pid = text.out.find(absl::StrCat(" ", writer, " "), table);
  REQUIRE(pid != std::string::npos);
  const std::size_t line = text.out.rfind('\n', pid) + 1;
  const std::string row = text.out.substr(line, text.out.find('\n', line) - line);
  CHECK(row.starts_with("writer "));
  CHECK(row.find(" no ") != std::string::npos);
  CHECK(row.ends_with("dead"));
}

}  // namespace
}  // namespace atomap

#include "prometheus.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "atomap/version.h"
#include "cli.h"

namespace atomap::cli {
namespace {

using Labels = PrometheusWriter::Labels;
using Type = PrometheusWriter::Type;

// The format's escapes: backslash and newline in HELP text, and double quotes too in label
// values.
std::string Escape(std::string_view text, bool quotes) {
  std::string out;
  for (const char c : text) {
    if (c == '\\' || (quotes && c == '"')) {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// `field`="bytes", or `field`_hex="hexadecimal" for bytes that are not UTF-8 (as PutBytes does
// for JSON): a scraper would reject, or mangle, a label value that is not UTF-8.
std::pair<std::string, std::string> BytesLabel(const std::string& field, std::string_view bytes) {
  if (IsValidUtf8(bytes)) return {field, std::string(bytes)};
  return {field + "_hex", HexEncode(bytes)};
}

const char* KindLabel(ParticipantStats::Kind kind) {
  return kind == ParticipantStats::Kind::kReader ? "reader" : "writer";
}

// Figures per participant kind, of the participants other than stat itself.
struct KindCounts {
  std::uint64_t in_use = 0;
  std::uint64_t dead = 0;
};

KindCounts CountKind(const StatReport& report, ParticipantStats::Kind kind) {
  KindCounts counts;
  for (const ParticipantStats& row : report.others) {
    if (row.kind != kind) continue;
    ++counts.in_use;
    if (row.alive == false) ++counts.dead;
  }
  return counts;
}

void WriteSpace(const StatReport& report, PrometheusWriter& out) {
  const DomainStats& s = report.stats;
  const std::pair<const char*, std::uint64_t> gauges[] = {
      {"atomap_size_bytes", report.info.size},
      {"atomap_max_size_bytes", report.info.max_size},
      {"atomap_data_bytes", s.data_bytes},
      {"atomap_live_bytes", s.live_bytes},
      {"atomap_free_bytes", s.free_bytes},
      {"atomap_unused_bytes", s.unused_bytes},
      {"atomap_pending_garbage_bytes", s.pending_garbage_bytes},
      {"atomap_pending_garbage_blocks", s.pending_garbage_blocks},
  };
  const char* helps[] = {
      "Bytes of the domain now (the file's length).",
      "The most bytes the domain may grow to.",
      "Bytes handed out of the data region so far.",
      "Bytes in allocated blocks (versions, pending garbage, metadata).",
      "Bytes in free blocks, reusable.",
      "Bytes carved for participants, not yet split into blocks.",
      "Bytes retired and waiting for the epoch to pass (orphans included).",
      "Blocks retired and waiting for the epoch to pass (orphans included).",
  };
  for (std::size_t i = 0; i < std::size(gauges); ++i) {
    out.Family(gauges[i].first, Type::kGauge, helps[i]);
    out.Sample(gauges[i].second);
  }
}

void WriteParticipants(const StatReport& report, PrometheusWriter& out) {
  const ParticipantStats::Kind kinds[] = {ParticipantStats::Kind::kWriter,
                                          ParticipantStats::Kind::kReader};
  out.Family(
      "atomap_participants", Type::kGauge,
      "Participant slots in use, not counting this command (a dead owner's until reclaimed).");
  for (const auto kind : kinds) {
    out.Sample(CountKind(report, kind).in_use, {{"kind", KindLabel(kind)}});
  }
  out.Family("atomap_participants_dead", Type::kGauge,
             "Participant slots in use whose owner a lock probe found dead.");
  for (const auto kind : kinds) {
    out.Sample(CountKind(report, kind).dead, {{"kind", KindLabel(kind)}});
  }
  out.Family("atomap_slot_capacity", Type::kGauge,
             "Participant slots of each kind (readers: 0 without a reader registry).");
  out.Sample(std::uint64_t{report.info.slot_capacity}, {{"kind", "writer"}});
  out.Sample(std::uint64_t{report.stats.reader_capacity}, {{"kind", "reader"}});
}

void WriteEpochs(const StatReport& report, PrometheusWriter& out) {
  const DomainStats& s = report.stats;
  out.Family("atomap_oldest_pin_age_seconds", Type::kGauge,
             "How long the oldest pin has held reclamation back, at least (0: none).");
  out.Sample(absl::ToDoubleSeconds(s.oldest_pin_age));
  out.Family("atomap_oldest_pin_epoch_lag", Type::kGauge,
             "Global epoch minus the oldest pinned epoch (0: nothing pinned).");
  out.Sample(s.any_pinned && s.global_epoch > s.oldest_pinned_epoch
                 ? s.global_epoch - s.oldest_pinned_epoch
                 : std::uint64_t{0});
  out.Family("atomap_oldest_pin_retained_bytes", Type::kGauge,
             "Pending garbage the oldest pin holds back (by retire batch).");
  out.Sample(s.oldest_pin_retained_bytes);
  out.Family("atomap_epoch_advances_total", Type::kCounter,
             "Advances of the global epoch since the domain was created.");
  out.Sample(s.epoch_advances);
}

void WriteAtoms(const StatReport& report, PrometheusWriter& out) {
  out.Family("atomap_atom_versions_total", Type::kCounter,
             "Versions published to each atom (its current version number).");
  for (const AtomReport& atom : report.atoms) {
    out.Sample(atom.version, {BytesLabel("atom", atom.name)});
  }
  out.Family("atomap_atom_entries", Type::kGauge, "Entries in each atom's current version.");
  for (const AtomReport& atom : report.atoms) {
    out.Sample(atom.entries, {BytesLabel("atom", atom.name)});
  }
  out.Family("atomap_atoms", Type::kGauge, "Atoms in the domain.");
  out.Sample(std::uint64_t{report.info.atom_count});
  out.Family("atomap_atom_capacity", Type::kGauge, "Atoms the domain can hold.");
  out.Sample(std::uint64_t{report.info.atom_capacity});
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) { return Escape(value, /*quotes=*/true); }

void PrometheusWriter::Family(const std::string& name, Type type, const std::string& help) {
  family_ = name;
  text_ += absl::StrCat("# HELP ", name, " ", Escape(help, /*quotes=*/false), "\n");
  text_ += absl::StrCat("# TYPE ", name, " ", type == Type::kCounter ? "counter" : "gauge", "\n");
}

void PrometheusWriter::Sample(std::uint64_t value, const Labels& labels) {
  Line(absl::StrCat(value), labels);
}

void PrometheusWriter::Sample(double value, const Labels& labels) {
  Line(absl::StrFormat("%.17g", value), labels);
}

void PrometheusWriter::Line(const std::string& value, const Labels& labels) {
  text_ += family_ + "{";
  const char* separator = "";
  for (const Labels* set : {static_cast<const Labels*>(&common_), &labels}) {
    for (const auto& [name, raw] : *set) {
      text_ += absl::StrCat(separator, name, "=\"", EscapeLabelValue(raw), "\"");
      separator = ",";
    }
  }
  text_ += absl::StrCat("} ", value, "\n");
}

std::string PrometheusText(const StatReport& report) {
  PrometheusWriter out({BytesLabel("path", report.path)});
  WriteSpace(report, out);
  WriteParticipants(report, out);
  WriteEpochs(report, out);
  WriteAtoms(report, out);
  out.Family("atomap_closed_cleanly", Type::kGauge,
             "1 if the last process to close the domain closed it normally.");
  out.Sample(std::uint64_t{report.closed_cleanly ? 1u : 0u});
  out.Family("atomap_damage", Type::kGauge,
             "1 if a list was found damaged (the figures then count its sound prefix).");
  out.Sample(std::uint64_t{report.stats.damage.ok() ? 0u : 1u});
  out.Family("atomap_info", Type::kGauge, "The library's version and the file format.");
  out.Sample(std::uint64_t{1}, {{"version", ATOMAP_VERSION_STRING},
                                {"format", std::to_string(ATOMAP_FORMAT_VERSION)}});
  return out.text();
}

}  // namespace atomap::cli

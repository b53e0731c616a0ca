// The Prometheus text exposition format, version 0.0.4, for `atomap stat --prometheus` (so that
// a node exporter's textfile collector can scrape a domain's figures).
//
// Every family is written whole, "# HELP" and "# TYPE" first, then its samples; every sample is
// labelled path="..." (path_hex="..." for a path that is not UTF-8). Label values are escaped
// (backslash, double quote, newline); an atom name that is not UTF-8 is labelled atom_hex.
// Names carry their unit (_bytes, _seconds); only counters end in _total.
#ifndef ATOMAP_TOOLS_PROMETHEUS_H_
#define ATOMAP_TOOLS_PROMETHEUS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stat_report.h"

namespace atomap::cli {

// A label value as the format writes it between double quotes: \\, \" and \n escaped.
std::string EscapeLabelValue(std::string_view value);

// Writes families of samples in the text format.
class PrometheusWriter {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;  // name, raw value
  enum class Type { kGauge, kCounter };

  // Every sample gets these labels first.
  explicit PrometheusWriter(Labels common) : common_(std::move(common)) {}

  // Starts a family: its HELP and TYPE lines. REQUIRES: counters' names end in _total.
  void Family(const std::string& name, Type type, const std::string& help);
  // One sample of the family last started: an exact integer, or a float ("%.17g").
  void Sample(std::uint64_t value, const Labels& labels = {});
  void Sample(double value, const Labels& labels = {});

  const std::string& text() const { return text_; }

 private:
  void Line(const std::string& value, const Labels& labels);

  Labels common_;
  std::string family_;
  std::string text_;
};

// `atomap stat --prometheus`: every figure of `report`; atomap_damage 1 when its lists were
// damaged (what could be read is still there).
std::string PrometheusText(const StatReport& report);

}  // namespace atomap::cli

#endif  // ATOMAP_TOOLS_PROMETHEUS_H_

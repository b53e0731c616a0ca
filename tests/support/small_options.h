// Options for a test domain: small tables and a modest maximum size, so that each test creates,
// maps and scans little.
#ifndef ATOMAP_TESTS_SUPPORT_SMALL_OPTIONS_H_
#define ATOMAP_TESTS_SUPPORT_SMALL_OPTIONS_H_

#include <cstdint>

#include "atomap/options.h"

namespace atomap {

inline Options SmallOptions(std::uint32_t slots = 16, std::uint32_t atoms = 64,
                            DomainKind kind = DomainKind::kFile,
                            std::uint64_t max_size = std::uint64_t{1} << 30) {
  Options options;
  options.kind = kind;
  options.max_size = max_size;
  options.slot_capacity = slots;
  options.atom_capacity = atoms;
  return options;
}

}  // namespace atomap

#endif  // ATOMAP_TESTS_SUPPORT_SMALL_OPTIONS_H_

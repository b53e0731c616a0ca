#include "support/filled_domain.h"

#include <catch2/catch.hpp>

#include "atomap/atomap.h"
#include "support/small_options.h"

namespace atomap {

void FillDomain(const std::string& path) {
  Domain domain = *Domain::Open(path, SmallOptions(4, 4));
  Atom atom = *domain.atom("a");
  for (int i = 0; i < 200; ++i) {
    REQUIRE(atom.swap([&](Transaction& tx) {
                  return tx.set("key-" + std::to_string(i % 50), std::string(40 + i % 7, 'v'));
                })
                .ok());
  }
}

}  // namespace atomap

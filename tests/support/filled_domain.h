// A small file domain with free lists and an atom, closed cleanly (the caches flushed to the
// shared lists): the starting point of the tests that damage a list and read the file back.
#ifndef ATOMAP_TESTS_SUPPORT_FILLED_DOMAIN_H_
#define ATOMAP_TESTS_SUPPORT_FILLED_DOMAIN_H_

#include <string>

namespace atomap {

// Creates the domain at `path` (4 slots, 4 atoms): atom "a" holds 50 keys after 200 swaps, whose
// replaced paths are on the free lists. Fails the current test if a swap fails.
void FillDomain(const std::string& path);

}  // namespace atomap

#endif  // ATOMAP_TESTS_SUPPORT_FILLED_DOMAIN_H_

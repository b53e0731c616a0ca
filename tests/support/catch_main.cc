// Catch2's main, compiled once for every test executable.
//
// GCC 12 with -fsanitize=address reports -Wmaybe-uninitialized inside libstdc++'s std::regex as
// Catch2's main instantiates it (a false positive in system headers that -Werror would make fatal
// in the asan preset); silence it for this file only.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

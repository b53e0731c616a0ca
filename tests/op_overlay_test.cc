// OpOverlay (src/atom/op_overlay.h): several batches over one transaction, as a combiner will
// run them: each batch all or nothing (O2), adds to one key merged, and the transaction written
// once at the end with every batch's net effect (O1, O3).
#include "atom/op_overlay.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "atomap/atom.h"
#include "atomap/codec.h"
#include "atomap/domain.h"
#include "atomap/ops.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap::internal {
namespace {

std::string U64(std::uint64_t n) { return std::string(Codec<std::uint64_t>::Encode(n)); }

struct Fixture {
  TempDir dir;
  Domain domain = *Domain::Open(dir.File("overlay.atomap"), SmallOptions());
  Atom atom = *domain.atom("a");
};

TEST_CASE("batches over one transaction: merged adds, a refused batch leaves nothing",
          "[op_overlay]") {
  Fixture f;
  const Op setup[] = {Op::Set("text", "abc"), Op::Set("gone", "x"), Op::AddU64("c", 10)};
  REQUIRE(f.atom.apply(setup).ok());

  std::vector<OpOutcome> first(3), bad(3), second(2), third(2);
  absl::StatusOr<Snapshot> after = f.atom.swap([&](Transaction& tx) -> absl::Status {
    OpOverlay overlay(tx);
    const Op a[] = {Op::AddU64("c", 1), Op::Erase("gone"), Op::Set("new", "1")};
    REQUIRE(overlay.Run(a, absl::MakeSpan(first)).ok());
    // A refused batch: its set and its add before the bad one must not survive (O2).
    const Op b[] = {Op::Set("new", "poison"), Op::AddU64("c", 100), Op::AddU64("text", 1)};
    const absl::Status refused = overlay.Run(b, absl::MakeSpan(bad));
    CHECK(absl::IsFailedPrecondition(refused));
    CHECK_THAT(std::string(refused.message()), Catch::Contains("'text'"));
    const Op c[] = {Op::AddU64("c", 1), Op::CompareAndSet("new", "1", "2")};
    REQUIRE(overlay.Run(c, absl::MakeSpan(second)).ok());
    const Op d[] = {Op::AddI64("c", -2), Op::Set("gone", "back")};
    REQUIRE(overlay.Run(d, absl::MakeSpan(third)).ok());
    // Nothing reached the transaction yet (O1).
    CHECK(tx.get("c") == U64(10));
    CHECK(tx.get("gone") == "x");
    CHECK_FALSE(tx.contains("new"));
    return overlay.WriteTo(tx);
  });
  REQUIRE(after.ok());
  CHECK(first[0].value == 11);
  CHECK(first[0].existed);
  CHECK(first[1].existed);
  CHECK_FALSE(first[2].existed);
  CHECK(second[0].value == 12);  // the refused batch's +100 is not there
  CHECK(second[1].matched);
  CHECK(third[0].value == 10);
  CHECK_FALSE(third[1].existed);  // erased by the first batch
  const Map& map = after->map();
  CHECK(map.get("c") == U64(10));
  CHECK(map.get("new") == "2");
  CHECK(map.get("gone") == "back");
  CHECK(map.get("text") == "abc");
  CHECK(map.size() == 4);
}

TEST_CASE("an erase of a key the base never had, after a set of it, writes nothing",
          "[op_overlay]") {
  Fixture f;
  std::vector<OpOutcome> outcomes(3);
  absl::StatusOr<Snapshot> after = f.atom.swap([&](Transaction& tx) -> absl::Status {
    OpOverlay overlay(tx);
    const Op ops[] = {Op::Set("k", "v"), Op::Erase("k"), Op::Erase("never")};
    REQUIRE(overlay.Run(ops, absl::MakeSpan(outcomes)).ok());
    return overlay.WriteTo(tx);
  });
  REQUIRE(after.ok());
  CHECK(outcomes[1].existed);
  CHECK_FALSE(outcomes[2].existed);
  CHECK(after->map().size() == 0);
}

}  // namespace
}  // namespace atomap::internal

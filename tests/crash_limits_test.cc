// Running out: the domain's maximum size, the file size limit (EFBIG, the stand-in for a full
// disk), and the slot table. Each is a clear error, and the atom is unchanged.
#include <signal.h>
#include <sys/resource.h>

#include <string>

#include <catch2/catch.hpp>

#include "absl/strings/str_cat.h"
#include "atomap/check.h"
#include "atomap/domain.h"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

// Swaps ever larger values into `atom` until one fails; returns that failure. The atom must
// then hold exactly what the last successful swap left.
absl::Status FillUntilFailure(Atom& atom) {
  for (int i = 0;; ++i) {
    absl::StatusOr<std::uint64_t> before = atom.version();
    REQUIRE(before.ok());
    absl::Status s = atom.swap([&](Transaction& tx) {
                           return tx.set(absl::StrCat("k", i), std::string(200000, 'v'));
                         })
                         .status();
    if (!s.ok()) {
      CHECK(*atom.version() == *before);
      absl::StatusOr<Snapshot> snap = atom.load();
      REQUIRE(snap.ok());
      CHECK(snap->map().size() == static_cast<std::uint64_t>(i));
      CHECK_FALSE(snap->map().contains(absl::StrCat("k", i)));
      return s;
    }
    REQUIRE(i < 10000);
  }
}

TEST_CASE("a full domain is ResourceExhausted and the atom is unchanged", "[limits]") {
  TempDir dir;
  Domain domain = *Domain::Open(dir.File("d.atomap"),
                                SmallOptions(2, 4, DomainKind::kFile, std::uint64_t{4} << 20));
  Atom atom = *domain.atom("a");
  const absl::Status full = FillUntilFailure(atom);
  CHECK(full.code() == absl::StatusCode::kResourceExhausted);
  CHECK_THAT(std::string(full.message()), Catch::Contains("d.atomap"));
  absl::StatusOr<CheckReport> report = domain.check();
  REQUIRE(report.ok());
  for (const std::string& p : report->problems) UNSCOPED_INFO(p);
  CHECK(report->ok());
}

TEST_CASE("a file size limit (EFBIG while growing) is an error and the atom is unchanged",
          "[limits]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  {
    Domain created =
        *Domain::Open(path, SmallOptions(2, 4, DomainKind::kFile, std::uint64_t{256} << 20));
  }
  const int rc = WaitChild(ForkChild([&] {
    signal(SIGXFSZ, SIG_IGN);  // growth then fails with EFBIG instead of killing the process
    struct rlimit limit = {std::uint64_t{3} << 20, std::uint64_t{3} << 20};
    if (setrlimit(RLIMIT_FSIZE, &limit) != 0) return 10;
    absl::StatusOr<Domain> domain =
        Domain::Open(path, SmallOptions(2, 4, DomainKind::kFile, std::uint64_t{256} << 20));
    if (!domain.ok()) return 11;
    Atom atom = *domain->atom("a");
    const absl::Status failed = FillUntilFailure(atom);
    if (failed.ok()) return 12;
    return domain->check()->ok() ? 0 : 13;
  }));
  CHECK(rc == 0);
  Domain domain =
      *Domain::Open(path, SmallOptions(2, 4, DomainKind::kFile, std::uint64_t{256} << 20));
  CHECK(domain.check()->ok());
}

TEST_CASE("a full slot table is ResourceExhausted", "[limits]") {
  TempDir dir;
  const std::string path = dir.File("d.atomap");
  Options one = SmallOptions(2, 4, DomainKind::kFile, std::uint64_t{16} << 20);
  one.slot_capacity = 1;
  Domain domain = *Domain::Open(path, one);
  Atom atom = *domain.atom("a");
  REQUIRE(atom.swap([](Transaction& tx) { return tx.set("x", "1"); }).ok());
  const int rc = WaitChild(ForkChild([&] {
    absl::StatusOr<Domain> other = Domain::Open(path, one);
    return other.status().code() == absl::StatusCode::kResourceExhausted ? 0 : 1;
  }));
  CHECK(rc == 0);
  CHECK(atom.load()->map().get("x") == "1");
  CHECK(domain.check()->ok());
}

}  // namespace
}  // namespace atomap

// Growth through the Domain: several processes grow one domain at once and write at their own
// offsets; base addresses never move and everyone ends up seeing the final size and every write.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <thread>
#include <vector>

#include "atomap/atomap.h"
#include "domain/domain_impl.h"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

using internal::Access;

constexpr int kProcesses = 4;
constexpr int kRounds = 6;
constexpr std::uint64_t kStep = std::uint64_t{256} << 10;
constexpr std::uint64_t kStamp = 4096;  // each (process, round) writes this many bytes

// The end of the range process `p` writes in round `r`; ranges never overlap.
std::uint64_t EndOf(std::uint64_t data_begin, int p, int r) {
  return data_begin + static_cast<std::uint64_t>(r * kProcesses + p + 1) * kStep;
}
std::uint8_t PatternOf(int p, int r, std::uint64_t i) {
  return static_cast<std::uint8_t>(p * 31 + r * 7 + i);
}

// Checks every write of every process; the number of bad bytes.
std::uint64_t CountBadBytes(internal::DomainImpl& impl) {
  std::uint64_t bad = 0;
  for (int p = 0; p < kProcesses; ++p) {
    for (int r = 0; r < kRounds; ++r) {
      const std::uint8_t* at = impl.arena().base() + EndOf(impl.data_begin(), p, r) - kStamp;
      for (std::uint64_t i = 0; i < kStamp; ++i) bad += at[i] != PatternOf(p, r, i);
    }
  }
  return bad;
}

TEST_CASE("processes grow one domain concurrently; bases never move", "[grow]") {
  TempDir dir;
  const std::string path = dir.File("grow.atomap");
  absl::StatusOr<Domain> parent = Domain::Open(path, SmallOptions(16, 16));
  REQUIRE(parent.ok());
  internal::DomainImpl& impl = Access(*parent);
  std::uint8_t* const parent_base = impl.arena().base();
  const std::uint64_t final_end = EndOf(impl.data_begin(), kProcesses - 1, kRounds - 1);

  struct Report {
    std::uint64_t shared_size;
    std::uint64_t mapped_size;
    std::uint64_t bad_bytes;
    std::uint32_t base_moved;
    std::uint32_t ok;
  };
  Gate start;
  Gate verify;
  ReportPipe grown;
  ReportPipe reports;
  std::vector<pid_t> children;
  for (int p = 0; p < kProcesses; ++p) {
    children.push_back(ForkChild([&, p] {
      start.Wait();
      absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(16, 16));
      if (!domain.ok()) return 1;
      internal::DomainImpl& mine = Access(*domain);
      std::uint8_t* const base = mine.arena().base();
      Report report{0, 0, 0, 0, 1};
      for (int r = 0; r < kRounds; ++r) {
        const std::uint64_t end = EndOf(mine.data_begin(), p, r);
        if (!mine.arena().Grow(end).ok()) report.ok = 0;
        std::uint8_t* at = base + end - kStamp;
        for (std::uint64_t i = 0; i < kStamp; ++i) at[i] = PatternOf(p, r, i);
      }
      const int done = 1;
      grown.Send(done);
      verify.Wait();  // everyone has finished growing and writing
      if (!mine.arena().Refresh().ok()) report.ok = 0;
      report.shared_size = mine.arena().SharedSize();
      report.mapped_size = mine.arena().mapped_size();
      report.bad_bytes = CountBadBytes(mine);
      report.base_moved = mine.arena().base() != base;
      reports.Send(report);
      return 0;
    }));
  }
  start.Open();
  for (int p = 0; p < kProcesses; ++p) REQUIRE(grown.Receive<int>().has_value());
  verify.Open();
  std::vector<Report> all;
  for (int p = 0; p < kProcesses; ++p) {
    std::optional<Report> report = reports.Receive<Report>();
    REQUIRE(report.has_value());
    all.push_back(*report);
  }
  for (pid_t child : children) CHECK(WaitChild(child) == 0);

  REQUIRE(impl.arena().Refresh().ok());
  const std::uint64_t final_size = impl.arena().SharedSize();
  CHECK(final_size >= final_end);
  CHECK(impl.arena().base() == parent_base);
  CHECK(impl.arena().mapped_size() == final_size);
  CHECK(CountBadBytes(impl) == 0);
  CHECK(parent->info().size == final_size);
  for (const Report& report : all) {
    CHECK(report.ok == 1);
    CHECK(report.shared_size == final_size);
    CHECK(report.mapped_size == final_size);
    CHECK(report.bad_bytes == 0);
    CHECK(report.base_moved == 0);
  }
}

TEST_CASE("threads of one process grow the domain concurrently", "[grow][threads]") {
  TempDir dir;
  absl::StatusOr<Domain> domain = Domain::Open(dir.File("threads.atomap"), SmallOptions(16, 16));
  REQUIRE(domain.ok());
  internal::DomainImpl& impl = Access(*domain);
  std::uint8_t* const base = impl.arena().base();
  std::vector<std::thread> threads;
  std::vector<int> failures(kProcesses, 0);
  for (int p = 0; p < kProcesses; ++p) {
    threads.emplace_back([&, p] {
      for (int r = 0; r < kRounds; ++r) {
        const std::uint64_t end = EndOf(impl.data_begin(), p, r);
        if (!impl.arena().Grow(end).ok()) ++failures[p];
        std::uint8_t* at = impl.arena().base() + end - kStamp;
        for (std::uint64_t i = 0; i < kStamp; ++i) at[i] = PatternOf(p, r, i);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int f : failures) CHECK(f == 0);
  CHECK(impl.arena().base() == base);
  CHECK(CountBadBytes(impl) == 0);
}

TEST_CASE("growth past the maximum is ResourceExhausted and changes nothing", "[grow]") {
  TempDir dir;
  absl::StatusOr<Domain> domain = Domain::Open(dir.File("full.atomap"), SmallOptions(16, 16));
  REQUIRE(domain.ok());
  internal::DomainImpl& impl = Access(*domain);
  const std::uint64_t before = impl.arena().SharedSize();
  CHECK(impl.arena().Grow(domain->info().max_size + 1).code() ==
        absl::StatusCode::kResourceExhausted);
  CHECK(impl.arena().SharedSize() == before);
}

TEST_CASE("a writable open gives a sparse domain file its blocks back", "[domain][grow]") {
  TempDir dir;
  const std::string path = dir.File("sparse.atomap");
  Options options = SmallOptions(8, 8, DomainKind::kFile, std::uint64_t{64} << 20);
  std::uint64_t size = 0;
  {
    absl::StatusOr<Domain> domain = Domain::Open(path, options);
    REQUIRE(domain.ok());
    Atom atom = *domain->atom("a");
    const std::string big(256 << 10, 'v');  // grows the domain well past its tables
    REQUIRE(atom.swap([&](Transaction& tx) { return tx.set("big", big); }).ok());
    size = Access(*domain).header().size.LoadRelaxed();
  }
  const auto allocated = [&] {
    struct stat st;
    REQUIRE(stat(path.c_str(), &st) == 0);
    return static_cast<std::uint64_t>(st.st_blocks) * 512;
  };
  REQUIRE(allocated() >= size);
  // A copy made sparsely, say: a hole in the middle of the domain.
  const int fd = open(path.c_str(), O_RDWR);
  REQUIRE(fd >= 0);
  // Two pages at the end of the data region: no table lives there, so every open still works.
  const std::uint64_t hole = (size & ~std::uint64_t{4095}) - 2 * 4096;
  REQUIRE(hole > Access(*Domain::Open(path, options)).data_begin());
  const int punched =
      fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(hole), 2 * 4096);
  close(fd);
  if (punched != 0) {
    WARN("skipped: this file system cannot punch holes");
    return;
  }
  REQUIRE(allocated() < size);
  Options reader = options;
  reader.read_only = true;
  absl::StatusOr<Domain> read = Domain::Open(path, reader);
  INFO(read.status());
  REQUIRE(read.ok());
  CHECK(allocated() < size);  // a reader changes nothing
  REQUIRE(Domain::Open(path, options).ok());
  CHECK(allocated() >= size);
}

}  // namespace
}  // namespace atomap

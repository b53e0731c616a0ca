// Validation on open: every header field damaged, truncated, empty and random files. Each gives
// the right code, a message naming the path and the field, and leaves the file's bytes unchanged.
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "atomap/domain.h"
#include "file/header.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

using internal::Header;

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A valid, closed domain's bytes.
std::string GoodDomainBytes(const TempDir& dir) {
  const std::string path = dir.File("good.atomap");
  {
    REQUIRE(Domain::Open(path, SmallOptions(8, 32)).ok());
  }
  return ReadBytes(path);
}

Header HeaderOf(const std::string& bytes) {
  Header h;
  std::memcpy(&h, bytes.data(), sizeof h);
  return h;
}

std::string WithHeader(std::string bytes, const Header& h) {
  std::memcpy(bytes.data(), &h, sizeof h);
  return bytes;
}

// Opens `bytes` as a file; checks the status and that the file is unchanged.
void ExpectRejected(const TempDir& dir, const std::string& name, const std::string& bytes,
                    absl::StatusCode code, const std::string& field) {
  const std::string path = dir.File(name);
  WriteBytes(path, bytes);
  absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(8, 32));
  INFO("case " << name << ": " << domain.status().ToString());
  REQUIRE_FALSE(domain.ok());
  CHECK(domain.status().code() == code);
  CHECK(domain.status().message().find(path) != std::string::npos);
  CHECK(domain.status().message().find(field) != std::string::npos);
  CHECK(ReadBytes(path) == bytes);
}

struct Mutation {
  const char* name;
  std::function<void(Header&)> apply;
  absl::StatusCode code;
  const char* field;  // the message must name it
};

TEST_CASE("every damaged header field is rejected, naming the field", "[validate]") {
  TempDir dir;
  const std::string good = GoodDomainBytes(dir);
  const Header h0 = HeaderOf(good);
  const auto kLoss = absl::StatusCode::kDataLoss;
  const auto kPre = absl::StatusCode::kFailedPrecondition;
  const std::vector<Mutation> mutations = {
      {"magic", [](Header& h) { h.magic[0] ^= 1; }, kPre, "magic"},
      {"magic_last", [](Header& h) { h.magic[7] = 0; }, kPre, "magic"},
      {"future_version", [](Header& h) { h.format_version = internal::kFormatVersion + 1; }, kPre,
       "format_version"},
      {"zero_version", [](Header& h) { h.format_version = 0; }, kLoss, "format_version"},
      {"older_version", [](Header& h) { h.format_version = internal::kFormatVersion - 1; }, kPre,
       "format_version"},
      {"endian", [](Header& h) { h.endian_check = 0x04030201; }, kPre, "endian_check"},
      {"word_bytes", [](Header& h) { h.word_bytes = 4; }, kPre, "word_bytes"},
      {"pointer_bytes", [](Header& h) { h.pointer_bytes = 4; }, kPre, "pointer_bytes"},
      {"page_bytes", [](Header& h) { h.page_bytes = 65536; }, kPre, "page_bytes"},
      {"hash_kind", [](Header& h) { h.hash_kind = 7; }, kLoss, "hash_kind"},
      {"hash_kind_zero", [](Header& h) { h.hash_kind = 0; }, kLoss, "hash_kind"},
      {"slot_capacity_zero", [](Header& h) { h.slot_capacity = 0; }, kLoss, "slot_capacity"},
      {"slot_capacity_huge", [](Header& h) { h.slot_capacity = 0xFFFFFFFF; }, kLoss,
       "slot_capacity"},
      {"slot_capacity_other", [](Header& h) { h.slot_capacity = 9; }, kLoss, "atom_table_offset"},
      {"atom_capacity_zero", [](Header& h) { h.atom_capacity = 0; }, kLoss, "atom_capacity"},
      {"atom_capacity_huge", [](Header& h) { h.atom_capacity = 0x80000000; }, kLoss,
       "atom_capacity"},
      {"atom_capacity_other", [](Header& h) { h.atom_capacity = 1000; }, kLoss, "data_begin"},
      {"allocator_offset", [](Header& h) { h.allocator_state_offset += 64; }, kLoss,
       "allocator_state_offset"},
      {"allocator_offset_zero", [](Header& h) { h.allocator_state_offset = 0; }, kLoss,
       "allocator_state_offset"},
      {"slot_table_misaligned", [](Header& h) { h.slot_table_offset += 1; }, kLoss,
       "slot_table_offset"},
      {"atom_table_overlaps", [](Header& h) { h.atom_table_offset = h.slot_table_offset; }, kLoss,
       "atom_table_offset"},
      {"atom_table_past_end", [](Header& h) { h.atom_table_offset = ~std::uint64_t{0}; }, kLoss,
       "atom_table_offset"},
      {"data_begin_early", [](Header& h) { h.data_begin -= 4096; }, kLoss, "data_begin"},
      {"data_begin_misaligned", [](Header& h) { h.data_begin += 8; }, kLoss, "data_begin"},
      {"max_size_small", [](Header& h) { h.max_size = h.data_begin - 4096; }, kLoss, "max_size"},
      {"max_size_unaligned", [](Header& h) { h.max_size += 1; }, kLoss, "max_size"},
      {"max_size_huge", [](Header& h) { h.max_size = std::uint64_t{1} << 62; }, kLoss, "max_size"},
      {"size_past_file",
       [](Header& h) { h.size.InitPlain(h.size.LoadRelaxed() + (std::uint64_t{1} << 20)); }, kLoss,
       "size"},
      {"size_past_max", [](Header& h) { h.size.InitPlain(h.max_size + 4096); }, kLoss, "size"},
      {"size_unaligned", [](Header& h) { h.size.InitPlain(h.size.LoadRelaxed() - 8); }, kLoss,
       "size"},
      {"size_before_data", [](Header& h) { h.size.InitPlain(4096); }, kLoss, "size"},
      {"state", [](Header& h) { h.state.InitPlain(9); }, kLoss, "state"},
      {"slot_high_water_above_capacity",
       [](Header& h) { h.slot_high_water.InitPlain(h.slot_capacity + 1); }, kLoss,
       "slot_high_water"},
      {"reader_capacity_zero", [](Header& h) { h.reader_capacity = 0; }, kLoss, "reader_capacity"},
      {"reader_capacity_huge", [](Header& h) { h.reader_capacity = 0x80000000; }, kLoss,
       "reader_capacity"},
  };
  for (const Mutation& m : mutations) {
    for (const bool reseal : {false, true}) {
      Header h = h0;
      m.apply(h);
      // Resealed: the checksum is recomputed, so the field check itself must catch it.
      if (reseal) h.checksum = internal::HeaderChecksum(h);
      ExpectRejected(dir, std::string(m.name) + (reseal ? "_resealed" : ""), WithHeader(good, h),
                     m.code, m.field);
    }
  }
}

TEST_CASE("a changed immutable field without a new checksum is caught by the checksum",
          "[validate]") {
  TempDir dir;
  const std::string good = GoodDomainBytes(dir);
  Header h = HeaderOf(good);
  h.hash_seed ^= 1;
  ExpectRejected(dir, "seed", WithHeader(good, h), absl::StatusCode::kDataLoss, "checksum");
  // Format 3's checksum covers all of [0, 128): the fields after it too.
  h = HeaderOf(good);
  h.domain_id ^= 1;
  ExpectRejected(dir, "domain_id", WithHeader(good, h), absl::StatusCode::kDataLoss, "checksum");
  h = HeaderOf(good);
  h.reader_mode ^= 1;
  ExpectRejected(dir, "reader_mode", WithHeader(good, h), absl::StatusCode::kDataLoss, "checksum");
  h = HeaderOf(good);
  h.checksum ^= std::uint64_t{1} << 40;
  ExpectRejected(dir, "checksum", WithHeader(good, h), absl::StatusCode::kDataLoss, "checksum");
  // Every single bit of the checksummed bytes matters.
  for (std::size_t bit = 0; bit < offsetof(Header, checksum) * 8; bit += 7) {
    std::string bytes = good;
    bytes[bit / 8] = static_cast<char>(bytes[bit / 8] ^ (1 << (bit % 8)));
    const std::string path = dir.File("bit" + std::to_string(bit));
    WriteBytes(path, bytes);
    absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(8, 32));
    INFO("bit " << bit << ": " << domain.status().ToString());
    CHECK_FALSE(domain.ok());
    CHECK(domain.status().message().find(path) != std::string::npos);
    CHECK(ReadBytes(path) == bytes);
  }
}

TEST_CASE("truncated, empty and random files are rejected and left unchanged", "[validate]") {
  TempDir dir;
  const std::string good = GoodDomainBytes(dir);
  const Header h = HeaderOf(good);
  ExpectRejected(dir, "empty", "", absl::StatusCode::kFailedPrecondition, "empty");
  ExpectRejected(dir, "cut_in_header", good.substr(0, 100), absl::StatusCode::kDataLoss,
                 "truncated");
  ExpectRejected(dir, "cut_at_header", good.substr(0, internal::kHeaderBytes),
                 absl::StatusCode::kDataLoss, "size");
  ExpectRejected(dir, "cut_before_size", good.substr(0, h.size.LoadRelaxed() - 4096),
                 absl::StatusCode::kDataLoss, "truncated");
  ExpectRejected(dir, "tiny_foreign", "hello", absl::StatusCode::kFailedPrecondition, "magic");

  std::mt19937_64 rng(12345);
  for (int i = 0; i < 40; ++i) {
    const std::size_t length = std::uniform_int_distribution<std::size_t>(1, 3 * 4096)(rng);
    std::string bytes(length, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    // Half of them carry our magic (and version) so that validation goes past the first check.
    if (i % 2 == 1 && length >= 16) std::memcpy(bytes.data(), good.data(), 16);
    const std::string path = dir.File("random" + std::to_string(i));
    WriteBytes(path, bytes);
    absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(8, 32));
    INFO("random file " << i << ": " << domain.status().ToString());
    REQUIRE_FALSE(domain.ok());
    CHECK((domain.status().code() == absl::StatusCode::kDataLoss ||
           domain.status().code() == absl::StatusCode::kFailedPrecondition));
    CHECK(domain.status().message().find(path) != std::string::npos);
    CHECK(domain.status().message().find("field") != std::string::npos);
    CHECK(ReadBytes(path) == bytes);
  }
}

TEST_CASE("the good domain still opens (the table's baseline)", "[validate]") {
  TempDir dir;
  const std::string good = GoodDomainBytes(dir);
  const std::string path = dir.File("copy.atomap");
  WriteBytes(path, good);
  CHECK(Domain::Open(path, SmallOptions(8, 32)).ok());
}

}  // namespace
}  // namespace atomap

// Linearizability of an atom: histories of concurrent swaps and loads, and of the declarative
// writes (apply, add), recorded by several processes are checked against a sequential register
// (support/linearizability.h). The checker is tested first on histories with a known answer, so
// that a pass below means something.
#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <random>
#include <string_view>
#include <vector>

#include "atomap/atom.h"
#include "atomap/codec.h"
#include "atomap/domain.h"
#include "atomap/ops.h"
#include "atomap/typed_map.h"
#include "support/linearizability.h"
#include "support/process.h"
#include "support/small_options.h"
#include "support/temp_dir.h"

namespace atomap {
namespace {

using Kind = RegisterOp::Kind;

RegisterOp Op(Kind kind, std::uint32_t process, std::uint64_t value, std::int64_t invoke,
              std::int64_t respond) {
  return RegisterOp{kind, process, value, invoke, respond};
}

TEST_CASE("the checker accepts linearizable histories and rejects the others",
          "[linearizability]") {
  // Sequential: write 5, read 5, increment to 6.
  CHECK(CheckLinearizable({Op(Kind::kWrite, 0, 5, 0, 1), Op(Kind::kRead, 1, 5, 2, 3),
                           Op(Kind::kIncrement, 0, 6, 4, 5)})
            .linearizable);
  // A read overlapping a write may return the old or the new value.
  CHECK(
      CheckLinearizable({Op(Kind::kWrite, 0, 7, 0, 10), Op(Kind::kRead, 1, 0, 1, 2)}).linearizable);
  CHECK(
      CheckLinearizable({Op(Kind::kWrite, 0, 7, 0, 10), Op(Kind::kRead, 1, 7, 1, 2)}).linearizable);
  // A read that begins after a write returned must not see the older value (a stale snapshot).
  CHECK(
      !CheckLinearizable({Op(Kind::kWrite, 0, 7, 0, 1), Op(Kind::kRead, 1, 0, 2, 3)}).linearizable);
  // Two increments of 0 cannot both return 1 (a lost update).
  CHECK(!CheckLinearizable({Op(Kind::kIncrement, 0, 1, 0, 10), Op(Kind::kIncrement, 1, 1, 0, 10)})
             .linearizable);
  // A compare-and-set matches only the current value, and a failed one needs another value.
  RegisterOp cas = Op(Kind::kCompareAndSet, 1, 9, 2, 3);
  cas.expected = 5;
  cas.matched = true;
  RegisterOp failed = cas;
  failed.matched = false;
  CHECK(CheckLinearizable({Op(Kind::kWrite, 0, 5, 0, 1), cas, Op(Kind::kRead, 0, 9, 4, 5)})
            .linearizable);
  CHECK(!CheckLinearizable({Op(Kind::kWrite, 0, 5, 0, 1), failed}).linearizable);
  CHECK(CheckLinearizable({Op(Kind::kWrite, 0, 6, 0, 1), failed, Op(Kind::kRead, 0, 6, 4, 5)})
            .linearizable);
  // Two compares of 5 cannot both match (unless something wrote 5 again in between).
  RegisterOp cas2 = cas;
  cas2.process = 2;
  cas2.value = 10;
  CHECK(!CheckLinearizable({Op(Kind::kWrite, 0, 5, 0, 1), cas, cas2}).linearizable);
  // Reads must not go back in time: 1 then 0 after an increment that returned 1.
  CHECK(!CheckLinearizable({Op(Kind::kIncrement, 0, 1, 0, 1), Op(Kind::kRead, 1, 1, 2, 3),
                            Op(Kind::kRead, 2, 0, 4, 5)})
             .linearizable);
}

using Register = TypedTransaction<std::string, std::uint64_t>;

std::uint64_t ValueIn(const Snapshot& snap) {
  return TypedMap<std::string, std::uint64_t>(snap.map()).get("x").value_or(0);
}

// Which write API a history uses: swap with a function, or the declarative ops (atomap/ops.h).
enum class Writes { kSwap, kApply };

// A write of `value` and an increment (returning the new value), through `writes`' API. The
// declarative increment alternates between add() and an apply of one AddU64, so both are
// checked; both are read-modify-writes that return the new value, the model's increment.
absl::Status Write(Atom& atom, Writes writes, std::uint64_t value) {
  if (writes == Writes::kSwap) {
    return atom.swap([&](Transaction& tx) { return Register(tx).set("x", value); }).status();
  }
  const auto bytes = Codec<std::uint64_t>::Encode(value);  // outlives the op's view of it
  const atomap::Op op = atomap::Op::Set("x", bytes);
  return atom.apply(absl::MakeConstSpan(&op, 1)).status();
}
absl::StatusOr<std::uint64_t> Increment(Atom& atom, Writes writes, int i) {
  if (writes == Writes::kSwap) {
    absl::StatusOr<Snapshot> after = atom.swap([](Transaction& tx) {
      Register reg(tx);
      return reg.set("x", reg.get("x").value_or(0) + 1);
    });
    if (!after.ok()) return after.status();
    return ValueIn(*after);
  }
  if (i % 2 == 0) return atom.add("x", 1);
  const atomap::Op op = atomap::Op::AddU64("x", 1);
  absl::StatusOr<ApplyResult> result = atom.apply(absl::MakeConstSpan(&op, 1));
  if (!result.ok()) return result.status();
  // No check of the value in result->version: it is the version that applied the batch, and
  // with combining other writers' batches of that version may follow this one there
  // (apply_test checks the version against the outcome where nothing combines).
  return result->outcomes[0].value;
}

// A compare-and-set of one Op, from the value last seen to `desired` (kApply histories only).
absl::Status CompareAndSet(Atom& atom, RegisterOp& op) {
  absl::StatusOr<Snapshot> seen = atom.load();  // before invoke_ns: it only picks `expected`
  if (!seen.ok()) return seen.status();
  op.expected = ValueIn(*seen);
  const auto expected = Codec<std::uint64_t>::Encode(op.expected);
  const auto desired = Codec<std::uint64_t>::Encode(op.value);
  const atomap::Op cas = atomap::Op::CompareAndSet(
      "x", op.expected == 0 ? std::nullopt : std::optional<std::string_view>(expected), desired);
  op.invoke_ns = MonotonicNanos();
  absl::StatusOr<ApplyResult> result = atom.apply(absl::MakeConstSpan(&cas, 1));
  if (!result.ok()) return result.status();
  op.matched = result->outcomes[0].matched;
  return absl::OkStatus();
}

// One process's share of a history: a random mix of loads, writes of unique values and
// increments (and, for kApply, compare-and-sets), each timed around the library call.
int RecordOps(const std::string& path, std::uint32_t process, int ops, Gate& start, ReportPipe& out,
              Writes writes) {
  absl::StatusOr<Domain> domain = Domain::Open(path, SmallOptions(16, 4));
  if (!domain.ok()) return 90;
  Atom atom = *domain->atom("register");
  std::mt19937 rng(process * 7919 + 1);
  start.Wait();
  for (int i = 0; i < ops; ++i) {
    RegisterOp op{};
    op.process = process;
    const unsigned choice = rng() % (writes == Writes::kApply ? 4 : 3);
    op.invoke_ns = MonotonicNanos();
    if (choice == 3) {
      op.kind = Kind::kCompareAndSet;
      op.value = (std::uint64_t{process} + 1) << 40 | static_cast<std::uint64_t>(i) << 8 | 1;
      if (!CompareAndSet(atom, op).ok()) return 94;
    } else if (choice == 0) {
      op.kind = Kind::kRead;
      absl::StatusOr<Snapshot> snap = atom.load();
      if (!snap.ok()) return 91;
      op.value = ValueIn(*snap);
    } else if (choice == 1) {
      op.kind = Kind::kWrite;
      op.value = (std::uint64_t{process} + 1) << 40 | static_cast<std::uint64_t>(i) << 8;
      if (!Write(atom, writes, op.value).ok()) return 92;
    } else {
      op.kind = Kind::kIncrement;
      absl::StatusOr<std::uint64_t> after = Increment(atom, writes, i);
      if (!after.ok()) return 93;
      op.value = *after;
    }
    op.respond_ns = MonotonicNanos();
    out.Send(op);
  }
  return 0;
}

// Records kHistories histories of `writes`' API and loads from 4 processes and checks each.
void CheckHistories(Writes writes) {
  constexpr std::uint32_t kProcesses = 4;
  constexpr int kOpsPerProcess = 75;  // 300 operations a history
  constexpr int kHistories = 5;
  for (int h = 0; h < kHistories; ++h) {
    TempDir dir;
    const std::string path = dir.File("register.atomap");
    Gate start;
    ReportPipe ops;
    std::vector<pid_t> children;
    for (std::uint32_t p = 0; p < kProcesses; ++p) {
      children.push_back(
          ForkChild([&, p] { return RecordOps(path, p, kOpsPerProcess, start, ops, writes); }));
    }
    ops.CloseWriteEnd();  // a child that fails early ends the reads below, not hangs them
    start.Open();
    std::vector<RegisterOp> history;
    for (std::uint32_t i = 0; i < kProcesses * kOpsPerProcess; ++i) {
      std::optional<RegisterOp> op = ops.Receive<RegisterOp>();
      REQUIRE(op.has_value());
      history.push_back(*op);
    }
    for (pid_t child : children) CHECK(WaitChild(child) == 0);
    const LinearizabilityResult result = CheckLinearizable(history);
    INFO("history " << h << ": " << history.size() << " operations, " << result.states_explored
                    << " states explored");
    CHECK(result.linearizable);
  }
}

TEST_CASE("histories of concurrent swaps and loads from several processes are linearizable",
          "[linearizability][processes]") {
  CheckHistories(Writes::kSwap);
}

TEST_CASE("histories of apply (set, add, compare-and-set), add and loads from several processes "
          "are linearizable",
          "[linearizability][processes][apply]") {
  CheckHistories(Writes::kApply);
}

}  // namespace
}  // namespace atomap

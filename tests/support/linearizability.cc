#include "support/linearizability.h"

#include <time.h>

#include <algorithm>
#include <limits>
#include <optional>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"

namespace atomap {
namespace {

// The register after applying `op` to `value`, or nullopt if `op`'s result contradicts it.
std::optional<std::uint64_t> Apply(const RegisterOp& op, std::uint64_t value) {
  switch (op.kind) {
    case RegisterOp::Kind::kRead:
      return op.value == value ? std::optional<std::uint64_t>(value) : std::nullopt;
    case RegisterOp::Kind::kWrite:
      return op.value;
    case RegisterOp::Kind::kIncrement:
      return op.value == value + 1 ? std::optional<std::uint64_t>(value + 1) : std::nullopt;
    case RegisterOp::Kind::kCompareAndSet:
      if (op.matched != (op.expected == value)) return std::nullopt;
      return op.matched ? op.value : value;
  }
  return std::nullopt;
}

class Search {
 public:
  explicit Search(std::vector<RegisterOp> ops) : ops_(std::move(ops)), done_(ops_.size(), false) {
    std::sort(ops_.begin(), ops_.end(),
              [](const RegisterOp& a, const RegisterOp& b) { return a.invoke_ns < b.invoke_ns; });
  }

  bool Run(std::uint64_t value) { return Linearize(value, 0); }
  std::uint64_t explored() const { return explored_; }

 private:
  using Memo = std::pair<std::vector<bool>, std::uint64_t>;

  // Tries every operation that may come next: one not yet placed that was invoked before the
  // earliest response among those not yet placed (anything later would break real-time order).
  bool Linearize(std::uint64_t value, std::size_t placed) {
    if (placed == ops_.size()) return true;
    if (!seen_.insert(Memo(done_, value)).second) return false;  // this state failed before
    ++explored_;
    std::int64_t earliest_response = std::numeric_limits<std::int64_t>::max();
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      if (!done_[i]) earliest_response = std::min(earliest_response, ops_[i].respond_ns);
    }
    for (std::size_t i = 0; i < ops_.size() && ops_[i].invoke_ns <= earliest_response; ++i) {
      if (done_[i]) continue;
      std::optional<std::uint64_t> next = Apply(ops_[i], value);
      if (!next) continue;
      done_[i] = true;
      if (Linearize(*next, placed + 1)) return true;
      done_[i] = false;
    }
    return false;
  }

  std::vector<RegisterOp> ops_;
  std::vector<bool> done_;
  absl::flat_hash_set<Memo> seen_;
  std::uint64_t explored_ = 0;
};

}  // namespace

LinearizabilityResult CheckLinearizable(const std::vector<RegisterOp>& history,
                                        std::uint64_t initial) {
  Search search(history);
  LinearizabilityResult result;
  result.linearizable = search.Run(initial);
  result.states_explored = search.explored();
  return result;
}

std::int64_t MonotonicNanos() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace atomap

// Combining (combine.h has the invariants C1-C7 and the edges E1-E3).
//
// The mailbox payload holds the batch encoded op after op: an 8-byte head {u8 kind, u8 flags
// (bit 0: has a value, bit 1: has an expected value), u16 key bytes, u16 value bytes, u16
// expected bytes}, then an add's 8-byte delta, then the key, the expected value and the value.
#include "atom/combine.h"

#include <sched.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "atom/atom_access.h"
#include "atom/op_overlay.h"
#include "atom/participant.h"
#include "atom/publish.h"
#include "atom/runtime.h"
#include "common/crash_point.h"
#include "domain/domain_impl.h"
#include "file/atom_table.h"
#include "file/slot.h"
#include "file/slot_table.h"
#include "hamt/access.h"

namespace atomap::internal {
namespace {

using hamt::CombineEntry;
using hamt::CombineStatus;
using hamt::kMaxCombinedOps;

constexpr std::size_t kPayloadBytes = CombineMailbox::kPayloadWords * sizeof(std::uint64_t);
constexpr std::size_t kOpHeadBytes = 8;
constexpr std::uint8_t kHasValue = 1;
constexpr std::uint8_t kHasExpected = 2;

struct OpHead {
  std::uint8_t kind;
  std::uint8_t flags;
  std::uint16_t key_bytes;
  std::uint16_t value_bytes;
  std::uint16_t expected_bytes;
};
static_assert(sizeof(OpHead) == kOpHeadBytes);

std::size_t EncodedBytes(const Op& op) {
  return kOpHeadBytes + (op.is_add() ? sizeof(std::uint64_t) : 0) + op.key().size() +
         op.expected().value_or("").size() + op.value().value_or("").size();
}

// The batch's encoding into `out`; its byte count. REQUIRES: Combinable(ops).
std::size_t Encode(absl::Span<const Op> ops, char* out) {
  std::size_t at = 0;
  auto put = [&](const void* bytes, std::size_t n) {
    if (n != 0) std::memcpy(out + at, bytes, n);
    at += n;
  };
  for (const Op& op : ops) {
    const std::string_view value = op.value().value_or("");
    const std::string_view expected = op.expected().value_or("");
    const OpHead head{static_cast<std::uint8_t>(op.kind()),
                      static_cast<std::uint8_t>((op.value() ? kHasValue : 0) |
                                                (op.expected() ? kHasExpected : 0)),
                      static_cast<std::uint16_t>(op.key().size()),
                      static_cast<std::uint16_t>(value.size()),
                      static_cast<std::uint16_t>(expected.size())};
    put(&head, sizeof head);
    if (op.is_add()) {
      const std::uint64_t delta = op.delta();
      put(&delta, sizeof delta);
    }
    put(op.key().data(), op.key().size());
    put(expected.data(), expected.size());
    put(value.data(), value.size());
  }
  return at;
}

// A batch read from another slot's mailbox: its bytes, and ops that view them. Never moved
// once decoded (the ops' views would dangle): the scan keeps them in a vector reserved first.
struct PostedBatch {
  std::uint64_t seq = 0;
  std::array<char, kPayloadBytes> bytes;
  absl::InlinedVector<Op, kMaxCombinedOps> ops;
};

// The ops of `bytes[0, size)`, `count` of them, into b.ops; false if they do not parse (a
// mailbox damaged in the file: nothing of it is applied).
bool Decode(PostedBatch& b, std::size_t count, std::size_t size) {
  std::size_t at = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (size - at < kOpHeadBytes) return false;
    OpHead head;
    std::memcpy(&head, b.bytes.data() + at, sizeof head);
    at += sizeof head;
    const auto kind = static_cast<Op::Kind>(head.kind);
    std::uint64_t delta = 0;
    if (kind == Op::Kind::kAddU64 || kind == Op::Kind::kAddI64) {
      if (size - at < sizeof delta) return false;
      std::memcpy(&delta, b.bytes.data() + at, sizeof delta);
      at += sizeof delta;
    }
    if (std::size_t{head.key_bytes} + head.expected_bytes + head.value_bytes > size - at) {
      return false;
    }
    const std::string_view key(b.bytes.data() + at, head.key_bytes);
    const std::string_view expected(key.data() + key.size(), head.expected_bytes);
    const std::string_view value(expected.data() + expected.size(), head.value_bytes);
    at += key.size() + expected.size() + value.size();
    const bool has_value = (head.flags & kHasValue) != 0;
    const bool has_expected = (head.flags & kHasExpected) != 0;
    switch (kind) {
      case Op::Kind::kSet:
        if (!has_value) return false;
        b.ops.push_back(Op::Set(key, value));
        break;
      case Op::Kind::kErase:
        b.ops.push_back(Op::Erase(key));
        break;
      case Op::Kind::kAddU64:
        b.ops.push_back(Op::AddU64(key, delta));
        break;
      case Op::Kind::kAddI64:
        b.ops.push_back(Op::AddI64(key, static_cast<std::int64_t>(delta)));
        break;
      case Op::Kind::kCompareAndSet:
        b.ops.push_back(Op::CompareAndSet(
            key, has_expected ? std::optional<std::string_view>(expected) : std::nullopt,
            has_value ? std::optional<std::string_view>(value) : std::nullopt));
        break;
      default:
        return false;
    }
  }
  return at == size;
}

// (E1) Posts `ops` for atom `atom` in the caller's own mailbox; the batch's seq (C5).
std::uint64_t Post(CombineMailbox& mailbox, std::uint32_t atom, absl::Span<const Op> ops) {
  std::array<std::uint64_t, CombineMailbox::kPayloadWords> words{};
  const std::size_t size = Encode(ops, reinterpret_cast<char*>(words.data()));
  const std::uint64_t seq = (mailbox.post.LoadRelaxed() >> 1) + 1;
  mailbox.post.StoreRelaxed(seq << 1 | 1);
  // (E1) Release stores of the batch: each is ordered after the busy mark above, so a reader
  // whose acquire load sees any of them sees the mark (or later) when it reloads `post`. (No
  // fence: the same order on x86-64 at no cost, and one that TSan models.)
  mailbox.atom.StoreRelease(atom);
  mailbox.shape.StoreRelease(static_cast<std::uint32_t>(ops.size() | size << 8));
  ATOMAP_CRASH_POINT(kCombineMidPost);
  for (std::size_t i = 0; i < (size + 7) / 8; ++i) mailbox.payload[i].StoreRelease(words[i]);
  mailbox.post.StoreRelease(seq << 1);  // (E1)
  return seq;
}

// (E2), (E3) The batch another slot has pending for atom `atom`, into `b`; false if there is
// none (nothing posted, being written, acknowledged, another atom's, or unreadable).
bool ReadPost(const CombineMailbox& mailbox, std::uint32_t atom, PostedBatch& b) {
  const std::uint64_t post = mailbox.post.LoadAcquire();  // (E2)
  if ((post & 1) != 0 || post == 0) return false;
  b.seq = post >> 1;
  if (mailbox.acked.LoadAcquire() >= b.seq) return false;  // (E3)
  // (E2) Acquire loads of the batch, then the reload of `post`: a word of a later post read here
  // makes the reload see that post's busy mark or later (E1), and the batch is dropped.
  if (mailbox.atom.LoadAcquire() != atom) return false;
  const std::uint32_t shape = mailbox.shape.LoadAcquire();
  const std::size_t count = shape & 0xff;
  const std::size_t size = shape >> 8;
  if (count == 0 || count > kMaxCombinedOps || size > kPayloadBytes) return false;
  std::array<std::uint64_t, CombineMailbox::kPayloadWords> words;
  for (std::size_t i = 0; i < (size + 7) / 8; ++i) words[i] = mailbox.payload[i].LoadAcquire();
  if (mailbox.post.LoadRelaxed() != post) return false;  // rewritten while read
  std::memcpy(b.bytes.data(), words.data(), size);
  return Decode(b, count, size);
}

const CombineEntry* FindEntry(absl::Span<const CombineEntry> table, std::uint32_t slot) {
  for (const CombineEntry& e : table) {
    if (e.slot == slot) return &e;
  }
  return nullptr;
}

// (C3) Whether `table` records (slot, seq) or a later batch of the slot.
bool Covered(absl::Span<const CombineEntry> table, std::uint32_t slot, std::uint64_t seq) {
  const CombineEntry* e = FindEntry(table, slot);
  return e != nullptr && e->seq >= seq;
}

// (C2) `e` replaces its slot's entry in a commit's table.
void Install(hamt::CombineTable& table, const CombineEntry& e) {
  table.erase(std::remove_if(table.begin(), table.end(),
                             [&](const CombineEntry& old) { return old.slot == e.slot; }),
              table.end());
  table.push_back(e);
}

CombineEntry EntryFor(std::uint32_t slot, std::uint64_t seq, std::size_t ops, CombineStatus s) {
  CombineEntry e{};
  e.slot = slot;
  e.op_count = static_cast<std::uint8_t>(ops);
  e.status = static_cast<std::uint8_t>(s);
  e.seq = seq;
  return e;  // version 0: the record this entry is written in
}

// One batch run on the overlay: its entry, applied with its outcomes, or refused (O2: the
// overlay then holds nothing of it).
CombineEntry RunBatch(OpOverlay& overlay, std::uint32_t slot, std::uint64_t seq,
                      absl::Span<const Op> ops) {
  CombineEntry e = EntryFor(slot, seq, ops.size(), CombineStatus::kApplied);
  std::array<OpOutcome, kMaxCombinedOps> outcomes;
  OpOverlay::RunFailure failure;
  if (!overlay.Run(ops, absl::MakeSpan(outcomes.data(), ops.size()), &failure).ok()) {
    e.status = static_cast<std::uint8_t>(CombineStatus::kRefused);
    e.refused_op = static_cast<std::uint8_t>(failure.op);
    e.values[failure.op] = failure.value_bytes;
    return e;
  }
  for (std::size_t i = 0; i < ops.size(); ++i) {
    e.values[i] = outcomes[i].value;
    e.matched |= static_cast<std::uint16_t>(outcomes[i].matched ? 1u << i : 0u);
    e.existed |= static_cast<std::uint16_t>(outcomes[i].existed ? 1u << i : 0u);
  }
  return e;
}

// Where a poster's batch ended: its entry and the version that holds it.
struct Resolution {
  CombineEntry entry;
  Offset version = kNullOffset;
  std::optional<Snapshot> published;  // the version, when this thread's own CAS published it
};

struct Poster {
  Runtime* runtime;
  std::uint32_t index;
  Participant* participant;
  absl::Span<const Op> ops;
  std::uint64_t seq;
};

// The table of `version` (empty for the empty map).
absl::Span<const CombineEntry> TableOf(const Arena& arena, Offset version) {
  if (version == kNullOffset) return {};
  std::uint64_t count = 0;
  const CombineEntry* entries = hamt::CombineEntriesAt(arena, version, &count);
  return absl::MakeConstSpan(entries, count);
}

// Every other slot's pending batch for the atom that `base` has not applied (C3), run on the
// overlay after the poster's own; their entries appended to `made`. The batches' bytes go to
// `posted`, which must outlive the overlay's WriteTo.
void RunOthers(const Poster& p, absl::Span<const CombineEntry> base, OpOverlay& overlay,
               std::vector<PostedBatch>& posted, hamt::CombineTable& made) {
  const SlotTable& slots = p.runtime->domain().slots();
  const std::uint32_t mine = p.participant->slot();
  const std::uint32_t end = std::min(slots.high_water(), slots.capacity());
  posted.clear();
  posted.reserve(end);  // never reallocated below: the overlay holds views of the batches
  for (std::uint32_t t = 0; t < end; ++t) {
    if (t == mine) continue;
    PostedBatch& b = posted.emplace_back();
    if (!ReadPost(slots.At(t).mailbox, p.index, b) || Covered(base, t, b.seq)) {
      posted.pop_back();
      continue;
    }
    made.push_back(RunBatch(overlay, t, b.seq, b.ops));
  }
}

// After a published combine: tells each other poster whose batch `made` resolved to stop
// waiting and look (a hint on the poster's own cache line, which it spins on; it trusts only
// the version's table).
void Notify(const Poster& p, absl::Span<const CombineEntry> made) {
  const SlotTable& slots = p.runtime->domain().slots();
  // Partner: the poster's relaxed load in WaitForCombiner. Nothing is read on the strength of
  // it: the poster then loads the root itself (atom.cc (1)), which orders what it reads.
  for (const CombineEntry& e : made.subspan(1)) slots.At(e.slot).mailbox.notice.StoreRelease(e.seq);
}

// The poster's resolution if `base` (a version the caller has pinned) holds its entry.
std::optional<Resolution> ResolvedIn(const Poster& p, Offset base) {
  const absl::Span<const CombineEntry> table = TableOf(p.runtime->domain().arena(), base);
  const CombineEntry* e = FindEntry(table, p.participant->slot());
  if (e == nullptr || e->seq != p.seq) return std::nullopt;
  return Resolution{*e, e->version != kNullOffset ? e->version : base, std::nullopt};
}

// One attempt: the poster's resolution if the current version holds its entry or this
// attempt publishes one; nullopt if another writer published first. `withdraw`: publish the
// batch as withdrawn instead of running anything (C6).
absl::StatusOr<std::optional<Resolution>> CombineOnce(const Poster& p, bool withdraw) {
  absl::StatusOr<Snapshot> base = LoadForWrite(p.runtime, p.index, p.participant);
  if (!base.ok()) return base.status();
  const Offset base_version = MapAccess::Version(base->map());
  if (std::optional<Resolution> done = ResolvedIn(p, base_version)) return done;
  const absl::Span<const CombineEntry> table = TableOf(p.runtime->domain().arena(), base_version);
  const std::uint32_t mine = p.participant->slot();
  Transaction tx = TransactionAccess::Make(p.participant->context(), base_version,
                                           p.participant->HoldForTransaction());
  OpOverlay overlay(tx);
  hamt::CombineTable made;
  thread_local std::vector<PostedBatch> posted;
  if (withdraw) {
    made.push_back(EntryFor(mine, p.seq, p.ops.size(), CombineStatus::kWithdrawn));
  } else {
    made.push_back(RunBatch(overlay, mine, p.seq, p.ops));
    RunOthers(p, table, overlay, posted, made);
    if (absl::Status s = overlay.WriteTo(tx); !s.ok()) return s;
  }
  hamt::CombineTable& entries = TransactionAccess::Impl(tx).combine_entries();
  for (const CombineEntry& e : made) Install(entries, e);
  absl::StatusOr<std::optional<Snapshot>> published =
      PublishTransaction(p.runtime, p.index, p.participant, tx);
  if (!published.ok()) return published.status();
  if (!published->has_value()) return std::optional<Resolution>();
  Notify(p, made);
  const Offset version = MapAccess::Version((*published)->map());
  return Resolution{made.front(), version, std::move(*published)};
}

// Attempts until the poster's batch is resolved, reclaiming space as swap does when the domain
// is full.
absl::StatusOr<Resolution> CombineUntilResolved(const Poster& p, bool withdraw) {
  for (int reclaims = 0;;) {
    absl::StatusOr<std::optional<Resolution>> once = CombineOnce(p, withdraw);
    if (!once.ok()) {
      absl::Status reclaimed = p.participant->ReclaimForSpace(once.status());
      if (!reclaimed.ok()) return reclaimed;
      if (++reclaims > Participant::kReclaimsForSpace) return once.status();
      continue;
    }
    if (once->has_value()) return std::move(**once);
  }
}

// (C8) How long a poster waits for the writer named by the atom's combiner hint to publish
// before it combines itself: long enough for a combiner that was preempted to run again on a
// loaded machine, short enough that a dead holder costs little.
constexpr auto kCombinerPatience = std::chrono::microseconds(200);
constexpr int kSpinsBeforeYield = 64;

// Waits until a combiner notices this poster's `seq` in its mailbox, the hint moves off
// `holder`, or kCombinerPatience passes (false). Spins on the poster's own cache line (the
// hint's line, which the combiner writes, is read only now and then), then yields the CPU: on
// a machine with fewer cores than posters the combiner may need this one.
bool WaitForCombiner(const CombineMailbox& mine, std::uint64_t seq, const SharedU64& hint,
                     std::uint64_t holder) {
  const auto deadline = std::chrono::steady_clock::now() + kCombinerPatience;
  for (int i = 1;; ++i) {
    if (mine.notice.LoadRelaxed() == seq) return true;
    if (i % kSpinsBeforeYield != 0) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
      continue;
    }
    if (hint.LoadRelaxed() != holder) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (i > 4 * kSpinsBeforeYield) sched_yield();
  }
}

// (C6), (C8) Until the batch is resolved: by the writer that holds the atom's combiner hint
// (this poster waits for its next version and looks for its entry there), or by this poster,
// which takes the hint when it is free or its holder kept it past kCombinerPatience.
absl::StatusOr<Resolution> Resolve(const Poster& p, bool withdraw) {
  AtomTable& atoms = p.runtime->domain().atoms();
  SharedU64& hint = atoms.Combiner(p.index);
  const CombineMailbox& mailbox = p.runtime->domain().slots().At(p.participant->slot()).mailbox;
  const std::uint64_t me = std::uint64_t{p.participant->slot()} + 1;
  bool waited_out = false;
  for (;;) {
    std::uint64_t holder = hint.LoadRelaxed();
    // holder == me: left by a dead earlier owner of this slot (this thread releases its own).
    if (holder == 0 || holder == me || waited_out) {
      if (holder == me || hint.CasAcqRel(holder, me)) {
        absl::StatusOr<Resolution> resolved = CombineUntilResolved(p, withdraw);
        std::uint64_t mine = me;
        hint.CasRelease(mine, 0);  // unless someone who waited it out took it meanwhile
        return resolved;
      }
      continue;  // another poster took it first
    }
    absl::StatusOr<Snapshot> now = LoadForWrite(p.runtime, p.index, p.participant);
    if (!now.ok()) return now.status();
    const Offset seen = MapAccess::Version(now->map());
    if (std::optional<Resolution> done = ResolvedIn(p, seen)) return *std::move(done);
    waited_out = !WaitForCombiner(mailbox, p.seq, hint, holder);
  }
}

// What the entry says of the poster's batch: OK with the outcomes, or the refusal.
absl::Status Outcomes(const CombineEntry& e, absl::Span<const Op> ops,
                      absl::Span<OpOutcome> outcomes, std::string_view atom_name) {
  if (e.op_count != ops.size() || e.refused_op >= ops.size()) {  // only damage can say so
    return absl::DataLossError(absl::StrFormat(
        "atom '%s': the combining entry of this batch names %d ops (refused: op %d), the batch "
        "has %d",
        atom_name, e.op_count, e.refused_op, ops.size()));
  }
  if (e.status == static_cast<std::uint8_t>(CombineStatus::kRefused)) {
    const absl::Status refused = NotAnInteger(ops[e.refused_op].key(), e.values[e.refused_op]);
    return absl::Status(refused.code(),
                        absl::StrFormat("atom '%s': %s", atom_name, refused.message()));
  }
  for (std::size_t i = 0; i < ops.size(); ++i) {
    outcomes[i] = OpOutcome{e.values[i], (e.matched >> i & 1) != 0, (e.existed >> i & 1) != 0};
  }
  return absl::OkStatus();
}

}  // namespace

bool Combinable(absl::Span<const Op> ops) {
  if (ops.empty() || ops.size() > kMaxCombinedOps) return false;
  std::size_t bytes = 0;
  for (const Op& op : ops) bytes += EncodedBytes(op);
  return bytes <= kPayloadBytes;
}

namespace {

// (C9) The batch alone, not posted: one attempt of a swap that runs it on an overlay. The new
// version if it won; nullopt if another writer published first (nothing of it anywhere); the
// batch's refusal (`refused` set) or the attempt's error.
absl::StatusOr<std::optional<Snapshot>> ApplyAlone(const Poster& p, absl::Span<OpOutcome> outcomes,
                                                   std::string_view atom_name, bool* refused) {
  absl::StatusOr<Snapshot> base = LoadForWrite(p.runtime, p.index, p.participant);
  if (!base.ok()) return base.status();
  Transaction tx =
      TransactionAccess::Make(p.participant->context(), MapAccess::Version(base->map()),
                              p.participant->HoldForTransaction());
  OpOverlay overlay(tx);
  if (absl::Status s = overlay.Run(p.ops, outcomes); !s.ok()) {
    *refused = true;
    return absl::Status(s.code(), absl::StrFormat("atom '%s': %s", atom_name, s.message()));
  }
  if (absl::Status s = overlay.WriteTo(tx); !s.ok()) return s;
  return PublishTransaction(p.runtime, p.index, p.participant, tx);
}

// (C9) After a lost CAS or a wait for another combiner, this thread posts its next batches at
// once for this many calls; otherwise it first tries each batch alone.
constexpr std::uint32_t kContendedCalls = 64;
thread_local std::uint32_t contended_calls = 0;

// (C9) The batch alone, as Atom::swap would run it, for as long as nobody else publishes in
// between: the version, or nullopt once an attempt lost its CAS (then post it).
absl::StatusOr<std::optional<Snapshot>> TryAlone(const Poster& p, absl::Span<OpOutcome> outcomes,
                                                 std::string_view atom_name) {
  for (int reclaims = 0;;) {
    bool refused = false;
    absl::StatusOr<std::optional<Snapshot>> alone = ApplyAlone(p, outcomes, atom_name, &refused);
    if (alone.ok() || refused) return alone;
    absl::Status reclaimed = p.participant->ReclaimForSpace(alone.status());
    if (!reclaimed.ok()) return reclaimed;
    if (++reclaims > Participant::kReclaimsForSpace) return alone.status();
  }
}

}  // namespace

absl::StatusOr<Snapshot> CombinedApply(Runtime* runtime, std::uint32_t index,
                                       Participant* participant, absl::Span<const Op> ops,
                                       absl::Span<OpOutcome> outcomes, std::string_view atom_name) {
  if (contended_calls == 0) {  // (C9)
    absl::StatusOr<std::optional<Snapshot>> alone =
        TryAlone(Poster{runtime, index, participant, ops, 0}, outcomes, atom_name);
    if (!alone.ok()) return alone.status();
    if (alone->has_value()) return std::move(**alone);
    contended_calls = kContendedCalls;
  } else {
    --contended_calls;
  }
  PinGuard hold(*participant);  // (C7)
  CombineMailbox& mailbox = runtime->domain().slots().At(participant->slot()).mailbox;
  const Poster poster{runtime, index, participant, ops, Post(mailbox, index, ops)};
  ATOMAP_CRASH_POINT(kCombineAfterPost);
  absl::StatusOr<Resolution> resolved = Resolve(poster, /*withdraw=*/false);
  absl::Status failed;
  if (!resolved.ok()) {  // (C6)
    failed = resolved.status();
    resolved = Resolve(poster, /*withdraw=*/true);
    if (!resolved.ok()) {
      mailbox.acked.StoreRelease(poster.seq);  // (E3) no combiner reads it from here on
      return absl::Status(
          failed.code(),
          absl::StrFormat("%s (the batch was posted for combining and could not be withdrawn: "
                          "%s; another writer may still apply it)",
                          failed.message(), resolved.status().message()));
    }
  }
  ATOMAP_CRASH_POINT(kCombineBeforeAck);
  mailbox.acked.StoreRelease(poster.seq);  // (E3), (C4)
  if (resolved->entry.status == static_cast<std::uint8_t>(CombineStatus::kWithdrawn)) {
    return failed.ok() ? absl::InternalError("apply: a batch withdrawn without an error") : failed;
  }
  if (absl::Status s = Outcomes(resolved->entry, ops, outcomes, atom_name); !s.ok()) return s;
  if (resolved->published.has_value()) return std::move(*resolved->published);
  contended_calls = kContendedCalls;  // (C9) another writer applied it: contention
  return SnapshotAccess::Make(std::move(hold), &participant->context(), resolved->version);
}

void PostNextBatches(std::uint32_t calls) { contended_calls = calls; }

void PruneCombineTable(const SlotTable& slots, hamt::CombineTable& entries) {
  if (entries.empty()) return;
  entries.erase(std::remove_if(entries.begin(), entries.end(),
                               [&](const CombineEntry& e) {
                                 return e.slot >= slots.capacity() ||
                                        slots.At(e.slot).mailbox.acked.LoadAcquire() >=
                                            e.seq;  // (E3), (C4)
                               }),
                entries.end());
}

}  // namespace atomap::internal

// Combining: Atom::apply across processes. A writer posts its batch in its slot's mailbox
// (file/slot.h CombineMailbox); whoever publishes the atom's next version folds every batch
// posted for it into that one transaction and records, in the version's combining table
// (hamt/node.h CombineEntry), which batches the version applied and their outcomes. A poster
// whose batch another writer applied reads its outcome there and is done: a lost CAS no longer
// means doing the work again. docs/design.md, "Combining", has the protocol and its reasons.
//
// Usage (atom/apply.cc):
//
//   if (internal::Combinable(ops)) return internal::CombinedApply(runtime, index, p, ops, out);
//
// Invariants (per slot s; a batch is (s, seq))
//  (C1) A batch is applied iff some published version's table holds an entry (s, seq) of status
//       kApplied: the root CAS that publishes the version is the only commit point, for the
//       batch's writes and for the record that they were made alike.
//  (C2) Every commit copies its base's table (hamt TrieTransaction), dropping only what C4
//       allows, and replacing s's entry only by a newer seq of s.
//  (C3) A combiner applies (s, seq) only if, after its load of the base (atom.cc (1)), it reads
//       post = seq (not busy), acked(s) < seq, and its base holds no entry (s, seq' >= seq). So a
//       batch applies at most once: a later base either still holds the entry (C2) or lost it
//       only through C4, whose acked(s) >= seq the combiner reads too ((E3)); an attempt that
//       loses its CAS is discarded whole.
//  (C4) An entry (s, seq) is dropped from a table only when acked(s) >= seq: its poster has read
//       the outcome (or died, and the claim of its slot settled the mailbox).
//  (C5) seq grows strictly per slot, across owners: the mailbox is never zeroed; a claim settles
//       it (SlotTable::SettleMailbox: acked = post's seq, post not busy), and the next post is
//       seq + 1.
//  (C6) A poster never waits for another process: it combines itself (its own batch first)
//       until some published version holds its entry. It resolves before it returns: on an error
//       it publishes a withdrawal (an entry of status kWithdrawn), so no later version can apply
//       a batch whose caller was told it failed; only if that fails too does it say the batch may
//       still be applied.
//  (C7) A poster holds one pin from before its post until its outcome is read: the version that
//       applied its batch (published after the post) cannot be freed under it, and becomes the
//       snapshot apply returns.
//  (C8) The atom's combiner hint (file/atom_table.h AtomRecord::combiner) names the poster that
//       is combining now. Other posters wait for its next version instead of competing with
//       it, for at most kCombinerPatience, then take the hint over and combine themselves. The
//       hint orders nothing and protects nothing (C1-C6 hold whoever combines, however many
//       at once): it only turns contention into shared versions instead of lost CASes.
//  (C9) Uncontended, a batch is first tried alone: one attempt of a swap, never posted (so
//       nobody else can apply it: C1-C5 do not concern it). Only an attempt that loses its CAS
//       posts the batch, and then this thread posts at once for its next kContendedCalls
//       calls (and again after each batch another writer applied for it). A lone writer thus
//       pays nothing for combining, and a refusal it meets alone publishes nothing.
//
// Memory ordering (edges of this file; atom.cc (1), (2) for the root)
//  (E1) Post: relaxed store post = seq|busy, release stores of the batch's words, release store
//       post = seq. Pairs with (E2).
//  (E2) A combiner's acquire load of post, acquire loads of the batch's words, relaxed reload of
//       post (a seqlock without fences: a reader that saw any word of a later post sees that
//       post's busy mark in the reload, and discards what it read).
//  (E3) acquire loads of acked (combiner, after (E2); PruneCombineTable) pair with the
//       poster's release store of acked after it read its outcome, and with SettleMailbox's
//       (slot_table.h (6)). The chain poster's ack -> pruner's load -> pruner's root CAS (atom.cc
//       (2)) -> combiner's root load (1) -> combiner's acked load is what C3 relies on.
//
// Thread safety: CombinedApply is called by the participant's own thread (its slot's mailbox has
// one writer). PruneCombineTable reads other slots' words only.
#ifndef ATOMAP_SRC_ATOM_COMBINE_H_
#define ATOMAP_SRC_ATOM_COMBINE_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "atomap/ops.h"
#include "atomap/snapshot.h"
#include "hamt/node.h"

namespace atomap::internal {

class Participant;
class Runtime;
class SlotTable;

// Whether `ops` (a batch that passed apply's checks) fits a mailbox: at most
// hamt::kMaxCombinedOps ops whose encoding fits its payload. A batch that does not is a swap.
bool Combinable(absl::Span<const Op> ops);

// Posts `ops` for atom `index` and returns once a published version holds their outcome (C6):
// that version, the outcomes in `outcomes` (as many as ops). An op's refusal (an add on a value
// that is not 8 bytes) is FailedPrecondition naming the key and the atom `atom_name`.
// REQUIRES: Combinable(ops), ops non-empty; the caller's thread owns `participant`.
absl::StatusOr<Snapshot> CombinedApply(Runtime* runtime, std::uint32_t index,
                                       Participant* participant, absl::Span<const Op> ops,
                                       absl::Span<OpOutcome> outcomes, std::string_view atom_name);

// (C9) For tests: this thread's next `calls` batches are posted at once, as after contention,
// instead of first being tried alone.
void PostNextBatches(std::uint32_t calls);

// (C4) Drops from `entries` (a commit's table) those whose posters acknowledged them, and those
// of no slot of `slots` (damage).
void PruneCombineTable(const SlotTable& slots, hamt::CombineTable& entries);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_ATOM_COMBINE_H_

// CheckVersion: a bounds-checked walk of one atom's current version that verifies the trie's
// shape (node.h N1-N4) and records every block it reaches in the space map.
//
// Unlike hamt::ForEachBlock (read.h), which trusts a published version, this walk trusts
// nothing: each offset is bounds-checked before it is followed, each bitmap and count is
// validated before it sizes a read, and a node found twice in one version (a cycle or a
// shared subtree, impossible in a canonical trie) stops the walk there.
#ifndef ATOMAP_SRC_RECOVERY_TRIE_CHECK_H_
#define ATOMAP_SRC_RECOVERY_TRIE_CHECK_H_

#include <cstdint>
#include <string>

#include "common/offset.h"
#include "recovery/check_context.h"

namespace atomap::internal {

// `version` is the atom's root word (a version record's offset, 0 = empty). `atom_label` names
// the atom in problems.
void CheckVersion(CheckContext& ctx, Offset version, const std::string& atom_label);

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_RECOVERY_TRIE_CHECK_H_

// The whole public API in one include. Each header it names holds one concept and opens with its
// contract and an example; start with domain.h (files) and atom.h (changing a map).
#ifndef ATOMAP_ATOMAP_H_
#define ATOMAP_ATOMAP_H_

#include "atomap/atom.h"         // Atom: a named map that many processes change atomically
#include "atomap/codec.h"        // Codec, Codable: how typed keys and values are stored
#include "atomap/diff.h"         // MapDiff, Diff: what changed between two versions
#include "atomap/domain.h"       // Domain: the shared file; DomainInfo, DomainStats
#include "atomap/map.h"          // Map: a read-only view of one version
#include "atomap/options.h"      // Options, DomainKind
#include "atomap/snapshot.h"     // Snapshot: one version, pinned while you read it
#include "atomap/transaction.h"  // Transaction: the edits a swap publishes
#include "atomap/typed_map.h"    // TypedMap, TypedTransaction: typed views
#include "atomap/watcher.h"      // Watcher: each change as a diff

#endif  // ATOMAP_ATOMAP_H_

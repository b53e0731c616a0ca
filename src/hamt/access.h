// Internal factories for the public Map and Transaction: the atoms layer (and tests) build
// them from a context and a version offset, and reach the transaction behind a Transaction to
// commit it. Not installed; public headers only forward-declare these classes.
#ifndef ATOMAP_SRC_HAMT_ACCESS_H_
#define ATOMAP_SRC_HAMT_ACCESS_H_

#include <memory>

#include "absl/status/status.h"

#include "atomap/map.h"
#include "atomap/transaction.h"
#include "hamt/transient.h"
#include "hamt/trie_context.h"

namespace atomap::internal {

class MapAccess {
 public:
  // REQUIRES: `context` outlives the Map; `version` is alive while the Map is used.
  static Map Make(const TrieContext* context, Offset version) { return Map(context, version); }
  static Offset Version(const Map& map) { return map.version_; }
  static const TrieContext* Context(const Map& map) { return map.context_; }
  // With Options::verify_reads: DataLoss naming the file if the map's version record is not a
  // block inside the data region (a damaged root word). OK otherwise, and always without it.
  static absl::Status VerifyRecord(const Map& map);
};

class TransactionAccess {
 public:
  // REQUIRES: `context` (copied) stays valid for the transaction's life.
  static Transaction Make(const TrieContext& context, Offset base,
                          std::unique_ptr<hamt::TransactionHold> hold = nullptr) {
    return Transaction(std::make_unique<hamt::TrieTransaction>(context, base, std::move(hold)));
  }
  static hamt::TrieTransaction& Impl(Transaction& tx) { return *tx.impl_; }
};

}  // namespace atomap::internal

#endif  // ATOMAP_SRC_HAMT_ACCESS_H_

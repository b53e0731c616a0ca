// The interface every benchmarked store implements, so that each workload is written once and
// runs the same operations on every system. One adapter per file (*_system.cc).
#ifndef ATOMAP_BENCH_PEERS_SYSTEM_H_
#define ATOMAP_BENCH_PEERS_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keys.h"

namespace atomap::peers {

class System {
 public:
  virtual ~System() = default;
  virtual std::string_view name() const = 0;
  // False for stores that live in one process's memory (std::unordered_map): multi-process
  // workloads skip them.
  virtual bool multi_process() const { return true; }

  // Creates a fresh, empty store for entries of `keys`' shape under directory `dir` (which
  // exists and is empty), sized for `capacity` entries, and attaches this process to it.
  virtual void Create(const std::string& dir, const Keys& keys, std::uint64_t capacity) = 0;
  // Detaches this process (the store stays on disk) / attaches again, in this or a forked
  // child process. A child never uses its parent's handles.
  virtual void Close() = 0;
  virtual void Attach() = 0;

  // Entries 0..n-1 of `keys` in one transaction (one lock hold, one write txn).
  virtual void Load(const Keys& keys, std::uint64_t n) = 0;
  // Gets LoadBatch's input ready, untimed: a batch call takes entries the caller already holds
  // in memory (atomap: the span of key/value views set_many reads).
  virtual void PrepareBatch(const Keys& /*keys*/, std::uint64_t /*n*/) {}
  // The same entries handed over as one batch where the store has a batch call (atomap:
  // Transaction::set_many, its bottom-up build); otherwise Load.
  virtual void LoadBatch(const Keys& keys, std::uint64_t n) { Load(keys, n); }
  // One lookup in its own read snapshot/txn/shared lock. Returns the first 8 bytes of the
  // value (so the compiler keeps the read), or ~0 when absent.
  virtual std::uint64_t Get(std::string_view key) = 0;
  // `count` lookups of keys[i] in one read snapshot/txn/shared lock.
  virtual std::uint64_t GetMany(const std::vector<std::string>& keys) = 0;
  // One key set as its own transaction (a new published version).
  virtual void Put(std::string_view key, std::string_view value) = 0;
  // Several keys set as one transaction.
  virtual void PutMany(const std::vector<std::pair<std::string, std::string>>& entries) = 0;
  // Reads the u64 in the first 8 bytes of key's value (0 if absent), writes it back plus one;
  // atomically against other processes.
  virtual void Increment(std::string_view key) = 0;
  // The same through the store's declarative add where it has one (atomap: Atom::add, the call
  // a combiner may run for the caller); otherwise Increment.
  virtual void AddOne(std::string_view key) { Increment(key); }
  // Whether AddOne and AddSixteen combine across processes from the next Attach on, where the
  // store can (atomap: Options::combine_writes). Off by default here, so that the
  // counter_apply rows keep measuring one publication per add; the counter_combine rows turn
  // it on.
  virtual void SetCombining(bool /*on*/) {}
  // Sixteen adds of one to key, as one publication where the store can fold them (atomap: one
  // apply of 16 ops); otherwise 16 AddOne.
  virtual void AddSixteen(std::string_view key) {
    for (int i = 0; i < 16; ++i) AddOne(key);
  }

  // The file whose allocated blocks are the store's size on disk ("" if none).
  virtual std::string DataFile() const = 0;
  // The store's own space figures after a load (name -> bytes), e.g. its allocator's live bytes;
  // empty when it has none.
  virtual std::vector<std::pair<std::string, std::uint64_t>> SpaceFigures() { return {}; }
};

std::unique_ptr<System> MakeAtomap();
std::unique_ptr<System> MakeLmdb(bool durable);
std::unique_ptr<System> MakeBoostInterprocess(const Keys& shape);  // u64/u64 or 16/100 only
std::unique_ptr<System> MakeStdUnorderedMap(const Keys& shape);  // u64/u64 or 16/100 only

}  // namespace atomap::peers

#endif  // ATOMAP_BENCH_PEERS_SYSTEM_H_

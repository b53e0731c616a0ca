// The workloads, one function each; each writes its rows to `out`. Systems come in attached
// and loaded (except RunLoad, which creates and loads, and the atomap-only RunWaitLatency).
#ifndef ATOMAP_BENCH_PEERS_WORKLOADS_H_
#define ATOMAP_BENCH_PEERS_WORKLOADS_H_

#include <cstdint>
#include <string>

#include "keys.h"
#include "output.h"
#include "system.h"

namespace atomap::peers {

// Creates the store in `dir` and loads entries 0..n-1 in one transaction ("bulk_load"), then
// reports its size on disk ("bytes_on_disk": allocated blocks of the data file per entry).
void RunLoad(System& s, const Keys& keys, std::uint64_t n, const std::string& dir, Output& out);
// The same load through System::LoadBatch, into a store of its own (closed afterwards): rows
// bulk_load_set_many_<shape> and bytes_on_disk_set_many_<shape>.
void RunLoadBatch(System& s, const Keys& keys, std::uint64_t n, const std::string& dir,
                  Output& out);
// Random lookups, each in its own read snapshot/txn/lock ("get").
void RunGet(System& s, const Keys& keys, std::uint64_t n, std::uint64_t ops, Output& out);
// Random lookups, 1000 per read snapshot/txn/lock ("get_batch1000").
void RunGetBatch(System& s, const Keys& keys, std::uint64_t n, std::uint64_t ops, Output& out);
// A read snapshot/txn/lock taken and dropped with nothing read in it ("snapshot"): the cost a
// get in its own snapshot pays on top of the lookup.
void RunSnapshot(System& s, const Keys& keys, std::uint64_t n, std::uint64_t ops, Output& out);
// One existing key rewritten per transaction ("update"; atomap: one swap).
void RunUpdate(System& s, const Keys& keys, std::uint64_t n, std::uint64_t ops, Output& out);
// A fresh process reopens the store this one loaded and closed, and times its first 1000
// single-key updates ("update_after_reopen": p50/p99 of those; extra: warm_p99_ns of the next
// 1000 in the same process; minor_faults_per_op of the first ones, warm_minor_faults_per_op of
// the next). Leaves s attached.
void RunUpdateAfterReopen(System& s, const Keys& keys, std::uint64_t n, Output& out);
// 16 existing keys rewritten per transaction ("txn16"; ns_per_op is per transaction).
void RunTxn16(System& s, const Keys& keys, std::uint64_t n, std::uint64_t ops, Output& out);
// `procs` processes incrementing one counter key ("counter"; aggregate ns per increment).
// Verifies the final count. Leaves s attached.
void RunCounter(System& s, const Keys& keys, std::uint64_t n, int procs, std::uint64_t ops_per_proc,
                Output& out);
// `procs` processes adding one to one counter key through System::AddOne, the store's
// declarative add ("counter_apply_<procs>proc"; aggregate ns per add; atomap: Atom::add, LMDB:
// the same write transaction as its counter, as it has no declarative add). Verifies the final
// count. Leaves s attached.
void RunCounterApply(System& s, const Keys& keys, std::uint64_t n, int procs,
                     std::uint64_t ops_per_proc, Output& out);
// The same with 16 adds per call, folded into one publication where the store can (atomap: one
// apply of 16 AddU64 ops): "counter_apply_fold16_<procs>proc", ns per add. What a combiner that
// folds 16 posted adds into one version could reach at best (atomap only).
// The same adds with combining on (atomap: Options::combine_writes), as counter_combine_Nproc.
void RunCounterCombine(System& s, const Keys& keys, std::uint64_t n, int procs,
                       std::uint64_t ops_per_proc, Output& out);
void RunCounterFold16(System& s, const Keys& keys, std::uint64_t n, int procs,
                      std::uint64_t ops_per_proc, Output& out);
// One writer process updating keys as fast as it can while `readers` processes look up keys
// ("read_with_writer"; aggregate ns per lookup over the readers). Leaves s attached.
void RunReaders(System& s, const Keys& keys, std::uint64_t n, int readers,
                std::uint64_t ops_per_reader, Output& out);
// atomap only: a change published by one process wakes another blocked in wait_for_change
// ("wake_latency"; p50/p99 of publish-to-wake across processes, ping-pong).
void RunWaitLatency(const std::string& dir, std::uint64_t rounds, Output& out);
// Opening an existing store of `bytes` (values of 1 MiB), page cache warm, p50 over `repeats`
// opens: with no other process attached ("attach"), or while another process holds the store
// open ("attach_shared"; not for single-process systems).
void RunAttach(System& s, const std::string& dir, std::uint64_t bytes, int repeats,
               bool other_attached, Output& out);

}  // namespace atomap::peers

#endif  // ATOMAP_BENCH_PEERS_WORKLOADS_H_

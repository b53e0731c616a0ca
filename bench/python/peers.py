#!/usr/bin/env python3
"""Python get and swap: atomap's package against py-lmdb (Debian's python3-lmdb), in one run.

    /usr/bin/python3 bench/python/peers.py [--entries N] [--ops N] [--reps R] [--out F.jsonl]

Writes one JSON line per system, workload and repetition, with the fields of bench/peers'
rows (system, workload, entries, processes, ns_per_op, ops, run, p50_ns, p99_ns), so that
bench/report.py-style tools read both. Systems: "atomap_python", "lmdb_python" (NOSYNC, as the
C++ peers' LMDB: sync=False, metasync=False). Workloads (keys are 8-byte packed integers, values
8 bytes):
  py_get_in_snapshot  get of a random present key inside one held snapshot / read transaction
  py_get_oneshot      a snapshot (read transaction) taken, one get, dropped: per key
  py_swap_one_key     one key set, published (committed) per op
  py_counter          read-modify-write of one counter, published per op
Prints a table of medians and ranges, and the atomap/lmdb ratio of each workload.
Needs PYTHONPATH to reach the atomap package (the build tree's python/ directory or an install).
"""
import argparse
import datetime
import json
import os
import random
import statistics
import struct
import sys
import tempfile
import time

import atomap

try:
    import lmdb
except ImportError:  # pragma: no cover
    lmdb = None


def key(i):
    return struct.pack("=Q", i)


class AtomapSystem:
    name = "atomap_python"

    def __init__(self, directory, entries):
        self.dom = atomap.open(os.path.join(directory, "bench.atomap"))
        self.atom = self.dom.atom("bench")
        self.atom.reset({key(i): key(i) for i in range(entries)})

    def get_in_snapshot(self, keys):
        with self.atom.load() as snap:
            for k in keys:
                snap[k]

    def get_oneshot(self, keys):
        get = self.atom.get
        for k in keys:
            get(k)

    def swap_one_key(self, keys):
        swap = self.atom.swap
        for k in keys:
            swap(lambda tx: tx.set(k, k))

    def counter(self, n):
        def step(tx):
            old = tx.get(b"counter")
            tx.set(b"counter", key((struct.unpack("=Q", old)[0] if old else 0) + 1))
        for _ in range(n):
            self.atom.swap(step)

    def close(self):
        self.dom.close()


class LmdbSystem:
    name = "lmdb_python"

    def __init__(self, directory, entries):
        self.env = lmdb.open(os.path.join(directory, "bench.lmdb"), map_size=1 << 30,
                             sync=False, metasync=False)
        with self.env.begin(write=True) as txn:
            for i in range(entries):
                txn.put(key(i), key(i))

    def get_in_snapshot(self, keys):
        with self.env.begin() as txn:
            for k in keys:
                txn.get(k)

    def get_oneshot(self, keys):
        begin = self.env.begin
        for k in keys:
            with begin() as txn:
                txn.get(k)

    def swap_one_key(self, keys):
        begin = self.env.begin
        for k in keys:
            with begin(write=True) as txn:
                txn.put(k, k)

    def counter(self, n):
        for _ in range(n):
            with self.env.begin(write=True) as txn:
                old = txn.get(b"counter")
                txn.put(b"counter", key((struct.unpack("=Q", old)[0] if old else 0) + 1))

    def close(self):
        self.env.close()


WORKLOADS = {
    "py_get_in_snapshot": lambda s, keys: s.get_in_snapshot(keys),
    "py_get_oneshot": lambda s, keys: s.get_oneshot(keys),
    "py_swap_one_key": lambda s, keys: s.swap_one_key(keys),
    "py_counter": lambda s, keys: s.counter(len(keys)),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--ops", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", help="append the JSON lines here (default: stdout only)")
    args = parser.parse_args()
    systems = [AtomapSystem] + ([LmdbSystem] if lmdb else [])
    if lmdb is None:
        print("py-lmdb is not installed (apt-get install python3-lmdb): atomap alone",
              file=sys.stderr)
    run = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    rng = random.Random(42)
    keys = [key(rng.randrange(args.entries)) for _ in range(args.ops)]
    results = {}  # (system, workload) -> [ns per op]
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        opened = [make(os.path.join(directory), args.entries) for make in systems]
        for rep in range(args.reps):  # interleaved: both systems measured in every round
            for workload, body in WORKLOADS.items():
                for system in opened:
                    start = time.perf_counter_ns()
                    body(system, keys)
                    ns = (time.perf_counter_ns() - start) / len(keys)
                    results.setdefault((system.name, workload), []).append(ns)
                    rows.append({"system": system.name, "workload": workload,
                                 "entries": args.entries, "processes": 1, "ops": len(keys),
                                 "ns_per_op": round(ns, 3), "p50_ns": None, "p99_ns": None,
                                 "run": run, "round": rep})
            print(f"round {rep + 1}/{args.reps} done", file=sys.stderr)
        for system in opened:
            system.close()
    if args.out:
        with open(args.out, "a") as out:
            for row in rows:
                out.write(json.dumps(row, sort_keys=True) + "\n")
    print(f"{'workload':<22}{'system':<16}{'median ns/op':>14}  range")
    for workload in WORKLOADS:
        for system in systems:
            vs = results[(system.name, workload)]
            print(f"{workload:<22}{system.name:<16}{statistics.median(vs):>14.0f}  "
                  f"{min(vs):.0f}-{max(vs):.0f}")
        if lmdb:
            a = statistics.median(results[("atomap_python", workload)])
            b = statistics.median(results[("lmdb_python", workload)])
            print(f"{'':<22}{'atomap/lmdb':<16}{a / b:>14.2f}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Builds docs/benchmarks.md and its plots from the JSON lines that bench/peers writes.

    python3 bench/report.py --command "peers --reps 3" --notes notes.md run.jsonl [more.jsonl]

Every figure is a median over the rows of the input (repetitions and interleaved rounds), with
the range (min-max) beside it. Ratios pair rows of the same run and the same round, so both
sides of a ratio were measured minutes apart, not hours. Needs matplotlib (Debian:
python3-matplotlib); not part of `make test`.
"""
import argparse
import collections
import json
import os
import platform
import statistics
import subprocess

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SYSTEMS = ["atomap", "lmdb", "boost_interprocess", "std_unordered_map", "lmdb_sync"]
PEERS = ["lmdb", "boost_interprocess", "std_unordered_map"]
M = 1_000_000


def load(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    return rows


class Data:
    def __init__(self, rows):
        # (system, workload, entries, processes) -> run -> [row, ...] in run order
        self.by = collections.defaultdict(lambda: collections.defaultdict(list))
        for r in rows:
            key = (r["system"], r["workload"], r["entries"], r["processes"])
            self.by[key][r["run"]].append(r)
        self.runs = sorted({r["run"] for r in rows})

    def values(self, system, workload, entries, processes=1, field="ns_per_op"):
        """run -> [value per round]"""
        out = {}
        for run, rs in self.by.get((system, workload, entries, processes), {}).items():
            vs = [r.get(field) for r in rs if r.get(field) is not None]
            if vs:
                out[run] = vs
        return out

    def flat(self, *args, **kw):
        return [v for vs in self.values(*args, **kw).values() for v in vs]


def paired(a, b, fn):
    """fn(x, y) over rows of the same run and round."""
    out = []
    for run, xs in a.items():
        ys = b.get(run, [])
        out.extend(fn(x, y) for x, y in zip(xs, ys) if y)
    return out


def summary(vs, fmt):
    if not vs:
        return "not measured"
    med = statistics.median(vs)
    if len(vs) == 1:
        return f"{fmt(med)} (1 sample)"
    return f"{fmt(med)} ({fmt(min(vs))}–{fmt(max(vs))}, n={len(vs)})"


def ns(v):
    if v >= 1e6:
        return f"{v / 1e6:.2f} ms"
    if v >= 1e3:
        return f"{v / 1e3:.2f} µs"
    return f"{v:.0f} ns"


def x(v):
    return f"{v:.2f}×"


def plain(v):
    return f"{v:.1f}"


def machine():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            mem_kb = int(f.readline().split()[1])
    except OSError:
        mem_kb = 0
    caches = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        caches = ", ".join(line.split(":", 1)[0].strip() + " " + line.split(":", 1)[1].strip()
                           for line in out.splitlines() if line.startswith(("L2 cache", "L3 cache")))
    except OSError:
        pass
    return {
        "caches": caches,
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram": f"{mem_kb / 2**20:.1f} GiB",
        "kernel": platform.release(),
    }


def targets(d):
    """(target, measured, met?) rows; measured as median (range)."""
    out = []

    def ratio_row(label, a, b, limit, higher_is_better=False, invert=False, fmt=x):
        # invert: compare b/a (a throughput ratio from ns per op)
        vs = paired(a, b, (lambda p, q: q / p) if invert else (lambda p, q: p / q))
        if not vs:
            out.append((label, "not measured", "—"))
            return
        med = statistics.median(vs)
        met = med >= limit if higher_is_better else med <= limit
        out.append((label, summary(vs, fmt), "met" if met else "**missed**"))

    def abs_row(label, vs, limit, fmt):
        if not vs:
            out.append((label, "not measured", "—"))
            return
        med = statistics.median(vs)
        out.append((label, summary(vs, fmt), "met" if med <= limit else "**missed**"))

    a = d.values
    ratio_row("get ≤ 0.25× LMDB (1M u64, own snapshot per get)",
              a("atomap", "get_u64", M), a("lmdb", "get_u64", M), 0.25)
    ratio_row("get ≤ 1.5× std::unordered_map + shared_mutex (1M u64)",
              a("atomap", "get_u64", M), a("std_unordered_map", "get_u64", M), 1.5)
    ratio_row("single-key update ≤ 0.5× LMDB NOSYNC txn (1M u64)",
              a("atomap", "update_u64", M), a("lmdb", "update_u64", M), 0.5)
    ratio_row("swap p50 at 10M ≤ 3× swap p50 at 1K",
              a("atomap", "update_u64", 10 * M, field="p50_ns"),
              a("atomap", "update_u64", 1000, field="p50_ns"), 3)
    ratio_row("2-process counter throughput ≥ 2× LMDB",
              a("atomap", "counter", M, 2), a("lmdb", "counter", M, 2), 2,
              higher_is_better=True, invert=True)
    ratio_row("2-process counter throughput ≥ 1× Boost.Interprocess",
              a("atomap", "counter", M, 2), a("boost_interprocess", "counter", M, 2), 1,
              higher_is_better=True, invert=True)
    # Issue 15: the declarative add as one swap per add (combine_writes off: the baseline
    # that combining, below, is to beat).
    ratio_row("2 processes adding to one counter (`Atom::add`, one swap each) ≥ 2× LMDB's throughput",
              a("atomap", "counter_apply_2proc", M, 2), a("lmdb", "counter_apply_2proc", M, 2), 2,
              higher_is_better=True, invert=True)
    ratio_row("8 processes adding to one counter (`Atom::add`, one swap each) ≥ 4× LMDB's throughput",
              a("atomap", "counter_apply_8proc", M, 8), a("lmdb", "counter_apply_8proc", M, 8), 4,
              higher_is_better=True, invert=True)
    ratio_row("bulk load ≥ 5× LMDB batch (1M u64, one transaction)",
              a("atomap", "bulk_load_u64", M), a("lmdb", "bulk_load_u64", M), 5,
              higher_is_better=True, invert=True)
    # Issue 15: bulk loads at memory speed (a set loop into an empty map and set_many both build
    # bottom up), and combining.
    ratio_row("bulk load ≥ 5× LMDB batch (1M u64, `set_many`)",
              a("atomap", "bulk_load_set_many_u64", M), a("lmdb", "bulk_load_set_many_u64", M), 5,
              higher_is_better=True, invert=True)
    ratio_row("bulk load ≥ 3× LMDB batch (10M u64, one transaction)",
              a("atomap", "bulk_load_u64", 10 * M), a("lmdb", "bulk_load_u64", 10 * M), 3,
              higher_is_better=True, invert=True)
    abs_row("bytes on disk per u64 entry after a bulk load ≤ 36 (1M; LMDB 36.7)",
            d.flat("atomap", "bytes_on_disk_u64", M, field="bytes_per_entry"), 36, plain)
    ratio_row("2 processes adding to one counter, combining ≥ 2× LMDB's throughput",
              a("atomap", "counter_combine_2proc", M, 2), a("lmdb", "counter_apply_2proc", M, 2),
              2, higher_is_better=True, invert=True)
    ratio_row("8 processes adding to one counter, combining ≥ 4× LMDB's throughput",
              a("atomap", "counter_combine_8proc", M, 8), a("lmdb", "counter_apply_8proc", M, 8),
              4, higher_is_better=True, invert=True)
    abs_row("bytes on disk per u64→u64 entry ≤ 40 (1M; st_blocks × 512 / entries)",
            d.flat("atomap", "bytes_on_disk_u64", M, field="bytes_per_entry"), 40, plain)
    abs_row("attach to a 1 GiB domain ≤ 1 ms (p50 of opens)",
            d.flat("atomap", "attach", 1024, field="p50_ns"), 1e6, ns)
    abs_row("swap p50 ≤ 1 µs at 1M", d.flat("atomap", "update_u64", M, field="p50_ns"), 1e3, ns)
    # Issue 14: reads at the memory's speed, and no swap that pays for 64 others.
    ratio_row("get ≤ 0.8× Boost.Interprocess (1M u64, own snapshot per get)",
              a("atomap", "get_u64", M), a("boost_interprocess", "get_u64", M), 0.8)
    ratio_row("get, 1000 per snapshot ≤ 1.0× Boost.Interprocess (1M u64)",
              a("atomap", "get_batch1000_u64", M), a("boost_interprocess", "get_batch1000_u64", M),
              1.0)
    abs_row("snapshot alone, hot ≤ 10 ns (taken and dropped, nothing read; 1M u64)",
            d.flat("atomap", "snapshot_u64", M), 10, ns)
    ratio_row("single-key update p99 ≤ 2.5× its own p50 (1M u64)",
              a("atomap", "update_u64", M, field="p99_ns"),
              a("atomap", "update_u64", M, field="p50_ns"), 2.5)
    ratio_row("single-key update p99 ≤ LMDB's p99 (1M u64)",
              a("atomap", "update_u64", M, field="p99_ns"),
              a("lmdb", "update_u64", M, field="p99_ns"), 1)
    reopen_n = 10 * M if a("atomap", "update_after_reopen_u64", 10 * M, field="p99_ns") else M
    ratio_row("a reopened domain's first 1,000 swaps: p99 ≤ 2× a warm process's (largest u64 size)",
              a("atomap", "update_after_reopen_u64", reopen_n, field="p99_ns"),
              a("atomap", "update_after_reopen_u64", reopen_n, field="warm_p99_ns"), 2)
    ratio_row("read throughput, 2 reader processes ≥ 1.8× one (with 1 writer)",
              a("atomap", "read_with_writer", M, 1), a("atomap", "read_with_writer", M, 2), 1.8,
              higher_is_better=True)
    return out


RATIO_WORKLOADS = [
    ("get_u64", M, 1, "get, u64, own snapshot per get"),
    ("get_batch1000_u64", M, 1, "get, u64, 1000 per snapshot"),
    ("get_k16v100", M, 1, "get, 16 B key / 100 B value"),
    ("snapshot_u64", M, 1, "snapshot alone (taken and dropped, nothing read)"),
    ("update_u64", M, 1, "single-key update (one version)"),
    ("txn16_u64", M, 1, "16-key transaction"),
    ("bulk_load_u64", M, 1, "bulk load, one transaction (per entry)"),
    ("bulk_load_set_many_u64", M, 1, "bulk load, `set_many` (per entry)"),
    ("bulk_load_u64", 10 * M, 1, "bulk load, one transaction, 10M entries (per entry)"),
    ("bulk_load_k16v100", M, 1, "bulk load, 16 B / 100 B (per entry)"),
    ("counter", M, 1, "counter increment, 1 process"),
    ("counter", M, 2, "counter increment, 2 processes (aggregate)"),
    ("counter_apply_1proc", M, 1, "counter `Atom::add` as one swap, 1 process"),
    ("counter_apply_2proc", M, 2, "counter `Atom::add` as one swap, 2 processes (aggregate)"),
    ("counter_apply_4proc", M, 4, "counter `Atom::add` as one swap, 4 processes (aggregate)"),
    ("counter_apply_8proc", M, 8, "counter `Atom::add` as one swap, 8 processes (aggregate)"),
    ("counter_combine_1proc", M, 1, "counter `Atom::add` combining, 1 process"),
    ("counter_combine_2proc", M, 2, "counter `Atom::add` combining, 2 processes (aggregate)"),
    ("counter_combine_4proc", M, 4, "counter `Atom::add` combining, 4 processes (aggregate)"),
    ("counter_combine_8proc", M, 8, "counter `Atom::add` combining, 8 processes (aggregate)"),
    ("read_with_writer", M, 1, "read with 1 writer, 1 reader process"),
    ("read_with_writer", M, 2, "read with 1 writer, 2 reader processes"),
    ("get_u64", 10 * M, 1, "get, u64, 10M entries"),
    ("update_u64", 10 * M, 1, "single-key update, 10M entries"),
    ("attach", 1024, 1, "attach (open) a 1 GiB store, no other process attached"),
    ("attach_shared", 1024, 2, "attach a 1 GiB store while another process has it open"),
]


def ratio_table(d):
    lines = ["| workload | " + " | ".join(f"atomap / {p}" for p in PEERS) + " |",
             "|---|" + "---|" * len(PEERS)]
    for wl, n, procs, label in RATIO_WORKLOADS:
        field = "p50_ns" if wl.startswith("attach") else "ns_per_op"
        cells = []
        for p in PEERS:
            vs = paired(d.values("atomap", wl, n, procs, field), d.values(p, wl, n, procs, field),
                        lambda a, b: a / b)
            cells.append(summary(vs, x) if vs else "—")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_table(d):
    lines = ["| system | workload | entries | processes | ns/op | p50 | p99 |", "|---|---|---|---|---|---|---|"]
    keys = sorted(d.by.keys(), key=lambda k: (k[1], k[2], k[3], SYSTEMS.index(k[0])))
    for system, wl, n, procs in keys:
        if wl.startswith("bytes_on_disk"):
            continue
        mean = d.flat(system, wl, n, procs)
        p50 = d.flat(system, wl, n, procs, field="p50_ns")
        p99 = d.flat(system, wl, n, procs, field="p99_ns")
        lines.append(f"| {system} | {wl} | {n:,} | {procs} | {summary(mean, ns)} | "
                     f"{summary(p50, ns) if p50 else '—'} | {summary(p99, ns) if p99 else '—'} |")
    return "\n".join(lines)


def space_table(d):
    lines = ["| system | shape | entries | bytes on disk / entry | allocator live / entry | free / entry | unused / entry |",
             "|---|---|---|---|---|---|---|"]
    for (system, wl, n, procs) in sorted(d.by.keys(), key=lambda k: (k[1], k[2], SYSTEMS.index(k[0]))):
        if not wl.startswith("bytes_on_disk"):
            continue
        cells = []
        for f in ("bytes_per_entry", "live_bytes_per_entry", "free_bytes_per_entry", "unused_bytes_per_entry"):
            vs = d.flat(system, wl, n, procs, field=f)
            cells.append(summary(vs, plain) if vs else "—")
        lines.append(f"| {system} | {wl.removeprefix('bytes_on_disk_')} | {n:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_latency(d, path):
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), dpi=80)
    for ax, wl, title in ((axes[0], "get_u64", "get (u64), ns per op"),
                          (axes[1], "update_u64", "single-key update (u64), p50 ns")):
        field = "ns_per_op" if wl == "get_u64" else "p50_ns"
        for s in SYSTEMS[:4]:
            pts = sorted((n, statistics.median(d.flat(s, wl, n, field=field)))
                         for (sy, w, n, p) in d.by if sy == s and w == wl and p == 1
                         and d.flat(s, wl, n, field=field))
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=s)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("entries")
        ax.set_title(title, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_processes(d, path):
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), dpi=80)
    for ax, wl, title in ((axes[0], "counter", "one counter: increments / s"),
                          (axes[1], "read_with_writer", "reads / s with 1 writer")):
        for s in SYSTEMS[:3]:
            pts = sorted((p, 1e9 / statistics.median(d.flat(s, wl, n, p)))
                         for (sy, w, n, p) in d.by if sy == s and w == wl and n == M)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=s)
        ax.set_xlabel("processes" if wl == "counter" else "reader processes")
        ax.set_xticks([1, 2])
        ax.set_yscale("log")
        ax.set_title(title + " (1M entries)", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inputs", nargs="+")
    ap.add_argument("--command", required=True, help="the command that produced the inputs")
    ap.add_argument("--duration", default="", help="how long the run took")
    ap.add_argument("--load", default="", help="load average during the run")
    ap.add_argument("--notes", help="a markdown file of analysis appended to the page")
    ap.add_argument("--docs", default="docs")
    args = ap.parse_args()

    d = Data(load(args.inputs))
    m = machine()
    plot_latency(d, os.path.join(args.docs, "bench_latency.png"))
    plot_processes(d, os.path.join(args.docs, "bench_processes.png"))
    try:
        lmdb = subprocess.run(["pkg-config", "--modversion", "lmdb"], capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        lmdb = "?"

    page = [
        "# Benchmarks: atomap against its peers",
        "",
        "Generated by `bench/report.py` from the JSON lines of `bench/peers` (do not edit by hand;",
        "the analysis at the end comes from `--notes`).",
        "",
        "## Run",
        f"- Machine: {m['nproc']} vCPUs ({m['cpu']}; {m['caches']}), {m['ram']} RAM, Linux {m['kernel']};"
        " **shared with other engineers' builds and tests while measuring: noisy**.",
        f"- Runs (UTC start times): {', '.join(d.runs)}" + (f"; duration {args.duration}" if args.duration else ""),
        (f"- Load average during the run: {args.load}" if args.load else ""),
        f"- Command: `{args.command}`",
        f"- Peers: LMDB {lmdb} (`MDB_NOSYNC|MDB_WRITEMAP|MDB_NOMETASYNC`; `lmdb_sync`: no flags, full"
        " sync per commit), Boost.Interprocess `boost::unordered_map` in a `managed_mapped_file`"
        " behind an `interprocess_sharable_mutex`, `std::unordered_map` behind `std::shared_mutex`"
        " (one process: the ceiling).",
        "- Figures: median (min–max, n = samples: repetitions × interleaved rounds). Ratios pair"
        " the two systems' rows of the same run and round. Below 1× means atomap takes less time.",
        "",
        "## Targets",
        "| target | measured (atomap) | status |",
        "|---|---|---|",
    ]
    page += [f"| {t} | {v} | {s} |" for t, v, s in targets(d)]
    page += [
        "",
        "## Ratios: atomap time per operation / peer's (1M entries unless stated)",
        ratio_table(d),
        "",
        "## Plots",
        "![latency against entries](bench_latency.png)",
        "",
        "![throughput against processes](bench_processes.png)",
        "",
        "## Space",
        space_table(d),
        "",
        "## All results",
        results_table(d),
        "",
    ]
    if args.notes:
        with open(args.notes) as f:
            page.append(f.read())
    with open(os.path.join(args.docs, "benchmarks.md"), "w") as f:
        f.write("\n".join(line for line in page if line is not None) + "\n")


if __name__ == "__main__":
    main()

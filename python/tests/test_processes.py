"""Several Python processes on one file: swaps lose nothing; a writer killed mid-run loses
nothing it was told was published, and leaks nothing once recovered.

The children are real processes (the same interpreter, exec'd), synchronised on pipes.
"""

import os
import signal
import subprocess
import sys

import atomap

CHILD = r"""
import sys
import atomap
path, rounds = sys.argv[1], int(sys.argv[2])
with atomap.open(path) as dom:
    counter = dom.atom("counter", key=atomap.STR, value=atomap.U64)
    print("ready", flush=True)
    sys.stdin.readline()  # "go": every child starts together
    for i in range(rounds):
        snap = counter.swap(lambda tx: tx.update("n", lambda n: (n or 0) + 1))
        snap.close()
        print("acked", flush=True)  # published: the parent counts it
"""


def spawn(path, rounds):
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, path, str(rounds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def test_processes_incrementing_one_counter_end_at_the_sum(path):
    atomap.open(path).close()
    rounds = 400
    children = [spawn(path, rounds) for _ in range(3)]
    for child in children:
        assert child.stdout.readline() == "ready\n"
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    for child in children:
        out, _ = child.communicate(timeout=120)
        assert child.returncode == 0
        assert out.count("acked") == rounds
    with atomap.open(path) as dom:
        counter = dom.atom("counter", key=atomap.STR, value=atomap.U64)
        assert counter.get("n") == 3 * rounds
        assert counter.version() == 3 * rounds
        report = dom.check()
        assert report["space_checked"] and report["problems"] == [], report


def test_killed_writer_loses_nothing_acknowledged_and_leaks_nothing(path):
    atomap.open(path).close()
    child = spawn(path, 10**9)
    assert child.stdout.readline() == "ready\n"
    child.stdin.write("go\n")
    child.stdin.flush()
    acked = 0
    while acked < 500:
        assert child.stdout.readline() == "acked\n"
        acked += 1
    os.kill(child.pid, signal.SIGKILL)  # somewhere in a swap, or between two
    acked += child.stdout.read().count("acked")  # what it printed before it died
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    with atomap.open(path) as dom:  # alone: recovers the dead writer's slot
        counter = dom.atom("counter", key=atomap.STR, value=atomap.U64)
        n = counter.get("n")
        assert acked <= n <= acked + 1  # at most one published swap not yet acknowledged
        counter.swap(lambda tx: tx.update("n", lambda v: v + 1))
        assert counter.get("n") == n + 1
        report = dom.check(repair=False)
        assert report["problems"] == [], report["problems"]
        assert report["leaked_bytes"] == 0


EXIT_WITH_HANDLES = r"""
import sys, threading
import atomap
dom = atomap.open(sys.argv[1])
atom = dom.atom("x")
atom.swap(lambda tx: tx.set(b"k", b"v"))
kept = []
t = threading.Thread(target=lambda: kept.append(atom.load()))
t.start()
t.join()
stop = threading.Event()
def daemon():
    kept.append(atom.load())  # queued for this thread below, which never calls again
    stop.wait()
d = threading.Thread(target=daemon, daemon=True)
d.start()
while len(kept) < 2:
    pass
kept[1].close()
kept.append(atom.load())
watch = atom.watch(timeout=0)
print("exiting", flush=True)
# Exit with the domain, snapshots (one of an exited thread, one queued for a live daemon
# thread) and a watcher all still open.
"""


def test_interpreter_exits_cleanly_with_handles_open(path):
    done = subprocess.run([sys.executable, "-c", EXIT_WITH_HANDLES, path], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "exiting\n"
    with atomap.open(path) as dom:
        assert dom.atom("x").get(b"k") == b"v"
        assert dom.check()["problems"] == []

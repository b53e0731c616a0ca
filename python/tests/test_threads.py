"""Threads: swap retries, the GIL released while waiting, snapshots dropped on other threads."""

import gc
import os
import queue
import threading
import time

import pytest

import atomap


def increment(tx):
    tx.update("n", lambda n: (n or 0) + 1)


def test_contending_swaps_lose_nothing(dom):
    counter = dom.atom("c", key=atomap.STR, value=atomap.U64)
    rounds = 300

    def work():
        for _ in range(rounds):
            counter.swap(lambda tx: (increment(tx), time.sleep(0)))  # switch threads mid-fn

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counter.get("n") == 2 * rounds
    assert counter.version() == 2 * rounds


def test_swap_function_runs_again_after_a_lost_race(dom):
    counter = dom.atom("c", key=atomap.STR, value=atomap.U64)
    inside = threading.Event()
    published = threading.Event()
    attempts = []

    def slow(tx):
        attempts.append(tx.get("n"))
        increment(tx)
        if len(attempts) == 1:
            inside.set()
            published.wait()  # the other thread publishes meanwhile: this attempt loses

    def other():
        inside.wait()
        counter.swap(increment)
        published.set()

    t = threading.Thread(target=other)
    t.start()
    snap = counter.swap(slow)
    t.join()
    assert attempts == [None, 1]
    assert snap["n"] == 2 and snap.version == 2
    snap.close()


def test_exception_in_swap_leaves_atom_unchanged(dom):
    atom = dom.atom("x")
    atom.swap(lambda tx: tx.set(b"k", b"v"))

    class Mine(Exception):
        pass

    error = Mine("from fn")

    def failing(tx):
        tx.set(b"k", b"changed")
        tx.set_many({b"a%d" % i: b"x" * 100 for i in range(2000)})
        raise error

    with pytest.raises(Mine) as raised:
        atom.swap(failing)
    assert raised.value is error  # the very exception, unchanged
    assert atom.version() == 1
    with atom.load() as snap:
        assert dict(snap) == {b"k": b"v"}
    gc.collect()
    assert dom.check()["problems"] == []
    # An exception from an update function propagates too.
    with pytest.raises(ZeroDivisionError):
        atom.swap(lambda tx: tx.update(b"k", lambda old: 1 / 0))
    assert atom.version() == 1


def test_begin_compare_and_set(dom):
    atom = dom.atom("x")
    with atom.load() as base:
        tx = atom.begin(base)
        tx.set(b"mine", b"1")
        atom.swap(lambda t: t.set(b"theirs", b"1"))
        with pytest.raises(atomap.LostRace, match="another writer published first"):
            atom.compare_and_set(tx)
    with pytest.raises(atomap.FailedPreconditionError, match="compare_and_set"):
        tx.set(b"again", b"x")
    assert atom.get(b"mine") is None
    with atom.load() as base:
        tx = atom.begin(base)
        tx.set(b"mine", b"2")
        with atom.compare_and_set(tx) as published:
            assert dict(published) == {b"theirs": b"1", b"mine": b"2"}
            assert published.version == 2


def test_begin_transaction_belongs_to_its_thread(dom):
    atom = dom.atom("x")
    with atom.load() as base:
        tx = atom.begin(base)
    errors = []

    def use():
        try:
            tx.set(b"k", b"v")
        except atomap.FailedPreconditionError as e:
            errors.append(str(e))

    t = threading.Thread(target=use)
    t.start()
    t.join()
    assert errors and "thread that began it" in errors[0]
    del tx
    gc.collect()


def test_wait_for_change_timeout(dom):
    atom = dom.atom("x")
    start = time.monotonic()
    assert atom.wait_for_change(atom.version(), timeout=0.3) is None
    assert time.monotonic() - start >= 0.29
    assert atom.wait_for_change(atom.version(), timeout=0) is None
    # A version already past the one seen returns at once.
    atom.swap(lambda tx: tx.set(b"k", b"v"))
    with atom.wait_for_change(0, timeout=5) as snap:
        assert snap.version == 1


def test_wait_for_change_releases_the_gil(dom):
    atom = dom.atom("x")
    seen = atom.version()
    waiting = threading.Event()
    worked = []

    def worker():
        waiting.wait()
        n = 0
        for _ in range(200000):  # pure Python: needs the GIL throughout
            n += 1
        worked.append(n)
        atom.swap(lambda tx: tx.set(b"k", b"published"))

    t = threading.Thread(target=worker)
    t.start()
    waiting.set()
    snap = atom.wait_for_change(seen, timeout=60)
    t.join()
    assert worked == [200000]
    assert snap is not None and snap[b"k"] == b"published"
    snap.close()


def test_other_threads_run_throughout_a_wait(dom):
    # If the wait held the GIL (even in 200 ms slices), the worker would stall for whole slices.
    atom = dom.atom("x")
    inside = threading.Event()
    stop = threading.Event()
    gaps = []

    def worker():
        inside.wait()
        last = time.monotonic()
        biggest = 0.0
        while not stop.is_set():
            now = time.monotonic()
            biggest = max(biggest, now - last)
            last = now
        gaps.append(biggest)

    t = threading.Thread(target=worker)
    t.start()
    inside.set()
    assert atom.wait_for_change(atom.version(), timeout=1.0) is None
    stop.set()
    t.join()
    assert gaps[0] < 0.15


def test_close_ends_a_wait_on_another_thread(path):
    dom = atomap.open(path)
    atom = dom.atom("x")
    started = threading.Event()
    outcome = []

    def waiter():
        started.set()
        try:
            atom.wait_for_change(atom.version())  # no timeout
        except atomap.FailedPreconditionError as e:
            outcome.append(str(e))

    t = threading.Thread(target=waiter)
    t.start()
    started.wait()
    dom.close()
    t.join(timeout=30)
    assert not t.is_alive()
    assert outcome and "closed" in outcome[0]


def pinned(dom):
    return dom.stats()["any_pinned"]


def join_until_exited(thread):
    # join() returns when the Python thread is done, before its OS thread runs its thread_local
    # destructors (where a thread's box drains and is marked exited) and exits: wait for the
    # kernel to report the thread gone.
    tid = thread.native_id
    thread.join()
    deadline = time.monotonic() + 30
    while os.path.exists("/proc/self/task/%d" % tid):
        assert time.monotonic() < deadline, "thread %d did not exit" % tid
        time.sleep(0.001)


def test_snapshot_dropped_on_another_thread_while_owner_lives(dom):
    atom = dom.atom("x")
    atom.swap(lambda tx: tx.set(b"k", b"v0"))
    handoff = queue.Queue()
    dropped = threading.Event()
    drained = threading.Event()

    def owner():
        handoff.put(atom.load())
        dropped.wait()
        atom.version()  # any call that pins first destroys what other threads left
        drained.set()
        dropped.wait()

    t = threading.Thread(target=owner)
    t.start()
    snap = handoff.get()
    assert snap[b"k"] == b"v0"  # readable from any thread
    del snap
    gc.collect()
    assert pinned(dom)  # queued for its owner, still pinned
    churn(atom, 1000)
    assert dom.stats()["pending_garbage_blocks"] >= 1000  # the queued pin holds them back
    dropped.set()
    drained.wait()
    assert not pinned(dom)
    t.join()
    assert_garbage_drains(dom, atom)


def test_snapshot_dropped_after_owner_exited(dom):
    atom = dom.atom("x")
    atom.swap(lambda tx: tx.set(b"k", b"v0"))
    handoff = []
    t = threading.Thread(target=lambda: handoff.append(atom.load()))
    t.start()
    join_until_exited(t)  # the owner thread is gone; its participant is kept, pinned
    snap = handoff.pop()
    atom.swap(lambda tx: tx.set(b"k", b"v1"))
    assert snap[b"k"] == b"v0"
    assert pinned(dom)
    snap.close()  # destroyed here, under the exited box's mutex
    assert not pinned(dom)
    assert_garbage_drains(dom, atom)


def test_snapshot_queued_for_an_owner_that_exits(dom):
    # Dropped while the owner lives, which then exits without another call: its thread-exit
    # destructor destroys what was queued for it.
    atom = dom.atom("x")
    handoff = queue.Queue()
    dropped = threading.Event()

    def owner():
        handoff.put(atom.load())
        dropped.wait()

    t = threading.Thread(target=owner)
    t.start()
    handoff.get().close()
    assert pinned(dom)
    dropped.set()
    join_until_exited(t)
    assert not pinned(dom)
    assert_garbage_drains(dom, atom)


def test_snapshots_dropped_by_many_threads(dom):
    atom = dom.atom("x")
    snaps = queue.Queue()
    owners = [threading.Thread(target=lambda: [snaps.put(atom.load()) for _ in range(20)])
              for _ in range(4)]
    for t in owners:
        t.start()
    for t in owners:
        join_until_exited(t)
    held = [snaps.get() for _ in range(80)]

    def drop(part):
        for s in part:
            s.close()

    droppers = [threading.Thread(target=drop, args=(held[i::4],)) for i in range(4)]
    for t in droppers:
        t.start()
    for t in droppers:
        t.join()
    del held
    gc.collect()
    assert not pinned(dom)
    assert_garbage_drains(dom, atom)


def churn(atom, swaps):
    for i in range(swaps):
        atom.swap(lambda tx, i=i: tx.set(b"k", b"v%d" % i)).close()


def assert_garbage_drains(dom, atom):
    # Every swap retires at least the version it replaces: a pin left behind would keep all of
    # them (>= 1000); with none, the steady state is a few epoch scans' worth (~200 blocks).
    churn(atom, 1000)
    pending = dom.stats()["pending_garbage_blocks"]
    assert pending < 500, pending
    report = dom.check()
    assert report["problems"] == [], report["problems"]


def test_snapshots_cross_threads_under_churn(dom):
    # Threads load, swap, and close each other's snapshots at random, some after their owner
    # exited; at the end nothing is pinned, garbage drains and the domain checks clean.
    import random

    atom = dom.atom("x", key=atomap.STR, value=atomap.U64)
    shared = []
    lock = threading.Lock()
    rounds = 300

    def work(seed):
        rng = random.Random(seed)
        for i in range(rounds):
            snap = atom.load()
            with lock:
                shared.append(snap)
                victim = shared.pop(rng.randrange(len(shared)))
            victim["n"] if "n" in victim else None  # read from a thread that may not own it
            victim.close()
            if i % 3 == 0:
                atom.swap(increment)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads[:2]:
        join_until_exited(t)
    for t in threads[2:]:
        join_until_exited(t)
    with lock:
        left = list(shared)
        shared.clear()
    for snap in left:  # their owners have exited
        snap.close()
    del left
    gc.collect()
    assert not pinned(dom)
    assert atom.get("n") == 4 * len(range(0, rounds, 3))
    assert_garbage_drains(dom, dom.atom("x"))  # the same atom, as bytes


def test_a_signal_ends_an_endless_wait(dom):
    # Ctrl-C must work: the wait returns to Python between slices to run signal handlers.
    import signal

    class Interrupted(Exception):
        pass

    def handler(signum, frame):
        raise Interrupted()

    atom = dom.atom("x")
    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(Interrupted):
            atom.wait_for_change(atom.version())  # no timeout
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(Interrupted):
            next(atom.watch())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

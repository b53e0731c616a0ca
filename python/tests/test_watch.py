"""Atom.watch: each change as added / removed / changed, waiting with the GIL released."""

import threading

import atomap


def test_watch_sees_every_kind_of_change(dom):
    atom = dom.atom("cfg")
    atom.swap(lambda tx: tx.set_many({b"keep": b"1", b"change": b"a", b"drop": b"x"}))
    changes = atom.watch(timeout=0.2)
    atom.swap(lambda tx: (tx.set(b"new", b"n"), tx.set(b"change", b"b"), tx.erase(b"drop")))
    got = list(changes)
    assert got == [  # one diff, in key order
        atomap.Change("changed", b"change", b"a", b"b"),
        atomap.Change("removed", b"drop", b"x", None),
        atomap.Change("added", b"new", None, b"n"),
    ]
    assert got[2].kind == "added" and got[2].key == b"new" and got[2].new == b"n"
    assert list(changes) == []  # timed out: iteration ended


def test_watch_follows_a_writer_thread(dom):
    atom = dom.atom("cfg", key=atomap.STR, value=atomap.U64)
    state = {}

    def writer():
        for i in range(50):
            atom.swap(lambda tx, i=i: tx.set("k%d" % (i % 5), i))
        atom.swap(lambda tx: tx.erase("k0"))
        atom.swap(lambda tx: tx.set("zz-done", 1))

    watcher = atom.watch(timeout=30)
    t = threading.Thread(target=writer)
    t.start()
    for change in watcher:
        if change.kind == "removed":
            del state[change.key]
        else:
            state[change.key] = change.new
        if "zz-done" in state:
            break
    t.join()
    with atom.load() as snap:
        assert state == dict(snap)
    assert "k0" not in state and state["k4"] == 49

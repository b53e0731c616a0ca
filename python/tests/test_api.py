"""The API of the issue's example: open, atoms, snapshots as Mappings, swap and its transaction."""

import collections.abc
import os

import pytest

import atomap


def test_issue_example(path):
    with atomap.open(path) as dom:
        cfg = dom.atom("config")
        cfg.swap(lambda tx: tx.set(b"port", b"8080"))
        with cfg.load() as snap:
            assert snap[b"port"] == b"8080"
            assert isinstance(snap, collections.abc.Mapping)
            with snap.view(b"port") as view:
                assert bytes(view) == b"8080"
    assert dom.closed
    # The file persists: a later open sees the same version.
    with atomap.open(path, create=False) as again:
        assert again.created is False
        assert again.atom("config").get(b"port") == b"8080"
        assert again.atom("config").version() == 1


def test_path_like_paths(tmp_path):
    with atomap.open(tmp_path / "p.atomap") as dom:  # a pathlib.Path
        assert dom.path == str(tmp_path / "p.atomap")
    with atomap.open(os.fsencode(tmp_path / "p.atomap"), create=False) as dom:  # bytes
        assert dom.created is False


def test_snapshot_is_a_mapping_of_one_version(dom):
    atom = dom.atom("m")
    atom.swap(lambda tx: tx.set_many({b"a": b"1", b"b": b"2", b"c": b"3"}))
    with atom.load() as snap:
        atom.swap(lambda tx: tx.set(b"d", b"4"))  # published after the load: not in snap
        assert len(snap) == 3
        assert sorted(snap) == [b"a", b"b", b"c"]
        assert sorted(snap.keys()) == [b"a", b"b", b"c"]
        assert sorted(snap.values()) == [b"1", b"2", b"3"]
        assert sorted(snap.items()) == [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]
        assert dict(snap) == {b"a": b"1", b"b": b"2", b"c": b"3"}
        assert b"a" in snap and b"d" not in snap
        assert snap.get(b"d") is None and snap.get(b"d", b"x") == b"x"
        with pytest.raises(KeyError):
            snap[b"d"]
        assert snap.version == 1
    assert atom.version() == 2
    assert atom.get(b"d") == b"4"
    assert atom.get(b"zz", 7) == 7


def test_closed_snapshot_refuses(dom):
    atom = dom.atom("m")
    snap = atom.load()
    snap.close()
    snap.close()  # idempotent
    assert snap.closed
    with pytest.raises(atomap.FailedPreconditionError, match="snapshot is closed"):
        len(snap)


def test_transaction_operations(dom):
    atom = dom.atom("t")
    atom.swap(lambda tx: tx.set_many([(b"k1", b"v1"), (b"k2", b"v2")]))
    seen = {}

    def edit(tx):
        assert len(tx) == 2
        assert tx[b"k1"] == b"v1" and tx.get(b"nope") is None and b"k2" in tx
        assert tx.erase(b"k2") is True
        assert tx.erase(b"k2") is False
        tx[b"k3"] = b"v3"
        tx.update(b"k1", lambda old: old + b"!")
        tx.update(b"k4", lambda old: b"new" if old is None else b"bad")
        tx.update(b"k3", lambda old: None)  # None erases
        tx.tag = 42
        seen["len"] = len(tx)
        seen["tx"] = tx

    snap = atom.swap(edit)
    assert seen["len"] == 2
    assert dict(snap) == {b"k1": b"v1!", b"k4": b"new"}
    assert snap.tag == 42 and snap.version == 2
    snap.close()
    # The transaction is unusable after its function returned.
    with pytest.raises(atomap.FailedPreconditionError, match="only while that function runs"):
        seen["tx"].set(b"late", b"x")
    assert seen["tx"].active is False


def test_swap_returns_published_snapshot_and_reset(dom):
    atom = dom.atom("r")
    atom.swap(lambda tx: tx.set_many({b"a": b"1", b"b": b"2"}))
    with atom.reset({b"b": b"20", b"c": b"30"}) as snap:
        assert dict(snap) == {b"b": b"20", b"c": b"30"}
    big = {str(i).encode(): b"v" * (i % 7) for i in range(5000)}  # released GIL path
    with atom.reset(big) as snap:
        assert len(snap) == 5000 and dict(snap) == big


def test_domain_accessors(dom, path):
    dom.atom("b")
    dom.atom("a")
    assert dom.atom_names() == ["a", "b"]
    assert dom.path == path
    assert dom.read_only is False
    assert dom.kind == "file"
    stats = dom.stats()
    assert stats["participants"] >= 1 and "pending_garbage_bytes" in stats
    assert "participant_list" not in stats
    with dom.atom("a").load():
        listed = dom.stats(participants=True)["participant_list"]
    me = [p for p in listed if p["pid"] == os.getpid() and p["pinned"]]
    assert me and me[0]["kind"] == "writer" and me[0]["alive"] is True
    report = dom.check()
    assert report["ok"] and report["problems"] == [] and report["space_checked"]
    dom.sync()
    assert "test.atomap" in repr(dom)


def test_memory_and_shm_kinds():
    with atomap.open("py-test-memory", kind="memory") as dom:
        assert dom.kind == "memory"
        dom.atom("x").swap(lambda tx: tx.set(b"k", b"v"))
        assert dom.atom("x").get(b"k") == b"v"
    name = "py-test-%d" % os.getpid()
    try:
        with atomap.open(name, kind="shm", max_size=1 << 26) as dom:
            assert dom.kind == "shm"
            assert dom.path.startswith("/dev/shm/")
            dom.atom("x").swap(lambda tx: tx.set(b"k", b"v"))
        with atomap.open(name, kind="shm", create=False) as dom:
            assert dom.atom("x").get(b"k") == b"v"
    finally:
        for suffix in ("", ".lock", ".readers"):
            try:
                os.unlink("/dev/shm/atomap." + name + suffix)
            except FileNotFoundError:
                pass


def test_closed_domain_refuses(path):
    dom = atomap.open(path)
    atom = dom.atom("x")
    atom.swap(lambda tx: tx.set(b"k", b"v"))
    snap = atom.load()
    dom.close()
    dom.close()  # idempotent
    assert dom.closed and "closed" in repr(dom)
    assert snap[b"k"] == b"v"  # an open snapshot stays readable until closed
    snap.close()
    for call in (lambda: dom.atom("y"), atom.load, atom.version, lambda: atom.get(b"k")):
        with pytest.raises(atomap.FailedPreconditionError, match="closed"):
            call()


def test_read_only_domain(path):
    with atomap.open(path) as dom:
        dom.atom("cfg").swap(lambda tx: tx.set(b"k", b"v"))
    with atomap.open(path, read_only=True) as ro:
        assert ro.read_only
        cfg = ro.atom("cfg")
        assert cfg.get(b"k") == b"v"
        with cfg.load() as snap:
            assert dict(snap) == {b"k": b"v"}
        with pytest.raises(atomap.FailedPreconditionError):
            cfg.swap(lambda tx: tx.set(b"k", b"w"))
        with pytest.raises(atomap.NotFoundError):
            ro.atom("missing")
    with atomap.open(path) as dom:
        assert dom.atom("cfg").get(b"k") == b"v"


def test_durability_and_verify_reads_options(path):
    with atomap.open(path, durability="sync", verify_reads=True, lock_timeout=2.5) as dom:
        dom.atom("x").swap(lambda tx: tx.set(b"k", b"v"))
    with atomap.open(path, verify_reads=True) as dom:
        assert dom.atom("x").get(b"k") == b"v"

"""Snapshot.view: zero-copy memoryviews, and close() refusing while one lives (as mmap)."""

import gc

import pytest

import atomap


def test_view_is_read_only_and_zero_copy(dom):
    atom = dom.atom("blobs")
    atom.swap(lambda tx: tx.set(b"blob", b"0123456789" * 1000))
    snap = atom.load()
    first = snap.view(b"blob")
    second = snap.view(b"blob")
    assert first.readonly and len(first) == 10000
    assert bytes(first[:10]) == b"0123456789"


def test_close_from_a_finalizer_during_a_read(dom):
    # A garbage collection during items() runs a finalizer that closes the snapshot: the read
    # finishes on the version it held, and the snapshot is closed after.
    atom = dom.atom("many")
    atom.reset({b"%d" % i: b"v" for i in range(2000)})
    snap = atom.load()

    class Closer:
        def __del__(self):
            snap.close()

    items = snap.items
    threshold = gc.get_threshold()
    gc.disable()
    try:
        closer = Closer()
        closer.cycle = closer  # collected only by the garbage collector
        del closer
        gc.set_threshold(1)
        gc.enable()
        got = items()
    finally:
        gc.set_threshold(*threshold)
        gc.enable()
    assert len(got) == 2000 and all(value == b"v" for _, value in got)
    assert snap.closed

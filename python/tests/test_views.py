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

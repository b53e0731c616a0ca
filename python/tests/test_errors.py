"""Errors: one class per library status code, carrying the library's message."""

import os

import pytest

import atomap


def test_hierarchy():
    for cls in (
        atomap.NotFoundError,
        atomap.AlreadyExistsError,
        atomap.InvalidArgument,
        atomap.PermissionDeniedError,
        atomap.DataLossError,
        atomap.ResourceExhaustedError,
        atomap.FailedPreconditionError,
        atomap.DeadlineExceededError,
        atomap.LostRace,
    ):
        assert issubclass(cls, atomap.Error)
    assert issubclass(atomap.Error, Exception)
    assert issubclass(atomap.InvalidArgument, ValueError)
    assert issubclass(atomap.PermissionDeniedError, PermissionError)
    assert issubclass(atomap.DeadlineExceededError, TimeoutError)
    assert not issubclass(atomap.NotFoundError, KeyError)


def test_not_found_names_the_path_and_atom(path, dom):
    with pytest.raises(atomap.NotFoundError) as raised:
        dom.find_atom("nothing-here")
    assert path in str(raised.value) and "nothing-here" in str(raised.value)
    with pytest.raises(atomap.NotFoundError) as raised:
        atomap.open(path + ".missing", create=False)
    assert "missing" in str(raised.value)


def test_invalid_arguments(dom):
    atom = dom.atom("x")
    with pytest.raises(atomap.InvalidArgument) as raised:
        atom.swap(lambda tx: tx.set(b"k" * (64 * 1024 + 1), b"v"))
    assert isinstance(raised.value, ValueError) and "key" in str(raised.value)
    assert atom.version() == 0
    with pytest.raises(atomap.InvalidArgument):
        dom.atom("")
    with pytest.raises(ValueError, match="kind"):
        atomap.open("x", kind="disk")
    with pytest.raises(ValueError, match="durability"):
        atomap.open("x", durability="never")


def test_not_a_domain(tmp_path):
    junk = tmp_path / "junk.atomap"
    junk.write_bytes(b"this is not a domain" * 100)
    with pytest.raises(atomap.Error) as raised:
        atomap.open(str(junk))
    assert str(junk) in str(raised.value)
    assert type(raised.value) in (atomap.FailedPreconditionError, atomap.DataLossError)
    assert junk.read_bytes() == b"this is not a domain" * 100  # left untouched


def test_already_exists(path):
    atomap.open(path, exclusive=True).close()
    with pytest.raises(atomap.AlreadyExistsError) as raised:
        atomap.open(path, exclusive=True)
    assert path in str(raised.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root bypasses file modes")
def test_permission_denied(tmp_path):
    p = tmp_path / "locked.atomap"
    atomap.open(str(p)).close()
    os.chmod(p, 0)
    with pytest.raises(atomap.PermissionDeniedError) as raised:
        atomap.open(str(p))
    assert isinstance(raised.value, PermissionError)


def test_resource_exhausted(tmp_path):
    with atomap.open(str(tmp_path / "small.atomap"), max_size=4 << 20) as dom:
        atom = dom.atom("big")
        blob = b"x" * (1 << 20)
        with pytest.raises(atomap.ResourceExhaustedError):
            for i in range(64):
                atom.swap(lambda tx, i=i: tx.set(b"%d" % i, blob))
        before = atom.version()
        assert dom.check()["ok"]
        assert atom.version() == before


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the file to another user")
def test_foreign_owner_is_permission_denied(tmp_path):
    p = str(tmp_path / "foreign.atomap")
    with atomap.open(p) as dom:
        dom.atom("a").swap(lambda tx: tx.set(b"k", b"v"))
    for name in (p, p + ".lock", p + ".readers"):
        if os.path.exists(name):
            os.chown(name, 65534, 65534)
    with pytest.raises(atomap.PermissionDeniedError) as raised:
        atomap.open(p)
    assert isinstance(raised.value, PermissionError) and p in str(raised.value)
    with atomap.open(p, allow_foreign_owner=True) as dom:
        assert dom.atom("a").get(b"k") == b"v"

"""Shared fixtures: a fresh domain file per test (pytest's tmp_path), closed afterwards."""

import gc

import pytest

import atomap


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "test.atomap")


@pytest.fixture
def dom(path):
    domain = atomap.open(path)
    yield domain
    domain.close()
    gc.collect()  # snapshots a test left open let go of the file now

"""Another process, in C++: the atomap tool (tools/) reads what Python wrote, and the reverse.

ctest sets ATOMAP_TOOL to the built tool; without it these tests are skipped.
"""

import os
import struct
import subprocess

import pytest

import atomap

TOOL = os.environ.get("ATOMAP_TOOL")
pytestmark = pytest.mark.skipif(not TOOL, reason="ATOMAP_TOOL (the atomap tool) is not set")


def tool(*args):
    return subprocess.run([TOOL, *args], capture_output=True, text=True, check=False, timeout=60)


def test_cpp_reads_what_python_wrote(path):
    with atomap.open(path) as dom:
        dom.atom("cfg").swap(lambda tx: tx.set(b"port", b"8080"))
        dom.atom("counters", key=atomap.STR, value=atomap.U64).swap(
            lambda tx: tx.set("hits", 258))
    got = tool("get", "--atom", "cfg", path, "port")
    assert got.returncode == 0 and got.stdout == "8080\n", got
    got = tool("get", "--hex", "--atom", "counters", path, b"hits".hex())
    assert got.returncode == 0, got
    assert got.stdout.strip() == struct.pack("=Q", 258).hex()  # Codec<std::uint64_t>'s bytes
    got = tool("check", path)
    assert got.returncode == 0, got


def test_python_sees_what_cpp_writes_while_open(path, dom):
    atom = dom.atom("cfg")
    seen = atom.version()
    got = tool("put", "--atom", "cfg", path, "host", "example")
    assert got.returncode == 0, got
    with atom.wait_for_change(seen, timeout=30) as snap:
        assert snap is not None and snap[b"host"] == b"example"
    counters = dom.atom("counters", key=atomap.STR, value=atomap.U64)
    got = tool("put", "--hex", "--atom", "counters", path, b"n".hex(), struct.pack("=Q", 7).hex())
    assert got.returncode == 0, got
    assert counters.get("n") == 7

"""C++ and Python processes on one domain file (issue 16's cross-language tests).

The C++ side is xlang_peer (python/tests/xlang_peer.cc), whose path CMake passes in
ATOMAP_XLANG_PEER. Processes synchronise on pipes (a line each way), never on sleeps.
"""
import os
import signal
import struct
import subprocess
import sys
import textwrap

import pytest

import atomap

PEER = os.environ.get("ATOMAP_XLANG_PEER")
pytestmark = pytest.mark.skipif(not PEER, reason="ATOMAP_XLANG_PEER (the C++ peer) is not set")


def peer(*args, **kwargs):
    return subprocess.run([PEER, *map(str, args)], capture_output=True, text=True, **kwargs)


def python(script, *args, **kwargs):
    """A separate Python process that imports this build's atomap."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
                            text=True, **kwargs)


ADDER = """
    import sys, atomap
    with atomap.open(sys.argv[1]) as dom:
        counters = dom.atom(sys.argv[2], key=atomap.STR, value=atomap.U64)
        for _ in range(int(sys.argv[3])):
            counters.swap(lambda tx: tx.set("hits", tx.get("hits", 0) + 1))
"""


def add_concurrently(path, python_adder, n):
    """2 C++ swappers and 2 Python adders, n increments each, at once: the sum must be exact."""
    cpp = [subprocess.Popen([PEER, "add", str(path), "c", "hits", str(n)]) for _ in range(2)]
    py = [python(python_adder, path, "c", n) for _ in range(2)]
    for process in cpp + py:
        assert process.wait() == 0
    result = peer("expect-u64", path, "c", "hits", 4 * n)
    assert result.returncode == 0, result.stderr


def test_cpp_and_python_adders_end_at_the_exact_sum(tmp_path):
    path = tmp_path / "counter.atomap"
    atomap.open(str(path)).close()
    n = 1500
    add_concurrently(path, ADDER, n)
    with atomap.open(str(path)) as dom:
        assert dom.atom("c", key=atomap.STR, value=atomap.U64).get("hits") == 4 * n
    check = peer("check", path)
    assert check.returncode == 0, check.stderr


def test_a_python_watcher_sees_every_version_a_cpp_writer_publishes(tmp_path):
    path = tmp_path / "watch.atomap"
    n = 200
    with atomap.open(str(path)) as dom:
        atom = dom.atom("w")
        writer = subprocess.Popen([PEER, "publish", str(path), "w", str(n)], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, text=True)
        seen = []
        changes = atom.watch()  # the baseline is taken here, before the writer may publish
        for i in range(1, n + 1):
            writer.stdin.write("ready\n")  # the writer publishes version i only now
            writer.stdin.flush()
            version = {}
            while b"seq" not in version:  # a diff comes in key order: "seq" is its last key
                change = next(changes)
                version[change.key] = change
            seen.append(struct.unpack("=Q", version.pop(b"seq").new)[0])
            assert version[f"k{i}".encode()].kind == "added"
            assert version[f"k{i}".encode()].new == b"x" * (i % 7 + 1)
            if i > 1:
                assert version[f"k{i - 1}".encode()].kind == "removed"
            assert len(version) == (1 if i == 1 else 2)
        writer.stdin.close()
        assert writer.wait() == 0
    assert seen == list(range(1, n + 1))


def test_a_cpp_reader_verifies_what_python_wrote(tmp_path):
    path = tmp_path / "config.atomap"
    with atomap.open(str(path)) as dom:
        config = dom.atom("config")
        config.swap(lambda tx: (tx.set(b"port", b"8080"), tx.set(b"mode", b"final"),
                                tx.set(b"gone", b"1")))
        config.swap(lambda tx: tx.erase(b"gone"))
    result = peer("expect", path, "config", "port=8080", "mode=final")
    assert result.returncode == 0, result.stderr


KILLED_WRITER = """
    import sys, atomap
    with atomap.open(sys.argv[1]) as dom:
        counters = dom.atom("c", key=atomap.STR, value=atomap.U64)
        count = 0
        def step(tx):
            tx.set("n", tx.get("n", 0) + 1)
            for i in range(50):  # work the kill must not leak
                tx.set(f"scratch{i}", i)
            if count == int(sys.argv[2]):
                print("in-fn", flush=True)
                sys.stdin.readline()  # killed here, mid-swap
        while True:
            counters.swap(step)
            count += 1
            print(f"acked {count}", flush=True)
"""


@pytest.mark.parametrize("acked_before_kill", [0, 25])
def test_kill_9_of_a_python_writer_mid_swap_loses_nothing_acknowledged(tmp_path, acked_before_kill):
    path = tmp_path / "killed.atomap"
    atomap.open(str(path)).close()
    writer = python(KILLED_WRITER, path, acked_before_kill, stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE)
    acked = 0
    for line in writer.stdout:
        if line.startswith("acked"):
            acked = int(line.split()[1])
        elif line.strip() == "in-fn":
            break
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert acked == acked_before_kill
    with atomap.open(str(path)) as dom:
        assert dom.atom("c", key=atomap.STR, value=atomap.U64).get("n", 0) == acked
    check = peer("check", path)  # a lone survivor: the dead writer's work is in flight, not lost
    assert check.returncode == 0, check.stderr


ADDER_DECLARATIVE = """
    import sys, atomap
    with atomap.open(sys.argv[1]) as dom:
        counters = dom.atom(sys.argv[2], key=atomap.STR, value=atomap.U64)
        for _ in range(int(sys.argv[3])):
            counters.add("hits")
"""


def test_python_add_and_cpp_swaps_on_one_counter_end_at_the_exact_sum(tmp_path):
    path = tmp_path / "add.atomap"
    with atomap.open(str(path)) as dom:
        counters = dom.atom("c", key=atomap.STR, value=atomap.U64)
        assert counters.add("hits", 5) == 5
        assert counters.add_i64("hits", -5) == 0
        dom.atom("s").swap(lambda tx: tx.set(b"short", b"abc"))
        with pytest.raises(atomap.FailedPreconditionError, match="short"):
            dom.atom("s").add(b"short")
    n = 1500
    add_concurrently(path, ADDER_DECLARATIVE, n)

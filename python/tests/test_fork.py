"""fork: inherited handles are inert in the child, which gets a clear error and may reopen."""

import gc
import os

import atomap


def test_child_of_fork_gets_a_clear_error_and_reopens(path, dom):
    atom = dom.atom("x")
    atom.swap(lambda tx: tx.set(b"parent", b"1"))
    snap = atom.load()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.close(read)
            messages = []
            for call in (atom.load, lambda: atom.swap(lambda tx: None), dom.stats,
                         lambda: snap[b"parent"]):
                try:
                    call()
                    messages.append("no error")
                except atomap.FailedPreconditionError as e:
                    messages.append(str(e))
            ok = all("fork()" in m and "atomap.open again" in m for m in messages)
            del snap  # dropping inherited handles leaves the parent's pins alone
            gc.collect()
            with atomap.open(path) as mine:
                mine.atom("x").swap(lambda tx: tx.set(b"child", b"1"))
            os.write(write, ("ok" if ok else "\n".join(messages)).encode())
        except BaseException as e:  # report anything to the parent
            os.write(write, repr(e).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    report = b""
    while chunk := os.read(read, 4096):
        report += chunk
    os.close(read)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert report == b"ok", report.decode()
    # The parent's handles still work, and see the child's write.
    assert snap[b"parent"] == b"1"
    snap.close()
    assert atom.get(b"child") == b"1"
    assert dom.check()["problems"] == []

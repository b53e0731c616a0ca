#!/usr/bin/env python3
"""config.py: shared configuration, the Python side of examples/config.cc, on the same file.

    config.py FILE [--readers N] [--cpp-reader PATH/TO/config]   the writer
    config.py FILE --reader FD                                    one reader (the writer starts it)

The writer clears atom "config", starts N Python readers (default 2) and, with --cpp-reader,
one C++ reader (`config FILE --reader FD`, examples/config.cc), then publishes three whole
configurations, several keys in one swap each, and finally "shutdown". Each reader follows the
atom with a watcher (it sleeps in the kernel until a version is published, with the GIL
released), prints what changed, and tells the writer through a pipe when it is watching and
when it has handled a version; the writer waits for every reader before the next version, so
each reader prints every version (no sleeps). A watch() delivers each version's changes
in key order, so "port", which every version changes, is a version's last change here. Readers end on "shutdown" and succeed if the
last port they saw is 8083, whichever language they are written in.
"""
import argparse
import os
import subprocess
import sys

import atomap

PORTS = ["8081", "8082", "8083"]


def reader(path, ready_fd, number):
    current = {}  # this reader's copy of the configuration, kept up to date from the changes
    with atomap.open(path) as dom:
        config = dom.atom("config")
        changes = config.watch()  # the baseline: the version now (empty: the writer cleared it)
        os.write(ready_fd, b"r")
        for change in changes:  # each version's changes, in key order
            if change.kind == "removed":
                del current[change.key]
                print(f"python reader {number} sees -{change.key.decode()}", flush=True)
            else:
                current[change.key] = change.new
                print(f"python reader {number} sees {change.key.decode()}={change.new.decode()}",
                      flush=True)
            if change.key == b"shutdown":
                break
            if change.key == b"port":  # every version changes the port, its last key: handled
                os.write(ready_fd, b"r")
    return 0 if current.get(b"port") == b"8083" else 1


def await_readers(fd, count):
    for _ in range(count):
        if os.read(fd, 1) != b"r":
            raise SystemExit("a reader went away")


def writer(path, readers, cpp_reader):
    with atomap.open(path) as dom:
        config = dom.atom("config")
        config.reset({})  # start from an empty configuration (the file may hold an old run's)
        ready_read, ready_write = os.pipe()
        commands = [[sys.executable, __file__, path, "--reader", str(ready_write),
                     "--number", str(i)] for i in range(readers)]
        if cpp_reader:
            commands.append([cpp_reader, path, "--reader", str(ready_write)])
        children = [subprocess.Popen(c, pass_fds=[ready_write]) for c in commands]
        os.close(ready_write)
        await_readers(ready_read, len(children))  # every reader is watching
        for port in PORTS:
            mode = "final" if port == PORTS[-1] else "warming-up"
            config.swap(lambda tx: (tx.set(b"port", port.encode()), tx.set(b"mode", mode.encode())))
            await_readers(ready_read, len(children))  # every reader has handled it
        config.swap(lambda tx: tx.set(b"shutdown", b"1"))
        ok = all(child.wait() == 0 for child in children)
    print(f"writer published {len(PORTS) + 1} versions; {len(children)} readers "
          f"({'one of them C++' if cpp_reader else 'Python'}) "
          f"{'all ended on port 8083' if ok else 'FAILED'}")
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(description="shared configuration across processes")
    parser.add_argument("file")
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--cpp-reader", help="the C++ example's binary, run as one more reader")
    parser.add_argument("--reader", type=int, metavar="FD", help=argparse.SUPPRESS)
    parser.add_argument("--number", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reader is not None:
        return reader(args.file, args.reader, args.number)
    return writer(args.file, args.readers, args.cpp_reader)


if __name__ == "__main__":
    sys.exit(main())

"""atomap: one evolving map shared between processes through a memory-mapped file.

The Python binding of the C++ library (same file, same protocol, same guarantees)::

    import atomap
    with atomap.open("/var/lib/app/state.atomap") as dom:
        cfg = dom.atom("config")
        with cfg.load() as snap:            # a Mapping[bytes, bytes] of one version
            port = snap[b"port"]            # a copy; snap.view(b"blob") is zero-copy
        cfg.swap(lambda tx: tx.set(b"port", b"8080"))   # fn may run more than once
        for change in cfg.watch(): ...      # added/removed/changed, GIL released while waiting

Typed atoms use exactly the C++ codecs (atomap::Codec<T>)::

    counters = dom.atom("counters", key=atomap.STR, value=atomap.U64)
    counters.swap(lambda tx: tx.update("hits", lambda n: (n or 0) + 1))

See docs/python.md for the API, threads, fork and the GIL.
"""

from collections.abc import Mapping as _Mapping

from ._atomap import (
    BYTES,
    F64,
    FORMAT_VERSION,
    I32,
    I64,
    STR,
    U32,
    U64,
    AlreadyExistsError,
    Atom,
    Change,
    Codec,
    DataLossError,
    DeadlineExceededError,
    Domain,
    Error,
    FailedPreconditionError,
    InvalidArgument,
    LostRace,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    Snapshot,
    Transaction,
    WatchIterator,
    __version__,
    open,
)

# A Snapshot is a read-only Mapping (isinstance(snap, collections.abc.Mapping) holds).
_Mapping.register(Snapshot)

# The classes are the extension's; they are documented, and shown, as atomap's.
for _cls in (Domain, Atom, Snapshot, Transaction, WatchIterator, Codec):
    _cls.__module__ = __name__
del _cls

__all__ = [
    "open",
    "Domain",
    "Atom",
    "Snapshot",
    "Transaction",
    "WatchIterator",
    "Change",
    "Codec",
    "BYTES",
    "STR",
    "U64",
    "I64",
    "U32",
    "I32",
    "F64",
    "Error",
    "NotFoundError",
    "AlreadyExistsError",
    "InvalidArgument",
    "PermissionDeniedError",
    "DataLossError",
    "ResourceExhaustedError",
    "FailedPreconditionError",
    "DeadlineExceededError",
    "LostRace",
    "FORMAT_VERSION",
    "__version__",
]

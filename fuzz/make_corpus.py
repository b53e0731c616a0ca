#!/usr/bin/env python3
"""Generates the fuzzer's seed corpus (tests/fuzz_corpus/): one valid domain and damaged copies.

    python3 fuzz/make_corpus.py build/release/tools/atomap tests/fuzz_corpus

Deterministic: the same CLI (hence the same file format) gives byte-identical files. Standard
library only. Run it again whenever the file format changes (every committed file would otherwise
be a "newer/older format" rejection that reaches no deeper code): it rewrites the files it makes
and leaves other files of the folder (crash-* inputs the fuzzer found) alone.

The valid seed is built with the `atomap` CLI (create, load, put, del): a small domain (2 slots,
4 atoms, max size SEED_MAX_SIZE, so that every file stays under libFuzzer's -max_len of 128 KiB),
three atoms, inline and blob keys and values of varied sizes, overwrites and deletes (so retired
blocks, free lists and an orphan chain exist). Its hash seed and domain id are random at creation; the script
replaces them, before anything is inserted, with a fixed one and recomputes the header checksum.

Every damaged file is that seed with fields changed at their documented offsets (docs/format.md,
src/file/header.h, src/alloc/allocator_state.h). Where a change lands in the checksummed part
of the header the checksum is recomputed (XXH3-64, seed 0, of bytes [0, 128) with the checksum
read as 0), so the damage gets
past the header check; header-bad-checksum.atomap is the one file whose checksum is left wrong.
The script checks the offsets it relies on against the seed (magic, checksum, allocator magic,
region offsets) and stops with an error if they no longer match: then update the offsets below.
"""

import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile

SEED = 20261122  # the random generator's fixed seed: same inputs, same corpus
FIXED_HASH_SEED = 0x5EED5EED5EED5EED
SEED_MAX_SIZE = 98304  # 96 KiB: one 64 KiB allocator chunk and room for the later processes' refills
SLOT_CAPACITY = 2
ATOM_CAPACITY = 4

# --- Header (docs/format.md, src/file/header.h) -------------------------------------------
MAGIC = b"ATOMAP\r\n"
H_MAGIC, H_FORMAT_VERSION, H_HASH_SEED, H_MAX_SIZE = 0, 8, 32, 40
H_SLOT_CAPACITY, H_ATOM_CAPACITY = 48, 52
H_ALLOC_STATE_OFFSET, H_SLOT_TABLE_OFFSET, H_ATOM_TABLE_OFFSET, H_DATA_BEGIN = 56, 64, 72, 80
H_CHECKSUM = 88  # XXH3-64 (seed 0) of bytes [0, 128), this field read as 0 (format 3)
H_DOMAIN_ID = 96  # random at creation; fixed here like the hash seed
H_IMMUTABLE_BYTES = 128
H_SIZE, H_STATE, H_GLOBAL_EPOCH, H_ORPHAN_RETIRED = 128, 192, 256, 320
HEADER_BYTES = 4096

# --- Allocator state (src/alloc/allocator_state.h) at allocator_state_offset --------------
ALLOC_MAGIC = 0x35434F4C414D5441  # "ATMALOC5" (format 4: "ATMALOC4", 3: "ATMALOC3", 2: "ATMALLOC")
A_MAGIC, A_NUM_CLASSES, A_DATA_BEGIN, A_BUMP, A_HEADS = 0, 12, 16, 64, 128  # heads: {u64, u64}

# --- Slot table (docs/format.md "Slot table") ---------------------------------------------
SLOT_BYTES = 1024
S_STATE, S_OWNER_PID, S_OWNER_TOKEN, S_PINNED_EPOCH = 0, 4, 8, 16
S_RECLAIM = 64  # ReclaimArea (src/epoch/retire_list.h)
R_RETIRE_HEAD, R_SPARE = 0, 16
S_ALLOC_CACHE = 256  # ParticipantCache: bump_cur, bump_end, reserved[2], classes[32] {head, count, carved}
CACHED_CLASSES = 32

# --- XXH3-64 for inputs of 17..128 bytes (what the header checksum hashes), seed 0 ----------
XXH3_SECRET = bytes([
    0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
    0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
    0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
    0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
    0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
    0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
    0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
    0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
])
M64 = (1 << 64) - 1
PRIME64_1 = 0x9E3779B185EBCA87


def _u64(b, off):
    return struct.unpack_from("<Q", b, off)[0]


def _mix16(data, d, s):
    lo = _u64(data, d) ^ (_u64(XXH3_SECRET, s) & M64)
    hi = _u64(data, d + 8) ^ (_u64(XXH3_SECRET, s + 8) & M64)
    p = lo * hi
    return (p & M64) ^ (p >> 64)


def xxh3_64(data):
    n = len(data)
    if not 17 <= n <= 128:
        raise ValueError("xxh3_64 here handles 17..128 bytes only")
    acc = (n * PRIME64_1) & M64
    if n > 32:
        if n > 64:
            if n > 96:
                acc += _mix16(data, 48, 96) + _mix16(data, n - 64, 112)
            acc += _mix16(data, 32, 64) + _mix16(data, n - 48, 80)
        acc += _mix16(data, 16, 32) + _mix16(data, n - 32, 48)
    acc += _mix16(data, 0, 0) + _mix16(data, n - 16, 16)
    h = acc & M64
    h ^= h >> 37
    h = (h * 0x165667919E3779F9) & M64
    return h ^ (h >> 32)


def checksum(b):
    immutable = bytearray(b[:H_IMMUTABLE_BYTES])
    immutable[H_CHECKSUM:H_CHECKSUM + 8] = bytes(8)
    return xxh3_64(bytes(immutable))


def fail(msg):
    sys.exit("make_corpus.py: " + msg)


class Domain:
    """A file's bytes and the fields this script reads and writes."""

    def __init__(self, data):
        self.b = bytearray(data)

    def get(self, fmt, off):
        return struct.unpack_from("<" + fmt, self.b, off)[0]

    def put(self, fmt, off, value):
        struct.pack_into("<" + fmt, self.b, off, value)

    def reseal(self):
        self.put("Q", H_CHECKSUM, checksum(self.b))

    @property
    def data_begin(self):
        return self.get("Q", H_DATA_BEGIN)

    @property
    def alloc(self):
        return self.get("Q", H_ALLOC_STATE_OFFSET)

    def head(self, c):
        return self.alloc + A_HEADS + 16 * c

    def slot(self, i):
        return self.get("Q", H_SLOT_TABLE_OFFSET) + i * SLOT_BYTES

    def copy(self):
        return Domain(self.b)

    def validate(self):
        """Stops unless the offsets this script uses still describe the file."""
        b = self.b
        if bytes(b[:8]) != MAGIC:
            fail("seed: no magic at offset 0 (format changed?)")
        if self.get("Q", H_CHECKSUM) != checksum(b):
            fail("seed: header checksum is not XXH3-64 of bytes [0, %d) (format changed?)" % H_CHECKSUM)
        if self.alloc != HEADER_BYTES or self.get("Q", H_SLOT_TABLE_OFFSET) != 2 * HEADER_BYTES:
            fail("seed: region offsets are not where docs/format.md puts them")
        if self.get("I", H_SLOT_CAPACITY) != SLOT_CAPACITY or self.get("I", H_ATOM_CAPACITY) != ATOM_CAPACITY:
            fail("seed: capacities not at offsets %d/%d" % (H_SLOT_CAPACITY, H_ATOM_CAPACITY))
        if self.get("Q", self.alloc + A_MAGIC) != ALLOC_MAGIC:
            fail("seed: no allocator magic at the allocator state")
        if self.get("Q", self.alloc + A_DATA_BEGIN) != self.data_begin:
            fail("seed: allocator data_begin differs from the header's")
        if self.get("Q", H_SIZE) != len(b):
            fail("seed: header size %d is not the file's length %d" % (self.get("Q", H_SIZE), len(b)))


def run(cli, *args, stdin=None):
    r = subprocess.run([cli, *args], input=stdin, capture_output=True, text=True)
    if r.returncode != 0:
        fail("%s %s: exit %d: %s%s" % (cli, " ".join(args[:2]), r.returncode, r.stdout, r.stderr))
    return r.stdout


def build_seed(cli, rng, workdir):
    path = os.path.join(workdir, "seed.atomap")
    run(cli, "create", path, "--slot-capacity", str(SLOT_CAPACITY), "--atom-capacity",
        str(ATOM_CAPACITY), "--max-size", str(SEED_MAX_SIZE))
    # The hash seed is random at creation: fix it while the domain is still empty (nothing has
    # been hashed yet), so that the whole file is deterministic.
    with open(path, "rb") as f:
        d = Domain(f.read())
    if bytes(d.b[:8]) != MAGIC or d.get("Q", H_CHECKSUM) != checksum(d.b):
        fail("new domain: magic or checksum not where docs/format.md puts them (format changed?)")
    d.put("Q", H_HASH_SEED, FIXED_HASH_SEED)
    d.put("Q", H_DOMAIN_ID, FIXED_HASH_SEED)  # the companions made at creation go stale: replaced
    d.reseal()
    with open(path, "r+b") as f:
        f.write(d.b[:HEADER_BYTES])

    def blob(n):
        return bytes(rng.getrandbits(8) for _ in range(n)).hex()

    def load(atom, entries):
        lines = "".join(json.dumps({"key": k, "value_hex": v}) + "\n" for k, v in entries)
        run(cli, "load", path, "--atom", atom, stdin=lines)

    # Inline (<= 8 bytes) and blob keys and values of varied sizes, one transaction per atom.
    load("default", [("k%02d" % i, blob(n))
                     for i, n in enumerate([0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 100, 250])] +
                    [("a-longer-key-%02d" % i, blob(n))
                     for i, n in enumerate([3, 8, 24, 64, 200, 500, 1000, 1500, 3000, 5000])])
    load("users", [("user:%04d" % i, blob(rng.choice([4, 12, 40, 90]))) for i in range(24)])
    def put_hex(atom, key, value_hex):  # --hex: the key is hexadecimal too
        run(cli, "put", path, key.encode().hex(), value_hex, "--atom", atom, "--hex")

    put_hex("blobs", "big", "ab" * 3000)
    put_hex("blobs", "small", "cd")
    # Overwrites and deletes: old blocks are retired, then freed or left on the orphan chain.
    for key in ["k03", "k09", "a-longer-key-04", "a-longer-key-08", "k11"]:
        run(cli, "del", path, key)
    for i in range(0, 24, 5):
        put_hex("users", "user:%04d" % i, blob(rng.choice([2, 60, 700])))
    put_hex("blobs", "big", "ef" * 700)
    run(cli, "del", path, "small", "--atom", "blobs")
    run(cli, "put", path, "k00", "value", "--atom", "default")
    out = run(cli, "check", path, "--read-only")
    if "clean" not in out:
        fail("seed: check is not clean: " + out)
    with open(path, "rb") as f:
        d = Domain(f.read())
    # Pids are informational and differ per run: zero them for a byte-identical corpus.
    for i in range(SLOT_CAPACITY):
        d.put("I", d.slot(i) + S_OWNER_PID, 0)
    d.validate()
    return d


# --- Atom table and trie (docs/format.md "Atom table", docs/hamt.md, src/hamt/node.h) ---------
ATOM_RECORD_BYTES = 320
ENTRY_BYTES = 24  # u32 key_len, u32 value_len, u64 key_word, u64 value_word
INLINE_BYTES = 8


def atom_roots(d):
    """[(offset of the root word, version record offset)] of every reserved atom record."""
    table = d.get("Q", H_ATOM_TABLE_OFFSET)
    records = table + 64 + (8 * ATOM_CAPACITY + 63) // 64 * 64
    return [(records + ATOM_RECORD_BYTES * i, d.get("Q", records + ATOM_RECORD_BYTES * i))
            for i in range(d.get("I", table))]


def root_node_fields(d, version):
    """Offsets of the fields a reader of `version`'s root node follows first."""
    node = d.get("Q", version)
    datamap, nodemap = d.get("I", node), d.get("I", node + 4)
    children = bin(nodemap).count("1")
    entries = node + 8 + 8 * children
    blob_words = []
    for i in range(bin(datamap).count("1")):
        e = entries + ENTRY_BYTES * i
        if d.get("I", e) > INLINE_BYTES:
            blob_words.append(e + 8)
        if d.get("I", e + 4) > INLINE_BYTES:
            blob_words.append(e + 16)
    return {"node": node, "nodemap": node + 4, "first_child": node + 8 if children else None,
            "first_entry": entries if datamap else None, "blob_words": blob_words}


def wild_offset(rng, d):
    size, begin = len(d.b), d.data_begin
    return rng.choice([
        0, 1, 8, 15, 16, begin - 16, begin + 8, begin + 24, size - 16, size - 8, size, size + 16,
        HEADER_BYTES, HEADER_BYTES + A_HEADS, SEED_MAX_SIZE, 1 << 30, 1 << 40, 1 << 46, 1 << 63,
        M64, M64 - 15, rng.randrange(begin, size) & ~15, rng.randrange(0, size),
        rng.getrandbits(64),
    ]) & M64


def derive(seed, rng):
    """Returns {name: bytes} for every file of the corpus."""
    files = {}
    begin, size = seed.data_begin, len(seed.b)
    files["seed-valid.atomap"] = bytes(seed.b)

    # Truncations: inside the header; inside the data region (the size word, left as it was,
    # now points past the end); and at a page inside the data region with the size word lowered
    # to match (the file opens; the allocator's bump and lists point past the end).
    files["truncated-header.atomap"] = bytes(seed.b[:100])
    files["truncated-data.atomap"] = bytes(seed.b[:begin + 2148])
    d = seed.copy()
    cut = begin + 4 * 4096
    d.put("Q", H_SIZE, cut)
    files["truncated-data-resized.atomap"] = bytes(d.b[:cut])

    # Random byte flips in the data region: 1, 2, 4, ... 32 bytes.
    for i in range(6):
        d = seed.copy()
        for _ in range(1 << i):
            at = rng.randrange(begin, size)
            d.b[at] ^= rng.randrange(1, 256)
        files["flipped-data-%d.atomap" % i] = bytes(d.b)

    # A wild offset in every 16-byte word of the data region (one of its two u64s).
    d = seed.copy()
    for at in range(begin, size, 16):
        d.put("Q", at + 8 * rng.randrange(2), wild_offset(rng, d))
    files["wild-offsets.atomap"] = bytes(d.b)

    # The allocator's shared bump pointer far past the end.
    d = seed.copy()
    d.put("Q", d.alloc + A_BUMP, 1 << 45)
    files["bump-past-end.atomap"] = bytes(d.b)

    # A shared free-list head 8 bytes off (blocks are 16-byte aligned).
    d = seed.copy()
    classes = d.get("I", d.alloc + A_NUM_CLASSES)
    nonempty = [c for c in range(classes) if d.get("Q", d.head(c))]
    if not nonempty:
        fail("seed: every shared free list is empty (the workload no longer frees anything?)")
    d.put("Q", d.head(nonempty[0]), d.get("Q", d.head(nonempty[0])) + 8)
    files["free-head-misaligned.atomap"] = bytes(d.b)

    # The orphan chain's head at an aligned block that is not a retire batch.
    d = seed.copy()
    d.put("Q", H_ORPHAN_RETIRED, begin + 2064)
    files["orphan-chain-bogus.atomap"] = bytes(d.b)

    # A slot left owned by a dead participant whose cache holds a private list (a shared batch
    # moved into it) and an empty bump region: the writable opener takes it over and flushes it.
    d = seed.copy()
    cached = [c for c in nonempty if c < CACHED_CLASSES]
    if cached:
        c = cached[0]
        first = d.get("Q", d.head(c))
        d.put("Q", d.head(c), d.get("Q", first))  # word 0: the next batch
        d.put("Q", first, 0)
        count, at = 0, first
        while at and count < 4096:
            count += 1
            at = d.get("Q", at + 8)  # word 1: the next block of the batch
        entry = d.slot(1) + S_ALLOC_CACHE + 32 + 16 * c
        d.put("Q", entry, first)
        d.put("I", entry + 8, count)
    s = d.slot(1)
    d.put("I", s + S_STATE, 1)
    d.put("Q", s + S_OWNER_TOKEN, d.get("Q", s + S_OWNER_TOKEN) + 1)
    d.put("Q", s + S_PINNED_EPOCH, d.get("Q", H_GLOBAL_EPOCH))
    files["slot-dead-owner.atomap"] = bytes(d.b)

    # That dead slot's retire list and spare chain made one chain (the seed's orphan batches),
    # and the orphan head wild: recovery pushes the retire list onto the orphan chain, which
    # rewrites the shared tail's link, then frees the spares along it (CI's fuzz smoke, bug G).
    orphans = d.get("Q", H_ORPHAN_RETIRED)
    if not orphans:
        fail("seed: the orphan chain is empty (the workload no longer leaves one?)")
    area = s + S_RECLAIM
    d.put("Q", area + R_RETIRE_HEAD, orphans)
    d.put("Q", area + R_SPARE, orphans)
    d.put("Q", H_ORPHAN_RETIRED, 0x4141414141414140)
    files["slot-dead-lists-aliased.atomap"] = bytes(d.b)

    files.update(damaged_tries(seed))

    # The header: one file whose checksum is wrong, one whose hash seed changed with the checksum
    # recomputed (it opens, and no key or atom name hashes where it was stored).
    d = seed.copy()
    d.b[H_HASH_SEED] ^= 0x01
    files["header-bad-checksum.atomap"] = bytes(d.b)
    d.reseal()
    files["header-seed-changed.atomap"] = bytes(d.b)
    files.update(cyclic_chains(seed))
    return files


def cyclic_chains(seed):
    """Files whose chains loop (src/alloc/chain_walk.h): every walk of them must end, with an
    error or a cut, never hang (`atomap stat` walked free lists without a bound). No random
    numbers: the other files' bytes do not depend on these."""
    files = {}
    classes = seed.get("I", seed.alloc + A_NUM_CLASSES)
    nonempty = [c for c in range(classes) if seed.get("Q", seed.head(c))]
    # A shared list's first batch is its own next batch (word 0).
    d = seed.copy()
    first = d.get("Q", d.head(nonempty[0]))
    d.put("Q", first, first)
    files["cycle-free-list-batches.atomap"] = bytes(d.b)
    # A shared batch's last block links back to its first (word 1).
    d = seed.copy()
    at, steps = first, 0
    while d.get("Q", at + 8) and steps < 4096:
        at, steps = d.get("Q", at + 8), steps + 1
    d.put("Q", at + 8, first)
    files["cycle-free-list-chain.atomap"] = bytes(d.b)
    # The orphan chain's first batch is its own next batch (RetireBatch::next, word 0).
    orphans = seed.get("Q", H_ORPHAN_RETIRED)
    if orphans:
        d = seed.copy()
        d.put("Q", orphans, orphans)
        files["cycle-orphan-chain.atomap"] = bytes(d.b)
    return files


def damaged_tries(seed):
    """The trie of the largest atom, damaged the way single-byte flips and live copies damage it
    (each crashed or aborted `atomap compact`, and the wild root word `atomap stat`, at 6ae7306,
    before the tool's reads were bounds-checked). No random numbers: the other files' bytes do
    not depend on these."""
    files = {}
    roots = [(word, v) for word, v in atom_roots(seed) if v]
    if not roots:
        fail("seed: no atom has a version")
    word, version = max(roots, key=lambda r: seed.get("Q", r[1] + 8))
    f = root_node_fields(seed, version)
    if f["first_child"] is None or not f["blob_words"]:
        fail("seed: the largest atom's root node has no child or no blob (workload changed?)")

    def flipped(at, pattern):
        d = seed.copy()
        d.b[at] ^= pattern
        return bytes(d.b)

    files["trie-root-word-wild.atomap"] = flipped(word + 4, 0x80)
    files["trie-record-count-huge.atomap"] = flipped(version + 8 + 7, 0x80)  # reserve(size())
    files["trie-record-root-wild.atomap"] = flipped(version + 3, 0x80)
    files["trie-bitmaps-overlap.atomap"] = flipped(f["nodemap"], 0xFF)
    files["trie-child-wild.atomap"] = flipped(f["first_child"] + 3, 0x80)
    files["trie-child-misaligned.atomap"] = flipped(f["first_child"], 0x08)
    files["trie-blob-wild.atomap"] = flipped(f["blob_words"][0] + 3, 0x80)
    if f["first_entry"] is not None:
        files["trie-key-length-huge.atomap"] = flipped(f["first_entry"] + 3, 0x80)
    d = seed.copy()  # a cycle: the root's first child is the root itself
    d.put("Q", f["first_child"], f["node"])
    files["trie-cycle.atomap"] = bytes(d.b)
    # Format 5: a record that says a combining table follows (bit 2 of `observed`) with a count
    # far past its block, and one whose table holds a malformed entry over the next 64 bytes.
    d = seed.copy()
    d.put("Q", version + 24, d.get("Q", version + 24) | 4)
    d.put("Q", version + 40, 0xFFFFFFFF)
    files["trie-record-combine-huge.atomap"] = bytes(d.b)
    d = seed.copy()
    d.put("Q", version + 24, d.get("Q", version + 24) | 4)
    d.put("Q", version + 40, 1)
    files["trie-record-combine-entry.atomap"] = bytes(d.b)
    # A batch posted in slot 0's mailbox (docs/format.md, "Combining mailbox") whose payload is
    # noise: a writer that combines must decode it bounds-checked and apply nothing of it.
    d = seed.copy()
    mailbox = d.slot(0) + 832
    d.put("Q", mailbox, 2)  # seq 1, not busy
    d.put("Q", mailbox + 8, 0)
    d.put("I", mailbox + 16, 0)
    d.put("I", mailbox + 20, 4 | 160 << 8)
    for i in range(160):
        d.b[mailbox + 32 + i] = (i * 37 + 11) & 0xFF
    files["mailbox-posted-noise.atomap"] = bytes(d.b)
    return files


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: python3 fuzz/make_corpus.py PATH/TO/atomap OUT_DIR\n"
                 "  e.g. python3 fuzz/make_corpus.py build/release/tools/atomap tests/fuzz_corpus")
    cli, out = os.path.abspath(sys.argv[1]), sys.argv[2]
    rng = random.Random(SEED)
    workdir = tempfile.mkdtemp(prefix="atomap-corpus-")
    try:
        seed = build_seed(cli, rng, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    files = derive(seed, rng)
    os.makedirs(out, exist_ok=True)
    total = 0
    for name, data in sorted(files.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
        total += len(data)
    print("make_corpus.py: wrote %d files, %d bytes, to %s" % (len(files), total, out))


if __name__ == "__main__":
    main()

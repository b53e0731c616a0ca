"""Typed atoms: the codecs store exactly what C++'s atomap::Codec<T> stores."""

import struct

import pytest

import atomap


@pytest.mark.parametrize(
    "codec, value, packed",
    [
        (atomap.U64, 2**64 - 1, struct.pack("=Q", 2**64 - 1)),
        (atomap.I64, -(2**63), struct.pack("=q", -(2**63))),
        (atomap.U32, 4000000000, struct.pack("=I", 4000000000)),
        (atomap.I32, -5, struct.pack("=i", -5)),
        (atomap.F64, -0.5, struct.pack("=d", -0.5)),
        (atomap.STR, "h\u00e9llo", "h\u00e9llo".encode()),
        (atomap.BYTES, b"\x00\xff", b"\x00\xff"),
    ],
)
def test_encode_matches_struct(codec, value, packed):
    assert codec.encode(value) == packed
    assert codec.decode(packed) == value


def test_encode_refuses_wrong_types_and_ranges():
    with pytest.raises(TypeError):
        atomap.U64.encode("1")
    with pytest.raises(TypeError):
        atomap.STR.encode(b"x")
    with pytest.raises(TypeError):
        atomap.BYTES.encode("x")
    with pytest.raises(OverflowError):
        atomap.U64.encode(-1)
    with pytest.raises(OverflowError):
        atomap.U32.encode(2**32)
    with pytest.raises(OverflowError):
        atomap.I32.encode(2**31)
    with pytest.raises(ValueError):
        atomap.U64.decode(b"123")
    assert atomap.F64.encode(2) == struct.pack("=d", 2.0)
    assert atomap.BYTES.encode(bytearray(b"ab")) == b"ab"
    assert atomap.BYTES.encode(memoryview(b"ab")) == b"ab"


def test_typed_atom_round_trip(dom):
    counters = dom.atom("counters", key=atomap.STR, value=atomap.U64)
    assert counters.key_codec == atomap.STR and counters.value_codec == atomap.U64
    for _ in range(3):
        counters.swap(lambda tx: tx.update("hits", lambda n: (n or 0) + 1))
    counters.swap(lambda tx: tx.set_many({"a": 1, "b": 2**64 - 1}))
    with counters.load() as snap:
        assert dict(snap) == {"hits": 3, "a": 1, "b": 2**64 - 1}
        assert snap["hits"] == 3 and "a" in snap
    # The same atom read as bytes holds the C++ layout: std::string keys, native uint64 values.
    raw = dom.atom("counters")
    with raw.load() as snap:
        assert snap[b"hits"] == struct.pack("=Q", 3)
        assert bytes(snap.view(b"b")) == struct.pack("=Q", 2**64 - 1)


def test_typed_keys_and_floats(dom):
    prices = dom.atom("prices", key=atomap.U64, value=atomap.F64)
    prices.swap(lambda tx: tx.set(42, 9.5))
    prices.swap(lambda tx: tx.set(7, -1.25))
    assert prices.get(42) == 9.5
    assert sorted(prices.load().items()) == [(7, -1.25), (42, 9.5)]
    signed = dom.atom("signed", key=atomap.I32, value=atomap.I64)
    signed.reset({-1: -(2**63), 5: 2**63 - 1})
    with signed.load() as snap:
        assert dict(snap) == {-1: -(2**63), 5: 2**63 - 1}


def test_undecodable_entries_read_as_absent(dom):
    # As C++ TypedMap: a value of another size is absent from get and skipped by iteration.
    dom.atom("mixed").swap(lambda tx: tx.set_many({b"ok": struct.pack("=Q", 1), b"bad": b"xyz"}))
    typed = dom.atom("mixed", key=atomap.STR, value=atomap.U64)
    assert typed.get("bad") is None
    with typed.load() as snap:
        assert dict(snap.items()) == {"ok": 1}
        assert "bad" not in snap


def test_str_codec_keeps_any_bytes(dom):
    dom.atom("s").swap(lambda tx: tx.set(b"\xff\xfe", b"\x80"))
    typed = dom.atom("s", key=atomap.STR, value=atomap.STR)
    ((key, value),) = typed.load().items()
    assert atomap.STR.encode(key) == b"\xff\xfe" and atomap.STR.encode(value) == b"\x80"
    typed.swap(lambda tx: tx.set(key, value + "\u00e9"))
    assert dom.atom("s").get(b"\xff\xfe") == b"\x80\xc3\xa9"

"""The bitstream specification (codec/FORMAT.md) against the C++ codec, through the reference
decoder tests/srns_ref.py (written from FORMAT.md alone).

1. Every golden file (tests/data/golden/<name>.srns) decodes bit for bit to <name>.npy.
2. A sample of C++ encoder outputs (`splitrans-codec encode`: every committed feature in
   tests/data/features and a few generated tensors, every mode, several Q) decodes bit for bit to
   what `splitrans-codec decode` writes, and the sample covers every layout, both context models
   with both predictors, float16 and signed tensors (asserted).
3. Bitstreams built here from FORMAT.md's encoder description, with features the C++ encoder does
   not use (constant and empty streams, small blocks, 32 lanes, long varints), decode the same in
   both decoders.
4. Corrupt inputs fail with the status FORMAT.md's "Decoding and validation order" names, in both
   decoders; random body mutations (checksum fixed) are accepted or refused alike.

Run by ctest (format_reference), which passes the tool in SPLITRANS_CODEC; by hand:
    SPLITRANS_CODEC=build/codec/splitrans-codec /usr/bin/python3 -m pytest -q tests/srns_ref_test.py
"""

import functools
import glob
import hashlib
import json
import os
import random
import re
import struct
import subprocess
import sys
import tempfile

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import srns_ref  # noqa: E402

GOLDEN_DIR = os.path.join(HERE, "data", "golden")
FEATURES_DIR = os.path.join(HERE, "data", "features")
GOLDEN_NAMES = ["dense", "sparse", "paper", "context", "context_signed", "constant",
                "context_semistatic"]
MODES = ["auto", "paper", "dense", "sparse", "context"]

_WORK = tempfile.mkdtemp(prefix="srns_ref_test_")


def _codec_path():
    path = os.environ.get("SPLITRANS_CODEC") or os.path.join(HERE, "..", "build", "codec",
                                                              "splitrans-codec")
    return os.path.abspath(path)


@pytest.fixture(scope="session")
def codec():
    path = _codec_path()
    if not os.access(path, os.X_OK):
        pytest.fail(f"splitrans-codec not found at {path}: build it and set SPLITRANS_CODEC")
    return path


def _run(args, check=True):
    r = subprocess.run([_codec_path()] + args, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"splitrans-codec {' '.join(args)} failed: {r.stderr.strip()}")
    return r


def _cpp_decode(data, extra=()):
    """('OK', array) or ('ERR', code name) from `splitrans-codec decode`."""
    digest = hashlib.sha1(data).hexdigest()[:16]
    src = os.path.join(_WORK, f"in_{digest}.srns")
    dst = src + ".npy"
    with open(src, "wb") as f:
        f.write(data)
    r = _run(["decode", *extra, src, dst], check=False)
    if r.returncode != 0:
        m = re.search(r"\(([A-Z_]+)\)\s*$", r.stderr)
        assert m, f"no status code in splitrans-codec's error: {r.stderr!r}"
        return "ERR", m.group(1)
    return "OK", np.load(dst)


def _ref_decode(data, **kw):
    try:
        return "OK", srns_ref.decode(data, **kw)
    except srns_ref.SrnsError as e:
        return "ERR", e.code


def _same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


# --- 1. Golden files -----------------------------------------------------------------------------

def test_crc32c_check_value():
    assert srns_ref.crc32c(b"123456789") == 0xE3069283  # FORMAT.md "Checksum"


def test_golden_set_is_complete():
    found = sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(GOLDEN_DIR, "*.srns")))
    assert found == sorted(GOLDEN_NAMES)


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_golden_decodes_bit_exactly(name):
    with open(os.path.join(GOLDEN_DIR, name + ".srns"), "rb") as f:
        data = f.read()
    want = np.load(os.path.join(GOLDEN_DIR, name + ".npy"))
    got = srns_ref.decode(data)
    assert got.dtype == np.float32 and want.dtype == np.float32
    assert got.shape == want.shape
    assert np.array_equal(got.view(np.uint8), want.view(np.uint8)), name


def test_golden_models():
    """The golden set pins both context models (FORMAT.md "Model 0", "Model 1")."""
    info = {}
    for name in GOLDEN_NAMES:
        with open(os.path.join(GOLDEN_DIR, name + ".srns"), "rb") as f:
            info[name] = srns_ref.decode_ex(f.read()).info
    assert {info[n]["layout"] for n in GOLDEN_NAMES} == set(srns_ref.LAYOUT_NAMES.values())
    assert info["context"]["model"] == "adaptive"
    assert info["context_signed"]["model"] == "adaptive" and info["context_signed"]["zero_point"] != 0
    assert info["context_semistatic"]["model"] == "semi-static"


# --- 2. C++ encoder outputs ----------------------------------------------------------------------

def _synthetic_tensors():
    """Generated inputs for what the committed features lack: semi-static model with the med
    predictor and signed values, several segments, partial map groups, rank 1 and 4, Q = 1,
    the constant layout, signed float16."""
    rng = np.random.default_rng(1)
    c = np.arange(96, dtype=np.float64)[:, None, None]
    y, x = np.mgrid[0:32, 0:32].astype(np.float64)
    smooth = 3 * np.sin(0.2 * x + 0.1 * c) * np.cos(0.15 * y - 0.05 * c)
    preact = np.load(os.path.join(FEATURES_DIR, "fmnist_stage1_preact_img0.npy"))
    return {
        "syn_smooth_signed": smooth.astype(np.float32),
        "syn_smooth_signed_f16": smooth.astype(np.float16),
        "syn_noise_signed": rng.standard_normal((96, 32, 32)).astype(np.float32),
        "syn_segments": np.maximum(rng.standard_normal((257, 32, 32)), 0).astype(np.float32),
        "syn_rank1": rng.standard_normal(70000).astype(np.float32),
        "syn_rank4": np.maximum(rng.standard_normal((2, 3, 20, 20)), 0).astype(np.float32),
        "syn_constant": np.full((5, 7), -2.5, dtype=np.float32),
        "syn_preact_f16": preact.astype(np.float16),
    }


FEATURES = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(FEATURES_DIR, "*.npy")))
SYNTHETIC = {"syn_smooth_signed": (1, 4, 8), "syn_smooth_signed_f16": (4,),
             "syn_noise_signed": (2, 8), "syn_segments": (4,), "syn_rank1": (1, 8),
             "syn_rank4": (1, 8), "syn_constant": (4,), "syn_preact_f16": (2, 8)}
CASES = ([(f, m, q) for f in FEATURES for m in MODES for q in (2, 4, 8)]
         + [(f, m, q) for f, qs in SYNTHETIC.items() for m in MODES for q in qs])


@functools.lru_cache(maxsize=None)
def _input_path(name):
    if name in SYNTHETIC:
        path = os.path.join(_WORK, name + ".npy")
        np.save(path, _synthetic_tensors()[name])
        return path
    return os.path.join(FEATURES_DIR, name + ".npy")


@functools.lru_cache(maxsize=None)
def _ref_decode_cached(data):
    return srns_ref.decode_ex(data)


@functools.lru_cache(maxsize=None)
def _encoder_case(name, mode, q):
    """Encodes with the C++ tool; returns (bitstream, C++ decode, inspect JSON, reference decode)."""
    src = _input_path(name)
    out = os.path.join(_WORK, f"{name}.{mode}.{q}.srns")
    _run(["encode", "--mode", mode, "--q", str(q), src, out])
    with open(out, "rb") as f:
        data = f.read()
    _run(["decode", out, out + ".npy"])
    cpp = np.load(out + ".npy")
    inspect = json.loads(_run(["inspect", "--json", out]).stdout)
    return data, cpp, inspect, _ref_decode_cached(data)


def test_sample_is_complete():
    """All committed features are in the sample, float16 and signed ones among them."""
    assert len(FEATURES) >= 15
    dtypes = {str(np.load(os.path.join(FEATURES_DIR, f + ".npy"), mmap_mode="r").dtype) for f in FEATURES}
    assert dtypes == {"float32", "float16"}
    assert any("preact" in f for f in FEATURES)


@pytest.mark.parametrize("name,mode,q", CASES, ids=[f"{n}-{m}-q{q}" for n, m, q in CASES])
def test_encoder_output_decodes_like_cpp(codec, name, mode, q):
    data, cpp, inspect, ref = _encoder_case(name, mode, q)
    got = ref.array
    assert got.dtype == cpp.dtype and got.shape == cpp.shape
    assert np.array_equal(got.view(np.uint8), cpp.view(np.uint8)), f"{name} {mode} q{q}"
    info = ref.info
    assert info["layout"] == inspect["layout"]
    assert list(info["shape"]) == inspect["shape"] and info["dtype"] == inspect["dtype"]
    assert info["q"] == inspect["q"] == q and info["zero_point"] == inspect["zero_point"]
    if mode not in ("auto", "paper"):
        assert info["layout"] == mode or info["layout"] == "constant"
    if info["layout"] in ("sparse", "paper"):
        assert (info["N"], info["K"]) == (inspect["n"], inspect["k"])
    if info["layout"] in ("dense", "sparse", "paper"):
        assert info["stream_lengths"] == [s["symbols"] for s in inspect["sections"]]


def test_encoder_sample_coverage(codec):
    """The sample exercises every part of FORMAT.md that the encoder uses."""
    infos = [_encoder_case(*c)[3].info for c in CASES]
    layouts = {i["layout"] for i in infos}
    assert layouts == {"constant", "dense", "sparse", "paper", "context"}
    ctx = [i for i in infos if i["layout"] == "context"]
    combos = {(i["model"], i["predictor"]) for i in ctx}
    assert combos == {("semi-static", "level"), ("semi-static", "med"),
                      ("adaptive", "level"), ("adaptive", "med")}, combos
    for model in ("semi-static", "adaptive"):
        mine = [i for i in ctx if i["model"] == model]
        assert {i["dtype"] for i in mine} == {"float32", "float16"}, model
        assert any(i["zero_point"] != 0 for i in mine), model  # base != 0: signed symbols
        assert any(i["zero_point"] == 0 for i in mine), model
        assert {i["q"] for i in mine} >= {1, 2, 4, 8}, model
    semi = [i for i in ctx if i["model"] == "semi-static"]
    assert any(i["segments"] > 1 for i in semi)
    assert any(i["partial_groups"] for i in semi)            # a last group of g' < 4 maps
    assert any(i["max_token"] >= 16 for i in semi)           # tokens with raw bits
    assert any(i["single_token_contexts"] for i in semi)     # contexts coded with no rANS step
    streams = [i for i in infos if i["layout"] in ("dense", "sparse", "paper")]
    kinds = {k for i in streams for k in i["stream_kinds"]}
    assert kinds >= {"rans", "constant"}
    params = [p for i in streams for p in i.get("rans_params", [])]
    assert any(W > 1 for _, W, _, _ in params) and any(W == 1 for _, W, _, _ in params)
    assert any(nblocks > 1 for _, _, _, nblocks in params)
    assert {i["dtype"] for i in streams} == {"float32", "float16"}


# --- 3. Bitstreams built from FORMAT.md's encoder description ------------------------------------

def _varint(v, min_bytes=1):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v or len(out) + 1 < min_bytes:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _rans_encode_block(symbols, W, P, freq, start):
    """FORMAT.md "Coding", encoder side: returns the final states and the stored words."""
    x = [srns_ref.RANS_L] * W
    emitted = []
    for j in range(len(symbols) - 1, -1, -1):
        s, lane = symbols[j], j % W
        xs = x[lane]
        if xs >= freq[s] << (32 - P):
            emitted.append(xs & 0xFFFF)
            xs >>= 16
        x[lane] = (xs // freq[s]) * (1 << P) + xs % freq[s] + start[s]
    return x, emitted[::-1]  # words are prepended


def _rans_stream(symbols, freq, P, lanes_log2=0, block_log2=16, min_varint=1):
    W, B = 1 << lanes_log2, 1 << block_log2
    start = [sum(freq[:s]) for s in range(len(freq))]
    out = bytearray([2]) + _varint(len(symbols), min_varint)
    out += bytes([P, lanes_log2, block_log2]) + _varint(len(freq), min_varint)
    for f in freq:
        out += _varint(f, min_varint)
    blocks = [_rans_encode_block(symbols[i:i + B], W, P, freq, start) for i in range(0, len(symbols), B)]
    for _, words in blocks:
        out += _varint(len(words), min_varint)
    for states, words in blocks:
        out += struct.pack(f"<{W}I", *states) + struct.pack(f"<{len(words)}H", *words)
    return bytes(out)


def _bitstream(layout, shape, body, q=4, scale=0.25, z=0, dtype=1, scale_bits=None):
    sb = struct.pack("<I", scale_bits) if scale_bits is not None else struct.pack("<f", scale)
    body = struct.pack(f"<{len(shape)}I", *shape) + body
    data = (b"SRNS" + bytes([1, 0, dtype, len(shape), q, layout, 0, 0]) + sb
            + struct.pack("<iI", z, len(body)) + body)
    return data + struct.pack("<I", srns_ref.crc32c(data))


def _crafted():
    rnd = random.Random(7)
    sym16 = [rnd.randrange(16) for _ in range(1000)]
    skew = [min(int(rnd.expovariate(0.5)), 15) for _ in range(3000)]
    skew_freq = [max(1, int(4096 * skew.count(s) / len(skew))) for s in range(16)]
    skew_freq[0] += 4096 - sum(skew_freq)
    csr_v = [rnd.randrange(1, 16) for _ in range(6)]
    return {
        # dense: one constant stream (kind 1)
        "dense_constant_stream": _bitstream(1, [2, 3, 4], bytes([1]) + _varint(24) + _varint(3)),
        # dense: P = 15, 32 lanes, blocks of 256 (4 blocks, the last one shorter than W * 8)
        "dense_p15_w32_b256": _bitstream(1, [1000], _rans_stream(sym16, [2048] * 16, 15, 5, 8)),
        # dense: one lane, P = 12, skewed table, float16, Q = 4 with z != 0
        "dense_skewed_f16": _bitstream(1, [3, 1000], _rans_stream(skew, skew_freq, 12, 0, 10),
                                       z=3, dtype=2),
        # varints padded to their 5-byte maximum (LEB128 allows it; FORMAT.md only bounds the length)
        "dense_long_varints": _bitstream(1, [1000], _rans_stream(sym16, [2048] * 16, 15, 2, 9, 5)),
        # a zero-element tensor in the dense layout: an empty stream (kind 0)
        "dense_zero_elements": _bitstream(1, [3, 0, 2], bytes([0])),
        # sparse: every q zero, so v and c are empty streams and r is a constant stream
        "sparse_empty_v_c": _bitstream(2, [2, 3, 4], struct.pack("<II", 6, 4) + bytes([0, 0, 1])
                                       + _varint(6) + _varint(0), z=1),
        # sparse: v as rANS with 4 lanes, c and r constant streams (one nonzero per row, column 2)
        "sparse_rans_v": _bitstream(2, [2, 3, 4], struct.pack("<II", 6, 4)
                                    + _rans_stream(csr_v, [0, 18] + [17] * 14, 8, 2, 8)
                                    + bytes([1]) + _varint(6) + _varint(2)
                                    + bytes([1]) + _varint(6) + _varint(1)),
        # constant layout: the value -0.0 (encoders write +0.0, a decoder returns what is stored)
        "constant_negative_zero": _bitstream(0, [4], struct.pack("<f", -0.0), scale=0.0),
        # constant layout in a float16 tensor
        "constant_f16": _bitstream(0, [2, 2], struct.pack("<f", 0.1), scale=0.0, dtype=2),
    }


CRAFTED = list(_crafted())


@pytest.mark.parametrize("name", CRAFTED)
def test_crafted_bitstream_decodes_like_cpp(codec, name):
    data = _crafted()[name]
    ref = _ref_decode(data)
    cpp = _cpp_decode(data)
    assert ref[0] == "OK", f"reference decoder refused {name}: {ref[1]}"
    assert cpp[0] == "OK", f"C++ decoder refused {name}: {cpp[1]}"
    assert _same_bits(ref[1], cpp[1]), name


# --- 4. Corrupt inputs ---------------------------------------------------------------------------

def _golden(name):
    with open(os.path.join(GOLDEN_DIR, name + ".srns"), "rb") as f:
        return f.read()


def _patched(data, offset, new, fix_crc=True):
    """data with bytes at offset replaced; the checksum recomputed when fix_crc."""
    b = bytearray(data)
    b[offset:offset + len(new)] = new
    if fix_crc:
        body_size = struct.unpack_from("<I", b, 20)[0]
        end = 24 + body_size
        if len(b) >= end + 4:
            b[end:end + 4] = struct.pack("<I", srns_ref.crc32c(bytes(b[:end])))
    return bytes(b)


def _corrupt_cases():
    dense, ctx, sparse = _golden("dense"), _golden("context"), _golden("sparse")
    const = _golden("constant")
    flip = lambda d, i: _patched(d, i, bytes([d[i] ^ 0x5A]), fix_crc=False)  # noqa: E731
    body_plus_one = _patched(dense[:-4] + b"\0" + dense[-4:], 20,
                             struct.pack("<I", len(dense) - 28 + 1))
    return [
        ("empty", b"", "TRUNCATED"),
        ("23 bytes", dense[:23], "TRUNCATED"),
        ("bad magic", _patched(dense, 0, b"SRNT"), "BAD_MAGIC"),
        ("bad magic before short body", b"XRNS" + dense[4:30], "BAD_MAGIC"),
        ("version 2 (checksum also wrong)", _patched(dense, 4, b"\x02", fix_crc=False),
         "UNSUPPORTED_VERSION"),
        ("flags", _patched(dense, 5, b"\x01"), "RESERVED_BITS"),
        ("reserved", _patched(dense, 11, b"\x80"), "RESERVED_BITS"),
        ("dtype 3", _patched(dense, 6, b"\x03"), "BAD_HEADER_FIELD"),
        ("rank 0", _patched(dense, 7, b"\x00"), "BAD_HEADER_FIELD"),
        ("rank 9", _patched(dense, 7, b"\x09"), "BAD_HEADER_FIELD"),
        ("q 0", _patched(dense, 8, b"\x00"), "BAD_HEADER_FIELD"),
        ("q 9", _patched(dense, 8, b"\x09"), "BAD_HEADER_FIELD"),
        ("layout 5", _patched(dense, 9, b"\x05"), "BAD_HEADER_FIELD"),
        ("scale NaN", _patched(dense, 12, struct.pack("<I", 0x7FC00000)), "BAD_HEADER_FIELD"),
        ("scale inf", _patched(dense, 12, struct.pack("<f", float("inf"))), "BAD_HEADER_FIELD"),
        ("scale 0", _patched(dense, 12, struct.pack("<f", 0.0)), "BAD_HEADER_FIELD"),
        ("scale negative", _patched(dense, 12, struct.pack("<f", -0.25)), "BAD_HEADER_FIELD"),
        ("constant scale 1", _patched(const, 12, struct.pack("<f", 1.0)), "BAD_HEADER_FIELD"),
        ("constant zero point 1", _patched(const, 16, struct.pack("<i", 1)), "BAD_HEADER_FIELD"),
        ("last byte cut", dense[:-1], "TRUNCATED"),
        ("body_size too large", _patched(dense, 20, struct.pack("<I", 1000)), "TRUNCATED"),
        ("payload byte flipped", flip(dense, len(dense) - 8), "CHECKSUM_MISMATCH"),
        ("shape byte flipped", flip(ctx, 26), "CHECKSUM_MISMATCH"),
        ("header scale flipped", flip(sparse, 14), "CHECKSUM_MISMATCH"),
        ("checksum byte flipped", flip(const, len(const) - 1), "CHECKSUM_MISMATCH"),
        ("trailing byte", dense + b"\0", "TRAILING_BYTES"),
        ("unused body byte", body_plus_one, "CORRUPT_PAYLOAD"),
        ("dense stream kind 7", _patched(dense, 36, b"\x07"), "CORRUPT_PAYLOAD"),
        ("dense prob_bits 7", _patched(dense, 38, b"\x07"), "CORRUPT_PAYLOAD"),
        ("dense lanes_log2 6", _patched(dense, 39, b"\x06"), "CORRUPT_PAYLOAD"),
        ("dense block_log2 21", _patched(dense, 40, b"\x15"), "CORRUPT_PAYLOAD"),
        ("dense final state", _patched(dense, len(dense) - 12, b"\x00\x00"), "CORRUPT_PAYLOAD"),
        ("sparse K 0", _patched(sparse, 40, struct.pack("<I", 0)), "CORRUPT_PAYLOAD"),
        ("sparse N x K != T", _patched(sparse, 36, struct.pack("<I", 12)), "CORRUPT_PAYLOAD"),
        ("context model 2", _patched(ctx, 36, b"\x02"), "CORRUPT_PAYLOAD"),
        ("context predictor 2", _patched(ctx, 37, b"\x02"), "CORRUPT_PAYLOAD"),
        ("context lanes_log2 3", _patched(ctx, 38, b"\x03"), "CORRUPT_PAYLOAD"),
        ("context state below L", _patched(ctx, 39, struct.pack("<I", 0xFFFF)), "CORRUPT_PAYLOAD"),
        # word count 255 (varint ff 01) > (2 + 2Q) x T = 240 for the adaptive model
        ("context word count over bound", _patched(ctx, 55, b"\xff\x01"), "CORRUPT_PAYLOAD"),
        ("constant value NaN", _patched(const, 36, struct.pack("<I", 0x7FC00000)), "CORRUPT_PAYLOAD"),
    ]


CORRUPT = _corrupt_cases()


@pytest.mark.parametrize("label,data,code", CORRUPT, ids=[c[0] for c in CORRUPT])
def test_corrupt_input_reports_its_code(codec, label, data, code):
    with pytest.raises(srns_ref.SrnsError) as e:
        srns_ref.decode(data)
    assert e.value.code == code, f"{label}: {e.value}"
    assert e.value.value == srns_ref.CODES[code]
    assert _cpp_decode(data) == ("ERR", code), label


def test_limits(codec):
    dense = _golden("dense")  # shape 2 x 3 x 4
    for kw, flags in [({"max_elements": 23}, ["--max-elements", "23"]),
                      ({"max_elements": 5}, ["--max-elements", "5"]),
                      ({"max_shape": [2, 3, 3]}, ["--max-shape", "2,3,3"]),
                      ({"max_shape": [6, 4]}, ["--max-shape", "6,4"])]:
        assert _ref_decode(dense, **kw) == ("ERR", "LIMIT_EXCEEDED"), kw
        assert _cpp_decode(dense, flags) == ("ERR", "LIMIT_EXCEEDED"), flags
    assert _ref_decode(dense, max_elements=24)[0] == "OK"
    assert _ref_decode(dense, max_shape=[2, 3, 4])[0] == "OK"
    # The limits come after the checksum: a corrupt file over the limit is CHECKSUM_MISMATCH.
    bad = _patched(dense, len(dense) - 8, b"\xff", fix_crc=False)
    assert _ref_decode(bad, max_elements=1) == ("ERR", "CHECKSUM_MISMATCH")
    assert _cpp_decode(bad, ["--max-elements", "1"]) == ("ERR", "CHECKSUM_MISMATCH")

    def refuse(shape):
        raise srns_ref.SrnsError("INVALID_ARGUMENT", f"shape {shape} refused")
    assert _ref_decode(dense, accept_shape=refuse) == ("ERR", "INVALID_ARGUMENT")


def test_random_mutations_agree(codec):
    """Random body bytes replaced (checksum recomputed): both decoders accept with the same
    values, or both refuse (FORMAT.md step 10: CORRUPT_PAYLOAD or TRUNCATED; LIMIT_EXCEEDED
    for a shape over the limit, kept at 2^20 elements so that a mutated shape stays cheap)."""
    limit = 1 << 20
    rnd = random.Random(11)
    bases = [_golden(n) for n in GOLDEN_NAMES if n != "context_semistatic"]
    for name, mode, q in [("fmnist_stage3_img0", "dense", 4), ("fmnist_stage3_img0", "sparse", 2),
                          ("fmnist_stage3_img0", "paper", 4), ("fmnist_stage3_preact_img0", "context", 8),
                          ("syn_rank4", "context", 1)]:
        bases.append(_encoder_case(name, mode, q)[0])
    outcomes = {"both accept": 0, "both refuse": 0}
    for _ in range(600):
        base = rnd.choice(bases)
        pos = rnd.randrange(24, len(base) - 4)
        data = _patched(base, pos, bytes([rnd.randrange(256)]))
        ref = _ref_decode(data, max_elements=limit)
        cpp = _cpp_decode(data, ["--max-elements", str(limit)])
        assert ref[0] == cpp[0], f"offset {pos}: reference {ref}, C++ {cpp}"
        if ref[0] == "OK":
            assert _same_bits(ref[1], cpp[1]), f"offset {pos}"
            outcomes["both accept"] += 1
        else:
            assert ref[1] in ("CORRUPT_PAYLOAD", "TRUNCATED", "LIMIT_EXCEEDED"), ref
            assert cpp[1] in ("CORRUPT_PAYLOAD", "TRUNCATED", "LIMIT_EXCEEDED"), cpp
            if "LIMIT_EXCEEDED" in (ref[1], cpp[1]):
                assert ref[1] == cpp[1], f"offset {pos}: reference {ref}, C++ {cpp}"
            outcomes["both refuse"] += 1
    assert outcomes["both accept"] and outcomes["both refuse"], outcomes

"""splitrans.encode/decode/inspect/search on the committed features and on bad input."""
import io
import os
import pickle
import pydoc

import numpy as np
import pytest

import splitrans
from conftest import FEATURES, feature_files

MODES = ["auto", "paper", "dense", "sparse", "context"]


def load(name):
    return np.load(os.path.join(FEATURES, name))


def reference_dequantized(x, info):
    """The codec's quantizer and dequantizer (codec/quantize.h) in float32 NumPy."""
    x = np.asarray(x, dtype=np.float32)
    assert info["layout"] != "constant"
    scale, zp = np.float32(info["scale"]), info["zero_point"]
    v = np.rint(x / scale + np.float32(zp))
    q = np.clip(v, 0, (1 << info["q"]) - 1).astype(np.int64)
    return (q - zp).astype(np.float32) * scale


def test_package_surface():
    assert splitrans.MODES == tuple(MODES)
    assert (splitrans.MIN_Q, splitrans.MAX_Q, splitrans.MAX_RANK) == (1, 8, 8)
    assert splitrans.DEFAULT_MAX_ELEMENTS == 1 << 28
    assert splitrans.ERROR_CODES["TRUNCATED"] == 2 and splitrans.ERROR_CODES["LIMIT_EXCEEDED"] == 7
    assert issubclass(splitrans.CodecError, ValueError)
    for name in splitrans.__all__:
        assert hasattr(splitrans, name), name
    pkg = os.path.dirname(splitrans.__file__)
    for f in ("py.typed", "__init__.pyi", "_splitrans.pyi"):
        assert os.path.exists(os.path.join(pkg, f)), f


def test_help_tells_the_signatures():
    enc = pydoc.render_doc(splitrans.encode, renderer=pydoc.plaintext)
    assert ("encode(array: object, q: int = 4, mode: str = 'auto', search: str = 'alg1', quantizer: str = 'aiq') "
            "-> bytes") in enc
    dec = pydoc.render_doc(splitrans.decode, renderer=pydoc.plaintext)
    assert "max_elements: int = %d" % splitrans.DEFAULT_MAX_ELEMENTS in dec
    assert "2**28" in dec
    for fn in (splitrans.encode, splitrans.decode, splitrans.inspect, splitrans.search):
        assert len(fn.__doc__) > 300, fn.__name__


@pytest.mark.parametrize("name", feature_files())
def test_round_trip_every_mode_and_q(name):
    x = load(name)
    half = x.dtype == np.float16
    for q in range(1, 9):
        decoded = None
        for mode in MODES:
            data = splitrans.encode(x, q=q, mode=mode)
            info = splitrans.inspect(data)
            assert info["shape"] == x.shape and info["q"] == q
            assert info["dtype"] == ("float16" if half else "float32")
            assert info["total_bytes"] == len(data) and info["elements"] == x.size
            if mode in ("dense", "sparse", "paper", "context") and info["layout"] != "constant":
                assert info["layout"] == mode
            y = splitrans.decode(data)
            assert y.shape == x.shape and y.dtype == x.dtype and y.flags.c_contiguous and y.flags.writeable
            ref = reference_dequantized(x, info)
            expected = ref.astype(x.dtype)
            np.testing.assert_array_equal(y, expected, err_msg="%s q=%d mode=%s" % (name, q, mode))
            assert np.abs(ref - x.astype(np.float32)).max() <= np.float32(info["scale"]) * 1.0001
            if decoded is None:
                decoded = y
            np.testing.assert_array_equal(y, decoded)  # every layout codes the same symbols
        assert len(splitrans.encode(x, q=q)) < x.size * q / 8  # auto: below the fixed-length size


def test_clip_quantizer_on_a_heavy_tailed_feature():
    # A committed transformer feature (signed, dense) with a few outliers added: at Q = 3 the
    # clipped range halves the error at least; the bitstream is an ordinary one (the same
    # dequantizer reads it) whose range lies inside [min, max].
    x = np.load(os.path.join(os.path.dirname(FEATURES), "features_transformer",
                             "fmnist_vit_block1_img9000.npy")).astype(np.float32)
    x.flat[::997] *= 8
    errs = {}
    for quantizer in ("aiq", "clip"):
        data = splitrans.encode(x, q=3, mode="auto", quantizer=quantizer)
        info = splitrans.inspect(data)
        y = splitrans.decode(data)
        np.testing.assert_array_equal(y, reference_dequantized(x, info))
        errs[quantizer] = float(((y - x) ** 2).mean())
    assert errs["clip"] < 0.5 * errs["aiq"], errs
    with pytest.raises(splitrans.CodecError, match="paper"):
        splitrans.encode(x, q=3, mode="paper", quantizer="clip")
    with pytest.raises(splitrans.CodecError, match="quantizer"):
        splitrans.encode(x, q=3, quantizer="minmax")


def test_decode_dtype_choice():
    x16 = load("resnet34_layer2_img0_f16.npy")
    data = splitrans.encode(x16, q=6)
    assert splitrans.decode(data).dtype == np.float16
    y32 = splitrans.decode(data, dtype=np.float32)
    assert y32.dtype == np.float32
    np.testing.assert_array_equal(splitrans.decode(data, dtype="float16"), y32.astype(np.float16))
    x = load("fmnist_stage1_img0.npy")
    d = splitrans.encode(x, q=4)
    np.testing.assert_array_equal(splitrans.decode(d, dtype=np.float16), splitrans.decode(d).astype(np.float16))
    with pytest.raises(TypeError, match="dtype"):
        splitrans.decode(d, dtype=np.float64)


def test_input_kinds_and_copies():
    x = load("fmnist_stage2_img0.npy")
    data = splitrans.encode(x, q=4)
    info = splitrans._splitrans._input_info(x)
    assert not info["copied"] and info["data"] == x.ctypes.data and info["dtype"] == "float32"
    # float64 and big-endian: converted (one copy), same bytes.
    assert splitrans._splitrans._input_info(x.astype(np.float64))["copied"]
    assert splitrans.encode(x.astype(np.float64), q=4) == data
    assert splitrans.encode(x.astype(">f4"), q=4) == data
    # Non-contiguous views are copied into C order: same bytes as the contiguous copy.
    t = x.transpose(1, 2, 0)
    assert splitrans._splitrans._input_info(t)["copied"]
    assert splitrans.encode(t, q=4) == splitrans.encode(np.ascontiguousarray(t), q=4)
    s = x[:, ::2, 1:]
    assert splitrans.encode(s, q=4) == splitrans.encode(s.copy(), q=4)
    # Unaligned float32 memory is copied too.
    raw = np.zeros(x.nbytes + 1, np.uint8)[1:].view(np.float32).reshape(x.shape)
    raw[...] = x
    assert not raw.flags.aligned and splitrans._splitrans._input_info(raw)["copied"]
    assert splitrans.encode(raw, q=4) == data
    # float16 stays float16, in place.
    h = x.astype(np.float16)
    ih = splitrans._splitrans._input_info(h)
    assert ih["dtype"] == "float16" and not ih["copied"]
    # Lists and buffer-protocol objects go through numpy.asarray.
    assert splitrans.decode(splitrans.encode([[0.0, 1.0], [2.0, 3.0]], q=8)).shape == (2, 2)
    mv = memoryview(x.reshape(-1))
    assert splitrans.encode(mv, q=4) == splitrans.encode(x.reshape(-1), q=4)
    # Bytes-like inputs for decode.
    for buf in (bytearray(data), memoryview(data), np.frombuffer(data, np.uint8)):
        np.testing.assert_array_equal(splitrans.decode(buf), splitrans.decode(data))
    # Empty tensors.
    e = np.zeros((0, 3), np.float32)
    assert splitrans.decode(splitrans.encode(e)).shape == (0, 3)


def test_search_matches_paper_mode():
    x = load("fmnist_stage3_img0.npy")
    for q in (2, 4, 8):
        rows = splitrans.search(x, q)
        assert rows and all(r["n"] * r["k"] == x.size for r in rows)
        assert [r["n"] for r in rows] == sorted((r["n"] for r in rows), reverse=True)
        assert sum(r["algorithm1_choice"] for r in rows) == 1
        alg1 = next(r for r in rows if r["algorithm1_choice"])
        exh = next(r for r in rows if r["exhaustive_choice"])
        assert exh["cost_bits"] == min(r["cost_bits"] for r in rows)
        assert len(splitrans.encode(x, q=q, mode="paper")) == alg1["coded_bytes"]
        assert len(splitrans.encode(x, q=q, mode="paper", search="exhaustive")) == exh["coded_bytes"]
        info = splitrans.inspect(splitrans.encode(x, q=q, mode="paper"))
        assert (info["n"], info["k"]) == (alg1["n"], alg1["k"])
    assert splitrans.search(np.ones((4, 4), np.float32), 4) == []
    # Where Algorithm 1 stops early, search="exhaustive" picks another N.
    for name, q in (("fmnist_stage1_preact_img0.npy", 4), ("fmnist_stage3_preact_img0.npy", 5)):
        x = load(name)
        rows = splitrans.search(x, q)
        alg1 = next(r for r in rows if r["algorithm1_choice"])
        exh = next(r for r in rows if r["exhaustive_choice"])
        assert alg1["n"] != exh["n"] and exh["cost_bits"] < alg1["cost_bits"]
        for search, want in (("alg1", alg1), ("exhaustive", exh)):
            info = splitrans.inspect(splitrans.encode(x, q=q, mode="paper", search=search))
            assert (info["n"], info["total_bytes"]) == (want["n"], want["coded_bytes"]), search


def expect_codec_error(name, fn, *args, **kwargs):
    with pytest.raises(splitrans.CodecError) as e:
        fn(*args, **kwargs)
    assert e.value.name == name, str(e.value)
    assert e.value.code == splitrans.ERROR_CODES[name]
    assert str(e.value) == "%s: %s" % (name, e.value.message)
    return e.value


def test_bad_arrays():
    x = load("fmnist_stage2_img0.npy").copy()
    for dtype in (np.int32, np.uint8, np.bool_, np.complex64):
        with pytest.raises(TypeError, match="float32, float16 or float64"):
            splitrans.encode(x.astype(dtype))
    with pytest.raises(TypeError):
        splitrans.encode(object())
    with pytest.raises(TypeError):
        splitrans.encode("not an array")
    y = x.copy()
    y[3, 4, 5] = np.nan
    expect_codec_error("INVALID_ARGUMENT", splitrans.encode, y)
    y[3, 4, 5] = np.inf
    expect_codec_error("INVALID_ARGUMENT", splitrans.encode, y)
    with np.errstate(over="ignore"):  # float64 beyond float32's range converts to inf
        expect_codec_error("INVALID_ARGUMENT", splitrans.encode, np.array([1e300, 0.0]))
    expect_codec_error("INVALID_ARGUMENT", splitrans.encode, np.float32(1.0))  # rank 0
    expect_codec_error("INVALID_ARGUMENT", splitrans.encode, np.zeros([1] * 9, np.float32))
    expect_codec_error("INVALID_ARGUMENT", splitrans.encode, x, q=0)
    expect_codec_error("INVALID_ARGUMENT", splitrans.encode, x, q=9)
    expect_codec_error("INVALID_ARGUMENT", splitrans.encode, x, mode="zstd")
    expect_codec_error("INVALID_ARGUMENT", splitrans.encode, x, search="greedy")
    expect_codec_error("INVALID_ARGUMENT", splitrans.search, y, 4)
    expect_codec_error("INVALID_ARGUMENT", splitrans.search, x, 0)


def test_bad_bytes():
    x = load("fmnist_stage3_img1.npy")
    data = splitrans.encode(x, q=4)
    for fn in (splitrans.decode, splitrans.inspect):
        expect_codec_error("TRUNCATED", fn, b"")
        expect_codec_error("BAD_MAGIC", fn, b"XXXX" + data[4:])
        expect_codec_error("TRAILING_BYTES", fn, data + b"\0")
        body = bytearray(data)
        body[len(body) // 2] ^= 0x40
        expect_codec_error("CHECKSUM_MISMATCH", fn, bytes(body))
        with pytest.raises(TypeError, match="bytes-like"):
            fn("a string")
        with pytest.raises(TypeError, match="bytes-like"):
            fn(12)
    # Every prefix is refused with a codec error, never a crash.
    for n in range(len(data)):
        with pytest.raises(splitrans.CodecError):
            splitrans.decode(data[:n])


def test_decode_limits():
    x = load("fmnist_stage2_img1.npy")  # 32 x 14 x 14
    data = splitrans.encode(x, q=4)
    e = expect_codec_error("LIMIT_EXCEEDED", splitrans.decode, data, max_elements=x.size - 1)
    assert "max_elements" in e.message
    expect_codec_error("LIMIT_EXCEEDED", splitrans.inspect, data, max_elements=100)
    assert splitrans.decode(data, max_elements=x.size).shape == x.shape
    assert splitrans.decode(data, max_shape=[32, 14, 14]).shape == x.shape
    expect_codec_error("LIMIT_EXCEEDED", splitrans.decode, data, max_shape=(32, 13, 14))
    expect_codec_error("LIMIT_EXCEEDED", splitrans.decode, data, max_shape=(6272,))
    expect_codec_error("LIMIT_EXCEEDED", splitrans.inspect, data, max_shape=(31, 14, 14))
    with pytest.raises(TypeError):
        splitrans.decode(data, max_elements=-1)


def test_codec_error_pickles():
    try:
        splitrans.decode(b"\0" * 8)
    except splitrans.CodecError as e:
        err = e
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is splitrans.CodecError
    assert (again.code, again.name, again.message, str(again)) == (err.code, err.name, err.message, str(err))
    assert isinstance(again, ValueError)
    buf = io.StringIO()
    print(err, file=buf)
    assert buf.getvalue().startswith(err.name + ": ")

"""PyTorch CPU tensors (and other DLPack producers) in."""
import os

import numpy as np
import pytest

import splitrans
from conftest import FEATURES

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def x():
    return np.load(os.path.join(FEATURES, "fmnist_stage1_img1.npy"))


def test_float32_tensor_read_in_place(x):
    t = torch.from_numpy(x.copy())
    info = splitrans._splitrans._input_info(t)
    assert not info["copied"] and info["data"] == t.data_ptr() and info["shape"] == tuple(t.shape)
    assert splitrans.encode(t, q=4) == splitrans.encode(x, q=4)
    batch = torch.from_numpy(np.stack([x, x * 2]))
    assert not splitrans._splitrans._input_info(batch[1])["copied"]  # a contiguous slice: no copy
    assert splitrans.encode(batch[1], q=4) == splitrans.encode(x * 2, q=4)


def test_requires_grad_and_other_dtypes(x):
    t = torch.from_numpy(x.copy()).requires_grad_(True)
    assert splitrans.encode(t * 1, q=3) == splitrans.encode(x, q=3)  # a non-leaf with grad_fn too
    h = torch.from_numpy(x).half()
    data = splitrans.encode(h, q=6)
    assert data == splitrans.encode(x.astype(np.float16), q=6)
    assert splitrans.inspect(data)["dtype"] == "float16"
    back = torch.from_numpy(splitrans.decode(data))
    assert back.dtype == torch.float16 and back.shape == h.shape
    assert splitrans.encode(torch.from_numpy(x).double(), q=4) == splitrans.encode(x, q=4)


def test_non_contiguous_tensor_copied(x):
    t = torch.from_numpy(x).permute(1, 2, 0)
    assert not t.is_contiguous()
    assert splitrans._splitrans._input_info(t)["copied"]
    assert splitrans.encode(t, q=4) == splitrans.encode(t.contiguous(), q=4)
    assert splitrans.encode(t[::2], q=4) == splitrans.encode(t[::2].contiguous(), q=4)


def test_refused_tensors(x):
    with pytest.raises(TypeError, match="float32, float16 or float64 tensor"):
        splitrans.encode(torch.from_numpy(x).bfloat16())
    with pytest.raises(TypeError, match="float32, float16 or float64 tensor"):
        splitrans.encode(torch.arange(10))
    with pytest.raises(TypeError, match="CPU tensor"):
        splitrans.encode(torch.empty(4, 4, device="meta"))
    bad = torch.from_numpy(x.copy())
    bad[0, 0, 0] = float("nan")
    with pytest.raises(splitrans.CodecError) as e:
        splitrans.encode(bad)
    assert e.value.name == "INVALID_ARGUMENT"


class DLPackOnly:
    """An object that offers its data through DLPack only (as JAX or CuPy arrays do)."""

    def __init__(self, tensor):
        self._t = tensor

    def __dlpack__(self, stream=None):
        return self._t.__dlpack__()

    def __dlpack_device__(self):
        return self._t.__dlpack_device__()


def test_dlpack_producer(x):
    t = torch.from_numpy(x.copy())
    obj = DLPackOnly(t)
    info = splitrans._splitrans._input_info(obj)
    assert not info["copied"] and info["data"] == t.data_ptr()
    assert splitrans.encode(obj, q=4) == splitrans.encode(x, q=4)


def test_decode_to_tensor_round_trip(x):
    t = torch.from_numpy(x)
    y = torch.from_numpy(splitrans.decode(splitrans.encode(t, q=8)))
    scale = splitrans.inspect(splitrans.encode(t, q=8))["scale"]
    assert y.shape == t.shape and float((y - t).abs().max()) <= scale

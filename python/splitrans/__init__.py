"""splitrans: the splitrans feature codec for Python.

Float tensors (NumPy arrays, PyTorch CPU tensors) are quantized to Q bits and entropy-coded with
rANS into one self-describing byte string, and back. The bitstream is the one the C++ codec and
``splitrans-codec`` write (codec/FORMAT.md).

    import numpy as np, splitrans
    x = np.random.rand(32, 14, 14).astype(np.float32)
    data = splitrans.encode(x, q=4)            # bytes
    y = splitrans.decode(data)                 # float32 array of shape (32, 14, 14)
    splitrans.inspect(data)["layout"]          # header fields and sections

Every function may be called from several threads at once and releases the GIL while coding.
Codec errors raise CodecError (a ValueError) with the codec's stable ``code`` and ``name``.
"""
from ._splitrans import (  # noqa: F401
    DEFAULT_MAX_ELEMENTS,
    ERROR_CODES,
    MAX_Q,
    MAX_RANK,
    MIN_Q,
    MODES,
    CodecError,
    __version__,
    decode,
    encode,
    inspect,
    search,
)

__all__ = [
    "CodecError",
    "DEFAULT_MAX_ELEMENTS",
    "ERROR_CODES",
    "MAX_Q",
    "MAX_RANK",
    "MIN_Q",
    "MODES",
    "__version__",
    "decode",
    "encode",
    "inspect",
    "search",
]

# Typed stubs of the native module splitrans._splitrans (python/src/splitrans_module.cc).
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy

_Buffer = Union[bytes, bytearray, memoryview, Any]

__version__: str
MIN_Q: int
MAX_Q: int
MAX_RANK: int
MODES: Tuple[str, ...]
DEFAULT_MAX_ELEMENTS: int
ERROR_CODES: Dict[str, int]

class CodecError(ValueError):
    message: str
    code: int
    name: str
    def __init__(self, message: str, code: int, name: str) -> None: ...

def encode(array: Any, q: int = 4, mode: str = "auto", search: str = "alg1", quantizer: str = "aiq") -> bytes: ...
def decode(
    data: _Buffer,
    dtype: Optional[Any] = None,
    max_elements: int = 268435456,
    max_shape: Optional[Sequence[int]] = None,
) -> numpy.ndarray: ...
def inspect(
    data: _Buffer, max_elements: int = 268435456, max_shape: Optional[Sequence[int]] = None
) -> Dict[str, Any]: ...
def search(array: Any, q: int = 4) -> List[Dict[str, Any]]: ...
def _input_info(array: Any) -> Dict[str, Any]: ...

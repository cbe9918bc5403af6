# Typed stubs of the splitrans package (re-exports of splitrans._splitrans).
from ._splitrans import (
    DEFAULT_MAX_ELEMENTS as DEFAULT_MAX_ELEMENTS,
    ERROR_CODES as ERROR_CODES,
    MAX_Q as MAX_Q,
    MAX_RANK as MAX_RANK,
    MIN_Q as MIN_Q,
    MODES as MODES,
    CodecError as CodecError,
    __version__ as __version__,
    decode as decode,
    encode as encode,
    inspect as inspect,
    search as search,
)

__all__: list[str]

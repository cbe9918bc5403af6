"""Reference decoder for the splitrans bitstream, version 1, written from codec/FORMAT.md alone.

It shares no code with the C++ codec (codec/*.cc) and exists to test the specification:
tests/srns_ref_test.py decodes the golden files (tests/data/golden) and the C++ encoder's outputs
with it and compares the result bit for bit with the C++ decoder's. Pure Python 3 and numpy;
clarity over speed (the rANS and context-model loops are plain Python).

    import srns_ref
    x = srns_ref.decode(open("t.srns", "rb").read())   # numpy float32 or float16, its shape

A float16 tensor (header dtype 2) decodes to the same float32 values x^ as any other, then
rounded to float16 (nearest, ties to even; +-inf beyond the float16 range), as the C++ tools
write it; decode_ex also returns the float32 values.

Errors raise SrnsError, whose .code is the FORMAT.md status name ("TRUNCATED", "BAD_MAGIC",
"CHECKSUM_MISMATCH", "CORRUPT_PAYLOAD", ...) and .value its number (codec/status.h). Checks run
in the order of FORMAT.md "Decoding and validation order".

Command line: python3 srns_ref.py FILE.srns [OUT.npy]   (prints dtype, shape and layout).
"""

import struct
import sys

import numpy as np

__all__ = ["SrnsError", "Decoded", "decode", "decode_ex", "crc32c", "CODES"]

# FORMAT.md "Decoding and validation order" / codec/status.h: stable names and numbers.
CODES = {
    "INVALID_ARGUMENT": 1,
    "TRUNCATED": 2,
    "BAD_MAGIC": 3,
    "UNSUPPORTED_VERSION": 4,
    "RESERVED_BITS": 5,
    "BAD_HEADER_FIELD": 6,
    "LIMIT_EXCEEDED": 7,
    "CHECKSUM_MISMATCH": 8,
    "TRAILING_BYTES": 9,
    "CORRUPT_PAYLOAD": 10,
}

LAYOUT_NAMES = {0: "constant", 1: "dense", 2: "sparse", 3: "paper", 4: "context"}
MODEL_NAMES = {0: "semi-static", 1: "adaptive"}
PREDICTOR_NAMES = {0: "level", 1: "med"}

HEADER_SIZE = 24
RANS_L = 1 << 16  # every rANS lane state starts (encoder) and ends (decoder) at L
FLT_MAX = float(np.finfo(np.float32).max)


class SrnsError(Exception):
    """A decode failure: code is the status name, value its number."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.value = CODES[code]
        self.message = message


def _corrupt(message):
    return SrnsError("CORRUPT_PAYLOAD", message)


# --- CRC32C (FORMAT.md "Checksum") ---------------------------------------------------------------

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    """CRC32C (Castagnoli): reflected polynomial 0x82F63B78, init and final XOR 0xFFFFFFFF."""
    table = _CRC_TABLE
    c = 0xFFFFFFFF
    for byte in data:
        c = table[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


# --- Byte reader ---------------------------------------------------------------------------------

class _Reader:
    """Little-endian reads over data[pos:end]; running past end is TRUNCATED."""

    def __init__(self, data, pos, end):
        self.data = data
        self.pos = pos
        self.end = end

    def remaining(self):
        return self.end - self.pos

    def take(self, n, what):
        if n > self.end - self.pos:
            raise SrnsError("TRUNCATED", f"{what} needs {n} bytes, {self.end - self.pos} remain")
        p = self.pos
        self.pos += n
        return self.data[p:p + n]

    def u8(self, what):
        return self.take(1, what)[0]

    def u32(self, what):
        return struct.unpack("<I", self.take(4, what))[0]

    def f32(self, what):
        return struct.unpack("<f", self.take(4, what))[0]

    def varint(self, what, max_value):
        """Unsigned LEB128, at most 5 bytes, value <= max_value."""
        value = 0
        for i in range(5):
            b = self.u8(what)
            value |= (b & 0x7F) << (7 * i)
            if not b & 0x80:
                break
        else:
            raise _corrupt(f"{what}: varint longer than 5 bytes")
        if value > max_value:
            raise _corrupt(f"{what}: {value} > its maximum {max_value}")
        return value

    def u16_array(self, count, what):
        return np.frombuffer(self.take(2 * count, what), dtype="<u2").tolist()

    def u32_array(self, count, what):
        return np.frombuffer(self.take(4 * count, what), dtype="<u4").tolist()


# --- rANS (FORMAT.md "rANS stream (kind 2)") ------------------------------------------------------

def _rans_decode_block(symbols_out, out_pos, m, W, states, words, P, slot_sym, freq, start, what):
    """Decodes m symbols of one block into symbols_out[out_pos:out_pos+m]."""
    if any(s < RANS_L for s in states):
        raise _corrupt(f"{what}: initial state below L")
    x = list(states)
    mask = (1 << P) - 1
    lane_mask = W - 1  # W is a power of two
    nwords = len(words)
    wi = 0
    for j in range(m):
        lane = j & lane_mask
        xs = x[lane]
        slot = xs & mask
        s = slot_sym[slot]
        xs = freq[s] * (xs >> P) + slot - start[s]
        if xs < RANS_L:
            if wi == nwords:
                raise _corrupt(f"{what}: ran out of words")
            xs = (xs << 16) | words[wi]
            wi += 1
        x[lane] = xs
        symbols_out[out_pos + j] = s
    if wi != nwords:
        raise _corrupt(f"{what}: {nwords - wi} unused words")
    if any(s != RANS_L for s in x):
        raise _corrupt(f"{what}: final state is not L")


def _slot_table(freq):
    """slot -> symbol for a frequency table (slots [start(s), start(s)+freq(s)) belong to s)."""
    return [s for s, f in enumerate(freq) for _ in range(f)]


def _read_stream(r, max_n, max_symbol, what, info):
    """A stream (FORMAT.md "Streams"): returns its symbols as a list of ints."""
    symbols = _read_stream_symbols(r, max_n, max_symbol, what, info)
    info.setdefault("stream_lengths", []).append(len(symbols))
    return symbols


def _read_stream_symbols(r, max_n, max_symbol, what, info):
    kind = r.u8(f"{what} kind")
    if kind == 0:
        info.setdefault("stream_kinds", []).append("empty")
        return []
    if kind == 1:
        n = r.varint(f"{what} n", 0xFFFFFFFF)
        if n < 1 or n > max_n:
            raise _corrupt(f"{what}: constant stream of {n} symbols (1..{max_n})")
        sym = r.varint(f"{what} symbol", max_symbol)
        info.setdefault("stream_kinds", []).append("constant")
        return [sym] * n
    if kind != 2:
        raise _corrupt(f"{what}: stream kind {kind}")
    info.setdefault("stream_kinds", []).append("rans")
    n = r.varint(f"{what} n", 0xFFFFFFFF)
    if n < 1 or n > max_n:
        raise _corrupt(f"{what}: rANS stream of {n} symbols (1..{max_n})")
    P = r.u8(f"{what} prob_bits")
    if not 8 <= P <= 15:
        raise _corrupt(f"{what}: prob_bits {P}")
    lanes_log2 = r.u8(f"{what} lanes_log2")
    if lanes_log2 > 5:
        raise _corrupt(f"{what}: lanes_log2 {lanes_log2}")
    block_log2 = r.u8(f"{what} block_log2")
    if not 8 <= block_log2 <= 20:
        raise _corrupt(f"{what}: block_log2 {block_log2}")
    max_alphabet = min(4096, 1 << P, max_symbol + 1)
    A = r.varint(f"{what} alphabet", 0xFFFFFFFF)
    if not 2 <= A <= max_alphabet:
        raise _corrupt(f"{what}: alphabet {A} (2..{max_alphabet})")
    freq = [r.varint(f"{what} freq", (1 << P) - 1) for _ in range(A)]
    if sum(freq) != 1 << P:
        raise _corrupt(f"{what}: frequencies sum to {sum(freq)}, not 2^{P}")
    if sum(1 for f in freq if f) < 2:
        raise _corrupt(f"{what}: fewer than two nonzero frequencies")
    start = [0] * A
    for s in range(1, A):
        start[s] = start[s - 1] + freq[s - 1]
    W = 1 << lanes_log2
    B = 1 << block_log2
    nblocks = (n + B - 1) // B
    block_sizes = [min(B, n - b * B) for b in range(nblocks)]
    word_counts = [r.varint(f"{what} word_count", m) for m in block_sizes]
    slot_sym = _slot_table(freq)
    out = [0] * n
    for b in range(nblocks):
        states = r.u32_array(W, f"{what} block {b} states")
        words = r.u16_array(word_counts[b], f"{what} block {b} words")
        _rans_decode_block(out, b * B, block_sizes[b], W, states, words, P, slot_sym, freq, start,
                           f"{what} block {b}")
    info.setdefault("rans_params", []).append((P, W, B, nblocks))
    return out


# --- Layouts 1..3 ---------------------------------------------------------------------------------

def _layout_dense(r, T, M, info):
    q = _read_stream(r, T, M, "dense q", info)
    if len(q) != T:
        raise _corrupt(f"dense: {len(q)} symbols for {T} elements")
    return np.array(q, dtype=np.int64)


def _read_nk(r, T, what):
    N = r.u32(f"{what} N")
    K = r.u32(f"{what} K")
    if N < 1 or not 1 <= K <= 65535 or N * K != T:
        raise _corrupt(f"{what}: N {N} x K {K} does not give T = {T}")
    return N, K


def _csr_to_q(v, c, rows, N, K, T, M, what):
    """Rebuilds the q plane (zeros elsewhere) from nonzeros v, columns c and row counts."""
    v = np.array(v, dtype=np.int64)
    c = np.array(c, dtype=np.int64)
    rows = np.array(rows, dtype=np.int64)
    if len(rows) != N:
        raise _corrupt(f"{what}: {len(rows)} row counts for N = {N}")
    if len(v) != len(c) or len(v) != int(rows.sum()):
        raise _corrupt(f"{what}: |v| {len(v)}, |c| {len(c)}, sum r {int(rows.sum())} disagree")
    if len(v) and (v.min() < 1 or v.max() > M):
        raise _corrupt(f"{what}: nonzero value outside 1..{M}")
    if len(c) and c.max() >= K:
        raise _corrupt(f"{what}: column index >= K")
    if len(rows) and rows.max() > K:
        raise _corrupt(f"{what}: row count > K")
    row_of = np.repeat(np.arange(N, dtype=np.int64), rows)
    if len(c) > 1:
        same_row = row_of[1:] == row_of[:-1]
        if np.any(same_row & (c[1:] <= c[:-1])):
            raise _corrupt(f"{what}: column indices not strictly increasing in a row")
    q = np.zeros(T, dtype=np.int64)
    q[row_of * K + c] = v
    return q


def _layout_sparse(r, T, M, info):
    N, K = _read_nk(r, T, "sparse")
    info["N"], info["K"] = N, K
    v = _read_stream(r, T, M, "sparse v", info)
    c = _read_stream(r, T, K - 1, "sparse c", info)
    rows = _read_stream(r, N, K, "sparse r", info)
    return _csr_to_q(v, c, rows, N, K, T, M, "sparse")


def _layout_paper(r, T, M, info):
    N, K = _read_nk(r, T, "paper")
    info["N"], info["K"] = N, K
    D = _read_stream(r, 2 * T + N, max(M, K), "paper D", info)
    if len(D) < N or (len(D) - N) % 2:
        raise _corrupt(f"paper: |D| = {len(D)} cannot split with N = {N}")
    nv = (len(D) - N) // 2
    return _csr_to_q(D[:nv], D[nv:2 * nv], D[2 * nv:], N, K, T, M, "paper")


# --- Layout 4: context (FORMAT.md "4: context") ---------------------------------------------------

NUM_CONTEXTS_MIN = 42


def _unzigzag(s):
    return s >> 1 if not s & 1 else -((s + 1) >> 1)


class _Lanes:
    """Four interleaved rANS decoder states over one word sequence (FORMAT.md "Coding")."""

    def __init__(self, states, words, what):
        if any(s < RANS_L for s in states):
            raise _corrupt(f"{what}: initial state below L")
        self.x = list(states)
        self.words = words
        self.wi = 0
        self.what = what

    def step(self, lane, P, slot_sym, freq, start):
        """Decodes one symbol of the table (slot_sym, freq, start) at P bits in lane."""
        xs = self.x[lane]
        slot = xs & ((1 << P) - 1)
        s = slot_sym[slot]
        xs = freq[s] * (xs >> P) + slot - start[s]
        if xs < RANS_L:
            xs = (xs << 16) | self._next_word()
        self.x[lane] = xs
        return s

    def raw(self, lane, P, bits):
        """Decodes a raw value of `bits` bits: frequency 2^(P-bits) at start value * 2^(P-bits)."""
        xs = self.x[lane]
        shift = P - bits
        slot = xs & ((1 << P) - 1)
        value = slot >> shift
        xs = ((xs >> P) << shift) + (slot & ((1 << shift) - 1))
        if xs < RANS_L:
            xs = (xs << 16) | self._next_word()
        self.x[lane] = xs
        return value

    def _next_word(self):
        if self.wi == len(self.words):
            raise _corrupt(f"{self.what}: ran out of words")
        w = self.words[self.wi]
        self.wi += 1
        return w

    def finish(self):
        if self.wi != len(self.words):
            raise _corrupt(f"{self.what}: {len(self.words) - self.wi} unused words")
        if any(s != RANS_L for s in self.x):
            raise _corrupt(f"{self.what}: final state is not L")


def _med(a, b, c):
    """Median edge detector of LOCO-I."""
    if c >= max(a, b):
        return min(a, b)
    if c <= min(a, b):
        return max(a, b)
    return a + b - c


def _read_semi_static_tables(r, C, P, info):
    tables = []
    for ctx in range(C):
        A = r.varint(f"context table {ctx} size", 26)
        if A == 0:
            tables.append(None)
            continue
        freq = [r.varint(f"context table {ctx} freq", 1 << P) for _ in range(A)]
        if sum(freq) != 1 << P:
            raise _corrupt(f"context table {ctx}: frequencies sum to {sum(freq)}, not 2^{P}")
        single = next((t for t, f in enumerate(freq) if f == 1 << P), None)
        start = [0] * A
        for t in range(1, A):
            start[t] = start[t - 1] + freq[t - 1]
        slot_sym = None if single is not None else _slot_table(freq)
        tables.append((single, slot_sym, freq, start))
    info["single_token_contexts"] = sum(1 for t in tables if t is not None and t[0] is not None)
    return tables


def _context_semi_static(r, q_out, maps, H, W, M, base, predictor, C, info):
    P = r.u8("context prob_bits")
    if not 8 <= P <= 12:
        raise _corrupt(f"context: prob_bits {P}")
    mps = r.u32("context maps_per_segment")
    if mps < 1:
        raise _corrupt("context: maps_per_segment 0")
    tables = _read_semi_static_tables(r, C, P, info)
    info["prob_bits"] = P
    info["maps_per_segment"] = mps
    PW = W + 3  # padded plane: 2 columns left, 1 right, 2 rows above
    plane_size = (H + 2) * PW
    level = predictor == 0
    nseg = (maps + mps - 1) // mps if maps else 0
    info["segments"] = nseg
    HW = H * W
    max_token = -1
    partial_groups = 0
    for seg in range(nseg):
        m0 = seg * mps
        m1 = min(maps, m0 + mps)
        what = f"context segment {seg}"
        states = r.u32_array(4, f"{what} states")
        nwords = r.varint(f"{what} word count", 2 * (m1 - m0) * HW)
        lanes = _Lanes(states, r.u16_array(nwords, f"{what} words"), what)
        for g0 in range(m0, m1, 4):
            g = min(4, m1 - g0)
            partial_groups += g < 4
            planes = [[0] * plane_size for _ in range(g)]
            for y in range(H):
                row = (y + 2) * PW + 2
                for x in range(W):
                    pos = row + x
                    for lane in range(g):
                        v = planes[lane]
                        a = v[pos - 1]
                        b = v[pos - PW]
                        c = v[pos - PW - 1]
                        d = v[pos - PW + 1]
                        aa = v[pos - 2]
                        bb = v[pos - 2 * PW]
                        if level:
                            pred = base
                            ma, mb, mc, md = abs(a - base), abs(b - base), abs(c - base), abs(d - base)
                            act = ma + mb + ((mc + md) >> 1)
                            nz = (ma != 0) + (mb != 0) + (mc != 0) + (md != 0)
                            far = int(aa != base or bb != base)
                            if nz == 0:
                                ctx = far
                            else:
                                ctx = 2 + 2 * (5 * (nz - 1) + min(act.bit_length() >> 1, 4)) + far
                        else:
                            pred = _med(a, b, c)
                            act = abs(a - c) + abs(b - c) + abs(d - b)
                            far = int(aa != a or bb != b)
                            ctx = far if act == 0 else 1 + min(act.bit_length(), C - 2)
                        table = tables[ctx]
                        if table is None:
                            raise _corrupt(f"{what}: context {ctx} has no table")
                        single, slot_sym, freq, start = table
                        if single is not None:
                            token = single
                        else:
                            token = lanes.step(lane, P, slot_sym, freq, start)
                        if token > max_token:
                            max_token = token
                        if token < 16:
                            s = token
                        else:
                            n = 5 + ((token - 16) >> 1)
                            nraw = n - 2
                            s = (1 << (n - 1)) | (((token - 16) & 1) << (n - 2))
                            s |= lanes.raw(lane, P, nraw)
                        if level:
                            qv = s if base == 0 else base + _unzigzag(s)
                        else:
                            qv = pred + _unzigzag(s)
                        if qv < 0 or qv > M:
                            raise _corrupt(f"{what}: decoded value {qv} outside 0..{M}")
                        v[pos] = qv
            for i in range(g):
                pl = planes[i]
                out = q_out[(g0 + i) * HW:(g0 + i + 1) * HW]
                for y in range(H):
                    row = (y + 2) * PW + 2
                    out[y * W:(y + 1) * W] = pl[row:row + W]
                q_out[(g0 + i) * HW:(g0 + i + 1) * HW] = out
        lanes.finish()
    info["max_token"] = max_token
    info["partial_groups"] = partial_groups


# Adaptive model: RATE[n] for n = 0..31.
_RATE = [1, 2, 2, 3, 3, 3, 3] + [4] * 9 + [5] * 16


def _context_adaptive(r, q_out, maps, H, W, M, q_bits, base, predictor, info):
    T = maps * H * W
    if T > 65536:
        raise _corrupt(f"context: adaptive model for {T} > 65536 elements")
    states = r.u32_array(4, "context states")
    nwords = r.varint("context word count", (2 + 2 * q_bits) * T)
    lanes = _Lanes(states, r.u16_array(nwords, "context words"), "context")
    x = lanes.x
    words = lanes.words

    # Context families: each context is [p, n]. Sizes: nonzero 2^7; sign 9; exp[k][i] (k 0..11,
    # i < emax <= 7); mant_first[k][ex]; mant[ex][i] (FORMAT.md "Model 1").
    def family(count):
        return [[32768, 0] for _ in range(count)]

    ctx_nz = family(128)
    ctx_sign = family(9)
    ctx_exp = [family(8) for _ in range(12)]
    ctx_mant_first = [family(9) for _ in range(12)]
    ctx_mant = [family(9) for _ in range(9)]
    rate = _RATE
    counter = [0]

    def bit(ctx):
        i = counter[0]
        counter[0] = i + 1
        lane = i & 3
        xs = x[lane]
        p = ctx[0]
        f1 = p >> 4
        if f1 < 1:
            f1 = 1
        elif f1 > 4095:
            f1 = 4095
        slot = xs & 4095
        if slot < f1:
            b = 1
            xs = f1 * (xs >> 12) + slot
        else:
            b = 0
            xs = (4096 - f1) * (xs >> 12) + slot - f1
        if xs < RANS_L:
            if lanes.wi == len(words):
                raise _corrupt("context: ran out of words")
            xs = (xs << 16) | words[lanes.wi]
            lanes.wi += 1
        x[lane] = xs
        n = ctx[1]
        rt = rate[n]
        ctx[1] = n + 1 if n < 31 else 31
        if b:
            ctx[0] = p + ((65536 - p) >> rt)
        else:
            ctx[0] = p - (p >> rt)
        return b

    PW = W + 3
    plane_size = (H + 2) * PW
    level = predictor == 0
    HW = H * W
    for mp in range(maps):
        qp = [0] * plane_size  # q values (the predictor's plane)
        ep = [0] * plane_size  # residuals e = q - pred (the contexts' plane)
        for y in range(H):
            row = (y + 2) * PW + 2
            for xx in range(W):
                pos = row + xx
                if level:
                    pred = base
                else:
                    pred = _med(qp[pos - 1], qp[pos - PW], qp[pos - PW - 1])
                el = ep[pos - 1]
                eu = ep[pos - PW]
                a = abs(el)
                b = abs(eu)
                c = abs(ep[pos - PW - 1])
                d = abs(ep[pos - PW + 1])
                far = ep[pos - 2] != 0 or ep[pos - 2 * PW] != 0
                act = 2 * a + 2 * b + c + d
                ctx = ((a > 0) + 2 * (b > 0) + 4 * (c > 0) + 8 * (d > 0) + 16 * far
                       + 32 * min(act.bit_length() >> 1, 3))
                if not bit(ctx_nz[ctx]):
                    e = 0
                else:
                    if 0 < pred < M:
                        sw = 0 if el == 0 else (1 if el < 0 else 2)
                        sn = 0 if eu == 0 else (1 if eu < 0 else 2)
                        neg = bit(ctx_sign[3 * sw + sn])
                    else:
                        neg = 1 if pred == M else 0
                    mmax = pred if neg else M - pred
                    k = min(act.bit_length(), 11)
                    emax = mmax.bit_length() - 1
                    ex = 0
                    exp_k = ctx_exp[k]
                    while ex < emax and bit(exp_k[ex]):
                        ex += 1
                    m = 1
                    if ex:
                        m = (m << 1) | bit(ctx_mant_first[k][ex])
                        mant_ex = ctx_mant[ex]
                        for i in range(ex - 2, -1, -1):  # bit i of m, in mant[ex][i]
                            m = (m << 1) | bit(mant_ex[i])
                    if m > mmax:
                        raise _corrupt(f"context: magnitude {m} > {mmax}")
                    e = -m if neg else m
                qp[pos] = pred + e
                ep[pos] = e
        out = q_out[mp * HW:(mp + 1) * HW]
        for y in range(H):
            row = (y + 2) * PW + 2
            out[y * W:(y + 1) * W] = qp[row:row + W]
        q_out[mp * HW:(mp + 1) * HW] = out
    info["decisions"] = counter[0]
    lanes.finish()


def _layout_context(r, shape, T, M, z, q_bits, info):
    model = r.u8("context model")
    predictor = r.u8("context predictor")
    lanes_log2 = r.u8("context lanes_log2")
    if model > 1:
        raise _corrupt(f"context: model {model}")
    if predictor > 1:
        raise _corrupt(f"context: predictor {predictor}")
    if lanes_log2 != 2:
        raise _corrupt(f"context: lanes_log2 {lanes_log2}")
    info["model"] = MODEL_NAMES[model]
    info["predictor"] = PREDICTOR_NAMES[predictor]
    W = shape[-1]
    H = shape[-2] if len(shape) >= 2 else 1
    maps = T // (H * W) if H * W else 0
    base = min(max(z, 0), M)
    C = max(q_bits + 4, NUM_CONTEXTS_MIN)  # FORMAT.md: C = max(Q + 4, 42)
    if model == 1 and T > 65536:
        raise _corrupt(f"context: adaptive model for {T} > 65536 elements")
    q = [0] * T
    if model == 0:
        _context_semi_static(r, q, maps, H, W, M, base, predictor, C, info)
    else:
        _context_adaptive(r, q, maps, H, W, M, q_bits, base, predictor, info)
    return np.array(q, dtype=np.int64)


# --- Top level -----------------------------------------------------------------------------------

class Decoded:
    """A decoded tensor: array (the header's dtype), values32 (the float32 x^ it was rounded
    from; the same array for float32) and info, what the bitstream said about itself (layout,
    model, predictor, stream kinds, ...)."""

    def __init__(self, array, values32, info):
        self.array = array
        self.values32 = values32
        self.info = info


def _dequantize(q, shape, scale, z):
    """x^ = f32(f32(q - z) * s), clamped to +-FLT_MAX (FORMAT.md "Quantization (AIQ)")."""
    diff = (q - z).astype(np.float32)  # q - z exact in int64, then rounded to float32
    with np.errstate(over="ignore"):
        x = diff * np.float32(scale)
    x = np.clip(x, np.float32(-FLT_MAX), np.float32(FLT_MAX))
    return x.reshape(shape)


def decode_ex(data, max_elements=1 << 28, max_shape=None, accept_shape=None):
    """Decodes one bitstream; returns Decoded(array, info). Raises SrnsError."""
    data = bytes(data)
    # 1. fixed header present
    if len(data) < HEADER_SIZE:
        raise SrnsError("TRUNCATED", f"{len(data)} bytes, the fixed header needs 24")
    # 2.-5. header fields
    if data[0:4] != b"SRNS":
        raise SrnsError("BAD_MAGIC", f"magic {data[0:4].hex()}")
    version, flags, dtype, rank, q_bits, layout = data[4:10]
    reserved = struct.unpack_from("<H", data, 10)[0]
    scale_bits = struct.unpack_from("<I", data, 12)[0]
    scale = struct.unpack_from("<f", data, 12)[0]
    z = struct.unpack_from("<i", data, 16)[0]
    body_size = struct.unpack_from("<I", data, 20)[0]
    if version != 1:
        raise SrnsError("UNSUPPORTED_VERSION", f"version {version}")
    if flags != 0 or reserved != 0:
        raise SrnsError("RESERVED_BITS", f"flags {flags}, reserved {reserved}")
    if dtype not in (1, 2):
        raise SrnsError("BAD_HEADER_FIELD", f"dtype {dtype}")
    if not 1 <= rank <= 8:
        raise SrnsError("BAD_HEADER_FIELD", f"rank {rank}")
    if not 1 <= q_bits <= 8:
        raise SrnsError("BAD_HEADER_FIELD", f"q {q_bits}")
    if layout > 4:
        raise SrnsError("BAD_HEADER_FIELD", f"layout {layout}")
    if layout == 0:
        if scale != 0.0:
            raise SrnsError("BAD_HEADER_FIELD", f"constant layout with scale {scale}")
        if z != 0:
            raise SrnsError("BAD_HEADER_FIELD", f"constant layout with zero point {z}")
    elif not (np.isfinite(scale) and scale > 0):
        raise SrnsError("BAD_HEADER_FIELD", f"scale {scale} (bits {scale_bits:08x})")
    # 6. whole bitstream present
    total = HEADER_SIZE + body_size + 4
    if len(data) < total:
        raise SrnsError("TRUNCATED", f"{len(data)} bytes, header says {total}")
    # 7. checksum
    stored = struct.unpack_from("<I", data, HEADER_SIZE + body_size)[0]
    computed = crc32c(data[:HEADER_SIZE + body_size])
    if stored != computed:
        raise SrnsError("CHECKSUM_MISMATCH", f"stored {stored:08x}, computed {computed:08x}")
    # 8. nothing after it
    if len(data) > total:
        raise SrnsError("TRAILING_BYTES", f"{len(data) - total} bytes after the checksum")
    # 9. shape against the limits
    r = _Reader(data, HEADER_SIZE, HEADER_SIZE + body_size)
    shape = [r.u32("shape") for _ in range(rank)]
    T = 1
    for d in shape:
        T *= d
        if T > max_elements:
            raise SrnsError("LIMIT_EXCEEDED", f"shape {shape}: over {max_elements} elements")
    if max_shape is not None:
        if len(max_shape) != rank or any(d > m for d, m in zip(shape, max_shape)):
            raise SrnsError("LIMIT_EXCEEDED", f"shape {shape} against max_shape {list(max_shape)}")
    if accept_shape is not None:
        accept_shape(list(shape))  # raises its own error
    # 10. layout body
    info = {"layout": LAYOUT_NAMES[layout], "dtype": "float32" if dtype == 1 else "float16",
            "shape": tuple(shape), "q": q_bits, "scale": scale, "zero_point": z}
    out_dtype = np.float32 if dtype == 1 else np.float16
    M = (1 << q_bits) - 1
    if layout == 0:
        value = r.f32("constant value")
        if not np.isfinite(value):
            raise _corrupt(f"constant value {value}")
        x = np.full(shape, value, dtype=np.float32)
    else:
        if layout == 1:
            q = _layout_dense(r, T, M, info)
        elif layout == 2:
            q = _layout_sparse(r, T, M, info)
        elif layout == 3:
            q = _layout_paper(r, T, M, info)
        else:
            q = _layout_context(r, shape, T, M, z, q_bits, info)
        x = _dequantize(q, shape, scale, z)
    if r.remaining():
        raise _corrupt(f"{r.remaining()} unused body bytes")
    with np.errstate(over="ignore"):  # float16: nearest, ties to even; beyond its range +-inf
        array = x.astype(out_dtype)
    return Decoded(array, x, info)


def decode(data, max_elements=1 << 28, max_shape=None, accept_shape=None):
    """Decodes one bitstream into a numpy array (float32 or float16, the encoded shape)."""
    return decode_ex(data, max_elements, max_shape, accept_shape).array


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    with open(argv[1], "rb") as f:
        data = f.read()
    try:
        d = decode_ex(data)
    except SrnsError as e:
        print(f"srns_ref: {e}", file=sys.stderr)
        return 1
    print(d.array.dtype, d.array.shape, d.info)
    if len(argv) == 3:
        np.save(argv[2], d.array)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

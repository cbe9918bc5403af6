// Host/device core of the CUDA dense codec: every computation whose bits must match the CPU
// codec (quantization parameters, frequency normalization and the prob_bits choice, the stream
// header bytes, the rANS lane step, CRC32C pieces and their combination). It compiles with g++
// and with nvcc, so gpu_core_test.cc checks it against the CPU codec on machines without a GPU;
// the kernels (*.cuh) call exactly these functions.
//
// Read me first.
// - Float math: device code uses the explicit round-to-nearest intrinsics (__dadd_rn, ...) so
//   that nvcc never contracts a multiply and an add into an FMA; the host compiler does not
//   contract either (C++17 ISO mode, x86-64 baseline). Both sides therefore round every
//   operation exactly like rans_stream.cc / quantize.cc.
// - log2: the CPU's choice of prob_bits sums count * (P - log2(freq)) in double. Device log2
//   is not guaranteed to match libm, so the encoder uploads a table of std::log2(f) for every
//   possible frequency f < 2^15, computed on the host by the same libm the CPU codec uses.
// - Block-parallel algorithms are written against an "executor" (HostExec here, BlockExec in
//   encode_kernels.cuh): ForEach runs a body for each index (one thread per index on the GPU,
//   then a barrier), Sum/Count reduce, Single runs on one thread. The control flow between those
//   calls depends only on values every thread holds, so it is barrier-safe on the GPU and plain
//   sequential code on the host.
#pragma once

#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "codec/codec.h"
#include "codec/quantize.h"
#include "codec/rans.h"
#include "codec/wire.h"

#if defined(__CUDACC__)
#define SPLITRANS_HD_TEMPLATE __host__ __device__
#define SPLITRANS_EXEC_CHECK_DISABLE _Pragma("nv_exec_check_disable")
#else
#define SPLITRANS_HD_TEMPLATE
#define SPLITRANS_EXEC_CHECK_DISABLE
#endif

namespace splitrans::codec::gpu {

// ---------------------------------------------------------------------------------------------
// Constants of the dense layout as the CPU encoder writes it (rans_stream.cc, encoder.cc).

constexpr int kDenseBlockLog2 = 16;                 // StreamParams().block_log2
constexpr uint32_t kDenseBlockSize = 1u << kDenseBlockLog2;
constexpr uint32_t kMaxDenseAlphabet = 256;         // q <= 8 bits
constexpr int kMaxProbBitsCandidates = kMaxProbBits - kMinProbBits + 1;
constexpr size_t kMaxStreamHeaderBytes = 1 + 5 + 3 + 5 + 3 * kMaxDenseAlphabet;  // kind..table
constexpr uint32_t kLog2TableSize = 1u << kMaxProbBits;  // log2(f) for f in [0, 2^15)

// Per-item status codes the kernels write (values of codec::ErrorCode).
constexpr uint32_t kCodeOk = 0;
constexpr uint32_t kCodeInvalidArgument = 1;
constexpr uint32_t kCodeCorruptPayload = 10;
constexpr uint32_t kCodeInternal = 11;

// Encoder detail codes (GpuItemResult::detail) explaining kCodeInvalidArgument.
constexpr uint32_t kDetailNonFinite = 1;     // NaN or infinity in the tensor
constexpr uint32_t kDetailRangeTooLarge = 2; // (xmax - xmin) / (2^Q - 1) overflows float32
constexpr uint32_t kDetailOffsetTooLarge = 3;  // |zero point| > kMaxZeroPoint (quantize.h)

// ---------------------------------------------------------------------------------------------
// Exactly rounded arithmetic on both sides.

SPLITRANS_HD double DAdd(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
SPLITRANS_HD double DSub(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dsub_rn(a, b);
#else
  return a - b;
#endif
}
SPLITRANS_HD double DMul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
SPLITRANS_HD double DDiv(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}
SPLITRANS_HD float DToF(double a) {
#if defined(__CUDA_ARCH__)
  return __double2float_rn(a);
#else
  return static_cast<float>(a);
#endif
}
SPLITRANS_HD double NearbyInt(double a) {
#if defined(__CUDA_ARCH__)
  return nearbyint(a);
#else
  return std::nearbyint(a);
#endif
}

SPLITRANS_HD int FloorLog2U64(uint64_t v) {
#if defined(__CUDA_ARCH__)
  return v == 0 ? -1 : 63 - __clzll(static_cast<long long>(v));
#else
  return v == 0 ? -1 : 63 - __builtin_clzll(v);
#endif
}

SPLITRANS_HD uint32_t BitsOf(float f) { return WireFloatBits(f); }
SPLITRANS_HD float FloatOf(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, 4);
  return f;
#endif
}

// ---------------------------------------------------------------------------------------------
// Quantization parameters (mirrors ComputeQuantParams in quantize.cc after its range scan).

// Monotonic key of a float's bits: a < b (with -0 < +0) iff key(a) < key(b) as unsigned.
SPLITRANS_HD uint32_t FloatKey(uint32_t bits) { return (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u); }
SPLITRANS_HD uint32_t FloatKeyToBits(uint32_t key) { return (key & 0x80000000u) ? (key & 0x7fffffffu) : ~key; }
SPLITRANS_HD bool IsFiniteBits(uint32_t bits) { return (bits & 0x7f800000u) != 0x7f800000u; }

enum class ParamsKind : uint32_t { kDense = 0, kConstant = 1, kRangeTooLarge = 2, kOffsetTooLarge = 3 };

struct RangeParams {
  ParamsKind kind = ParamsKind::kDense;
  float scale = 0;
  int32_t zero_point = 0;
  float constant_value = 0;
};

// s = f32((f64(hi) - f64(lo)) / (2^q - 1)), z = nearbyint(-f64(lo) / f64(s)), rejected beyond
// +-kMaxZeroPoint. REQUIRES: lo <= hi, both finite; 1 <= q <= 8.
SPLITRANS_HD RangeParams ParamsFromRange(float lo, float hi, int q) {
  RangeParams p;
  const double range = DSub(static_cast<double>(hi), static_cast<double>(lo));
  const double s = DDiv(range, static_cast<double>((1 << q) - 1));
  if (s > static_cast<double>(FLT_MAX)) {
    p.kind = ParamsKind::kRangeTooLarge;
    return p;
  }
  const float sf = DToF(s);
  if (hi == lo || !(sf > 0.f)) {
    p.kind = ParamsKind::kConstant;
    p.constant_value = lo == 0.f ? 0.f : lo;  // +0 for a zero, as ComputeQuantParams
    return p;
  }
  p.scale = sf;
  const double z = NearbyInt(DDiv(-static_cast<double>(lo), static_cast<double>(sf)));
  if (z > kMaxZeroPoint || z < -kMaxZeroPoint) {  // fabs(z) > kMaxZeroPoint; z is never NaN
    p.kind = ParamsKind::kOffsetTooLarge;
    return p;
  }
  p.zero_point = static_cast<int32_t>(z);
  return p;
}

// ---------------------------------------------------------------------------------------------
// Varints (LEB128) and stream parameters.

SPLITRANS_HD uint32_t VarintSize(uint64_t v) {
  uint32_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Writes v at p; returns the bytes written.
SPLITRANS_HD uint32_t PutVarint(uint8_t* p, uint64_t v) {
  uint32_t n = 0;
  while (v >= 0x80) {
    p[n++] = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  p[n++] = static_cast<uint8_t>(v);
  return n;
}

// rans_stream.cc ChooseLanesLog2: about 2048 symbols per lane, 1..32 lanes.
SPLITRANS_HD int DenseLanesLog2(uint64_t n) {
  uint64_t v = n / 2048;
  int l = FloorLog2U64(v < 1 ? 1 : v);
  return l < 0 ? 0 : (l > kMaxLanesLog2 ? kMaxLanesLog2 : l);
}

// rans_stream.cc ChooseProbBits: the candidate range [*lo, *hi]. REQUIRES: alphabet >= 2.
SPLITRANS_HD void ProbBitsRange(uint32_t n, uint32_t alphabet, int* lo, int* hi) {
  int l = FloorLog2U64(alphabet - 1) + 2;
  l = l > kMinProbBits ? l : kMinProbBits;
  int cap = alphabet <= 256 ? 12 : kMaxProbBits - 1;  // the CPU's SIMD decoder packs 12-bit slots
  int h = FloorLog2U64(n) + 2;
  h = h > l ? h : l;
  h = h < cap ? h : cap;
  if (l > h) {
    int v = l > kMinProbBits ? l : kMinProbBits;
    l = h = v < kMaxProbBits ? v : kMaxProbBits;
  }
  *lo = l;
  *hi = h;
}

// ---------------------------------------------------------------------------------------------
// Dense table construction (NormalizeFrequencies + ChooseProbBits of rans_stream.cc).

// Scratch of BuildDenseTable: shared memory on the GPU (about 25 KB).
struct TableScratch {
  uint32_t counts[kMaxDenseAlphabet];
  uint16_t freq[kMaxProbBitsCandidates][kMaxDenseAlphabet];  // per candidate prob_bits
  uint32_t work[kMaxDenseAlphabet];                          // remainders or frequency copies
  uint16_t rank[kMaxDenseAlphabet];
  double terms[kMaxProbBitsCandidates][kMaxDenseAlphabet];   // count * (P - log2 f)
  double bits[kMaxProbBitsCandidates];
  uint32_t table_bytes[kMaxProbBitsCandidates];
  uint32_t start[kMaxDenseAlphabet + 1];
  int best;
};

// Runs "threads" one after another (the host side of the executor contract).
struct HostExec {
  template <class F>
  void ForEach(uint32_t n, F&& f) {
    for (uint32_t i = 0; i < n; ++i) f(i);
  }
  template <class F>
  uint64_t Sum(uint32_t n, F&& f) {
    uint64_t s = 0;
    for (uint32_t i = 0; i < n; ++i) s += f(i);
    return s;
  }
  template <class F>
  uint32_t Max(uint32_t n, F&& f) {
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; ++i) {
      uint32_t v = f(i);
      m = v > m ? v : m;
    }
    return m;
  }
  template <class F>
  void Single(F&& f) {
    f();
  }
};

// Normalizes sc.counts[0, a) to sum 2^pb into sc.freq[k] exactly as NormalizeFrequencies does.
// REQUIRES: at least two counts > 0; total = their sum; a <= 256.
SPLITRANS_EXEC_CHECK_DISABLE
template <class Exec>
SPLITRANS_HD_TEMPLATE void NormalizeCandidate(Exec& ex, TableScratch& sc, int k, int pb, uint32_t a, uint64_t total) {
  const uint64_t target = uint64_t{1} << pb;
  uint16_t* f = sc.freq[k];
  ex.ForEach(a, [&](uint32_t s) {
    const uint64_t c = sc.counts[s];
    uint64_t v = c * target / total;
    f[s] = static_cast<uint16_t>(c == 0 ? 0 : (v < 1 ? 1 : v));
  });
  const uint64_t sum = ex.Sum(a, [&](uint32_t s) -> uint64_t { return f[s]; });
  if (sum < target) {
    // Largest remainder first, ties by symbol: rank in the stable descending order. The
    // shortfall is below the number of present symbols, so the CPU's cycling never wraps.
    const uint64_t missing = target - sum;
    ex.ForEach(a, [&](uint32_t s) {
      const uint64_t c = sc.counts[s];
      sc.work[s] = c ? static_cast<uint32_t>(c * target % total) : 0;
    });
    ex.ForEach(a, [&](uint32_t s) {
      if (sc.counts[s] == 0) return;
      const uint32_t key = sc.work[s];
      uint32_t r = 0;
      for (uint32_t t = 0; t < a; ++t) {
        if (sc.counts[t] && (sc.work[t] > key || (sc.work[t] == key && t < s))) ++r;
      }
      if (r < missing) f[s] = static_cast<uint16_t>(f[s] + 1);
    });
  } else if (sum > target) {
    // Passes over the symbols in stable descending frequency order, each taking one unit from
    // every frequency still above 1, until the excess is gone. After p full passes a symbol
    // with initial frequency g has lost min(p, g - 1); the last pass may be partial.
    uint64_t excess = sum - target;
    ex.ForEach(a, [&](uint32_t s) { sc.work[s] = f[s]; });
    ex.ForEach(a, [&](uint32_t s) {
      if (sc.counts[s] == 0) return;
      const uint32_t g = sc.work[s];
      uint32_t r = 0;
      for (uint32_t t = 0; t < a; ++t) {
        if (sc.counts[t] && (sc.work[t] > g || (sc.work[t] == g && t < s))) ++r;
      }
      sc.rank[s] = static_cast<uint16_t>(r);
    });
    uint32_t p = 0;
    for (;;) {
      const uint64_t eligible =
          ex.Sum(a, [&](uint32_t s) -> uint64_t { return sc.counts[s] && sc.work[s] - 1 > p ? 1 : 0; });
      if (eligible == 0 || excess < eligible) break;  // eligible == 0 cannot happen (sum of 1s <= 2^pb)
      excess -= eligible;
      ++p;
      if (excess == 0) break;
    }
    ex.ForEach(a, [&](uint32_t s) {
      if (sc.counts[s] == 0) return;
      const uint32_t g = sc.work[s];
      uint32_t v = g - (p < g - 1 ? p : g - 1);
      if (g - 1 > p && excess > 0) {
        uint32_t before = 0;  // eligible symbols ahead of s in the order
        for (uint32_t t = 0; t < a; ++t) {
          if (sc.counts[t] && sc.work[t] - 1 > p && sc.rank[t] < sc.rank[s]) ++before;
        }
        if (before < excess) --v;
      }
      f[s] = static_cast<uint16_t>(v);
    });
  }
}

// Chooses prob_bits like ChooseProbBits and leaves the frequencies in sc.freq[sc.best] and
// their cumulative starts in sc.start[0, a]. log2_table[f] = std::log2(double(f)) (host libm).
// REQUIRES: sc.counts[0, a) holds the histogram (at least two counts > 0), total = its sum.
// Returns the chosen prob_bits (identical on every thread).
SPLITRANS_EXEC_CHECK_DISABLE
template <class Exec>
SPLITRANS_HD_TEMPLATE int BuildDenseTable(Exec& ex, TableScratch& sc, uint32_t a, uint64_t total,
                                          const double* log2_table) {
  int lo, hi;
  ProbBitsRange(static_cast<uint32_t>(total), a, &lo, &hi);
  for (int pb = lo; pb <= hi; ++pb) {
    const int k = pb - lo;
    NormalizeCandidate(ex, sc, k, pb, a, total);
    const uint16_t* f = sc.freq[k];
    ex.ForEach(a, [&](uint32_t s) {
      const uint32_t c = sc.counts[s];
      sc.terms[k][s] =
          c ? DMul(static_cast<double>(c), DSub(static_cast<double>(pb), log2_table[f[s]])) : 0.0;
    });
    const uint64_t tb =
        VarintSize(a) + ex.Sum(a, [&](uint32_t s) -> uint64_t { return VarintSize(f[s]); });
    ex.Single([&] { sc.table_bytes[k] = static_cast<uint32_t>(tb); });
  }
  // Ideal bits per candidate: the CPU's sequential sum, one candidate per thread.
  const uint32_t candidates = static_cast<uint32_t>(hi - lo + 1);
  ex.ForEach(candidates, [&](uint32_t k) {
    double bits = 0;
    for (uint32_t s = 0; s < a; ++s) {
      if (sc.counts[s]) bits = DAdd(bits, sc.terms[k][s]);
    }
    sc.bits[k] = DAdd(bits, DMul(8.0, static_cast<double>(sc.table_bytes[k])));
  });
  ex.Single([&] {
    int best = 0;
    double best_bits = 0;
    for (uint32_t k = 0; k < candidates; ++k) {
      if (k == 0 || sc.bits[k] < best_bits) {
        best = static_cast<int>(k);
        best_bits = sc.bits[k];
      }
    }
    sc.best = best;
    uint32_t start = 0;
    for (uint32_t s = 0; s < a; ++s) {
      sc.start[s] = start;
      start += sc.freq[best][s];
    }
    sc.start[a] = start;
  });
  return lo + sc.best;
}

// The stream header of a dense rANS stream up to (not including) the block index:
// kind, n, prob_bits, lanes_log2, block_log2, alphabet, frequencies. Returns its length.
// REQUIRES: out holds kMaxStreamHeaderBytes.
SPLITRANS_HD uint32_t WriteRansStreamHeader(uint8_t* out, uint32_t n, int prob_bits, int lanes_log2,
                                            uint32_t alphabet, const uint16_t* freq) {
  uint32_t p = 0;
  out[p++] = static_cast<uint8_t>(StreamKind::kRans);
  p += PutVarint(out + p, n);
  out[p++] = static_cast<uint8_t>(prob_bits);
  out[p++] = static_cast<uint8_t>(lanes_log2);
  out[p++] = static_cast<uint8_t>(kDenseBlockLog2);
  p += PutVarint(out + p, alphabet);
  for (uint32_t s = 0; s < alphabet; ++s) p += PutVarint(out + p, freq[s]);
  return p;
}

// A constant stream (kind 1): n copies of symbol.
SPLITRANS_HD uint32_t WriteConstantStream(uint8_t* out, uint32_t n, uint32_t symbol) {
  uint32_t p = 0;
  out[p++] = static_cast<uint8_t>(StreamKind::kConstant);
  p += PutVarint(out + p, n);
  p += PutVarint(out + p, symbol);
  return p;
}

// Encoder table entry: the reciprocal step of rans.h plus the flush bound freq << (32 - P).
struct EncTableEntry {
  uint32_t rcp;
  uint32_t x_max;
  uint32_t freq_start;  // freq | start << 16
};

SPLITRANS_HD EncTableEntry MakeEncTableEntry(uint32_t start, uint32_t freq, int prob_bits) {
  EncTableEntry e;
  e.rcp = RansReciprocal(freq);
  e.x_max = freq << (32 - prob_bits);
  e.freq_start = freq | start << 16;
  return e;
}

// One encoder step of a lane (rans.h), flush decided by the caller. Returns the new state.
SPLITRANS_HD uint32_t EncStep(uint32_t x, const EncTableEntry& e, int prob_bits) {
  RansEncSymbol s;
  s.rcp = e.rcp;
  s.freq = static_cast<uint16_t>(e.freq_start & 0xffff);
  s.start = static_cast<uint16_t>(e.freq_start >> 16);
  return RansEncStep(x, s, prob_bits);
}

// ---------------------------------------------------------------------------------------------
// CRC32C pieces (codec/crc32c.h computes the whole thing on the host).
//
// With f(c, D) the reflected CRC register after feeding D from register c (no final xor),
// CRC32C(D) = f(~0, D) ^ ~0, f is linear in c and in D, and feeding |B| more bytes multiplies
// the register by x^(8|B|) mod P. Hence for D split into pieces D_i that end e_i bytes before
// the end of D:  f(~0, D) = shift(~0, |D|) ^ XOR_i shift(f(0, D_i), e_i).  Kernels compute the
// pieces independently, shift them and xor them together (order free), then finalize.

constexpr uint32_t kCrc32cPoly = 0x82F63B78u;

// Tables shared by the CRC code: slicing-by-4 lookup (lut[k * 256 + byte]) and x^(2^k) mod P.
struct CrcTables {
  uint32_t lut[4 * 256];
  uint32_t x2n[64];
};

// a * b mod P in the reflected representation (bit 31 = x^0), as zlib's multmodp.
SPLITRANS_HD uint32_t CrcMulMod(uint32_t a, uint32_t b) {
  uint32_t p = 0;
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int i = 0; i < 32; ++i) {
    if (a & (0x80000000u >> i)) p ^= b;
    b = (b >> 1) ^ ((b & 1u) ? kCrc32cPoly : 0u);
  }
  return p;
}

SPLITRANS_HD void FillCrcTables(CrcTables* t) {
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1u) ? kCrc32cPoly : 0u);
    t->lut[b] = c;
  }
  for (uint32_t b = 0; b < 256; ++b) {
    for (int k = 1; k < 4; ++k) {
      const uint32_t prev = t->lut[(k - 1) * 256 + b];
      t->lut[k * 256 + b] = (prev >> 8) ^ t->lut[prev & 0xff];
    }
  }
  uint32_t p = 1u << 30;  // x^1
  for (int k = 0; k < 64; ++k) {
    t->x2n[k] = p;
    p = CrcMulMod(p, p);
  }
}

// c * x^(8 * nbytes) mod P: the register after nbytes more zero bytes.
SPLITRANS_HD uint32_t CrcShift(uint32_t c, uint64_t nbytes, const uint32_t* x2n) {
  for (int k = 3; nbytes != 0; nbytes >>= 1, ++k) {
    if (nbytes & 1) c = CrcMulMod(x2n[k], c);
  }
  return c;
}

// f(c, p[0, n)) byte by byte.
SPLITRANS_HD uint32_t CrcRawBytes(uint32_t c, const uint8_t* p, size_t n, const uint32_t* lut) {
  for (size_t i = 0; i < n; ++i) c = lut[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return c;
}

// f(c, w) for 4 bytes packed little-endian into w (slicing-by-4).
SPLITRANS_HD uint32_t CrcRawWord(uint32_t c, uint32_t w, const uint32_t* lut) {
  c ^= w;
  return lut[3 * 256 + (c & 0xff)] ^ lut[2 * 256 + ((c >> 8) & 0xff)] ^ lut[256 + ((c >> 16) & 0xff)] ^
         lut[c >> 24];
}

// CRC32C of D from the xor of its shifted pieces (see above) and its length.
SPLITRANS_HD uint32_t CrcFinish(uint32_t xor_of_pieces, uint64_t total_bytes, const uint32_t* x2n) {
  return CrcShift(0xFFFFFFFFu, total_bytes, x2n) ^ xor_of_pieces ^ 0xFFFFFFFFu;
}

// The piece of thread t of `threads` when [begin, end) is cut into chunks of 2^chunk_log2
// bytes aligned to `end` (only the first nonempty chunk can be short): [*b, *e), maybe empty.
SPLITRANS_HD void CrcChunk(uint64_t begin, uint64_t end, uint32_t t, uint32_t threads, int chunk_log2, uint64_t* b,
                           uint64_t* e) {
  const uint64_t from_end_hi = static_cast<uint64_t>(threads - t) << chunk_log2;      // distance of the chunk start
  const uint64_t from_end_lo = static_cast<uint64_t>(threads - 1 - t) << chunk_log2;  // distance of its end
  const uint64_t len = end - begin;
  const uint64_t lo = from_end_hi >= len ? begin : end - from_end_hi;
  const uint64_t hi = from_end_lo >= len ? begin : end - from_end_lo;
  *b = lo;
  *e = hi;
}

// Smallest chunk_log2 >= 4 with threads * 2^chunk_log2 >= len.
SPLITRANS_HD int CrcChunkLog2(uint64_t len, uint32_t threads) {
  int c = 4;
  while ((static_cast<uint64_t>(threads) << c) < len) ++c;
  return c;
}

// ---------------------------------------------------------------------------------------------
// Batch bookkeeping shared by the host planner and the kernels.

// Index of the item whose range [prefix[i], prefix[i+1]) holds idx (upper bound - 1).
// REQUIRES: prefix[0] <= idx < prefix[count], prefix nondecreasing.
SPLITRANS_HD uint32_t FindItem(const uint32_t* prefix, uint32_t count, uint32_t idx) {
  uint32_t lo = 0, hi = count;  // answer in [lo, hi)
  while (hi - lo > 1) {
    const uint32_t mid = (lo + hi) / 2;
    if (prefix[mid] <= idx) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}


// The fixed header and shape are written by WriteHeaderAndShape (codec/wire.h), shared with
// the CPU encoder.

// ---------------------------------------------------------------------------------------------
// Batch descriptors: the host planner (gpu_plan.cc) fills them, the kernels read them.

constexpr uint32_t kTileElems = 4096;       // elements per range / quantize / fill CTA
constexpr uint32_t kTileThreads = 256;      // 16 elements per thread, as 4 groups of 4
constexpr uint32_t kEncWarpsPerCta = 4;     // rANS encode: one warp per block
constexpr uint32_t kDecWarpsPerCta = 4;     // rANS decode: one warp per block, CTA = one item
constexpr uint32_t kAsmThreads = 256;       // assemble (+CRC) CTA, one per rANS block
constexpr uint32_t kProbeChunk = 1u << 16;  // device-input CRC: bytes per CTA
constexpr uint32_t kProbeThreads = 256;
constexpr uint32_t kProbePrefix = 16384;    // device-input: bytes fetched for the host parser

// What the kernels return per item (mirrors the public GpuItemResult).
struct ItemResult {
  uint32_t code;    // codec::ErrorCode
  uint32_t detail;  // kDetail* or, when decoding, 1 + the first failing rANS block
  uint64_t size;    // encoded bytes
};

// One tensor to encode.
struct EncItem {
  const void* in;          // device: t elements of dtype
  uint8_t* out;            // device: >= MaxDenseEncodedSize(t, rank) bytes
  uint64_t sym_offset;     // its symbols in the symbol area (bytes, 16-aligned)
  uint64_t word_offset;    // its word scratch in the word area (u16 units, 8-aligned)
  uint32_t t;              // elements
  uint32_t block_words;    // word scratch per rANS block: min(t, 2^16)
  uint32_t num_blocks;     // ceil(t / 2^16)
  uint32_t shape[kMaxRank];
  uint8_t rank, dtype, q, vec_ok;  // vec_ok: `in` is 16-byte aligned (vector loads)
};

// Accumulators of one item (zeroed before every batch by one memset).
struct EncAccum {
  uint32_t max_key;      // FloatKey of the maximum
  uint32_t neg_min_key;  // ~FloatKey of the minimum
  uint32_t bad;          // a non-finite value was seen
  uint32_t crc_xor;      // xor of the shifted CRC pieces
  uint32_t tickets;      // assemble CTAs done
  uint32_t pad[3];
  uint32_t hist[kMaxDenseAlphabet];
};

enum : uint32_t { kKindRans = 0, kKindConstantStream = 1, kKindConstantLayout = 2, kKindError = 3 };

// What the table kernel decided for one item.
struct EncState {
  uint32_t code, detail, kind;
  float scale;
  int32_t zero_point;
  float constant_value;   // constant layout
  uint32_t symbol;        // constant stream
  int32_t prob_bits, lanes_log2;
  uint32_t alphabet;
  uint32_t stream_header_bytes;
  uint32_t pad;
  uint8_t stream_header[(kMaxStreamHeaderBytes + 15) / 16 * 16];
  EncTableEntry table[kMaxDenseAlphabet];
};

// Final states and word count of one rANS block.
struct EncBlockOut {
  uint32_t states[1 << kMaxLanesLog2];
  uint32_t word_count;
  uint32_t pad[3];
};

struct EncBatch {
  const EncItem* items;
  uint32_t count;
  const uint32_t* tile_prefix;   // count + 1: range/quantize CTAs per item
  const uint32_t* block_prefix;  // count + 1: rANS blocks per item
  const uint32_t* asm_prefix;    // count + 1: assemble CTAs per item (max(1, blocks))
  EncAccum* accum;
  EncState* state;
  EncBlockOut* blocks;
  uint8_t* symbols;
  uint16_t* words;
  ItemResult* results;
  const double* log2_table;  // kLog2TableSize entries
  const CrcTables* crc;
  int q;
};

// Decoder tables up to this many prob_bits pack slot -> sym << 24 | freq << 12 | bias (one
// lookup per symbol); larger ones use slot -> sym and sym -> freq | start << 16.
constexpr int kPackedMaxProbBits = 12;

// One dense rANS stream to decode.
struct DecItem {
  const uint8_t* payload;  // device: the first block's payload (blocks follow back to back)
  float* out;              // device: n floats
  const uint8_t* table;    // device: BuildDecodeTable (gpu_plan.h), 16-byte aligned
  uint32_t n;
  uint32_t alphabet;
  float scale;
  int32_t zero_point;
  uint32_t block_begin;    // first entry in DecBatch::blocks
  uint32_t num_blocks;
  uint32_t table_fs_offset;  // unpacked tables: byte offset of fs within table (16-aligned)
  uint8_t prob_bits, lanes_log2, block_log2, pad;
};

struct DecBlock {
  uint64_t offset;      // of its payload from DecItem::payload
  uint32_t word_count;
  uint32_t pad;
};

struct DecBatch {
  const DecItem* items;
  uint32_t count;
  const uint32_t* cta_prefix;  // count + 1: ceil(blocks / kDecWarpsPerCta) per item
  const DecBlock* blocks;
  ItemResult* results;         // zeroed: code, detail = 1 + first failing block
};

// Items whose every element is one value (constant layout, constant stream).
struct FillItem {
  float* out;  // device: n floats
  uint64_t n;
  float value;
  uint32_t pad;
};

struct FillBatch {
  const FillItem* items;
  uint32_t count;
  const uint32_t* tile_prefix;
};

// Device-resident bitstreams: CRC over [0, 24 + body_size) and the bytes the host parses.
struct ProbeItem {
  const uint8_t* data;     // device: the bitstream
  uint64_t size;
  uint64_t prefix_offset;  // where its first prefix_bytes bytes go in the staging area
  uint32_t prefix_bytes;   // min(size, kProbePrefix)
  uint32_t pad;
};

struct ProbeResult {
  uint32_t crc_xor;  // xor of the shifted pieces (finish with CrcFinish)
  uint32_t stored;   // the stored checksum
  uint32_t pad[2];
};

struct ProbeBatch {
  const ProbeItem* items;
  uint32_t count;
  const uint32_t* chunk_prefix;  // count + 1: ceil(size / kProbeChunk) per item
  uint8_t* staging;              // device
  ProbeResult* results;          // zeroed
  const CrcTables* crc;
};

}  // namespace splitrans::codec::gpu

// AIQ quantization kernels: scalar reference plus AVX2 / AVX-512 versions, chosen per call by
// ActiveSimdLevel() (codec/cpu_features.h).
// All variants perform the same IEEE float operations (divide, add, round-to-nearest-even,
// clamp), so their outputs are identical.
#include "codec/quantize.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "codec/cpu_features.h"
#include "codec/wire.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace splitrans::codec {
namespace {

struct Range {
  float lo, hi;
  bool finite;
};

Range RangeScalar(const float* x, size_t n) {
  Range r{INFINITY, -INFINITY, true};
  for (size_t i = 0; i < n; ++i) {
    float v = x[i];
    if (!std::isfinite(v)) {
      r.finite = false;
      return r;
    }
    r.lo = v < r.lo ? v : r.lo;
    r.hi = v > r.hi ? v : r.hi;
  }
  return r;
}

void QuantizeScalar(const float* x, size_t n, float s, float zf, float maxq, uint8_t* out) {
  for (size_t i = 0; i < n; ++i) out[i] = QuantizeOne(x[i], s, zf, maxq);
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) Range RangeAvx2(const float* x, size_t n) {
  __m256 lo = _mm256_set1_ps(INFINITY), hi = _mm256_set1_ps(-INFINITY);
  const __m256 inf = _mm256_set1_ps(INFINITY);
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 bad = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(_mm256_and_ps(v, absmask), inf, _CMP_NLT_UQ));
    lo = _mm256_min_ps(lo, v);
    hi = _mm256_max_ps(hi, v);
  }
  Range r{INFINITY, -INFINITY, _mm256_movemask_ps(bad) == 0};
  if (!r.finite) return r;
  alignas(32) float l[8], h[8];
  _mm256_store_ps(l, lo);
  _mm256_store_ps(h, hi);
  for (int k = 0; k < 8; ++k) {
    r.lo = l[k] < r.lo ? l[k] : r.lo;
    r.hi = h[k] > r.hi ? h[k] : r.hi;
  }
  Range t = RangeScalar(x + i, n - i);
  r.finite = t.finite;
  r.lo = t.lo < r.lo ? t.lo : r.lo;
  r.hi = t.hi > r.hi ? t.hi : r.hi;
  return r;
}

__attribute__((target("avx2"))) void QuantizeAvx2(const float* x, size_t n, float s, float zf, float maxq,
                                                  uint8_t* out) {
  const __m256 vs = _mm256_set1_ps(s), vz = _mm256_set1_ps(zf), vmax = _mm256_set1_ps(maxq);
  const __m256 zero = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      __m256 v = _mm256_add_ps(_mm256_div_ps(_mm256_loadu_ps(x + i + 8 * k), vs), vz);
      v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      v = _mm256_min_ps(_mm256_max_ps(v, zero), vmax);
      q[k] = _mm256_cvttps_epi32(v);
    }
    __m256i a = _mm256_packus_epi32(q[0], q[1]);  // lanes interleaved by 128-bit halves
    __m256i b = _mm256_packus_epi32(q[2], q[3]);
    __m256i c = _mm256_packus_epi16(a, b);
    c = _mm256_permutevar8x32_epi32(c, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), c);
  }
  QuantizeScalar(x + i, n - i, s, zf, maxq, out + i);
}

__attribute__((target("avx512f,avx512bw"))) void QuantizeAvx512(const float* x, size_t n, float s, float zf,
                                                                 float maxq, uint8_t* out) {
  const __m512 vs = _mm512_set1_ps(s), vz = _mm512_set1_ps(zf), vmax = _mm512_set1_ps(maxq);
  const __m512 zero = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 v = _mm512_add_ps(_mm512_div_ps(_mm512_loadu_ps(x + i), vs), vz);
    v = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm512_min_ps(_mm512_max_ps(v, zero), vmax);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(v)));
  }
  QuantizeScalar(x + i, n - i, s, zf, maxq, out + i);
}

__attribute__((target("avx2"))) void DequantizeAvx2(const uint8_t* q, size_t n, const float* lut, float* out) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + i));
    __m256i idx = _mm256_cvtepu8_epi32(b);
    _mm256_storeu_ps(out + i, _mm256_i32gather_ps(lut, idx, 4));
  }
  for (; i < n; ++i) out[i] = lut[q[i]];
}

__attribute__((target("avx512f"))) void DequantizeAvx512Small(const uint8_t* q, size_t n, const float* lut,
                                                             float* out) {
  // 16-entry table in one register: no gathers (Q <= 4).
  const __m512 t = _mm512_loadu_ps(lut);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + i)));
    _mm512_storeu_ps(out + i, _mm512_permutexvar_ps(idx, t));
  }
  for (; i < n; ++i) out[i] = lut[q[i]];
}

// Counts of the values 0..15 in q[0, n) by compare + popcount, 64 bytes at a time.
__attribute__((target("avx512f,avx512bw,popcnt"))) size_t Histogram16Avx512(const uint8_t* q, size_t n,
                                                                             uint32_t* counts) {
  uint64_t c[16] = {};
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i v = _mm512_loadu_si512(q + i);
    for (int s = 0; s < 16; ++s) c[s] += __builtin_popcountll(_mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(s)));
  }
  for (int s = 0; s < 16; ++s) counts[s] += static_cast<uint32_t>(c[s]);
  return i;
}

bool UseAvx2() { return ActiveSimdLevel() >= SimdLevel::kAvx2; }
bool UseAvx512() { return ActiveSimdLevel() >= SimdLevel::kAvx512; }
#endif

}  // namespace

namespace {

// The tensor's range; INVALID_ARGUMENT naming the first non-finite element.
Status ScanRange(const float* x, size_t n, Range* out) {
#if defined(__x86_64__)
  Range r = UseAvx2() ? RangeAvx2(x, n) : RangeScalar(x, n);
#else
  Range r = RangeScalar(x, n);
#endif
  if (!r.finite) {
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(x[i])) {
        return InvalidArgument("tensor element " + std::to_string(i) + " is " + (std::isnan(x[i]) ? "NaN" : "infinite") +
                               "; only finite values can be quantized");
      }
    }
  }
  *out = r;
  return Status::Ok();
}

// AIQ's grid over [lo, hi] (lo <= hi, finite).
Status ParamsForRange(float lo, float hi, int q, QuantParams* p) {
  const double range = static_cast<double>(hi) - static_cast<double>(lo);
  const double s = range / static_cast<double>((1 << q) - 1);
  if (s > FLT_MAX) return InvalidArgument("value range " + std::to_string(range) + " too large for a float32 scale");
  const float sf = static_cast<float>(s);
  if (hi == lo || !(sf > 0.f)) {
    p->constant = true;
    p->constant_value = lo == 0.f ? 0.f : lo;  // a zero is written as +0 (FORMAT.md, constant layout)
    return Status::Ok();
  }
  p->scale = sf;
  const double z = std::nearbyint(-static_cast<double>(lo) / static_cast<double>(sf));
  if (std::fabs(z) > kMaxZeroPoint) {
    return InvalidArgument("the tensor's offset is too large for its range (zero point " + std::to_string(z) +
                           " beyond +-2^24, values in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                           "]): float32 cannot represent the quantization grid; subtract the mean or lower Q");
  }
  p->zero_point = static_cast<int32_t>(z);
  return Status::Ok();
}

// The clipped range search (ComputeClippedQuantParams): a histogram of the tensor (a strided
// sample of at most kClipSample elements) in kClipBins bins, each represented by its count and
// mean; exact zeros apart, since every candidate range keeps 0 inside it and AIQ reconstructs 0
// exactly there.
constexpr int kClipBins = 1024;
constexpr size_t kClipSample = 1 << 16;
constexpr int kClipSteps = 40;        // candidate ends: the full extent times 0.93^k, k < kClipSteps
constexpr double kClipRatio = 0.93;
constexpr int kClipRounds = 2;        // then coordinate descent: hi, lo, hi, lo

struct ClipHistogram {
  double count[kClipBins];
  double mean[kClipBins];
  int used[kClipBins];  // indices of the non-empty bins
  int n_used = 0;
};

// Squared error of the histogram's points under AIQ over [lo, hi], with the decoder's own
// arithmetic (QuantizeOne, DequantizeOne); +inf where the range has no valid grid.
double ClipError(const ClipHistogram& h, float lo, float hi, int q) {
  QuantParams p;
  if (!ParamsForRange(lo, hi, q, &p).ok() || p.constant) return INFINITY;
  const float zf = static_cast<float>(p.zero_point);
  const float maxq = static_cast<float>((1 << q) - 1);
  double err = 0;
  for (int i = 0; i < h.n_used; ++i) {
    const int b = h.used[i];
    const float m = static_cast<float>(h.mean[b]);
    const double d = static_cast<double>(m) - DequantizeOne(QuantizeOne(m, p.scale, zf, maxq), p.zero_point, p.scale);
    err += h.count[b] * d * d;
  }
  return err;
}

Status CheckQ(int q) {
  if (q >= kMinQ && q <= kMaxQ) return Status::Ok();
  return InvalidArgument("q must be in " + std::to_string(kMinQ) + ".." + std::to_string(kMaxQ) + ", got " +
                         std::to_string(q));
}

}  // namespace

Status ComputeQuantParams(const float* x, size_t n, int q, QuantParams* p) {
  *p = QuantParams();
  SPLITRANS_RETURN_IF_ERROR(CheckQ(q));
  if (n == 0) {
    p->constant = true;
    return Status::Ok();
  }
  Range r;
  SPLITRANS_RETURN_IF_ERROR(ScanRange(x, n, &r));
  return ParamsForRange(r.lo, r.hi, q, p);
}

Status ComputeClippedQuantParams(const float* x, size_t n, int q, QuantParams* p, float* lo_out, float* hi_out) {
  *p = QuantParams();
  SPLITRANS_RETURN_IF_ERROR(CheckQ(q));
  if (n == 0) {
    p->constant = true;
    return Status::Ok();
  }
  Range r;
  SPLITRANS_RETURN_IF_ERROR(ScanRange(x, n, &r));
  SPLITRANS_RETURN_IF_ERROR(ParamsForRange(r.lo, r.hi, q, p));  // the full range must be valid too
  float best_lo = r.lo, best_hi = r.hi;
  if (!p->constant) {
    auto h = std::make_unique<ClipHistogram>();
    std::fill(h->count, h->count + kClipBins, 0.0);
    std::fill(h->mean, h->mean + kClipBins, 0.0);
    const size_t step = std::max<size_t>(1, n / kClipSample);
    const double lo = r.lo, width = (static_cast<double>(r.hi) - lo) / kClipBins;
    for (size_t i = 0; i < n; i += step) {
      const float v = x[i];
      if (v == 0.f) continue;
      const int b = std::min(kClipBins - 1, static_cast<int>((static_cast<double>(v) - lo) / width));
      h->count[b] += 1;
      h->mean[b] += v;  // a sum until below
    }
    for (int b = 0; b < kClipBins; ++b) {
      if (h->count[b] == 0) continue;
      h->mean[b] /= h->count[b];
      h->used[h->n_used++] = b;
    }
    // Candidate ends move toward 0 when the range spans it (0 stays exact), else toward the
    // other end; an end that is already 0 stays.
    const bool spans = r.lo <= 0.f && r.hi >= 0.f;
    // The end `end` moved k steps toward the anchor (0, or the other end `other`).
    auto toward = [&](float end, int k, float other) {
      const double anchor = spans ? 0.0 : other;
      return static_cast<float>(anchor + (static_cast<double>(end) - anchor) * std::pow(kClipRatio, k));
    };
    auto candidate_hi = [&](int k, float other) { return toward(r.hi, k, other); };
    auto candidate_lo = [&](int k, float other) { return toward(r.lo, k, other); };
    double best = ClipError(*h, best_lo, best_hi, q);
    // Both ends together first (outliers on both sides: moving one end alone rarely pays), then
    // each end alone from there.
    for (int k = 1; k < kClipSteps; ++k) {
      const float lo_k = candidate_lo(k, r.hi), hi_k = candidate_hi(k, r.lo);
      const float c_lo = (r.lo < 0.f || !spans) ? lo_k : r.lo, c_hi = (r.hi > 0.f || !spans) ? hi_k : r.hi;
      if (!(c_lo < c_hi)) break;
      const double e = ClipError(*h, c_lo, c_hi, q);
      if (e < best) best = e, best_lo = c_lo, best_hi = c_hi;
    }
    for (int round = 0; round < kClipRounds; ++round) {
      if (r.hi > 0.f || !spans) {
        for (int k = 1; k < kClipSteps; ++k) {
          const float c = candidate_hi(k, best_lo);
          if (!(c > best_lo)) break;
          const double e = ClipError(*h, best_lo, c, q);
          if (e < best) best = e, best_hi = c;
        }
      }
      if (r.lo < 0.f || !spans) {
        for (int k = 1; k < kClipSteps; ++k) {
          const float c = candidate_lo(k, best_hi);
          if (!(c < best_hi)) break;
          const double e = ClipError(*h, c, best_hi, q);
          if (e < best) best = e, best_lo = c;
        }
      }
    }
    SPLITRANS_RETURN_IF_ERROR(ParamsForRange(best_lo, best_hi, q, p));
  }
  if (lo_out) *lo_out = best_lo;
  if (hi_out) *hi_out = best_hi;
  return Status::Ok();
}

void Quantize(const float* x, size_t n, const QuantParams& p, int q, uint8_t* out) {
  const float zf = static_cast<float>(p.zero_point);
  const float maxq = static_cast<float>((1 << q) - 1);
#if defined(__x86_64__)
  const SimdLevel level = ActiveSimdLevel();
  if (level >= SimdLevel::kAvx512) return QuantizeAvx512(x, n, p.scale, zf, maxq, out);
  if (level >= SimdLevel::kAvx2) return QuantizeAvx2(x, n, p.scale, zf, maxq, out);
#endif
  QuantizeScalar(x, n, p.scale, zf, maxq, out);
}

void FillDequantTable(const QuantParams& p, float* lut) {
  for (uint32_t v = 0; v < 256; ++v) lut[v] = DequantizeOne(v, p.zero_point, p.scale);
}

void DequantizeWithTable(const uint8_t* q, size_t n, const float* lut, int q_bits, float* out) {
#if defined(__x86_64__)
  const SimdLevel level = ActiveSimdLevel();
  if (level >= SimdLevel::kAvx512 && q_bits <= 4) return DequantizeAvx512Small(q, n, lut, out);
  if (level >= SimdLevel::kAvx2) return DequantizeAvx2(q, n, lut, out);
#endif
  for (size_t i = 0; i < n; ++i) out[i] = lut[q[i]];
}

void Dequantize(const uint8_t* q, size_t n, const QuantParams& p, int q_bits, float* out) {
  float lut[256];
  FillDequantTable(p, lut);
  DequantizeWithTable(q, n, lut, q_bits, out);
}

void SymbolSink::Put(uint64_t offset, const uint8_t* s, size_t n) const {
  if (values) {
    DequantizeWithTable(s, n, lut, q_bits, values + offset);
  } else if (n) {
    std::memcpy(symbols + offset, s, n);
  }
}

uint8_t* SymbolSink::Stage(uint64_t offset, size_t n) const {
  return values ? reinterpret_cast<uint8_t*>(values + offset) + 3 * n : symbols + offset;
}

void SymbolSink::Commit(uint64_t offset, size_t n) const {
  if (!values) return;
  // Front to back through a small copy: chunk [i, i + c) writes the floats' bytes [4i, 4i + 4c),
  // below the staged bytes of the next chunk at 3n + i + c (as i + c <= n).
  constexpr size_t kChunk = 4096;
  uint8_t copy[kChunk];
  const uint8_t* staged = reinterpret_cast<const uint8_t*>(values + offset) + 3 * n;
  for (size_t i = 0; i < n; i += kChunk) {
    const size_t c = std::min(kChunk, n - i);
    std::memcpy(copy, staged + i, c);
    DequantizeWithTable(copy, c, lut, q_bits, values + offset + i);
  }
}

void SymbolSink::Fill(uint64_t offset, uint32_t s, size_t n) const {
  if (values) {
    std::fill(values + offset, values + offset + n, lut[s & 0xff]);
  } else {
    std::memset(symbols + offset, static_cast<int>(s), n);
  }
}

void Histogram256(const uint8_t* q, size_t n, uint32_t* counts, int q_bits) {
#if defined(__x86_64__)
  if (q_bits <= 4 && UseAvx512()) {
    std::memset(counts, 0, 256 * sizeof(uint32_t));
    const size_t done = Histogram16Avx512(q, n, counts);
    for (size_t i = done; i < n; ++i) counts[q[i]]++;
    return;
  }
#endif
  uint32_t h[4][256];
  std::memset(h, 0, sizeof(h));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, q + i, 8);
    h[0][w & 0xff]++;
    h[1][(w >> 8) & 0xff]++;
    h[2][(w >> 16) & 0xff]++;
    h[3][(w >> 24) & 0xff]++;
    h[0][(w >> 32) & 0xff]++;
    h[1][(w >> 40) & 0xff]++;
    h[2][(w >> 48) & 0xff]++;
    h[3][w >> 56]++;
  }
  for (; i < n; ++i) h[0][q[i]]++;
  for (int s = 0; s < 256; ++s) counts[s] = h[0][s] + h[1][s] + h[2][s] + h[3][s];
}

}  // namespace splitrans::codec

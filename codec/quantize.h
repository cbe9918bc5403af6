// Asymmetric integer quantization (AIQ) exactly as the paper defines it, with SIMD kernels
// (AVX-512, AVX2, scalar) chosen per call by ActiveSimdLevel() that produce identical results.
#pragma once

#include <cstddef>
#include <cstdint>

#include "codec/rans.h"
#include "codec/status.h"

namespace splitrans::codec {

// |z| above 2^24 means the grid is finer than float32 resolution at the tensor's offset: such
// tensors are rejected (INVALID_ARGUMENT) rather than quantized into garbage.
constexpr double kMaxZeroPoint = 16777216.0;

struct QuantParams {
  bool constant = false;    // all values equal (or the range underflows): no symbols coded
  float constant_value = 0;
  float scale = 0;          // s = (xmax - xmin) / (2^Q - 1), rounded to float
  int32_t zero_point = 0;   // z = round(-xmin / s), ties to even
};

// Scans x[0, n) (host) for its range and derives the parameters for q bits.
// Errors: INVALID_ARGUMENT on NaN/Inf or a range too large for float32.
Status ComputeQuantParams(const float* x, size_t n, int q, QuantParams* params);

// Outlier-aware AIQ (EncodeOptions::quantizer = kClip): AIQ's grid over a range [lo, hi]
// inside [min, max], chosen to minimise the squared reconstruction error (of a histogram of
// x, sampled on large tensors); values outside it are clamped to its ends by Quantize. The
// parameters are AIQ's (the decoder cannot tell). When the range spans 0 it keeps 0 inside, so
// exact zeros stay exact. *lo_out, *hi_out (nullable) get the range chosen. Same errors as
// ComputeQuantParams.
Status ComputeClippedQuantParams(const float* x, size_t n, int q, QuantParams* params, float* lo_out = nullptr,
                                 float* hi_out = nullptr);

// q[i] = clamp(round(x[i] / s + z), 0, 2^Q - 1) with round-half-even (host pointers).
void Quantize(const float* x, size_t n, const QuantParams& params, int q, uint8_t* out);

// out[i] = (q[i] - z) * s (host pointers). REQUIRES: q[i] < 2^q_bits.
void Dequantize(const uint8_t* q, size_t n, const QuantParams& params, int q_bits, float* out);

// lut[v] = DequantizeOne(v, z, s) for v = 0..255 (lut: host, 256 entries).
void FillDequantTable(const QuantParams& params, float* lut);
// out[i] = lut[q[i]]: Dequantize with a table filled once (decoders call it per chunk or row).
// REQUIRES: q[i] < 2^q_bits; q and out do not overlap.
void DequantizeWithTable(const uint8_t* q, size_t n, const float* lut, int q_bits, float* out);

// Where a layout decoder writes the tensor's quantized values, by element index: dequantized
// into floats (Decode, DecodeInto) or kept as symbols (Inspect). Exactly one of values and
// symbols is set; both hold T entries (host).
struct SymbolSink {
  float* values = nullptr;
  uint8_t* symbols = nullptr;
  const float* lut = nullptr;  // with values: FillDequantTable's 256 entries
  int q_bits = 8;
  // Elements [offset, offset + n) get the symbols s[0, n). REQUIRES: s[i] < 2^q_bits.
  void Put(uint64_t offset, const uint8_t* s, size_t n) const;
  // Elements [offset, offset + n) all get symbol s.
  void Fill(uint64_t offset, uint32_t s, size_t n) const;
  // Room for the symbols of elements [offset, offset + n) inside the output itself (with values:
  // the last quarter of their floats), readable and writable until Commit(offset, n) turns them
  // into the elements' values; ranges staged at once must not overlap. Lets a decoder keep rows
  // it still reads from without scratch of their size.
  uint8_t* Stage(uint64_t offset, size_t n) const;
  void Commit(uint64_t offset, size_t n) const;
};

// The per-element quantizer shared with the CUDA kernels.
SPLITRANS_HD uint8_t QuantizeOne(float x, float scale, float zero_point_f, float max_q) {
#if defined(__CUDA_ARCH__)
  float v = __fadd_rn(__fdiv_rn(x, scale), zero_point_f);
  v = rintf(v);
#else
  float v = x / scale + zero_point_f;
  v = __builtin_nearbyintf(v);
#endif
  v = v < 0.f ? 0.f : v;
  v = v > max_q ? max_q : v;
  return static_cast<uint8_t>(v);
}

SPLITRANS_HD float DequantizeOne(uint32_t q, int32_t zero_point, float scale) {
  // q - z in 64 bits: any i32 zero point from a header is valid, and q - z may exceed i32.
  // Clamped to the finite range: (q - z) * s can round past FLT_MAX for ranges near it.
  const float v = static_cast<float>(static_cast<int64_t>(q) - zero_point) * scale;
  return v > 3.402823466e38f ? 3.402823466e38f : (v < -3.402823466e38f ? -3.402823466e38f : v);
}

// Histogram of q[0, n) into counts[0, 256) (zeroed first). REQUIRES: q[i] < 2^q_bits.
void Histogram256(const uint8_t* q, size_t n, uint32_t* counts, int q_bits = 8);

}  // namespace splitrans::codec

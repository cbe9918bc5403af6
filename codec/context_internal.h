// Internals of the context layout shared by its two models' files: the token alphabet, the
// predictors and their contexts, the map geometry and parameters (FORMAT.md "Context layout").
// context_model.cc holds the semi-static model and the layout's entry points, context_adaptive.cc
// the adaptive binary model. Not part of the codec's API.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "codec/byte_io.h"
#include "codec/context_model.h"
#include "codec/status.h"

namespace splitrans::codec::context_internal {

constexpr int kPadLeft = 2, kPadRight = 1, kPadTop = 2;
constexpr uint64_t kSegmentTargetElements = uint64_t{1} << 18;
constexpr int kMaxCtxProbBits = 12;
constexpr int kLanesLog2 = 2;
constexpr int kDirectTokens = 16;  // symbols below this are their own token
constexpr int kMaxTokens = 26;     // enough for symbols up to 510
constexpr int kNumPredictors = 2;
constexpr uint64_t kAdaptiveMaxElements = uint64_t{1} << 16;
// Predictor choice on a sample (every kSampleStep-th map) for tensors this large.
constexpr uint64_t kSampleMinElements = uint64_t{1} << 15;
constexpr uint64_t kSampleStep = 4;
enum ModelKind : uint8_t { kSemiStatic = 0, kAdaptive = 1 };

inline int BitLen(uint32_t v) { return v ? 32 - __builtin_clz(v) : 0; }

// Symbol -> (token, raw bits). Symbols < 16 are tokens; larger ones keep their two leading
// bits in the token and send the rest raw.
inline void Tokenize(uint32_t s, uint32_t* token, uint32_t* raw) {
  if (s < kDirectTokens) {
    *token = s;
    *raw = 0;
    return;
  }
  const int n = BitLen(s);  // >= 5
  *token = kDirectTokens + 2 * (n - 5) + ((s >> (n - 2)) & 1);
  *raw = s & ((1u << (n - 2)) - 1);
}

inline int RawBitsOfToken(uint32_t token) { return token < kDirectTokens ? 0 : 3 + (token - kDirectTokens) / 2; }
inline uint32_t TokenBase(uint32_t token) {
  if (token < kDirectTokens) return token;
  const int n = 5 + (token - kDirectTokens) / 2;
  return (2u | ((token - kDirectTokens) & 1)) << (n - 2);
}

constexpr int kLevelBuckets = 5;
inline int NumContexts(int qbits) { return std::max(qbits + 4, 2 + 8 * kLevelBuckets); }

inline uint32_t ZigZag(int r) { return r >= 0 ? 2u * r : 2u * static_cast<uint32_t>(-r) - 1; }
inline int UnZigZag(uint32_t s) { return (s & 1) ? -static_cast<int>((s + 1) >> 1) : static_cast<int>(s >> 1); }

// Level context (FORMAT.md): nz == 0 ? far : 2 + 2 * ((nz - 1) * 5 + min(bitlen(act) >> 1, 4)) + far.
// (A branch-free form measured slower in the decoder: the nz == 0 branch predicts well.)
inline int LevelContext(int nz, uint32_t act, int far) {
  return nz == 0 ? far : 2 + 2 * ((nz - 1) * kLevelBuckets + std::min(BitLen(act) >> 1, kLevelBuckets - 1)) + far;
}

// The neighbourhood of element x in a padded plane of quantized values. The two left
// neighbours are passed by value so that decoders keep them in registers; everything that
// depends only on the rows above is precomputed per row by the model's Prep (vectorizable),
// which keeps the decoder's serial chain short.
struct Nbr {
  uint32_t left;         // (y, x - 1)
  uint32_t left2;        // (y, x - 2)
  const uint16_t* up;    // row above (x - 1 .. x + 1)
  const uint32_t* pre;   // Prep's output for this row
};

// Predictor 0, "level": predicts the zero point; context from how many of the four nearest
// neighbours are nonzero and the bit length of their summed magnitudes.
struct LevelModel {
  static uint32_t Mag(uint32_t v, uint32_t base) { return v >= base ? v - base : base - v; }
  // pre[x] = m(b) + ((m(c) + m(d)) >> 1) | nonzero count of b, c, d << 16 | [bb != base] << 19.
  static void Prep(const uint16_t* up, const uint16_t* up2, int64_t w, uint32_t base, uint32_t* pre) {
    for (int64_t x = 0; x < w; ++x) {
      const uint32_t b = Mag(up[x], base), c = Mag(up[x - 1], base), d = Mag(up[x + 1], base);
      pre[x] = (b + ((c + d) >> 1)) | ((b != 0) + (c != 0) + (d != 0)) << 16 | (up2[x] != base) << 19;
    }
  }
  static uint32_t Predict(const Nbr& n, int64_t x, int, uint32_t base, int* ctx) {
    const uint32_t a = Mag(n.left, base), pre = n.pre[x];
    const uint32_t act = a + (pre & 0xffff);
    const int nz = (a != 0) + static_cast<int>((pre >> 16) & 7);
    const int far = (n.left2 != base) | static_cast<int>(pre >> 19);
    *ctx = LevelContext(nz, act, far);
    return base;
  }
  static uint32_t PredictValue(uint32_t, const uint16_t*, int64_t, uint32_t base) { return base; }
  // With a zero point of 0 (post-ReLU features) values are never below it: code q itself.
  static uint32_t Symbol(uint32_t q, uint32_t pred) {
    return pred == 0 ? q : ZigZag(static_cast<int>(q) - static_cast<int>(pred));
  }
  static int Value(uint32_t sym, uint32_t pred) {
    return pred == 0 ? static_cast<int>(sym) : static_cast<int>(pred) + UnZigZag(sym);
  }
};

// Predictor 0 with a zero point of 0 (post-ReLU features): the same model with m(v) = v and
// symbol = q, written out so that decoders drop the magnitude and zigzag work.
struct LevelZeroModel {
  static void Prep(const uint16_t* up, const uint16_t* up2, int64_t w, uint32_t, uint32_t* pre) {
    for (int64_t x = 0; x < w; ++x) {
      const uint32_t b = up[x], c = up[x - 1], d = up[x + 1];
      pre[x] = (b + ((c + d) >> 1)) | ((b != 0) + (c != 0) + (d != 0)) << 16 | (up2[x] != 0) << 19;
    }
  }
  static uint32_t Predict(const Nbr& n, int64_t x, int, uint32_t, int* ctx) {
    const uint32_t a = n.left, pre = n.pre[x];
    const uint32_t act = a + (pre & 0xffff);
    const int nz = (a != 0) + static_cast<int>((pre >> 16) & 7);
    const int far = (n.left2 != 0) | static_cast<int>(pre >> 19);
    *ctx = LevelContext(nz, act, far);
    return 0;
  }
  static int Value(uint32_t sym, uint32_t) { return static_cast<int>(sym); }
};

// Predictor 1, "med": LOCO-I's median edge detector; context from local gradients.
struct MedModel {
  static uint32_t Med(int a, int b, int c) {
    const int lo = a < b ? a : b, hi = a < b ? b : a;
    return static_cast<uint32_t>(c >= hi ? lo : (c <= lo ? hi : a + b - c));
  }
  // pre[x] = |b - c| + |d - b| | [bb != b] << 16.
  static void Prep(const uint16_t* up, const uint16_t* up2, int64_t w, uint32_t, uint32_t* pre) {
    for (int64_t x = 0; x < w; ++x) {
      const int b = up[x], c = up[x - 1], d = up[x + 1];
      pre[x] = static_cast<uint32_t>(std::abs(b - c) + std::abs(d - b)) | (up2[x] != up[x]) << 16;
    }
  }
  static uint32_t Predict(const Nbr& n, int64_t x, int cap, uint32_t, int* ctx) {
    const int a = static_cast<int>(n.left), b = n.up[x], c = n.up[x - 1];
    const uint32_t pre = n.pre[x];
    const uint32_t act = static_cast<uint32_t>(std::abs(a - c)) + (pre & 0xffff);
    const int far = (static_cast<int>(n.left2) != a) | static_cast<int>(pre >> 16);
    *ctx = act == 0 ? far : 1 + std::min(BitLen(act), cap);
    return Med(a, b, c);
  }
  static uint32_t PredictValue(uint32_t left, const uint16_t* up, int64_t x, uint32_t) {
    return Med(static_cast<int>(left), up[x], up[x - 1]);
  }
  static uint32_t Symbol(uint32_t q, uint32_t pred) { return ZigZag(static_cast<int>(q) - static_cast<int>(pred)); }
  static int Value(uint32_t sym, uint32_t pred) { return static_cast<int>(pred) + UnZigZag(sym); }
};

struct Geometry {
  uint64_t maps = 1;
  uint32_t h = 1, w = 1;
};

inline Geometry MapGeometry(const std::vector<int64_t>& shape) {
  Geometry g;
  const size_t r = shape.size();
  g.w = static_cast<uint32_t>(shape[r - 1]);
  if (r >= 2) g.h = static_cast<uint32_t>(shape[r - 2]);
  for (size_t i = 0; i + 2 < r; ++i) g.maps *= static_cast<uint64_t>(shape[i]);
  return g;
}

struct Params {
  Geometry g;
  uint32_t qmask = 0;  // 2^Q - 1
  uint32_t base = 0;   // zero point clamped to 0..2^Q-1
  uint32_t stride = 0;
  size_t plane_size = 0;
  int cap = 0, contexts = 0;
};

inline Params MakeParams(const std::vector<int64_t>& shape, int qbits, int32_t zero_point) {
  Params p;
  p.g = MapGeometry(shape);
  p.qmask = (1u << qbits) - 1;
  p.base = static_cast<uint32_t>(std::clamp<int64_t>(zero_point, 0, p.qmask));
  p.stride = p.g.w + kPadLeft + kPadRight;
  p.plane_size = static_cast<size_t>(p.stride) * (p.g.h + kPadTop);
  p.contexts = NumContexts(qbits);
  p.cap = p.contexts - 2;
  return p;
}

// The adaptive binary model (context_adaptive.cc) for tensors of at most kAdaptiveMaxElements,
// predictor 0 (level) or 1 (med). Encode appends the model's payload to *out and returns the
// ideal code length in bits when want_bits (else 0). Decode writes the T symbols to q.
double EncodeAdaptiveModel(int predictor, const uint8_t* q, const Params& p, ContextScratch* s,
                           std::vector<uint8_t>* out, bool want_bits);
Status DecodeAdaptiveModel(int predictor, ByteReader* r, const Params& p, ContextScratch* s, uint8_t* q);

}  // namespace splitrans::codec::context_internal

// Unit tests for AIQ quantization (codec/quantize.h): the parameter formulas, the SIMD kernels
// against the per-element reference, non-finite input and the round-trip error bound.
#include "codec/quantize.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace splitrans::codec {
namespace {

// Straightforward reference of the paper's AIQ parameters: s = (max - min) / (2^Q - 1) computed
// in double and rounded to float, z = round(-min / s) with ties to even.
struct RefParams {
  bool constant;
  float scale;
  int32_t zero_point;
};

RefParams ReferenceParams(const std::vector<float>& x, int q) {
  float lo = x[0], hi = x[0];
  for (float v : x) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  RefParams p{false, 0.f, 0};
  const float s = static_cast<float>((static_cast<double>(hi) - static_cast<double>(lo)) / ((1 << q) - 1));
  if (hi == lo || !(s > 0.f)) {
    p.constant = true;
    return p;
  }
  p.scale = s;
  // Round half to even, spelled out instead of relying on the rounding mode.
  const double t = -static_cast<double>(lo) / static_cast<double>(s);
  double r = std::floor(t);
  const double frac = t - r;
  if (frac > 0.5 || (frac == 0.5 && std::fmod(r, 2.0) != 0.0)) r += 1.0;
  p.zero_point = static_cast<int32_t>(std::fmin(std::fmax(r, -2147483647.0), 2147483647.0));
  return p;
}

// Reference per-element quantizer: float divide, float add, round half to even, clamp.
uint8_t ReferenceQuantize(float x, float s, int32_t z, int q) {
  const float v = x / s + static_cast<float>(z);
  float r = std::floor(v);
  const float frac = v - r;
  if (frac > 0.5f || (frac == 0.5f && std::fmod(r, 2.0f) != 0.0f)) r += 1.0f;
  const float maxq = static_cast<float>((1 << q) - 1);
  if (r < 0.f) r = 0.f;
  if (r > maxq) r = maxq;
  return static_cast<uint8_t>(r);
}

std::vector<float> RandomData(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> x(n);
  for (auto& v : x) v = u(rng);
  return x;
}

TEST(QuantParams, HandMadeCases) {
  struct Case {
    std::vector<float> x;
    int q;
    float scale;
    int32_t zero_point;
  };
  const std::vector<Case> cases = {
      {{0.f, 3.f}, 2, 1.f, 0},          // s = 3/3
      {{-2.5f, 0.5f}, 2, 1.f, 2},       // z = round(2.5) = 2 (half to even)
      {{-1.5f, 1.5f}, 2, 1.f, 2},       // z = round(1.5) = 2 (half to even)
      {{-3.5f, -0.5f}, 2, 1.f, 4},      // z = round(3.5) = 4 (half to even)
      {{-1.f, 1.f}, 1, 2.f, 0},         // z = round(0.5) = 0
      {{-1.f, 1.f}, 8, 2.f / 255.f, 127},  // f32(2/255) rounds up: 1 / s = 127.49999... -> 127
      {{1.f, 2.f, 5.f}, 2, 4.f / 3.f, -1},  // z = round(-0.75) = -1
      {{10.f, 265.f}, 8, 1.f, -10},
      {{0.f, 0.25f, 1.f}, 4, 1.f / 15.f, 0},
  };
  for (const auto& c : cases) {
    QuantParams p;
    ASSERT_TRUE(ComputeQuantParams(c.x.data(), c.x.size(), c.q, &p).ok());
    EXPECT_FALSE(p.constant);
    EXPECT_EQ(p.scale, c.scale) << "x[0]=" << c.x[0] << " q=" << c.q;
    EXPECT_EQ(p.zero_point, c.zero_point) << "x[0]=" << c.x[0] << " q=" << c.q;
  }
}

TEST(QuantParams, MatchesReferenceOnRandomData) {
  std::mt19937 rng(1234);
  for (int iter = 0; iter < 2000; ++iter) {
    const int q = 1 + static_cast<int>(rng() % 8);
    const size_t n = 1 + rng() % 300;
    const float center = std::uniform_real_distribution<float>(-50.f, 50.f)(rng);
    const float width = std::exp(std::uniform_real_distribution<float>(-8.f, 8.f)(rng));
    auto x = RandomData(n, static_cast<uint32_t>(iter), center - width, center + width);
    QuantParams p;
    const Status st = ComputeQuantParams(x.data(), n, q, &p);
    const RefParams ref = ReferenceParams(x, q);
    if (!ref.constant && std::fabs(static_cast<double>(ref.zero_point)) > kMaxZeroPoint) {
      // Offset too large for the range: float32 cannot hold the grid, the encoder refuses.
      ASSERT_EQ(st.code(), ErrorCode::kInvalidArgument) << iter;
      continue;
    }
    ASSERT_TRUE(st.ok()) << iter << " " << st.ToString();
    ASSERT_EQ(p.constant, ref.constant) << iter;
    if (ref.constant) continue;
    ASSERT_EQ(p.scale, ref.scale) << iter;
    ASSERT_EQ(p.zero_point, ref.zero_point) << iter;
  }
}

TEST(QuantParams, RejectsOffsetsBeyondFloatResolution) {
  // 16777215 and 16777216 differ by one float ulp: z would be about -4.3e9.
  const std::vector<float> x = {16777215.f, 16777216.f};
  QuantParams p;
  const Status st = ComputeQuantParams(x.data(), x.size(), 8, &p);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(st.message().find("offset"), std::string::npos) << st.message();
  // The same spread around zero is fine.
  const std::vector<float> y = {-0.5f, 0.5f};
  EXPECT_TRUE(ComputeQuantParams(y.data(), y.size(), 8, &p).ok());
}

TEST(QuantParams, ZeroConstantIsPositiveZero) {
  // Whatever the signs and order of the zeros (and when the scale rounds to 0), the constant
  // is +0: the GPU encoder, whose minimum follows IEEE total order, writes the same bytes.
  const std::vector<std::vector<float>> cases = {
      {-0.f}, {-0.f, -0.f, -0.f}, {-0.f, 0.f}, {0.f, -0.f}, {0.f, -0.f, 1e-45f}, {-0.f, 0.f, 1e-45f}};
  for (const auto& x : cases) {
    QuantParams p;
    ASSERT_TRUE(ComputeQuantParams(x.data(), x.size(), 8, &p).ok());
    ASSERT_TRUE(p.constant);
    EXPECT_EQ(p.constant_value, 0.f);
    EXPECT_FALSE(std::signbit(p.constant_value)) << x.size() << " values";
  }
}

TEST(QuantParams, ConstantTensors) {
  for (size_t n : {1, 2, 7, 8, 9, 33, 1000}) {
    for (float c : {0.f, -3.25f, 1e30f, -FLT_MAX, FLT_MIN}) {
      std::vector<float> x(n, c);
      for (int q = 1; q <= 8; ++q) {
        QuantParams p;
        ASSERT_TRUE(ComputeQuantParams(x.data(), n, q, &p).ok());
        EXPECT_TRUE(p.constant) << n << " " << c;
        EXPECT_EQ(p.constant_value, c);
      }
    }
  }
  QuantParams p;
  ASSERT_TRUE(ComputeQuantParams(nullptr, 0, 4, &p).ok());
  EXPECT_TRUE(p.constant);
  EXPECT_EQ(p.constant_value, 0.f);
}

TEST(QuantParams, RejectsNonFiniteAnywhere) {
  const float bad_values[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::quiet_NaN()};
  for (size_t n : {1, 7, 8, 9, 16, 31, 100}) {
    for (size_t pos : {size_t{0}, n / 2, n - 1}) {
      for (float bad : bad_values) {
        auto x = RandomData(n, 5, -1.f, 1.f);
        x[pos] = bad;
        QuantParams p;
        Status st = ComputeQuantParams(x.data(), n, 4, &p);
        EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << "n=" << n << " pos=" << pos << " bad=" << bad;
      }
    }
  }
}

TEST(QuantParams, RejectsBadQAndHugeRange) {
  std::vector<float> x = {0.f, 1.f};
  QuantParams p;
  EXPECT_EQ(ComputeQuantParams(x.data(), 2, 0, &p).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ComputeQuantParams(x.data(), 2, 9, &p).code(), ErrorCode::kInvalidArgument);
  // The range 2 * FLT_MAX does not fit a float scale at Q = 1 but does at Q = 8.
  std::vector<float> wide = {-FLT_MAX, FLT_MAX};
  EXPECT_EQ(ComputeQuantParams(wide.data(), 2, 1, &p).code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(ComputeQuantParams(wide.data(), 2, 8, &p).ok());
  EXPECT_FALSE(p.constant);
  EXPECT_TRUE(std::isfinite(p.scale));
}

TEST(Quantize, HandMadeRoundingAndClamp) {
  QuantParams p;
  p.scale = 1.f;
  p.zero_point = 0;
  const std::vector<float> x = {0.f, 0.5f, 1.5f, 2.5f, 3.49f, -0.4f, -0.5f, -7.f, 1.4999999f, 2.5000002f, 100.f};
  const std::vector<uint8_t> want2 = {0, 0, 2, 2, 3, 0, 0, 0, 1, 3, 3};  // q = 2: clamp to 3
  std::vector<uint8_t> out(x.size());
  Quantize(x.data(), x.size(), p, 2, out.data());
  EXPECT_EQ(out, want2);
  const std::vector<uint8_t> want8 = {0, 0, 2, 2, 3, 0, 0, 0, 1, 3, 100};
  Quantize(x.data(), x.size(), p, 8, out.data());
  EXPECT_EQ(out, want8);
  // With a zero point: x / 0.5 + 3.
  p.scale = 0.5f;
  p.zero_point = 3;
  const std::vector<float> y = {-1.5f, -1.25f, -0.75f, 0.f, 0.25f, 0.75f, 5.f};
  // v = 0, 0.5, 1.5, 3, 3.5, 4.5, 13 -> round half even, clamp to 7.
  const std::vector<uint8_t> want_y = {0, 0, 2, 3, 4, 4, 7};
  std::vector<uint8_t> out_y(y.size());
  Quantize(y.data(), y.size(), p, 3, out_y.data());
  EXPECT_EQ(out_y, want_y);
}

// Quantize() dispatches to AVX-512 / AVX2 / scalar internally; every path must equal the
// per-element reference, at every length around the vector widths and at any alignment.
TEST(Quantize, KernelMatchesPerElementReference) {
  const size_t sizes[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 1000};
  for (int q = 1; q <= 8; ++q) {
    for (size_t n : sizes) {
      for (size_t offset : {0, 1, 3}) {
        std::mt19937 rng(static_cast<uint32_t>(n * 31 + q * 7 + offset));
        // Values on the grid, exactly on half steps (ties), and outside the range (clamping).
        const float s = 0.25f;
        const int32_t z = (1 << q) / 2;
        std::vector<float> buf(n + offset);
        for (auto& v : buf) {
          const int kind = rng() % 4;
          const int k = static_cast<int>(rng() % ((1 << q) + 8)) - 4 - z;
          if (kind == 0) v = k * s;
          else if (kind == 1) v = (k + 0.5f) * s;
          else v = std::uniform_real_distribution<float>(-(z + 4) * s, ((1 << q) - z + 4) * s)(rng);
        }
        QuantParams p;
        p.scale = s;
        p.zero_point = z;
        std::vector<uint8_t> got(n + 1, 0xAB);
        Quantize(buf.data() + offset, n, p, q, got.data());
        EXPECT_EQ(got[n], 0xAB) << "wrote past the end, n=" << n;
        for (size_t i = 0; i < n; ++i) {
          const float x = buf[offset + i];
          ASSERT_EQ(got[i], QuantizeOne(x, s, static_cast<float>(z), static_cast<float>((1 << q) - 1)))
              << "q=" << q << " n=" << n << " i=" << i << " x=" << x;
          ASSERT_EQ(got[i], ReferenceQuantize(x, s, z, q)) << "q=" << q << " n=" << n << " i=" << i << " x=" << x;
        }
      }
    }
  }
}

TEST(Quantize, RandomDataMatchesReference) {
  std::mt19937 rng(99);
  for (int iter = 0; iter < 300; ++iter) {
    const int q = 1 + static_cast<int>(rng() % 8);
    const size_t n = rng() % 2000;
    const float width = std::exp(std::uniform_real_distribution<float>(-6.f, 6.f)(rng));
    const float center = std::uniform_real_distribution<float>(-3.f, 3.f)(rng) * width;
    auto x = RandomData(n, static_cast<uint32_t>(iter + 1000), center - width, center + width);
    QuantParams p;
    ASSERT_TRUE(ComputeQuantParams(x.data(), n, q, &p).ok());
    if (p.constant) continue;
    std::vector<uint8_t> got(n);
    Quantize(x.data(), n, p, q, got.data());
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(got[i], ReferenceQuantize(x[i], p.scale, p.zero_point, q)) << iter << " " << i;
      ASSERT_LT(got[i], 1 << q);
    }
  }
}

TEST(Dequantize, KernelMatchesPerElementReference) {
  const size_t sizes[] = {0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 1000};
  for (int q = 1; q <= 8; ++q) {
    for (size_t n : sizes) {
      std::mt19937 rng(static_cast<uint32_t>(n + 100 * q));
      std::vector<uint8_t> sym(n);
      for (auto& v : sym) v = static_cast<uint8_t>(rng() % (1u << q));
      QuantParams p;
      p.scale = 0.37f;
      p.zero_point = static_cast<int32_t>(rng() % (1u << q)) - 3;
      std::vector<float> out(n + 1, -123.f);
      Dequantize(sym.data(), n, p, q, out.data());
      EXPECT_EQ(out[n], -123.f);
      for (size_t i = 0; i < n; ++i) {
        ASSERT_EQ(out[i], DequantizeOne(sym[i], p.zero_point, p.scale)) << q << " " << n << " " << i;
        ASSERT_EQ(out[i], static_cast<float>(static_cast<int>(sym[i]) - p.zero_point) * p.scale);
      }
    }
  }
}

// Extreme zero points (possible in any v1 header) must not overflow int32 arithmetic.
TEST(Dequantize, ExtremeZeroPointIsWellDefined) {
  std::vector<uint8_t> sym(40);
  for (size_t i = 0; i < sym.size(); ++i) sym[i] = static_cast<uint8_t>(i * 7);
  for (int32_t z : {std::numeric_limits<int32_t>::min(), std::numeric_limits<int32_t>::max(), -2147483647}) {
    QuantParams p;
    p.scale = 1.f;
    p.zero_point = z;
    std::vector<float> out(sym.size());
    Dequantize(sym.data(), sym.size(), p, 8, out.data());
    for (size_t i = 0; i < sym.size(); ++i) {
      const double want = static_cast<double>(static_cast<int64_t>(sym[i]) - z);
      ASSERT_EQ(out[i], static_cast<float>(want)) << z << " " << i;
    }
  }
}

TEST(Quantize, RoundTripErrorWithinHalfStep) {
  std::mt19937 rng(4242);
  for (int iter = 0; iter < 500; ++iter) {
    const int q = 1 + static_cast<int>(rng() % 8);
    const size_t n = 1 + rng() % 1500;
    const float width = std::exp(std::uniform_real_distribution<float>(-10.f, 10.f)(rng));
    // Signed and one-sided data, offsets up to a few ranges away from zero.
    const float center = std::uniform_real_distribution<float>(-4.f, 4.f)(rng) * width;
    auto x = RandomData(n, static_cast<uint32_t>(iter * 3 + 1), center - width, center + width);
    QuantParams p;
    ASSERT_TRUE(ComputeQuantParams(x.data(), n, q, &p).ok());
    std::vector<uint8_t> sym(n);
    std::vector<float> y(n);
    if (p.constant) continue;
    Quantize(x.data(), n, p, q, sym.data());
    Dequantize(sym.data(), n, p, q, y.data());
    for (size_t i = 0; i < n; ++i) {
      const double err = std::fabs(static_cast<double>(y[i]) - x[i]);
      const double tol = 0.5 * p.scale * (1 + 1e-6) + 1e-6 * std::fabs(x[i]);
      ASSERT_LE(err, tol) << "iter " << iter << " q=" << q << " i=" << i << " x=" << x[i] << " y=" << y[i]
                          << " s=" << p.scale << " z=" << p.zero_point;
    }
  }
}

TEST(Histogram256, MatchesReference) {
  for (size_t n : {0, 1, 7, 8, 9, 64, 1001}) {
    std::mt19937 rng(static_cast<uint32_t>(n));
    std::vector<uint8_t> q(n);
    for (auto& v : q) v = static_cast<uint8_t>(rng() % 256);
    uint32_t got[256];
    std::fill(got, got + 256, 77u);
    Histogram256(q.data(), n, got);
    uint32_t want[256] = {};
    for (uint8_t v : q) want[v]++;
    for (int s = 0; s < 256; ++s) ASSERT_EQ(got[s], want[s]) << n << " " << s;
  }
}


// ---- Outlier-aware AIQ (ComputeClippedQuantParams) ----

double RoundTripMse(const std::vector<float>& x, const QuantParams& p, int q) {
  std::vector<uint8_t> sym(x.size());
  std::vector<float> back(x.size());
  Quantize(x.data(), x.size(), p, q, sym.data());
  Dequantize(sym.data(), sym.size(), p, q, back.data());
  double e = 0;
  for (size_t i = 0; i < x.size(); ++i) e += (static_cast<double>(x[i]) - back[i]) * (static_cast<double>(x[i]) - back[i]);
  return e / static_cast<double>(x.size());
}

// A signed, heavy-tailed tensor (a Laplace bulk and a few outliers, as in transformers' residual
// streams): at low Q min-max spends its levels on the tails; the clipped range cuts the error
// (by half at least at Q <= 3), keeps 0 exact and clamps the outliers to its ends.
TEST(ClippedQuantParams, CutsTheErrorOfHeavyTails) {
  std::mt19937 rng(11);
  std::exponential_distribution<float> mag(2.f);  // Laplace with b = 0.5: |x| exponential
  std::vector<float> x(20000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = (i % 2 ? -1.f : 1.f) * mag(rng);
  for (int i = 0; i < 10; ++i) x[static_cast<size_t>(i) * 1999] = (i % 2 ? -1.f : 1.f) * (8.f + static_cast<float>(i) * 0.5f);
  x[5] = 0.f;
  for (int q : {2, 3, 4, 6}) {
    QuantParams aiq, clip;
    float lo = 0, hi = 0;
    ASSERT_TRUE(ComputeQuantParams(x.data(), x.size(), q, &aiq).ok());
    ASSERT_TRUE(ComputeClippedQuantParams(x.data(), x.size(), q, &clip, &lo, &hi).ok());
    ASSERT_FALSE(clip.constant);
    const double e_aiq = RoundTripMse(x, aiq, q), e_clip = RoundTripMse(x, clip, q);
    EXPECT_LT(e_clip, (q <= 3 ? 0.5 : 0.9) * e_aiq) << "q " << q;
    EXPECT_LT(hi, 12.f) << "q " << q;
    EXPECT_GT(lo, -12.f) << "q " << q;
    EXPECT_LE(lo, 0.f);
    EXPECT_GE(hi, 0.f);
    // The parameters are AIQ's grid over [lo, hi].
    QuantParams same;
    const std::vector<float> ends = {lo, hi};
    ASSERT_TRUE(ComputeQuantParams(ends.data(), ends.size(), q, &same).ok());
    EXPECT_EQ(same.scale, clip.scale);
    EXPECT_EQ(same.zero_point, clip.zero_point);
    uint8_t sym;
    float back;
    Quantize(&x[5], 1, clip, q, &sym);
    Dequantize(&sym, 1, clip, q, &back);
    EXPECT_EQ(back, 0.f) << "an exact zero stays exact";
  }
}

// Without outliers the search keeps (about) the full range: never much worse than min-max.
TEST(ClippedQuantParams, UniformDataKeepsItsRange) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-2.f, 5.f);
  std::vector<float> x(5000);
  for (float& v : x) v = u(rng);
  for (int q : {1, 2, 4, 8}) {
    QuantParams aiq, clip;
    ASSERT_TRUE(ComputeQuantParams(x.data(), x.size(), q, &aiq).ok());
    ASSERT_TRUE(ComputeClippedQuantParams(x.data(), x.size(), q, &clip).ok());
    EXPECT_LE(RoundTripMse(x, clip, q), 1.05 * RoundTripMse(x, aiq, q)) << "q " << q;
  }
}

// Post-ReLU (min 0): the lower end stays 0 (zeros exact), only the top is clipped.
TEST(ClippedQuantParams, PostReluKeepsZeroAsTheLowerEnd) {
  std::mt19937 rng(5);
  std::exponential_distribution<float> tail(1.f);
  std::vector<float> x(30000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = i % 3 == 0 ? 0.f : tail(rng);
  float lo = -1, hi = -1;
  QuantParams aiq, clip;
  ASSERT_TRUE(ComputeQuantParams(x.data(), x.size(), 2, &aiq).ok());
  ASSERT_TRUE(ComputeClippedQuantParams(x.data(), x.size(), 2, &clip, &lo, &hi).ok());
  EXPECT_EQ(lo, 0.f);
  EXPECT_EQ(clip.zero_point, 0);
  EXPECT_LT(hi, 0.8f * *std::max_element(x.begin(), x.end()));
  EXPECT_LT(RoundTripMse(x, clip, 2), RoundTripMse(x, aiq, 2));
}

// All-positive and all-negative tensors (0 outside the range) and the same edge cases and
// errors as ComputeQuantParams.
TEST(ClippedQuantParams, OneSidedRangesAndEdgeCases) {
  std::vector<float> pos = {10.f, 10.5f, 11.f, 10.2f, 10.7f, 10.1f, 10.9f, 50.f};
  QuantParams p;
  float lo = 0, hi = 0;
  ASSERT_TRUE(ComputeClippedQuantParams(pos.data(), pos.size(), 3, &p, &lo, &hi).ok());
  EXPECT_GE(lo, 10.f);
  EXPECT_LE(hi, 50.f);
  EXPECT_LT(lo, hi);
  QuantParams aiq;
  ASSERT_TRUE(ComputeQuantParams(pos.data(), pos.size(), 3, &aiq).ok());
  EXPECT_LE(RoundTripMse(pos, p, 3), RoundTripMse(pos, aiq, 3));
  std::vector<float> neg = pos;
  for (float& v : neg) v = -v;
  ASSERT_TRUE(ComputeClippedQuantParams(neg.data(), neg.size(), 3, &p, &lo, &hi).ok());
  EXPECT_GE(lo, -50.f);
  EXPECT_LE(hi, -10.f);
  EXPECT_LT(lo, hi);
  // Empty, constant, non-finite, bad q.
  EXPECT_TRUE(ComputeClippedQuantParams(nullptr, 0, 4, &p).ok());
  EXPECT_TRUE(p.constant);
  const std::vector<float> c(100, 2.5f);
  ASSERT_TRUE(ComputeClippedQuantParams(c.data(), c.size(), 4, &p).ok());
  EXPECT_TRUE(p.constant);
  EXPECT_EQ(p.constant_value, 2.5f);
  std::vector<float> bad = {1.f, 2.f, std::numeric_limits<float>::quiet_NaN()};
  EXPECT_EQ(ComputeClippedQuantParams(bad.data(), bad.size(), 4, &p).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ComputeClippedQuantParams(c.data(), c.size(), 9, &p).code(), ErrorCode::kInvalidArgument);
  const std::vector<float> huge = {-FLT_MAX, FLT_MAX};
  EXPECT_EQ(ComputeClippedQuantParams(huge.data(), huge.size(), 1, &p).code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace splitrans::codec

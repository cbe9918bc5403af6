// Unit tests for the codec's public API: round trips over layouts, Q and shapes, float16,
// invalid arguments, paper mode / auto consistency and decoder hardening.
#include "codec/codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>

#include "codec/crc32c.h"
#include "codec/csr.h"
#include "codec/quantize.h"
#include "codec/wire.h"

namespace splitrans::codec {
namespace {

std::vector<float> ReluNoise(size_t n, uint32_t seed, double zero_fraction) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::exponential_distribution<float> e(1.5f);
  std::vector<float> x(n);
  for (auto& v : x) v = u(rng) < zero_fraction ? 0.f : e(rng);
  return x;
}

class RoundTrip : public ::testing::TestWithParam<std::tuple<Mode, int>> {};

TEST_P(RoundTrip, ErrorWithinHalfStep) {
  const auto [mode, q] = GetParam();
  std::vector<int64_t> shape = {16, 14, 14};
  auto x = ReluNoise(16 * 14 * 14, 7, 0.5);
  EncodeOptions opt;
  opt.q = q;
  opt.mode = mode;
  auto enc = Encode(TensorView{x.data(), DType::kFloat32, shape}, opt);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  auto dec = Decode(enc->data(), enc->size());
  ASSERT_TRUE(dec.ok()) << dec.status().ToString();
  EXPECT_EQ(dec->shape, shape);
  float lo = *std::min_element(x.begin(), x.end()), hi = *std::max_element(x.begin(), x.end());
  const float s = (hi - lo) / ((1 << q) - 1);
  for (size_t i = 0; i < x.size(); ++i) ASSERT_LE(std::fabs(dec->values[i] - x[i]), s * 0.5f * 1.0001f) << i;
}

INSTANTIATE_TEST_SUITE_P(AllModes, RoundTrip,
                         ::testing::Combine(::testing::Values(Mode::kAuto, Mode::kPaper, Mode::kDense, Mode::kSparse,
                                                              Mode::kContext),
                                            ::testing::Values(1, 2, 3, 4, 6, 8)));

// ---------------------------------------------------------------------------------------------
// Helpers for the tests below.

using Bytes = std::vector<uint8_t>;

// Header field offsets (FORMAT.md "Fixed header").
constexpr size_t kOffMagic = 0, kOffVersion = 4, kOffFlags = 5, kOffDtype = 6, kOffRank = 7, kOffQ = 8,
                 kOffLayout = 9, kOffReserved = 10, kOffScale = 12, kOffZeroPoint = 16, kOffBodySize = 20;

template <typename T>
void Put(Bytes* b, size_t off, T v) {
  std::memcpy(b->data() + off, &v, sizeof(T));
}

template <typename T>
T Get(const Bytes& b, size_t off) {
  T v;
  std::memcpy(&v, b.data() + off, sizeof(T));
  return v;
}

// Recomputes the CRC32C after the header and body were edited, so that validation reaches the
// edited field. Uses the declared body_size; the input must be long enough for it.
void FixCrc(Bytes* b) {
  const uint32_t body = Get<uint32_t>(*b, kOffBodySize);
  ASSERT_GE(b->size(), kFixedHeaderBytes + body + kChecksumBytes);
  Put<uint32_t>(b, kFixedHeaderBytes + body, Crc32c(b->data(), kFixedHeaderBytes + body));
}

uint64_t Product(const std::vector<int64_t>& shape) {
  uint64_t t = 1;
  for (int64_t d : shape) t *= static_cast<uint64_t>(d);
  return t;
}

// Decodes from an exactly-sized heap copy (so out-of-bounds reads would be caught by ASan).
Status DecodeCopy(const Bytes& b, size_t len, DecodedTensor* out, DecodeLimits limits = {}) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[len ? len : 1]);
  if (len) std::memcpy(copy.get(), b.data(), len);
  Decoder dec(limits);
  return dec.Decode(copy.get(), len, out);
}

ErrorCode DecodeCode(const Bytes& b, DecodeLimits limits = {}) {
  DecodedTensor out;
  return DecodeCopy(b, b.size(), &out, limits).code();
}

ErrorCode InspectCode(const Bytes& b, DecodeLimits limits = {}) {
  return Inspect(b.data(), b.size(), limits).status().code();
}

enum class Data { kRelu, kSigned, kUniformPositive, kConstant, kNegativeOnly };

std::vector<float> MakeData(size_t n, Data kind, double zero_fraction, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::normal_distribution<float> g(0.f, 2.f);
  std::vector<float> x(n);
  for (auto& v : x) {
    switch (kind) {
      case Data::kRelu: v = u(rng) < zero_fraction ? 0.f : std::exponential_distribution<float>(1.f)(rng); break;
      case Data::kSigned: v = u(rng) < zero_fraction ? 0.f : g(rng); break;
      case Data::kUniformPositive: v = 3.f + 5.f * u(rng); break;
      case Data::kConstant: v = -1.75f; break;
      case Data::kNegativeOnly: v = -10.f - 4.f * u(rng); break;
    }
  }
  return x;
}

Bytes MustEncode(const std::vector<float>& x, const std::vector<int64_t>& shape, int q, Mode mode,
                 NSearch search = NSearch::kAlgorithm1) {
  EncodeOptions opt;
  opt.q = q;
  opt.mode = mode;
  opt.search = search;
  auto r = Encode(TensorView{x.data(), DType::kFloat32, shape}, opt);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r.value() : Bytes();
}

// Checks a decoded tensor against the source: shape, dtype, exact AIQ reconstruction (FORMAT.md
// "Quantization") and the s/2 error bound.
void CheckDecoded(const std::vector<float>& x, const std::vector<int64_t>& shape, int q, const Bytes& enc,
                  const std::string& what) {
  auto dec = Decode(enc.data(), enc.size());
  ASSERT_TRUE(dec.ok()) << what << ": " << dec.status().ToString();
  ASSERT_EQ(dec->shape, shape) << what;
  ASSERT_EQ(dec->dtype, DType::kFloat32) << what;
  ASSERT_EQ(dec->values.size(), x.size()) << what;
  auto info = Inspect(enc.data(), enc.size());
  ASSERT_TRUE(info.ok()) << what << ": " << info.status().ToString();
  ASSERT_EQ(info->total_bytes, enc.size());
  ASSERT_EQ(info->q, q);
  ASSERT_EQ(info->shape, shape);
  if (x.empty()) return;
  const float lo = *std::min_element(x.begin(), x.end()), hi = *std::max_element(x.begin(), x.end());
  if (lo == hi) {
    ASSERT_EQ(info->layout, Layout::kConstant) << what;
    for (float v : dec->values) ASSERT_EQ(v, lo) << what;
    return;
  }
  const float s = static_cast<float>((static_cast<double>(hi) - lo) / ((1 << q) - 1));
  ASSERT_EQ(info->scale, s) << what;
  const int32_t z = static_cast<int32_t>(std::nearbyint(-static_cast<double>(lo) / s));
  ASSERT_EQ(info->zero_point, z) << what;
  const float maxq = static_cast<float>((1 << q) - 1);
  for (size_t i = 0; i < x.size(); ++i) {
    const float v = x[i] / s + static_cast<float>(z);
    float r = std::nearbyint(v);
    r = std::min(std::max(r, 0.f), maxq);
    const float want = static_cast<float>(static_cast<int>(r) - z) * s;
    ASSERT_EQ(dec->values[i], want) << what << " i=" << i;
    ASSERT_LE(std::fabs(dec->values[i] - x[i]), 0.5 * s * (1 + 1e-6) + 1e-6 * std::fabs(x[i])) << what << " i=" << i;
  }
}

Layout ExpectedLayout(Mode mode) {
  switch (mode) {
    case Mode::kDense: return Layout::kDense;
    case Mode::kSparse: return Layout::kSparse;
    case Mode::kPaper: return Layout::kPaper;
    case Mode::kContext: return Layout::kContext;
    default: return Layout::kConstant;  // auto: checked separately
  }
}

const Mode kAllModes[] = {Mode::kAuto, Mode::kPaper, Mode::kDense, Mode::kSparse, Mode::kContext};

// ---------------------------------------------------------------------------------------------
// Enumerations and names

TEST(Status, StableCodesAndNames) {
  EXPECT_EQ(static_cast<int>(ErrorCode::kOk), 0);
  EXPECT_EQ(static_cast<int>(ErrorCode::kInvalidArgument), 1);
  EXPECT_EQ(static_cast<int>(ErrorCode::kTruncated), 2);
  EXPECT_EQ(static_cast<int>(ErrorCode::kBadMagic), 3);
  EXPECT_EQ(static_cast<int>(ErrorCode::kUnsupportedVersion), 4);
  EXPECT_EQ(static_cast<int>(ErrorCode::kReservedBits), 5);
  EXPECT_EQ(static_cast<int>(ErrorCode::kBadHeaderField), 6);
  EXPECT_EQ(static_cast<int>(ErrorCode::kLimitExceeded), 7);
  EXPECT_EQ(static_cast<int>(ErrorCode::kChecksumMismatch), 8);
  EXPECT_EQ(static_cast<int>(ErrorCode::kTrailingBytes), 9);
  EXPECT_EQ(static_cast<int>(ErrorCode::kCorruptPayload), 10);
  EXPECT_EQ(static_cast<int>(ErrorCode::kInternal), 11);
  EXPECT_EQ(static_cast<int>(ErrorCode::kUnavailable), 12);
  EXPECT_STREQ(ErrorCodeName(ErrorCode::kTruncated), "TRUNCATED");
  EXPECT_STREQ(ErrorCodeName(ErrorCode::kChecksumMismatch), "CHECKSUM_MISMATCH");
  EXPECT_STREQ(ErrorCodeName(ErrorCode::kCorruptPayload), "CORRUPT_PAYLOAD");
  EXPECT_EQ(Status().ToString(), "OK");
  EXPECT_EQ(Status(ErrorCode::kTruncated, "x").ToString(), "TRUNCATED: x");
}

TEST(Names, ModesAndLayouts) {
  for (Mode m : kAllModes) {
    Mode parsed = Mode::kAuto;
    ASSERT_TRUE(ParseMode(ModeName(m), &parsed)) << ModeName(m);
    EXPECT_EQ(parsed, m);
  }
  Mode m = Mode::kDense;
  EXPECT_FALSE(ParseMode("Dense", &m));
  EXPECT_FALSE(ParseMode("", &m));
  EXPECT_EQ(m, Mode::kDense);
  EXPECT_STREQ(LayoutName(Layout::kConstant), "constant");
  EXPECT_STREQ(LayoutName(Layout::kDense), "dense");
  EXPECT_STREQ(LayoutName(Layout::kSparse), "sparse");
  EXPECT_STREQ(LayoutName(Layout::kPaper), "paper");
  EXPECT_STREQ(LayoutName(Layout::kContext), "context");
}

TEST(Names, Quantizers) {
  Quantizer x = Quantizer::kMinMax;
  ASSERT_TRUE(ParseQuantizer("clip", &x));
  EXPECT_EQ(x, Quantizer::kClip);
  ASSERT_TRUE(ParseQuantizer("aiq", &x));
  EXPECT_EQ(x, Quantizer::kMinMax);
  EXPECT_FALSE(ParseQuantizer("minmax", &x));
  EXPECT_STREQ(QuantizerName(Quantizer::kClip), "clip");
  EXPECT_STREQ(QuantizerName(Quantizer::kMinMax), "aiq");
}

// The clipped quantizer through the public API: every layout but paper's; a plain decoder reads
// it; on a heavy-tailed signed tensor it cuts the reconstruction error at low Q; paper mode
// refuses it.
TEST(ClipQuantizer, EncodesEveryLayoutAndCutsTheErrorOfOutliers) {
  std::mt19937 rng(21);
  std::exponential_distribution<float> mag(2.f);  // Laplace, b = 0.5
  const std::vector<int64_t> shape = {8, 16, 16};
  std::vector<float> x(8 * 16 * 16);
  for (size_t i = 0; i < x.size(); ++i) x[i] = (i % 3 ? -1.f : 1.f) * mag(rng);
  for (int i = 0; i < 6; ++i) x[static_cast<size_t>(i) * 331] = i % 2 ? -9.f : 8.f;
  const TensorView view{x.data(), DType::kFloat32, shape};
  auto mse = [&](const DecodedTensor& d) {
    double e = 0;
    for (size_t i = 0; i < x.size(); ++i) e += (d.values[i] - x[i]) * (d.values[i] - x[i]);
    return e / static_cast<double>(x.size());
  };
  for (Mode mode : {Mode::kAuto, Mode::kDense, Mode::kSparse, Mode::kContext}) {
    for (int q : {2, 4}) {
      EncodeOptions aiq, clip;
      aiq.q = clip.q = q;
      aiq.mode = clip.mode = mode;
      clip.quantizer = Quantizer::kClip;
      auto a = Encode(view, aiq), c = Encode(view, clip);
      ASSERT_TRUE(a.ok() && c.ok()) << ModeName(mode);
      auto da = Decode(a->data(), a->size()), dc = Decode(c->data(), c->size());
      ASSERT_TRUE(da.ok() && dc.ok()) << ModeName(mode);
      EXPECT_LT(mse(*dc), (q == 2 ? 0.5 : 0.9) * mse(*da)) << ModeName(mode) << " q " << q;
    }
  }
  EncodeOptions paper;
  paper.mode = Mode::kPaper;
  paper.quantizer = Quantizer::kClip;
  auto r = Encode(view, paper);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("paper"), std::string::npos) << r.status().message();
  EncodeOptions bogus;
  bogus.quantizer = static_cast<Quantizer>(7);
  EXPECT_EQ(Encode(view, bogus).status().code(), ErrorCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(RoundTripRandom, ShapesModesQAndData) {
  std::mt19937 rng(20240601);
  int checked = 0;
  for (int iter = 0; iter < 64; ++iter) {
    const int rank = 1 + iter % 8;
    std::vector<int64_t> shape(rank);
    do {
      for (auto& d : shape) d = 1 + static_cast<int64_t>(rng() % (rank <= 2 ? 40 : (rank <= 4 ? 9 : 4)));
    } while (Product(shape) > 3000);
    if (iter % 16 == 3) shape[rng() % rank] = 0;              // 0 elements
    if (iter % 16 == 7) std::fill(shape.begin(), shape.end(), 1);  // 1 element
    const Data kind = static_cast<Data>(iter % 5);
    const double zf = (iter / 5) % 4 == 0 ? 0.0 : ((iter / 5) % 4 == 1 ? 0.5 : ((iter / 5) % 4 == 2 ? 0.9 : 0.99));
    const auto x = MakeData(Product(shape), kind, zf, static_cast<uint32_t>(iter));
    for (Mode mode : kAllModes) {
      for (int q = kMinQ; q <= kMaxQ; ++q) {
        const std::string what = "iter=" + std::to_string(iter) + " mode=" + ModeName(mode) + " q=" + std::to_string(q);
        const Bytes enc = MustEncode(x, shape, q, mode);
        ASSERT_FALSE(enc.empty()) << what;
        CheckDecoded(x, shape, q, enc, what);
        auto info = Inspect(enc.data(), enc.size());
        ASSERT_TRUE(info.ok());
        const bool constant =
            x.empty() || *std::min_element(x.begin(), x.end()) == *std::max_element(x.begin(), x.end());
        if (constant) {
          EXPECT_EQ(info->layout, Layout::kConstant) << what;
        } else if (mode == Mode::kAuto) {
          EXPECT_TRUE(info->layout == Layout::kDense || info->layout == Layout::kSparse ||
                      info->layout == Layout::kContext)
              << what;
        } else {
          EXPECT_EQ(info->layout, ExpectedLayout(mode)) << what;
        }
        if (info->layout == Layout::kSparse || info->layout == Layout::kPaper) {
          EXPECT_EQ(uint64_t{info->n} * info->k, x.size()) << what;
        }
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 64 * 5 * 8);
}

TEST(RoundTripRandom, ExhaustiveSearchAndLargerTensors) {
  for (int q : {2, 4, 8}) {
    const std::vector<int64_t> shape = {32, 28, 28};
    const auto x = MakeData(Product(shape), Data::kRelu, 0.6, 900 + q);
    for (NSearch search : {NSearch::kAlgorithm1, NSearch::kExhaustive}) {
      const Bytes enc = MustEncode(x, shape, q, Mode::kPaper, search);
      CheckDecoded(x, shape, q, enc, "paper q=" + std::to_string(q));
    }
    for (Mode mode : kAllModes) CheckDecoded(x, shape, q, MustEncode(x, shape, q, mode), ModeName(mode));
  }
}

TEST(RoundTripRandom, EncoderAndDecoderObjectsAreReusable) {
  Encoder enc;
  Decoder dec;
  DecodedTensor out;
  std::mt19937 rng(5);
  for (int i = 0; i < 40; ++i) {
    const std::vector<int64_t> shape = {1 + static_cast<int64_t>(rng() % 5), 1 + static_cast<int64_t>(rng() % 50)};
    const auto x = MakeData(Product(shape), static_cast<Data>(i % 5), 0.3, i);
    EncodeOptions opt;
    opt.q = 1 + i % 8;
    opt.mode = kAllModes[i % 5];
    Bytes bytes = {1, 2, 3};  // replaced
    ASSERT_TRUE(enc.Encode(TensorView{x.data(), DType::kFloat32, shape}, opt, &bytes).ok());
    EXPECT_EQ(bytes, MustEncode(x, shape, opt.q, opt.mode)) << "object reuse changed the output";
    ASSERT_TRUE(dec.Decode(bytes.data(), bytes.size(), &out).ok());
    auto fresh = Decode(bytes.data(), bytes.size());
    ASSERT_TRUE(fresh.ok());
    EXPECT_EQ(out.values, fresh->values);
    EXPECT_EQ(out.shape, shape);
    // DecodeInto into caller memory.
    std::vector<float> buf(x.size() + 3, 7.f);
    std::vector<int64_t> got_shape;
    ASSERT_TRUE(dec.DecodeInto(bytes.data(), bytes.size(), buf.data(), buf.size(), &got_shape).ok());
    EXPECT_EQ(got_shape, shape);
    EXPECT_TRUE(std::equal(fresh->values.begin(), fresh->values.end(), buf.begin()));
    EXPECT_EQ(buf.back(), 7.f);
    if (!x.empty()) {
      EXPECT_EQ(dec.DecodeInto(bytes.data(), bytes.size(), buf.data(), x.size() - 1, nullptr).code(),
                ErrorCode::kInvalidArgument);
    }
  }
}

TEST(RoundTripRandom, ZeroAndOneElementTensors) {
  for (const std::vector<int64_t>& shape :
       std::vector<std::vector<int64_t>>{{0}, {3, 0}, {0, 5, 7}, {1}, {1, 1, 1, 1, 1, 1, 1, 1}, {2, 0, 4, 0}}) {
    const auto x = MakeData(Product(shape), Data::kSigned, 0.0, 3);
    for (Mode mode : kAllModes) {
      for (int q : {1, 8}) {
        EncodeOptions opt;
        opt.q = q;
        opt.mode = mode;
        auto enc = Encode(TensorView{x.empty() ? nullptr : x.data(), DType::kFloat32, shape}, opt);
        ASSERT_TRUE(enc.ok()) << enc.status().ToString();
        auto dec = Decode(enc->data(), enc->size());
        ASSERT_TRUE(dec.ok()) << dec.status().ToString();
        EXPECT_EQ(dec->shape, shape);
        EXPECT_EQ(dec->values, x);
        auto info = Inspect(enc->data(), enc->size());
        ASSERT_TRUE(info.ok());
        EXPECT_EQ(info->layout, Layout::kConstant);
        EXPECT_EQ(info->scale, 0.f);
        EXPECT_EQ(info->zero_point, 0);
      }
    }
  }
}

TEST(RoundTripFloat16, WithinHalfStepOfTheHalfValues) {
  std::mt19937 rng(16);
  for (int iter = 0; iter < 40; ++iter) {
    const std::vector<int64_t> shape = {4, 1 + static_cast<int64_t>(rng() % 30), 9};
    const auto xf = MakeData(Product(shape), static_cast<Data>(iter % 5), 0.4, iter + 50);
    std::vector<uint16_t> h(xf.size());
    std::vector<float> hv(xf.size());
    for (size_t i = 0; i < xf.size(); ++i) {
      h[i] = FloatToHalf(xf[i] * (iter % 3 == 0 ? 1000.f : 1.f));
      hv[i] = HalfToFloat(h[i]);
    }
    for (Mode mode : kAllModes) {
      EncodeOptions opt;
      opt.q = 1 + iter % 8;
      opt.mode = mode;
      auto enc = Encode(TensorView{h.data(), DType::kFloat16, shape}, opt);
      ASSERT_TRUE(enc.ok()) << enc.status().ToString();
      // Same bytes as the float32 tensor of the converted values, except the dtype byte (and CRC).
      auto enc32 = Encode(TensorView{hv.data(), DType::kFloat32, shape}, opt);
      ASSERT_TRUE(enc32.ok());
      ASSERT_EQ(enc->size(), enc32->size());
      EXPECT_EQ((*enc)[kOffDtype], 2);
      EXPECT_EQ((*enc32)[kOffDtype], 1);
      EXPECT_TRUE(std::equal(enc->begin() + kFixedHeaderBytes, enc->end() - 4, enc32->begin() + kFixedHeaderBytes));
      auto dec = Decode(enc->data(), enc->size());
      ASSERT_TRUE(dec.ok()) << dec.status().ToString();
      EXPECT_EQ(dec->dtype, DType::kFloat16);
      EXPECT_EQ(dec->shape, shape);
      auto info = Inspect(enc->data(), enc->size());
      ASSERT_TRUE(info.ok());
      EXPECT_EQ(info->dtype, DType::kFloat16);
      const float lo = *std::min_element(hv.begin(), hv.end()), hi = *std::max_element(hv.begin(), hv.end());
      const double s = (static_cast<double>(hi) - lo) / ((1 << opt.q) - 1);
      for (size_t i = 0; i < hv.size(); ++i) {
        ASSERT_LE(std::fabs(dec->values[i] - hv[i]), 0.5 * s * (1 + 1e-6) + 1e-6 * std::fabs(hv[i]))
            << iter << " " << i;
      }
    }
  }
  // Non-finite halves are rejected.
  for (uint16_t bad : {uint16_t{0x7c00}, uint16_t{0xfc00}, uint16_t{0x7e00}, uint16_t{0x7c01}}) {
    std::vector<uint16_t> h = {0x3c00, bad, 0x0000};
    auto enc = Encode(TensorView{h.data(), DType::kFloat16, {3}}, EncodeOptions());
    EXPECT_EQ(enc.status().code(), ErrorCode::kInvalidArgument) << bad;
  }
}

// ---------------------------------------------------------------------------------------------
// float16 conversion

// Reference: the value of every half, from its definition.
float ReferenceHalf(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float v;
  if (exp == 0) v = std::ldexp(static_cast<float>(mant), -24);
  else if (exp == 31) v = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  else v = std::ldexp(static_cast<float>(1024 + mant), exp - 25);
  return sign ? -v : v;
}

uint32_t Bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

TEST(Half, ExhaustiveHalfToFloatAndBack) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const uint16_t h = static_cast<uint16_t>(i);
    const float f = HalfToFloat(h);
    const float ref = ReferenceHalf(h);
    const bool nan = ((h >> 10) & 0x1f) == 31 && (h & 0x3ff) != 0;
    if (nan) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << h;
      const uint16_t back = FloatToHalf(f);
      ASSERT_EQ(back & 0x7c00, 0x7c00) << std::hex << h;
      ASSERT_NE(back & 0x3ff, 0) << std::hex << h;         // still a NaN
      ASSERT_EQ(back & 0x8000, h & 0x8000) << std::hex << h;  // sign kept
      continue;
    }
    ASSERT_EQ(Bits(f), Bits(ref)) << std::hex << h;  // also distinguishes -0 from +0
    ASSERT_EQ(FloatToHalf(f), h) << std::hex << h;
  }
}

// The bulk conversion (F16C where available) equals HalfToFloat on every non-NaN half, at every
// position of a vector and of the scalar tail.
TEST(Half, BulkConversionMatchesScalarOnEveryHalf) {
  std::vector<uint16_t> all(65536 + 5);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i * 40503u);  // odd: permutes 2^16
  std::vector<float> out(all.size());
  for (size_t offset : {size_t{0}, size_t{3}}) {
    HalvesToFloats(all.data() + offset, all.size() - offset, out.data());
    for (size_t i = 0; i + offset < all.size(); ++i) {
      const uint16_t h = all[i + offset];
      const float ref = HalfToFloat(h);
      if (std::isnan(ref)) {
        ASSERT_TRUE(std::isnan(out[i])) << std::hex << h;
        continue;
      }
      ASSERT_EQ(Bits(out[i]), Bits(ref)) << std::hex << h;
    }
  }
}

TEST(Half, ExhaustiveRoundingAtEveryMidpoint) {
  // Between every pair of adjacent finite halves (and above the largest one), the midpoint is
  // exact in float: it must round to even; one float ulp either side rounds to the nearer one.
  for (uint32_t h = 0; h < 0x7bff + 1; ++h) {
    const float lo = HalfToFloat(static_cast<uint16_t>(h));
    const float hi = h == 0x7bff ? 65536.f : HalfToFloat(static_cast<uint16_t>(h + 1));
    const float mid = (lo + hi) / 2;
    ASSERT_EQ(static_cast<double>(mid), (static_cast<double>(lo) + hi) / 2) << h;
    const uint16_t even = (h & 1) ? static_cast<uint16_t>(h + 1) : static_cast<uint16_t>(h);
    for (int sign : {0, 1}) {
      const float sg = sign ? -1.f : 1.f;
      const uint16_t sb = sign ? 0x8000 : 0;
      ASSERT_EQ(FloatToHalf(sg * mid), sb | even) << std::hex << h;
      ASSERT_EQ(FloatToHalf(sg * std::nextafter(mid, 0.f)), sb | h) << std::hex << h;
      ASSERT_EQ(FloatToHalf(sg * std::nextafter(mid, INFINITY)), sb | (h + 1)) << std::hex << h;
    }
  }
  // Far outside the range.
  EXPECT_EQ(FloatToHalf(1e10f), 0x7c00);
  EXPECT_EQ(FloatToHalf(-1e10f), 0xfc00);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::infinity()), 0x7c00);
  EXPECT_EQ(FloatToHalf(1e-30f), 0x0000);
  EXPECT_EQ(FloatToHalf(-1e-30f), 0x8000);
  EXPECT_EQ(FloatToHalf(std::numeric_limits<float>::denorm_min()), 0x0000);
}

TEST(Half, RandomFloatsRoundToNearest) {
  std::mt19937 rng(1);
  for (int i = 0; i < 200000; ++i) {
    uint32_t b = rng();
    float f;
    std::memcpy(&f, &b, 4);
    if (!std::isfinite(f) || std::fabs(f) >= 65520.f) continue;
    const uint16_t h = FloatToHalf(f);
    const double err = std::fabs(static_cast<double>(HalfToFloat(h)) - f);
    const uint16_t mag = h & 0x7fff;
    ASSERT_LT(mag, 0x7c00) << f;
    if (mag > 0) {
      ASSERT_LE(err, std::fabs(static_cast<double>(HalfToFloat(static_cast<uint16_t>(h - 1))) - f)) << f;
    }
    if (mag < 0x7bff) {
      ASSERT_LE(err, std::fabs(static_cast<double>(HalfToFloat(static_cast<uint16_t>(h + 1))) - f)) << f;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Invalid arguments

TEST(Encode, InvalidArguments) {
  const std::vector<float> x(16, 1.f);
  auto code = [&](const TensorView& t, int q = 4, Mode mode = Mode::kAuto) {
    EncodeOptions opt;
    opt.q = q;
    opt.mode = mode;
    return Encode(t, opt).status().code();
  };
  const void* p = x.data();
  EXPECT_EQ(code(TensorView{p, DType::kFloat32, {}}), ErrorCode::kInvalidArgument);                       // rank 0
  EXPECT_EQ(code(TensorView{p, DType::kFloat32, {1, 1, 1, 1, 1, 1, 1, 1, 1}}), ErrorCode::kInvalidArgument);  // 9
  EXPECT_EQ(code(TensorView{p, DType::kFloat32, {1, 1, 1, 1, 1, 1, 1, 16}}), ErrorCode::kOk);               // 8
  EXPECT_EQ(code(TensorView{p, DType::kFloat32, {4, -4}}), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(TensorView{p, DType::kFloat32, {-1}}), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(TensorView{p, DType::kFloat32, {0, -1}}), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(TensorView{nullptr, DType::kFloat32, {16}}), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(TensorView{nullptr, DType::kFloat16, {2, 8}}), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(TensorView{nullptr, DType::kFloat32, {0, 8}}), ErrorCode::kOk);
  EXPECT_EQ(code(TensorView{p, DType::kFloat32, {16}}, 0), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(TensorView{p, DType::kFloat32, {16}}, 9), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(TensorView{p, DType::kFloat32, {16}}, -1), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(TensorView{p, DType::kFloat32, {16}}, 4, static_cast<Mode>(5)), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(TensorView{p, static_cast<DType>(0), {16}}), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(TensorView{p, static_cast<DType>(3), {16}}), ErrorCode::kInvalidArgument);
  // Element counts of 2^32 and more, and dimensions above u32 (rejected before reading data).
  EXPECT_EQ(code(TensorView{p, DType::kFloat32, {65536, 65536}}), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(TensorView{p, DType::kFloat32, {int64_t{1} << 33}}), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(TensorView{p, DType::kFloat32, {0, int64_t{1} << 33}}), ErrorCode::kInvalidArgument);
  EXPECT_EQ(code(TensorView{p, DType::kFloat32, {1 << 16, 1 << 16, 1 << 16, 1 << 16}}), ErrorCode::kInvalidArgument);
  // Non-finite values, in every mode.
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    for (Mode mode : kAllModes) {
      std::vector<float> y = MakeData(100, Data::kSigned, 0.2, 1);
      y[37] = bad;
      EXPECT_EQ(code(TensorView{y.data(), DType::kFloat32, {10, 10}}, 4, mode), ErrorCode::kInvalidArgument);
      y.assign(1, bad);
      EXPECT_EQ(code(TensorView{y.data(), DType::kFloat32, {1}}, 4, mode), ErrorCode::kInvalidArgument);
    }
  }
  // The Encoder object reports the same and stays usable.
  Encoder enc;
  Bytes out;
  EncodeOptions opt;
  EXPECT_EQ(enc.Encode(TensorView{nullptr, DType::kFloat32, {3}}, opt, &out).code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(enc.Encode(TensorView{p, DType::kFloat32, {16}}, opt, &out).ok());
  // PaperCandidates validates the same way.
  EXPECT_EQ(enc.PaperCandidates(TensorView{p, DType::kFloat32, {}}, 4).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(enc.PaperCandidates(TensorView{p, DType::kFloat32, {16}}, 0).status().code(),
            ErrorCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Paper mode and auto

TEST(PaperCandidates, ConsistentWithEncode) {
  struct Case {
    std::vector<int64_t> shape;
    Data kind;
    double zf;
  };
  const std::vector<Case> cases = {{{8, 14, 14}, Data::kRelu, 0.5},  {{64, 7, 7}, Data::kRelu, 0.9},
                                   {{16, 16, 16}, Data::kSigned, 0.3}, {{97}, Data::kRelu, 0.5},
                                   {{2, 3}, Data::kUniformPositive, 0}, {{512, 14, 14}, Data::kRelu, 0.7}};
  Encoder enc;
  for (const auto& c : cases) {
    const auto x = MakeData(Product(c.shape), c.kind, c.zf, 31);
    const uint64_t t = x.size();
    for (int q = 1; q <= 8; ++q) {
      if (t > 10000 && q != 4 && q != 8) continue;
      const std::string what = "T=" + std::to_string(t) + " q=" + std::to_string(q);
      auto cands = enc.PaperCandidates(TensorView{x.data(), DType::kFloat32, c.shape}, q);
      ASSERT_TRUE(cands.ok()) << cands.status().ToString();
      const auto domain = PaperDomain(t, q);
      ASSERT_EQ(cands->size(), domain.size()) << what;
      std::vector<double> costs;
      size_t visited = 0;
      for (size_t i = 0; i < cands->size(); ++i) {
        const NCandidate& nc = (*cands)[i];
        ASSERT_EQ(nc.n, domain[i]) << what;
        ASSERT_EQ(uint64_t{nc.n} * nc.k, t) << what;
        ASSERT_NEAR(nc.cost, nc.len_d * nc.entropy, 1e-9 * nc.cost + 1e-12) << what;
        ASSERT_GE(nc.len_d, nc.n) << what;
        ASSERT_EQ((nc.len_d - nc.n) % 2, 0u) << what;
        ASSERT_GT(nc.coded_bytes, kFixedHeaderBytes + 4 * c.shape.size() + kChecksumBytes) << what;
        costs.push_back(nc.cost);
        if (nc.visited_by_algorithm1) {
          ASSERT_EQ(visited, i) << "visited candidates must be a prefix, " << what;
          ++visited;
        }
      }
      size_t want_visited = 0;
      const size_t a1 = Algorithm1Choice(costs, &want_visited);
      const size_t ex = ExhaustiveChoice(costs);
      EXPECT_EQ(visited, want_visited) << what;
      EXPECT_LE(costs[ex], costs[a1]) << what;
      for (double cost : costs) EXPECT_LE(costs[ex], cost) << what;
      // Encode's paper mode picks the same candidates and produces exactly their sizes.
      const Bytes b1 = MustEncode(x, c.shape, q, Mode::kPaper, NSearch::kAlgorithm1);
      const Bytes bx = MustEncode(x, c.shape, q, Mode::kPaper, NSearch::kExhaustive);
      EXPECT_EQ(b1.size(), (*cands)[a1].coded_bytes) << what;
      EXPECT_EQ(bx.size(), (*cands)[ex].coded_bytes) << what;
      auto i1 = Inspect(b1.data(), b1.size());
      auto ix = Inspect(bx.data(), bx.size());
      ASSERT_TRUE(i1.ok() && ix.ok());
      EXPECT_EQ(i1->layout, Layout::kPaper);
      EXPECT_EQ(i1->n, (*cands)[a1].n) << what;
      EXPECT_EQ(i1->k, (*cands)[a1].k) << what;
      EXPECT_EQ(ix->n, (*cands)[ex].n) << what;
      ASSERT_EQ(i1->sections.size(), 1u);
      EXPECT_EQ(i1->sections[0].name, "D");
      EXPECT_EQ(i1->sections[0].symbols, (*cands)[a1].len_d) << what;
    }
  }
  // A constant tensor has no candidates.
  std::vector<float> k(12, 3.f);
  auto none = enc.PaperCandidates(TensorView{k.data(), DType::kFloat32, {3, 4}}, 4);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(Auto, NeverLargerThanEachLayout) {
  std::mt19937 rng(77);
  for (int iter = 0; iter < 30; ++iter) {
    const std::vector<int64_t> shape = {1 + static_cast<int64_t>(rng() % 16), 1 + static_cast<int64_t>(rng() % 20),
                                        1 + static_cast<int64_t>(rng() % 20)};
    const auto x = MakeData(Product(shape), static_cast<Data>(iter % 3), 0.1 * (iter % 10), iter);
    for (int q : {1, 3, 4, 8}) {
      const size_t a = MustEncode(x, shape, q, Mode::kAuto).size();
      const size_t d = MustEncode(x, shape, q, Mode::kDense).size();
      const size_t s = MustEncode(x, shape, q, Mode::kSparse).size();
      const size_t c = MustEncode(x, shape, q, Mode::kContext).size();
      EXPECT_LE(a, d) << iter << " " << q;
      EXPECT_LE(a, s) << iter << " " << q;
      EXPECT_LE(a, c) << iter << " " << q;
      EXPECT_EQ(a, std::min({d, s, c})) << iter << " " << q;
    }
  }
}

TEST(Inspect, SectionsAddUp) {
  const std::vector<int64_t> shape = {6, 10, 10};
  const auto x = MakeData(600, Data::kRelu, 0.5, 4);
  const std::vector<std::pair<Mode, std::vector<std::string>>> want = {
      {Mode::kDense, {"q"}}, {Mode::kSparse, {"v", "c", "r"}}, {Mode::kPaper, {"D"}}, {Mode::kContext, {"context"}}};
  for (const auto& [mode, names] : want) {
    const Bytes b = MustEncode(x, shape, 4, mode);
    auto info = Inspect(b.data(), b.size());
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->version, 1);
    EXPECT_EQ(info->dtype, DType::kFloat32);
    EXPECT_EQ(info->layout, ExpectedLayout(mode));
    std::vector<std::string> got;
    size_t bytes = 0;
    for (const auto& s : info->sections) {
      got.push_back(s.name);
      bytes += s.table_bytes + s.payload_bytes;
    }
    EXPECT_EQ(got, names) << ModeName(mode);
    EXPECT_EQ(info->header_bytes + bytes, b.size());
    EXPECT_GE(info->header_bytes, kFixedHeaderBytes + 4 * shape.size() + kChecksumBytes);
    if (mode == Mode::kDense) {
      EXPECT_EQ(info->sections[0].symbols, 600u);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Decoder hardening

// A set of valid bitstreams covering every layout, dtypes, Q and stream kinds.
std::vector<std::pair<std::string, Bytes>> SampleStreams() {
  std::vector<std::pair<std::string, Bytes>> out;
  const std::vector<int64_t> s3 = {3, 5, 7};
  const auto relu = MakeData(105, Data::kRelu, 0.6, 1);
  const auto sig = MakeData(80, Data::kSigned, 0.2, 2);
  const auto wide = MakeData(300, Data::kRelu, 0.3, 3);
  for (Mode mode : {Mode::kDense, Mode::kSparse, Mode::kPaper, Mode::kContext}) {
    const std::string m = ModeName(mode);
    out.push_back({m + " relu q4", MustEncode(relu, s3, 4, mode)});
    out.push_back({m + " signed q8", MustEncode(sig, {2, 40}, 8, mode)});
    out.push_back({m + " q1", MustEncode(wide, {300}, 1, mode)});
  }
  out.push_back({"constant", MustEncode(std::vector<float>(6, 2.5f), {2, 3}, 4, Mode::kAuto)});
  out.push_back({"empty", MustEncode({}, {0, 4}, 4, Mode::kAuto)});
  std::vector<uint16_t> h(24);
  for (size_t i = 0; i < h.size(); ++i) h[i] = FloatToHalf(static_cast<float>(i % 7) - 2.f);
  EncodeOptions opt;
  opt.mode = Mode::kContext;
  out.push_back({"float16 context", Encode(TensorView{h.data(), DType::kFloat16, {4, 6}}, opt).value()});
  for (const auto& [name, b] : out) EXPECT_EQ(DecodeCode(b), ErrorCode::kOk) << name;
  return out;
}

TEST(DecoderHardening, EveryPrefixIsTruncated) {
  int prefixes = 0;
  for (const auto& [name, b] : SampleStreams()) {
    for (size_t len = 0; len < b.size(); ++len) {
      DecodedTensor out;
      ASSERT_EQ(DecodeCopy(b, len, &out).code(), ErrorCode::kTruncated) << name << " len=" << len;
      ASSERT_EQ(Inspect(b.data(), len).status().code(), ErrorCode::kTruncated) << name << " len=" << len;
      ++prefixes;
    }
  }
  EXPECT_GT(prefixes, 1000);
  DecodedTensor out;
  Decoder dec;
  EXPECT_EQ(dec.Decode(nullptr, 0, &out).code(), ErrorCode::kTruncated);
  EXPECT_EQ(dec.Decode(nullptr, 30, &out).code(), ErrorCode::kInvalidArgument);
}

TEST(DecoderHardening, RandomSingleBitFlipsAreRejected) {
  const auto streams = SampleStreams();
  std::mt19937 rng(2718);
  const int kFlips = 3000;
  for (int i = 0; i < kFlips; ++i) {
    const auto& [name, good] = streams[rng() % streams.size()];
    Bytes b = good;
    const size_t pos = rng() % b.size();
    const int bit = static_cast<int>(rng() % 8);
    b[pos] ^= static_cast<uint8_t>(1u << bit);
    const ErrorCode code = DecodeCode(b);
    const std::string what = name + " byte " + std::to_string(pos) + " bit " + std::to_string(bit);
    ASSERT_EQ(code, InspectCode(b)) << what;
    if (pos < 4) {
      ASSERT_EQ(code, ErrorCode::kBadMagic) << what;
    } else if (pos == kOffVersion) {
      ASSERT_EQ(code, ErrorCode::kUnsupportedVersion) << what;
    } else if (pos == kOffFlags || pos == kOffReserved || pos == kOffReserved + 1) {
      ASSERT_EQ(code, ErrorCode::kReservedBits) << what;
    } else if (pos >= kFixedHeaderBytes) {
      // Shape, layout body and checksum are covered by the CRC.
      ASSERT_EQ(code, ErrorCode::kChecksumMismatch) << what;
    } else if (pos >= kOffBodySize) {
      // A larger body_size runs past the input, a smaller one misplaces the checksum.
      ASSERT_TRUE(code == ErrorCode::kTruncated || code == ErrorCode::kChecksumMismatch) << what << " "
                                                                                          << ErrorCodeName(code);
    } else {
      // dtype, rank, q, layout, scale, zero point: out of range, or caught by the CRC.
      ASSERT_TRUE(code == ErrorCode::kBadHeaderField || code == ErrorCode::kChecksumMismatch)
          << what << " " << ErrorCodeName(code);
    }
  }
}

TEST(DecoderHardening, OutOfRangeHeaderFieldsWithValidCrc) {
  const auto x = MakeData(105, Data::kRelu, 0.5, 9);
  const Bytes good = MustEncode(x, {3, 5, 7}, 4, Mode::kDense);
  const Bytes constant = MustEncode(std::vector<float>(4, 1.f), {4}, 4, Mode::kAuto);
  ASSERT_EQ(constant[kOffLayout], static_cast<uint8_t>(Layout::kConstant));
  auto edit = [](const Bytes& base, auto f) {
    Bytes b = base;
    f(&b);
    FixCrc(&b);
    return b;
  };
  auto u8 = [&](size_t off, uint8_t v, const Bytes& base) { return edit(base, [&](Bytes* b) { (*b)[off] = v; }); };
  auto f32 = [&](float v, const Bytes& base) { return edit(base, [&](Bytes* b) { Put<float>(b, kOffScale, v); }); };
  struct Case {
    std::string name;
    Bytes bytes;
    ErrorCode want;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const std::vector<Case> cases = {
      {"magic", u8(kOffMagic + 3, 'T', good), ErrorCode::kBadMagic},
      {"magic0", u8(kOffMagic, 0, good), ErrorCode::kBadMagic},
      {"version 2", u8(kOffVersion, 2, good), ErrorCode::kUnsupportedVersion},
      {"version 0", u8(kOffVersion, 0, good), ErrorCode::kUnsupportedVersion},
      {"version 255", u8(kOffVersion, 255, good), ErrorCode::kUnsupportedVersion},
      {"flags", u8(kOffFlags, 1, good), ErrorCode::kReservedBits},
      {"flags 0x80", u8(kOffFlags, 0x80, good), ErrorCode::kReservedBits},
      {"reserved lo", u8(kOffReserved, 1, good), ErrorCode::kReservedBits},
      {"reserved hi", u8(kOffReserved + 1, 0x80, good), ErrorCode::kReservedBits},
      {"dtype 0", u8(kOffDtype, 0, good), ErrorCode::kBadHeaderField},
      {"dtype 3", u8(kOffDtype, 3, good), ErrorCode::kBadHeaderField},
      {"rank 0", u8(kOffRank, 0, good), ErrorCode::kBadHeaderField},
      {"rank 9", u8(kOffRank, 9, good), ErrorCode::kBadHeaderField},
      {"q 0", u8(kOffQ, 0, good), ErrorCode::kBadHeaderField},
      {"q 9", u8(kOffQ, 9, good), ErrorCode::kBadHeaderField},
      {"layout 5", u8(kOffLayout, 5, good), ErrorCode::kBadHeaderField},
      {"layout 255", u8(kOffLayout, 255, good), ErrorCode::kBadHeaderField},
      {"scale NaN", f32(nan, good), ErrorCode::kBadHeaderField},
      {"scale -NaN", f32(-nan, good), ErrorCode::kBadHeaderField},
      {"scale inf", f32(inf, good), ErrorCode::kBadHeaderField},
      {"scale 0", f32(0.f, good), ErrorCode::kBadHeaderField},
      {"scale -0", f32(-0.f, good), ErrorCode::kBadHeaderField},
      {"scale negative", f32(-0.5f, good), ErrorCode::kBadHeaderField},
      {"constant with scale", f32(1.f, constant), ErrorCode::kBadHeaderField},
      {"constant with zero point", edit(constant, [](Bytes* b) { Put<int32_t>(b, kOffZeroPoint, 1); }),
       ErrorCode::kBadHeaderField},
      {"dense with scale 0 as constant", u8(kOffLayout, 0, good), ErrorCode::kBadHeaderField},
      // body_size larger than the input: the checksum position is unknown, TRUNCATED.
      {"body_size +1", [&] {
         Bytes b = good;
         Put<uint32_t>(&b, kOffBodySize, Get<uint32_t>(b, kOffBodySize) + 1);
         return b;
       }(), ErrorCode::kTruncated},
      {"body_size max", [&] {
         Bytes b = good;
         Put<uint32_t>(&b, kOffBodySize, 0xFFFFFFFFu);
         return b;
       }(), ErrorCode::kTruncated},
      // body_size one smaller, with the checksum moved accordingly: one byte trails.
      {"body_size -1", [&] {
         Bytes b = good;
         Put<uint32_t>(&b, kOffBodySize, Get<uint32_t>(b, kOffBodySize) - 1);
         FixCrc(&b);
         return b;
       }(), ErrorCode::kTrailingBytes},
      // Validation order: the first failing check wins.
      {"magic+version", edit(good, [](Bytes* b) { (*b)[0] = 0; (*b)[kOffVersion] = 2; }), ErrorCode::kBadMagic},
      {"version+flags", edit(good, [](Bytes* b) { (*b)[kOffVersion] = 2; (*b)[kOffFlags] = 1; }),
       ErrorCode::kUnsupportedVersion},
      {"flags+rank", edit(good, [](Bytes* b) { (*b)[kOffFlags] = 1; (*b)[kOffRank] = 0; }), ErrorCode::kReservedBits},
      {"rank+size", [&] {
         Bytes b = good;
         b[kOffRank] = 0;
         Put<uint32_t>(&b, kOffBodySize, 0xFFFFFFF0u);
         return b;
       }(), ErrorCode::kBadHeaderField},
      {"rank+crc", [&] {
         Bytes b = good;
         b[kOffRank] = 9;  // CRC left stale
         return b;
       }(), ErrorCode::kBadHeaderField},
      {"size+crc", [&] {
         Bytes b = good;
         b.back() ^= 1;
         Put<uint32_t>(&b, kOffBodySize, Get<uint32_t>(b, kOffBodySize) + 100);
         return b;
       }(), ErrorCode::kTruncated},
      {"crc+trailing", [&] {
         Bytes b = good;
         b[30] ^= 1;
         b.push_back(0);
         return b;
       }(), ErrorCode::kChecksumMismatch},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(DecodeCode(c.bytes), c.want) << c.name << ": got " << ErrorCodeName(DecodeCode(c.bytes));
    EXPECT_EQ(InspectCode(c.bytes), c.want) << c.name;
  }
  // A valid rank change (with CRC fixed) reaches the body, which is then inconsistent. (Small
  // limits: body bytes read as dimensions may declare millions of elements.)
  DecodeLimits limits;
  limits.max_elements = 1 << 20;
  for (uint8_t rank : {1, 2, 4, 8}) {
    const Bytes b = u8(kOffRank, rank, good);
    const ErrorCode code = DecodeCode(b, limits);
    EXPECT_TRUE(code == ErrorCode::kCorruptPayload || code == ErrorCode::kTruncated ||
                code == ErrorCode::kLimitExceeded)
        << int{rank} << " " << ErrorCodeName(code);
  }
}

TEST(DecoderHardening, TrailingBytes) {
  for (const auto& [name, b] : SampleStreams()) {
    for (size_t extra : {1, 2, 4, 100}) {
      Bytes t = b;
      t.resize(b.size() + extra, 0);
      EXPECT_EQ(DecodeCode(t), ErrorCode::kTrailingBytes) << name << " +" << extra;
      EXPECT_EQ(InspectCode(t), ErrorCode::kTrailingBytes) << name;
    }
  }
}

TEST(DecoderHardening, LimitExceeded) {
  const auto x = MakeData(105, Data::kRelu, 0.5, 9);
  for (Mode mode : {Mode::kDense, Mode::kSparse, Mode::kPaper, Mode::kContext}) {
    const Bytes b = MustEncode(x, {3, 5, 7}, 4, mode);
    DecodeLimits small;
    small.max_elements = 104;
    EXPECT_EQ(DecodeCode(b, small), ErrorCode::kLimitExceeded) << ModeName(mode);
    EXPECT_EQ(InspectCode(b, small), ErrorCode::kLimitExceeded);
    small.max_elements = 105;
    EXPECT_EQ(DecodeCode(b, small), ErrorCode::kOk);
    small.max_elements = 0;
    EXPECT_EQ(DecodeCode(b, small), ErrorCode::kLimitExceeded);
  }
  // A huge declared shape (valid CRC) is refused before anything is allocated.
  Bytes b = MustEncode(x, {3, 5, 7}, 4, Mode::kDense);
  for (int i = 0; i < 3; ++i) Put<uint32_t>(&b, kFixedHeaderBytes + 4 * i, 0xFFFFFFFFu);
  FixCrc(&b);
  EXPECT_EQ(DecodeCode(b), ErrorCode::kLimitExceeded);
  // A 0 dimension keeps the product at 0 whatever follows: no limit is exceeded.
  Bytes z = MustEncode({}, {0, 4}, 4, Mode::kAuto);
  Put<uint32_t>(&z, kFixedHeaderBytes + 4, 0xFFFFFFFFu);  // 0 x 2^32-1 elements: still 0
  FixCrc(&z);
  EXPECT_EQ(DecodeCode(z), ErrorCode::kOk);
}

// Mutates body bytes (shape and layout body) and fixes the CRC, so the layout parser sees the
// damage. Every result must be a clean error or a well-formed tensor.
TEST(DecoderHardening, CorruptBodiesWithValidCrc) {
  const auto relu = MakeData(240, Data::kRelu, 0.6, 21);
  const auto sig = MakeData(240, Data::kSigned, 0.1, 22);
  DecodeLimits limits;
  limits.max_elements = 1 << 16;
  Decoder dec(limits);  // reused across all mutations
  std::mt19937 rng(314159);
  for (Mode mode : {Mode::kDense, Mode::kSparse, Mode::kPaper, Mode::kContext, Mode::kAuto}) {
    std::vector<Bytes> bases = {MustEncode(relu, {4, 6, 10}, 4, mode), MustEncode(sig, {240}, 8, mode),
                                MustEncode(relu, {2, 120}, 2, mode)};
    if (mode == Mode::kAuto) bases = {MustEncode({1.f, 1.f, 1.f}, {3}, 4, mode), MustEncode({}, {0, 2}, 4, mode)};
    int rejected = 0, accepted = 0;
    const int kMutations = 3000;
    for (int i = 0; i < kMutations; ++i) {
      Bytes b = bases[i % bases.size()];
      const size_t body = Get<uint32_t>(b, kOffBodySize);
      const int kind = static_cast<int>(rng() % 4);
      if (kind == 0) {  // one bit
        const size_t pos = kFixedHeaderBytes + rng() % body;
        b[pos] ^= static_cast<uint8_t>(1u << (rng() % 8));
      } else if (kind == 1) {  // a few random bytes
        for (int k = 0, m = 1 + static_cast<int>(rng() % 4); k < m; ++k) {
          b[kFixedHeaderBytes + rng() % body] = static_cast<uint8_t>(rng());
        }
      } else if (kind == 2 && body > 0) {  // delete a body byte
        b.erase(b.begin() + kFixedHeaderBytes + rng() % body);
        Put<uint32_t>(&b, kOffBodySize, static_cast<uint32_t>(body - 1));
        b.resize(kFixedHeaderBytes + body - 1 + kChecksumBytes);
      } else {  // insert a byte
        b.insert(b.begin() + kFixedHeaderBytes + rng() % (body + 1), static_cast<uint8_t>(rng()));
        Put<uint32_t>(&b, kOffBodySize, static_cast<uint32_t>(body + 1));
      }
      FixCrc(&b);
      DecodedTensor out;
      const Status s = dec.Decode(b.data(), b.size(), &out);
      const ErrorCode inspect = Inspect(b.data(), b.size(), limits).status().code();
      ASSERT_EQ(s.code(), inspect) << ModeName(mode) << " mutation " << i;
      if (s.ok()) {
        ASSERT_EQ(out.values.size(), Product(out.shape));
        ++accepted;
      } else {
        ASSERT_TRUE(s.code() == ErrorCode::kCorruptPayload || s.code() == ErrorCode::kTruncated ||
                    s.code() == ErrorCode::kLimitExceeded)
            << ModeName(mode) << " mutation " << i << ": " << s.ToString();
        ++rejected;
      }
    }
    // Entropy-coded layouts detect nearly all damage (end-of-block state checks).
    if (mode != Mode::kAuto) {
      EXPECT_GT(rejected, kMutations * 9 / 10) << ModeName(mode);
    }
    EXPECT_EQ(rejected + accepted, kMutations);
    // The reused decoder still decodes a valid stream correctly.
    DecodedTensor out;
    ASSERT_TRUE(dec.Decode(bases[0].data(), bases[0].size(), &out).ok());
    auto fresh = Decode(bases[0].data(), bases[0].size());
    ASSERT_TRUE(fresh.ok());
    EXPECT_EQ(out.values, fresh->values);
  }
}

}  // namespace
}  // namespace splitrans::codec

namespace splitrans::codec {
namespace {

TEST(PeekShape, ReturnsShapeWithoutDecodingAndRejectsCorruption) {
  std::vector<float> x(3 * 5 * 7);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 11);
  auto enc = Encode(TensorView{x.data(), DType::kFloat32, {3, 5, 7}}, EncodeOptions{});
  ASSERT_TRUE(enc.ok());
  std::vector<int64_t> shape;
  ASSERT_TRUE(PeekShape(enc->data(), enc->size(), &shape).ok());
  EXPECT_EQ(shape, (std::vector<int64_t>{3, 5, 7}));
  std::vector<uint8_t> bad = *enc;
  bad[bad.size() / 2] ^= 0x10;
  EXPECT_EQ(PeekShape(bad.data(), bad.size(), &shape).code(), ErrorCode::kChecksumMismatch);
  EXPECT_EQ(PeekShape(enc->data(), 10, &shape).code(), ErrorCode::kTruncated);
  DecodeLimits small;
  small.max_elements = 100;
  EXPECT_EQ(PeekShape(enc->data(), enc->size(), &shape, small).code(), ErrorCode::kLimitExceeded);
}

}  // namespace
}  // namespace splitrans::codec

namespace splitrans::codec {
namespace {

// Auto mode skips dense and sparse with lower bounds on their sizes; the bounds must never
// exceed what those layouts really produce (else auto could miss the smallest layout).
TEST(Auto, LowerBoundsNeverExceedTheLayoutSizes) {
  std::mt19937 rng(1234);
  BoundsScratch scratch;
  for (int iter = 0; iter < 40; ++iter) {
    const std::vector<int64_t> shape = {1 + static_cast<int64_t>(rng() % 24), 1 + static_cast<int64_t>(rng() % 30),
                                        1 + static_cast<int64_t>(rng() % 30)};
    const uint64_t t = Product(shape);
    const auto x = MakeData(t, static_cast<Data>(iter % 3), 0.1 * (iter % 10), 100 + iter);
    for (int q : {1, 2, 3, 4, 6, 8}) {
      QuantParams qp;
      ASSERT_TRUE(ComputeQuantParams(x.data(), t, q, &qp).ok());
      if (qp.constant) continue;
      std::vector<uint8_t> qv(t);
      Quantize(x.data(), t, qp, q, qv.data());
      const AutoBounds b = LayoutLowerBounds(qv.data(), t, q, shape.size(), SIZE_MAX, &scratch);
      const size_t d = MustEncode(x, shape, q, Mode::kDense).size();
      const size_t s = MustEncode(x, shape, q, Mode::kSparse).size();
      EXPECT_LE(b.dense, d) << iter << " q=" << q;
      EXPECT_LE(b.sparse, s) << iter << " q=" << q;
      // Not vacuous: the bounds are within a few percent (plus table bytes) of the sizes.
      EXPECT_GE(b.dense + b.dense / 10 + 2 * (size_t{1} << q) + 64, d) << iter << " q=" << q;
    }
  }
}

// Larger tensors, where auto's pruning actually skips layouts: its output is still exactly the
// smallest of the forced layouts (ties: dense before context before sparse).
// The sparse lower bound counts the value stream's table (up to 2^Q bytes). Where that table
// decides (dense signed tensors, where sparse is close to dense; sparse ones with many distinct
// values), auto must still pick exactly the smallest layout.
TEST(Auto, SparseBoundWithValueTableKeepsTheExactChoice) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<float> unit(0.f, 1.f);
  for (int iter = 0; iter < 24; ++iter) {
    const std::vector<int64_t> shape = {1 + iter % 4, 24 + static_cast<int64_t>(rng() % 200)};
    const float zeros = std::vector<float>{0.f, 0.02f, 0.5f, 0.9f, 0.97f, 0.995f}[iter % 6];
    std::vector<float> x(Product(shape));
    for (float& v : x) v = unit(rng) < zeros ? 0.f : (iter % 2 ? normal(rng) : std::fabs(normal(rng)) * 40.f);
    for (int q = 1; q <= 8; ++q) {
      const size_t a = MustEncode(x, shape, q, Mode::kAuto).size();
      const size_t d = MustEncode(x, shape, q, Mode::kDense).size();
      const size_t s = MustEncode(x, shape, q, Mode::kSparse).size();
      const size_t c = MustEncode(x, shape, q, Mode::kContext).size();
      EXPECT_EQ(a, std::min({d, s, c})) << iter << " q=" << q;
    }
  }
}

TEST(Auto, PrunedChoiceEqualsExhaustiveOnLargerTensors) {
  std::mt19937 rng(99);
  for (int iter = 0; iter < 8; ++iter) {
    const std::vector<int64_t> shape = {8 + static_cast<int64_t>(rng() % 64), 14, 14 + static_cast<int64_t>(rng() % 3)};
    std::vector<float> x = MakeData(Product(shape), static_cast<Data>(iter % 3), 0.2 + 0.1 * (iter % 6), 500 + iter);
    if (iter % 2) {  // spatially smooth post-ReLU maps: the context layout wins these
      for (size_t i = 0; i < x.size(); ++i) {
        const double c = static_cast<double>(i / (shape[1] * shape[2])), y = static_cast<double>((i / shape[2]) % shape[1]),
                     xx = static_cast<double>(i % shape[2]);
        const double v = std::sin(0.3 * xx + 0.7 * c) * std::cos(0.2 * y - 0.3 * c) + 0.05 * x[i] - 0.2;
        x[i] = static_cast<float>(v > 0 ? v : 0);
      }
    }
    for (int q : {2, 4, 8}) {
      const Bytes a = MustEncode(x, shape, q, Mode::kAuto);
      const size_t d = MustEncode(x, shape, q, Mode::kDense).size();
      const size_t s = MustEncode(x, shape, q, Mode::kSparse).size();
      const size_t c = MustEncode(x, shape, q, Mode::kContext).size();
      EXPECT_EQ(a.size(), std::min({d, s, c})) << iter << " q=" << q;
      const Layout want = d <= std::min(s, c) ? Layout::kDense : (c <= s ? Layout::kContext : Layout::kSparse);
      EXPECT_EQ(a[9], static_cast<uint8_t>(want)) << iter << " q=" << q;
    }
  }
}

}  // namespace
}  // namespace splitrans::codec

namespace splitrans::codec {
namespace {

// The semi-static context model (tensors above 2^16 elements) decodes to exactly the values of
// the dense layout, for every Q (with and without raw bits), zero point 0 (the post-ReLU fast
// path) or not, and sparse or smooth maps (level or med predictor), with a partial last group.
TEST(ContextLayout, SemiStaticDecodesLikeDense) {
  const std::vector<int64_t> shape = {2, 11, 60, 58};  // 22 maps: groups of 4, last of 2
  const uint64_t t = Product(shape);
  ASSERT_GT(t, uint64_t{1} << 16);
  for (int variant = 0; variant < 4; ++variant) {
    std::vector<float> x = MakeData(t, Data::kRelu, 0.6, 900 + variant);
    if (variant >= 2) {  // smooth maps
      for (uint64_t i = 0; i < t; ++i) {
        const double c = static_cast<double>(i / (60 * 58)), y = static_cast<double>((i / 58) % 60),
                     xx = static_cast<double>(i % 58);
        x[i] = static_cast<float>(std::max(0.0, std::sin(0.2 * xx + c) * std::cos(0.15 * y - 0.5 * c) + 0.02 * x[i]));
      }
    }
    if (variant % 2) for (auto& v : x) v -= 0.3f;  // zero point > 0
    for (int q = 1; q <= 8; ++q) {
      const Bytes c = MustEncode(x, shape, q, Mode::kContext);
      const Bytes d = MustEncode(x, shape, q, Mode::kDense);
      ASSERT_EQ(c[9], static_cast<uint8_t>(Layout::kContext));
      ASSERT_GT(c.size(), 24 + 4 * shape.size());
      EXPECT_EQ(c[24 + 4 * shape.size()], 0) << "expected the semi-static model";
      auto dc = Decode(c.data(), c.size());
      auto dd = Decode(d.data(), d.size());
      ASSERT_TRUE(dc.ok()) << dc.status().ToString() << " variant " << variant << " q=" << q;
      ASSERT_TRUE(dd.ok()) << dd.status().ToString();
      ASSERT_EQ(dc->values.size(), dd->values.size());
      for (size_t i = 0; i < dc->values.size(); ++i) {
        ASSERT_EQ(Bits(dc->values[i]), Bits(dd->values[i])) << "variant " << variant << " q=" << q << " i=" << i;
      }
    }
  }
}

}  // namespace
}  // namespace splitrans::codec

// Every SIMD level (codec/cpu_features.h), forced in turn with the process-wide cap, gives the
// scalar path's results: quantizer parameters and symbols, dequantized values, histograms, rANS
// stream bytes and decodes, whole bitstreams in every mode and Q, CRC32C and float16 input.
// Levels the host lacks are skipped (GTEST_SKIP) one by one; the scalar level always runs.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "codec/byte_io.h"
#include "codec/codec.h"
#include "codec/cpu_features.h"
#include "codec/crc32c.h"
#include "codec/quantize.h"
#include "codec/rans_stream.h"
#include "codec/simd_test_util.h"
#include "codec/wire.h"

namespace splitrans::codec {
namespace {

// Lengths around the vector widths (8 and 16 floats, 32 and 64 bytes) and their multiples.
const std::vector<size_t> kLengths = {0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 100, 127, 128, 129,
                                      255, 1000, 4095, 4096, 4097, 10007};
// Offsets into an aligned buffer: the kernels must accept any element alignment.
const std::vector<size_t> kOffsets = {0, 1, 3, 5};

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// The same floats bit for bit (NaN payloads included).
::testing::AssertionResult SameFloats(const float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (Bits(a[i]) != Bits(b[i])) {
      return ::testing::AssertionFailure() << "element " << i << " of " << n << ": " << a[i] << " vs " << b[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// Random floats of a few kinds: 0 uniform signed, 1 post-ReLU (many zeros), 2 small integers
// times 0.25 (exact grid points and ties), 3 wide magnitudes.
std::vector<float> Floats(size_t n, int kind, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-3.f, 5.f);
  std::uniform_int_distribution<int> k(-40, 40);
  std::vector<float> x(n);
  for (auto& v : x) {
    switch (kind) {
      case 0: v = u(rng); break;
      case 1: v = std::max(0.f, u(rng) - 2.f); break;
      case 2: v = 0.25f * static_cast<float>(k(rng)); break;
      default: v = std::ldexp(u(rng), k(rng)); break;
    }
  }
  return x;
}

std::string Where(size_t n, size_t off, int q) {
  return "n=" + std::to_string(n) + " offset=" + std::to_string(off) + " q=" + std::to_string(q);
}

class SimdTest : public SimdLevelTest {};
INSTANTIATE_TEST_SUITE_P(Levels, SimdTest, ::testing::ValuesIn(AllSimdLevels()), SimdLevelParamName);

// --- The cap itself ---

TEST(SimdCap, LowersButNeverRaisesTheHostLevel) {
  const SimdLevel before = SimdCap();
  for (SimdLevel l : AllSimdLevels()) {
    SetSimdCap(l);
    EXPECT_EQ(SimdCap(), l);
    EXPECT_EQ(ActiveSimdLevel(), l < HostSimdLevel() ? l : HostSimdLevel()) << SimdLevelName(l);
  }
  EXPECT_EQ(SetSimdCap(before), SimdLevel::kAvx512);  // returns the previous cap
  EXPECT_EQ(SimdCap(), before);
}

TEST(SimdCap, NamesParse) {
  for (SimdLevel l : AllSimdLevels()) {
    SimdLevel got = SimdLevel::kScalar;
    EXPECT_TRUE(ParseSimdLevel(SimdLevelName(l), &got)) << SimdLevelName(l);
    EXPECT_EQ(got, l);
  }
  SimdLevel got = SimdLevel::kScalar;
  EXPECT_TRUE(ParseSimdLevel("native", &got));
  EXPECT_EQ(got, kMaxSimdLevel);
  for (const char* bad : {"", "AVX2", "avx-512", "sse", "avx2 ", "none"}) {
    EXPECT_FALSE(ParseSimdLevel(bad, &got)) << '"' << bad << '"';
  }
}

// Run by ctest four ways (codec/CMakeLists.txt): SPLITRANS_SIMD unset (native), "scalar", "avx2" and
// an unrecognized value, which the codec's entry points refuse.
TEST(SimdEnvironment, CapFollowsSplitransSimd) {
  const char* env = std::getenv("SPLITRANS_SIMD");
  const std::string v = env ? env : "";
  SimdLevel want = kMaxSimdLevel;
  const bool valid = v.empty() || ParseSimdLevel(v, &want);
  if (valid) {
    EXPECT_TRUE(SimdEnvironmentStatus().ok()) << SimdEnvironmentStatus().ToString();
    EXPECT_EQ(SimdCap(), want) << "SPLITRANS_SIMD=" << v;
    return;
  }
  const Status& st = SimdEnvironmentStatus();
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(st.message().find("SPLITRANS_SIMD=\"" + v + "\""), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("scalar, sse42, avx2, avx512, native"), std::string::npos) << st.message();
  EXPECT_EQ(SimdCap(), kMaxSimdLevel);  // the kernels run uncapped; the entry points refuse
  const std::vector<float> x(24, 1.f);
  const TensorView t{x.data(), DType::kFloat32, {2, 3, 4}};
  auto enc = Encode(t, EncodeOptions());
  EXPECT_EQ(enc.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(enc.status().message(), st.message());
  Encoder encoder;
  EXPECT_EQ(encoder.PaperCandidates(t, 4).status().code(), ErrorCode::kInvalidArgument);
  const uint8_t bytes[64] = {};
  EXPECT_EQ(Decode(bytes, sizeof(bytes)).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(Inspect(bytes, sizeof(bytes)).status().code(), ErrorCode::kInvalidArgument);
  std::vector<int64_t> shape;
  EXPECT_EQ(PeekShape(bytes, sizeof(bytes), &shape).code(), ErrorCode::kInvalidArgument);
  Decoder decoder;
  float out[24];
  EXPECT_EQ(decoder.DecodeInto(bytes, sizeof(bytes), out, 24, &shape).code(), ErrorCode::kInvalidArgument);
}

// --- Quantizer ---

TEST_P(SimdTest, QuantParamsAndSymbolsMatchScalar) {
  std::vector<float> buf(10007 + 16);
  for (int kind = 0; kind < 4; ++kind) {
    for (size_t n : kLengths) {
      for (size_t off : kOffsets) {
        const std::vector<float> v = Floats(n, kind, static_cast<uint32_t>(n * 31 + off + 1000 * kind));
        std::copy(v.begin(), v.end(), buf.begin() + off);
        const float* x = buf.data() + off;
        for (int q = kMinQ; q <= kMaxQ; ++q) {
          SCOPED_TRACE(Where(n, off, q) + " kind=" + std::to_string(kind));
          QuantParams want, got;
          const Status sw = Scalar([&] { return ComputeQuantParams(x, n, q, &want); });
          const Status sg = ComputeQuantParams(x, n, q, &got);
          ASSERT_EQ(sg.ToString(), sw.ToString());
          EXPECT_EQ(got.constant, want.constant);
          EXPECT_EQ(Bits(got.constant_value), Bits(want.constant_value));
          EXPECT_EQ(Bits(got.scale), Bits(want.scale));
          EXPECT_EQ(got.zero_point, want.zero_point);
          if (!sw.ok() || want.constant) continue;
          std::vector<uint8_t> qw(n + 1, 0xAA), qg(n + 1, 0xAA);  // + a guard byte
          Scalar([&] { Quantize(x, n, want, q, qw.data()); });
          Quantize(x, n, got, q, qg.data());
          ASSERT_EQ(qg, qw);
        }
      }
    }
  }
}

// Quantize with chosen parameters: exact ties (x / s + z = k + 0.5, rounded to even), values
// beyond both ends of the grid (clamped), -0, subnormals and huge values.
TEST_P(SimdTest, QuantizeTiesAndClampsMatchScalar) {
  std::vector<float> x;
  for (int k = -20; k <= 600; ++k) x.push_back(0.5f * static_cast<float>(k));  // s = 0.5: every other one a tie
  for (float v : {-0.f, 0.f, FLT_MIN, -FLT_MIN, 1e-40f, -1e-40f, 1e30f, -1e30f, FLT_MAX, -FLT_MAX}) x.push_back(v);
  std::mt19937 rng(7);
  std::shuffle(x.begin(), x.end(), rng);
  for (const QuantParams& p : {QuantParams{false, 0, 1.f, 0}, QuantParams{false, 0, 2.f, 3},
                               QuantParams{false, 0, 0.25f, -7}, QuantParams{false, 0, 1e-3f, 100000}}) {
    for (int q = kMinQ; q <= kMaxQ; ++q) {
      for (size_t off = 0; off < 4; ++off) {
        SCOPED_TRACE(Where(x.size() - off, off, q) + " s=" + std::to_string(p.scale));
        std::vector<uint8_t> qw(x.size() - off), qg(x.size() - off);
        Scalar([&] { Quantize(x.data() + off, qw.size(), p, q, qw.data()); });
        Quantize(x.data() + off, qg.size(), p, q, qg.data());
        ASSERT_EQ(qg, qw);
      }
    }
  }
}

// NaN and +-inf anywhere (vector body, tail, first, last) are refused with the scalar path's
// message; so is a range too wide for a float32 scale.
TEST_P(SimdTest, NonFiniteAndHugeRangesRefusedLikeScalar) {
  const float bad[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                       -std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::signaling_NaN()};
  for (size_t n : {1, 7, 8, 9, 16, 33, 100, 1000}) {
    for (size_t pos : {size_t{0}, size_t{5}, size_t{8}, size_t{15}, size_t{31}, size_t{32}, n - 1}) {
      if (pos >= n) continue;
      for (float b : bad) {
        std::vector<float> x = Floats(n, 0, static_cast<uint32_t>(n + pos));
        x[pos] = b;
        for (int q : {1, 4, 8}) {
          SCOPED_TRACE(Where(n, 0, q) + " bad at " + std::to_string(pos));
          QuantParams pw, pg;
          const Status sw = Scalar([&] { return ComputeQuantParams(x.data(), n, q, &pw); });
          const Status sg = ComputeQuantParams(x.data(), n, q, &pg);
          EXPECT_EQ(sw.code(), ErrorCode::kInvalidArgument);
          EXPECT_EQ(sg.ToString(), sw.ToString());
        }
      }
    }
  }
  std::vector<float> wide(40, 0.f);
  wide[3] = -FLT_MAX;
  wide[37] = FLT_MAX;
  QuantParams pw, pg;
  const Status sw = Scalar([&] { return ComputeQuantParams(wide.data(), wide.size(), 1, &pw); });
  EXPECT_EQ(sw.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ComputeQuantParams(wide.data(), wide.size(), 1, &pg).ToString(), sw.ToString());
}

TEST_P(SimdTest, ConstantTensorsMatchScalar) {
  for (float c : {0.f, -0.f, 1.5f, -3.f, 1e-42f, -3e38f}) {
    for (size_t n : kLengths) {
      if (n == 0) continue;
      const std::vector<float> x(n, c);
      for (int q = kMinQ; q <= kMaxQ; ++q) {
        SCOPED_TRACE(Where(n, 0, q) + " c=" + std::to_string(c));
        QuantParams pw, pg;
        ASSERT_TRUE(Scalar([&] { return ComputeQuantParams(x.data(), n, q, &pw); }).ok());
        ASSERT_TRUE(ComputeQuantParams(x.data(), n, q, &pg).ok());
        EXPECT_TRUE(pg.constant);
        EXPECT_EQ(Bits(pg.constant_value), Bits(pw.constant_value));
      }
    }
  }
}

TEST_P(SimdTest, DequantizeMatchesScalar) {
  std::mt19937 rng(11);
  std::vector<uint8_t> sym(10007 + 8);
  std::vector<float> want(10007), got(10007);
  for (const QuantParams& p : {QuantParams{false, 0, 0.25f, 0}, QuantParams{false, 0, 1e-3f, -12345},
                               QuantParams{false, 0, 3e36f, 7}}) {
    for (int q = kMinQ; q <= kMaxQ; ++q) {
      for (auto& s : sym) s = static_cast<uint8_t>(rng() & ((1u << q) - 1));
      for (size_t n : kLengths) {
        for (size_t off : kOffsets) {
          SCOPED_TRACE(Where(n, off, q));
          Scalar([&] { Dequantize(sym.data() + off, n, p, q, want.data()); });
          Dequantize(sym.data() + off, n, p, q, got.data());
          ASSERT_TRUE(SameFloats(got.data(), want.data(), n));
          float lut[256];
          FillDequantTable(p, lut);
          DequantizeWithTable(sym.data() + off, n, lut, q, got.data());
          ASSERT_TRUE(SameFloats(got.data(), want.data(), n));
        }
      }
    }
  }
}

TEST_P(SimdTest, HistogramMatchesScalar) {
  std::mt19937 rng(13);
  std::vector<uint8_t> sym(100003 + 8);
  std::vector<size_t> lengths = kLengths;
  lengths.push_back(100003);
  for (int q = kMinQ; q <= kMaxQ; ++q) {
    for (auto& s : sym) s = static_cast<uint8_t>(rng() & ((1u << q) - 1));
    for (size_t n : lengths) {
      for (size_t off : kOffsets) {
        SCOPED_TRACE(Where(n, off, q));
        std::vector<uint32_t> want(256, 7), got(256, 9);  // zeroed by the function
        Scalar([&] { Histogram256(sym.data() + off, n, want.data(), q); });
        Histogram256(sym.data() + off, n, got.data(), q);
        ASSERT_EQ(got, want);
        Histogram256(sym.data() + off, n, got.data());  // q_bits = 8 default
        ASSERT_EQ(got, want);
      }
    }
  }
}

// --- rANS streams ---

// Byte-symbol streams with 32 lanes (the AVX-512 kernels' case) and fewer, small (<= 16, in
// register) and large alphabets, partial steps and blocks: bytes identical to the scalar coder's,
// and both decoders (DecodeStream, and ParseStream + DecodeByteStream as the Decoder uses them)
// return the symbols.
TEST_P(SimdTest, RansStreamsMatchScalarAndRoundTrip) {
  std::mt19937 rng(17);
  for (uint32_t alphabet : {2u, 16u, 17u, 200u, 256u}) {
    for (uint32_t n : {1u, 31u, 32u, 33u, 1000u, 4096u + 37u, 65536u, 65536u + 32u * 3u + 5u, 150001u}) {
      for (int lanes_log2 : {5, 3}) {
        for (int block_log2 : {16, 12}) {
          SCOPED_TRACE("alphabet=" + std::to_string(alphabet) + " n=" + std::to_string(n) +
                       " lanes_log2=" + std::to_string(lanes_log2) + " block_log2=" + std::to_string(block_log2));
          std::vector<uint8_t> sym(n);
          std::geometric_distribution<int> g(alphabet <= 2 ? 0.5 : 0.08);
          for (auto& s : sym) s = static_cast<uint8_t>(std::min<int>(g(rng), static_cast<int>(alphabet) - 1));
          sym[0] = static_cast<uint8_t>(alphabet - 1);
          std::vector<uint32_t> counts(alphabet, 0);
          for (uint8_t s : sym) counts[s]++;
          StreamParams params;
          params.lanes_log2 = lanes_log2;
          params.block_log2 = block_log2;
          std::vector<uint8_t> want, got;
          Scalar([&] { EncodeStream<uint8_t>(sym.data(), n, counts.data(), alphabet, params, &want); });
          EncodeStream<uint8_t>(sym.data(), n, counts.data(), alphabet, params, &got);
          ASSERT_EQ(got, want);

          ByteReader rd(got.data(), got.size());
          std::vector<uint8_t> dec;
          ASSERT_TRUE(DecodeStream<uint8_t>(&rd, n, alphabet - 1, &dec).ok());
          ASSERT_EQ(dec, sym);

          ByteReader rd2(got.data(), got.size());
          ParsedStream ps;
          ASSERT_TRUE(ParseStream(&rd2, n, alphabet - 1, true, &ps).ok());
          EXPECT_EQ(rd2.remaining(), 0u);
          std::vector<uint8_t> out(n + 1, 0xEE);
          SymbolSink sink;
          sink.symbols = out.data();
          if (ps.kind == StreamKind::kRans) {
            ASSERT_TRUE(DecodeByteStream(ps, 0, sink).ok());
            out.pop_back();
            ASSERT_EQ(out, sym);
          }
        }
      }
    }
  }
}

// --- Whole bitstreams ---

struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> x;
};

// A post-ReLU map stack of 8 x 96 x 96 (dense streams with 32 lanes, two blocks, the context
// layout's semi-static model), a signed odd-sized one, and a 1-D one of 65536 + 37 elements.
std::vector<Tensor> Tensors() {
  std::vector<Tensor> t;
  {
    Tensor a{"relu_8x96x96", {8, 96, 96}, std::vector<float>(8 * 96 * 96)};
    for (size_t i = 0; i < a.x.size(); ++i) {
      const double c = static_cast<double>(i / (96 * 96)), y = static_cast<double>((i / 96) % 96),
                   xx = static_cast<double>(i % 96);
      const double v = std::sin(0.13 * xx + 0.5 * c) * std::cos(0.05 * y - 0.2 * c) + 0.003 * ((i * 7919) % 97) - 0.25;
      a.x[i] = static_cast<float>(v > 0 ? v : 0);
    }
    t.push_back(std::move(a));
  }
  t.push_back({"signed_3x7x11", {3, 7, 11}, Floats(3 * 7 * 11, 0, 5)});
  t.push_back({"relu_65573", {65573}, Floats(65573, 1, 6)});
  return t;
}

TEST_P(SimdTest, BitstreamsMatchScalarInEveryModeAndQ) {
  for (const Tensor& t : Tensors()) {
    for (Mode mode : {Mode::kAuto, Mode::kPaper, Mode::kDense, Mode::kSparse, Mode::kContext}) {
      for (int q = kMinQ; q <= kMaxQ; ++q) {
        SCOPED_TRACE(t.name + " mode=" + ModeName(mode) + " q=" + std::to_string(q));
        EncodeOptions opt;
        opt.q = q;
        opt.mode = mode;
        const TensorView view{t.x.data(), DType::kFloat32, t.shape};
        auto want = Scalar([&] { return Encode(view, opt); });
        ASSERT_TRUE(want.ok()) << want.status().ToString();
        auto got = Encode(view, opt);
        ASSERT_TRUE(got.ok()) << got.status().ToString();
        ASSERT_EQ(got.value(), want.value());

        // Decoded values: the scalar quantize + dequantize of the input, at this level.
        QuantParams p;
        std::vector<float> expect(t.x.size());
        Scalar([&] {
          EXPECT_TRUE(ComputeQuantParams(t.x.data(), t.x.size(), q, &p).ok());
          if (p.constant) {
            std::fill(expect.begin(), expect.end(), p.constant_value);
          } else {
            std::vector<uint8_t> sym(t.x.size());
            Quantize(t.x.data(), t.x.size(), p, q, sym.data());
            Dequantize(sym.data(), sym.size(), p, q, expect.data());
          }
        });
        auto dec = Decode(got->data(), got->size());
        ASSERT_TRUE(dec.ok()) << dec.status().ToString();
        EXPECT_EQ(dec->shape, t.shape);
        ASSERT_TRUE(SameFloats(dec->values.data(), expect.data(), expect.size()));
        Decoder decoder;
        std::vector<float> into(expect.size());
        std::vector<int64_t> shape;
        ASSERT_TRUE(decoder.DecodeInto(got->data(), got->size(), into.data(), into.size(), &shape).ok());
        ASSERT_TRUE(SameFloats(into.data(), expect.data(), expect.size()));

        auto iw = Scalar([&] { return Inspect(want->data(), want->size()); });
        auto ig = Inspect(got->data(), got->size());
        ASSERT_TRUE(iw.ok() && ig.ok());
        ASSERT_EQ(ig->sections.size(), iw->sections.size());
        for (size_t s = 0; s < ig->sections.size(); ++s) {
          EXPECT_EQ(ig->sections[s].name, iw->sections[s].name);
          EXPECT_EQ(ig->sections[s].symbols, iw->sections[s].symbols);
          EXPECT_EQ(ig->sections[s].entropy_bits, iw->sections[s].entropy_bits);
        }
      }
    }
  }
}

// --- CRC32C ---

TEST_P(SimdTest, Crc32cMatchesScalar) {
  const char* check = "123456789";
  EXPECT_EQ(Crc32c(reinterpret_cast<const uint8_t*>(check), 9), 0xE3069283u);
  EXPECT_EQ(Crc32c(nullptr, 0), 0u);
  std::mt19937 rng(19);
  std::vector<uint8_t> data(3 * 1024 * 5 + 64);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  std::vector<size_t> lengths;
  for (size_t n = 0; n <= 80; ++n) lengths.push_back(n);
  for (size_t n : {1023, 1024, 1025, 3071, 3072, 3073, 3 * 1024 * 2 + 17, 3 * 1024 * 5}) lengths.push_back(n);
  for (int i = 0; i < 40; ++i) lengths.push_back(rng() % (3 * 1024 * 5));
  for (size_t n : lengths) {
    for (size_t off = 0; off < 16; ++off) {
      const uint32_t want = Scalar([&] { return Crc32c(data.data() + off, n); });
      ASSERT_EQ(Crc32c(data.data() + off, n), want) << Where(n, off, 0);
    }
  }
}

// --- float16 input ---

TEST_P(SimdTest, HalvesToFloatsMatchesScalar) {
  std::vector<uint16_t> h(65536 + 8);
  for (uint32_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint16_t>(i * 40503u);  // every pattern, shuffled
  std::vector<float> want(h.size()), got(h.size());
  std::vector<size_t> lengths = kLengths;
  lengths.push_back(65536);
  for (size_t n : lengths) {
    for (size_t off : kOffsets) {
      SCOPED_TRACE(Where(n, off, 0));
      Scalar([&] { HalvesToFloats(h.data() + off, n, want.data()); });
      HalvesToFloats(h.data() + off, n, got.data());
      for (size_t i = 0; i < n; ++i) {
        if (std::isnan(want[i])) {
          ASSERT_TRUE(std::isnan(got[i])) << i;  // NaN payloads may differ (codec.h)
        } else {
          ASSERT_EQ(Bits(got[i]), Bits(want[i])) << i << ": half 0x" << std::hex << h[off + i];
        }
      }
    }
  }
  // Through the encoder: float16 tensors give the same bytes.
  std::vector<uint16_t> x(4 * 33 * 17);
  std::mt19937 rng(23);
  for (auto& v : x) v = FloatToHalf(std::uniform_real_distribution<float>(-2.f, 6.f)(rng));
  const TensorView view{x.data(), DType::kFloat16, {4, 33, 17}};
  for (int q : {2, 4, 8}) {
    EncodeOptions opt;
    opt.q = q;
    auto want_bytes = Scalar([&] { return Encode(view, opt); });
    auto got_bytes = Encode(view, opt);
    ASSERT_TRUE(want_bytes.ok() && got_bytes.ok());
    EXPECT_EQ(got_bytes.value(), want_bytes.value()) << "q=" << q;
  }
}

}  // namespace
}  // namespace splitrans::codec

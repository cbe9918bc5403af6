// Golden byte tests: pin the v1 wire format (codec/FORMAT.md) byte for byte.
//
// The committed bitstreams and their decoded values are files in tests/data/golden (one source
// of truth, also decoded by the independent reference decoder tests/srns_ref.py in the
// format_reference test): <name>.srns is the encoder's output, <name>.npy the values it must
// decode to. A fixed 2 x 3 x 4 tensor (<name>.npy: every value on the Q = 4 grid, so it is both
// the encoder's input and the exact decoded result) is encoded in every layout at Q = 4 and
// compared with <name>.srns; context_semistatic pins the semi-static context model on a larger
// generated tensor. If one of these tests fails, either the encoder/decoder broke compatibility
// (fix the code), or the format was changed on purpose: then bump kFormatVersion
// (codec/wire.h), update FORMAT.md and regenerate the files (tests/data/golden/README.md; a
// failing encoder test writes the new bytes next to the test's temporary directory and says
// where).
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "codec/crc32c.h"
#include "codec/header.h"
#include "codec/npy.h"
#include "codec/simd_test_util.h"
#include "codec/wire.h"

#ifndef SPLITRANS_GOLDEN_DIR
#error "SPLITRANS_GOLDEN_DIR must name tests/data/golden (set in codec/CMakeLists.txt)"
#endif

namespace splitrans::codec {
namespace {

// Header offsets as specified in FORMAT.md; wire.h must agree.
static_assert(offsetof(FixedHeader, magic) == 0, "magic offset");
static_assert(offsetof(FixedHeader, version) == 4, "version offset");
static_assert(offsetof(FixedHeader, flags) == 5, "flags offset");
static_assert(offsetof(FixedHeader, dtype) == 6, "dtype offset");
static_assert(offsetof(FixedHeader, rank) == 7, "rank offset");
static_assert(offsetof(FixedHeader, q) == 8, "q offset");
static_assert(offsetof(FixedHeader, layout) == 9, "layout offset");
static_assert(offsetof(FixedHeader, reserved) == 10, "reserved offset");
static_assert(offsetof(FixedHeader, scale) == 12, "scale offset");
static_assert(offsetof(FixedHeader, zero_point) == 16, "zero_point offset");
static_assert(offsetof(FixedHeader, body_size) == 20, "body_size offset");
static_assert(sizeof(FixedHeader) == 24, "header size");

const std::vector<int64_t> kShape = {2, 3, 4};

std::string GoldenPath(const std::string& name, const char* ext) {
  return std::string(SPLITRANS_GOLDEN_DIR) + "/" + name + ext;
}

// The committed bitstream tests/data/golden/<name>.srns (empty, with a test failure, if unreadable).
std::vector<uint8_t> GoldenBytes(const std::string& name) {
  const std::string path = GoldenPath(name, ".srns");
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    ADD_FAILURE() << "cannot read " << path;
    return {};
  }
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// The committed decoded values tests/data/golden/<name>.npy (float32; empty on failure).
std::vector<float> GoldenValues(const std::string& name, const std::vector<int64_t>& shape) {
  const std::string path = GoldenPath(name, ".npy");
  auto npy = ReadNpy(path);
  if (!npy.ok()) {
    ADD_FAILURE() << path << ": " << npy.status().ToString();
    return {};
  }
  EXPECT_EQ(npy->dtype, DType::kFloat32) << path;
  EXPECT_EQ(npy->shape, shape) << path;
  std::vector<float> v(npy->bytes.size() / sizeof(float));
  if (!v.empty()) std::memcpy(v.data(), npy->bytes.data(), v.size() * sizeof(float));
  return v;
}

// Writes bytes the encoder produced where a maintainer can copy them into tests/data/golden.
std::string WriteNewBytes(const std::string& name, const std::vector<uint8_t>& b) {
  const std::string path = ::testing::TempDir() + "golden_new_" + name + ".srns";
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  return f ? path : std::string("(could not write ") + path + ")";
}

struct GoldenCase {
  const char* name;  // tests/data/golden/<name>.{srns,npy}
  Mode mode;
  Layout layout;
  float scale;
  int32_t zero_point;
};

// dense/sparse/paper/context: a ReLU-like tensor with s = 0.25; context_signed: the same minus 1
// (zero point 4); constant: 24 x 1.5. Context layout bytes: tensors this small use the adaptive
// model (FORMAT.md "Model 1"); the semi-static model is pinned by SemiStaticContextIsPinned below.
std::vector<GoldenCase> Cases() {
  return {
      {"dense", Mode::kDense, Layout::kDense, 0.25f, 0},
      {"sparse", Mode::kSparse, Layout::kSparse, 0.25f, 0},
      {"paper", Mode::kPaper, Layout::kPaper, 0.25f, 0},
      {"context", Mode::kContext, Layout::kContext, 0.25f, 0},
      {"context_signed", Mode::kContext, Layout::kContext, 0.25f, 4},
      {"constant", Mode::kAuto, Layout::kConstant, 0.f, 0},
  };
}

// A case's values encoded as its golden bytes were made: q = 4, the case's mode.
auto EncodeCase(const GoldenCase& c, const std::vector<float>& values) {
  EncodeOptions opt;
  opt.q = 4;
  opt.mode = c.mode;
  return Encode(TensorView{values.data(), DType::kFloat32, kShape}, opt);
}

uint32_t U32At(const std::vector<uint8_t>& b, size_t off) {
  return uint32_t{b[off]} | uint32_t{b[off + 1]} << 8 | uint32_t{b[off + 2]} << 16 | uint32_t{b[off + 3]} << 24;
}

// The one header writer (codec/wire.h, used by the CPU and CUDA encoders) writes the bytes of
// FORMAT.md "Fixed header", spelled out here field by field, and a header that ValidateHeader
// reads back as written.
TEST(Golden, WireHeaderWriterWritesFormatBytes) {
  const uint32_t shape[3] = {2, 3, 0x01020304};
  uint8_t b[kFixedHeaderBytes + 12 + kChecksumBytes] = {};
  const uint32_t n = WriteHeaderAndShape(b, 2, 3, 5, 4, 1.5f, -7, 12, shape);
  ASSERT_EQ(n, kFixedHeaderBytes + 12);
  const uint8_t want[] = {'S', 'R', 'N', 'S', 1, 0, 2, 3, 5, 4, 0, 0,
                          0x00, 0x00, 0xC0, 0x3F,        // 1.5f, little-endian
                          0xF9, 0xFF, 0xFF, 0xFF,        // -7
                          12, 0, 0, 0,                   // body_size
                          2, 0, 0, 0, 3, 0, 0, 0, 4, 3, 2, 1};
  ASSERT_EQ(sizeof(want), n);
  for (uint32_t i = 0; i < n; ++i) EXPECT_EQ(b[i], want[i]) << "byte " << i;
  const uint32_t crc = Crc32c(b, n);
  std::memcpy(b + n, &crc, 4);
  ValidatedHeader v;
  DecodeLimits limits;
  limits.max_elements = uint64_t{1} << 40;
  ASSERT_TRUE(ValidateHeader(b, sizeof(b), limits, nullptr, &v).ok());
  EXPECT_EQ(v.layout(), Layout::kContext);
  EXPECT_EQ(v.h.q, 5);
  EXPECT_EQ(v.h.scale, 1.5f);
  EXPECT_EQ(v.h.zero_point, -7);
  EXPECT_EQ(v.shape, (std::vector<int64_t>{2, 3, 0x01020304}));
  EXPECT_EQ(v.elements, uint64_t{6} * 0x01020304);
  EXPECT_EQ(v.body_offset, kFixedHeaderBytes + 12);
  EXPECT_EQ(v.body_bytes(), 0u);
}

TEST(Golden, EncoderProducesCommittedBytes) {
  for (const auto& c : Cases()) {
    const std::vector<float> values = GoldenValues(c.name, kShape);
    ASSERT_EQ(values.size(), 24u) << c.name;
    auto enc = EncodeCase(c, values);
    ASSERT_TRUE(enc.ok()) << c.name << ": " << enc.status().ToString();
    if (enc.value() != GoldenBytes(c.name)) {
      ADD_FAILURE() << c.name << ": the encoder's bytes changed; new bytes written to "
                    << WriteNewBytes(c.name, enc.value());
    }
  }
}

TEST(Golden, HeaderBytes) {
  for (const auto& c : Cases()) {
    const std::vector<uint8_t> b = GoldenBytes(c.name);
    ASSERT_GE(b.size(), 24u + 12u + 4u) << c.name;
    // magic "SRNS", version 1, flags 0, dtype 1 (float32), rank 3, q 4, layout, reserved 0.
    EXPECT_EQ(b[0], 'S') << c.name;
    EXPECT_EQ(b[1], 'R') << c.name;
    EXPECT_EQ(b[2], 'N') << c.name;
    EXPECT_EQ(b[3], 'S') << c.name;
    EXPECT_EQ(b[4], 1) << c.name;
    EXPECT_EQ(b[5], 0) << c.name;
    EXPECT_EQ(b[6], 1) << c.name;
    EXPECT_EQ(b[7], 3) << c.name;
    EXPECT_EQ(b[8], 4) << c.name;
    EXPECT_EQ(b[9], static_cast<uint8_t>(c.layout)) << c.name;
    EXPECT_EQ(b[10], 0) << c.name;
    EXPECT_EQ(b[11], 0) << c.name;
    // scale (f32) and zero point (i32), little-endian.
    uint32_t scale_bits;
    std::memcpy(&scale_bits, &c.scale, 4);
    EXPECT_EQ(U32At(b, 12), scale_bits) << c.name;
    EXPECT_EQ(U32At(b, 16), static_cast<uint32_t>(c.zero_point)) << c.name;
    // body_size: everything between the fixed header and the checksum.
    EXPECT_EQ(U32At(b, 20), b.size() - 28) << c.name;
    // Shape, u32 little-endian, outermost first.
    EXPECT_EQ(U32At(b, 24), 2u) << c.name;
    EXPECT_EQ(U32At(b, 28), 3u) << c.name;
    EXPECT_EQ(U32At(b, 32), 4u) << c.name;
    // The trailing 4 bytes are the CRC32C of everything before them.
    EXPECT_EQ(U32At(b, b.size() - 4), Crc32c(b.data(), b.size() - 4)) << c.name;
  }
  // 0.25f is 0x3E800000: bytes 00 00 80 3E.
  const std::vector<uint8_t> dense = GoldenBytes("dense");
  ASSERT_GE(dense.size(), 16u);
  EXPECT_EQ(dense[12], 0x00);
  EXPECT_EQ(dense[13], 0x00);
  EXPECT_EQ(dense[14], 0x80);
  EXPECT_EQ(dense[15], 0x3E);
  // Constant layout body: shape, then the value 1.5f (0x3FC00000).
  const std::vector<uint8_t> constant = GoldenBytes("constant");
  ASSERT_EQ(constant.size(), 24u + 12u + 4u + 4u);
  EXPECT_EQ(U32At(constant, 36), 0x3FC00000u);
}

TEST(Golden, CommittedBytesDecodeExactly) {
  for (const auto& c : Cases()) {
    const std::vector<uint8_t> b = GoldenBytes(c.name);
    auto dec = Decode(b.data(), b.size());
    ASSERT_TRUE(dec.ok()) << c.name << ": " << dec.status().ToString();
    EXPECT_EQ(dec->shape, kShape) << c.name;
    EXPECT_EQ(dec->dtype, DType::kFloat32) << c.name;
    EXPECT_EQ(dec->values, GoldenValues(c.name, kShape)) << c.name;  // every value is on the grid
    auto info = Inspect(b.data(), b.size());
    ASSERT_TRUE(info.ok()) << c.name;
    EXPECT_EQ(info->layout, c.layout) << c.name;
    EXPECT_EQ(info->version, 1) << c.name;
    EXPECT_EQ(info->q, 4) << c.name;
  }
}

}  // namespace
}  // namespace splitrans::codec

namespace splitrans::codec {
namespace {

constexpr size_t kSemiStaticSize = 7107;
constexpr uint32_t kSemiStaticCrc = 0xca4508c5;

// A deterministic 8x96x96 post-ReLU-like tensor: above the adaptive model's 65536-element limit,
// so the context layout uses the semi-static model (FORMAT.md "Model 0"). Pins its bytes
// (tests/data/golden/context_semistatic.srns, whose size and CRC32C, the bitstream's last four
// bytes, are also pinned here) and its decoded values (context_semistatic.npy); regenerate them
// only with a format version bump.
const std::vector<int64_t> kSemiStaticShape = {8, 96, 96};

std::vector<float> SemiStaticInput() {
  std::vector<float> x(8 * 96 * 96);
  for (size_t i = 0; i < x.size(); ++i) {
    const double c = static_cast<double>(i / (96 * 96)), y = static_cast<double>((i / 96) % 96),
                 xx = static_cast<double>(i % 96);
    const double v = std::sin(0.11 * xx + 0.7 * c) * std::cos(0.07 * y - 0.3 * c) + 0.002 * ((i * 7919) % 101) - 0.2;
    x[i] = static_cast<float>(v > 0 ? v : 0);
  }
  return x;
}

TEST(Golden, SemiStaticContextIsPinned) {
  const std::vector<int64_t>& shape = kSemiStaticShape;
  const std::vector<float> x = SemiStaticInput();
  EncodeOptions opt;
  opt.q = 4;
  opt.mode = Mode::kContext;
  auto enc = Encode(TensorView{x.data(), DType::kFloat32, shape}, opt);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  const std::vector<uint8_t>& b = *enc;
  ASSERT_GT(b.size(), 40u);
  EXPECT_EQ(b[9], static_cast<uint8_t>(Layout::kContext));
  EXPECT_EQ(b[24 + 12], 0) << "expected the semi-static model";
  uint32_t crc;
  std::memcpy(&crc, b.data() + b.size() - 4, 4);
  EXPECT_EQ(b.size(), kSemiStaticSize);
  EXPECT_EQ(crc, kSemiStaticCrc) << std::hex << crc;
  const std::vector<uint8_t> golden = GoldenBytes("context_semistatic");
  if (b != golden) {
    ADD_FAILURE() << "context_semistatic: the encoder's bytes changed; new bytes written to "
                  << WriteNewBytes("context_semistatic", b);
  }
  auto dec = Decode(b.data(), b.size());
  ASSERT_TRUE(dec.ok()) << dec.status().ToString();
  EXPECT_EQ(dec->shape, shape);
  auto dec_golden = Decode(golden.data(), golden.size());
  ASSERT_TRUE(dec_golden.ok()) << dec_golden.status().ToString();
  EXPECT_EQ(dec_golden->values, GoldenValues("context_semistatic", shape));
}

// Every committed bitstream, encoded and decoded with the SIMD cap forced to each level the host
// has (codec/simd_test_util.h): the same bytes and values as on the native path.
class GoldenSimd : public SimdLevelTest {};
INSTANTIATE_TEST_SUITE_P(Levels, GoldenSimd, ::testing::ValuesIn(AllSimdLevels()), SimdLevelParamName);

TEST_P(GoldenSimd, EncodeAndDecodeAtEveryLevel) {
  for (const auto& c : Cases()) {
    const std::vector<float> values = GoldenValues(c.name, kShape);
    ASSERT_EQ(values.size(), 24u) << c.name;
    auto enc = EncodeCase(c, values);
    ASSERT_TRUE(enc.ok()) << c.name << ": " << enc.status().ToString();
    const std::vector<uint8_t> golden = GoldenBytes(c.name);
    EXPECT_EQ(enc.value(), golden) << c.name;
    auto dec = Decode(golden.data(), golden.size());
    ASSERT_TRUE(dec.ok()) << c.name << ": " << dec.status().ToString();
    EXPECT_EQ(dec->values, values) << c.name;
  }
  const std::vector<float> x = SemiStaticInput();
  EncodeOptions opt;
  opt.q = 4;
  opt.mode = Mode::kContext;
  auto enc = Encode(TensorView{x.data(), DType::kFloat32, kSemiStaticShape}, opt);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  const std::vector<uint8_t> golden = GoldenBytes("context_semistatic");
  EXPECT_EQ(enc.value(), golden) << "context_semistatic";
  auto dec = Decode(golden.data(), golden.size());
  ASSERT_TRUE(dec.ok()) << dec.status().ToString();
  EXPECT_EQ(dec->values, GoldenValues("context_semistatic", kSemiStaticShape));
}

}  // namespace
}  // namespace splitrans::codec

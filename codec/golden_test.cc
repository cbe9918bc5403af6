// Golden byte tests: pin the v1 wire format (codec/FORMAT.md) byte for byte.
//
// A fixed 2 x 3 x 4 tensor is encoded in every layout at Q = 4 and compared with the committed
// bytes below, and the committed bytes must decode to the expected values. If one of these
// tests fails, either the encoder/decoder broke compatibility (fix the code), or the format was
// changed on purpose: then bump kFormatVersion (codec/format.h), update FORMAT.md and regenerate
// the arrays from the failure messages, which print the new bytes as a ready-to-paste array.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "codec/crc32c.h"
#include "codec/format.h"

namespace splitrans::codec {
namespace {

// Header offsets as specified in FORMAT.md; format.h must agree.
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

// The fixed tensor: ReLU-like, every value on the Q = 4 grid of s = 0.25 (so decoding is exact).
const std::vector<float> kRelu = {0.f,  0.f, 0.5f, 1.25f, 0.f, 2.f, 0.f, 0.f, 3.75f, 0.25f, 0.f, 0.f,
                                  1.f,  0.f, 0.f,  0.75f, 0.f, 2.5f, 0.f, 0.f, 0.f,  1.5f,  3.f, 0.f};
const std::vector<int64_t> kShape = {2, 3, 4};

std::vector<float> Shifted(float delta) {
  std::vector<float> x = kRelu;
  for (auto& v : x) v += delta;
  return x;
}

std::string Hex(const std::vector<uint8_t>& b) {
  std::string s = "{";
  char buf[8];
  for (size_t i = 0; i < b.size(); ++i) {
    if (i % 16 == 0) s += "\n    ";
    std::snprintf(buf, sizeof(buf), "0x%02x,", b[i]);
    s += buf;
    if (i % 16 != 15 && i + 1 != b.size()) s += ' ';
  }
  return s + "\n}";
}

// --- Committed bytes (generated once from the v1 encoder) ---------------------------------------

const std::vector<uint8_t> kGoldenDense = {
    0x53, 0x52, 0x4e, 0x53, 0x01, 0x00, 0x01, 0x03, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3e,
    0x00, 0x00, 0x00, 0x00, 0x2e, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
    0x04, 0x00, 0x00, 0x00, 0x02, 0x18, 0x08, 0x00, 0x10, 0x10, 0x95, 0x01, 0x0b, 0x0b, 0x0b, 0x0b,
    0x0b, 0x0b, 0x00, 0x0b, 0x00, 0x0a, 0x00, 0x0a, 0x00, 0x00, 0x0a, 0x03, 0x5e, 0x1f, 0xae, 0x01,
    0x69, 0xdb, 0x7b, 0x87, 0x85, 0x80, 0x93, 0xe9, 0x3a, 0x44,
};
const std::vector<uint8_t> kGoldenSparse = {
    0x53, 0x52, 0x4e, 0x53, 0x01, 0x00, 0x01, 0x03, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3e,
    0x00, 0x00, 0x00, 0x00, 0x46, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
    0x04, 0x00, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x0a, 0x08, 0x00,
    0x10, 0x10, 0x00, 0x1a, 0x1a, 0x1a, 0x1a, 0x1a, 0x1a, 0x00, 0x19, 0x00, 0x19, 0x00, 0x19, 0x00,
    0x00, 0x19, 0x02, 0x27, 0x55, 0x02, 0x00, 0x81, 0xa3, 0x44, 0x56, 0x01, 0x0a, 0x00, 0x02, 0x18,
    0x08, 0x00, 0x10, 0x02, 0x95, 0x01, 0x6b, 0x01, 0x29, 0xed, 0xb6, 0x00, 0xab, 0xf3, 0x0a, 0xaf,
    0x31, 0x10,
};
const std::vector<uint8_t> kGoldenPaper = {
    0x53, 0x52, 0x4e, 0x53, 0x01, 0x00, 0x01, 0x03, 0x04, 0x03, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3e,
    0x00, 0x00, 0x00, 0x00, 0x37, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
    0x04, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x02, 0x1a, 0x08, 0x00,
    0x10, 0x10, 0x13, 0x45, 0x45, 0x1d, 0x0a, 0x0a, 0x0a, 0x00, 0x0a, 0x00, 0x0a, 0x00, 0x0a, 0x00,
    0x00, 0x0a, 0x04, 0x69, 0xe5, 0xe1, 0x11, 0x22, 0xd6, 0xd0, 0x65, 0x24, 0xe6, 0x4d, 0x05, 0x80,
    0x6a, 0x7d, 0x3c,
};
// Context layout bytes: tensors this small use the adaptive model (FORMAT.md "Model 1"); the
// semi-static model is pinned by SemiStaticContextIsPinned below.
const std::vector<uint8_t> kGoldenContext = {
    0x53, 0x52, 0x4e, 0x53, 0x01, 0x00, 0x01, 0x03, 0x04, 0x04, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3e,
    0x00, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
    0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02, 0x95, 0x1b, 0x05, 0x00, 0x56, 0x78, 0x16, 0x00, 0xb2,
    0x60, 0x04, 0x00, 0xb9, 0x40, 0x04, 0x00, 0x04, 0x00, 0x54, 0x00, 0x77, 0x80, 0x12, 0x85, 0xc4,
    0x81, 0x80, 0x92, 0x0e,
};
const std::vector<uint8_t> kGoldenContextSigned = {
    0x53, 0x52, 0x4e, 0x53, 0x01, 0x00, 0x01, 0x03, 0x04, 0x04, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3e,
    0x04, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
    0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02, 0xba, 0x92, 0x02, 0x02, 0xcd, 0x50, 0x49, 0x16, 0x6f,
    0xe1, 0x4b, 0x08, 0xc2, 0xe4, 0x74, 0x00, 0x04, 0x76, 0xd8, 0xd2, 0x73, 0xce, 0xeb, 0xaa, 0x34,
    0x6c, 0xea, 0x23, 0x11,
};
const std::vector<uint8_t> kGoldenConstant = {
    0x53, 0x52, 0x4e, 0x53, 0x01, 0x00, 0x01, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
    0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x3f, 0x62, 0x33, 0xd8, 0x3c,
};

struct GoldenCase {
  const char* name;
  std::vector<float> values;
  Mode mode;
  Layout layout;
  const std::vector<uint8_t>* golden;
  float scale;
  int32_t zero_point;
};

std::vector<GoldenCase> Cases() {
  return {
      {"dense", kRelu, Mode::kDense, Layout::kDense, &kGoldenDense, 0.25f, 0},
      {"sparse", kRelu, Mode::kSparse, Layout::kSparse, &kGoldenSparse, 0.25f, 0},
      {"paper", kRelu, Mode::kPaper, Layout::kPaper, &kGoldenPaper, 0.25f, 0},
      {"context", kRelu, Mode::kContext, Layout::kContext, &kGoldenContext, 0.25f, 0},
      {"context_signed", Shifted(-1.f), Mode::kContext, Layout::kContext, &kGoldenContextSigned, 0.25f, 4},
      {"constant", std::vector<float>(24, 1.5f), Mode::kAuto, Layout::kConstant, &kGoldenConstant, 0.f, 0},
  };
}

uint32_t U32At(const std::vector<uint8_t>& b, size_t off) {
  return uint32_t{b[off]} | uint32_t{b[off + 1]} << 8 | uint32_t{b[off + 2]} << 16 | uint32_t{b[off + 3]} << 24;
}

TEST(Golden, EncoderProducesCommittedBytes) {
  for (const auto& c : Cases()) {
    EncodeOptions opt;
    opt.q = 4;
    opt.mode = c.mode;
    auto enc = Encode(TensorView{c.values.data(), DType::kFloat32, kShape}, opt);
    ASSERT_TRUE(enc.ok()) << c.name << ": " << enc.status().ToString();
    EXPECT_EQ(enc.value(), *c.golden) << c.name << ": the encoder's bytes changed. New bytes:\n"
                                      << Hex(enc.value());
  }
}

TEST(Golden, HeaderBytes) {
  for (const auto& c : Cases()) {
    const std::vector<uint8_t>& b = *c.golden;
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
  EXPECT_EQ(kGoldenDense[12], 0x00);
  EXPECT_EQ(kGoldenDense[13], 0x00);
  EXPECT_EQ(kGoldenDense[14], 0x80);
  EXPECT_EQ(kGoldenDense[15], 0x3E);
  // Constant layout body: shape, then the value 1.5f (0x3FC00000).
  ASSERT_EQ(kGoldenConstant.size(), 24u + 12u + 4u + 4u);
  EXPECT_EQ(U32At(kGoldenConstant, 36), 0x3FC00000u);
}

TEST(Golden, CommittedBytesDecodeExactly) {
  for (const auto& c : Cases()) {
    const std::vector<uint8_t>& b = *c.golden;
    auto dec = Decode(b.data(), b.size());
    ASSERT_TRUE(dec.ok()) << c.name << ": " << dec.status().ToString();
    EXPECT_EQ(dec->shape, kShape) << c.name;
    EXPECT_EQ(dec->dtype, DType::kFloat32) << c.name;
    EXPECT_EQ(dec->values, c.values) << c.name;  // every value is on the grid
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
// so the context layout uses the semi-static model (FORMAT.md "Model 0"). Pins its size and
// CRC32C (the bitstream's last four bytes); regenerate both only with a format version bump.
TEST(Golden, SemiStaticContextIsPinned) {
  std::vector<float> x(8 * 96 * 96);
  for (size_t i = 0; i < x.size(); ++i) {
    const double c = static_cast<double>(i / (96 * 96)), y = static_cast<double>((i / 96) % 96),
                 xx = static_cast<double>(i % 96);
    const double v = std::sin(0.11 * xx + 0.7 * c) * std::cos(0.07 * y - 0.3 * c) + 0.002 * ((i * 7919) % 101) - 0.2;
    x[i] = static_cast<float>(v > 0 ? v : 0);
  }
  EncodeOptions opt;
  opt.q = 4;
  opt.mode = Mode::kContext;
  auto enc = Encode(TensorView{x.data(), DType::kFloat32, {8, 96, 96}}, opt);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  const std::vector<uint8_t>& b = *enc;
  ASSERT_GT(b.size(), 40u);
  EXPECT_EQ(b[9], static_cast<uint8_t>(Layout::kContext));
  EXPECT_EQ(b[24 + 12], 0) << "expected the semi-static model";
  uint32_t crc;
  std::memcpy(&crc, b.data() + b.size() - 4, 4);
  EXPECT_EQ(b.size(), kSemiStaticSize);
  EXPECT_EQ(crc, kSemiStaticCrc) << std::hex << crc;
  auto dec = Decode(b.data(), b.size());
  ASSERT_TRUE(dec.ok()) << dec.status().ToString();
}

}  // namespace
}  // namespace splitrans::codec

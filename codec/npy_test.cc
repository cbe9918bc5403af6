// Unit tests for the .npy reader/writer: numpy-written golden files, round trips and rejects.
#include "codec/npy.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace splitrans::codec {
namespace {

std::vector<uint8_t> Bytes(const std::string& header, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out(header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

// A v1.0 header block exactly as numpy writes it: preamble, dict padded with spaces, '\n'.
std::string Header(const std::string& dict, int major = 1) {
  const size_t pre = major == 1 ? 10 : 12;
  std::string body = dict;
  while ((pre + body.size() + 1) % 64 != 0) body += ' ';
  body += '\n';
  std::string h = "\x93NUMPY";
  h += static_cast<char>(major);
  h += '\0';
  for (size_t i = 0; i < pre - 8; ++i) h += static_cast<char>((body.size() >> (8 * i)) & 0xff);
  return h + body;
}

// numpy 1.24.2: numpy.save(f, numpy.array([[0, 1.5, -2], [0.25, 0, 3]], dtype='<f4'))
const std::string kGoldenF4Header =
    std::string("\x93NUMPY\x01\x00v\x00", 10) +
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
    "                                                          \n";
const std::vector<uint8_t> kGoldenF4Data = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x3f, 0x00, 0x00, 0x00, 0xc0,
                                            0x00, 0x00, 0x80, 0x3e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x40};

// numpy 1.24.2: numpy.save(f, numpy.array([0.5, -1, 65504], dtype='<f2'))
const std::string kGoldenF2Header =
    std::string("\x93NUMPY\x01\x00v\x00", 10) +
    "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }"
    "                                                            \n";
const std::vector<uint8_t> kGoldenF2Data = {0x00, 0x38, 0x00, 0xbc, 0xff, 0x7b};

// numpy 1.24.2: numpy.lib.format.write_array(f, numpy.array([1, 2], dtype='<f4'), version=(3, 0))
const std::string kGoldenV3Header =
    std::string("\x93NUMPY\x03\x00t\x00\x00\x00", 12) +
    "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
    "                                                          \n";
const std::vector<uint8_t> kGoldenV3Data = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x40};

std::vector<float> Floats(const NpyArray& a) {
  std::vector<float> f(a.bytes.size() / 4);
  std::memcpy(f.data(), a.bytes.data(), f.size() * 4);
  return f;
}

TEST(Npy, GoldenFloat32) {
  const auto file = Bytes(kGoldenF4Header, kGoldenF4Data);
  ASSERT_EQ(file.size(), 152u);
  auto a = ParseNpy(file.data(), file.size(), "golden.npy");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->dtype, DType::kFloat32);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a->ElementCount(), 6u);
  EXPECT_EQ(Floats(*a), (std::vector<float>{0.f, 1.5f, -2.f, 0.25f, 0.f, 3.f}));
  // The writer reproduces numpy's bytes exactly.
  std::vector<uint8_t> out;
  ASSERT_TRUE(SerializeNpy(a->dtype, a->shape, a->bytes.data(), a->bytes.size(), &out).ok());
  EXPECT_EQ(out, file);
}

TEST(Npy, GoldenFloat16) {
  const auto file = Bytes(kGoldenF2Header, kGoldenF2Data);
  auto a = ParseNpy(file.data(), file.size());
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->dtype, DType::kFloat16);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{3}));
  ASSERT_EQ(a->bytes.size(), 6u);
  uint16_t h[3];
  std::memcpy(h, a->bytes.data(), 6);
  EXPECT_EQ(HalfToFloat(h[0]), 0.5f);
  EXPECT_EQ(HalfToFloat(h[1]), -1.f);
  EXPECT_EQ(HalfToFloat(h[2]), 65504.f);
  std::vector<uint8_t> out;
  ASSERT_TRUE(SerializeNpy(a->dtype, a->shape, a->bytes.data(), a->bytes.size(), &out).ok());
  EXPECT_EQ(out, file);
}

TEST(Npy, GoldenVersion3) {
  const auto file = Bytes(kGoldenV3Header, kGoldenV3Data);
  auto a = ParseNpy(file.data(), file.size());
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(Floats(*a), (std::vector<float>{1.f, 2.f}));
}

TEST(Npy, Version2AndLooseSyntax) {
  // Keys in another order, double quotes, no trailing comma, Python 2 long literals.
  const auto file = Bytes(Header("{\"shape\": (2L, 1), \"fortran_order\": False, \"descr\": \"<f4\"}", 2),
                          {0, 0, 0x80, 0x3f, 0, 0, 0, 0x40});
  auto a = ParseNpy(file.data(), file.size());
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 1}));
}

TEST(Npy, EmptyArray) {
  const auto file = Bytes(Header("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }"), {});
  auto a = ParseNpy(file.data(), file.size());
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->shape, (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(a->bytes.empty());
}

TEST(Npy, FileRoundTrip) {
  const std::vector<int64_t> shape = {3, 5, 7, 2};
  std::vector<float> x(3 * 5 * 7 * 2);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.125f - 3.f;
  const std::string path = ::testing::TempDir() + "npy_test_roundtrip.npy";
  ASSERT_TRUE(WriteNpy(path, DType::kFloat32, shape, x.data(), x.size() * 4).ok());
  auto a = ReadNpy(path);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->shape, shape);
  EXPECT_EQ(Floats(*a), x);
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  EXPECT_EQ(static_cast<size_t>(f.tellg()) - x.size() * 4, 128u);  // data 64-byte aligned
  std::remove(path.c_str());
}

TEST(Npy, MaxRankEmptyArray) {
  std::vector<int64_t> shape(kMaxNpyRank, 1);
  shape[0] = 123456789012;
  shape[1] = 0;  // no elements: only the header is written
  std::vector<uint8_t> out;
  ASSERT_TRUE(SerializeNpy(DType::kFloat16, shape, nullptr, 0, &out).ok());
  EXPECT_EQ(out.size() % 64, 0u);
  auto a = ParseNpy(out.data(), out.size());
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->shape, shape);
}

TEST(Npy, WriterRejectsMismatch) {
  float x[4] = {};
  std::vector<uint8_t> out;
  EXPECT_FALSE(SerializeNpy(DType::kFloat32, {2, 3}, x, sizeof(x), &out).ok());
  EXPECT_FALSE(SerializeNpy(DType::kFloat32, {}, x, 4, &out).ok());
  EXPECT_FALSE(SerializeNpy(DType::kFloat32, {-1}, x, 4, &out).ok());
}

void ExpectReject(const std::vector<uint8_t>& file, ErrorCode code, const std::string& needle) {
  auto a = ParseNpy(file.data(), file.size(), "x.npy");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), code) << a.status().ToString();
  EXPECT_NE(a.status().message().find(needle), std::string::npos) << a.status().message();
  EXPECT_EQ(a.status().message().rfind("x.npy: ", 0), 0u) << a.status().message();
}

TEST(Npy, RejectsBadMagic) {
  auto file = Bytes(kGoldenF4Header, kGoldenF4Data);
  file[1] = 'X';
  ExpectReject(file, ErrorCode::kBadMagic, "bad magic");
  ExpectReject({'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0, 0}, ErrorCode::kBadMagic, "not a .npy file");
}

TEST(Npy, RejectsUnsupportedVersion) {
  auto file = Bytes(kGoldenF4Header, kGoldenF4Data);
  file[6] = 4;
  ExpectReject(file, ErrorCode::kUnsupportedVersion, "version 4.0");
}

TEST(Npy, RejectsFloat64) {
  ExpectReject(Bytes(Header("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }"), std::vector<uint8_t>(8)),
               ErrorCode::kInvalidArgument, "dtype '<f8' not supported (need '<f4' or '<f2')");
}

TEST(Npy, RejectsBigEndian) {
  ExpectReject(Bytes(Header("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }"), std::vector<uint8_t>(4)),
               ErrorCode::kInvalidArgument, "big-endian");
}

TEST(Npy, RejectsFortranOrder) {
  ExpectReject(Bytes(Header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }"), std::vector<uint8_t>(24)),
               ErrorCode::kInvalidArgument, "fortran_order arrays are not supported");
}

TEST(Npy, RejectsScalar) {
  ExpectReject(Bytes(Header("{'descr': '<f4', 'fortran_order': False, 'shape': (), }"), std::vector<uint8_t>(4)),
               ErrorCode::kInvalidArgument, "0-d");
}

TEST(Npy, RejectsStructuredDtype) {
  ExpectReject(Bytes(Header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }"),
                     std::vector<uint8_t>(4)),
               ErrorCode::kInvalidArgument, "structured");
}

TEST(Npy, RejectsTruncatedData) {
  auto file = Bytes(kGoldenF4Header, kGoldenF4Data);
  file.pop_back();
  ExpectReject(file, ErrorCode::kTruncated, "truncated");
}

TEST(Npy, RejectsTrailingBytes) {
  auto file = Bytes(kGoldenF4Header, kGoldenF4Data);
  file.push_back(0);
  ExpectReject(file, ErrorCode::kTrailingBytes, "1 unexpected bytes");
}

TEST(Npy, RejectsTruncatedHeader) {
  auto file = Bytes(kGoldenF4Header, {});
  file.resize(60);
  ExpectReject(file, ErrorCode::kTruncated, "header declares 118 bytes");
  ExpectReject({0x93, 'N', 'U', 'M'}, ErrorCode::kTruncated, "too short");
}

TEST(Npy, RejectsHugeShapeWithoutAllocating) {
  // 2^62 elements declared, 4 data bytes present: must fail on size, not try to allocate.
  ExpectReject(Bytes(Header("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }"),
                     std::vector<uint8_t>(4)),
               ErrorCode::kTruncated, "needs more than the 4 data bytes");
}

TEST(Npy, RejectsMalformedHeaders) {
  const std::vector<std::string> bad = {
      "[1, 2]",
      "{'descr': '<f4', 'fortran_order': False}",
      "{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1), }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}",
      "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x",
      "{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}",
      "{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}",
  };
  for (const auto& h : bad) {
    SCOPED_TRACE(h);
    ExpectReject(Bytes(Header(h), std::vector<uint8_t>(4)), ErrorCode::kBadHeaderField, "malformed .npy header");
  }
}

TEST(Npy, ReadMissingFile) {
  auto a = ReadNpy("/nonexistent/dir/x.npy");
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("cannot open /nonexistent/dir/x.npy"), std::string::npos);
}

TEST(Npy, ReadRejectsLikeParse) {
  const std::string path = ::testing::TempDir() + "npy_test_trunc.npy";
  auto file = Bytes(kGoldenF4Header, kGoldenF4Data);
  file.resize(file.size() - 4);
  {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(file.data()), static_cast<std::streamsize>(file.size()));
  }
  auto a = ReadNpy(path);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), ErrorCode::kTruncated);
  EXPECT_EQ(a.status().message().rfind(path + ": ", 0), 0u) << a.status().message();
  std::remove(path.c_str());
}

// Every prefix of a valid file is rejected cleanly (no crash, no success).
TEST(Npy, EveryPrefixRejected) {
  const auto file = Bytes(kGoldenF4Header, kGoldenF4Data);
  for (size_t n = 0; n < file.size(); ++n) {
    auto a = ParseNpy(file.data(), n);
    EXPECT_FALSE(a.ok()) << n;
  }
}

}  // namespace
}  // namespace splitrans::codec

// Auto mode on the committed features (tests/data/features, read with this library): pruning
// dense and sparse by their lower bounds keeps the exhaustive choice, i.e. auto's size equals
// the smallest of the forced layouts.
#include "codec/codec.h"

#include <algorithm>

namespace splitrans::codec {
namespace {

TEST(AutoOnFeatures, SizeEqualsSmallestForcedLayout) {
  std::string dir = __FILE__;
  dir = dir.substr(0, dir.find_last_of('/') + 1) + "../tests/data/features/";
  int checked = 0;
  for (const char* name : {"fmnist_stage1_img0", "fmnist_stage1_preact_img0", "fmnist_stage2_img1", "fmnist_stage3_img2",
                           "fmnist_stage3_preact_img0", "resnet34_layer2_img0", "resnet34_layer2_img0_f16",
                           "resnet34_layer2_img1"}) {
    auto arr = ReadNpy(dir + name + ".npy");
    if (!arr.ok()) continue;  // data not present in this checkout
    Encoder enc;
    std::vector<uint8_t> out;
    for (int q = 2; q <= 8; ++q) {
      size_t sizes[4];
      const Mode modes[4] = {Mode::kAuto, Mode::kDense, Mode::kContext, Mode::kSparse};
      for (int i = 0; i < 4; ++i) {
        EncodeOptions o;
        o.q = q;
        o.mode = modes[i];
        ASSERT_TRUE(enc.Encode(arr->View(), o, &out).ok());
        sizes[i] = out.size();
      }
      EXPECT_EQ(sizes[0], std::min({sizes[1], sizes[2], sizes[3]})) << name << " q=" << q;
      ++checked;
    }
  }
  if (checked == 0) GTEST_SKIP() << "tests/data/features not found next to " << __FILE__;
}

}  // namespace
}  // namespace splitrans::codec

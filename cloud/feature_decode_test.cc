// Unit tests of the cloud's packet handling up to the model (cloud/feature_decode.h): shapes a
// split accepts, clear errors for the others, and no allocation for a tensor the split does not
// accept, however large the bitstream says it is.
#include "cloud/feature_decode.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "codec/crc32c.h"
#include "codec/wire.h"
#include "common/limits.h"
#include "proto/split_inference.pb.h"

namespace splitrans::cloud {
namespace {
namespace v1 = ::splitrans::v1;

class FeatureDecodeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto r = ModelRepository::Load(SPLITRANS_MODEL_REPO);
    ASSERT_TRUE(r.ok()) << r.status();
    repo_ = new ModelRepository(std::move(*r));
    FeatureCodecOptions o;
    o.device = CodecDevice::kCpu;
    auto c = FeatureCodec::Create(o);
    ASSERT_TRUE(c.ok());
    codec_ = c->release();
  }
  static void TearDownTestSuite() {
    delete repo_;
    delete codec_;
  }
  static std::vector<uint8_t> Encode(const std::vector<int64_t>& shape, codec::Mode mode = codec::Mode::kAuto) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v(n);
    std::mt19937 rng(9);
    for (auto& x : v) x = rng() % 3 == 0 ? 0.f : (rng() % 100) / 25.f;
    auto r = codec::Encode({v.data(), codec::DType::kFloat32, shape}, {4, mode});
    EXPECT_TRUE(r.ok());
    return *r;
  }
  absl::Status Decode(const std::vector<uint8_t>& bytes, const std::string& split, DecodedFeature* out,
                      codec::DecodedTensor* t) {
    FeatureRequest req;
    req.model_name = "fmnist_resnet";
    req.split = split;
    req.codec_bytes = bytes.data();
    req.codec_size = bytes.size();
    return DecodeFeature(req, *repo_, *codec_, uint64_t{1} << 26, t, out);
  }

  static ModelRepository* repo_;
  static FeatureCodec* codec_;
};
ModelRepository* FeatureDecodeTest::repo_ = nullptr;
FeatureCodec* FeatureDecodeTest::codec_ = nullptr;

TEST_F(FeatureDecodeTest, AcceptsTheSplitsShapeWithOrWithoutBatch) {
  for (codec::Mode mode : {codec::Mode::kDense, codec::Mode::kSparse, codec::Mode::kContext, codec::Mode::kPaper}) {
    DecodedFeature f;
    codec::DecodedTensor t;
    ASSERT_TRUE(Decode(Encode({3, 32, 14, 14}, mode), "stage2", &f, &t).ok());
    EXPECT_EQ(f.shape, (std::vector<int64_t>{3, 32, 14, 14}));
    EXPECT_EQ(f.split->name, "stage2");
    EXPECT_EQ(t.values.size(), 3u * 32 * 14 * 14);
  }
  DecodedFeature f;
  codec::DecodedTensor t;
  ASSERT_TRUE(Decode(Encode({64, 7, 7}), "stage3", &f, &t).ok());
  EXPECT_EQ(f.shape, (std::vector<int64_t>{1, 64, 7, 7}));
  ASSERT_TRUE(Decode(Encode({1, 32, 14, 14}), "", &f, &t).ok()) << "the default split is stage2";
}

TEST_F(FeatureDecodeTest, OtherShapesAndNamesAreClearErrors) {
  DecodedFeature f;
  codec::DecodedTensor t;
  absl::Status st = Decode(Encode({1, 16, 28, 28}), "stage2", &f, &t);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("does not match fmnist_resnet/1 split stage2"), std::string::npos) << st;
  EXPECT_EQ(Decode(Encode({257, 64, 7, 7}), "stage3", &f, &t).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Decode(Encode({1, 1, 64, 7, 7}), "stage3", &f, &t).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Decode(Encode({1, 64, 7, 7}), "stage9", &f, &t).code(), absl::StatusCode::kNotFound);
  std::vector<uint8_t> bad = Encode({1, 64, 7, 7});
  bad[bad.size() / 2] ^= 0x40;
  EXPECT_EQ(Decode(bad, "stage3", &f, &t).code(), absl::StatusCode::kDataLoss);
}

// A ~40-byte constant-layout bitstream that declares a huge tensor is refused from its header:
// the output is never allocated.
TEST_F(FeatureDecodeTest, HugeDeclaredShapeIsRefusedBeforeAllocation) {
  std::vector<float> zeros(32 * 14 * 14, 1.5f);
  auto small = codec::Encode({zeros.data(), codec::DType::kFloat32, {1, 32, 14, 14}}, {4});
  ASSERT_TRUE(small.ok());
  for (uint32_t batch : {257u, 100000u}) {
    for (uint32_t width : {14u, 14000u}) {
      std::vector<uint8_t> b = *small;
      std::memcpy(b.data() + codec::kFixedHeaderBytes, &batch, 4);                // shape[0]
      std::memcpy(b.data() + codec::kFixedHeaderBytes + 12, &width, 4);           // shape[3]
      const uint32_t crc = codec::Crc32c(b.data(), b.size() - 4);
      std::memcpy(b.data() + b.size() - 4, &crc, 4);
      DecodedFeature f;
      codec::DecodedTensor t;
      const absl::Status st = Decode(b, "stage2", &f, &t);
      EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << batch << "x" << width << ": " << st;
      EXPECT_LT(t.values.capacity(), 1u << 16) << "allocated for a tensor the split does not accept";
    }
  }
}

// The baselines: raw float32 and zstd'd AIQ symbols decode to what was sent (zstd: to the AIQ
// grid, exactly as the codec's own quantizer puts it), with the split's shape rules.
TEST_F(FeatureDecodeTest, RawAndZstdPayloadsRoundTrip) {
  const std::vector<int64_t> shape = {2, 32, 14, 14};
  std::vector<float> v(2 * 32 * 14 * 14);
  std::mt19937 rng(3);
  for (auto& x : v) x = rng() % 3 == 0 ? 0.f : (rng() % 1000) / 250.f;
  std::vector<uint8_t> raw, z;
  EncodeRawFloat32(v.data(), v.size(), &raw);
  codec::QuantParams qp;
  ASSERT_TRUE(EncodeZstdAiq(v.data(), v.size(), 4, &z, &qp).ok());
  EXPECT_LT(z.size(), v.size() * 3 / 4) << "4-bit symbols (one byte each) compress";
  std::vector<uint8_t> sym(v.size());
  codec::Quantize(v.data(), v.size(), qp, 4, sym.data());
  std::vector<float> expect(v.size());
  codec::Dequantize(sym.data(), sym.size(), qp, 4, expect.data());

  FeatureRequest req;
  req.model_name = "fmnist_resnet";
  req.split = "stage2";
  req.shape = shape;
  DecodedFeature f;
  codec::DecodedTensor t;
  req.payload = PayloadKind::kRawF32;
  req.codec_bytes = raw.data();
  req.codec_size = raw.size();
  ASSERT_TRUE(DecodeFeature(req, *repo_, *codec_, uint64_t{1} << 26, &t, &f).ok());
  EXPECT_EQ(f.shape, shape);
  EXPECT_EQ(t.values, v);
  req.payload = PayloadKind::kZstdAiq;
  req.codec_bytes = z.data();
  req.codec_size = z.size();
  req.q = 4;
  req.aiq = qp;
  ASSERT_TRUE(DecodeFeature(req, *repo_, *codec_, uint64_t{1} << 26, &t, &f).ok());
  EXPECT_EQ(t.values, expect);

  // Another split's shape, a short payload, the wrong q, a payload kind that is not a feature.
  req.split = "stage3";
  EXPECT_EQ(DecodeFeature(req, *repo_, *codec_, uint64_t{1} << 26, &t, &f).code(), absl::StatusCode::kInvalidArgument);
  req.split = "stage2";
  req.codec_size = z.size() - 3;
  EXPECT_EQ(DecodeFeature(req, *repo_, *codec_, uint64_t{1} << 26, &t, &f).code(), absl::StatusCode::kDataLoss);
  req.codec_size = z.size();
  req.q = 2;  // symbols up to 15 do not fit
  EXPECT_EQ(DecodeFeature(req, *repo_, *codec_, uint64_t{1} << 26, &t, &f).code(), absl::StatusCode::kDataLoss);
  req.payload = PayloadKind::kRawF32;
  req.codec_bytes = raw.data();
  req.codec_size = raw.size() - 4;
  EXPECT_EQ(DecodeFeature(req, *repo_, *codec_, uint64_t{1} << 26, &t, &f).code(), absl::StatusCode::kInvalidArgument);
  req.payload = PayloadKind::kInputU8;
  EXPECT_EQ(DecodeFeature(req, *repo_, *codec_, uint64_t{1} << 26, &t, &f).code(), absl::StatusCode::kInvalidArgument);
}

// A zstd frame that declares more symbols than the shape needs is refused before decompressing.
TEST_F(FeatureDecodeTest, ZstdFrameOfAnotherSizeIsRefused) {
  std::vector<float> v(2 * 32 * 14 * 14, 0.f);
  v[5] = 1.f;
  std::vector<uint8_t> z;
  codec::QuantParams qp;
  ASSERT_TRUE(EncodeZstdAiq(v.data(), v.size(), 8, &z, &qp).ok());
  FeatureRequest req;
  req.model_name = "fmnist_resnet";
  req.split = "stage2";
  req.shape = {1, 32, 14, 14};  // half of what the frame holds
  req.payload = PayloadKind::kZstdAiq;
  req.codec_bytes = z.data();
  req.codec_size = z.size();
  req.q = 8;
  req.aiq = qp;
  DecodedFeature f;
  codec::DecodedTensor t;
  const absl::Status st = DecodeFeature(req, *repo_, *codec_, uint64_t{1} << 26, &t, &f);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_NE(st.message().find("declares 12544 bytes"), std::string::npos) << st;
}

TEST_F(FeatureDecodeTest, OffloadInputsAreCheckedAndNormalized) {
  const ModelManifest& m = **repo_->Find("fmnist_resnet", "");
  std::vector<uint8_t> pixels(2 * 28 * 28);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 7);
  FeatureRequest req;
  req.model_name = "fmnist_resnet";
  req.payload = PayloadKind::kInputU8;
  req.shape = {2, 1, 28, 28};
  req.codec_bytes = pixels.data();
  req.codec_size = pixels.size();
  std::vector<float> in;
  std::vector<int64_t> shape;
  ASSERT_TRUE(DecodeOffloadInput(req, m, 1 << 20, &in, &shape).ok());
  EXPECT_EQ(shape, req.shape);
  ASSERT_EQ(in.size(), pixels.size());
  EXPECT_FLOAT_EQ(in[3], (21 / 255.f - m.mean[0]) / m.std[0]);
  std::vector<uint8_t> f32;
  EncodeRawFloat32(in.data(), in.size(), &f32);
  req.payload = PayloadKind::kInputF32;
  req.codec_bytes = f32.data();
  req.codec_size = f32.size();
  std::vector<float> back;
  ASSERT_TRUE(DecodeOffloadInput(req, m, 1 << 20, &back, &shape).ok());
  EXPECT_EQ(back, in);
  EXPECT_EQ(DecodeOffloadInput(req, m, 1000, &back, &shape).code(), absl::StatusCode::kInvalidArgument)
      << "over the element limit";
  req.shape = {2, 1, 28, 27};
  EXPECT_EQ(DecodeOffloadInput(req, m, 1 << 20, &back, &shape).code(), absl::StatusCode::kInvalidArgument);
  req.shape = {1, 1, 28, 28};  // half of the bytes
  EXPECT_EQ(DecodeOffloadInput(req, m, 1 << 20, &back, &shape).code(), absl::StatusCode::kInvalidArgument);
  float nan = std::nanf("");
  std::memcpy(f32.data(), &nan, 4);
  req.shape = {2, 1, 28, 28};
  EXPECT_EQ(DecodeOffloadInput(req, m, 1 << 20, &back, &shape).code(), absl::StatusCode::kInvalidArgument);
}

// PAYLOAD_INPUT_TOKENS: [B, T] little-endian int32 ids, each in [0, vocab), for a token model only.
TEST_F(FeatureDecodeTest, OffloadTokensAreCheckedAgainstTheVocabulary) {
  auto lm = ParseManifest(R"({"name": "lm", "version": 1,
      "input": {"shape": [8], "dtype": "INT64", "kind": "tokens", "vocab": 5},
      "output": {"shape": [5]}, "labels": ["a", "b", "c", "d", "e"], "full": "full.pt",
      "splits": {"b1": {"head": "h.pt", "tail": "t.pt", "feature_shape": [8, 4]}}})",
                          "d");
  ASSERT_TRUE(lm.ok()) << lm.status();
  std::vector<int64_t> ids(16);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int64_t>(i % 5);
  std::vector<uint8_t> bytes;
  EncodeTokensInt32(ids.data(), ids.size(), &bytes);
  v1::FeaturePacket p;
  p.set_model_name("lm");
  p.set_payload(v1::PAYLOAD_INPUT_TOKENS);
  p.set_codec_bytes(bytes.data(), bytes.size());
  p.add_shape(2);
  p.add_shape(8);
  FeatureRequest req;
  ASSERT_TRUE(FromPacket(p, &req).ok());
  EXPECT_EQ(req.payload, PayloadKind::kInputTokens);
  EXPECT_TRUE(IsFullOffload(req.payload));
  std::vector<int64_t> back, shape;
  ASSERT_TRUE(DecodeOffloadTokens(req, *lm, 1 << 20, &back, &shape).ok());
  EXPECT_EQ(back, ids);
  EXPECT_EQ(shape, (std::vector<int64_t>{2, 8}));
  req.shape = {8};  // [T] is one batch element
  req.codec_size = 32;
  ASSERT_TRUE(DecodeOffloadTokens(req, *lm, 1 << 20, &back, &shape).ok());
  EXPECT_EQ(shape, (std::vector<int64_t>{1, 8}));

  auto expect_bad = [&](FeatureRequest r, const ModelManifest& m, const std::string& why) {
    absl::Status st = DecodeOffloadTokens(r, m, 1 << 20, &back, &shape);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << why;
    EXPECT_NE(st.message().find(why), std::string::npos) << st;
  };
  req.shape = {2, 8};
  req.codec_size = bytes.size();
  FeatureRequest r = req;
  r.codec_size = bytes.size() - 1;
  expect_bad(r, *lm, "token payload has 63 bytes, the shape needs 64");
  r = req;
  r.shape = {2, 7};
  expect_bad(r, *lm, "token input shape [2,7] does not match lm/1 input shape [B,8]");
  r = req;
  r.shape = {kMaxBatch + 1, 8};
  expect_bad(r, *lm, "does not match");
  std::vector<uint8_t> hostile = bytes;
  hostile[4 * 11] = 5;  // id 11 = 5 = vocab
  r = req;
  r.codec_bytes = hostile.data();
  expect_bad(r, *lm, "id 5 at position 11 is outside the vocabulary [0, 5)");
  hostile[4 * 11 + 3] = 0x80;  // negative
  expect_bad(r, *lm, "at position 11 is outside the vocabulary");
  // Over the server's element limit, before anything is read.
  absl::Status st = DecodeOffloadTokens(req, *lm, 10, &back, &shape);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  // Token ids for an image model, and image inputs for a token model.
  expect_bad(req, **repo_->Find("fmnist_resnet", ""), "takes images: PAYLOAD_INPUT_TOKENS is for token models");
  std::vector<float> in;
  r = req;
  r.payload = PayloadKind::kInputF32;
  st = DecodeOffloadInput(r, *lm, 1 << 20, &in, &shape);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("takes token ids"), std::string::npos) << st;
}

}  // namespace
}  // namespace splitrans::cloud

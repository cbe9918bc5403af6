// DecodeLimits: max_elements, max_shape and the caller's accept_shape, in Decode, DecodeInto,
// PeekShape and Inspect alike, after the checksum and before the layout body.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "codec/crc32c.h"
#include "codec/wire.h"

namespace splitrans::codec {
namespace {

std::vector<uint8_t> Sample(const std::vector<int64_t>& shape, Mode mode = Mode::kDense) {
  uint64_t t = 1;
  for (int64_t d : shape) t *= static_cast<uint64_t>(d);
  std::vector<float> x(t);
  for (uint64_t i = 0; i < t; ++i) x[i] = static_cast<float>((i * 7) % 13);
  EncodeOptions opt;
  opt.mode = mode;
  auto enc = Encode(TensorView{x.data(), DType::kFloat32, shape}, opt);
  EXPECT_TRUE(enc.ok()) << enc.status().ToString();
  return enc.ok() ? *enc : std::vector<uint8_t>();
}

// The status of each entry point on b under limits (in this order: Decode, DecodeInto,
// PeekShape, Inspect).
std::vector<Status> AllEntryPoints(const std::vector<uint8_t>& b, const DecodeLimits& limits) {
  std::vector<Status> out;
  Decoder dec(limits);
  DecodedTensor t;
  out.push_back(dec.Decode(b.data(), b.size(), &t));
  std::vector<float> buf(1 << 12);
  std::vector<int64_t> shape;
  out.push_back(dec.DecodeInto(b.data(), b.size(), buf.data(), buf.size(), &shape));
  out.push_back(PeekShape(b.data(), b.size(), &shape, limits));
  out.push_back(Inspect(b.data(), b.size(), limits).status());
  return out;
}

TEST(DecodeLimits, MaxShape) {
  const std::vector<uint8_t> b = Sample({3, 5, 7});
  struct Case {
    std::vector<int64_t> max_shape;
    ErrorCode want;
  };
  const std::vector<Case> cases = {
      {{}, ErrorCode::kOk},
      {{3, 5, 7}, ErrorCode::kOk},
      {{4, 100, 7}, ErrorCode::kOk},
      {{3, 5, 6}, ErrorCode::kLimitExceeded},     // last dimension over
      {{2, 5, 7}, ErrorCode::kLimitExceeded},     // first dimension over
      {{3, 35}, ErrorCode::kLimitExceeded},       // rank 2 < 3, even with room for the elements
      {{3, 5, 7, 1}, ErrorCode::kLimitExceeded},  // rank 4 > 3
      {{0, 0, 0}, ErrorCode::kLimitExceeded},
  };
  for (const Case& c : cases) {
    DecodeLimits limits;
    limits.max_shape = c.max_shape;
    for (const Status& s : AllEntryPoints(b, limits)) {
      EXPECT_EQ(s.code(), c.want) << ::testing::PrintToString(c.max_shape) << ": " << s.ToString();
      if (c.want == ErrorCode::kLimitExceeded) {
        // The message names the declared and the allowed shape.
        EXPECT_NE(s.message().find("[3, 5, 7]"), std::string::npos) << s.message();
        std::string allowed = "[";
        for (size_t i = 0; i < c.max_shape.size(); ++i) allowed += (i ? ", " : "") + std::to_string(c.max_shape[i]);
        EXPECT_NE(s.message().find(allowed + "]"), std::string::npos) << s.message();
      }
    }
  }
  // A zero dimension fits whatever is allowed there.
  const std::vector<uint8_t> empty = Sample({0, 4});
  DecodeLimits limits;
  limits.max_shape = {0, 4};
  for (const Status& s : AllEntryPoints(empty, limits)) EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST(DecodeLimits, AcceptShapeIsCalledOnceAndItsStatusReturned) {
  for (Mode mode : {Mode::kDense, Mode::kSparse, Mode::kPaper, Mode::kContext, Mode::kAuto}) {
    const std::vector<uint8_t> b = Sample({4, 6, 8}, mode);
    int calls = 0;
    std::vector<int64_t> seen;
    DecodeLimits limits;
    limits.accept_shape = [&](const std::vector<int64_t>& shape) {
      ++calls;
      seen = shape;
      return Status::Ok();
    };
    for (const Status& s : AllEntryPoints(b, limits)) EXPECT_TRUE(s.ok()) << s.ToString();
    EXPECT_EQ(calls, 4) << ModeName(mode);  // once per entry point
    EXPECT_EQ(seen, (std::vector<int64_t>{4, 6, 8}));

    // A refusal comes back unchanged, before anything is decoded into the output.
    calls = 0;
    limits.accept_shape = [&](const std::vector<int64_t>& shape) {
      ++calls;
      return Status(ErrorCode::kInvalidArgument, "want [4, 6, 9]");
    };
    for (const Status& s : AllEntryPoints(b, limits)) {
      EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
      EXPECT_EQ(s.message(), "want [4, 6, 9]");
    }
    EXPECT_EQ(calls, 4);
    Decoder dec(limits);
    DecodedTensor out;
    out.values.assign(3, 1.5f);
    EXPECT_EQ(dec.Decode(b.data(), b.size(), &out).code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(out.values, (std::vector<float>{1.5f, 1.5f, 1.5f}));
    EXPECT_TRUE(out.shape.empty());
  }
}

TEST(DecodeLimits, AcceptShapeRunsAfterTheOtherChecks) {
  const std::vector<uint8_t> good = Sample({3, 5, 7});
  int calls = 0;
  DecodeLimits limits;
  limits.accept_shape = [&](const std::vector<int64_t>&) {
    ++calls;
    return Status::Ok();
  };
  std::vector<uint8_t> bad = good;
  bad[bad.size() / 2] ^= 1;
  for (const Status& s : AllEntryPoints(bad, limits)) EXPECT_EQ(s.code(), ErrorCode::kChecksumMismatch);
  std::vector<uint8_t> cut(good.begin(), good.end() - 1);
  for (const Status& s : AllEntryPoints(cut, limits)) EXPECT_EQ(s.code(), ErrorCode::kTruncated);
  DecodeLimits small = limits;
  small.max_elements = 104;
  for (const Status& s : AllEntryPoints(good, small)) EXPECT_EQ(s.code(), ErrorCode::kLimitExceeded);
  DecodeLimits narrow = limits;
  narrow.max_shape = {3, 5, 6};
  for (const Status& s : AllEntryPoints(good, narrow)) EXPECT_EQ(s.code(), ErrorCode::kLimitExceeded);
  EXPECT_EQ(calls, 0);
  // max_elements is checked before max_shape: its message wins.
  small.max_shape = {3, 5, 6};
  std::vector<int64_t> shape;
  const Status s = PeekShape(good.data(), good.size(), &shape, small);
  EXPECT_NE(s.message().find("max_elements"), std::string::npos) << s.message();
  // The layout body is checked after the shape was accepted: an unknown stream kind (checksum fixed).
  std::vector<uint8_t> body = good;
  body[kFixedHeaderBytes + 3 * 4] = 7;
  const uint32_t crc = Crc32c(body.data(), body.size() - kChecksumBytes);
  std::memcpy(body.data() + body.size() - kChecksumBytes, &crc, 4);
  Decoder dec(limits);
  DecodedTensor out;
  EXPECT_EQ(dec.Decode(body.data(), body.size(), &out).code(), ErrorCode::kCorruptPayload);
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace splitrans::codec

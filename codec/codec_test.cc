// Unit tests for the codec's public API: round trips over layouts, Q and shapes.
#include "codec/codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

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

}  // namespace
}  // namespace splitrans::codec

// Unit tests for CRC32C (codec/crc32c.h) against a bitwise reference.
#include "codec/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace splitrans::codec {
namespace {

// Bit-at-a-time CRC32C (reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF).
uint32_t BitwiseCrc32c(const uint8_t* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
  }
  return ~c;
}

TEST(Crc32c, CheckValue) {
  const std::string s = "123456789";
  EXPECT_EQ(Crc32c(reinterpret_cast<const uint8_t*>(s.data()), s.size()), 0xE3069283u);
  EXPECT_EQ(BitwiseCrc32c(reinterpret_cast<const uint8_t*>(s.data()), s.size()), 0xE3069283u);
}

TEST(Crc32c, KnownVectors) {
  // RFC 3720 (iSCSI) B.4 test vectors.
  std::vector<uint8_t> zeros(32, 0), ones(32, 0xFF), inc(32), dec(32);
  for (int i = 0; i < 32; ++i) inc[i] = static_cast<uint8_t>(i), dec[i] = static_cast<uint8_t>(31 - i);
  EXPECT_EQ(Crc32c(zeros.data(), 32), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(ones.data(), 32), 0x62A8AB43u);
  EXPECT_EQ(Crc32c(inc.data(), 32), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(dec.data(), 32), 0x113FDB5Cu);
  EXPECT_EQ(Crc32c(nullptr, 0), 0u);
}

TEST(Crc32c, EverySizeAndAlignmentMatchesBitwise) {
  std::mt19937 rng(31);
  std::vector<uint8_t> buf(64 + 16);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t n = 0; n <= 64; ++n) {
      ASSERT_EQ(Crc32c(buf.data() + offset, n), BitwiseCrc32c(buf.data() + offset, n))
          << "offset=" << offset << " n=" << n;
    }
  }
}

TEST(Crc32c, LargeRandomBuffers) {
  std::mt19937 rng(32);
  // Sizes around the 3 x 1024-byte interleaved chunks of the SSE4.2 path.
  for (size_t n : {100, 1000, 3071, 3072, 3073, 4095, 4096, 4097, 6144, 6151, 9216, 100000, 100003}) {
    std::vector<uint8_t> buf(n);
    for (auto& b : buf) b = static_cast<uint8_t>(rng());
    ASSERT_EQ(Crc32c(buf.data(), n), BitwiseCrc32c(buf.data(), n)) << n;
  }
}

TEST(Crc32c, DetectsEverySingleBitFlip) {
  std::vector<uint8_t> buf(100);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<uint8_t>(i * 13 + 1);
  const uint32_t base = Crc32c(buf.data(), buf.size());
  for (size_t i = 0; i < buf.size(); ++i) {
    for (int b = 0; b < 8; ++b) {
      buf[i] ^= static_cast<uint8_t>(1u << b);
      ASSERT_NE(Crc32c(buf.data(), buf.size()), base) << i << " " << b;
      buf[i] ^= static_cast<uint8_t>(1u << b);
    }
  }
}

}  // namespace
}  // namespace splitrans::codec

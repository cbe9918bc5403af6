// CRC32C with a slicing-by-8 table and an SSE4.2 path, chosen per call by ActiveSimdLevel().
#include "codec/crc32c.h"

#include <array>
#include <cstring>

#include "codec/cpu_features.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace splitrans::codec {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;

struct Tables {
  std::array<std::array<uint32_t, 256>, 8> t{};
  Tables() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1) ? kPoly : 0);
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i) {
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
    }
  }
};

uint32_t Crc32cPortable(const uint8_t* p, size_t n) {
  static const Tables tables;
  const auto& t = tables.t;
  uint32_t c = 0xFFFFFFFFu;
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    w ^= c;
    c = t[7][w & 0xff] ^ t[6][(w >> 8) & 0xff] ^ t[5][(w >> 16) & 0xff] ^ t[4][(w >> 24) & 0xff] ^
        t[3][(w >> 32) & 0xff] ^ t[2][(w >> 40) & 0xff] ^ t[1][(w >> 48) & 0xff] ^ t[0][w >> 56];
    p += 8;
    n -= 8;
  }
  while (n--) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xff];
  return c ^ 0xFFFFFFFFu;
}

#if defined(__x86_64__)
// Three independent crc32 chains (the instruction has a latency of 3 and a throughput of 1)
// over consecutive chunks A, B, C of kChunk bytes, then combined: the register after A B C is
// S_2L(a) ^ S_L(b) ^ c, where a is the register after A, b and c those of B and C started from
// 0, and S_k (linear over GF(2)) advances a register over k zero bytes.
constexpr size_t kChunk = 1024;

struct ShiftTables {
  uint32_t t[2][4][256];  // [0]: S_L, [1]: S_2L, byte-sliced
};

__attribute__((target("sse4.2"))) uint32_t AdvanceOverZeros(uint64_t c, size_t zeros) {
  for (size_t i = 0; i < zeros; i += 8) c = _mm_crc32_u64(c, 0);
  return static_cast<uint32_t>(c);
}

const ShiftTables& GetShiftTables() {
  static const ShiftTables* tables = [] {
    auto* st = new ShiftTables;
    for (int which = 0; which < 2; ++which) {
      const size_t zeros = kChunk * (which + 1);
      uint32_t basis[32];
      for (int bit = 0; bit < 32; ++bit) {
        basis[bit] = AdvanceOverZeros(uint64_t{1} << bit, zeros);
      }
      for (int j = 0; j < 4; ++j) {
        for (uint32_t b = 0; b < 256; ++b) {
          uint32_t v = 0;
          for (int bit = 0; bit < 8; ++bit)
            if (b >> bit & 1) v ^= basis[8 * j + bit];
          st->t[which][j][b] = v;
        }
      }
    }
    return st;
  }();
  return *tables;
}

inline uint32_t Shift(const uint32_t (&t)[4][256], uint32_t c) {
  return t[0][c & 0xff] ^ t[1][(c >> 8) & 0xff] ^ t[2][(c >> 16) & 0xff] ^ t[3][c >> 24];
}

__attribute__((target("sse4.2"))) uint32_t Crc32cSse42(const uint8_t* p, size_t n) {
  uint64_t c = 0xFFFFFFFFu;
  if (n >= 3 * kChunk) {
    const ShiftTables& st = GetShiftTables();
    while (n >= 3 * kChunk) {
      uint64_t c1 = 0, c2 = 0;
      for (size_t i = 0; i < kChunk; i += 8) {
        uint64_t w0, w1, w2;
        std::memcpy(&w0, p + i, 8);
        std::memcpy(&w1, p + kChunk + i, 8);
        std::memcpy(&w2, p + 2 * kChunk + i, 8);
        c = _mm_crc32_u64(c, w0);
        c1 = _mm_crc32_u64(c1, w1);
        c2 = _mm_crc32_u64(c2, w2);
      }
      c = Shift(st.t[1], static_cast<uint32_t>(c)) ^ Shift(st.t[0], static_cast<uint32_t>(c1)) ^ c2;
      p += 3 * kChunk;
      n -= 3 * kChunk;
    }
  }
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    c = _mm_crc32_u64(c, w);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n--) c32 = _mm_crc32_u8(c32, *p++);
  return c32 ^ 0xFFFFFFFFu;
}
#endif

}  // namespace

uint32_t Crc32c(const uint8_t* data, size_t n) {
#if defined(__x86_64__)
  if (ActiveSimdLevel() >= SimdLevel::kSse42) return Crc32cSse42(data, n);
#endif
  return Crc32cPortable(data, n);
}

}  // namespace splitrans::codec

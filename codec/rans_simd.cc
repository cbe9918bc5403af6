// AVX-512 rANS block kernels (see rans_simd.h). Lanes 0..15 live in register 0 and 16..31 in
// register 1; the encoder handles register 1 before register 0 and the decoder register 0 first,
// which reproduces the scalar coder's descending / ascending lane order within a step.
#include "codec/rans_simd.h"

#include "codec/cpu_features.h"
#include "codec/rans.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace splitrans::codec {

#if defined(__x86_64__)

bool HaveAvx512Rans() { return ActiveSimdLevel() >= SimdLevel::kAvx512; }

namespace {

#define SPLITRANS_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

SPLITRANS_AVX512 inline __m512i MulHi32(__m512i a, __m512i b) {
  const __m512i even = _mm512_srli_epi64(_mm512_mul_epu32(a, b), 32);
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), _mm512_srli_epi64(b, 32));
  return _mm512_mask_blend_epi32(0xAAAA, even, odd);
}

// Symbol tables: for alphabets up to 16 they live in registers (permutes, no gathers).
struct EncTables {
  const uint32_t* fs;
  const uint32_t* rcp;
  bool small;
  __m512i fs_reg, rcp_reg;
};

// One encoder step for 16 lanes: flush, then x = (x / f) << pb + x % f + start.
SPLITRANS_AVX512 inline __m512i EncStep16(__m512i x, const uint8_t* sym, const EncTables& t, __m128i pb,
                                          __m128i xmax_shift, uint16_t** wp) {
  const __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sym)));
  const __m512i e = t.small ? _mm512_permutexvar_epi32(idx, t.fs_reg) : _mm512_i32gather_epi32(idx, t.fs, 4);
  const __m512i r = t.small ? _mm512_permutexvar_epi32(idx, t.rcp_reg) : _mm512_i32gather_epi32(idx, t.rcp, 4);
  const __m512i freq = _mm512_and_si512(e, _mm512_set1_epi32(0xffff));
  const __m512i start = _mm512_srli_epi32(e, 16);
  const __mmask16 need = _mm512_cmpge_epu32_mask(x, _mm512_sll_epi32(freq, xmax_shift));
  const int count = __builtin_popcount(need);
  *wp -= count;
  const __m256i words = _mm512_cvtepi32_epi16(_mm512_maskz_compress_epi32(need, x));
  _mm256_mask_storeu_epi16(*wp, static_cast<__mmask16>((1u << count) - 1), words);
  x = _mm512_mask_srli_epi32(x, need, x, 16);
  __m512i q = MulHi32(x, r);
  __m512i rem = _mm512_sub_epi32(x, _mm512_mullo_epi32(q, freq));
  const __mmask16 fix = _mm512_cmpge_epu32_mask(rem, freq);
  q = _mm512_mask_add_epi32(q, fix, q, _mm512_set1_epi32(1));
  rem = _mm512_mask_sub_epi32(rem, fix, rem, freq);
  return _mm512_add_epi32(_mm512_add_epi32(_mm512_sll_epi32(q, pb), rem), start);
}

SPLITRANS_AVX512 inline __m512i DecStep16(__m512i x, const uint32_t* dtab, __m128i pb, __m512i mask,
                                          const uint8_t** wp, uint8_t* out) {
  const __m512i e = _mm512_i32gather_epi32(_mm512_and_si512(x, mask), dtab, 4);
  const __m512i freq = _mm512_and_si512(_mm512_srli_epi32(e, 12), _mm512_set1_epi32(0xfff));
  const __m512i bias = _mm512_and_si512(e, _mm512_set1_epi32(0xfff));
  x = _mm512_add_epi32(_mm512_mullo_epi32(freq, _mm512_srl_epi32(x, pb)), bias);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8(_mm512_srli_epi32(e, 24)));
  const __mmask16 need = _mm512_cmplt_epu32_mask(x, _mm512_set1_epi32(kRansL));
  const __m512i words = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(*wp)));
  *wp += 2 * __builtin_popcount(need);
  // Lanes that need a word: x << 16 | word; the others keep x (their expanded word is 0).
  return _mm512_or_si512(_mm512_mask_slli_epi32(x, need, x, 16), _mm512_maskz_expand_epi32(need, words));
}

}  // namespace

SPLITRANS_AVX512 void EncodeBlock32Avx512(const uint8_t* symbols, size_t m, const uint32_t* fs, const uint32_t* rcp,
                                          int alphabet, int prob_bits, uint32_t* x, uint16_t** wp) {
  EncTables t{fs, rcp, alphabet <= 16, _mm512_loadu_si512(fs), _mm512_loadu_si512(rcp)};
  const __m128i pb = _mm_cvtsi32_si128(prob_bits);
  const __m128i xmax_shift = _mm_cvtsi32_si128(32 - prob_bits);
  __m512i x0 = _mm512_loadu_si512(x), x1 = _mm512_loadu_si512(x + 16);
  for (size_t j = m; j >= 32; j -= 32) {
    x1 = EncStep16(x1, symbols + j - 16, t, pb, xmax_shift, wp);
    x0 = EncStep16(x0, symbols + j - 32, t, pb, xmax_shift, wp);
  }
  _mm512_storeu_si512(x, x0);
  _mm512_storeu_si512(x + 16, x1);
}

SPLITRANS_AVX512 size_t DecodeBlock32Avx512(const uint32_t* dtab, int prob_bits, size_t m, uint32_t* x,
                                            const uint8_t** wp, const uint8_t* wend, uint8_t* out) {
  const __m128i pb = _mm_cvtsi32_si128(prob_bits);
  const __m512i mask = _mm512_set1_epi32((1 << prob_bits) - 1);
  __m512i x0 = _mm512_loadu_si512(x), x1 = _mm512_loadu_si512(x + 16);
  size_t j = 0;
  // A local word pointer: the symbol stores could alias *wp and force it through memory.
  const uint8_t* w = *wp;
  // Each register reads at most 16 words (32 bytes); keep both reads inside the block.
  for (; j + 32 <= m && wend - w >= 64; j += 32) {
    x0 = DecStep16(x0, dtab, pb, mask, &w, out + j);
    x1 = DecStep16(x1, dtab, pb, mask, &w, out + j + 16);
  }
  *wp = w;
  _mm512_storeu_si512(x, x0);
  _mm512_storeu_si512(x + 16, x1);
  return j;
}

SPLITRANS_AVX512 size_t DecodeBlocks32x2Avx512(const uint32_t* dtab, int prob_bits, size_t m, uint32_t* xa,
                                               const uint8_t** wpa, const uint8_t* wenda, uint8_t* outa, uint32_t* xb,
                                               const uint8_t** wpb, const uint8_t* wendb, uint8_t* outb) {
  const __m128i pb = _mm_cvtsi32_si128(prob_bits);
  const __m512i mask = _mm512_set1_epi32((1 << prob_bits) - 1);
  __m512i a0 = _mm512_loadu_si512(xa), a1 = _mm512_loadu_si512(xa + 16);
  __m512i b0 = _mm512_loadu_si512(xb), b1 = _mm512_loadu_si512(xb + 16);
  size_t j = 0;
  const uint8_t* wa = *wpa;
  const uint8_t* wb = *wpb;
  // Two blocks are independent: their steps overlap.
  for (; j + 32 <= m && wenda - wa >= 64 && wendb - wb >= 64; j += 32) {
    a0 = DecStep16(a0, dtab, pb, mask, &wa, outa + j);
    b0 = DecStep16(b0, dtab, pb, mask, &wb, outb + j);
    a1 = DecStep16(a1, dtab, pb, mask, &wa, outa + j + 16);
    b1 = DecStep16(b1, dtab, pb, mask, &wb, outb + j + 16);
  }
  *wpa = wa;
  *wpb = wb;
  _mm512_storeu_si512(xa, a0);
  _mm512_storeu_si512(xa + 16, a1);
  _mm512_storeu_si512(xb, b0);
  _mm512_storeu_si512(xb + 16, b1);
  return j;
}

#else

bool HaveAvx512Rans() { return false; }
size_t DecodeBlocks32x2Avx512(const uint32_t*, int, size_t, uint32_t*, const uint8_t**, const uint8_t*, uint8_t*,
                              uint32_t*, const uint8_t**, const uint8_t*, uint8_t*) {
  return 0;
}
void EncodeBlock32Avx512(const uint8_t*, size_t, const uint32_t*, const uint32_t*, int, int, uint32_t*, uint16_t**) {}
size_t DecodeBlock32Avx512(const uint32_t*, int, size_t, uint32_t*, const uint8_t**, const uint8_t*, uint8_t*) {
  return 0;
}

#endif

}  // namespace splitrans::codec

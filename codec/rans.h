// rANS core: the per-lane encode/decode steps shared by the CPU codec and the CUDA kernels.
//
// Read me first.
// - rANS codes a symbol of probability freq / 2^prob_bits by turning the state x into
//   x' = floor(x / freq) * 2^prob_bits + (x mod freq) + start, which grows x by about
//   log2(2^prob_bits / freq) bits. Decoding inverts it: slot = x mod 2^prob_bits identifies the
//   symbol (start <= slot < start + freq), and x = freq * floor(x / 2^prob_bits) + slot - start.
// - The state is a 32-bit integer kept in [kRansL, 2^32) with kRansL = 2^16: when a step would
//   leave that interval the encoder first emits the low 16 bits (renormalization) and the
//   decoder, after its step, reads 16 bits back. kRansL = 2^16 and prob_bits <= 15 guarantee
//   that at most one 16-bit word moves per symbol and that the encoder's bound
//   x_max = freq << (32 - prob_bits) fits in 32 bits.
// - rANS is last-in first-out: the encoder walks the symbols backwards and writes its words
//   backwards (from the end of a buffer towards the start), so the decoder walks forwards and
//   reads forwards. The encoder's final states are stored first; the decoder starts from them
//   and must end on kRansL in every lane (an integrity check).
// - Interleaving: a block of symbols is shared by W = 2^lanes_log2 independent states; symbol
//   j of the block belongs to lane j mod W. All lanes share one word stream in that order,
//   which lets W SIMD lanes or W GPU threads of a warp code one block together and produce the
//   same bytes as this scalar code.
// - Division: the encoder divides by freq with a reciprocal rcp = floor(2^32 / freq)
//   (0xFFFFFFFF for freq = 1): q = mulhi(x, rcp) is at most one too small and one compare
//   fixes it, so the result is exact for every 32-bit x.
#pragma once

#include <cstdint>

#include "codec/host_device.h"

namespace splitrans::codec {

constexpr uint32_t kRansL = 1u << 16;  // lower bound of the normalized state interval
constexpr int kRansWordBits = 16;      // renormalization unit

// Encoder-side description of one symbol (or one binary event).
struct RansEncSymbol {
  uint32_t rcp;    // floor(2^32 / freq), 0xFFFFFFFF for freq == 1
  uint16_t freq;   // 1 .. 2^prob_bits - 1
  uint16_t start;  // cumulative frequency of the symbols before it
};

SPLITRANS_HD uint32_t RansReciprocal(uint32_t freq) {
  return freq <= 1 ? 0xFFFFFFFFu : static_cast<uint32_t>((uint64_t{1} << 32) / freq);
}

SPLITRANS_HD RansEncSymbol MakeRansEncSymbol(uint32_t start, uint32_t freq) {
  RansEncSymbol s;
  s.rcp = RansReciprocal(freq);
  s.freq = static_cast<uint16_t>(freq);
  s.start = static_cast<uint16_t>(start);
  return s;
}

SPLITRANS_HD uint32_t MulHi32(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
}

// True when x must emit its low 16 bits before coding s.
SPLITRANS_HD bool RansEncNeedsFlush(uint32_t x, uint32_t freq, int prob_bits) {
  return x >= (freq << (32 - prob_bits));
}

// The coding step proper. REQUIRES: !RansEncNeedsFlush(x, s.freq, prob_bits).
SPLITRANS_HD uint32_t RansEncStep(uint32_t x, const RansEncSymbol& s, int prob_bits) {
  uint32_t q = MulHi32(x, s.rcp);
  uint32_t r = x - q * s.freq;
  if (r >= s.freq) {
    q += 1;
    r -= s.freq;
  }
  return (q << prob_bits) + r + s.start;
}

// Decoder step for a symbol whose slot range is [start, start + freq).
SPLITRANS_HD uint32_t RansDecStep(uint32_t x, uint32_t start, uint32_t freq, int prob_bits) {
  uint32_t mask = (1u << prob_bits) - 1;
  return freq * (x >> prob_bits) + (x & mask) - start;
}

}  // namespace splitrans::codec

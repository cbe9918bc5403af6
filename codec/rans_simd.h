// AVX-512 kernels for full 32-lane rANS blocks of byte symbols (prob_bits <= 12), producing and
// consuming exactly the bytes of the scalar coder in rans_stream.cc. Chosen per stream by
// HaveAvx512Rans().
#pragma once

#include <cstddef>
#include <cstdint>

namespace splitrans::codec {

// True when the kernels below may run now: ActiveSimdLevel() >= kAvx512 (codec/cpu_features.h).
bool HaveAvx512Rans();

// Encodes symbols [0, m) of one block with 32 interleaved lanes, backwards, continuing from
// states x[32] (host) and prepending words before *wp. Only whole 32-symbol steps: REQUIRES
// m % 32 == 0 (the caller codes the trailing partial step first, with the scalar coder).
// fs[s] = freq | start << 16 and rcp[s] for each symbol value (host, 256 entries each);
// symbols are < alphabet (<= 16 selects in-register table lookups).
void EncodeBlock32Avx512(const uint8_t* symbols, size_t m, const uint32_t* fs, const uint32_t* rcp, int alphabet,
                         int prob_bits, uint32_t* x, uint16_t** wp);

// Decodes whole 32-symbol steps from the start of a block while at least 32 words remain
// readable before wend, writing symbols to out. dtab[slot] = sym << 24 | freq << 12 | bias
// (host, 2^prob_bits entries). Updates x[32], *wp and returns the number of symbols decoded
// (a multiple of 32, at most m).
size_t DecodeBlock32Avx512(const uint32_t* dtab, int prob_bits, size_t m, uint32_t* x, const uint8_t** wp,
                           const uint8_t* wend, uint8_t* out);

// The same for two blocks a and b of one stream at once (their dependency chains overlap):
// decodes the same number of whole 32-symbol steps, at most m, from each and returns it.
size_t DecodeBlocks32x2Avx512(const uint32_t* dtab, int prob_bits, size_t m, uint32_t* xa, const uint8_t** wpa,
                              const uint8_t* wenda, uint8_t* outa, uint32_t* xb, const uint8_t** wpb,
                              const uint8_t* wendb, uint8_t* outb);

}  // namespace splitrans::codec

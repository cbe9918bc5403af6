// Decode kernels of the CUDA dense codec (gpu_decoder.cu enqueues them). The host has already
// validated every header, table and block index these kernels see; they check only what lies
// in the coded payload (initial states, word counts, final states), like the CPU decoder.
//   ProbeKernel      device-resident bitstreams: CRC32C and the prefix the host parses
//   RansDecodeKernel one warp per rANS block, dequantizing straight into the output
//   FillKernel       constant tensors
// Included by exactly one .cu file.
#pragma once

#include <cstdint>

#include "codec/cuda/device_util.cuh"
#include "codec/cuda/gpu_core.h"
#include "codec/quantize.h"

namespace splitrans::codec::gpu {

// One CTA per kProbeChunk bytes of each bitstream: checksums its part of [0, 24 + body_size)
// when the input is long enough for the declared body (else the host reports TRUNCATED before
// it needs the checksum), and the first CTA copies the prefix and the stored checksum.
__global__ void __launch_bounds__(kProbeThreads) ProbeKernel(ProbeBatch B) {
  __shared__ uint32_t lut[4 * 256];
  __shared__ uint32_t crc_scratch[32];
  const uint32_t i = FindItem(B.chunk_prefix, B.count, blockIdx.x);
  const uint32_t c = blockIdx.x - B.chunk_prefix[i];
  const ProbeItem& it = B.items[i];
  const uint8_t* data = it.data;
  if (c == 0) {
    for (uint32_t k = threadIdx.x; k < it.prefix_bytes; k += blockDim.x) B.staging[it.prefix_offset + k] = data[k];
  }
  if (it.size < kFixedHeaderBytes + kChecksumBytes) return;
  const uint64_t body_end = kFixedHeaderBytes + uint64_t{LoadU32Bytes(data + 20)};
  if (it.size < body_end + kChecksumBytes) return;
  if (c == 0 && threadIdx.x == 0) B.results[i].stored = LoadU32Bytes(data + body_end);
  const uint64_t begin = uint64_t{c} * kProbeChunk;
  if (begin >= body_end) return;
  const uint64_t end = min(begin + kProbeChunk, body_end);
  LoadCrcLut(B.crc, lut);
  __syncthreads();
  const uint32_t raw = CtaCrcRaw(data, begin, end, lut, B.crc->x2n, crc_scratch);
  if (threadIdx.x == 0) atomicXor(&B.results[i].crc_xor, CrcShift(raw, body_end - end, B.crc->x2n));
}

__device__ inline uint32_t LoadWord(const uint8_t* words, uint32_t k, uint32_t count) {
  return k < count ? (static_cast<uint32_t>(words[2 * k]) | static_cast<uint32_t>(words[2 * k + 1]) << 8) : 0u;
}

// Decodes one rANS block with one warp. Lane l owns symbols j = l (mod W); in each round the
// lanes that renormalize take the next words in lane order, so a ballot gives each its word.
// The warp keeps the next 64 words in two registers per lane (A: words wp..wp+31, Bw: the 32
// after) and shifts them with shuffles. kPacked: slot -> sym << 24 | freq << 12 | bias (one
// lookup, prob_bits <= 12); else slot -> sym, then sym -> freq | start << 16.
// Returns false where the CPU decoder reports CORRUPT_PAYLOAD (identical on all lanes).
template <bool kPacked>
__device__ inline bool DecodeWarpBlock(const uint8_t* p, uint32_t wc, uint32_t m, uint32_t lanes_log2, int pb,
                                       const uint32_t* packed, const uint8_t* sym_of_slot, const uint32_t* fs,
                                       const float* lut, float* __restrict__ dst) {
  const uint32_t lane = threadIdx.x & 31;
  const uint32_t W = 1u << lanes_log2;
  const uint8_t* words = p + 4 * W;
  const bool lane_on = lane < W;
  const uint32_t below = (1u << lane) - 1;
  const uint32_t mask_pb = (1u << pb) - 1;
  uint32_t x = lane_on ? LoadU32Bytes(p + 4 * lane) : kRansL;
  if (__ballot_sync(kFullMask, lane_on && x < kRansL) != 0) return false;
  uint32_t wp = 0;
  uint32_t A = LoadWord(words, lane, wc), Bw = LoadWord(words, 32 + lane, wc);
  const uint32_t rounds = (m + W - 1) >> lanes_log2;
  for (uint32_t r = 0; r < rounds; ++r) {
    const uint32_t j = r * W + lane;
    const bool active = lane_on && j < m;
    uint32_t s = 0;
    if (active) {
      const uint32_t slot = x & mask_pb;
      if (kPacked) {
        const uint32_t e = packed[slot];
        s = e >> 24;
        x = ((e >> 12) & 0xfff) * (x >> pb) + (e & 0xfff);
      } else {
        s = sym_of_slot[slot];
        const uint32_t f = fs[s];
        x = (f & 0xffff) * (x >> pb) + slot - (f >> 16);
      }
    }
    const bool need = active && x < kRansL;
    const uint32_t mask = __ballot_sync(kFullMask, need);
    const uint32_t cnt = __popc(mask);
    if (wp + cnt > wc) return false;  // ran out of words (uniform)
    const uint32_t w = __shfl_sync(kFullMask, A, __popc(mask & below) & 31);
    if (need) x = (x << 16) | w;
    if (active) dst[j] = lut[s];
    const uint32_t src = lane + cnt;
    const uint32_t a1 = __shfl_sync(kFullMask, A, src & 31);
    const uint32_t b1 = __shfl_sync(kFullMask, Bw, src & 31);
    A = src < 32 ? a1 : b1;
    Bw = src < 32 ? b1 : LoadWord(words, wp + cnt + 32 + lane, wc);
    wp += cnt;
  }
  if (wp != wc) return false;  // unused words (uniform)
  return __all_sync(kFullMask, !lane_on || x == kRansL);
}

// One CTA per kDecWarpsPerCta blocks of one item: its decoder table (gpu_plan.cc
// BuildDecodeTable) and the dequantization table go to shared memory, then each warp decodes
// one block straight into float32 output.
__global__ void __launch_bounds__(kDecWarpsPerCta * 32) RansDecodeKernel(DecBatch B) {
  constexpr uint32_t kTableWords = (1u << kMaxProbBits) / 4 + kMaxDenseAlphabet;  // 32 KB slots + fs
  __shared__ __align__(16) uint32_t table[kTableWords];
  __shared__ float lut[kMaxDenseAlphabet];
  const uint32_t i = FindItem(B.cta_prefix, B.count, blockIdx.x);
  const uint32_t group = blockIdx.x - B.cta_prefix[i];
  const DecItem& it = B.items[i];
  const int pb = it.prob_bits;
  const bool packed = pb <= kPackedMaxProbBits;
  const uint32_t table_bytes = packed ? 4u << pb : it.table_fs_offset + 4 * it.alphabet;
  for (uint32_t k = threadIdx.x; k < (table_bytes + 15) / 16; k += blockDim.x) {
    reinterpret_cast<uint4*>(table)[k] = __ldg(reinterpret_cast<const uint4*>(it.table) + k);
  }
  for (uint32_t s = threadIdx.x; s < kMaxDenseAlphabet; s += blockDim.x) {
    lut[s] = DequantizeOne(s, it.zero_point, it.scale);
  }
  __syncthreads();

  const uint32_t warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const uint32_t b = group * kDecWarpsPerCta + warp;
  if (b >= it.num_blocks) return;
  const DecBlock blk = B.blocks[it.block_begin + b];
  const uint32_t lo = b << it.block_log2;
  const uint32_t m = min(1u << it.block_log2, it.n - lo);
  const uint8_t* p = it.payload + blk.offset;
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(table);
  const uint32_t* fs = reinterpret_cast<const uint32_t*>(bytes + it.table_fs_offset);
  const bool ok = packed ? DecodeWarpBlock<true>(p, blk.word_count, m, it.lanes_log2, pb, table, nullptr, nullptr,
                                                 lut, it.out + lo)
                         : DecodeWarpBlock<false>(p, blk.word_count, m, it.lanes_log2, pb, nullptr, bytes, fs, lut,
                                                  it.out + lo);
  if (!ok && lane == 0) {
    B.results[i].code = kCodeCorruptPayload;
    atomicMax(&B.results[i].detail, ~b);  // the host reports ~detail: the first failing block
  }
}

// One CTA per kTileElems floats of each item.
__global__ void __launch_bounds__(kTileThreads) FillKernel(FillBatch B) {
  const uint32_t i = FindItem(B.tile_prefix, B.count, blockIdx.x);
  const FillItem& it = B.items[i];
  const uint64_t base = uint64_t{blockIdx.x - B.tile_prefix[i]} * kTileElems;
  const float v = it.value;
  for (uint32_t k = threadIdx.x; k < kTileElems; k += blockDim.x) {
    if (base + k < it.n) it.out[base + k] = v;
  }
}

}  // namespace splitrans::codec::gpu

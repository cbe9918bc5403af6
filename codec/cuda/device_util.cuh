// Device helpers shared by the encode and decode kernels: the block executor of gpu_core.h,
// CTA-wide scans, and the CTA-parallel CRC32C of a byte range (see gpu_core.h for the math).
#pragma once

#include <cstdint>

#include "codec/cuda/gpu_core.h"

namespace splitrans::codec::gpu {

constexpr uint32_t kFullMask = 0xffffffffu;

// Executor of gpu_core.h for one CTA (REQUIRES: every thread of the CTA calls each method, and
// blockDim.x is a multiple of 32 and at most 1024). red: shared, 32 entries.
struct BlockExec {
  uint64_t* red;

  template <class F>
  __device__ void ForEach(uint32_t n, F&& f) {
    for (uint32_t i = threadIdx.x; i < n; i += blockDim.x) f(i);
    __syncthreads();
  }
  template <class F>
  __device__ uint64_t Sum(uint32_t n, F&& f) {
    uint64_t v = 0;
    for (uint32_t i = threadIdx.x; i < n; i += blockDim.x) v += f(i);
    for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(kFullMask, v, o);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    uint64_t total = 0;
    for (uint32_t w = 0; w < (blockDim.x >> 5); ++w) total += red[w];
    __syncthreads();
    return total;
  }
  template <class F>
  __device__ void Single(F&& f) {
    if (threadIdx.x == 0) f();
    __syncthreads();
  }
};

// Exclusive prefix sum of v over the CTA; *total receives the sum. scratch: shared, 32 entries.
// REQUIRES: every thread calls it.
__device__ inline uint64_t BlockExclusiveSum(uint64_t v, uint64_t* scratch, uint64_t* total) {
  const uint32_t lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  uint64_t incl = v;
  for (int o = 1; o < 32; o <<= 1) {
    const uint64_t n = __shfl_up_sync(kFullMask, incl, o);
    if (lane >= static_cast<uint32_t>(o)) incl += n;
  }
  if (lane == 31) scratch[warp] = incl;
  __syncthreads();
  uint64_t before = 0, all = 0;
  for (uint32_t w = 0; w < (blockDim.x >> 5); ++w) {
    if (w < warp) before += scratch[w];
    all += scratch[w];
  }
  __syncthreads();
  *total = all;
  return before + incl - v;
}

__device__ inline uint32_t LoadU32Bytes(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

__device__ inline void StoreU32Bytes(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
  p[2] = static_cast<uint8_t>(v >> 16);
  p[3] = static_cast<uint8_t>(v >> 24);
}

// Loads the slicing-by-4 table into shared memory (the caller synchronizes before use).
__device__ inline void LoadCrcLut(const CrcTables* crc, uint32_t* lut) {
  for (uint32_t k = threadIdx.x; k < 4 * 256; k += blockDim.x) lut[k] = crc->lut[k];
}

// f(0, data[begin, end)) computed by the whole CTA: each thread feeds one chunk aligned to `end`
// (gpu_core.h CrcChunk), then a tree combines them. Valid on thread 0 only. lut: shared (loaded
// and synchronized); x2n: CrcTables::x2n; scratch: shared, 32 entries. REQUIRES: every thread
// calls it; data visible to the calling threads.
__device__ inline uint32_t CtaCrcRaw(const uint8_t* data, uint64_t begin, uint64_t end, const uint32_t* lut,
                                     const uint32_t* x2n, uint32_t* scratch) {
  const uint32_t lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int c = CrcChunkLog2(end - begin, blockDim.x);
  uint64_t cb, ce;
  CrcChunk(begin, end, threadIdx.x, blockDim.x, c, &cb, &ce);
  uint32_t raw = 0;
  uint64_t p = cb;
  for (; p + 4 <= ce; p += 4) raw = CrcRawWord(raw, LoadU32Bytes(data + p), lut);
  for (; p < ce; ++p) raw = lut[(raw ^ data[p]) & 0xff] ^ (raw >> 8);
  // Warp tree: the right operand at level l spans 2^l full chunks of 2^c bytes.
  for (int l = 0; l < 5; ++l) {
    const uint32_t other = __shfl_down_sync(kFullMask, raw, 1 << l);
    if ((lane & ((2u << l) - 1)) == 0) raw = CrcMulMod(x2n[3 + c + l], raw) ^ other;
  }
  if (lane == 0) scratch[warp] = raw;
  __syncthreads();
  uint32_t acc = 0;
  if (threadIdx.x == 0) {
    acc = scratch[0];
    for (uint32_t w = 1; w < (blockDim.x >> 5); ++w) acc = CrcMulMod(x2n[3 + c + 5], acc) ^ scratch[w];
  }
  __syncthreads();
  return acc;
}

}  // namespace splitrans::codec::gpu

// Encode kernels of the CUDA dense codec, in launch order (gpu_encoder.cu enqueues them):
//   RangeKernel     min / max / non-finite per item (one CTA per 4096-element tile)
//   QuantizeKernel  AIQ parameters, q symbols and the histogram (same tiles)
//   TableKernel     layout decision, normalized table, prob_bits, stream header (CTA per item)
//   RansEncodeKernel one warp per rANS block: final states, words (backwards) and word count
//   AssembleKernel  one CTA per rANS block: header, index, payload copy and CRC32C
// Included by exactly one .cu file.
#pragma once

#include <cuda_fp16.h>

#include <cstdint>

#include "codec/cuda/device_util.cuh"
#include "codec/cuda/gpu_core.h"
#include "codec/quantize.h"

namespace splitrans::codec::gpu {

// Loads the 4 elements [base, base + 4) of an item (fewer at its end) as floats.
// Returns how many are valid.
__device__ inline uint32_t LoadGroup(const EncItem& it, uint64_t base, float v[4]) {
  if (base >= it.t) return 0;
  const uint32_t n = it.t - base >= 4 ? 4u : static_cast<uint32_t>(it.t - base);
  if (it.dtype == static_cast<uint8_t>(DType::kFloat32)) {
    const float* x = static_cast<const float*>(it.in) + base;
    if (n == 4 && it.vec_ok) {
      const float4 f = __ldg(reinterpret_cast<const float4*>(x));
      v[0] = f.x, v[1] = f.y, v[2] = f.z, v[3] = f.w;
    } else {
#pragma unroll
      for (uint32_t e = 0; e < 4; ++e) v[e] = e < n ? __ldg(x + e) : 0.f;
    }
  } else {
    const unsigned short* h = static_cast<const unsigned short*>(it.in) + base;
    if (n == 4 && it.vec_ok) {
      const uint2 u = __ldg(reinterpret_cast<const uint2*>(h));
      v[0] = __half2float(__ushort_as_half(static_cast<unsigned short>(u.x & 0xffff)));
      v[1] = __half2float(__ushort_as_half(static_cast<unsigned short>(u.x >> 16)));
      v[2] = __half2float(__ushort_as_half(static_cast<unsigned short>(u.y & 0xffff)));
      v[3] = __half2float(__ushort_as_half(static_cast<unsigned short>(u.y >> 16)));
    } else {
#pragma unroll
      for (uint32_t e = 0; e < 4; ++e) v[e] = e < n ? __half2float(__ushort_as_half(__ldg(h + e))) : 0.f;
    }
  }
  return n;
}

// Element index of group k (0..3) of this thread in tile `tile` of the item.
__device__ inline uint64_t GroupBase(uint32_t tile, uint32_t k) {
  return uint64_t{tile} * kTileElems + k * (kTileThreads * 4) + threadIdx.x * 4;
}

__global__ void __launch_bounds__(kTileThreads) RangeKernel(EncBatch B) {
  const uint32_t i = FindItem(B.tile_prefix, B.count, blockIdx.x);
  const EncItem& it = B.items[i];
  const uint32_t tile = blockIdx.x - B.tile_prefix[i];
  uint32_t kmax = 0, knmin = 0, bad = 0;
#pragma unroll
  for (uint32_t k = 0; k < 4; ++k) {
    float v[4];
    const uint32_t n = LoadGroup(it, GroupBase(tile, k), v);
#pragma unroll
    for (uint32_t e = 0; e < 4; ++e) {
      if (e >= n) break;
      const uint32_t bits = BitsOf(v[e]);
      bad |= !IsFiniteBits(bits);
      const uint32_t key = FloatKey(bits);
      kmax = max(kmax, key);
      knmin = max(knmin, ~key);
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    kmax = max(kmax, __shfl_down_sync(kFullMask, kmax, o));
    knmin = max(knmin, __shfl_down_sync(kFullMask, knmin, o));
    bad |= __shfl_down_sync(kFullMask, bad, o);
  }
  if ((threadIdx.x & 31) == 0) {
    EncAccum& acc = B.accum[i];
    atomicMax(&acc.max_key, kmax);
    atomicMax(&acc.neg_min_key, knmin);
    if (bad) atomicOr(&acc.bad, 1u);
  }
}

// The item's parameters from its accumulated range (every thread computes the same value).
__device__ inline RangeParams ItemParams(const EncAccum& acc, int q) {
  const float lo = FloatOf(FloatKeyToBits(~acc.neg_min_key));
  const float hi = FloatOf(FloatKeyToBits(acc.max_key));
  return ParamsFromRange(lo, hi, q);
}

__global__ void __launch_bounds__(kTileThreads) QuantizeKernel(EncBatch B) {
  __shared__ uint32_t hist[kTileThreads / 32][kMaxDenseAlphabet];
  const uint32_t i = FindItem(B.tile_prefix, B.count, blockIdx.x);
  const EncItem& it = B.items[i];
  const EncAccum& acc = B.accum[i];
  if (acc.bad) return;
  const RangeParams p = ItemParams(acc, it.q);
  if (p.kind != ParamsKind::kDense) return;
  const uint32_t tile = blockIdx.x - B.tile_prefix[i];
  const uint32_t lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (uint32_t k = threadIdx.x; k < (kTileThreads / 32) * kMaxDenseAlphabet; k += kTileThreads) {
    hist[k / kMaxDenseAlphabet][k % kMaxDenseAlphabet] = 0;
  }
  __syncthreads();
  const float zf = static_cast<float>(p.zero_point);
  const float maxq = static_cast<float>((1 << it.q) - 1);
  uint8_t* sym = B.symbols + it.sym_offset;
#pragma unroll
  for (uint32_t k = 0; k < 4; ++k) {
    const uint64_t base = GroupBase(tile, k);
    float v[4];
    const uint32_t n = LoadGroup(it, base, v);
    uint32_t q[4];
#pragma unroll
    for (uint32_t e = 0; e < 4; ++e) q[e] = e < n ? QuantizeOne(v[e], p.scale, zf, maxq) : 0;
    if (n == 4) {
      *reinterpret_cast<uint32_t*>(sym + base) = q[0] | q[1] << 8 | q[2] << 16 | q[3] << 24;
    } else {
#pragma unroll
      for (uint32_t e = 0; e < 4; ++e) {
        if (e < n) sym[base + e] = static_cast<uint8_t>(q[e]);
      }
    }
    // Warp-aggregated histogram: one shared atomic per distinct symbol of the warp.
#pragma unroll
    for (uint32_t e = 0; e < 4; ++e) {
      const uint32_t s = e < n ? q[e] : 0xFFFFFFFFu;
      const uint32_t peers = __match_any_sync(kFullMask, s);
      if (e < n && lane == static_cast<uint32_t>(__ffs(peers) - 1)) atomicAdd(&hist[warp][s], __popc(peers));
    }
  }
  __syncthreads();
  EncAccum& gacc = B.accum[i];
  for (uint32_t s = threadIdx.x; s < kMaxDenseAlphabet; s += kTileThreads) {
    uint32_t total = 0;
    for (uint32_t w = 0; w < kTileThreads / 32; ++w) total += hist[w][s];
    if (total) atomicAdd(&gacc.hist[s], total);
  }
}

__global__ void __launch_bounds__(256) TableKernel(EncBatch B) {
  __shared__ TableScratch sc;
  __shared__ uint64_t red[32];
  __shared__ uint32_t last;
  const uint32_t i = blockIdx.x;
  const EncItem& it = B.items[i];
  const EncAccum& acc = B.accum[i];
  EncState& st = B.state[i];
  const uint32_t tid = threadIdx.x;
  if (tid == 0) {
    st.code = kCodeOk;
    st.detail = 0;
    st.scale = 0;
    st.zero_point = 0;
    st.constant_value = 0;
  }
  if (it.t == 0) {  // ComputeQuantParams: an empty tensor is the constant 0
    if (tid == 0) st.kind = kKindConstantLayout;
    return;
  }
  if (acc.bad) {
    if (tid == 0) st.code = kCodeInvalidArgument, st.detail = kDetailNonFinite, st.kind = kKindError;
    return;
  }
  const RangeParams p = ItemParams(acc, it.q);
  if (p.kind == ParamsKind::kRangeTooLarge || p.kind == ParamsKind::kOffsetTooLarge) {
    if (tid == 0) {
      st.code = kCodeInvalidArgument;
      st.detail = p.kind == ParamsKind::kRangeTooLarge ? kDetailRangeTooLarge : kDetailOffsetTooLarge;
      st.kind = kKindError;
    }
    return;
  }
  if (p.kind == ParamsKind::kConstant) {
    if (tid == 0) st.kind = kKindConstantLayout, st.constant_value = p.constant_value;
    return;
  }
  // Dense: histogram over the alphabet 2^q (DenseBody / EncodeStream).
  const uint32_t alphabet = 1u << it.q;
  if (tid == 0) last = 0;
  for (uint32_t s = tid; s < kMaxDenseAlphabet; s += blockDim.x) sc.counts[s] = s < alphabet ? acc.hist[s] : 0;
  __syncthreads();
  const uint32_t present = tid < alphabet && sc.counts[tid] != 0;
  if (present) atomicMax(&last, tid);
  const uint32_t distinct = __syncthreads_count(present);
  const uint32_t last_symbol = last;
  if (distinct == 1) {
    if (tid == 0) {
      st.kind = kKindConstantStream;
      st.symbol = last_symbol;
      st.scale = p.scale;
      st.zero_point = p.zero_point;
    }
    return;
  }
  const uint32_t a = last_symbol + 1;
  BlockExec ex{red};
  const int pb = BuildDenseTable(ex, sc, a, it.t, B.log2_table);
  const int lanes_log2 = DenseLanesLog2(it.t);
  const uint16_t* freq = sc.freq[sc.best];
  for (uint32_t s = tid; s < a; s += blockDim.x) st.table[s] = MakeEncTableEntry(sc.start[s], freq[s], pb);
  if (tid == 0) {
    st.kind = kKindRans;
    st.scale = p.scale;
    st.zero_point = p.zero_point;
    st.prob_bits = pb;
    st.lanes_log2 = lanes_log2;
    st.alphabet = a;
    st.stream_header_bytes = WriteRansStreamHeader(st.stream_header, it.t, pb, lanes_log2, a, freq);
  }
}

// One warp per rANS block. Symbol j of the block belongs to lane j mod W; the CPU walks j
// backwards and prepends each flushed word, so in memory the words of one round (W symbols)
// are in lane order and rounds are in increasing order: a ballot gives each flushing lane its
// slot below the words already written.
constexpr int kEncGroup = 8;  // rounds whose symbols are loaded ahead

__global__ void __launch_bounds__(kEncWarpsPerCta * 32) RansEncodeKernel(EncBatch B) {
  __shared__ EncTableEntry tab[kEncWarpsPerCta][kMaxDenseAlphabet];
  const uint32_t warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const uint32_t gb = blockIdx.x * kEncWarpsPerCta + warp;
  if (gb >= B.block_prefix[B.count]) return;
  const uint32_t i = FindItem(B.block_prefix, B.count, gb);
  const EncState& st = B.state[i];
  if (st.code != kCodeOk || st.kind != kKindRans) return;
  const EncItem& it = B.items[i];
  const uint32_t b = gb - B.block_prefix[i];
  const uint32_t a = st.alphabet;
  const int pb = st.prob_bits;
  const uint32_t lanes_log2 = static_cast<uint32_t>(st.lanes_log2);
  const uint32_t W = 1u << lanes_log2;
  EncTableEntry* t = tab[warp];
  for (uint32_t s = lane; s < a; s += 32) t[s] = st.table[s];
  __syncwarp();

  const uint32_t lo = b << kDenseBlockLog2;
  const uint32_t m = min(kDenseBlockSize, it.t - lo);
  const uint8_t* __restrict__ sym = B.symbols + it.sym_offset + lo;
  uint16_t* __restrict__ end = B.words + it.word_offset + uint64_t{b + 1} * it.block_words;
  const int rounds = static_cast<int>((m + W - 1) >> lanes_log2);
  const bool lane_on = lane < W;
  const uint32_t below = (1u << lane) - 1;
  uint32_t x = kRansL, written = 0;

  uint8_t next[kEncGroup];
  auto load = [&](int top, uint8_t* dst) {
#pragma unroll
    for (int k = 0; k < kEncGroup; ++k) {
      const int r = top - k;
      const uint32_t j = static_cast<uint32_t>(r) * W + lane;
      dst[k] = (r >= 0 && lane_on && j < m) ? __ldg(sym + j) : 0;
    }
  };
  load(rounds - 1, next);
  for (int top = rounds - 1; top >= 0; top -= kEncGroup) {
    uint8_t cur[kEncGroup];
#pragma unroll
    for (int k = 0; k < kEncGroup; ++k) cur[k] = next[k];
    load(top - kEncGroup, next);
#pragma unroll
    for (int k = 0; k < kEncGroup; ++k) {
      const int r = top - k;
      if (r < 0) break;  // uniform
      const uint32_t j = static_cast<uint32_t>(r) * W + lane;
      const bool active = lane_on && j < m;
      const EncTableEntry e = t[cur[k]];
      const bool flush = active && x >= e.x_max;
      const uint32_t mask = __ballot_sync(kFullMask, flush);
      const uint32_t cnt = __popc(mask);
      if (flush) {
        end[static_cast<int64_t>(__popc(mask & below)) - static_cast<int64_t>(written + cnt)] =
            static_cast<uint16_t>(x);
        x >>= 16;
      }
      written += cnt;
      if (active) x = EncStep(x, e, pb);
    }
  }
  EncBlockOut& o = B.blocks[gb];
  if (lane_on) o.states[lane] = x;
  if (lane == 0) o.word_count = written;
}

// One CTA per rANS block (one per item for the other kinds). CTA b writes its block's payload
// (states, then words) at its offset and CTA 0 also the header, shape, stream header and block
// index; each CTA then checksums the bytes it wrote and the last one finishes the CRC.
__global__ void __launch_bounds__(kAsmThreads) AssembleKernel(EncBatch B) {
  __shared__ uint32_t lut[4 * 256];
  __shared__ uint64_t scan[32];
  __shared__ uint32_t crc_scratch[32];
  const uint32_t i = FindItem(B.asm_prefix, B.count, blockIdx.x);
  const uint32_t b = blockIdx.x - B.asm_prefix[i];
  const EncItem& it = B.items[i];
  const EncState& st = B.state[i];
  ItemResult& res = B.results[i];
  const uint32_t tid = threadIdx.x;
  uint8_t* out = it.out;
  const uint32_t hdr = static_cast<uint32_t>(kFixedHeaderBytes) + 4u * it.rank;

  if (st.code != kCodeOk || st.kind != kKindRans) {
    if (b != 0 || tid != 0) return;
    if (st.code != kCodeOk) {
      res.code = st.code;
      res.detail = st.detail;
      res.size = 0;
      return;
    }
    // Constant layout or constant stream: a few bytes, one thread.
    uint32_t body;
    if (st.kind == kKindConstantLayout) {
      body = 4u * it.rank + 4;
      WriteHeaderAndShape(out, it.dtype, it.rank, it.q, static_cast<uint32_t>(Layout::kConstant), 0.f, 0, body,
                          it.shape);
      StoreU32Bytes(out + hdr, BitsOf(st.constant_value));
    } else {
      const uint32_t len = WriteConstantStream(out + hdr, it.t, st.symbol);
      body = 4u * it.rank + len;
      WriteHeaderAndShape(out, it.dtype, it.rank, it.q, static_cast<uint32_t>(Layout::kDense), st.scale,
                          st.zero_point, body, it.shape);
    }
    const uint32_t n = static_cast<uint32_t>(kFixedHeaderBytes) + body;
    const uint32_t crc = CrcRawBytes(0xFFFFFFFFu, out, n, B.crc->lut) ^ 0xFFFFFFFFu;
    StoreU32Bytes(out + n, crc);
    res.code = kCodeOk;
    res.detail = 0;
    res.size = n + kChecksumBytes;
    return;
  }

  LoadCrcLut(B.crc, lut);
  const uint32_t W = 1u << st.lanes_log2;
  const uint32_t nb = it.num_blocks;
  const EncBlockOut* blk = B.blocks + B.block_prefix[i];
  const uint64_t index_at = hdr + st.stream_header_bytes;
  // Scan the block index: varint sizes (CTA 0 writes the varints) and payload sizes.
  uint64_t index_bytes = 0, payload_before = 0, payload_all = 0;
  for (uint32_t base = 0; base < nb; base += blockDim.x) {
    const uint32_t k = base + tid;
    const uint32_t wc = k < nb ? blk[k].word_count : 0;
    const uint64_t vs = k < nb ? VarintSize(wc) : 0;
    const uint64_t ps = k < nb ? 4ull * W + 2ull * wc : 0;
    uint64_t chunk_vs, chunk_ps, chunk_before;
    const uint64_t vs_before = BlockExclusiveSum(vs, scan, &chunk_vs);
    BlockExclusiveSum(ps, scan, &chunk_ps);
    BlockExclusiveSum(k < b ? ps : 0, scan, &chunk_before);
    if (b == 0 && k < nb) PutVarint(out + index_at + index_bytes + vs_before, wc);
    index_bytes += chunk_vs;
    payload_all += chunk_ps;
    payload_before += chunk_before;
  }
  const uint64_t payload_at = index_at + index_bytes;
  const uint64_t body_end = payload_at + payload_all;  // 24 + body_size
  const uint64_t my_begin = payload_at + payload_before;
  const uint32_t my_wc = blk[b].word_count;
  const uint64_t my_end = my_begin + 4ull * W + 2ull * my_wc;
  if (b == 0) {
    if (tid == 0) {
      WriteHeaderAndShape(out, it.dtype, it.rank, it.q, static_cast<uint32_t>(Layout::kDense), st.scale,
                          st.zero_point, static_cast<uint32_t>(body_end - kFixedHeaderBytes), it.shape);
    }
    for (uint32_t k = tid; k < st.stream_header_bytes; k += blockDim.x) out[hdr + k] = st.stream_header[k];
  }
  // Payload: W states (lane 0 first), then the block's words in memory order.
  const uint32_t* states = blk[b].states;
  const uint16_t* words =
      B.words + it.word_offset + uint64_t{b + 1} * it.block_words - my_wc;
  const uint32_t state_bytes = 4 * W;
  const uint64_t payload_len = my_end - my_begin;
  for (uint64_t k = tid; k < payload_len; k += blockDim.x) {
    uint8_t v;
    if (k < state_bytes) {
      v = static_cast<uint8_t>(states[k >> 2] >> (8 * (k & 3)));
    } else {
      const uint64_t w = (k - state_bytes) >> 1;
      v = static_cast<uint8_t>(words[w] >> (8 * ((k - state_bytes) & 1)));
    }
    out[my_begin + k] = v;
  }
  __syncthreads();  // this CTA's bytes (and the CRC table) are visible to all its threads

  const uint64_t begin = b == 0 ? 0 : my_begin;
  const uint32_t raw = CtaCrcRaw(out, begin, my_end, lut, B.crc->x2n, crc_scratch);
  if (tid == 0) {
    EncAccum& acc = B.accum[i];
    atomicXor(&acc.crc_xor, CrcShift(raw, body_end - my_end, B.crc->x2n));
    __threadfence();
    const uint32_t ticket = atomicAdd(&acc.tickets, 1u);
    if (ticket == nb - 1) {
      __threadfence();
      const uint32_t all = atomicOr(&acc.crc_xor, 0u);
      StoreU32Bytes(out + body_end, CrcFinish(all, body_end, B.crc->x2n));
      res.code = kCodeOk;
      res.detail = 0;
      res.size = body_end + kChecksumBytes;
    }
  }
}

}  // namespace splitrans::codec::gpu

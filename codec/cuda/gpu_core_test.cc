// CPU checks of the CUDA codec's host/device core (gpu_core.h) and host planner (gpu_plan.h)
// against the CPU codec, runnable without a GPU. The encode and decode kernels are modelled
// lane by lane (EmulateEncodeBlock / EmulateDecodeBlock mirror RansEncodeKernel and
// RansDecodeKernel statement by statement, including the warp's ballots and its shuffled word
// window) on top of the very functions the kernels call, so byte identity with the CPU Encoder
// and the error codes of the CPU Decoder are pinned here; gpu_codec_test.cc repeats the
// end-to-end checks on a real GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "codec/byte_io.h"
#include "codec/codec.h"
#include "codec/crc32c.h"
#include "codec/cuda/gpu_core.h"
#include "codec/cuda/gpu_plan.h"
#include "codec/npy.h"
#include "codec/quantize.h"
#include "codec/rans_stream.h"
#include "codec/wire.h"

#ifndef SPLITRANS_SOURCE_DIR
#define SPLITRANS_SOURCE_DIR "."
#endif

namespace splitrans::codec::gpu {
namespace {

uint32_t Popc(uint32_t v) { return static_cast<uint32_t>(__builtin_popcount(v)); }

const std::vector<double>& Log2Table() {
  static const std::vector<double> t = [] {
    std::vector<double> v(kLog2TableSize);
    FillLog2Table(v.data());
    return v;
  }();
  return t;
}

const CrcTables& Crc() {
  static const CrcTables t = [] {
    CrcTables c;
    FillCrcTables(&c);
    return c;
  }();
  return t;
}

// ---------------------------------------------------------------------------------------------
// Models of the kernels (see the .cuh files for the originals).

// CtaCrcRaw with `threads` threads: chunks aligned to the end, warp trees, then warps in order.
uint32_t ModelCtaCrcRaw(const uint8_t* data, uint64_t begin, uint64_t end, uint32_t threads = kAsmThreads) {
  const CrcTables& t = Crc();
  const int c = CrcChunkLog2(end - begin, threads);
  std::vector<uint32_t> raw(threads);
  for (uint32_t th = 0; th < threads; ++th) {
    uint64_t cb, ce;
    CrcChunk(begin, end, th, threads, c, &cb, &ce);
    uint32_t r = 0;
    uint64_t p = cb;
    for (; p + 4 <= ce; p += 4) {
      const uint32_t w = data[p] | data[p + 1] << 8 | data[p + 2] << 16 | static_cast<uint32_t>(data[p + 3]) << 24;
      r = CrcRawWord(r, w, t.lut);
    }
    for (; p < ce; ++p) r = t.lut[(r ^ data[p]) & 0xff] ^ (r >> 8);
    raw[th] = r;
  }
  for (int l = 0; l < 5; ++l) {
    std::vector<uint32_t> next = raw;
    for (uint32_t th = 0; th < threads; ++th) {
      const uint32_t lane = th & 31;
      const uint32_t src = lane + (1u << l);
      const uint32_t other = src < 32 ? raw[(th & ~31u) + src] : raw[th];  // __shfl_down keeps its own value
      if ((lane & ((2u << l) - 1)) == 0) next[th] = CrcMulMod(t.x2n[3 + c + l], raw[th]) ^ other;
    }
    raw.swap(next);
  }
  uint32_t acc = raw[0];
  for (uint32_t w = 1; w < threads / 32; ++w) acc = CrcMulMod(t.x2n[3 + c + 5], acc) ^ raw[w * 32];
  return acc;
}

// RansEncodeKernel for one block: symbols sym[0, m), W lanes; words written below `end`.
void EmulateEncodeBlock(const uint8_t* sym, uint32_t m, uint32_t lanes_log2, int pb, const EncTableEntry* table,
                        uint16_t* end, uint32_t* states, uint32_t* word_count) {
  const uint32_t W = 1u << lanes_log2;
  uint32_t x[32];
  for (uint32_t l = 0; l < 32; ++l) x[l] = kRansL;
  uint32_t written = 0;
  const int rounds = static_cast<int>((m + W - 1) >> lanes_log2);
  for (int r = rounds - 1; r >= 0; --r) {
    bool active[32], flush[32];
    EncTableEntry e[32];
    uint32_t mask = 0;
    for (uint32_t lane = 0; lane < 32; ++lane) {
      const uint32_t j = static_cast<uint32_t>(r) * W + lane;
      active[lane] = lane < W && j < m;
      e[lane] = table[active[lane] ? sym[j] : 0];
      flush[lane] = active[lane] && x[lane] >= e[lane].x_max;
      mask |= static_cast<uint32_t>(flush[lane]) << lane;
    }
    const uint32_t cnt = Popc(mask);
    for (uint32_t lane = 0; lane < 32; ++lane) {
      if (flush[lane]) {
        const uint32_t below = (1u << lane) - 1;
        end[static_cast<int64_t>(Popc(mask & below)) - static_cast<int64_t>(written + cnt)] =
            static_cast<uint16_t>(x[lane]);
        x[lane] >>= 16;
      }
    }
    written += cnt;
    for (uint32_t lane = 0; lane < 32; ++lane) {
      if (active[lane]) x[lane] = EncStep(x[lane], e[lane], pb);
    }
  }
  for (uint32_t l = 0; l < W; ++l) states[l] = x[l];
  *word_count = written;
}

struct ModelTensor {
  const void* data;
  DType dtype;
  std::vector<int64_t> shape;
};

// The whole GPU encode pipeline (Range, Quantize, Table, RansEncode, Assemble kernels) on the
// host. Returns the code the kernels would report.
uint32_t EmulateGpuEncode(const ModelTensor& tensor, int q, std::vector<uint8_t>* out) {
  uint64_t t = 1;
  for (int64_t d : tensor.shape) t *= static_cast<uint64_t>(d);
  const uint32_t rank = static_cast<uint32_t>(tensor.shape.size());
  uint32_t shape[kMaxRank] = {};
  for (uint32_t i = 0; i < rank; ++i) shape[i] = static_cast<uint32_t>(tensor.shape[i]);
  std::vector<float> x(t);
  for (uint64_t i = 0; i < t; ++i) {
    if (tensor.dtype == DType::kFloat32) {
      x[i] = static_cast<const float*>(tensor.data)[i];
    } else {
      x[i] = HalfToFloat(static_cast<const uint16_t*>(tensor.data)[i]);
    }
  }
  out->assign(MaxDenseEncodedSize(t, static_cast<int>(rank)), 0);
  uint8_t* o = out->data();
  const uint32_t hdr = static_cast<uint32_t>(kFixedHeaderBytes) + 4 * rank;
  auto finish_small = [&](uint32_t body) {
    const uint32_t n = static_cast<uint32_t>(kFixedHeaderBytes) + body;
    const uint32_t crc = CrcRawBytes(0xFFFFFFFFu, o, n, Crc().lut) ^ 0xFFFFFFFFu;
    std::memcpy(o + n, &crc, 4);
    out->resize(n + 4);
    return kCodeOk;
  };
  // RangeKernel
  uint32_t kmax = 0, knmin = 0, bad = 0;
  for (float v : x) {
    const uint32_t bits = BitsOf(v);
    bad |= !IsFiniteBits(bits);
    kmax = std::max(kmax, FloatKey(bits));
    knmin = std::max(knmin, ~FloatKey(bits));
  }
  // TableKernel decisions
  if (t == 0) {
    WriteHeaderAndShape(o, static_cast<uint32_t>(tensor.dtype), rank, q, 0, 0.f, 0, 4 * rank + 4, shape);
    const float zero = 0;
    std::memcpy(o + hdr, &zero, 4);
    return finish_small(4 * rank + 4);
  }
  if (bad) return kCodeInvalidArgument;
  const RangeParams p = ParamsFromRange(FloatOf(FloatKeyToBits(~knmin)), FloatOf(FloatKeyToBits(kmax)), q);
  if (p.kind == ParamsKind::kRangeTooLarge || p.kind == ParamsKind::kOffsetTooLarge) return kCodeInvalidArgument;
  if (p.kind == ParamsKind::kConstant) {
    WriteHeaderAndShape(o, static_cast<uint32_t>(tensor.dtype), rank, q, 0, 0.f, 0, 4 * rank + 4, shape);
    std::memcpy(o + hdr, &p.constant_value, 4);
    return finish_small(4 * rank + 4);
  }
  // QuantizeKernel
  std::vector<uint8_t> sym(t);
  const float zf = static_cast<float>(p.zero_point), maxq = static_cast<float>((1 << q) - 1);
  TableScratch sc{};
  for (uint64_t i = 0; i < t; ++i) {
    sym[i] = QuantizeOne(x[i], p.scale, zf, maxq);
    sc.counts[sym[i]]++;
  }
  uint32_t distinct = 0, last = 0;
  for (uint32_t s = 0; s < (1u << q); ++s) {
    if (sc.counts[s]) ++distinct, last = s;
  }
  if (distinct == 1) {
    const uint32_t len = WriteConstantStream(o + hdr, static_cast<uint32_t>(t), last);
    WriteHeaderAndShape(o, static_cast<uint32_t>(tensor.dtype), rank, q, 1, p.scale, p.zero_point, 4 * rank + len,
                        shape);
    return finish_small(4 * rank + len);
  }
  const uint32_t a = last + 1;
  HostExec ex;
  const int pb = BuildDenseTable(ex, sc, a, t, Log2Table().data());
  const int lanes_log2 = DenseLanesLog2(t);
  const uint16_t* freq = sc.freq[sc.best];
  std::vector<EncTableEntry> table(a);
  for (uint32_t s = 0; s < a; ++s) table[s] = MakeEncTableEntry(sc.start[s], freq[s], pb);
  uint8_t stream_header[kMaxStreamHeaderBytes];
  const uint32_t sh = WriteRansStreamHeader(stream_header, static_cast<uint32_t>(t), pb, lanes_log2, a, freq);
  // RansEncodeKernel
  const uint32_t nb = static_cast<uint32_t>((t + kDenseBlockSize - 1) / kDenseBlockSize);
  const uint32_t block_words = static_cast<uint32_t>(std::min<uint64_t>(t, kDenseBlockSize));
  const uint32_t W = 1u << lanes_log2;
  std::vector<uint16_t> words(uint64_t{nb} * block_words);
  std::vector<EncBlockOut> blocks(nb);
  for (uint32_t b = 0; b < nb; ++b) {
    const uint32_t lo = b << kDenseBlockLog2;
    const uint32_t m = static_cast<uint32_t>(std::min<uint64_t>(kDenseBlockSize, t - lo));
    EmulateEncodeBlock(sym.data() + lo, m, lanes_log2, pb, table.data(), words.data() + uint64_t{b + 1} * block_words,
                       blocks[b].states, &blocks[b].word_count);
  }
  // AssembleKernel: CTA b writes and checksums its range; the last one finishes.
  uint64_t index_bytes = 0, payload_all = 0;
  for (uint32_t b = 0; b < nb; ++b) {
    index_bytes += VarintSize(blocks[b].word_count);
    payload_all += 4ull * W + 2ull * blocks[b].word_count;
  }
  const uint64_t index_at = hdr + sh;
  const uint64_t payload_at = index_at + index_bytes;
  const uint64_t body_end = payload_at + payload_all;
  WriteHeaderAndShape(o, static_cast<uint32_t>(tensor.dtype), rank, q, 1, p.scale, p.zero_point,
                      static_cast<uint32_t>(body_end - kFixedHeaderBytes), shape);
  std::memcpy(o + hdr, stream_header, sh);
  uint64_t vpos = index_at, before = 0;
  for (uint32_t b = 0; b < nb; ++b) vpos += PutVarint(o + vpos, blocks[b].word_count);  // CTA 0
  uint32_t crc_xor = 0;
  for (uint32_t b = 0; b < nb; ++b) {
    const uint64_t my_begin = payload_at + before;
    const uint32_t wc = blocks[b].word_count;
    const uint16_t* w = words.data() + uint64_t{b + 1} * block_words - wc;
    for (uint32_t k = 0; k < 4 * W; ++k) o[my_begin + k] = static_cast<uint8_t>(blocks[b].states[k >> 2] >> (8 * (k & 3)));
    for (uint64_t k = 0; k < 2ull * wc; ++k) o[my_begin + 4 * W + k] = static_cast<uint8_t>(w[k >> 1] >> (8 * (k & 1)));
    before += 4ull * W + 2ull * wc;
    const uint64_t my_end = payload_at + before;
    crc_xor ^= CrcShift(ModelCtaCrcRaw(o, b == 0 ? 0 : my_begin, my_end), body_end - my_end, Crc().x2n);
  }
  const uint32_t crc = CrcFinish(crc_xor, body_end, Crc().x2n);
  std::memcpy(o + body_end, &crc, 4);
  out->resize(body_end + 4);
  return kCodeOk;
}

int g_kernel_rejections = 0;  // blocks the decode model rejected (payload checks)

// RansDecodeKernel for one block; returns false where the kernel reports CORRUPT_PAYLOAD.
bool EmulateDecodeBlock(const uint8_t* p, uint32_t wc, uint32_t m, uint32_t lanes_log2, int pb,
                        const uint8_t* table, size_t fs_offset, const float* lut, float* dst) {
  const bool packed_table = pb <= kPackedMaxProbBits;
  auto u32_at = [&](size_t byte) {
    uint32_t v;
    std::memcpy(&v, table + byte, 4);
    return v;
  };
  const uint32_t W = 1u << lanes_log2;
  const uint8_t* words = p + 4 * W;
  auto word = [&](uint32_t k) -> uint32_t { return k < wc ? (words[2 * k] | uint32_t{words[2 * k + 1]} << 8) : 0u; };
  auto u32 = [](const uint8_t* q) { return q[0] | q[1] << 8 | q[2] << 16 | static_cast<uint32_t>(q[3]) << 24; };
  uint32_t x[32], A[32], B[32];
  bool ok = true;
  for (uint32_t l = 0; l < 32; ++l) {
    x[l] = l < W ? u32(p + 4 * l) : kRansL;
    if (l < W && x[l] < kRansL) ok = false;
    A[l] = word(l);
    B[l] = word(32 + l);
  }
  uint32_t wp = 0;
  const uint32_t rounds = (m + W - 1) >> lanes_log2;
  const uint32_t mask_pb = (1u << pb) - 1;
  for (uint32_t r = 0; ok && r < rounds; ++r) {
    uint32_t s[32] = {};
    bool active[32], need[32];
    uint32_t mask = 0;
    for (uint32_t l = 0; l < 32; ++l) {
      const uint32_t j = r * W + l;
      active[l] = l < W && j < m;
      if (active[l]) {
        const uint32_t slot = x[l] & mask_pb;
        if (packed_table) {
          const uint32_t e = u32_at(4 * size_t{slot});
          s[l] = e >> 24;
          x[l] = ((e >> 12) & 0xfff) * (x[l] >> pb) + (e & 0xfff);
        } else {
          s[l] = table[slot];
          const uint32_t f = u32_at(fs_offset + 4 * size_t{s[l]});
          x[l] = (f & 0xffff) * (x[l] >> pb) + slot - (f >> 16);
        }
      }
      need[l] = active[l] && x[l] < kRansL;
      mask |= static_cast<uint32_t>(need[l]) << l;
    }
    const uint32_t cnt = Popc(mask);
    if (wp + cnt > wc) {
      ok = false;
      break;
    }
    uint32_t nA[32], nB[32];
    for (uint32_t l = 0; l < 32; ++l) {
      const uint32_t w = A[Popc(mask & ((1u << l) - 1)) & 31];
      if (need[l]) x[l] = (x[l] << 16) | w;
      if (active[l]) dst[r * W + l] = lut[s[l]];
      const uint32_t src = l + cnt;
      const uint32_t a1 = A[src & 31], b1 = B[src & 31];
      nA[l] = src < 32 ? a1 : b1;
      nB[l] = src < 32 ? b1 : word(wp + cnt + 32 + l);
    }
    std::memcpy(A, nA, sizeof(A));
    std::memcpy(B, nB, sizeof(B));
    wp += cnt;
  }
  if (!ok || wp != wc) return false;
  for (uint32_t l = 0; l < W; ++l) {
    if (x[l] != kRansL) return false;
  }
  return true;
}

// The GPU decode path on the host: host validation (gpu_plan.cc), then the kernels' model.
Status EmulateGpuDecode(const std::vector<uint8_t>& bits, std::vector<float>* out, const DecodeLimits& limits = {}) {
  ValidatedHeader h;
  SPLITRANS_RETURN_IF_ERROR(ValidateHeader(bits.data(), bits.size(), limits, nullptr, &h));
  if (h.h.layout == static_cast<uint8_t>(Layout::kConstant)) {
    ByteReader rd(bits.data() + h.body_offset, h.body_end - h.body_offset);
    float v;
    SPLITRANS_RETURN_IF_ERROR(rd.F32(&v, "constant value"));
    if (!std::isfinite(v)) return Corrupt("constant value is not finite");
    if (rd.remaining() != 0) return Corrupt("unused bytes");
    out->assign(h.elements, v);
    return Status::Ok();
  }
  if (h.h.layout != static_cast<uint8_t>(Layout::kDense)) {  // GpuDecoder falls back to the CPU decoder
    auto r = Decode(bits.data(), bits.size(), limits);
    if (!r.ok()) return r.status();
    *out = r->values;
    return Status::Ok();
  }
  DenseStreamInfo ds;
  SPLITRANS_RETURN_IF_ERROR(ParseDenseBody(bits.data(), h, &ds));
  out->assign(h.elements, 0.f);
  if (ds.kind == StreamKind::kConstant) {
    std::fill(out->begin(), out->end(), DequantizeOne(ds.symbol, h.h.zero_point, h.h.scale));
    return Status::Ok();
  }
  if (ds.kind == StreamKind::kEmpty) return Status::Ok();
  size_t fs_offset;
  std::vector<uint32_t> table((DecodeTableBytes(ds, &fs_offset) + 3) / 4);
  BuildDecodeTable(ds, reinterpret_cast<uint8_t*>(table.data()));
  float lut[256];
  for (uint32_t s = 0; s < 256; ++s) lut[s] = DequantizeOne(s, h.h.zero_point, h.h.scale);
  const uint8_t* payload = bits.data() + ds.payload_offset;
  for (size_t b = 0; b < ds.word_counts.size(); ++b) {
    const uint32_t lo = static_cast<uint32_t>(b) << ds.block_log2;
    const uint32_t m = std::min<uint32_t>(1u << ds.block_log2, ds.n - lo);
    if (!EmulateDecodeBlock(payload + ds.block_offsets[b], ds.word_counts[b], m, ds.lanes_log2, ds.prob_bits,
                            reinterpret_cast<const uint8_t*>(table.data()), fs_offset, lut, out->data() + lo)) {
      ++g_kernel_rejections;
      return Corrupt("block " + std::to_string(b));
    }
  }
  return Status::Ok();
}

std::vector<uint8_t> CpuDense(const ModelTensor& t, int q) {
  TensorView v{t.data, t.dtype, t.shape};
  EncodeOptions opt;
  opt.q = q;
  opt.mode = Mode::kDense;
  auto r = Encode(v, opt);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r.value() : std::vector<uint8_t>();
}

// Asserts GPU-model bytes == CPU bytes, and that the model decoder matches the CPU decoder.
void CheckTensor(const ModelTensor& t, int q, const std::string& what) {
  SCOPED_TRACE(what + " q=" + std::to_string(q));
  const std::vector<uint8_t> cpu = CpuDense(t, q);
  std::vector<uint8_t> gpu;
  ASSERT_EQ(EmulateGpuEncode(t, q, &gpu), kCodeOk);
  ASSERT_EQ(gpu.size(), cpu.size());
  ASSERT_TRUE(gpu == cpu) << "first difference at byte "
                          << (std::mismatch(gpu.begin(), gpu.end(), cpu.begin()).first - gpu.begin());
  uint64_t elements = 1;
  for (int64_t d : t.shape) elements *= static_cast<uint64_t>(d);
  EXPECT_LE(cpu.size(), MaxDenseEncodedSize(elements, static_cast<int>(t.shape.size())));
  auto ref = Decode(cpu.data(), cpu.size());
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  std::vector<float> dec;
  Status st = EmulateGpuDecode(cpu, &dec);
  ASSERT_TRUE(st.ok()) << st.ToString();
  ASSERT_EQ(dec.size(), ref->values.size());
  EXPECT_TRUE(dec.empty() || std::memcmp(dec.data(), ref->values.data(), dec.size() * sizeof(float)) == 0);
}

std::vector<float> Random(size_t n, uint32_t seed, int kind) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  std::uniform_real_distribution<float> u(-3.f, 5.f);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    switch (kind) {
      case 0: v[i] = g(rng); break;                                    // gaussian
      case 1: v[i] = std::max(0.f, g(rng) - 0.5f); break;             // ReLU-like: mostly zeros
      case 2: v[i] = u(rng); break;                                    // uniform
      case 3: v[i] = (rng() % 1000 == 0) ? 50.f * g(rng) : 0.01f * g(rng); break;  // outliers
      default: v[i] = static_cast<float>(rng() % 3); break;            // three values
    }
  }
  return v;
}

// ---------------------------------------------------------------------------------------------

TEST(GpuCoreTest, ParamsMatchComputeQuantParams) {
  std::mt19937 rng(7);
  std::vector<std::pair<float, float>> ranges = {{0.f, 1.f},       {-1.f, 1.f},      {-0.5f, 0.5f},   {3.f, 3.f},
                                                 {-2.f, -1.f},     {1e-30f, 2e-30f}, {0.f, 1e-40f},   {-3e38f, 3e38f},
                                                 {-1e38f, 1e38f},  {1.f, 1.0000001f}, {-0.f, 0.f},    {-FLT_MAX, FLT_MAX}};
  for (int i = 0; i < 2000; ++i) {
    float a = std::ldexp(static_cast<float>(rng() % 100000) / 1000.f - 50.f, static_cast<int>(rng() % 40) - 20);
    float b = std::ldexp(static_cast<float>(rng() % 100000) / 1000.f - 50.f, static_cast<int>(rng() % 40) - 20);
    ranges.push_back({std::min(a, b), std::max(a, b)});
  }
  for (const auto& [lo, hi] : ranges) {
    for (int q = 1; q <= 8; ++q) {
      const float x[2] = {lo, hi};
      QuantParams cpu;
      Status st = ComputeQuantParams(x, 2, q, &cpu);
      const RangeParams g = ParamsFromRange(lo, hi, q);
      SCOPED_TRACE(std::to_string(lo) + ".." + std::to_string(hi) + " q=" + std::to_string(q));
      if (!st.ok()) {
        EXPECT_TRUE(g.kind == ParamsKind::kRangeTooLarge || g.kind == ParamsKind::kOffsetTooLarge) << st.ToString();
        continue;
      }
      ASSERT_TRUE(g.kind == ParamsKind::kDense || g.kind == ParamsKind::kConstant);
      EXPECT_EQ(cpu.constant, g.kind == ParamsKind::kConstant);
      if (cpu.constant) {
        EXPECT_EQ(BitsOf(cpu.constant_value), BitsOf(g.constant_value));
      } else {
        EXPECT_EQ(BitsOf(cpu.scale), BitsOf(g.scale));
        EXPECT_EQ(cpu.zero_point, g.zero_point);
      }
    }
  }
}

TEST(GpuCoreTest, FloatKeyOrdersFloats) {
  const float v[] = {-FLT_MAX, -1.f, -1e-40f, -0.f, 0.f, 1e-40f, 1.f, FLT_MAX};
  for (size_t i = 0; i + 1 < sizeof(v) / sizeof(v[0]); ++i) {
    EXPECT_LT(FloatKey(BitsOf(v[i])), FloatKey(BitsOf(v[i + 1])));
  }
  for (float f : v) EXPECT_EQ(FloatKeyToBits(FloatKey(BitsOf(f))), BitsOf(f));
}

// Every candidate prob_bits normalizes exactly like NormalizeFrequencies, shortfall and excess.
TEST(GpuCoreTest, NormalizationMatchesCpu) {
  std::mt19937 rng(11);
  int excess_cases = 0, shortfall_cases = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    const uint32_t a = 2 + rng() % 255;
    TableScratch sc{};
    uint64_t total = 0;
    const int mode = iter % 4;
    for (uint32_t s = 0; s < a; ++s) {
      uint32_t c = 0;
      if (mode == 0) c = rng() % 1000;
      if (mode == 1) c = (rng() % 3 == 0) ? 1 + rng() % 3 : 0;           // many tiny counts: excess
      if (mode == 2) c = (s == 0) ? 1000000 + rng() % 1000 : rng() % 2;  // one dominant symbol
      if (mode == 3) c = static_cast<uint32_t>(std::exp(static_cast<double>(rng() % 1500) / 100.0));
      sc.counts[s] = c;
      total += c;
    }
    sc.counts[0] += 1;
    sc.counts[a - 1] += 1;
    total += 2;
    for (int pb = kMinProbBits; pb <= 14; ++pb) {
      if ((1u << pb) < a) continue;
      std::vector<uint32_t> cpu(a);
      NormalizeFrequencies(sc.counts, a, pb, cpu.data());
      HostExec ex;
      NormalizeCandidate(ex, sc, 0, pb, a, total);
      uint64_t sum = 0;
      for (uint32_t s = 0; s < a; ++s) sum += std::max<uint64_t>(sc.counts[s] ? 1 : 0, sc.counts[s] * (1ull << pb) / total);
      excess_cases += sum > (1ull << pb);
      shortfall_cases += sum < (1ull << pb);
      for (uint32_t s = 0; s < a; ++s) {
        ASSERT_EQ(sc.freq[0][s], cpu[s]) << "a=" << a << " pb=" << pb << " s=" << s << " iter=" << iter;
      }
    }
  }
  EXPECT_GT(excess_cases, 100);
  EXPECT_GT(shortfall_cases, 100);
}

// The table, prob_bits, lanes and stream header equal what EncodeStream writes.
TEST(GpuCoreTest, StreamHeaderMatchesEncodeStream) {
  std::mt19937 rng(5);
  for (int iter = 0; iter < 400; ++iter) {
    const int q = 1 + iter % 8;
    const uint32_t alphabet = 1u << q;
    const uint32_t n = iter % 5 == 0 ? 2 + rng() % 64 : (iter % 5 == 1 ? 70000 + rng() % 200000 : 2 + rng() % 20000);
    std::vector<uint8_t> sym(n);
    const double skew = 0.2 + (rng() % 100) / 25.0;
    std::geometric_distribution<int> geo(1.0 / (1.0 + skew));
    for (uint32_t i = 0; i < n; ++i) sym[i] = static_cast<uint8_t>(std::min<int>(geo(rng), alphabet - 1));
    sym[0] = 0;
    sym[n - 1] = static_cast<uint8_t>(alphabet - 1);
    TableScratch sc{};
    uint32_t counts[256] = {};
    for (uint8_t s : sym) counts[s]++;
    std::memcpy(sc.counts, counts, sizeof(counts));
    uint32_t last = 0;
    for (uint32_t s = 0; s < alphabet; ++s) {
      if (counts[s]) last = s;
    }
    std::vector<uint8_t> cpu;
    EncodeStream<uint8_t>(sym.data(), n, counts, alphabet, StreamParams(), &cpu);
    HostExec ex;
    const int pb = BuildDenseTable(ex, sc, last + 1, n, Log2Table().data());
    uint8_t hdr[kMaxStreamHeaderBytes];
    const uint32_t len = WriteRansStreamHeader(hdr, n, pb, DenseLanesLog2(n), last + 1, sc.freq[sc.best]);
    ASSERT_GE(cpu.size(), len);
    ASSERT_EQ(0, std::memcmp(cpu.data(), hdr, len)) << "iter " << iter << " n=" << n << " q=" << q << " pb=" << pb
                                                     << " cpu pb=" << int{cpu[1 + VarintSize(n)]};
  }
}

TEST(GpuCoreTest, CrcPiecesMatchCrc32c) {
  const CrcTables& t = Crc();
  std::mt19937 rng(3);
  std::vector<uint8_t> data(300000);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  const uint8_t check[] = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
  EXPECT_EQ(CrcRawBytes(0xFFFFFFFFu, check, 9, t.lut) ^ 0xFFFFFFFFu, 0xE3069283u);
  for (size_t len : {0ul, 1ul, 3ul, 4ul, 5ul, 31ul, 4095ul, 4096ul, 4097ul, 65536ul, 70001ul, 300000ul}) {
    SCOPED_TRACE(len);
    const uint32_t want = Crc32c(data.data(), len);
    // Whole range by one CTA.
    EXPECT_EQ(CrcFinish(CrcShift(ModelCtaCrcRaw(data.data(), 0, len), 0, t.x2n), len, t.x2n), want);
    // Random cuts, each a "CTA", xor of shifted pieces in any order.
    std::vector<size_t> cuts = {0, len};
    for (int k = 0; k < 5 && len > 0; ++k) cuts.push_back(rng() % (len + 1));
    std::sort(cuts.begin(), cuts.end());
    uint32_t x = 0;
    for (size_t k = 0; k + 1 < cuts.size(); ++k) {
      x ^= CrcShift(ModelCtaCrcRaw(data.data(), cuts[k], cuts[k + 1], 128), len - cuts[k + 1], t.x2n);
    }
    EXPECT_EQ(CrcFinish(x, len, t.x2n), want);
  }
}

TEST(GpuCoreTest, EncodeMatchesCpuOnEdgeSizes) {
  for (uint32_t n : {1u, 2u, 3u, 31u, 32u, 33u, 64u, 255u, 4095u, 4096u, 4097u, 65535u, 65536u, 65537u, 131072u,
                     200003u}) {
    for (int kind = 0; kind < 5; ++kind) {
      const std::vector<float> v = Random(n, n * 7 + kind, kind);
      for (int q : {1, 2, 4, 8}) {
        if (n > 70000 && q != 4 && kind != 0) continue;
        CheckTensor({v.data(), DType::kFloat32, {static_cast<int64_t>(n)}}, q,
                    "n=" + std::to_string(n) + " kind=" + std::to_string(kind));
      }
    }
  }
}

TEST(GpuCoreTest, EncodeMatchesCpuOnSpecialTensors) {
  // Constant, empty, two values, a constant stream, negative zero, float16.
  std::vector<float> c(1000, 2.5f);
  CheckTensor({c.data(), DType::kFloat32, {10, 100}}, 4, "constant");
  CheckTensor({nullptr, DType::kFloat32, {3, 0, 2}}, 4, "empty");
  std::vector<float> two = {-1.f, 1.f, -1.f, 1.f, 1.f};
  for (int q = 1; q <= 8; ++q) CheckTensor({two.data(), DType::kFloat32, {5}}, q, "two values");
  std::vector<float> half_tie = {-0.5f, 0.5f, 0.5f};  // q=1: both round to 0: a constant stream
  CheckTensor({half_tie.data(), DType::kFloat32, {3}}, 1, "constant stream");
  std::vector<float> zeros(100, 0.f);
  CheckTensor({zeros.data(), DType::kFloat32, {100}}, 4, "zeros");
  // Zeros of both signs (the GPU's minimum is taken in IEEE total order, -0 < +0), and a range
  // whose scale rounds to 0: both are constant tensors written with +0.
  std::vector<float> signed_zeros = {0.f, -0.f, -0.f, 0.f, -0.f};
  CheckTensor({signed_zeros.data(), DType::kFloat32, {5}}, 4, "zeros of both signs");
  std::vector<float> neg_zeros(7, -0.f);
  CheckTensor({neg_zeros.data(), DType::kFloat32, {7}}, 4, "negative zeros");
  std::vector<float> tiny = {0.f, -0.f, 1e-45f};
  CheckTensor({tiny.data(), DType::kFloat32, {3}}, 8, "scale rounds to 0");
  std::vector<float> neg = Random(5000, 9, 0);
  for (auto& f : neg) f = -std::fabs(f) - 1.f;
  CheckTensor({neg.data(), DType::kFloat32, {5000}}, 4, "negative");
  std::vector<float> big = Random(5000, 10, 0);
  for (auto& f : big) f *= 1e30f;
  CheckTensor({big.data(), DType::kFloat32, {5000}}, 8, "large range");
  std::vector<uint16_t> h(70001);
  const std::vector<float> hv = Random(h.size(), 12, 0);
  for (size_t i = 0; i < h.size(); ++i) h[i] = FloatToHalf(hv[i]);
  for (int q : {2, 4, 8}) CheckTensor({h.data(), DType::kFloat16, {70001}}, q, "float16");
}

TEST(GpuCoreTest, NonFiniteIsRejected) {
  std::vector<float> v = Random(100, 1, 0);
  v[50] = NAN;
  std::vector<uint8_t> out;
  EXPECT_EQ(EmulateGpuEncode({v.data(), DType::kFloat32, {100}}, 4, &out), kCodeInvalidArgument);
  v[50] = INFINITY;
  EXPECT_EQ(EmulateGpuEncode({v.data(), DType::kFloat32, {100}}, 4, &out), kCodeInvalidArgument);
  const float huge[2] = {-FLT_MAX, FLT_MAX};
  EXPECT_EQ(EmulateGpuEncode({huge, DType::kFloat32, {2}}, 1, &out), kCodeInvalidArgument);
}

TEST(GpuCoreTest, EncodeMatchesCpuOnCommittedFeatures) {
  const std::string dir = std::string(SPLITRANS_SOURCE_DIR) + "/tests/data/features/";
  int seen = 0;
  for (const char* name : {"resnet34_layer2_img0.npy", "resnet34_layer2_img0_f16.npy", "resnet34_layer2_img1.npy",
                           "fmnist_stage1_img0.npy", "fmnist_stage2_img1.npy", "fmnist_stage3_preact_img0.npy"}) {
    auto arr = ReadNpy(dir + name);
    if (!arr.ok()) continue;
    ++seen;
    for (int q : {2, 4, 6, 8}) CheckTensor({arr->bytes.data(), arr->dtype, arr->shape}, q, name);
  }
  EXPECT_GT(seen, 0) << "no committed features under " << dir;
}

// Host validation + kernel model reject exactly what the CPU decoder rejects, with its code.
void CompareRejection(const std::vector<uint8_t>& bits, const std::string& what) {
  DecodeLimits limits;
  limits.max_elements = 1u << 20;  // corrupted shapes must not allocate gigabytes
  auto cpu = Decode(bits.data(), bits.size(), limits);
  std::vector<float> gpu;
  Status st = EmulateGpuDecode(bits, &gpu, limits);
  ASSERT_EQ(static_cast<int>(st.code()), static_cast<int>(cpu.status().code()))
      << what << ": gpu " << st.ToString() << " cpu " << cpu.status().ToString();
  if (st.ok()) {
    ASSERT_EQ(gpu.size(), cpu->values.size());
    EXPECT_TRUE(gpu.empty() || std::memcmp(gpu.data(), cpu->values.data(), 4 * gpu.size()) == 0) << what;
  }
}

// Rewrites the checksum so that corruption reaches the body checks.
void FixCrc(std::vector<uint8_t>* b) {
  if (b->size() < kFixedHeaderBytes + kChecksumBytes) return;
  uint32_t body;
  std::memcpy(&body, b->data() + 20, 4);
  if (kFixedHeaderBytes + uint64_t{body} + 4 != b->size()) return;
  const uint32_t crc = Crc32c(b->data(), kFixedHeaderBytes + body);
  std::memcpy(b->data() + kFixedHeaderBytes + body, &crc, 4);
}

TEST(GpuCoreTest, MalformedInputsMatchCpuCodes) {
  std::mt19937 rng(21);
  g_kernel_rejections = 0;
  for (uint32_t n : {1u, 40u, 5000u, 70000u}) {
    const std::vector<float> v = Random(n, n, 0);
    for (int q : {1, 4, 8}) {
      const std::vector<uint8_t> good = CpuDense({v.data(), DType::kFloat32, {static_cast<int64_t>(n)}}, q);
      SCOPED_TRACE("n=" + std::to_string(n) + " q=" + std::to_string(q));
      // Every prefix (sampled for long streams), with and without a fixed-up checksum.
      for (size_t len = 0; len < good.size(); len += good.size() > 3000 ? 1 + rng() % 97 : 1) {
        std::vector<uint8_t> b(good.begin(), good.begin() + len);
        CompareRejection(b, "prefix " + std::to_string(len));
      }
      // Trailing bytes.
      std::vector<uint8_t> t = good;
      t.push_back(0);
      CompareRejection(t, "trailing");
      // Bit flips, checksum fixed so that the body is parsed and decoded.
      for (int k = 0; k < 300; ++k) {
        std::vector<uint8_t> b = good;
        const size_t at = k < 60 ? k % std::min<size_t>(b.size(), 60) : rng() % b.size();
        b[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
        CompareRejection(b, "flip at " + std::to_string(at));
        FixCrc(&b);
        CompareRejection(b, "flip+crc at " + std::to_string(at));
      }
      // Header fields.
      for (int field = 0; field < 12; ++field) {
        std::vector<uint8_t> b = good;
        switch (field) {
          case 0: b[4] = 2; break;            // version
          case 1: b[5] = 1; break;            // flags
          case 2: b[6] = 3; break;            // dtype
          case 3: b[7] = 0; break;            // rank
          case 4: b[8] = 9; break;            // q
          case 5: b[9] = 7; break;            // layout
          case 6: b[10] = 1; break;           // reserved
          case 7: std::memset(&b[12], 0xff, 4); break;  // scale NaN
          case 8: std::memset(&b[12], 0, 4); break;     // scale 0
          case 9: b[20] ^= 1; break;          // body size
          case 10: b[0] = 'X'; break;         // magic
          case 11: b[24] = 0xff; b[25] = 0xff; break;  // shape
        }
        CompareRejection(b, "field " + std::to_string(field));
        FixCrc(&b);
        CompareRejection(b, "field+crc " + std::to_string(field));
      }
    }
  }
  EXPECT_GT(g_kernel_rejections, 50);  // corruption that only the payload checks can see
}

// Streams with parameters this encoder never picks (other block sizes and lane counts, 15-bit
// tables) decode like the CPU decodes them.
TEST(GpuCoreTest, DecodesForeignStreamParameters) {
  std::mt19937 rng(8);
  for (int iter = 0; iter < 60; ++iter) {
    const int q = 1 + iter % 8;
    const uint32_t n = 1 + rng() % 150000;
    std::vector<uint8_t> sym(n);
    for (auto& v : sym) v = static_cast<uint8_t>(std::min<uint32_t>(rng() % (1u << q), rng() % (1u << q)));
    sym[0] = 0;
    sym[n - 1] = static_cast<uint8_t>((1u << q) - 1);
    uint32_t counts[256] = {};
    for (uint8_t v : sym) counts[v]++;
    StreamParams sp;
    sp.block_log2 = kMinBlockLog2 + static_cast<int>(rng() % (kMaxBlockLog2 - kMinBlockLog2 + 1));
    sp.lanes_log2 = static_cast<int>(rng() % (kMaxLanesLog2 + 1));
    sp.prob_bits = iter % 3 == 0 ? kMaxProbBits : 0;
    std::vector<uint8_t> bits(kFixedHeaderBytes + 4);
    FixedHeader h{};
    std::memcpy(h.magic, kMagic, 4);
    h.version = kFormatVersion;
    h.dtype = 1;
    h.rank = 1;
    h.q = static_cast<uint8_t>(q);
    h.layout = static_cast<uint8_t>(Layout::kDense);
    h.scale = 0.25f;
    h.zero_point = 3;
    std::memcpy(bits.data() + kFixedHeaderBytes, &n, 4);
    EncodeStream<uint8_t>(sym.data(), n, counts, 1u << q, sp, &bits);
    h.body_size = static_cast<uint32_t>(bits.size() - kFixedHeaderBytes);
    std::memcpy(bits.data(), &h, sizeof(h));
    const uint32_t crc = Crc32c(bits.data(), bits.size());
    bits.insert(bits.end(), reinterpret_cast<const uint8_t*>(&crc), reinterpret_cast<const uint8_t*>(&crc) + 4);
    SCOPED_TRACE("n=" + std::to_string(n) + " block_log2=" + std::to_string(sp.block_log2) +
                 " lanes_log2=" + std::to_string(sp.lanes_log2));
    CompareRejection(bits, "foreign");
    std::vector<float> out;
    ASSERT_TRUE(EmulateGpuDecode(bits, &out).ok());
  }
}

TEST(GpuCoreTest, LimitAndCapacityChecks) {
  const std::vector<float> v = Random(5000, 2, 0);
  const std::vector<uint8_t> good = CpuDense({v.data(), DType::kFloat32, {5000}}, 4);
  DecodeLimits small;
  small.max_elements = 4999;
  ValidatedHeader h;
  EXPECT_EQ(ValidateHeader(good.data(), good.size(), small, nullptr, &h).code(), ErrorCode::kLimitExceeded);
  ASSERT_TRUE(ValidateHeader(good.data(), good.size(), {}, nullptr, &h).ok());
  // The prefix bound covers everything the dense parser reads.
  DenseStreamInfo ds;
  ASSERT_TRUE(ParseDenseBody(good.data(), h, &ds).ok());
  EXPECT_LE(ds.payload_offset, DenseParsePrefixBound(h.elements, h.h.rank));
  // A device-computed checksum is honored.
  ExternalCrc crc{1, 2};
  EXPECT_EQ(ValidateHeader(good.data(), good.size(), {}, &crc, &h).code(), ErrorCode::kChecksumMismatch);
  crc.computed = crc.stored = 7;
  EXPECT_TRUE(ValidateHeader(good.data(), good.size(), {}, &crc, &h).ok());
}

TEST(GpuCoreTest, PlanEncodeValidates) {
  uint8_t* fake_out = reinterpret_cast<uint8_t*>(uintptr_t{4096});
  const float* fake_in = reinterpret_cast<const float*>(uintptr_t{8192});
  std::vector<int64_t> shape = {128, 28, 28};
  EncodeRequest r;
  r.in = fake_in;
  r.shape = shape.data();
  r.rank = 3;
  r.out = fake_out;
  r.out_capacity = MaxDenseEncodedSize(128 * 28 * 28, 3);
  EncodeLayout layout;
  std::vector<uint8_t> desc;
  ASSERT_TRUE(PlanEncode(&r, 1, 4, &layout, &desc).ok());
  EXPECT_EQ(layout.total_tiles, (100352u + kTileElems - 1) / kTileElems);
  EXPECT_EQ(layout.total_blocks, 2u);
  EXPECT_EQ(layout.total_asm, 2u);
  EXPECT_EQ(desc.size(), layout.desc_bytes);
  EXPECT_GE(layout.total, 3u * 100352u);
  EXPECT_EQ(PlanEncode(&r, 1, 9, &layout, &desc).code(), ErrorCode::kInvalidArgument);
  EncodeRequest bad = r;
  bad.out_capacity -= 1;
  EXPECT_EQ(PlanEncode(&bad, 1, 4, &layout, &desc).code(), ErrorCode::kInvalidArgument);
  bad = r;
  bad.in = nullptr;
  EXPECT_EQ(PlanEncode(&bad, 1, 4, &layout, &desc).code(), ErrorCode::kInvalidArgument);
  bad = r;
  bad.rank = 0;
  EXPECT_EQ(PlanEncode(&bad, 1, 4, &layout, &desc).code(), ErrorCode::kInvalidArgument);
  std::vector<int64_t> neg = {-1};
  bad = r;
  bad.shape = neg.data();
  bad.rank = 1;
  EXPECT_EQ(PlanEncode(&bad, 1, 4, &layout, &desc).code(), ErrorCode::kInvalidArgument);
  // An empty tensor needs no data.
  std::vector<int64_t> empty = {0, 5};
  bad = r;
  bad.in = nullptr;
  bad.shape = empty.data();
  bad.rank = 2;
  EXPECT_TRUE(PlanEncode(&bad, 1, 4, &layout, &desc).ok());
  EXPECT_EQ(layout.total_asm, 1u);
}

}  // namespace
}  // namespace splitrans::codec::gpu

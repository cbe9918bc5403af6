// The decoders' bounded-scratch paths: streams re-coded with other block sizes and lane counts
// (cursors that start and stop inside blocks, the paper layout's kept and discarded block
// heads), and context maps wider than the decoder's row ring (tiles, rows staged in the output).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "codec/byte_io.h"
#include "codec/codec.h"
#include "codec/crc32c.h"
#include "codec/rans_stream.h"
#include "codec/wire.h"

namespace splitrans::codec {
namespace {

using Bytes = std::vector<uint8_t>;

std::vector<float> Relu(uint64_t n, double zero_fraction, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::exponential_distribution<float> e(1.f);
  std::vector<float> x(n);
  for (auto& v : x) v = u(rng) < zero_fraction ? 0.f : e(rng);
  return x;
}

std::vector<float> Signed(uint64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, 2.f);
  std::vector<float> x(n);
  float drift = 0;
  for (auto& v : x) v = (drift = 0.9f * drift + g(rng));  // smooth: the med predictor wins
  return x;
}

Bytes MustEncode(const std::vector<float>& x, const std::vector<int64_t>& shape, int q, Mode mode) {
  EncodeOptions opt;
  opt.q = q;
  opt.mode = mode;
  auto r = Encode(TensorView{x.data(), DType::kFloat32, shape}, opt);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : Bytes();
}

void FixSizeAndCrc(Bytes* b) {
  const uint32_t body = static_cast<uint32_t>(b->size() - kFixedHeaderBytes);
  std::memcpy(b->data() + offsetof(FixedHeader, body_size), &body, 4);
  const uint32_t crc = Crc32c(b->data(), b->size());
  b->resize(b->size() + 4);
  std::memcpy(b->data() + b->size() - 4, &crc, 4);
}

// Decodes the stream at *r and appends it to *out coded again with params.
template <typename Sym>
void Recode(ByteReader* r, uint32_t max_n, uint32_t alphabet, const StreamParams& params, Bytes* out) {
  std::vector<Sym> sym;
  ASSERT_TRUE(DecodeStream<Sym>(r, max_n, alphabet - 1, &sym).ok());
  std::vector<uint32_t> counts(alphabet, 0);
  for (Sym s : sym) counts[s]++;
  EncodeStream<Sym>(sym.data(), static_cast<uint32_t>(sym.size()), counts.data(), alphabet, params, out);
}

// The same bitstream (dense, sparse or paper) with its streams coded with params.
Bytes WithStreamParams(const Bytes& b, const StreamParams& params) {
  FixedHeader h;
  std::memcpy(&h, b.data(), sizeof(h));
  const size_t body_begin = kFixedHeaderBytes + 4 * size_t{h.rank};
  uint64_t t = 1;
  for (int i = 0; i < h.rank; ++i) {
    uint32_t d;
    std::memcpy(&d, b.data() + kFixedHeaderBytes + 4 * i, 4);
    t *= d;
  }
  Bytes out(b.begin(), b.begin() + static_cast<ptrdiff_t>(body_begin));
  ByteReader r(b.data() + body_begin, kFixedHeaderBytes + h.body_size - body_begin);
  const uint32_t levels = 1u << h.q;
  if (h.layout == static_cast<uint8_t>(Layout::kDense)) {
    Recode<uint8_t>(&r, static_cast<uint32_t>(t), levels, params, &out);
  } else {
    uint32_t n, k;
    EXPECT_TRUE(r.U32(&n, "N").ok());
    EXPECT_TRUE(r.U32(&k, "K").ok());
    ByteWriter w(&out);
    w.U32(n);
    w.U32(k);
    if (h.layout == static_cast<uint8_t>(Layout::kSparse)) {
      Recode<uint16_t>(&r, static_cast<uint32_t>(t), levels, params, &out);
      Recode<uint16_t>(&r, static_cast<uint32_t>(t), k, params, &out);
      Recode<uint16_t>(&r, n, k + 1, params, &out);
    } else {
      Recode<uint16_t>(&r, static_cast<uint32_t>(2 * t + n), std::max(levels, k + 1), params, &out);
    }
  }
  EXPECT_EQ(r.remaining(), 0u);
  FixSizeAndCrc(&out);
  return out;
}

// b must decode to exactly what reference decodes to (bitwise), through every entry point, and
// (same_sections) Inspect must agree with the reference's sections (symbol counts, entropies).
void ExpectSameDecode(const Bytes& b, const Bytes& reference, const std::string& what, bool same_sections = true) {
  auto want = Decode(reference.data(), reference.size());
  ASSERT_TRUE(want.ok()) << what << ": " << want.status().ToString();
  Decoder dec;
  DecodedTensor got;
  const Status s = dec.Decode(b.data(), b.size(), &got);
  ASSERT_TRUE(s.ok()) << what << ": " << s.ToString();
  ASSERT_EQ(got.shape, want->shape) << what;
  ASSERT_EQ(got.values.size(), want->values.size()) << what;
  ASSERT_EQ(std::memcmp(got.values.data(), want->values.data(), got.values.size() * 4), 0) << what;
  std::vector<float> into(got.values.size() + 5, -1.f);
  std::vector<int64_t> shape;
  ASSERT_TRUE(dec.DecodeInto(b.data(), b.size(), into.data(), into.size(), &shape).ok()) << what;
  ASSERT_EQ(std::memcmp(into.data(), want->values.data(), got.values.size() * 4), 0) << what;
  for (size_t i = got.values.size(); i < into.size(); ++i) ASSERT_EQ(into[i], -1.f) << what << ": wrote past T";
  auto info = Inspect(b.data(), b.size());
  auto ref_info = Inspect(reference.data(), reference.size());
  ASSERT_TRUE(info.ok() && ref_info.ok()) << what;
  if (!same_sections) return;
  ASSERT_EQ(info->sections.size(), ref_info->sections.size()) << what;
  for (size_t i = 0; i < info->sections.size(); ++i) {
    EXPECT_EQ(info->sections[i].symbols, ref_info->sections[i].symbols) << what;
    EXPECT_NEAR(info->sections[i].entropy_bits, ref_info->sections[i].entropy_bits,
                1e-9 * (1 + ref_info->sections[i].entropy_bits))
        << what;
  }
}

// Small blocks put block boundaries everywhere: the sparse streams' cursors cross many, and the
// paper layout's c and r cursors start inside blocks (their heads kept for the cursor before).
TEST(DecodeScratch, StreamsWithOtherBlockSizesAndLanes) {
  const std::vector<std::vector<int64_t>> shapes = {{64, 14, 14}, {5, 7, 11}, {3001}, {16, 28, 28}};
  int cases = 0;
  for (size_t si = 0; si < shapes.size(); ++si) {
    uint64_t t = 1;
    for (int64_t d : shapes[si]) t *= static_cast<uint64_t>(d);
    for (double zeros : {0.3, 0.9, 0.995}) {
      const auto x = Relu(t, zeros, static_cast<uint32_t>(17 + si));
      for (int q : {2, 4, 8}) {
        for (Mode mode : {Mode::kDense, Mode::kSparse, Mode::kPaper}) {
          const Bytes ref = MustEncode(x, shapes[si], q, mode);
          if (ref[9] == static_cast<uint8_t>(Layout::kConstant)) continue;
          for (int block_log2 : {8, 9, 12}) {
            for (int lanes_log2 : {0, 3, 5}) {
              StreamParams params;
              params.block_log2 = block_log2;
              params.lanes_log2 = lanes_log2;
              const Bytes b = WithStreamParams(ref, params);
              ExpectSameDecode(b, ref,
                               std::string(ModeName(mode)) + " shape " + std::to_string(si) + " zeros " +
                                   std::to_string(zeros) + " q " + std::to_string(q) + " block_log2 " +
                                   std::to_string(block_log2) + " lanes_log2 " + std::to_string(lanes_log2));
              ++cases;
            }
          }
        }
      }
    }
  }
  EXPECT_GT(cases, 500);
}

// Blocks larger than the paper decoder keeps (2^16 symbols): the heads are discarded and decoded
// again by the cursor before, which then stops inside the block.
TEST(DecodeScratch, PaperBlocksLargerThanWhatIsKept) {
  const std::vector<int64_t> shape = {32, 128, 256};
  const auto x = Relu(32 * 128 * 256, 0.6, 5);
  const Bytes ref = MustEncode(x, shape, 4, Mode::kPaper);
  for (int block_log2 : {16, 17, 18, 20}) {
    StreamParams params;
    params.block_log2 = block_log2;
    ExpectSameDecode(WithStreamParams(ref, params), ref, "block_log2 " + std::to_string(block_log2));
  }
}

// Damage to re-coded streams (checksum fixed) is found as before: Decode and Inspect agree, and
// every rejection is a clean error.
TEST(DecodeScratch, CorruptRecodedStreams) {
  const auto x = Relu(6 * 20 * 20, 0.7, 11);
  std::mt19937 rng(99);
  for (Mode mode : {Mode::kDense, Mode::kSparse, Mode::kPaper}) {
    StreamParams params;
    params.block_log2 = 8;
    params.lanes_log2 = 2;
    const Bytes base = WithStreamParams(MustEncode(x, {6, 20, 20}, 4, mode), params);
    int rejected = 0;
    for (int i = 0; i < 2000; ++i) {
      Bytes b(base.begin(), base.end() - 4);
      const size_t pos = kFixedHeaderBytes + 12 + rng() % (b.size() - kFixedHeaderBytes - 12);
      b[pos] ^= static_cast<uint8_t>(1u << (rng() % 8));
      FixSizeAndCrc(&b);
      DecodedTensor out;
      const Status s = Decoder().Decode(b.data(), b.size(), &out);
      ASSERT_EQ(s.code(), Inspect(b.data(), b.size()).status().code()) << ModeName(mode) << " " << i;
      if (!s.ok()) {
        ASSERT_TRUE(s.code() == ErrorCode::kCorruptPayload || s.code() == ErrorCode::kTruncated) << s.ToString();
        ++rejected;
      }
    }
    EXPECT_GT(rejected, 1800) << ModeName(mode);
  }
}

// Maps wider than the context decoder's ring (4096) decode in tiles, with rows staged in the
// output: the values must be those of the dense layout, bit for bit.
TEST(DecodeScratch, ContextWideRows) {
  const std::vector<std::vector<int64_t>> shapes = {
      {3, 5000}, {2, 3, 4, 9000}, {10000}, {5, 1, 4097}, {1, 2, 8192}, {7, 2, 4100}};
  for (const auto& shape : shapes) {
    uint64_t t = 1;
    for (int64_t d : shape) t *= static_cast<uint64_t>(d);
    for (int kind = 0; kind < 2; ++kind) {
      const auto x = kind == 0 ? Relu(t, 0.5, 3) : Signed(t, 4);
      for (int q : {2, 4, 8}) {
        const Bytes ctx = MustEncode(x, shape, q, Mode::kContext);
        const Bytes dense = MustEncode(x, shape, q, Mode::kDense);
        ASSERT_EQ(ctx[9], static_cast<uint8_t>(Layout::kContext));
        const std::string what = ::testing::PrintToString(shape) + " kind " + std::to_string(kind) + " q " +
                                 std::to_string(q);
        ExpectSameDecode(ctx, dense, what, /*same_sections=*/false);
      }
    }
  }
}

TEST(DecodeScratch, CorruptWideContext) {
  const auto x = Signed(2 * 3 * 6000, 8);
  const Bytes base = MustEncode(x, {2, 3, 6000}, 8, Mode::kContext);
  std::mt19937 rng(7);
  int rejected = 0;
  for (int i = 0; i < 500; ++i) {
    Bytes b(base.begin(), base.end() - 4);
    const size_t pos = kFixedHeaderBytes + 12 + rng() % (b.size() - kFixedHeaderBytes - 12);
    b[pos] = static_cast<uint8_t>(rng());
    FixSizeAndCrc(&b);
    DecodedTensor out;
    const Status s = Decoder().Decode(b.data(), b.size(), &out);
    ASSERT_EQ(s.code(), Inspect(b.data(), b.size()).status().code()) << i;
    rejected += !s.ok();
  }
  EXPECT_GT(rejected, 450);
}

}  // namespace
}  // namespace splitrans::codec

// Unit tests for the static-table rANS streams and the raw interleaved coder
// (codec/rans_stream.h): frequency normalization, round trips across stream parameters,
// compression efficiency and rejection of malformed streams.
#include "codec/rans_stream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <vector>

namespace splitrans::codec {
namespace {

uint64_t Sum(const std::vector<uint32_t>& v) {
  uint64_t s = 0;
  for (uint32_t x : v) s += x;
  return s;
}

// Checks the documented contract of NormalizeFrequencies for one histogram.
void CheckNormalized(const std::vector<uint32_t>& counts, int pb) {
  const uint32_t a = static_cast<uint32_t>(counts.size());
  std::vector<uint32_t> f(a, 0xDEADBEEF), f2(a, 0);
  NormalizeFrequencies(counts.data(), a, pb, f.data());
  ASSERT_EQ(Sum(f), uint64_t{1} << pb) << "pb=" << pb;
  const uint64_t total = Sum(counts);
  bool any_bumped = false;
  for (uint32_t s = 0; s < a; ++s) {
    if (counts[s] == 0) {
      ASSERT_EQ(f[s], 0u) << s;
    } else {
      ASSERT_GE(f[s], 1u) << s;
      ASSERT_LT(f[s], 1u << pb) << s;
      if (counts[s] * (uint64_t{1} << pb) < total) any_bumped = true;
    }
  }
  // Without symbols forced up to 1, largest remainder gives floor or ceil of the exact share.
  if (!any_bumped) {
    for (uint32_t s = 0; s < a; ++s) {
      const double exact = static_cast<double>(counts[s]) * std::ldexp(1.0, pb) / static_cast<double>(total);
      ASSERT_LT(std::fabs(f[s] - exact), 1.0) << "s=" << s << " f=" << f[s] << " exact=" << exact;
    }
  }
  // Deterministic.
  NormalizeFrequencies(counts.data(), a, pb, f2.data());
  ASSERT_EQ(f, f2);
}

TEST(NormalizeFrequencies, HandMade) {
  {
    std::vector<uint32_t> counts = {1, 1};
    std::vector<uint32_t> f(2);
    NormalizeFrequencies(counts.data(), 2, 8, f.data());
    EXPECT_EQ(f, (std::vector<uint32_t>{128, 128}));
  }
  {
    std::vector<uint32_t> counts = {3, 0, 1};
    std::vector<uint32_t> f(3);
    NormalizeFrequencies(counts.data(), 3, 8, f.data());
    EXPECT_EQ(f, (std::vector<uint32_t>{192, 0, 64}));
  }
  {
    // 1/3 each of 256: 85 each, one unit left goes to the lowest symbol (equal remainders).
    std::vector<uint32_t> counts = {5, 5, 5};
    std::vector<uint32_t> f(3);
    NormalizeFrequencies(counts.data(), 3, 8, f.data());
    EXPECT_EQ(f, (std::vector<uint32_t>{86, 85, 85}));
  }
  {
    // Very skewed: one dominant symbol and 255 singletons at 8 bits: every singleton keeps 1.
    std::vector<uint32_t> counts(256, 1);
    counts[7] = 1000000;
    std::vector<uint32_t> f(256);
    NormalizeFrequencies(counts.data(), 256, 8, f.data());
    for (uint32_t s = 0; s < 256; ++s) EXPECT_EQ(f[s], 1u) << s;
  }
}

TEST(NormalizeFrequencies, Properties) {
  std::mt19937 rng(77);
  // Two-symbol, singletons, skewed, uniform, many-symbol histograms at every precision.
  for (int pb = kMinProbBits; pb <= kMaxProbBits; ++pb) {
    CheckNormalized({1, 1}, pb);
    CheckNormalized({1, 0, 0, 1}, pb);
    CheckNormalized({0xFFFFFFFFu, 1}, pb);
    CheckNormalized({1, 0xFFFFFFFFu, 1, 1}, pb);
    CheckNormalized({1000000, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, pb);
    for (uint32_t a : {2u, 3u, 17u, 255u, 256u, 1000u, 4096u}) {
      if (a > (1u << pb)) continue;
      CheckNormalized(std::vector<uint32_t>(a, 1), pb);            // uniform singletons
      CheckNormalized(std::vector<uint32_t>(a, 123456), pb);       // uniform, large counts
      std::vector<uint32_t> geo(a);
      for (uint32_t s = 0; s < a; ++s) geo[s] = static_cast<uint32_t>(1e9 * std::pow(0.5, std::min<uint32_t>(s, 60))) + 1;
      CheckNormalized(geo, pb);                                    // geometric: many forced to 1
      for (int rep = 0; rep < 5; ++rep) {
        std::vector<uint32_t> c(a, 0);
        const int mode = rep % 3;
        for (uint32_t s = 0; s < a; ++s) {
          if (mode == 0) c[s] = rng() % 1000;
          else if (mode == 1) c[s] = (rng() % 4 == 0) ? rng() % 100000 : 0;
          else c[s] = (rng() % 2) ? 1 : 0;
        }
        c[0] = std::max<uint32_t>(c[0], 1);
        c[a - 1] = std::max<uint32_t>(c[a - 1], 1);
        CheckNormalized(c, pb);
      }
    }
  }
}

TEST(EntropyBits, KnownValues) {
  std::vector<uint32_t> c = {1, 1, 1, 1};
  EXPECT_DOUBLE_EQ(EntropyBits(c.data(), 4), 8.0);
  c = {5, 0, 0, 0};
  EXPECT_DOUBLE_EQ(EntropyBits(c.data(), 4), 0.0);
  c = {0, 0};
  EXPECT_DOUBLE_EQ(EntropyBits(c.data(), 2), 0.0);
  c = {3, 1};
  EXPECT_NEAR(EntropyBits(c.data(), 2), 4 * (-(0.75 * std::log2(0.75)) - 0.25 * std::log2(0.25)), 1e-9);
}

// Random symbols in [0, alphabet) with a skewed (geometric-like) distribution; the largest
// symbol appears at least once when n >= 2 so that the table spans the whole alphabet.
template <typename Sym>
std::vector<Sym> SkewedSymbols(size_t n, uint32_t alphabet, uint32_t seed, double p = 0.3) {
  std::mt19937 rng(seed);
  std::geometric_distribution<uint32_t> g(p);
  std::uniform_int_distribution<uint32_t> u(0, alphabet - 1);
  std::vector<Sym> s(n);
  for (auto& v : s) v = static_cast<Sym>(rng() % 4 == 0 ? u(rng) : std::min(g(rng), alphabet - 1));
  if (n >= 2) s[n / 2] = static_cast<Sym>(alphabet - 1);
  return s;
}

template <typename Sym>
std::vector<uint32_t> Histogram(const std::vector<Sym>& s, uint32_t alphabet) {
  std::vector<uint32_t> c(alphabet, 0);
  for (Sym v : s) c[v]++;
  return c;
}

template <typename Sym>
void RoundTrip(const std::vector<Sym>& sym, uint32_t alphabet, const StreamParams& params, const char* what) {
  auto counts = Histogram(sym, alphabet);
  std::vector<uint8_t> out = {0x5A};  // a prefix byte: streams append
  StreamStats st;
  EncodeStream<Sym>(sym.data(), static_cast<uint32_t>(sym.size()), counts.data(), alphabet, params, &out, &st);
  ASSERT_EQ(out[0], 0x5A);
  ASSERT_EQ(st.table_bytes + st.payload_bytes, out.size() - 1) << what;
  // Trailing garbage after the stream must be left unread.
  out.push_back(0xEE);
  out.push_back(0xEF);
  ByteReader rd(out.data() + 1, out.size() - 1);
  std::vector<Sym> got = {static_cast<Sym>(1), static_cast<Sym>(2)};
  StreamStats dst;
  Status s = DecodeStream<Sym>(&rd, static_cast<uint32_t>(sym.size()), alphabet - 1, &got, &dst);
  ASSERT_TRUE(s.ok()) << what << ": " << s.ToString();
  ASSERT_EQ(rd.remaining(), 2u) << what;
  ASSERT_EQ(got, sym) << what;
  EXPECT_EQ(dst.table_bytes, st.table_bytes) << what;
  EXPECT_EQ(dst.payload_bytes, st.payload_bytes) << what;
  // The stream kind follows from the data.
  const std::set<Sym> distinct(sym.begin(), sym.end());
  const uint8_t kind = out[1];
  const StreamKind want = sym.empty() ? StreamKind::kEmpty
                         : (distinct.size() == 1 ? StreamKind::kConstant : StreamKind::kRans);
  EXPECT_EQ(kind, static_cast<uint8_t>(want)) << what;
  // A decoder that accepts fewer symbols rejects the stream.
  if (!sym.empty()) {
    ByteReader rd2(out.data() + 1, out.size() - 1);
    EXPECT_EQ(DecodeStream<Sym>(&rd2, static_cast<uint32_t>(sym.size() - 1), alphabet - 1, &got).code(),
              ErrorCode::kCorruptPayload)
        << what;
  }
}

TEST(Stream, RoundTripAcrossLengthsLanesBlocksAlphabets) {
  int cases = 0;
  for (int block_log2 : {8, 16}) {
    const uint32_t block = 1u << block_log2;
    for (int lanes_log2 = 0; lanes_log2 <= kMaxLanesLog2; ++lanes_log2) {
      const uint32_t lanes = 1u << lanes_log2;
      const std::set<uint32_t> lengths = {0, 1, 2, lanes - 1, lanes, lanes + 1, block - 1, block, block + 1};
      for (uint32_t alphabet : {2u, 3u, 16u, 256u, 4096u}) {
        for (uint32_t n : lengths) {
          // Large lengths only for a subset of alphabets to keep the test fast.
          if (n > 4096 && alphabet != 2 && alphabet != 256 && alphabet != 4096) continue;
          const uint32_t seed = n * 131 + alphabet * 7 + lanes_log2 * 3 + block_log2;
          StreamParams params;
          params.lanes_log2 = lanes_log2;
          params.block_log2 = block_log2;
          const std::string what = "n=" + std::to_string(n) + " a=" + std::to_string(alphabet) +
                                   " lanes_log2=" + std::to_string(lanes_log2) + " block_log2=" +
                                   std::to_string(block_log2);
          auto sym16 = SkewedSymbols<uint16_t>(n, alphabet, seed);
          RoundTrip<uint16_t>(sym16, alphabet, params, what.c_str());
          if (alphabet <= 256) {
            auto sym8 = SkewedSymbols<uint8_t>(n, alphabet, seed + 1);
            RoundTrip<uint8_t>(sym8, alphabet, params, what.c_str());
          }
          ++cases;
        }
      }
    }
  }
  EXPECT_GT(cases, 400);
}

// Byte streams with 32 lanes and several full blocks: the decoder runs two blocks at once
// (AVX-512 where available), then each one's rest; every split must give the encoder's symbols.
TEST(Stream, RoundTripMultiBlockByteStreams) {
  for (int block_log2 : {8, 10, 16}) {
    const uint32_t block = 1u << block_log2;
    for (uint32_t n : {2 * block, 2 * block + 31, 2 * block + 700, 3 * block - 5, 5 * block}) {
      for (uint32_t alphabet : {2u, 16u, 256u}) {
        StreamParams params;
        params.lanes_log2 = 5;
        params.block_log2 = block_log2;
        const std::string what = "n=" + std::to_string(n) + " a=" + std::to_string(alphabet) +
                                 " block_log2=" + std::to_string(block_log2);
        RoundTrip<uint8_t>(SkewedSymbols<uint8_t>(n, alphabet, n + alphabet), alphabet, params, what.c_str());
      }
    }
  }
}

TEST(Stream, RoundTripEveryProbBitsAndDefaults) {
  for (uint32_t alphabet : {2u, 5u, 256u}) {
    for (int pb = kMinProbBits; pb <= kMaxProbBits; ++pb) {
      for (uint32_t n : {2u, 100u, 5000u}) {
        StreamParams params;
        params.prob_bits = pb;
        RoundTrip<uint16_t>(SkewedSymbols<uint16_t>(n, alphabet, pb * 1000 + n), alphabet, params, "explicit pb");
      }
    }
  }
  // Default parameters (automatic precision and lanes), up to the largest alphabet.
  for (uint32_t alphabet = 2; alphabet <= 4096; alphabet *= 2) {
    for (uint32_t n : {3u, 1000u, 70000u}) {
      RoundTrip<uint16_t>(SkewedSymbols<uint16_t>(n, alphabet, alphabet + n, 0.01), alphabet, StreamParams(),
                          "defaults");
    }
  }
  // Extremely skewed: one symbol almost always.
  std::vector<uint8_t> s(200000, 3);
  s[12345] = 0;
  s[199999] = 9;
  RoundTrip<uint8_t>(s, 10, StreamParams(), "skewed");
}

TEST(Stream, CompressesWithinOnePercentOfEntropy) {
  for (uint32_t n : {50000u, 200000u, 1000000u}) {
    for (double p : {0.1, 0.3, 0.7}) {
      auto sym = SkewedSymbols<uint8_t>(n, 64, n + static_cast<uint32_t>(p * 100), p);
      auto counts = Histogram(sym, 64);
      const double entropy_bits = EntropyBits(counts.data(), 64);
      std::vector<uint8_t> out;
      StreamStats st;
      EncodeStream<uint8_t>(sym.data(), n, counts.data(), 64, StreamParams(), &out, &st);
      const double entropy_bytes = entropy_bits / 8.0;
      const double ratio = static_cast<double>(out.size()) / entropy_bytes;
      EXPECT_LE(ratio, 1.01) << "n=" << n << " p=" << p << " size=" << out.size() << " entropy=" << entropy_bytes;
      EXPECT_GE(out.size() * 8.0, entropy_bits) << "coded below the order-0 entropy: sizes are wrong";
      EXPECT_DOUBLE_EQ(st.entropy_bits, entropy_bits);
      // The estimate used by the searches is close to the real size.
      const size_t est = StreamSizeEstimate(n, counts.data(), 64);
      EXPECT_NEAR(static_cast<double>(est), static_cast<double>(out.size()), 0.01 * out.size() + 16)
          << "n=" << n << " p=" << p;
      ByteReader rd(out.data(), out.size());
      std::vector<uint8_t> got;
      ASSERT_TRUE(DecodeStream<uint8_t>(&rd, n, 63, &got).ok());
      ASSERT_EQ(got, sym);
    }
  }
}

TEST(StreamSizeEstimate, TrivialStreamsAreExact) {
  for (uint32_t n : {0u, 1u, 5u, 300u, 70000u}) {
    std::vector<uint16_t> sym(n, 17);
    auto counts = Histogram(sym, 40);
    std::vector<uint8_t> out;
    EncodeStream<uint16_t>(sym.data(), n, counts.data(), 40, StreamParams(), &out);
    EXPECT_EQ(StreamSizeEstimate(n, counts.data(), 40), out.size()) << n;
  }
}

// --- Malformed streams -------------------------------------------------------------------------

// Builds a rANS stream header by hand.
std::vector<uint8_t> StreamHeader(uint32_t n, uint8_t pb, uint8_t lanes_log2, uint8_t block_log2,
                                  const std::vector<uint32_t>& freqs) {
  std::vector<uint8_t> out;
  ByteWriter w(&out);
  w.U8(static_cast<uint8_t>(StreamKind::kRans));
  w.Varint(n);
  w.U8(pb);
  w.U8(lanes_log2);
  w.U8(block_log2);
  w.Varint(freqs.size());
  for (uint32_t f : freqs) w.Varint(f);
  return out;
}

ErrorCode DecodeCode(const std::vector<uint8_t>& bytes, uint32_t max_n = 1000, uint32_t max_symbol = 255) {
  ByteReader rd(bytes.data(), bytes.size());
  std::vector<uint16_t> out;
  return DecodeStream<uint16_t>(&rd, max_n, max_symbol, &out).code();
}

TEST(StreamDecode, RejectsMalformedHeaders) {
  EXPECT_EQ(DecodeCode({}), ErrorCode::kTruncated);
  EXPECT_EQ(DecodeCode({7}), ErrorCode::kTruncated);                // the count is read before the kind check
  EXPECT_EQ(DecodeCode({7, 1}), ErrorCode::kCorruptPayload);        // unknown kind
  EXPECT_EQ(DecodeCode({1}), ErrorCode::kTruncated);                // constant without count
  EXPECT_EQ(DecodeCode({1, 0, 0}), ErrorCode::kCorruptPayload);     // 0 symbols
  EXPECT_EQ(DecodeCode({1, 5}), ErrorCode::kTruncated);             // constant without symbol
  EXPECT_EQ(DecodeCode({1, 5, 0x80, 0x02}), ErrorCode::kCorruptPayload);  // symbol 256 > 255
  EXPECT_EQ(DecodeCode({1, 0xE9, 0x07, 3}), ErrorCode::kCorruptPayload);  // 1001 > max_n
  EXPECT_EQ(DecodeCode({1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}), ErrorCode::kCorruptPayload);  // overlong
  {
    std::vector<uint8_t> ok = {1, 5, 3};
    ByteReader rd(ok.data(), ok.size());
    std::vector<uint16_t> out;
    ASSERT_TRUE(DecodeStream<uint16_t>(&rd, 1000, 255, &out).ok());
    EXPECT_EQ(out, std::vector<uint16_t>(5, 3));
  }
  const std::vector<uint32_t> good = {128, 128};
  EXPECT_EQ(DecodeCode(StreamHeader(10, 7, 0, 16, good)), ErrorCode::kCorruptPayload);    // pb < 8
  EXPECT_EQ(DecodeCode(StreamHeader(10, 16, 0, 16, good)), ErrorCode::kCorruptPayload);   // pb > 15
  EXPECT_EQ(DecodeCode(StreamHeader(10, 8, 6, 16, good)), ErrorCode::kCorruptPayload);    // lanes > 32
  EXPECT_EQ(DecodeCode(StreamHeader(10, 8, 0, 7, good)), ErrorCode::kCorruptPayload);     // block < 2^8
  EXPECT_EQ(DecodeCode(StreamHeader(10, 8, 0, 21, good)), ErrorCode::kCorruptPayload);    // block > 2^20
  EXPECT_EQ(DecodeCode(StreamHeader(10, 8, 0, 16, {256})), ErrorCode::kCorruptPayload);   // alphabet 1
  EXPECT_EQ(DecodeCode(StreamHeader(10, 8, 0, 16, {128, 127})), ErrorCode::kCorruptPayload);  // sum 255
  EXPECT_EQ(DecodeCode(StreamHeader(10, 8, 0, 16, {128, 129})), ErrorCode::kCorruptPayload);  // sum 257
  EXPECT_EQ(DecodeCode(StreamHeader(10, 8, 0, 16, {0, 256})), ErrorCode::kCorruptPayload);    // freq 2^pb
  {
    auto h = StreamHeader(10, 8, 0, 16, {0, 255, 1, 0});
    EXPECT_EQ(DecodeCode(h, 1000, 2), ErrorCode::kCorruptPayload);  // alphabet 4 > max_symbol + 1
    EXPECT_EQ(DecodeCode(h, 1000, 3), ErrorCode::kTruncated);       // table fine, block index missing
  }
  EXPECT_EQ(DecodeCode(StreamHeader(10, 8, 0, 16, {256, 0})), ErrorCode::kCorruptPayload);  // freq 2^pb
  EXPECT_EQ(DecodeCode(StreamHeader(10, 8, 0, 16, good)), ErrorCode::kTruncated);           // no index
  {
    auto h = StreamHeader(10, 8, 0, 16, good);
    h.push_back(11);  // 11 words for a 10-symbol block
    EXPECT_EQ(DecodeCode(h), ErrorCode::kCorruptPayload);
  }
  {
    auto h = StreamHeader(10, 8, 2, 16, good);
    h.push_back(3);  // 3 words, then 4 states of 4 bytes + 6 bytes needed: none present
    EXPECT_EQ(DecodeCode(h), ErrorCode::kTruncated);
  }
  {
    // A state below 2^16 is corrupt.
    auto h = StreamHeader(10, 8, 0, 16, good);
    h.push_back(0);
    ByteWriter(&h).U32(0xFFFF);
    EXPECT_EQ(DecodeCode(h), ErrorCode::kCorruptPayload);
  }
}

TEST(StreamDecode, CorruptedPayloadsAreRejectedOrDecodeInRange) {
  const uint32_t n = 3000, alphabet = 20;
  auto sym = SkewedSymbols<uint16_t>(n, alphabet, 5);
  auto counts = Histogram(sym, alphabet);
  StreamParams params;
  params.lanes_log2 = 2;
  params.block_log2 = 10;
  std::vector<uint8_t> good;
  EncodeStream<uint16_t>(sym.data(), n, counts.data(), alphabet, params, &good);
  std::mt19937 rng(11);
  int rejected = 0;
  const int kTrials = 3000;
  for (int t = 0; t < kTrials; ++t) {
    std::vector<uint8_t> bad = good;
    const size_t pos = rng() % bad.size();
    bad[pos] ^= static_cast<uint8_t>(1u << (rng() % 8));
    // Also truncate sometimes.
    if (t % 5 == 0) bad.resize(rng() % bad.size());
    ByteReader rd(bad.data(), bad.size());
    std::vector<uint16_t> out;
    Status s = DecodeStream<uint16_t>(&rd, n, alphabet - 1, &out);
    if (s.ok()) {
      ASSERT_LE(out.size(), n);
      for (uint16_t v : out) ASSERT_LT(v, alphabet);
    } else {
      ASSERT_TRUE(s.code() == ErrorCode::kCorruptPayload || s.code() == ErrorCode::kTruncated) << s.ToString();
      ++rejected;
    }
  }
  // Single bit flips in states, words or table are almost always detected.
  EXPECT_GT(rejected, kTrials * 9 / 10);
}

// --- Raw interleaved coder ---------------------------------------------------------------------

TEST(Interleaved, RoundTripRandomBinaryEvents) {
  constexpr int kPb = 12;
  constexpr uint32_t kOne = 1u << kPb;
  for (int lanes_log2 = 0; lanes_log2 <= kMaxLanesLog2; ++lanes_log2) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{31}, size_t{32}, size_t{33}, size_t{5000}, size_t{100000}}) {
      std::mt19937 rng(static_cast<uint32_t>(n * 10 + lanes_log2));
      std::vector<uint32_t> f1(n);  // frequency of a 1 bit, per event
      std::vector<int> bits(n);
      std::vector<RansEncSymbol> steps(n);
      for (size_t i = 0; i < n; ++i) {
        const int kind = rng() % 3;
        f1[i] = kind == 0 ? 1 + rng() % (kOne - 1) : (kind == 1 ? 1 + rng() % 40 : kOne - 1 - rng() % 40);
        bits[i] = (rng() % kOne) < f1[i];  // draw from the coded distribution
        steps[i] = bits[i] ? MakeRansEncSymbol(0, f1[i]) : MakeRansEncSymbol(f1[i], kOne - f1[i]);
      }
      std::vector<uint16_t> scratch;
      std::vector<uint8_t> out = {0x11};
      EncodeInterleaved(steps.data(), n, lanes_log2, kPb, &scratch, &out);
      out.push_back(0x99);
      ByteReader rd(out.data() + 1, out.size() - 1);
      InterleavedDecoder dec;
      ASSERT_TRUE(dec.Init(&rd, lanes_log2, n).ok());
      for (size_t i = 0; i < n; ++i) {
        const int bit = dec.Peek(kPb) < f1[i];
        ASSERT_EQ(bit, bits[i]) << "lanes_log2=" << lanes_log2 << " n=" << n << " i=" << i;
        ASSERT_TRUE(bit ? dec.Advance(0, f1[i], kPb) : dec.Advance(f1[i], kOne - f1[i], kPb));
      }
      EXPECT_TRUE(dec.Finished());
      EXPECT_EQ(rd.remaining(), 1u);
      // Ideal code length vs actual: within 1% + state overhead for long runs.
      if (n >= 5000) {
        double ideal = 0;
        for (size_t i = 0; i < n; ++i) ideal += kPb - std::log2(steps[i].freq);
        const double words_bits = 8.0 * (out.size() - 2) - 32.0 * (1u << lanes_log2);
        EXPECT_LE(words_bits, ideal * 1.01 + 64) << lanes_log2 << " " << n;
      }
    }
  }
}

TEST(Interleaved, DetectsCorruption) {
  constexpr int kPb = 12;
  const size_t n = 2000;
  std::mt19937 rng(3);
  std::vector<RansEncSymbol> steps(n);
  std::vector<uint32_t> f1(n);
  for (size_t i = 0; i < n; ++i) {
    f1[i] = 1 + rng() % 4095;
    steps[i] = (rng() & 1) ? MakeRansEncSymbol(0, f1[i]) : MakeRansEncSymbol(f1[i], 4096 - f1[i]);
  }
  std::vector<uint16_t> scratch;
  std::vector<uint8_t> good;
  EncodeInterleaved(steps.data(), n, 2, kPb, &scratch, &good);
  // Truncated inputs fail in Init.
  for (size_t len = 0; len < good.size(); len += 1 + len / 8) {
    ByteReader rd(good.data(), len);
    InterleavedDecoder dec;
    EXPECT_FALSE(dec.Init(&rd, 2, n).ok()) << len;
  }
  // A word count above max_words is rejected.
  {
    ByteReader rd(good.data(), good.size());
    InterleavedDecoder dec;
    EXPECT_EQ(dec.Init(&rd, 2, 3).code(), ErrorCode::kCorruptPayload);
  }
  // Bit flips: the decoder runs out of words or does not finish on the initial states.
  int detected = 0;
  for (int t = 0; t < 500; ++t) {
    std::vector<uint8_t> bad = good;
    bad[rng() % bad.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
    ByteReader rd(bad.data(), bad.size());
    InterleavedDecoder dec;
    if (!dec.Init(&rd, 2, n).ok()) {
      ++detected;
      continue;
    }
    bool ok = true;
    for (size_t i = 0; i < n && ok; ++i) {
      const int bit = dec.Peek(kPb) < f1[i];
      ok = bit ? dec.Advance(0, f1[i], kPb) : dec.Advance(f1[i], 4096 - f1[i], kPb);
    }
    if (!ok || !dec.Finished()) ++detected;
  }
  EXPECT_GT(detected, 490);
}

}  // namespace
}  // namespace splitrans::codec

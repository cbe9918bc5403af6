// Unit tests for the modified CSR and the paper's N search (codec/csr.h).
#include "codec/csr.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "codec/rans_stream.h"

namespace splitrans::codec {
namespace {

std::vector<uint8_t> RandomSymbols(size_t n, int q, double zero_fraction, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<uint8_t> s(n);
  for (auto& v : s) v = u(rng) < zero_fraction ? 0 : static_cast<uint8_t>(1 + rng() % ((1u << q) - 1));
  return s;
}

TEST(Csr, BuildHandMade) {
  // 3 x 4:
  //   0 5 0 7
  //   0 0 0 0
  //   1 0 0 2
  const std::vector<uint8_t> q = {0, 5, 0, 7, 0, 0, 0, 0, 1, 0, 0, 2};
  Csr csr;
  BuildCsr(q.data(), 3, 4, &csr);
  EXPECT_EQ(csr.v, (std::vector<uint16_t>{5, 7, 1, 2}));
  EXPECT_EQ(csr.c, (std::vector<uint16_t>{1, 3, 0, 3}));
  EXPECT_EQ(csr.r, (std::vector<uint16_t>{2, 0, 2}));
  std::vector<uint8_t> back(12, 99);
  ASSERT_TRUE(ExpandCsr(csr.v.data(), csr.c.data(), csr.r.data(), csr.v.size(), 3, 4, 7, back.data()).ok());
  EXPECT_EQ(back, q);
}

TEST(Csr, RoundTripRandom) {
  std::mt19937 rng(2024);
  for (int iter = 0; iter < 300; ++iter) {
    const int q = 1 + static_cast<int>(rng() % 8);
    const uint32_t n = 1 + rng() % 64, k = 1 + rng() % 300;
    const double zf = (iter % 4) * 0.33;  // dense .. very sparse
    auto sym = RandomSymbols(size_t{n} * k, q, zf, static_cast<uint32_t>(iter));
    Csr csr;
    BuildCsr(sym.data(), n, k, &csr);
    ASSERT_EQ(csr.v.size(), csr.c.size());
    ASSERT_EQ(csr.r.size(), n);
    uint64_t nnz = 0;
    for (uint8_t v : sym) nnz += v != 0;
    ASSERT_EQ(csr.v.size(), nnz);
    std::vector<uint8_t> back(sym.size(), 0xCC);
    ASSERT_TRUE(ExpandCsr(csr.v.data(), csr.c.data(), csr.r.data(), nnz, n, k, (1u << q) - 1, back.data()).ok());
    ASSERT_EQ(back, sym) << iter;
  }
  // All zeros and all nonzero.
  for (uint8_t fill : {0, 3}) {
    std::vector<uint8_t> sym(6 * 5, fill);
    Csr csr;
    BuildCsr(sym.data(), 6, 5, &csr);
    std::vector<uint8_t> back(sym.size(), 0xCC);
    ASSERT_TRUE(ExpandCsr(csr.v.data(), csr.c.data(), csr.r.data(), csr.v.size(), 6, 5, 3, back.data()).ok());
    EXPECT_EQ(back, sym);
  }
}

struct CsrCase {
  std::vector<uint16_t> v, c, r;
  uint32_t n, k, max_value;
};

ErrorCode Expand(const CsrCase& cc) {
  std::vector<uint8_t> out(size_t{cc.n} * cc.k);
  return ExpandCsr(cc.v.data(), cc.c.data(), cc.r.data(), cc.v.size(), cc.n, cc.k, cc.max_value, out.data()).code();
}

TEST(Csr, ExpandRejectsInvalid) {
  // A valid baseline (2 x 3): [0 1 2; 3 0 0].
  const CsrCase good = {{1, 2, 3}, {1, 2, 0}, {2, 1}, 2, 3, 3};
  ASSERT_EQ(Expand(good), ErrorCode::kOk);
  auto with = [&](auto f) {
    CsrCase c = good;
    f(c);
    return Expand(c);
  };
  EXPECT_EQ(with([](CsrCase& c) { c.c = {2, 1, 0}; }), ErrorCode::kCorruptPayload);  // decreasing columns
  EXPECT_EQ(with([](CsrCase& c) { c.c = {1, 1, 0}; }), ErrorCode::kCorruptPayload);  // repeated column
  EXPECT_EQ(with([](CsrCase& c) { c.c = {1, 3, 0}; }), ErrorCode::kCorruptPayload);  // column == K
  EXPECT_EQ(with([](CsrCase& c) { c.c = {1, 2, 65535}; }), ErrorCode::kCorruptPayload);
  EXPECT_EQ(with([](CsrCase& c) { c.r = {4, 0}; }), ErrorCode::kCorruptPayload);     // row count > K
  EXPECT_EQ(with([](CsrCase& c) { c.r = {3, 1}; }), ErrorCode::kCorruptPayload);     // counts sum 4 > nnz 3
  EXPECT_EQ(with([](CsrCase& c) { c.r = {2, 0}; }), ErrorCode::kCorruptPayload);     // counts sum 2 < nnz 3
  EXPECT_EQ(with([](CsrCase& c) { c.r = {1, 1}; }), ErrorCode::kCorruptPayload);
  EXPECT_EQ(with([](CsrCase& c) { c.v = {1, 0, 3}; }), ErrorCode::kCorruptPayload);  // explicit zero value
  EXPECT_EQ(with([](CsrCase& c) { c.v = {1, 4, 3}; }), ErrorCode::kCorruptPayload);  // value > max
  EXPECT_EQ(with([](CsrCase& c) { c.max_value = 2; }), ErrorCode::kCorruptPayload);
  // Row 2's columns restart at 0: a column decrease across rows is fine.
  EXPECT_EQ(with([](CsrCase& c) { c.c = {0, 2, 0}; }), ErrorCode::kOk);
}

// Brute-force reference: every divisor N of T with N > sqrt(T) (N * N > T) and T / N <= 2^q,
// in descending order.
std::vector<uint32_t> BruteDomain(uint64_t t, int q) {
  std::vector<uint32_t> out;
  for (uint64_t n = t; n >= 1; --n) {
    if (t % n != 0) continue;
    if (n * n <= t) continue;
    if (t / n > (uint64_t{1} << q)) continue;
    out.push_back(static_cast<uint32_t>(n));
  }
  return out;
}

TEST(PaperDomain, MatchesBruteForce) {
  const uint64_t ts[] = {0,      1,      2,      3,     4,     6,     7,     9,      12,     16,     25,  36,
                         64,     97,     100,    101,   128,   144,   196,   255,    256,    257,    360, 1000,
                         1024,   2048,   3136,   4096,  7919,  9409,  10000, 50176,  65536,  65537,  100352,
                         200704, 250000, 262144, 524287, 720720, 1000003, 1048576};
  for (uint64_t t : ts) {
    for (int q = 1; q <= 8; ++q) {
      EXPECT_EQ(PaperDomain(t, q), BruteDomain(t, q)) << "T=" << t << " q=" << q;
    }
  }
}

TEST(PaperDomain, KnownValues) {
  // 100352 = 2^11 * 7^2 (e.g. 512 x 14 x 14): K must divide T, K <= 2^q and K < sqrt(T) = 316.8.
  EXPECT_EQ(PaperDomain(100352, 1), (std::vector<uint32_t>{100352, 50176}));
  EXPECT_EQ(PaperDomain(100352, 3), (std::vector<uint32_t>{100352, 50176, 25088, 14336, 12544}));
  // A prime has only N = T.
  for (int q = 1; q <= 8; ++q) EXPECT_EQ(PaperDomain(65537, q), (std::vector<uint32_t>{65537}));
  // A square excludes N = sqrt(T).
  EXPECT_EQ(PaperDomain(16, 2), (std::vector<uint32_t>{16, 8}));
  EXPECT_EQ(PaperDomain(16, 8), (std::vector<uint32_t>{16, 8}));
  EXPECT_TRUE(PaperDomain(1, 8).empty());
  EXPECT_TRUE(PaperDomain(0, 8).empty());
  // Large T near the 2^32 limit: 4294967295 = 3 * 5 * 17 * 257 * 65537.
  const auto big = PaperDomain(4294967295ull, 8);
  EXPECT_EQ(big, (std::vector<uint32_t>{4294967295u, 1431655765u, 858993459u, 286331153u, 252645135u, 84215045u,
                                        50529027u, 16843009u}));
  for (uint32_t n : big) EXPECT_EQ(4294967295ull % n, 0u);
}

TEST(PaperCost, MatchesDirectComputation) {
  for (int iter = 0; iter < 40; ++iter) {
    const int q = 1 + iter % 8;
    const uint64_t t = 1024;
    auto sym = RandomSymbols(t, q, 0.2 * (iter % 5), static_cast<uint32_t>(iter + 77));
    for (uint32_t n : PaperDomain(t, q)) {
      const uint32_t k = static_cast<uint32_t>(t / n);
      uint64_t len_d;
      double h;
      PaperCost(sym.data(), t, n, &len_d, &h);
      Csr csr;
      BuildCsr(sym.data(), n, k, &csr);
      std::map<uint32_t, uint64_t> hist;
      for (uint16_t v : csr.v) hist[v]++;
      for (uint16_t c : csr.c) hist[c]++;
      for (uint16_t r : csr.r) hist[r]++;
      const uint64_t len = csr.v.size() + csr.c.size() + csr.r.size();
      ASSERT_EQ(len_d, len);
      double bits = 0;
      for (const auto& [sym_value, count] : hist) bits -= count * std::log2(static_cast<double>(count) / len);
      ASSERT_NEAR(h, bits / len, 1e-9) << "n=" << n;
    }
  }
}

TEST(Algorithm1, HandMadeCostSequences) {
  size_t visited = 0;
  // Stops at the first rise (the rising candidate is evaluated, hence visited).
  EXPECT_EQ(Algorithm1Choice({5, 4, 3, 6, 1}, &visited), 2u);
  EXPECT_EQ(visited, 4u);
  // Rise right after the first candidate.
  EXPECT_EQ(Algorithm1Choice({1, 2, 0}, &visited), 0u);
  EXPECT_EQ(visited, 2u);
  // No rise at all: every candidate is visited and the last (smallest) wins.
  EXPECT_EQ(Algorithm1Choice({9, 7, 5, 3}, &visited), 3u);
  EXPECT_EQ(visited, 4u);
  // Equal costs are not a rise; the first of equal minima is kept.
  EXPECT_EQ(Algorithm1Choice({5, 5, 5}, &visited), 0u);
  EXPECT_EQ(visited, 3u);
  EXPECT_EQ(Algorithm1Choice({4, 2, 2, 3, 1}, &visited), 1u);
  EXPECT_EQ(visited, 4u);
  // Keeps the best so far even when a later plateau follows.
  EXPECT_EQ(Algorithm1Choice({8, 3, 3, 2, 2, 9, 0}, &visited), 3u);
  EXPECT_EQ(visited, 6u);
  // One candidate.
  EXPECT_EQ(Algorithm1Choice({42}, &visited), 0u);
  EXPECT_EQ(visited, 1u);
  // visited is optional.
  EXPECT_EQ(Algorithm1Choice({3, 1, 2}, nullptr), 1u);
}

TEST(Exhaustive, HandMadeCostSequences) {
  EXPECT_EQ(ExhaustiveChoice({5, 4, 3, 6, 1}), 4u);
  EXPECT_EQ(ExhaustiveChoice({1, 2, 0}), 2u);
  EXPECT_EQ(ExhaustiveChoice({42}), 0u);
  EXPECT_EQ(ExhaustiveChoice({2, 1, 1, 3}), 1u);  // ties: first
  EXPECT_EQ(ExhaustiveChoice({0, 0}), 0u);
}

TEST(Algorithm1, NeverBeatsExhaustiveOnRandomCosts) {
  std::mt19937 rng(8);
  for (int iter = 0; iter < 2000; ++iter) {
    std::vector<double> costs(1 + rng() % 10);
    for (auto& c : costs) c = rng() % 20;
    size_t visited = 0;
    const size_t a = Algorithm1Choice(costs, &visited);
    const size_t e = ExhaustiveChoice(costs);
    ASSERT_GE(costs[a], costs[e]);
    ASSERT_LT(a, visited);
    ASSERT_LE(visited, costs.size());
    // Reference walk.
    size_t ref_best = 0, ref_visited = costs.size();
    for (size_t i = 0; i < costs.size(); ++i) {
      if (costs[i] < costs[ref_best]) ref_best = i;
      if (i > 0 && costs[i] > costs[i - 1]) {
        ref_visited = i + 1;
        break;
      }
    }
    ASSERT_EQ(a, ref_best) << iter;
    ASSERT_EQ(visited, ref_visited) << iter;
  }
}

}  // namespace
}  // namespace splitrans::codec

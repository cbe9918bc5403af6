// Peak heap memory of decoding: the output plus a constant for every layout, and no allocation
// beyond it for a tiny bitstream that declares a huge shape. Its own test binary: it replaces the
// global operator new/delete with versions that count current and peak bytes.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "codec/crc32c.h"
#include "codec/wire.h"

namespace {

// Every block carries its size in a 16-byte (or alignment-sized) prefix.
std::atomic<int64_t> g_current{0};
std::atomic<int64_t> g_peak{0};

void* CountedAlloc(size_t size, size_t align) {
  const size_t prefix = align > 16 ? align : 16;
  void* raw = align > 16 ? std::aligned_alloc(align, (prefix + size + align - 1) / align * align)
                         : std::malloc(prefix + size);
  if (raw == nullptr) return nullptr;
  auto* p = static_cast<unsigned char*>(raw) + prefix;
  std::memcpy(p - 16, &size, sizeof(size));
  std::memcpy(p - 8, &prefix, sizeof(prefix));
  const int64_t now = g_current.fetch_add(static_cast<int64_t>(size)) + static_cast<int64_t>(size);
  int64_t peak = g_peak.load();
  while (now > peak && !g_peak.compare_exchange_weak(peak, now)) {
  }
  return p;
}

void CountedFree(void* ptr) {
  if (ptr == nullptr) return;
  auto* p = static_cast<unsigned char*>(ptr);
  size_t size, prefix;
  std::memcpy(&size, p - 16, sizeof(size));
  std::memcpy(&prefix, p - 8, sizeof(prefix));
  g_current.fetch_sub(static_cast<int64_t>(size));
  std::free(p - prefix);
}

void* AllocOrThrow(size_t size, size_t align) {
  void* p = CountedAlloc(size, align);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

void* operator new(size_t n) { return AllocOrThrow(n, 16); }
void* operator new[](size_t n) { return AllocOrThrow(n, 16); }
void* operator new(size_t n, const std::nothrow_t&) noexcept { return CountedAlloc(n, 16); }
void* operator new[](size_t n, const std::nothrow_t&) noexcept { return CountedAlloc(n, 16); }
void* operator new(size_t n, std::align_val_t a) { return AllocOrThrow(n, static_cast<size_t>(a)); }
void* operator new[](size_t n, std::align_val_t a) { return AllocOrThrow(n, static_cast<size_t>(a)); }
void operator delete(void* p) noexcept { CountedFree(p); }
void operator delete[](void* p) noexcept { CountedFree(p); }
void operator delete(void* p, size_t) noexcept { CountedFree(p); }
void operator delete[](void* p, size_t) noexcept { CountedFree(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { CountedFree(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { CountedFree(p); }
void operator delete(void* p, std::align_val_t) noexcept { CountedFree(p); }
void operator delete[](void* p, std::align_val_t) noexcept { CountedFree(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { CountedFree(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { CountedFree(p); }

namespace splitrans::codec {
namespace {

// The decoders' scratch bound (decoder.cc, "Decoder scratch"): tables and a few rows or chunks.
constexpr int64_t kScratchBound = int64_t{2} << 20;

// Heap growth at its peak while f runs, in bytes (what f still holds at the end included).
template <typename F>
int64_t PeakGrowth(F&& f) {
  const int64_t base = g_current.load();
  g_peak.store(base);
  f();
  return g_peak.load() - base;
}

uint64_t Product(const std::vector<int64_t>& shape) {
  uint64_t t = 1;
  for (int64_t d : shape) t *= static_cast<uint64_t>(d);
  return t;
}

// Post-ReLU-like maps: smooth blobs, `zero_fraction` of the elements exactly 0.
std::vector<float> Features(uint64_t n, double zero_fraction, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<float> x(n);
  float level = 1.f;
  for (uint64_t i = 0; i < n; ++i) {
    if (i % 64 == 0) level = 0.5f + 3.f * u(rng);
    x[i] = u(rng) < zero_fraction ? 0.f : level * u(rng);
  }
  return x;
}

std::vector<uint8_t> MustEncode(const std::vector<float>& x, const std::vector<int64_t>& shape, Mode mode) {
  EncodeOptions opt;
  opt.q = 4;
  opt.mode = mode;
  std::vector<uint8_t> out;
  Encoder enc;
  const Status s = enc.Encode(TensorView{x.data(), DType::kFloat32, shape}, opt, &out);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

struct LayoutCase {
  const char* name;
  Mode mode;
  Layout want;
  std::vector<int64_t> shape;
  double zero_fraction;
};

// For every layout: a tensor of a few million elements decodes with at most the output and
// kScratchBound more on the heap (a fresh Decoder and DecodedTensor each time).
TEST(DecodeMemory, PeakIsOutputPlusConstant) {
  const std::vector<LayoutCase> cases = {
      {"dense", Mode::kDense, Layout::kDense, {16, 64, 64, 64}, 0.4},
      {"sparse", Mode::kSparse, Layout::kSparse, {16, 64, 64, 64}, 0.95},
      {"paper", Mode::kPaper, Layout::kPaper, {16, 64, 64, 64}, 0.95},
      {"context", Mode::kContext, Layout::kContext, {16, 64, 64, 64}, 0.4},
      {"context (wide rows)", Mode::kContext, Layout::kContext, {3, 1 << 20}, 0.4},
      {"constant", Mode::kAuto, Layout::kConstant, {16, 64, 64, 64}, 1.0},
  };
  for (const LayoutCase& c : cases) {
    const uint64_t t = Product(c.shape);
    const std::vector<float> x = Features(t, c.zero_fraction, 7);
    const std::vector<uint8_t> bits = MustEncode(x, c.shape, c.mode);
    auto info = Inspect(bits.data(), bits.size());
    ASSERT_TRUE(info.ok()) << c.name << ": " << info.status().ToString();
    ASSERT_EQ(info->layout, c.want) << c.name;
    Status s;
    std::vector<float> values;
    const int64_t peak = PeakGrowth([&] {
      Decoder dec;
      DecodedTensor out;
      s = dec.Decode(bits.data(), bits.size(), &out);
      values = std::move(out.values);
    });
    ASSERT_TRUE(s.ok()) << c.name << ": " << s.ToString();
    ASSERT_EQ(values.size(), t);
    const int64_t output = static_cast<int64_t>(t * sizeof(float));
    std::printf("%-20s %9llu elements, %9zu bytes: peak heap growth %lld = output + %lld bytes\n", c.name,
                static_cast<unsigned long long>(t), bits.size(), static_cast<long long>(peak),
                static_cast<long long>(peak - output));
    EXPECT_LE(peak, output + kScratchBound) << c.name;
    // Into caller memory: the scratch alone.
    std::vector<float> into(t);
    const int64_t scratch = PeakGrowth([&] {
      Decoder dec;
      std::vector<int64_t> shape;
      s = dec.DecodeInto(bits.data(), bits.size(), into.data(), into.size(), &shape);
    });
    ASSERT_TRUE(s.ok()) << c.name << ": " << s.ToString();
    EXPECT_LE(scratch, kScratchBound) << c.name;
    EXPECT_EQ(std::memcmp(into.data(), values.data(), t * sizeof(float)), 0) << c.name;
    // And the values are right (the quantization grid: within half a step of the input).
    if (c.want == Layout::kConstant) continue;
    double worst = 0;
    for (uint64_t i = 0; i < t; ++i) worst = std::max(worst, std::fabs(static_cast<double>(values[i]) - x[i]));
    EXPECT_LE(worst, 0.5 * info->scale * 1.001) << c.name;
  }
}

// A constant-layout bitstream of rank 2 (40 bytes) declaring shape {d0, d1}.
std::vector<uint8_t> TinyHuge(uint32_t d0, uint32_t d1) {
  const std::vector<float> x(6, 1.5f);
  std::vector<uint8_t> b = MustEncode(x, {2, 3}, Mode::kAuto);
  EXPECT_EQ(b.size(), 40u);
  std::memcpy(b.data() + kFixedHeaderBytes, &d0, 4);
  std::memcpy(b.data() + kFixedHeaderBytes + 4, &d1, 4);
  const uint32_t crc = Crc32c(b.data(), b.size() - kChecksumBytes);
  std::memcpy(b.data() + b.size() - kChecksumBytes, &crc, 4);
  return b;
}

// Refusals of a huge declared shape cost no allocation of its size (a message at most).
constexpr int64_t kRefusalBound = 4096;

TEST(DecodeMemory, TinyBitstreamWithAHugeShapeIsRefusedWithoutAllocating) {
  const std::vector<uint8_t> huge = TinyHuge(65536, 65536);  // 2^32 elements: over the default limit
  const std::vector<uint8_t> big = TinyHuge(16384, 16384);   // 2^28: exactly the default max_elements
  auto refused = [&](const std::vector<uint8_t>& b, const DecodeLimits& limits, ErrorCode want, const char* what) {
    Status s;
    const int64_t peak = PeakGrowth([&] {
      Decoder dec(limits);
      DecodedTensor out;
      s = dec.Decode(b.data(), b.size(), &out);
      std::vector<int64_t> shape;
      EXPECT_EQ(PeekShape(b.data(), b.size(), &shape, limits).code(), want) << what;
      EXPECT_EQ(Inspect(b.data(), b.size(), limits).status().code(), want) << what;
      std::vector<float> small(16);
      EXPECT_EQ(dec.DecodeInto(b.data(), b.size(), small.data(), small.size(), &shape).code(), want) << what;
    });
    EXPECT_EQ(s.code(), want) << what << ": " << s.ToString();
    std::printf("%-44s %s, peak heap growth %lld bytes\n", what, ErrorCodeName(s.code()), static_cast<long long>(peak));
    EXPECT_LE(peak, kRefusalBound) << what;
  };
  refused(huge, DecodeLimits{}, ErrorCode::kLimitExceeded, "2^32 elements, default limits");
  refused(big, DecodeLimits{uint64_t{1} << 20}, ErrorCode::kLimitExceeded, "2^28 elements, max_elements 2^20");
  DecodeLimits shaped;
  shaped.max_shape = {1024, 1024};
  refused(big, shaped, ErrorCode::kLimitExceeded, "2^28 elements, max_shape {1024, 1024}");
  int calls = 0;
  DecodeLimits picky;
  picky.accept_shape = [&](const std::vector<int64_t>& shape) {
    ++calls;
    return shape == std::vector<int64_t>{256, 256} ? Status::Ok() : Status(ErrorCode::kInvalidArgument, "not 256 x 256");
  };
  refused(big, picky, ErrorCode::kInvalidArgument, "2^28 elements, accept_shape wants {256, 256}");
  EXPECT_EQ(calls, 4);  // Decode, PeekShape, Inspect, DecodeInto

  // Accepted, the same 40 bytes cost their output and nothing more.
  const std::vector<uint8_t> ok = TinyHuge(256, 256);
  Status s;
  const int64_t peak = PeakGrowth([&] {
    Decoder dec(picky);
    DecodedTensor out;
    s = dec.Decode(ok.data(), ok.size(), &out);
    EXPECT_EQ(out.values.size(), 65536u);
    EXPECT_EQ(out.values[65535], 1.5f);
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_LE(peak, 65536 * 4 + kRefusalBound);
}

}  // namespace
}  // namespace splitrans::codec

// End-to-end tests of the CUDA dense codec on a real GPU (CTest label "gpu"): round trips,
// byte identity with the CPU Encoder (Mode::kDense), cross-decoding CPU <-> GPU, batches, the
// async/graph API, and malformed inputs rejected with the CPU Decoder's codes before any kernel
// touches them. Every test except GpuAvailableTest skips cleanly without a GPU.
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <dirent.h>
#include <random>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "codec/crc32c.h"
#include "codec/cuda/gpu_codec.h"
#include "codec/npy.h"

#ifndef SPLITRANS_SOURCE_DIR
#define SPLITRANS_SOURCE_DIR "."
#endif

namespace splitrans::codec::gpu {
namespace {

#define CUDA_OK(expr) ASSERT_EQ(cudaSuccess, (expr)) << #expr

// Owning device buffer (tests only).
class DevBuf {
 public:
  DevBuf() = default;
  explicit DevBuf(size_t bytes) : bytes_(bytes) {
    if (bytes > 0 && cudaMalloc(&p_, bytes) != cudaSuccess) p_ = nullptr;
  }
  ~DevBuf() {
    if (p_) cudaFree(p_);
  }
  DevBuf(DevBuf&& o) noexcept : p_(o.p_), bytes_(o.bytes_) { o.p_ = nullptr; }
  DevBuf& operator=(DevBuf&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(bytes_, o.bytes_);
    return *this;
  }
  template <typename T = uint8_t>
  T* get() const {
    return static_cast<T*>(p_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

uint64_t Elements(const std::vector<int64_t>& shape) {
  uint64_t t = 1;
  for (int64_t d : shape) t *= static_cast<uint64_t>(d);
  return t;
}

struct HostTensor {
  std::vector<uint8_t> bytes;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  std::string name;
};

HostTensor FromFloats(const std::vector<float>& v, std::vector<int64_t> shape, std::string name,
                      DType dtype = DType::kFloat32) {
  HostTensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.name = std::move(name);
  if (dtype == DType::kFloat32) {
    t.bytes.resize(v.size() * 4);
    if (!v.empty()) std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
  } else {
    t.bytes.resize(v.size() * 2);
    for (size_t i = 0; i < v.size(); ++i) {
      const uint16_t h = FloatToHalf(v[i]);
      std::memcpy(t.bytes.data() + 2 * i, &h, 2);
    }
  }
  return t;
}

std::vector<float> RandomValues(size_t n, uint32_t seed, int kind) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.f, 1.f);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) {
    switch (kind % 4) {
      case 0: v[i] = g(rng); break;
      case 1: v[i] = std::max(0.f, g(rng) - 0.5f); break;
      case 2: v[i] = (rng() % 1000 == 0) ? 40.f * g(rng) : 0.01f * g(rng); break;
      default: v[i] = static_cast<float>(rng() % 5) - 2.f; break;
    }
  }
  return v;
}

std::vector<uint8_t> CpuDense(const HostTensor& t, int q) {
  EncodeOptions opt;
  opt.q = q;
  opt.mode = Mode::kDense;
  auto r = Encode(TensorView{t.bytes.empty() ? nullptr : t.bytes.data(), t.dtype, t.shape}, opt);
  EXPECT_TRUE(r.ok()) << t.name << ": " << r.status().ToString();
  return r.ok() ? r.value() : std::vector<uint8_t>();
}

class GpuCodecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!GpuAvailable(&why)) GTEST_SKIP() << "no usable GPU: " << why;
    auto e = GpuEncoder::Create();
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    enc_ = std::move(e.value());
    auto d = GpuDecoder::Create();
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    dec_ = std::move(d.value());
    ASSERT_EQ(cudaSuccess, cudaStreamCreate(&stream_));
  }
  void TearDown() override {
    if (stream_) cudaStreamDestroy(stream_);
  }

  // Encodes one host tensor on the GPU; returns the bytes (empty on error, *status set).
  std::vector<uint8_t> GpuEncode(const HostTensor& t, int q, Status* status = nullptr) {
    DevBuf in(t.bytes.size());
    if (!t.bytes.empty()) cudaMemcpy(in.get(), t.bytes.data(), t.bytes.size(), cudaMemcpyHostToDevice);
    const size_t cap = MaxCompressedSize(Elements(t.shape), static_cast<int>(t.shape.size()));
    DevBuf out(cap);
    GpuEncodeItem item;
    item.in_dev = t.bytes.empty() ? nullptr : in.get();
    item.dtype = t.dtype;
    item.shape = t.shape;
    item.out_dev = out.get();
    item.out_capacity = cap;
    size_t size = 0;
    Status st = enc_->Encode(item, q, stream_, &size);
    if (status) *status = st;
    if (!st.ok()) return {};
    std::vector<uint8_t> bytes(size);
    cudaMemcpy(bytes.data(), out.get(), size, cudaMemcpyDeviceToHost);
    return bytes;
  }

  // Decodes on the GPU from host or device bytes; the output buffer starts as NaN garbage.
  Status GpuDecode(const std::vector<uint8_t>& bits, MemorySpace where, std::vector<float>* out,
                   size_t capacity, bool* untouched = nullptr) {
    DevBuf in(std::max<size_t>(bits.size(), 1));
    if (!bits.empty()) cudaMemcpy(in.get(), bits.data(), bits.size(), cudaMemcpyHostToDevice);
    DevBuf o(std::max<size_t>(capacity, 1) * 4);
    cudaMemset(o.get(), 0xFF, std::max<size_t>(capacity, 1) * 4);
    GpuDecodeItem item;
    item.data = where == MemorySpace::kHost ? (bits.empty() ? nullptr : bits.data()) : in.get();
    item.size = bits.size();
    item.out_dev = o.get<float>();
    item.capacity = capacity;
    std::vector<int64_t> shape;
    Status st = dec_->Decode(item, where, stream_, &shape);
    out->assign(capacity, 0.f);
    if (capacity) cudaMemcpy(out->data(), o.get(), capacity * 4, cudaMemcpyDeviceToHost);
    if (untouched) {
      *untouched = std::all_of(out->begin(), out->end(), [](float f) {
        uint32_t u;
        std::memcpy(&u, &f, 4);
        return u == 0xFFFFFFFFu;
      });
    }
    return st;
  }

  // GPU bytes == CPU bytes; CPU decodes GPU bytes; GPU decodes CPU bytes (host and device input).
  void CheckAll(const HostTensor& t, int q) {
    SCOPED_TRACE(t.name + " q=" + std::to_string(q));
    const std::vector<uint8_t> cpu = CpuDense(t, q);
    Status st;
    const std::vector<uint8_t> gpu = GpuEncode(t, q, &st);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_EQ(gpu.size(), cpu.size());
    ASSERT_TRUE(gpu == cpu) << "first difference at byte "
                            << (std::mismatch(gpu.begin(), gpu.end(), cpu.begin()).first - gpu.begin());
    auto ref = Decode(cpu.data(), cpu.size());
    ASSERT_TRUE(ref.ok()) << ref.status().ToString();
    for (MemorySpace where : {MemorySpace::kHost, MemorySpace::kDevice}) {
      std::vector<float> out;
      Status d = GpuDecode(cpu, where, &out, ref->values.size());
      ASSERT_TRUE(d.ok()) << d.ToString();
      ASSERT_EQ(0, std::memcmp(out.data(), ref->values.data(), out.size() * 4))
          << (where == MemorySpace::kHost ? "host" : "device") << " input";
    }
  }

  std::unique_ptr<GpuEncoder> enc_;
  std::unique_ptr<GpuDecoder> dec_;
  cudaStream_t stream_ = nullptr;
};

// Runs on every machine. Without a driver every runtime call fails again (error 35 is sticky
// for the process), so GpuAvailable must simply keep answering "no" with a reason and the
// factories must report UNAVAILABLE; with a GPU it must leave no error behind.
TEST(GpuAvailableTest, AnswersConsistently) {
  std::string why;
  const bool ok = GpuAvailable(&why);
  if (ok) {
    EXPECT_EQ(cudaSuccess, cudaPeekAtLastError());
    return;
  }
  EXPECT_FALSE(why.empty());
  std::string again;
  EXPECT_FALSE(GpuAvailable(&again));
  EXPECT_FALSE(GpuAvailable(nullptr));
  auto e = GpuEncoder::Create();
  EXPECT_EQ(e.status().code(), ErrorCode::kUnavailable) << e.status().ToString();
  auto d = GpuDecoder::Create();
  EXPECT_EQ(d.status().code(), ErrorCode::kUnavailable) << d.status().ToString();
  std::printf("no GPU: %s\n", why.c_str());
}

TEST_F(GpuCodecTest, CommittedFeaturesMatchCpu) {
  const std::string dir = std::string(SPLITRANS_SOURCE_DIR) + "/tests/data/features/";
  DIR* d = opendir(dir.c_str());
  ASSERT_NE(d, nullptr) << dir;
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    if (n.size() > 4 && n.substr(n.size() - 4) == ".npy") names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  ASSERT_FALSE(names.empty());
  for (const std::string& n : names) {
    auto arr = ReadNpy(dir + n);
    ASSERT_TRUE(arr.ok()) << arr.status().ToString();
    HostTensor t{arr->bytes, arr->dtype, arr->shape, n};
    for (int q = 1; q <= 8; ++q) CheckAll(t, q);
  }
}

TEST_F(GpuCodecTest, RandomDataAndEdgeSizesMatchCpu) {
  for (uint32_t n : {1u, 2u, 31u, 32u, 33u, 1000u, 4095u, 4096u, 4097u, 65535u, 65536u, 65537u, 131072u, 200003u,
                     (1u << 20) + 3}) {
    for (int kind = 0; kind < 4; ++kind) {
      const std::vector<float> v = RandomValues(n, n + kind, kind);
      for (int q : {1, 4, 8}) {
        CheckAll(FromFloats(v, {static_cast<int64_t>(n)}, "n=" + std::to_string(n) + " kind=" + std::to_string(kind)),
                 q);
      }
      CheckAll(FromFloats(v, {static_cast<int64_t>(n)}, "f16 n=" + std::to_string(n), DType::kFloat16), 4);
    }
  }
  // Constant, empty, a constant stream (q=1, -0.5 and 0.5 both round to 0), high rank.
  CheckAll(FromFloats(std::vector<float>(777, -3.25f), {7, 111}, "constant"), 4);
  CheckAll(FromFloats({}, {4, 0, 3}, "empty"), 4);
  CheckAll(FromFloats({-0.5f, 0.5f, 0.5f}, {3}, "constant stream"), 1);
  CheckAll(FromFloats(RandomValues(2 * 3 * 4 * 5 * 2 * 3 * 2 * 2, 4, 0), {2, 3, 4, 5, 2, 3, 2, 2}, "rank 8"), 5);
}

TEST_F(GpuCodecTest, NonFiniteAndHugeRangeAreRejectedPerItem) {
  std::vector<float> v = RandomValues(5000, 1, 0);
  v[1234] = NAN;
  Status st;
  GpuEncode(FromFloats(v, {5000}, "nan"), 4, &st);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << st.ToString();
  v[1234] = -INFINITY;
  GpuEncode(FromFloats(v, {5000}, "inf"), 4, &st);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << st.ToString();
  GpuEncode(FromFloats({-3e38f, 3e38f}, {2}, "huge"), 1, &st);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << st.ToString();
  GpuEncode(FromFloats({1e9f, 1e9f + 128.f}, {2}, "offset"), 8, &st);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument) << st.ToString();
}

TEST_F(GpuCodecTest, HostSideArgumentErrors) {
  const HostTensor t = FromFloats(RandomValues(1000, 2, 0), {10, 100}, "t");
  DevBuf in(t.bytes.size()), out(MaxCompressedSize(1000, 2));
  cudaMemcpy(in.get(), t.bytes.data(), t.bytes.size(), cudaMemcpyHostToDevice);
  GpuEncodeItem item;
  item.in_dev = in.get();
  item.shape = t.shape;
  item.out_dev = out.get();
  item.out_capacity = out.bytes();
  size_t size;
  EXPECT_EQ(enc_->Encode(item, 0, stream_, &size).code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(enc_->Encode(item, 9, stream_, &size).code(), ErrorCode::kInvalidArgument);
  GpuEncodeItem small = item;
  small.out_capacity -= 1;
  EXPECT_EQ(enc_->Encode(small, 4, stream_, &size).code(), ErrorCode::kInvalidArgument);
  GpuEncodeItem rank0 = item;
  rank0.shape.clear();
  EXPECT_EQ(enc_->Encode(rank0, 4, stream_, &size).code(), ErrorCode::kInvalidArgument);
  GpuEncodeItem null_in = item;
  null_in.in_dev = nullptr;
  EXPECT_EQ(enc_->Encode(null_in, 4, stream_, &size).code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(enc_->Encode(item, 4, stream_, &size).ok());
  // Decoding into too little memory.
  const std::vector<uint8_t> bits = CpuDense(t, 4);
  std::vector<float> o;
  bool untouched = false;
  EXPECT_EQ(GpuDecode(bits, MemorySpace::kHost, &o, 999, &untouched).code(), ErrorCode::kInvalidArgument);
  EXPECT_TRUE(untouched);
  DecodeLimits limits;
  limits.max_elements = 999;
  auto d = GpuDecoder::Create(limits);
  ASSERT_TRUE(d.ok());
  GpuDecodeItem di{bits.data(), bits.size(), nullptr, 0};
  EXPECT_EQ(d.value()->Decode(di, MemorySpace::kHost, stream_).code(), ErrorCode::kLimitExceeded);
}

// Truncations, bit flips (with and without a repaired checksum) and bad header fields: the GPU
// decoder reports the CPU decoder's code, for host and device input; whatever the host rejects
// never reaches a kernel (the output stays untouched).
TEST_F(GpuCodecTest, MalformedInputsMatchCpuCodes) {
  std::mt19937 rng(17);
  DecodeLimits limits;
  limits.max_elements = 1u << 20;
  auto dl = GpuDecoder::Create(limits);
  ASSERT_TRUE(dl.ok());
  GpuDecoder& dec = *dl.value();
  auto fix_crc = [](std::vector<uint8_t>* b) {
    if (b->size() < 28) return;
    uint32_t body;
    std::memcpy(&body, b->data() + 20, 4);
    if (28 + uint64_t{body} != b->size()) return;
    const uint32_t crc = Crc32c(b->data(), 24 + body);
    std::memcpy(b->data() + 24 + body, &crc, 4);
  };
  int checked = 0, kernel_rejects = 0;
  auto compare = [&](const std::vector<uint8_t>& b, const std::string& what) {
    auto cpu = Decode(b.data(), b.size(), limits);
    const size_t cap = limits.max_elements;  // the capacity check never fires first
    for (MemorySpace where : {MemorySpace::kHost, MemorySpace::kDevice}) {
      DevBuf in(std::max<size_t>(b.size(), 1));
      if (!b.empty()) cudaMemcpy(in.get(), b.data(), b.size(), cudaMemcpyHostToDevice);
      DevBuf o(cap * 4);
      cudaMemset(o.get(), 0xFF, cap * 4);
      GpuDecodeItem item{where == MemorySpace::kHost ? b.data() : in.get<uint8_t>(), b.size(), o.get<float>(), cap};
      Status st = dec.Decode(item, where, stream_);
      ASSERT_EQ(static_cast<int>(st.code()), static_cast<int>(cpu.status().code()))
          << what << (where == MemorySpace::kHost ? " host" : " device") << ": gpu " << st.ToString() << " / cpu "
          << cpu.status().ToString();
      std::vector<uint32_t> host(cap);
      cudaMemcpy(host.data(), o.get(), cap * 4, cudaMemcpyDeviceToHost);
      const bool from_kernel = st.message().find("on the GPU") != std::string::npos;
      kernel_rejects += from_kernel;
      if (!st.ok() && !from_kernel) {
        ASSERT_TRUE(std::all_of(host.begin(), host.end(), [](uint32_t u) { return u == 0xFFFFFFFFu; }))
            << what << ": a kernel wrote output for a bitstream the host rejected";
      }
      if (st.ok()) {
        ASSERT_EQ(0, std::memcmp(host.data(), cpu->values.data(), cpu->values.size() * 4)) << what;
      }
      ++checked;
    }
  };
  for (uint32_t n : {1u, 40u, 5000u, 70000u}) {
    const std::vector<float> v = RandomValues(n, n, 0);
    for (int q : {1, 4, 8}) {
      const std::vector<uint8_t> good = CpuDense(FromFloats(v, {static_cast<int64_t>(n)}, "m"), q);
      SCOPED_TRACE("n=" + std::to_string(n) + " q=" + std::to_string(q));
      for (size_t len = 0; len < good.size(); len += good.size() > 2000 ? 1 + rng() % 301 : 1 + rng() % 3) {
        compare(std::vector<uint8_t>(good.begin(), good.begin() + len), "prefix " + std::to_string(len));
      }
      std::vector<uint8_t> trailing = good;
      trailing.push_back(7);
      compare(trailing, "trailing");
      for (int k = 0; k < 60; ++k) {
        std::vector<uint8_t> b = good;
        const size_t at = k < 30 ? k % std::min<size_t>(b.size(), 30) : rng() % b.size();
        b[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
        compare(b, "flip " + std::to_string(at));
        fix_crc(&b);
        compare(b, "flip+crc " + std::to_string(at));
      }
    }
  }
  EXPECT_GT(checked, 1000);
  EXPECT_GT(kernel_rejects, 10);
}

// Many tensors (mixed sizes, dtypes, a NaN item) in one encode batch, then one decode batch of
// the results plus other layouts (CPU fallback) and a broken stream.
TEST_F(GpuCodecTest, BatchesMatchCpu) {
  std::vector<HostTensor> tensors;
  for (int i = 0; i < 24; ++i) {
    const uint32_t n = i == 5 ? 0 : (i % 7 == 0 ? 100352 : 1 + (i * 7919) % 70000);
    std::vector<float> v = RandomValues(n, 100 + i, i);
    if (i == 9) std::fill(v.begin(), v.end(), 1.5f);
    if (i == 11) v[n / 2] = NAN;
    tensors.push_back(FromFloats(v, {static_cast<int64_t>(n)}, "item " + std::to_string(i),
                                 i % 3 == 1 ? DType::kFloat16 : DType::kFloat32));
  }
  const int q = 4;
  std::vector<DevBuf> ins, outs;
  std::vector<GpuEncodeItem> items;
  for (const HostTensor& t : tensors) {
    ins.emplace_back(t.bytes.size());
    if (!t.bytes.empty()) cudaMemcpy(ins.back().get(), t.bytes.data(), t.bytes.size(), cudaMemcpyHostToDevice);
    outs.emplace_back(MaxCompressedSize(Elements(t.shape), 1));
    GpuEncodeItem it;
    it.in_dev = t.bytes.empty() ? nullptr : ins.back().get();
    it.dtype = t.dtype;
    it.shape = t.shape;
    it.out_dev = outs.back().get();
    it.out_capacity = outs.back().bytes();
    items.push_back(it);
  }
  std::vector<GpuItemResult> results;
  Status st = enc_->EncodeBatch(items.data(), items.size(), q, stream_, &results);
  EXPECT_EQ(st.code(), ErrorCode::kInvalidArgument);  // item 11
  ASSERT_EQ(results.size(), tensors.size());
  std::vector<std::vector<uint8_t>> streams;
  for (size_t i = 0; i < tensors.size(); ++i) {
    SCOPED_TRACE(tensors[i].name);
    if (i == 11) {
      EXPECT_EQ(results[i].code, static_cast<uint32_t>(ErrorCode::kInvalidArgument));
      EXPECT_EQ(results[i].detail, 1u);
      continue;
    }
    ASSERT_EQ(results[i].code, 0u);
    std::vector<uint8_t> bytes(results[i].size);
    cudaMemcpy(bytes.data(), outs[i].get(), bytes.size(), cudaMemcpyDeviceToHost);
    ASSERT_TRUE(bytes == CpuDense(tensors[i], q));
    streams.push_back(bytes);
  }
  // Other layouts (decoded on the CPU) and a corrupt stream in the same decode batch.
  const HostTensor map = FromFloats(RandomValues(4 * 16 * 16, 3, 1), {4, 16, 16}, "map");
  for (Mode m : {Mode::kSparse, Mode::kPaper, Mode::kContext, Mode::kAuto}) {
    EncodeOptions opt;
    opt.q = q;
    opt.mode = m;
    auto r = Encode(TensorView{map.bytes.data(), map.dtype, map.shape}, opt);
    ASSERT_TRUE(r.ok());
    streams.push_back(r.value());
  }
  std::vector<uint8_t> broken = streams[0];
  broken[broken.size() / 2] ^= 0x10;  // checksum mismatch
  streams.push_back(broken);
  for (MemorySpace where : {MemorySpace::kHost, MemorySpace::kDevice}) {
    std::vector<DevBuf> bin, fout;
    std::vector<GpuDecodeItem> ditems;
    for (const auto& s : streams) {
      bin.emplace_back(s.size());
      cudaMemcpy(bin.back().get(), s.data(), s.size(), cudaMemcpyHostToDevice);
      fout.emplace_back(4 * 200000);
      ditems.push_back(
          GpuDecodeItem{where == MemorySpace::kHost ? s.data() : bin.back().get<uint8_t>(), s.size(),
                        fout.back().get<float>(), 200000});
    }
    std::vector<Status> statuses;
    std::vector<std::vector<int64_t>> shapes;
    Status ds = dec_->DecodeBatch(ditems.data(), ditems.size(), where, stream_, &statuses, &shapes);
    EXPECT_EQ(ds.code(), ErrorCode::kChecksumMismatch) << ds.ToString();
    for (size_t i = 0; i < streams.size(); ++i) {
      auto ref = Decode(streams[i].data(), streams[i].size());
      ASSERT_EQ(static_cast<int>(statuses[i].code()), static_cast<int>(ref.status().code())) << "stream " << i;
      if (!ref.ok()) continue;
      EXPECT_EQ(shapes[i], ref->shape);
      std::vector<float> got(ref->values.size());
      if (!got.empty()) cudaMemcpy(got.data(), fout[i].get(), got.size() * 4, cudaMemcpyDeviceToHost);
      EXPECT_EQ(0, std::memcmp(got.data(), ref->values.data(), got.size() * 4)) << "stream " << i;
    }
  }
}

// The asynchronous entry point with a caller workspace, and CUDA graph replays (new input
// values behind the same pointers must be picked up).
TEST_F(GpuCodecTest, AsyncWorkspaceAndGraphs) {
  auto ge = GpuEncoder::Create(GpuEncoderOptions{true});
  ASSERT_TRUE(ge.ok());
  for (GpuEncoder* e : {enc_.get(), ge.value().get()}) {
    HostTensor t = FromFloats(RandomValues(100352, 5, 0), {128, 28, 28}, "feature");
    DevBuf in(t.bytes.size()), out(MaxCompressedSize(100352, 3));
    GpuEncodeItem item;
    item.in_dev = in.get();
    item.shape = t.shape;
    item.out_dev = out.get();
    item.out_capacity = out.bytes();
    auto ws_size = GpuEncoder::GetWorkspaceSize(&item, 1);
    ASSERT_TRUE(ws_size.ok());
    DevBuf ws(ws_size.value()), res(sizeof(GpuItemResult));
    for (int round = 0; round < 4; ++round) {
      t = FromFloats(RandomValues(100352, 50 + round / 2, round % 2), {128, 28, 28}, "feature");
      CUDA_OK(cudaMemcpyAsync(in.get(), t.bytes.data(), t.bytes.size(), cudaMemcpyHostToDevice, stream_));
      Status st = e->EncodeBatchAsync(&item, 1, 4, ws.get(), ws.bytes(), res.get<GpuItemResult>(), stream_);
      ASSERT_TRUE(st.ok()) << st.ToString();
      GpuItemResult r;
      CUDA_OK(cudaMemcpyAsync(&r, res.get(), sizeof(r), cudaMemcpyDeviceToHost, stream_));
      CUDA_OK(cudaStreamSynchronize(stream_));
      ASSERT_EQ(r.code, 0u);
      std::vector<uint8_t> bytes(r.size);
      CUDA_OK(cudaMemcpy(bytes.data(), out.get(), r.size, cudaMemcpyDeviceToHost));
      EXPECT_TRUE(bytes == CpuDense(t, 4)) << "round " << round;
    }
    EXPECT_EQ(e->EncodeBatchAsync(&item, 1, 4, ws.get(), ws.bytes() - 1, res.get<GpuItemResult>(), stream_).code(),
              ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace splitrans::codec::gpu

// gpu_bench: latency and throughput of the CUDA dense codec beside the CPU codec (Mode::kDense)
// on the same tensors: one 128x28x28 float32 feature (resnet34_layer2_img0.npy) at Q = 4, a
// batch of 64 of them, and one >= 64 MB tensor made by tiling the feature. GPU times come from
// CUDA events around each call (host planning and parsing included: the stream is idle when the
// start event is recorded), median of --runs runs after warm-up; CPU times are single-thread
// wall clock. Prints a table and, with --json PATH, writes the numbers.
//   usage: gpu_bench [--runs N] [--cpu-runs N] [--q Q] [--feature PATH] [--json PATH]
#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "codec/cuda/gpu_codec.h"
#include "codec/npy.h"

#ifndef SPLITRANS_SOURCE_DIR
#define SPLITRANS_SOURCE_DIR "."
#endif

namespace splitrans::codec::gpu {
namespace {

using Clock = std::chrono::steady_clock;

#define CHECK_CUDA(expr)                                                                          \
  do {                                                                                            \
    const cudaError_t _e = (expr);                                                                \
    if (_e != cudaSuccess) {                                                                      \
      std::fprintf(stderr, "gpu_bench: %s failed: %s\n", #expr, cudaGetErrorString(_e));         \
      std::exit(1);                                                                               \
    }                                                                                             \
  } while (0)

#define CHECK_OK(expr)                                                                            \
  do {                                                                                            \
    const ::splitrans::codec::Status _s = (expr);                                                 \
    if (!_s.ok()) {                                                                               \
      std::fprintf(stderr, "gpu_bench: %s failed: %s\n", #expr, _s.ToString().c_str());          \
      std::exit(1);                                                                               \
    }                                                                                             \
  } while (0)

struct Stats {
  double median_us = 0, p10_us = 0, p90_us = 0;
  int runs = 0;
};

Stats Summarize(std::vector<double> us) {
  Stats s;
  if (us.empty()) return s;
  std::sort(us.begin(), us.end());
  s.runs = static_cast<int>(us.size());
  s.median_us = us[us.size() / 2];
  s.p10_us = us[us.size() / 10];
  s.p90_us = us[us.size() * 9 / 10];
  return s;
}

// Median of `runs` timings of f between two events on stream (after `warmup` calls).
Stats TimeGpu(cudaStream_t stream, int warmup, int runs, const std::function<void()>& f) {
  cudaEvent_t a, b;
  CHECK_CUDA(cudaEventCreate(&a));
  CHECK_CUDA(cudaEventCreate(&b));
  for (int i = 0; i < warmup; ++i) f();
  CHECK_CUDA(cudaStreamSynchronize(stream));
  std::vector<double> us;
  for (int i = 0; i < runs; ++i) {
    CHECK_CUDA(cudaEventRecord(a, stream));
    f();
    CHECK_CUDA(cudaEventRecord(b, stream));
    CHECK_CUDA(cudaEventSynchronize(b));
    float ms = 0;
    CHECK_CUDA(cudaEventElapsedTime(&ms, a, b));
    us.push_back(1000.0 * ms);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return Summarize(us);
}

Stats TimeCpu(int warmup, int runs, const std::function<void()>& f) {
  for (int i = 0; i < warmup; ++i) f();
  std::vector<double> us;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = Clock::now();
    f();
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  return Summarize(us);
}

struct Row {
  std::string what;
  uint64_t float_bytes = 0;   // input of encode / output of decode
  uint64_t coded_bytes = 0;
  Stats gpu_enc, gpu_enc_graph, gpu_dec_host, gpu_dec_dev, cpu_enc, cpu_dec;
  bool identical = false;
};

double GBps(uint64_t bytes, const Stats& s) { return s.median_us > 0 ? bytes / (s.median_us * 1e3) : 0; }

// One workload: `count` copies of a tensor, encoded and decoded as one batch.
Row Measure(const std::string& what, const std::vector<float>& values, const std::vector<int64_t>& shape, int count,
            int q, int runs, int cpu_runs, cudaStream_t stream, GpuEncoder& enc, GpuEncoder& enc_graph,
            GpuDecoder& dec) {
  Row row;
  row.what = what;
  const size_t n = values.size();
  const int rank = static_cast<int>(shape.size());
  const size_t cap = MaxCompressedSize(n, rank);
  float* in_dev = nullptr;
  uint8_t* out_dev = nullptr;
  float* dec_dev = nullptr;
  CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&in_dev), n * 4 * count));
  CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&out_dev), cap * count));
  CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&dec_dev), n * 4 * count));
  for (int i = 0; i < count; ++i) {
    CHECK_CUDA(cudaMemcpy(in_dev + i * n, values.data(), n * 4, cudaMemcpyHostToDevice));
  }
  std::vector<GpuEncodeItem> items(count);
  for (int i = 0; i < count; ++i) {
    items[i].in_dev = in_dev + i * n;
    items[i].shape = shape;
    items[i].out_dev = out_dev + i * cap;
    items[i].out_capacity = cap;
  }
  auto ws_size = GpuEncoder::GetWorkspaceSize(items.data(), items.size());
  CHECK_OK(ws_size.status());
  void* ws = nullptr;
  GpuItemResult* res_dev = nullptr;
  CHECK_CUDA(cudaMalloc(&ws, ws_size.value()));
  CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&res_dev), count * sizeof(GpuItemResult)));

  // Correctness first: the GPU bytes of item 0 against the CPU encoder.
  std::vector<GpuItemResult> results;
  CHECK_OK(enc.EncodeBatch(items.data(), items.size(), q, stream, &results));
  std::vector<uint8_t> gpu_bytes(results[0].size);
  CHECK_CUDA(cudaMemcpy(gpu_bytes.data(), out_dev, gpu_bytes.size(), cudaMemcpyDeviceToHost));
  EncodeOptions opt;
  opt.q = q;
  opt.mode = Mode::kDense;
  Encoder cpu_enc;
  std::vector<uint8_t> cpu_bytes;
  const TensorView view{values.data(), DType::kFloat32, shape};
  CHECK_OK(cpu_enc.Encode(view, opt, &cpu_bytes));
  row.identical = cpu_bytes == gpu_bytes;
  row.float_bytes = uint64_t{n} * 4 * count;
  row.coded_bytes = 0;
  for (const auto& r : results) row.coded_bytes += r.size;

  const int warm = 10;
  row.gpu_enc = TimeGpu(stream, warm, runs, [&] {
    CHECK_OK(enc.EncodeBatchAsync(items.data(), items.size(), q, ws, ws_size.value(), res_dev, stream));
  });
  row.gpu_enc_graph = TimeGpu(stream, warm, runs, [&] {
    CHECK_OK(enc_graph.EncodeBatchAsync(items.data(), items.size(), q, ws, ws_size.value(), res_dev, stream));
  });

  // Decode: the same bitstreams from host memory and from device memory.
  std::vector<std::vector<uint8_t>> host_bits(count);
  std::vector<GpuDecodeItem> from_host(count), from_dev(count);
  for (int i = 0; i < count; ++i) {
    host_bits[i].resize(results[i].size);
    CHECK_CUDA(cudaMemcpy(host_bits[i].data(), out_dev + i * cap, results[i].size, cudaMemcpyDeviceToHost));
    from_host[i] = GpuDecodeItem{host_bits[i].data(), host_bits[i].size(), dec_dev + i * n, n};
    from_dev[i] = GpuDecodeItem{out_dev + i * cap, results[i].size, dec_dev + i * n, n};
  }
  row.gpu_dec_host = TimeGpu(stream, warm, runs, [&] {
    CHECK_OK(dec.DecodeBatch(from_host.data(), from_host.size(), MemorySpace::kHost, stream));
  });
  row.gpu_dec_dev = TimeGpu(stream, warm, runs, [&] {
    CHECK_OK(dec.DecodeBatch(from_dev.data(), from_dev.size(), MemorySpace::kDevice, stream));
  });
  // Decoded values against the CPU decoder.
  auto ref = Decode(cpu_bytes.data(), cpu_bytes.size());
  CHECK_OK(ref.status());
  std::vector<float> got(n);
  CHECK_CUDA(cudaMemcpy(got.data(), dec_dev, n * 4, cudaMemcpyDeviceToHost));
  row.identical = row.identical && std::memcmp(got.data(), ref->values.data(), n * 4) == 0;

  // CPU: the same work, one tensor after another, one thread.
  Decoder cpu_dec;
  std::vector<float> cpu_out(n);
  row.cpu_enc = TimeCpu(1, cpu_runs, [&] {
    for (int i = 0; i < count; ++i) CHECK_OK(cpu_enc.Encode(view, opt, &cpu_bytes));
  });
  row.cpu_dec = TimeCpu(1, cpu_runs, [&] {
    for (int i = 0; i < count; ++i) {
      CHECK_OK(cpu_dec.DecodeInto(cpu_bytes.data(), cpu_bytes.size(), cpu_out.data(), n, nullptr));
    }
  });
  cudaFree(in_dev);
  cudaFree(out_dev);
  cudaFree(dec_dev);
  cudaFree(ws);
  cudaFree(res_dev);
  return row;
}

void PrintStats(const char* label, const Stats& s, uint64_t bytes) {
  std::printf("  %-34s %10.1f us  (p10 %.1f, p90 %.1f, %d runs)  %8.2f GB/s\n", label, s.median_us, s.p10_us, s.p90_us,
              s.runs, GBps(bytes, s));
}

void JsonStats(FILE* f, const char* key, const Stats& s, uint64_t bytes, bool last = false) {
  std::fprintf(f, "      \"%s\": {\"median_us\": %.3f, \"p10_us\": %.3f, \"p90_us\": %.3f, \"runs\": %d, \"gbps\": %.4f}%s\n",
               key, s.median_us, s.p10_us, s.p90_us, s.runs, GBps(bytes, s), last ? "" : ",");
}

int Main(int argc, char** argv) {
  int runs = 200, cpu_runs = 100, q = 4;
  std::string feature = std::string(SPLITRANS_SOURCE_DIR) + "/tests/data/features/resnet34_layer2_img0.npy";
  std::string json;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "gpu_bench: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--runs") {
      runs = std::max(1, std::atoi(next().c_str()));
    } else if (a == "--cpu-runs") {
      cpu_runs = std::max(1, std::atoi(next().c_str()));
    } else if (a == "--q") {
      q = std::atoi(next().c_str());
    } else if (a == "--feature") {
      feature = next();
    } else if (a == "--json") {
      json = next();
    } else {
      std::fprintf(stderr, "usage: gpu_bench [--runs N] [--cpu-runs N] [--q Q] [--feature PATH] [--json PATH]\n");
      return 2;
    }
  }
  std::string why;
  if (!GpuAvailable(&why)) {
    std::printf("gpu_bench: no usable GPU (%s): nothing to measure\n", why.c_str());
    return 0;
  }
  int device = 0, driver = 0, runtime = 0;
  cudaDeviceProp prop;
  CHECK_CUDA(cudaGetDevice(&device));
  CHECK_CUDA(cudaGetDeviceProperties(&prop, device));
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);

  auto arr = ReadNpy(feature);
  CHECK_OK(arr.status());
  if (arr->dtype != DType::kFloat32) {
    std::fprintf(stderr, "gpu_bench: %s is not float32\n", feature.c_str());
    return 1;
  }
  std::vector<float> values(arr->ElementCount());
  std::memcpy(values.data(), arr->bytes.data(), values.size() * 4);
  const std::vector<int64_t> shape = arr->shape;
  // >= 64 MB: the feature tiled along its first dimension.
  const size_t tiles = (size_t{64} << 20) / (values.size() * 4) + 1;
  std::vector<float> large(values.size() * tiles);
  for (size_t k = 0; k < tiles; ++k) std::copy(values.begin(), values.end(), large.begin() + k * values.size());
  std::vector<int64_t> large_shape = shape;
  large_shape[0] *= static_cast<int64_t>(tiles);

  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  auto enc = GpuEncoder::Create();
  CHECK_OK(enc.status());
  auto enc_graph = GpuEncoder::Create(GpuEncoderOptions{true});
  CHECK_OK(enc_graph.status());
  auto dec = GpuDecoder::Create();
  CHECK_OK(dec.status());

  std::string shape_str;
  for (size_t i = 0; i < shape.size(); ++i) shape_str += (i ? "x" : "") + std::to_string(shape[i]);
  std::vector<Row> rows;
  rows.push_back(Measure("1 x " + shape_str + " f32", values, shape, 1, q, runs, cpu_runs, stream, *enc.value(),
                         *enc_graph.value(), *dec.value()));
  rows.push_back(Measure("64 x " + shape_str + " f32 (batch)", values, shape, 64, q, std::max(runs / 2, 100),
                         std::max(cpu_runs / 10, 5), stream, *enc.value(), *enc_graph.value(), *dec.value()));
  std::string large_str;
  for (size_t i = 0; i < large_shape.size(); ++i) large_str += (i ? "x" : "") + std::to_string(large_shape[i]);
  rows.push_back(Measure("1 x " + large_str + " f32 (" + std::to_string(large.size() * 4 >> 20) + " MiB)", large,
                         large_shape, 1, q, std::max(runs / 2, 100), std::max(cpu_runs / 20, 5), stream,
                         *enc.value(), *enc_graph.value(), *dec.value()));

  std::printf("\nsplitrans dense codec, Q=%d: GPU %s (sm_%d%d, %d SMs, driver %d, runtime %d) vs CPU (1 thread)\n", q,
              prop.name, prop.major, prop.minor, prop.multiProcessorCount, driver, runtime);
  std::printf("GPU: CUDA events around each call, median; encode = device floats -> device bytes incl. quantize;\n"
              "decode = bytes -> device floats incl. dequantize and host validation.\n");
  for (const Row& r : rows) {
    std::printf("\n%s: %.2f MB -> %.3f MB (%.2f bits/value), GPU bytes == CPU bytes and decodes equal: %s\n",
                r.what.c_str(), r.float_bytes / 1e6, r.coded_bytes / 1e6, 8.0 * r.coded_bytes / (r.float_bytes / 4.0),
                r.identical ? "yes" : "NO");
    PrintStats("GPU encode", r.gpu_enc, r.float_bytes);
    PrintStats("GPU encode (CUDA graph replay)", r.gpu_enc_graph, r.float_bytes);
    PrintStats("GPU decode (host bytes)", r.gpu_dec_host, r.float_bytes);
    PrintStats("GPU decode (device bytes)", r.gpu_dec_dev, r.float_bytes);
    PrintStats("CPU encode (dense)", r.cpu_enc, r.float_bytes);
    PrintStats("CPU decode (dense)", r.cpu_dec, r.float_bytes);
  }
  bool all_identical = true;
  for (const Row& r : rows) all_identical = all_identical && r.identical;
  if (!json.empty()) {
    FILE* f = std::fopen(json.c_str(), "w");
    if (!f) {
      std::fprintf(stderr, "gpu_bench: cannot write %s\n", json.c_str());
      return 1;
    }
    std::fprintf(f, "{\n  \"gpu\": \"%s\", \"sm\": \"%d%d\", \"sms\": %d, \"driver\": %d, \"runtime\": %d, \"q\": %d,\n",
                 prop.name, prop.major, prop.minor, prop.multiProcessorCount, driver, runtime, q);
    std::fprintf(f, "  \"rows\": [\n");
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      std::fprintf(f, "    {\"what\": \"%s\", \"float_bytes\": %llu, \"coded_bytes\": %llu, \"identical\": %s,\n",
                   r.what.c_str(), static_cast<unsigned long long>(r.float_bytes),
                   static_cast<unsigned long long>(r.coded_bytes), r.identical ? "true" : "false");
      JsonStats(f, "gpu_encode", r.gpu_enc, r.float_bytes);
      JsonStats(f, "gpu_encode_graph", r.gpu_enc_graph, r.float_bytes);
      JsonStats(f, "gpu_decode_host", r.gpu_dec_host, r.float_bytes);
      JsonStats(f, "gpu_decode_device", r.gpu_dec_dev, r.float_bytes);
      JsonStats(f, "cpu_encode", r.cpu_enc, r.float_bytes);
      JsonStats(f, "cpu_decode", r.cpu_dec, r.float_bytes, true);
      std::fprintf(f, "    }%s\n", i + 1 < rows.size() ? "," : "");
    }
    std::fprintf(f, "  ]\n}\n");
    std::fclose(f);
  }
  cudaStreamDestroy(stream);
  return all_identical ? 0 : 3;
}

}  // namespace
}  // namespace splitrans::codec::gpu

int main(int argc, char** argv) { return splitrans::codec::gpu::Main(argc, argv); }

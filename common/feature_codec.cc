#include "common/feature_codec.h"

#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstring>
#include <mutex>
#include <string>

#include "codec/wire.h"

#ifdef SPLITRANS_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "codec/cuda/gpu_codec.h"
#endif

namespace splitrans {

bool ParseCodecDevice(const std::string& s, CodecDevice* device) {
  if (s == "auto") *device = CodecDevice::kAuto;
  else if (s == "cpu") *device = CodecDevice::kCpu;
  else if (s == "gpu") *device = CodecDevice::kGpu;
  else return false;
  return true;
}

const char* CodecDeviceName(CodecDevice device) {
  switch (device) {
    case CodecDevice::kAuto: return "auto";
    case CodecDevice::kCpu: return "cpu";
    case CodecDevice::kGpu: return "gpu";
  }
  return "?";
}

namespace {

// A runtime failure of the GPU path (not a verdict on the data): the CPU codec retries.
bool IsGpuFailure(const codec::Status& s) {
  return s.code() == codec::ErrorCode::kUnavailable || s.code() == codec::ErrorCode::kInternal;
}

// The layout byte of a bitstream whose magic is right, else -1. Not validated: both paths
// validate the whole bitstream themselves.
int PeekLayoutByte(const uint8_t* data, size_t size) {
  if (data == nullptr || size < codec::kFixedHeaderBytes) return -1;
  if (std::memcmp(data, codec::kMagic, 4) != 0) return -1;
  return data[offsetof(codec::FixedHeader, layout)];
}

#ifdef SPLITRANS_HAVE_CUDA
// The element count a bitstream's header declares (not validated, no checksum pass), or 0 when
// the header is too short or the count exceeds max_elements.
uint64_t DeclaredElements(const uint8_t* data, size_t size, uint64_t max_elements) {
  if (data == nullptr || size < codec::kFixedHeaderBytes) return 0;
  const int rank = data[offsetof(codec::FixedHeader, rank)];
  if (rank < 1 || rank > codec::kMaxRank || size < codec::kFixedHeaderBytes + 4 * size_t(rank)) return 0;
  uint64_t n = 1;
  for (int i = 0; i < rank; ++i) {
    uint32_t d;
    std::memcpy(&d, data + codec::kFixedHeaderBytes + 4 * i, 4);
    n *= d;
    if (n > max_elements) return 0;
  }
  return n;
}
#endif

}  // namespace

#ifdef SPLITRANS_HAVE_CUDA

// One stream, one encoder and decoder, and device buffers that grow to the largest tensor seen.
struct FeatureCodec::Gpu {
  std::mutex mu;
  cudaStream_t stream = nullptr;
  std::unique_ptr<codec::gpu::GpuEncoder> encoder;
  std::unique_ptr<codec::gpu::GpuDecoder> decoder;
  void* in_dev = nullptr;  // float32 or float16 input / float32 output
  size_t in_bytes = 0;
  uint8_t* out_dev = nullptr;  // encoded bytes
  size_t out_bytes = 0;

  ~Gpu() {
    if (in_dev) cudaFree(in_dev);
    if (out_dev) cudaFree(out_dev);
    if (stream) cudaStreamDestroy(stream);
  }

  codec::Status Reserve(void** p, size_t* have, size_t need) {
    if (*have >= need) return codec::Status::Ok();
    if (*p) cudaFree(*p);
    *p = nullptr;
    *have = 0;
    if (cudaError_t e = cudaMalloc(p, need); e != cudaSuccess) {
      cudaGetLastError();
      return codec::Status(codec::ErrorCode::kUnavailable,
                           std::string("cudaMalloc(") + std::to_string(need) + "): " + cudaGetErrorString(e));
    }
    *have = need;
    return codec::Status::Ok();
  }

  static codec::Status Cuda(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return codec::Status::Ok();
    cudaGetLastError();
    return codec::Status(codec::ErrorCode::kInternal, std::string(what) + ": " + cudaGetErrorString(e));
  }

  codec::Status Encode(const codec::TensorView& t, int q, std::vector<uint8_t>* out) {
    std::lock_guard<std::mutex> lock(mu);
    uint64_t n = 1;
    for (int64_t d : t.shape) n *= d < 0 ? 0 : static_cast<uint64_t>(d);
    const size_t elem = t.dtype == codec::DType::kFloat16 ? 2 : 4;
    const size_t cap = codec::gpu::MaxCompressedSize(n, static_cast<int>(t.shape.size()));
    SPLITRANS_RETURN_IF_ERROR(Reserve(&in_dev, &in_bytes, std::max<size_t>(n * elem, 256)));
    SPLITRANS_RETURN_IF_ERROR(Reserve(reinterpret_cast<void**>(&out_dev), &out_bytes, cap));
    if (n > 0) {
      SPLITRANS_RETURN_IF_ERROR(
          Cuda(cudaMemcpyAsync(in_dev, t.data, n * elem, cudaMemcpyHostToDevice, stream), "copy to GPU"));
    }
    codec::gpu::GpuEncodeItem item;
    item.in_dev = n > 0 ? in_dev : nullptr;
    item.dtype = t.dtype;
    item.shape = t.shape;
    item.out_dev = out_dev;
    item.out_capacity = cap;
    size_t size = 0;
    SPLITRANS_RETURN_IF_ERROR(encoder->Encode(item, q, stream, &size));
    out->resize(size);
    SPLITRANS_RETURN_IF_ERROR(
        Cuda(cudaMemcpyAsync(out->data(), out_dev, size, cudaMemcpyDeviceToHost, stream), "copy from GPU"));
    return Cuda(cudaStreamSynchronize(stream), "GPU encode");
  }

  codec::Status Decode(const uint8_t* data, size_t size, const codec::DecodeLimits& limits,
                       codec::DecodedTensor* out) {
    // The output size from the declared shape, unvalidated: the GPU decoder validates the whole
    // bitstream (FORMAT.md order) before it compares the shape with the capacity, so a wrong
    // declaration fails there with its own error; this only bounds the allocation.
    const uint64_t n = DeclaredElements(data, size, limits.max_elements);
    std::lock_guard<std::mutex> lock(mu);
    decoder->SetLimits(limits);
    SPLITRANS_RETURN_IF_ERROR(Reserve(&in_dev, &in_bytes, std::max<size_t>(n * sizeof(float), 256)));
    codec::gpu::GpuDecodeItem item;
    item.data = data;
    item.size = size;
    item.out_dev = static_cast<float*>(in_dev);
    item.capacity = n;
    SPLITRANS_RETURN_IF_ERROR(decoder->Decode(item, codec::gpu::MemorySpace::kHost, stream, &out->shape));
    out->values.resize(n);
    if (n > 0) {
      SPLITRANS_RETURN_IF_ERROR(Cuda(cudaMemcpyAsync(out->values.data(), in_dev, n * sizeof(float),
                                                     cudaMemcpyDeviceToHost, stream),
                                     "copy from GPU"));
    }
    SPLITRANS_RETURN_IF_ERROR(Cuda(cudaStreamSynchronize(stream), "GPU decode"));
    out->dtype = static_cast<codec::DType>(data[offsetof(codec::FixedHeader, dtype)]);
    return codec::Status::Ok();
  }
};

namespace {

std::string DeviceName() {
  int dev = 0;
  cudaDeviceProp prop;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess) {
    cudaGetLastError();
    return "GPU";
  }
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")";
}

// The GPU state, or null with *why saying why not.
std::unique_ptr<FeatureCodec::Gpu> MakeGpu(const codec::DecodeLimits& limits, std::string* why) {
  if (!codec::gpu::GpuAvailable(why)) return nullptr;
  auto g = std::make_unique<FeatureCodec::Gpu>();
  if (cudaError_t e = cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking); e != cudaSuccess) {
    cudaGetLastError();
    *why = std::string("cudaStreamCreate: ") + cudaGetErrorString(e);
    return nullptr;
  }
  auto enc = codec::gpu::GpuEncoder::Create();
  if (!enc.ok()) {
    *why = enc.status().ToString();
    return nullptr;
  }
  auto dec = codec::gpu::GpuDecoder::Create(limits);
  if (!dec.ok()) {
    *why = dec.status().ToString();
    return nullptr;
  }
  g->encoder = std::move(*enc);
  g->decoder = std::move(*dec);
  *why = DeviceName();
  return g;
}

}  // namespace

#else  // !SPLITRANS_HAVE_CUDA

struct FeatureCodec::Gpu {
  codec::Status Encode(const codec::TensorView&, int, std::vector<uint8_t>*) {
    return codec::Status(codec::ErrorCode::kUnavailable, "no CUDA codec in this build");
  }
  codec::Status Decode(const uint8_t*, size_t, const codec::DecodeLimits&, codec::DecodedTensor*) {
    return codec::Status(codec::ErrorCode::kUnavailable, "no CUDA codec in this build");
  }
};

namespace {
std::unique_ptr<FeatureCodec::Gpu> MakeGpu(const codec::DecodeLimits&, std::string* why) {
  *why = "this build has no CUDA codec (nvcc was not found when it was configured)";
  return nullptr;
}
}  // namespace

#endif  // SPLITRANS_HAVE_CUDA

FeatureCodec::~FeatureCodec() = default;

absl::StatusOr<std::unique_ptr<FeatureCodec>> FeatureCodec::Create(const FeatureCodecOptions& options) {
  std::unique_ptr<FeatureCodec> c(new FeatureCodec());
  c->options_ = options;
  if (options.device == CodecDevice::kCpu) {
    c->description_ = "CPU (--codec-device cpu)";
  } else {
    std::string why;
    c->gpu_ = MakeGpu(options.limits, &why);
    if (c->gpu_) {
      c->description_ = "GPU " + why + " for dense encode and dense/constant decode, CPU for the other layouts";
    } else if (options.device == CodecDevice::kGpu) {
      return absl::FailedPreconditionError("--codec-device gpu: no usable GPU: " + why);
    } else {
      c->description_ = "CPU (no usable GPU: " + why + ")";
    }
  }
  spdlog::info("{}: feature codec on {}", options.name, c->description_);
  return c;
}

bool FeatureCodec::gpu() const { return gpu_ != nullptr; }

codec::Status FeatureCodec::Encode(const codec::TensorView& tensor, const codec::EncodeOptions& options,
                                   std::vector<uint8_t>* out, CodecPath* path) {
  if (gpu_ && options.mode == codec::Mode::kDense && options.quantizer == codec::Quantizer::kMinMax) {
    codec::Status s = gpu_->Encode(tensor, options.q, out);
    if (!IsGpuFailure(s)) {
      if (path) *path = CodecPath::kGpu;
      return s;
    }
    spdlog::warn("{}: GPU encode failed, CPU codec used instead: {}", options_.name, s.ToString());
  }
  thread_local codec::Encoder encoder;
  if (path) *path = CodecPath::kCpu;
  return encoder.Encode(tensor, options, out);
}

codec::Status FeatureCodec::Decode(const uint8_t* data, size_t size, codec::DecodedTensor* out,
                                   CodecPath* path, const codec::DecodeLimits* call_limits) {
  const codec::DecodeLimits& limits = call_limits ? *call_limits : options_.limits;
  const int layout = PeekLayoutByte(data, size);
  if (gpu_ && (layout == static_cast<int>(codec::Layout::kDense) ||
               layout == static_cast<int>(codec::Layout::kConstant))) {
    codec::Status s = gpu_->Decode(data, size, limits, out);
    if (!IsGpuFailure(s)) {
      if (path) *path = CodecPath::kGpu;
      return s;
    }
    spdlog::warn("{}: GPU decode failed, CPU codec used instead: {}", options_.name, s.ToString());
  }
  // Per-thread decoders keep their scratch buffers; each call sets its limits.
  thread_local codec::Decoder decoder;
  decoder.SetLimits(limits);
  if (path) *path = CodecPath::kCpu;
  return decoder.Decode(data, size, out);
}

}  // namespace splitrans

// GpuEncoder: plans a batch on the host (gpu_plan.cc), uploads its descriptors and enqueues the
// encode kernels (encode_kernels.cuh), optionally as a cached CUDA graph. Also GpuAvailable.
#include <cuda_runtime_api.h>

#include <cstring>
#include <string>
#include <vector>

#include "codec/cuda/cuda_status.h"
#include "codec/cuda/encode_kernels.cuh"
#include "codec/cuda/gpu_codec.h"
#include "codec/cuda/gpu_plan.h"

namespace splitrans::codec::gpu {

static_assert(sizeof(GpuItemResult) == sizeof(ItemResult), "GpuItemResult mirrors ItemResult");
static_assert(offsetof(GpuItemResult, size) == offsetof(ItemResult, size), "GpuItemResult mirrors ItemResult");

bool GpuAvailable(std::string* why) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    if (why) *why = std::string("cudaGetDeviceCount: ") + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")";
    return false;
  }
  if (n == 0) {
    if (why) *why = "no CUDA device";
    return false;
  }
  cudaFuncAttributes attr;
  e = cudaFuncGetAttributes(&attr, RansEncodeKernel);
  if (e != cudaSuccess) {
    cudaGetLastError();
    int dev = 0;
    cudaDeviceProp prop;
    std::string name = "?";
    if (cudaGetDevice(&dev) == cudaSuccess && cudaGetDeviceProperties(&prop, dev) == cudaSuccess) {
      name = std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")";
    }
    cudaGetLastError();
    if (why) *why = "no kernel image for " + name + ": " + cudaGetErrorName(e);
    return false;
  }
  return true;
}

size_t MaxCompressedSize(uint64_t elements, int rank) {
  if (rank < 1) rank = 1;
  if (rank > kMaxRank) rank = kMaxRank;
  const uint64_t b = MaxDenseEncodedSize(elements, rank);
  return b > SIZE_MAX ? SIZE_MAX : static_cast<size_t>(b);
}

namespace {

// Makes `device` current for the scope and restores the caller's device.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    if (cudaGetDevice(&prev_) == cudaSuccess && prev_ != device) {
      switched_ = cudaSetDevice(device) == cudaSuccess;
    }
  }
  ~DeviceGuard() {
    if (switched_) cudaSetDevice(prev_);
  }

 private:
  int prev_ = 0;
  bool switched_ = false;
};

Status ItemStatus(size_t i, const GpuItemResult& r) {
  const std::string at = "item " + std::to_string(i) + ": ";
  if (r.code == kCodeInvalidArgument && r.detail == kDetailNonFinite) {
    return InvalidArgument(at + "tensor has NaN or infinite values; only finite values can be quantized");
  }
  if (r.code == kCodeInvalidArgument && r.detail == kDetailRangeTooLarge) {
    return InvalidArgument(at + "value range too large for a float32 scale");
  }
  if (r.code == kCodeInvalidArgument && r.detail == kDetailOffsetTooLarge) {
    return InvalidArgument(at + "the tensor's offset is too large for its range (zero point beyond +-2^24): "
                                "float32 cannot represent the quantization grid; subtract the mean or lower Q");
  }
  return Status(static_cast<ErrorCode>(r.code), at + "GPU encoder failed (detail " + std::to_string(r.detail) + ")");
}

template <typename T>
void FreeDevice(T*& p) {
  if (p) cudaFree(p);
  p = nullptr;
}
template <typename T>
void FreeHost(T*& p) {
  if (p) cudaFreeHost(p);
  p = nullptr;
}

}  // namespace

struct GpuEncoder::Impl {
  int device = 0;
  GpuEncoderOptions options;
  double* log2_dev = nullptr;
  CrcTables* crc_dev = nullptr;
  // Descriptor staging (pinned) for direct launches; free again once staging_free completes.
  uint8_t* staging = nullptr;
  size_t staging_cap = 0;
  cudaEvent_t staging_free = nullptr;
  bool staging_pending = false;
  // Internal workspace and results of EncodeBatch.
  uint8_t* ws = nullptr;
  size_t ws_cap = 0;
  GpuItemResult* res_dev = nullptr;
  GpuItemResult* res_host = nullptr;
  size_t res_cap = 0;
  // The cached graph: its own pinned descriptors, replayed when the key repeats.
  std::vector<uint8_t> graph_key;
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t graph_exec = nullptr;
  uint8_t* graph_desc = nullptr;
  size_t graph_desc_cap = 0;
  cudaEvent_t graph_done = nullptr;
  bool graph_pending = false;
  // Scratch of the host planner.
  std::vector<EncodeRequest> requests;
  std::vector<uint8_t> desc;

  ~Impl() {
    DeviceGuard guard(device);
    if (staging_pending) cudaEventSynchronize(staging_free);
    if (graph_pending) cudaEventSynchronize(graph_done);
    DropGraph();
    FreeDevice(log2_dev);
    FreeDevice(crc_dev);
    FreeDevice(ws);
    FreeDevice(res_dev);
    FreeHost(staging);
    FreeHost(res_host);
    FreeHost(graph_desc);
    if (staging_free) cudaEventDestroy(staging_free);
    if (graph_done) cudaEventDestroy(graph_done);
  }

  // Waits for the cached graph's last launch and destroys it.
  Status RetireGraph() {
    if (graph_pending) {
      CUDA_RETURN_IF_ERROR(cudaEventSynchronize(graph_done));
      graph_pending = false;
    }
    DropGraph();
    return Status::Ok();
  }

  void DropGraph() {
    if (graph_exec) cudaGraphExecDestroy(graph_exec);
    if (graph) cudaGraphDestroy(graph);
    graph_exec = nullptr;
    graph = nullptr;
    graph_key.clear();
  }

  Status Plan(const GpuEncodeItem* items, size_t count, int q, EncodeLayout* layout) {
    if (items == nullptr && count > 0) return InvalidArgument("null batch");
    requests.resize(count);
    for (size_t i = 0; i < count; ++i) {
      EncodeRequest& r = requests[i];
      r.in = items[i].in_dev;
      r.dtype = items[i].dtype;
      r.shape = items[i].shape.data();
      r.rank = static_cast<int>(items[i].shape.size());
      r.out = items[i].out_dev;
      r.out_capacity = items[i].out_capacity;
    }
    return PlanEncode(requests.data(), count, q, layout, &desc);
  }

  // Uploads desc (from pinned host memory) and enqueues every kernel of the batch.
  Status EnqueueAll(const EncodeLayout& L, const uint8_t* desc_pinned, size_t count, int q, uint8_t* ws_dev,
                    GpuItemResult* results_dev, cudaStream_t stream) {
    EncBatch B;
    B.items = reinterpret_cast<const EncItem*>(ws_dev + L.items);
    B.count = static_cast<uint32_t>(count);
    B.tile_prefix = reinterpret_cast<const uint32_t*>(ws_dev + L.tile_prefix);
    B.block_prefix = reinterpret_cast<const uint32_t*>(ws_dev + L.block_prefix);
    B.asm_prefix = reinterpret_cast<const uint32_t*>(ws_dev + L.asm_prefix);
    B.accum = reinterpret_cast<EncAccum*>(ws_dev + L.accum);
    B.state = reinterpret_cast<EncState*>(ws_dev + L.state);
    B.blocks = reinterpret_cast<EncBlockOut*>(ws_dev + L.blocks);
    B.symbols = ws_dev + L.symbols;
    B.words = reinterpret_cast<uint16_t*>(ws_dev + L.words);
    B.results = reinterpret_cast<ItemResult*>(results_dev);
    B.log2_table = log2_dev;
    B.crc = crc_dev;
    B.q = q;
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(ws_dev, desc_pinned, L.desc_bytes, cudaMemcpyHostToDevice, stream));
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(ws_dev + L.accum, 0, L.accum_bytes, stream));
    if (L.total_tiles > 0) {
      RangeKernel<<<L.total_tiles, kTileThreads, 0, stream>>>(B);
      CUDA_RETURN_IF_LAUNCH_FAILED(RangeKernel);
      QuantizeKernel<<<L.total_tiles, kTileThreads, 0, stream>>>(B);
      CUDA_RETURN_IF_LAUNCH_FAILED(QuantizeKernel);
    }
    TableKernel<<<static_cast<uint32_t>(count), 256, 0, stream>>>(B);
    CUDA_RETURN_IF_LAUNCH_FAILED(TableKernel);
    if (L.total_blocks > 0) {
      const uint32_t ctas = (L.total_blocks + kEncWarpsPerCta - 1) / kEncWarpsPerCta;
      RansEncodeKernel<<<ctas, kEncWarpsPerCta * 32, 0, stream>>>(B);
      CUDA_RETURN_IF_LAUNCH_FAILED(RansEncodeKernel);
    }
    AssembleKernel<<<L.total_asm, kAsmThreads, 0, stream>>>(B);
    CUDA_RETURN_IF_LAUNCH_FAILED(AssembleKernel);
    return Status::Ok();
  }

  Status Enqueue(const EncodeLayout& L, size_t count, int q, uint8_t* ws_dev, GpuItemResult* results_dev,
                 cudaStream_t stream) {
    // Graphs need a stream of our caller's that is not being captured already (the legacy and
    // per-thread default streams cannot be captured); otherwise the direct path.
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    CUDA_RETURN_IF_ERROR(cudaStreamIsCapturing(stream, &capturing));
    if (capturing != cudaStreamCaptureStatusNone) {
      return InvalidArgument("EncodeBatchAsync cannot be captured into a caller's CUDA graph (it reuses a pinned "
                             "descriptor buffer); use GpuEncoderOptions::use_cuda_graph instead");
    }
    if (options.use_cuda_graph && stream != nullptr && stream != cudaStreamLegacy && stream != cudaStreamPerThread) {
      return EnqueueGraph(L, count, q, ws_dev, results_dev, stream);
    }
    if (staging_pending) {
      CUDA_RETURN_IF_ERROR(cudaEventSynchronize(staging_free));
      staging_pending = false;
    }
    if (staging_cap < desc.size()) {
      FreeHost(staging);
      staging_cap = 0;
      CUDA_RETURN_IF_ERROR(cudaMallocHost(&staging, desc.size()));
      staging_cap = desc.size();
    }
    std::memcpy(staging, desc.data(), desc.size());
    const Status st = EnqueueAll(L, staging, count, q, ws_dev, results_dev, stream);
    // Recorded even when a launch failed: the upload from `staging` may already be enqueued,
    // and the next call must not overwrite the buffer before it has been read.
    if (cudaEventRecord(staging_free, stream) == cudaSuccess) {
      staging_pending = true;
    } else {
      cudaGetLastError();
      cudaStreamSynchronize(stream);
      cudaGetLastError();
    }
    return st;
  }

  Status EnqueueGraph(const EncodeLayout& L, size_t count, int q, uint8_t* ws_dev, GpuItemResult* results_dev,
                      cudaStream_t stream) {
    // The key: everything a replay bakes in.
    std::vector<uint8_t> key(desc);
    const uintptr_t extra[3] = {reinterpret_cast<uintptr_t>(ws_dev), reinterpret_cast<uintptr_t>(results_dev),
                                static_cast<uintptr_t>(q)};
    key.insert(key.end(), reinterpret_cast<const uint8_t*>(extra), reinterpret_cast<const uint8_t*>(extra) + sizeof(extra));
    if (graph_exec == nullptr || key != graph_key) {
      SPLITRANS_RETURN_IF_ERROR(RetireGraph());
      if (graph_desc_cap < desc.size()) {
        FreeHost(graph_desc);
        graph_desc_cap = 0;
        CUDA_RETURN_IF_ERROR(cudaMallocHost(&graph_desc, desc.size()));
        graph_desc_cap = desc.size();
      }
      std::memcpy(graph_desc, desc.data(), desc.size());
      CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
      Status st = EnqueueAll(L, graph_desc, count, q, ws_dev, results_dev, stream);
      cudaGraph_t g = nullptr;
      const cudaError_t end = cudaStreamEndCapture(stream, &g);
      if (!st.ok() || end != cudaSuccess) {
        if (g) cudaGraphDestroy(g);
        cudaGetLastError();
        if (!st.ok()) return st;
        return CudaStatus(end, "cudaStreamEndCapture", __FILE__, __LINE__);
      }
      graph = g;
      CUDA_RETURN_IF_ERROR(cudaGraphInstantiateWithFlags(&graph_exec, graph, 0));
      graph_key.swap(key);
    }
    CUDA_RETURN_IF_ERROR(cudaGraphLaunch(graph_exec, stream));
    CUDA_RETURN_IF_ERROR(cudaEventRecord(graph_done, stream));
    graph_pending = true;
    return Status::Ok();
  }
};

GpuEncoder::GpuEncoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GpuEncoder::~GpuEncoder() = default;

Result<std::unique_ptr<GpuEncoder>> GpuEncoder::Create(const GpuEncoderOptions& options) {
  std::string why;
  if (!GpuAvailable(&why)) return Status(ErrorCode::kUnavailable, "no usable GPU: " + why);
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  CUDA_RETURN_IF_ERROR(cudaGetDevice(&impl->device));
  std::vector<double> log2_table(kLog2TableSize);
  FillLog2Table(log2_table.data());
  CUDA_RETURN_IF_ERROR(cudaMalloc(&impl->log2_dev, kLog2TableSize * sizeof(double)));
  CUDA_RETURN_IF_ERROR(
      cudaMemcpy(impl->log2_dev, log2_table.data(), kLog2TableSize * sizeof(double), cudaMemcpyHostToDevice));
  CrcTables crc;
  FillCrcTables(&crc);
  CUDA_RETURN_IF_ERROR(cudaMalloc(&impl->crc_dev, sizeof(CrcTables)));
  CUDA_RETURN_IF_ERROR(cudaMemcpy(impl->crc_dev, &crc, sizeof(CrcTables), cudaMemcpyHostToDevice));
  CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&impl->staging_free, cudaEventDisableTiming));
  CUDA_RETURN_IF_ERROR(cudaEventCreateWithFlags(&impl->graph_done, cudaEventDisableTiming));
  return std::unique_ptr<GpuEncoder>(new GpuEncoder(std::move(impl)));
}

Result<size_t> GpuEncoder::GetWorkspaceSize(const GpuEncodeItem* items, size_t count) {
  if (items == nullptr && count > 0) return InvalidArgument("null batch");
  std::vector<EncodeRequest> requests(count);
  for (size_t i = 0; i < count; ++i) {
    requests[i].in = items[i].in_dev;
    requests[i].dtype = items[i].dtype;
    requests[i].shape = items[i].shape.data();
    requests[i].rank = static_cast<int>(items[i].shape.size());
    requests[i].out = items[i].out_dev;
    requests[i].out_capacity = items[i].out_capacity;
  }
  EncodeLayout layout;
  SPLITRANS_RETURN_IF_ERROR(PlanEncode(requests.data(), count, kMinQ, &layout, nullptr));
  return layout.total;
}

Status GpuEncoder::EncodeBatchAsync(const GpuEncodeItem* items, size_t count, int q, void* workspace_dev,
                                    size_t workspace_bytes, GpuItemResult* results_dev, cudaStream_t stream) {
  Impl& m = *impl_;
  DeviceGuard guard(m.device);
  EncodeLayout layout;
  SPLITRANS_RETURN_IF_ERROR(m.Plan(items, count, q, &layout));
  if (workspace_dev == nullptr || reinterpret_cast<uintptr_t>(workspace_dev) % 256 != 0) {
    return InvalidArgument("workspace must be a 256-byte aligned device pointer");
  }
  if (workspace_bytes < layout.total) {
    return InvalidArgument("workspace holds " + std::to_string(workspace_bytes) + " bytes, the batch needs " +
                           std::to_string(layout.total));
  }
  if (results_dev == nullptr) return InvalidArgument("results_dev is null");
  return m.Enqueue(layout, count, q, static_cast<uint8_t*>(workspace_dev), results_dev, stream);
}

Status GpuEncoder::EncodeBatch(const GpuEncodeItem* items, size_t count, int q, cudaStream_t stream,
                               std::vector<GpuItemResult>* results) {
  Impl& m = *impl_;
  DeviceGuard guard(m.device);
  EncodeLayout layout;
  SPLITRANS_RETURN_IF_ERROR(m.Plan(items, count, q, &layout));
  if (m.ws_cap < layout.total) {
    SPLITRANS_RETURN_IF_ERROR(m.RetireGraph());  // it refers to the old workspace
    FreeDevice(m.ws);
    m.ws_cap = 0;
    CUDA_RETURN_IF_ERROR(cudaMalloc(&m.ws, layout.total));
    m.ws_cap = layout.total;
  }
  if (m.res_cap < count) {
    SPLITRANS_RETURN_IF_ERROR(m.RetireGraph());  // it refers to the old results
    FreeDevice(m.res_dev);
    FreeHost(m.res_host);
    m.res_cap = 0;
    CUDA_RETURN_IF_ERROR(cudaMalloc(&m.res_dev, count * sizeof(GpuItemResult)));
    CUDA_RETURN_IF_ERROR(cudaMallocHost(&m.res_host, count * sizeof(GpuItemResult)));
    m.res_cap = count;
  }
  SPLITRANS_RETURN_IF_ERROR(m.Enqueue(layout, count, q, m.ws, m.res_dev, stream));
  CUDA_RETURN_IF_ERROR(
      cudaMemcpyAsync(m.res_host, m.res_dev, count * sizeof(GpuItemResult), cudaMemcpyDeviceToHost, stream));
  CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  if (results) results->assign(m.res_host, m.res_host + count);
  for (size_t i = 0; i < count; ++i) {
    if (m.res_host[i].code != kCodeOk) return ItemStatus(i, m.res_host[i]);
  }
  return Status::Ok();
}

Status GpuEncoder::Encode(const GpuEncodeItem& item, int q, cudaStream_t stream, size_t* size) {
  Impl& m = *impl_;
  std::vector<GpuItemResult>* none = nullptr;
  Status st = EncodeBatch(&item, 1, q, stream, none);
  if (size) *size = st.ok() ? static_cast<size_t>(m.res_host[0].size) : 0;
  if (!st.ok() && st.message().rfind("item 0: ", 0) == 0) return Status(st.code(), st.message().substr(8));
  return st;
}

}  // namespace splitrans::codec::gpu

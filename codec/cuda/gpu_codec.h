// CUDA dense codec: encodes float32/float16 tensors that live in GPU memory into the splitrans
// bitstream (FORMAT.md, layout 1 "dense" or 0 "constant"), byte for byte what the CPU Encoder
// writes with Mode::kDense, and decodes bitstreams into float32 GPU memory. Knows nothing of
// Torch or gRPC.
//
// - Batches: many tensors are coded by one sequence of launches; sizes and per-item status stay
//   in device memory (GpuItemResult) and are copied back once, when the caller asks.
// - Decoding validates every header, table and block index on the host first (FORMAT.md order,
//   the CPU Decoder's error codes) and launches no decode kernel on a bitstream that failed.
//   Device-resident bitstreams are first checksummed by a kernel that reads only the caller's
//   [data, data + size) and copies back the bytes the host parses. Layouts other than dense and
//   constant (sparse, paper, context) are decoded on the CPU and copied to the GPU.
// - Constant tensors of zeros (of either sign) are written with +0.0, as by the CPU encoder.
// - GpuEncoder / GpuDecoder are not thread-safe (one per thread or stream); they keep device
//   tables and scratch buffers so that steady-state calls do not allocate. They use the device
//   that was current when they were created.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "codec/status.h"

namespace splitrans::codec::gpu {

// True when a CUDA device can run this build's kernels. Any runtime error (no driver: error
// 35, no device: 100, no kernel image for the device) means "no GPU": the error is cleared
// and *why (nullable) receives the reason.
bool GpuAvailable(std::string* why = nullptr);

// Bytes the encoder may write for a tensor of `elements` elements and this rank. Output
// buffers must hold at least this much.
size_t MaxCompressedSize(uint64_t elements, int rank = kMaxRank);

// One tensor to encode.
struct GpuEncodeItem {
  const void* in_dev = nullptr;  // device: product(shape) elements of dtype, C order; null iff empty
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;    // rank 1..8
  uint8_t* out_dev = nullptr;    // device: out_capacity bytes, >= MaxCompressedSize(elements, rank)
  size_t out_capacity = 0;
};

// Per-item outcome, written by the kernels (device memory) and copied back by EncodeBatch.
struct GpuItemResult {
  uint32_t code = 0;    // codec::ErrorCode: kOk, or kInvalidArgument (see detail)
  uint32_t detail = 0;  // 1: NaN/Inf, 2: range too large for a float32 scale, 3: |zero point| > 2^24
  uint64_t size = 0;    // encoded bytes at out_dev
};

struct GpuEncoderOptions {
  // Replays the whole launch sequence as one CUDA graph when a call repeats the previous call's
  // items, pointers and workspace (latency of small tensors). Needs a non-default stream.
  bool use_cuda_graph = false;
};

class GpuEncoder {
 public:
  // Allocates the device tables on the current device. Errors: UNAVAILABLE without a GPU.
  static Result<std::unique_ptr<GpuEncoder>> Create(const GpuEncoderOptions& options = {});
  ~GpuEncoder();
  GpuEncoder(const GpuEncoder&) = delete;
  GpuEncoder& operator=(const GpuEncoder&) = delete;

  // Device workspace EncodeBatchAsync needs for these items. Errors: INVALID_ARGUMENT.
  static Result<size_t> GetWorkspaceSize(const GpuEncodeItem* items, size_t count);

  // Enqueues the encoding of items[0, count) at q bits on stream and returns without waiting.
  // workspace_dev: device, >= GetWorkspaceSize bytes, 256-byte aligned, not shared with work in
  // flight. results_dev: device, count entries, written when the work completes. Host-side
  // errors (shapes, sizes, q, capacities) are returned before anything is enqueued; per-item
  // errors (NaN/Inf) land in results_dev. The items' memory must stay valid until completion.
  Status EncodeBatchAsync(const GpuEncodeItem* items, size_t count, int q, void* workspace_dev,
                          size_t workspace_bytes, GpuItemResult* results_dev, cudaStream_t stream);

  // EncodeBatchAsync with an internal workspace, then one copy of the results to the host and
  // a stream synchronization. results: host (nullable). Returns the first item's error, if any.
  Status EncodeBatch(const GpuEncodeItem* items, size_t count, int q, cudaStream_t stream,
                     std::vector<GpuItemResult>* results = nullptr);

  // One tensor; *size (nullable) receives the encoded bytes.
  Status Encode(const GpuEncodeItem& item, int q, cudaStream_t stream, size_t* size);

  struct Impl;

 private:
  explicit GpuEncoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Where the bitstreams of a decode batch are.
enum class MemorySpace : uint8_t { kHost = 0, kDevice = 1 };

// One bitstream to decode.
struct GpuDecodeItem {
  const uint8_t* data = nullptr;  // host or device (see DecodeBatch): size bytes
  size_t size = 0;
  float* out_dev = nullptr;       // device: capacity floats
  size_t capacity = 0;
};

class GpuDecoder {
 public:
  // Errors: UNAVAILABLE without a GPU.
  static Result<std::unique_ptr<GpuDecoder>> Create(const DecodeLimits& limits = {});
  ~GpuDecoder();
  GpuDecoder(const GpuDecoder&) = delete;
  GpuDecoder& operator=(const GpuDecoder&) = delete;

  // Decodes items[0, count) into float32 device memory on stream and waits for it.
  // Host bitstreams are validated in place and their payloads uploaded; device bitstreams are
  // checksummed on the GPU and only their headers, tables and block indexes are copied to the
  // host for validation. statuses (nullable) receives one status per item and shapes (nullable)
  // the decoded shapes. Returns OK when every item decoded, else the first failure ("item i: ...").
  Status DecodeBatch(const GpuDecodeItem* items, size_t count, MemorySpace input, cudaStream_t stream,
                     std::vector<Status>* statuses = nullptr,
                     std::vector<std::vector<int64_t>>* shapes = nullptr);

  // One bitstream.
  Status Decode(const GpuDecodeItem& item, MemorySpace input, cudaStream_t stream,
                std::vector<int64_t>* shape = nullptr);

  // Replaces the limits for the following calls (as Decoder::SetLimits).
  void SetLimits(const DecodeLimits& limits);

  struct Impl;

 private:
  explicit GpuDecoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace splitrans::codec::gpu

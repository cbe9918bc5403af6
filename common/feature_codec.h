// The services' codec front: host float tensors in and out, coded on the GPU where one is usable
// and the layout allows it (dense encode; dense and constant decode), else by the CPU codec.
// The bytes are the same either way (codec/cuda/README.md), so edges and clouds of either kind
// interoperate. Thread-safe: CPU work runs on per-thread codec objects; GPU work is serialized
// on one stream.
#pragma once

#include <absl/status/statusor.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codec/codec.h"

namespace splitrans {

enum class CodecDevice { kAuto, kCpu, kGpu };

// "auto" | "cpu" | "gpu"; false for anything else.
bool ParseCodecDevice(const std::string& s, CodecDevice* device);
const char* CodecDeviceName(CodecDevice device);

struct FeatureCodecOptions {
  std::string name = "codec";  // log prefix: "edge", "cloud"
  // kAuto: the GPU when one is usable (one log line says which and why not);
  // kGpu: Create() fails without a usable GPU; kCpu: never touch CUDA.
  CodecDevice device = CodecDevice::kAuto;
  codec::DecodeLimits limits;
};

// Where a call ran.
enum class CodecPath { kCpu, kGpu };

class FeatureCodec {
 public:
  // FAILED_PRECONDITION when device is kGpu and no GPU is usable (or the build has no CUDA).
  static absl::StatusOr<std::unique_ptr<FeatureCodec>> Create(const FeatureCodecOptions& options);
  ~FeatureCodec();

  // True when GPU calls are possible; description() says which device, or why not.
  bool gpu() const;
  const std::string& description() const { return description_; }

  // Encodes a host tensor into *out. Mode::kDense runs on the GPU when gpu(); every other mode
  // on the CPU (the GPU codes the dense layout only). *path (nullable) says where it ran.
  codec::Status Encode(const codec::TensorView& tensor, const codec::EncodeOptions& options,
                       std::vector<uint8_t>* out, CodecPath* path = nullptr);

  // Decodes into *out (host). Dense and constant bitstreams run on the GPU when gpu().
  // limits (nullable): this call's limits instead of the options' (a server passes the shape
  // it accepts for this request); the header is parsed and checksummed once either way.
  codec::Status Decode(const uint8_t* data, size_t size, codec::DecodedTensor* out,
                       CodecPath* path = nullptr, const codec::DecodeLimits* limits = nullptr);

  struct Gpu;  // CUDA state (feature_codec.cc); null on the CPU-only path

 private:
  FeatureCodec() = default;
  FeatureCodecOptions options_;
  std::string description_;
  std::unique_ptr<Gpu> gpu_;
};

}  // namespace splitrans

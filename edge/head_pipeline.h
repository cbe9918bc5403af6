// The edge's core, without gRPC: input images/tensors -> preprocessing -> head model -> codec
// bitstream. Thread-safe: Run() may be called from many threads (one codec::Encoder per thread).
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "codec/codec.h"
#include "common/feature_codec.h"
#include "common/feature_payload.h"
#include "common/limits.h"
#include "common/model_repository.h"
#include "common/torch_module.h"

namespace splitrans::edge {

struct HeadPipelineOptions {
  std::string model_repo = "models";
  CodecDevice codec_device = CodecDevice::kAuto;  // GPU encode (dense mode) where usable
  // Decoded pixels (sum of width x height over a request's images) one request may cost.
  int64_t max_request_pixels = kDefaultMaxRequestPixels;
};

// One request's input batch, in one of five forms (pointers are borrowed for the call): four for
// image models, kTokens for token models (manifest input.kind "tokens").
struct EdgeInput {
  enum class Kind { kEncodedImages, kPixelsU8, kFloat32, kUnitFloat32, kTokens };
  Kind kind = Kind::kFloat32;
  int64_t batch = 0;
  std::vector<std::string_view> images;  // kEncodedImages: one PNG/JPEG per batch element
  const uint8_t* pixels = nullptr;       // kPixelsU8: batch * C*H*W raw pixels (0..255)
  // kFloat32: batch * C*H*W normalized model input, (pixel/255 - mean) / std;
  // kUnitFloat32: the same count of pixel/255 values in [0, 1], normalized here.
  const float* values = nullptr;
  const int64_t* tokens = nullptr;  // kTokens: batch * T token ids, each in [0, vocab)
};

// Asked between the stages of a request (and between its images): a non-OK status (the
// request's deadline passed, the client cancelled) stops the work and is returned.
using StageCheck = std::function<absl::Status(const char* next_stage)>;

struct HeadRequest {
  std::string model_name;
  std::string model_version;  // "" = latest
  std::string split;          // "" = manifest default
  codec::EncodeOptions encode;
  // kSplit: head + feature coding (wire); kOffload: the input as it will cross the link (encoded
  // images as they came, tensors as normalized float32, token ids as int32), no model; kLocal:
  // the unsplit model.
  Placement placement = Placement::kSplit;
  FeatureWire wire = FeatureWire::kSrns;
  EdgeInput input;
};

// What a request sends to the cloud (or, for kLocal, its answer).
struct EncodedFeature {
  PayloadKind payload = PayloadKind::kSrns;
  // The payload: codec bitstream, raw or zstd feature, the input's pixels, float32 values or
  // encoded images (in KServe's raw BYTES framing).
  std::vector<uint8_t> bytes;
  std::vector<int64_t> feature_shape;  // [B, ...] of the feature (offload: of the model input, [B, T] for tokens)
  codec::QuantParams aiq;              // kZstdAiq
  // float32 size before compression (offload: of the model input; tokens: the int32 ids' size,
  // which is also the payload: nothing is compressed)
  uint64_t raw_feature_bytes = 0;
  uint64_t payload_bytes = 0;          // bytes.size()
  // kLocal: the unsplit model's logits [B, classes] (head_us is its time); nothing is sent.
  std::vector<float> logits;
  std::vector<int64_t> logits_shape;
  int64_t preprocess_us = 0, head_us = 0, encode_us = 0;
  CodecPath encode_path = CodecPath::kCpu;  // where the feature was encoded
  const ModelManifest* manifest = nullptr;
  std::string split;  // "full" for kOffload and kLocal
};

class HeadPipeline {
 public:
  // Loads the head of every split of every model version in the repository, and the unsplit
  // model where the manifest names one (placement "local").
  static absl::StatusOr<std::unique_ptr<HeadPipeline>> Create(const HeadPipelineOptions& options);

  // NOT_FOUND: unknown model/version/split; INVALID_ARGUMENT: bad input or options, an input
  // over the pixel budget, or a head output that is not finite; FAILED_PRECONDITION: kLocal for a
  // model without an unsplit model; INTERNAL: the model failed.
  // check (nullable) is asked before each stage and between images.
  absl::StatusOr<EncodedFeature> Run(const HeadRequest& request, const StageCheck& check = nullptr) const;

  const ModelRepository& repository() const { return repo_; }
  const FeatureCodec& codec() const { return *codec_; }

 private:
  HeadPipeline(HeadPipelineOptions options, ModelRepository repo)
      : options_(std::move(options)), repo_(std::move(repo)) {}
  HeadPipelineOptions options_;
  ModelRepository repo_;
  std::unique_ptr<FeatureCodec> codec_;
  std::map<std::tuple<std::string, int64_t, std::string>, std::unique_ptr<TorchModule>> heads_;
  std::map<std::tuple<std::string, int64_t>, std::unique_ptr<TorchModule>> fulls_;
};

}  // namespace splitrans::edge

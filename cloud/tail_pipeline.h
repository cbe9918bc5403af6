// The cloud's core, without gRPC: codec bitstream (or a baseline payload) -> decoded feature ->
// tail model -> logits and top-k; for full offload, the model input (or token ids) -> the unsplit model. Thread-safe: Run() may be called from many threads at once (one codec::Decoder per
// thread).
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "cloud/feature_decode.h"
#include "common/feature_codec.h"
#include "common/limits.h"
#include "common/model_repository.h"
#include "common/topk.h"
#include "common/torch_module.h"

namespace splitrans::cloud {

struct TailPipelineOptions {
  std::string model_repo = "models";
  int default_top_k = 5;
  uint64_t max_feature_elements = uint64_t{1} << 26;
  CodecDevice codec_device = CodecDevice::kAuto;  // GPU decode (dense layout) where usable
  // Full offload: decoded pixels (sum of width x height over a request's images) one request may cost.
  int64_t max_request_pixels = kDefaultMaxRequestPixels;
};

struct TailResult {
  std::vector<float> logits;          // [B, num_classes], C order
  std::vector<int64_t> logits_shape;
  std::vector<TopKEntry> topk;      // top_k per batch element, best first
  int64_t decode_us = 0;               // full offload: decoding and normalizing the input
  CodecPath decode_path = CodecPath::kCpu;  // where the feature was decoded
  int64_t tail_us = 0;                 // full offload: the unsplit model
  std::string model_version;
};

class TailPipeline {
 public:
  // Loads the tail of every split of every model version in the repository, and its unsplit
  // model where the manifest names one (for full offload).
  static absl::StatusOr<std::unique_ptr<TailPipeline>> Create(const TailPipelineOptions& options);

  // NOT_FOUND: unknown model/version/split; INVALID_ARGUMENT / DATA_LOSS: bad bitstream (see
  // common/status_util.h), a feature shape that does not match the manifest, or logits that
  // are not finite; INTERNAL: the model failed. Full offload (request.payload kInputImages,
  // kInputF32, kInputU8 or kInputTokens): INVALID_ARGUMENT for a bad input (a token id outside the
  // vocabulary, a payload of another kind than the model takes) or one over the pixel budget,
  // FAILED_PRECONDITION when the model has no unsplit model.
  absl::StatusOr<TailResult> Run(const FeatureRequest& request) const;

  const ModelRepository& repository() const { return repo_; }
  const FeatureCodec& codec() const { return *codec_; }

 private:
  TailPipeline(TailPipelineOptions options, ModelRepository repo)
      : options_(std::move(options)), repo_(std::move(repo)) {}

  TailPipelineOptions options_;
  ModelRepository repo_;
  std::unique_ptr<FeatureCodec> codec_;
  absl::StatusOr<TailResult> RunFull(const FeatureRequest& request) const;
  // Logits of out_shape checked, then top-k into *result.
  absl::Status Finalize(const ModelManifest& m, const std::string& what, int64_t batch,
                        const std::vector<int64_t>& out_shape, int top_k, TailResult* result) const;

  // (model, version, split) -> tail module
  std::map<std::tuple<std::string, int64_t, std::string>, std::unique_ptr<TorchModule>> tails_;
  // (model, version) -> unsplit model
  std::map<std::tuple<std::string, int64_t>, std::unique_ptr<TorchModule>> fulls_;
};

}  // namespace splitrans::cloud

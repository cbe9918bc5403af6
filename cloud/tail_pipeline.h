// The cloud's core, without gRPC: codec bitstream -> decoded feature -> tail model -> logits and
// top-k. Thread-safe: Run() may be called from many threads at once (one codec::Decoder per
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
#include "common/model_repository.h"
#include "common/topk.h"
#include "common/torch_module.h"

namespace splitrans::cloud {

struct TailPipelineOptions {
  std::string model_repo = "models";
  int default_top_k = 5;
  uint64_t max_feature_elements = uint64_t{1} << 26;
  CodecDevice codec_device = CodecDevice::kAuto;  // GPU decode (dense layout) where usable
};

struct TailResult {
  std::vector<float> logits;          // [B, num_classes], C order
  std::vector<int64_t> logits_shape;
  std::vector<TopKEntry> topk;      // top_k per batch element, best first
  int64_t decode_us = 0;
  CodecPath decode_path = CodecPath::kCpu;  // where the feature was decoded
  int64_t tail_us = 0;
  std::string model_version;
};

class TailPipeline {
 public:
  // Loads the tail of every split of every model version in the repository.
  static absl::StatusOr<std::unique_ptr<TailPipeline>> Create(const TailPipelineOptions& options);

  // NOT_FOUND: unknown model/version/split; INVALID_ARGUMENT / DATA_LOSS: bad bitstream (see
  // common/status_util.h), a feature shape that does not match the manifest, or logits that
  // are not finite; INTERNAL: the model failed.
  absl::StatusOr<TailResult> Run(const FeatureRequest& request) const;

  const ModelRepository& repository() const { return repo_; }
  const FeatureCodec& codec() const { return *codec_; }

 private:
  TailPipeline(TailPipelineOptions options, ModelRepository repo)
      : options_(std::move(options)), repo_(std::move(repo)) {}

  TailPipelineOptions options_;
  ModelRepository repo_;
  std::unique_ptr<FeatureCodec> codec_;
  // (model, version, split) -> tail module
  std::map<std::tuple<std::string, int64_t, std::string>, std::unique_ptr<TorchModule>> tails_;
};

}  // namespace splitrans::cloud

#include "cloud/tail_pipeline.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "codec/codec.h"
#include "common/clock.h"
#include "common/limits.h"
#include "common/status_util.h"

namespace splitrans::cloud {

absl::StatusOr<std::unique_ptr<TailPipeline>> TailPipeline::Create(
    const TailPipelineOptions& options) {
  auto repo = ModelRepository::Load(options.model_repo);
  if (!repo.ok()) return repo.status();
  std::unique_ptr<TailPipeline> p(new TailPipeline(options, std::move(*repo)));
  FeatureCodecOptions co;
  co.name = "cloud";
  co.device = options.codec_device;
  co.limits.max_elements = options.max_feature_elements;
  auto codec = FeatureCodec::Create(co);
  if (!codec.ok()) return codec.status();
  p->codec_ = std::move(*codec);
  for (const ModelManifest* m : p->repo_.All()) {
    for (const auto& [name, split] : m->splits) {
      auto mod = TorchModule::LoadAndWarmUp(split.tail_path, split.feature_shape);
      if (!mod.ok()) return mod.status();
      spdlog::info("cloud: loaded tail {}/{} split {} feature [{}] from {}", m->name, m->version,
                   name, absl::StrJoin(split.feature_shape, ","), split.tail_path);
      p->tails_[{m->name, m->version, name}] = std::move(*mod);
    }
  }
  return p;
}

absl::StatusOr<TailResult> TailPipeline::Run(const FeatureRequest& req) const {
  if (req.top_k < 0 || req.top_k > kMaxTopK) {
    return absl::InvalidArgumentError(absl::StrCat("top_k must be in [0, ", kMaxTopK, "]"));
  }
  Stopwatch sw;
  // Per thread: keeps its capacity across requests.
  thread_local codec::DecodedTensor feature;
  DecodedFeature decoded;
  if (auto st = DecodeFeature(req, repo_, *codec_, options_.max_feature_elements, &feature, &decoded); !st.ok()) {
    return st;
  }
  const ModelManifest& m = *decoded.manifest;
  const SplitSpec& s = *decoded.split;
  TailResult result;
  result.model_version = std::to_string(m.version);
  const std::vector<int64_t>& shape = decoded.shape;
  result.decode_path = decoded.path;
  result.decode_us = sw.Lap();

  const TorchModule& tail = *tails_.at({m.name, m.version, s.name});
  std::vector<int64_t> out_shape;
  absl::Status ts = tail.Forward(feature.values.data(), shape, &result.logits, &out_shape);
  if (!ts.ok()) return absl::InternalError(absl::StrCat("tail ", s.name, ": ", ts.message()));
  if (out_shape.size() != 2 || out_shape[0] != shape[0] || out_shape[1] != m.NumClasses()) {
    return absl::InternalError(absl::StrCat("tail output shape [", absl::StrJoin(out_shape, ","),
                                            "] is not [B, ", m.NumClasses(), "]"));
  }
  for (size_t i = 0; i < result.logits.size(); ++i) {
    if (!std::isfinite(result.logits[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tail ", s.name, " output element ", i, " is not finite: the feature is outside the range the model handles"));
    }
  }
  result.tail_us = sw.Lap();
  result.logits_shape = out_shape;
  result.topk = SoftmaxTopK(result.logits, out_shape[0], out_shape[1],
                            req.top_k > 0 ? req.top_k : options_.default_top_k, m.labels);
  return result;
}

}  // namespace splitrans::cloud

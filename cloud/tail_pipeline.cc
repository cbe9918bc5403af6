#include "cloud/tail_pipeline.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "codec/codec.h"
#include "common/clock.h"
#include "common/image.h"
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
    if (!m->full_path.empty()) {
      auto full = TorchModule::LoadAndWarmUp(m->full_path, m->input_shape,
                                             m->IsTokens() ? InputDType::kInt64 : InputDType::kFloat32);
      if (!full.ok()) return full.status();
      spdlog::info("cloud: loaded unsplit model {}/{} from {} (full offload)", m->name, m->version, m->full_path);
      p->fulls_[{m->name, m->version}] = std::move(*full);
    }
  }
  return p;
}

absl::Status TailPipeline::Finalize(const ModelManifest& m, const std::string& what, int64_t batch,
                                    const std::vector<int64_t>& out_shape, int top_k, TailResult* result) const {
  if (out_shape.size() != 2 || out_shape[0] != batch || out_shape[1] != m.NumClasses()) {
    return absl::InternalError(absl::StrCat(what, " output shape [", absl::StrJoin(out_shape, ","),
                                            "] is not [B, ", m.NumClasses(), "]"));
  }
  for (size_t i = 0; i < result->logits.size(); ++i) {
    if (!std::isfinite(result->logits[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " output element ", i, " is not finite: the input is outside the range the model handles"));
    }
  }
  result->logits_shape = out_shape;
  result->topk = SoftmaxTopK(result->logits, out_shape[0], out_shape[1], top_k > 0 ? top_k : options_.default_top_k,
                             m.labels);
  return absl::OkStatus();
}

absl::StatusOr<TailResult> TailPipeline::RunFull(const FeatureRequest& req) const {
  auto found = repo_.Find(req.model_name, req.model_version);
  if (!found.ok()) return found.status();
  const ModelManifest& m = **found;
  auto full = fulls_.find({m.name, m.version});
  if (full == fulls_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat(m.name, "/", m.version, " has no unsplit model (manifest \"full\"): full offload is not possible"));
  }
  Stopwatch sw;
  TailResult result;
  result.model_version = std::to_string(m.version);
  thread_local std::vector<float> input;
  thread_local std::vector<int64_t> tokens;
  std::vector<int64_t> shape;
  if (req.payload == PayloadKind::kInputTokens) {
    if (auto st = DecodeOffloadTokens(req, m, options_.max_feature_elements, &tokens, &shape); !st.ok()) return st;
  } else if (m.IsTokens()) {
    return absl::InvalidArgumentError(absl::StrCat(m.name, "/", m.version,
                                                   " takes token ids: full offload needs PAYLOAD_INPUT_TOKENS"));
  } else if (req.payload != PayloadKind::kInputImages) {
    if (auto st = DecodeOffloadInput(req, m, options_.max_feature_elements, &input, &shape); !st.ok()) return st;
  } else {
    const int64_t batch = static_cast<int64_t>(req.images.size());
    if (batch < 1 || batch > kMaxBatch) {
      return absl::InvalidArgumentError(absl::StrCat("full offload: ", batch, " images, not in [1, ", kMaxBatch, "]"));
    }
    int64_t pixels = 0;
    for (int64_t b = 0; b < batch; ++b) {
      int w = 0, h = 0;
      const auto& img = req.images[b];
      absl::Status st = ImageDimensions(reinterpret_cast<const uint8_t*>(img.data()), img.size(), &w, &h);
      if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat("image ", b, ": ", st.message()));
      pixels += int64_t{w} * h;
    }
    if (pixels > options_.max_request_pixels) {
      return absl::InvalidArgumentError(absl::StrCat("full offload: the request's images decode to ", pixels,
                                                     " pixels, over the limit of ", options_.max_request_pixels));
    }
    const int64_t per = m.InputElements();
    if (static_cast<uint64_t>(batch * per) > options_.max_feature_elements) {
      return absl::InvalidArgumentError(absl::StrCat("full offload: ", batch, " images of ", per,
                                                     " input values each are over this server's limit of ",
                                                     options_.max_feature_elements));
    }
    input.resize(batch * per);
    for (int64_t b = 0; b < batch; ++b) {
      const auto& img = req.images[b];
      absl::Status st =
          DecodeImageToInput(reinterpret_cast<const uint8_t*>(img.data()), img.size(), m, input.data() + b * per);
      if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat("image ", b, ": ", st.message()));
    }
    shape = {batch};
    shape.insert(shape.end(), m.input_shape.begin(), m.input_shape.end());
  }
  result.decode_us = sw.Lap();
  std::vector<int64_t> out_shape;
  absl::Status fs = req.payload == PayloadKind::kInputTokens
                        ? full->second->Forward(tokens.data(), shape, &result.logits, &out_shape)
                        : full->second->Forward(input.data(), shape, &result.logits, &out_shape);
  if (!fs.ok()) return absl::InternalError(absl::StrCat("unsplit model: ", fs.message()));
  if (auto st = Finalize(m, "unsplit model", shape[0], out_shape, req.top_k, &result); !st.ok()) return st;
  result.tail_us = sw.Lap();
  return result;
}

absl::StatusOr<TailResult> TailPipeline::Run(const FeatureRequest& req) const {
  if (req.top_k < 0 || req.top_k > kMaxTopK) {
    return absl::InvalidArgumentError(absl::StrCat("top_k must be in [0, ", kMaxTopK, "]"));
  }
  if (IsFullOffload(req.payload)) return RunFull(req);
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
  if (auto st = Finalize(m, absl::StrCat("tail ", s.name), shape[0], out_shape, req.top_k, &result); !st.ok()) {
    return st;
  }
  result.tail_us = sw.Lap();
  return result;
}

}  // namespace splitrans::cloud

#include "edge/head_pipeline.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "common/clock.h"
#include "common/image.h"
#include "common/kserve_protocol.h"
#include "common/limits.h"
#include "common/status_util.h"

namespace splitrans::edge {

absl::StatusOr<std::unique_ptr<HeadPipeline>> HeadPipeline::Create(
    const HeadPipelineOptions& options) {
  auto repo = ModelRepository::Load(options.model_repo);
  if (!repo.ok()) return repo.status();
  std::unique_ptr<HeadPipeline> p(new HeadPipeline(options, std::move(*repo)));
  FeatureCodecOptions co;
  co.name = "edge";
  co.device = options.codec_device;
  auto codec = FeatureCodec::Create(co);
  if (!codec.ok()) return codec.status();
  p->codec_ = std::move(*codec);
  for (const ModelManifest* m : p->repo_.All()) {
    const InputDType dtype = m->IsTokens() ? InputDType::kInt64 : InputDType::kFloat32;
    for (const auto& [name, split] : m->splits) {
      std::vector<int64_t> out_shape;
      auto mod = TorchModule::LoadAndWarmUp(split.head_path, m->input_shape, dtype, &out_shape);
      if (!mod.ok()) return mod.status();
      std::vector<int64_t> expect = {1};
      expect.insert(expect.end(), split.feature_shape.begin(), split.feature_shape.end());
      if (out_shape != expect) {
        return absl::InvalidArgumentError(
            absl::StrCat(split.head_path, ": output [", absl::StrJoin(out_shape, ","),
                         "] does not match the manifest feature_shape"));
      }
      spdlog::info("edge: loaded head {}/{} split {} from {}", m->name, m->version, name,
                   split.head_path);
      p->heads_[{m->name, m->version, name}] = std::move(*mod);
    }
    if (!m->full_path.empty()) {
      auto full = TorchModule::LoadAndWarmUp(m->full_path, m->input_shape, dtype);
      if (!full.ok()) return full.status();
      spdlog::info("edge: loaded unsplit model {}/{} from {} (placement local)", m->name, m->version, m->full_path);
      p->fulls_[{m->name, m->version}] = std::move(*full);
    }
  }
  return p;
}

absl::StatusOr<EncodedFeature> HeadPipeline::Run(const HeadRequest& req, const StageCheck& check) const {
  auto stage = [&](const char* next) { return check ? check(next) : absl::OkStatus(); };
  // The unsplit placements ignore the split.
  const bool unsplit = req.placement != Placement::kSplit;
  auto resolved = repo_.Resolve(req.model_name, req.model_version, unsplit ? "" : req.split);
  if (!resolved.ok()) return resolved.status();
  const ModelManifest& m = *resolved->manifest;
  const SplitSpec& s = *resolved->split;
  const EdgeInput& in = req.input;
  if (req.placement == Placement::kLocal && !fulls_.count({m.name, m.version})) {
    return absl::FailedPreconditionError(absl::StrCat(
        m.name, "/", m.version, " has no unsplit model (manifest \"full\"): placement local is not possible"));
  }
  if (in.batch < 1 || in.batch > kMaxBatch) {
    return absl::InvalidArgumentError(absl::StrCat("batch size ", in.batch, " not in [1, ", kMaxBatch, "]"));
  }
  if (req.encode.q < codec::kMinQ || req.encode.q > codec::kMaxQ) {
    return absl::InvalidArgumentError(
        absl::StrCat("q must be in [", codec::kMinQ, ", ", codec::kMaxQ, "], got ", req.encode.q));
  }
  if (m.IsTokens() != (in.kind == EdgeInput::Kind::kTokens)) {
    return absl::InvalidArgumentError(absl::StrCat(m.name, "/", m.version, " takes ",
                                                   m.IsTokens() ? "token ids" : "images or image tensors", ", not ",
                                                   in.kind == EdgeInput::Kind::kTokens ? "token ids" : "images"));
  }
  if (auto st = stage("preprocess"); !st.ok()) return st;

  EncodedFeature out;
  out.manifest = &m;
  out.split = unsplit ? "full" : s.name;
  Stopwatch sw;
  const int64_t per = m.InputElements();
  std::vector<int64_t> shape = {in.batch};
  shape.insert(shape.end(), m.input_shape.begin(), m.input_shape.end());
  thread_local std::vector<float> input;
  const float* input_ptr = nullptr;
  const int64_t* tokens_ptr = nullptr;  // kTokens: the model input instead of input_ptr
  switch (in.kind) {
    case EdgeInput::Kind::kTokens:
      for (int64_t i = 0; i < in.batch * per; ++i) {
        if (in.tokens[i] < 0 || in.tokens[i] >= m.vocab) {
          return absl::InvalidArgumentError(absl::StrCat("token id ", in.tokens[i], " at position ", i,
                                                         " is outside the vocabulary [0, ", m.vocab, ")"));
        }
      }
      if (req.placement == Placement::kOffload) {  // the ids go as int32: the cloud runs the unsplit model
        out.payload = PayloadKind::kInputTokens;
        EncodeTokensInt32(in.tokens, static_cast<size_t>(in.batch * per), &out.bytes);
        out.payload_bytes = out.bytes.size();
        out.feature_shape = shape;
        out.raw_feature_bytes = out.bytes.size();  // nothing is compressed
        out.preprocess_us = sw.Lap();
        return out;
      }
      tokens_ptr = in.tokens;
      break;
    case EdgeInput::Kind::kEncodedImages: {
      if (static_cast<int64_t>(in.images.size()) != in.batch) {
        return absl::InvalidArgumentError("number of images does not match the batch size");
      }
      // The decoding cost of the whole request is bounded before any image is decoded.
      int64_t pixels = 0;
      for (int64_t b = 0; b < in.batch; ++b) {
        const auto& img = in.images[b];
        int w = 0, h = 0;
        absl::Status st = ImageDimensions(reinterpret_cast<const uint8_t*>(img.data()), img.size(), &w, &h);
        if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat("batch element ", b, ": ", st.message()));
        pixels += int64_t{w} * h;
      }
      if (pixels > options_.max_request_pixels) {
        return absl::InvalidArgumentError(absl::StrCat("the request's ", in.batch, " images decode to ", pixels,
                                                       " pixels, over the limit of ", options_.max_request_pixels,
                                                       " per request (--max-request-pixels)"));
      }
      if (req.placement == Placement::kOffload) {  // the images go as they came: the cloud decodes them
        out.payload = PayloadKind::kInputImages;
        std::string framed;
        for (const auto& img : in.images) kserve::AppendRawBytes(img, &framed);
        out.bytes.assign(framed.begin(), framed.end());
        out.payload_bytes = out.bytes.size();
        out.feature_shape = {in.batch};
        out.raw_feature_bytes = static_cast<uint64_t>(in.batch * per) * sizeof(float);
        out.preprocess_us = sw.Lap();
        return out;
      }
      input.resize(in.batch * per);
      for (int64_t b = 0; b < in.batch; ++b) {
        if (b > 0) {
          if (auto st = stage("the next image"); !st.ok()) return st;
        }
        const auto& img = in.images[b];
        absl::Status st = DecodeImageToInput(reinterpret_cast<const uint8_t*>(img.data()),
                                             img.size(), m, input.data() + b * per);
        if (!st.ok()) {
          return absl::InvalidArgumentError(absl::StrCat("batch element ", b, ": ", st.message()));
        }
      }
      input_ptr = input.data();
      break;
    }
    case EdgeInput::Kind::kPixelsU8:
      if (req.placement == Placement::kOffload) {  // the pixels go as they came
        out.payload = PayloadKind::kInputU8;
        out.bytes.assign(in.pixels, in.pixels + in.batch * per);
        out.payload_bytes = out.bytes.size();
        out.feature_shape = shape;
        out.raw_feature_bytes = static_cast<uint64_t>(in.batch * per) * sizeof(float);
        out.preprocess_us = sw.Lap();
        return out;
      }
      input.resize(in.batch * per);
      for (int64_t b = 0; b < in.batch; ++b) {
        NormalizePixels(in.pixels + b * per, m, input.data() + b * per);
      }
      input_ptr = input.data();
      break;
    case EdgeInput::Kind::kFloat32:
    case EdgeInput::Kind::kUnitFloat32:
      for (int64_t i = 0; i < in.batch * per; ++i) {
        if (!std::isfinite(in.values[i])) {
          return absl::InvalidArgumentError(absl::StrCat("input element ", i, " is not finite"));
        }
      }
      input_ptr = in.values;
      if (in.kind == EdgeInput::Kind::kUnitFloat32) {
        input.resize(in.batch * per);
        for (int64_t b = 0; b < in.batch; ++b) {
          NormalizeUnit(in.values + b * per, m, input.data() + b * per);
        }
        input_ptr = input.data();
      }
      break;
  }
  out.preprocess_us = sw.Lap();
  if (req.placement == Placement::kOffload) {
    out.payload = PayloadKind::kInputF32;
    EncodeRawFloat32(input_ptr, static_cast<size_t>(in.batch * per), &out.bytes);
    out.payload_bytes = out.bytes.size();
    out.feature_shape = shape;
    out.raw_feature_bytes = out.bytes.size();
    out.encode_us = sw.Lap();
    return out;
  }
  if (auto st = stage("head"); !st.ok()) return st;
  if (req.placement == Placement::kLocal) {
    const TorchModule& full = *fulls_.at({m.name, m.version});
    absl::Status fs = tokens_ptr ? full.Forward(tokens_ptr, shape, &out.logits, &out.logits_shape)
                                 : full.Forward(input_ptr, shape, &out.logits, &out.logits_shape);
    if (!fs.ok()) return absl::InternalError(absl::StrCat("unsplit model: ", fs.message()));
    if (out.logits_shape.size() != 2 || out.logits_shape[0] != in.batch || out.logits_shape[1] != m.NumClasses()) {
      return absl::InternalError(absl::StrCat("unsplit model output [", absl::StrJoin(out.logits_shape, ","),
                                              "] is not [B, ", m.NumClasses(), "]"));
    }
    for (size_t i = 0; i < out.logits.size(); ++i) {
      if (!std::isfinite(out.logits[i])) {
        return absl::InvalidArgumentError(absl::StrCat("unsplit model output element ", i,
                                                       " is not finite: the input is outside the range the model handles"));
      }
    }
    out.head_us = sw.Lap();
    return out;
  }

  thread_local std::vector<float> feature;
  const TorchModule& head = *heads_.at({m.name, m.version, s.name});
  absl::Status hs = tokens_ptr ? head.Forward(tokens_ptr, shape, &feature, &out.feature_shape)
                               : head.Forward(input_ptr, shape, &feature, &out.feature_shape);
  if (!hs.ok()) return absl::InternalError(absl::StrCat("head ", s.name, ": ", hs.message()));
  std::vector<int64_t> expect = {in.batch};
  expect.insert(expect.end(), s.feature_shape.begin(), s.feature_shape.end());
  if (out.feature_shape != expect) {
    return absl::InternalError(absl::StrCat("head output [", absl::StrJoin(out.feature_shape, ","),
                                            "] differs from the manifest [", absl::StrJoin(expect, ","), "]"));
  }
  for (size_t i = 0; i < feature.size(); ++i) {
    if (!std::isfinite(feature[i])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "head ", s.name, " output element ", i, " is not finite: the input is outside the range the model handles",
          in.kind == EdgeInput::Kind::kFloat32 ? " (FP32 inputs are (pixel/255 - mean) / std)" : ""));
    }
  }
  out.head_us = sw.Lap();
  if (auto st = stage("encode"); !st.ok()) return st;

  switch (req.wire) {
    case FeatureWire::kSrns: {
      codec::TensorView view;
      view.data = feature.data();
      view.dtype = codec::DType::kFloat32;
      view.shape = out.feature_shape;
      codec::Status es = codec_->Encode(view, req.encode, &out.bytes, &out.encode_path);
      if (!es.ok()) return FromCodecStatus(es);
      out.payload = PayloadKind::kSrns;
      break;
    }
    case FeatureWire::kRaw:
      EncodeRawFloat32(feature.data(), feature.size(), &out.bytes);
      out.payload = PayloadKind::kRawF32;
      break;
    case FeatureWire::kZstd:
      if (auto zs = EncodeZstdAiq(feature.data(), feature.size(), req.encode.q, &out.bytes, &out.aiq, req.encode.quantizer); !zs.ok()) {
        return zs;
      }
      out.payload = PayloadKind::kZstdAiq;
      break;
  }
  out.payload_bytes = out.bytes.size();
  out.raw_feature_bytes = feature.size() * sizeof(float);
  out.encode_us = sw.Lap();
  return out;
}

}  // namespace splitrans::edge

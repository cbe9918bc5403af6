#include "cloud/feature_decode.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>

#include <algorithm>

#include "common/limits.h"
#include "common/status_util.h"

namespace splitrans::cloud {

absl::Status DecodeFeature(const FeatureRequest& req, const ModelRepository& repo, FeatureCodec& codec,
                           uint64_t max_elements, codec::DecodedTensor* tensor, DecodedFeature* out) {
  auto resolved = repo.Resolve(req.model_name, req.model_version, req.split);
  if (!resolved.ok()) return resolved.status();
  const ModelManifest& m = *resolved->manifest;
  const SplitSpec& s = *resolved->split;
  uint64_t per = 1;
  for (int64_t d : s.feature_shape) per *= static_cast<uint64_t>(d);
  // The largest tensor this split accepts bounds every allocation of the decode; the exact
  // shape is checked once the header is read, before the payload is decoded.
  codec::DecodeLimits limits;
  limits.max_elements = std::min<uint64_t>(max_elements, per * kMaxBatch);
  absl::Status shape_error;
  limits.accept_shape = [&](const std::vector<int64_t>& declared) {
    const bool with_batch = declared.size() == s.feature_shape.size() + 1;
    const bool ok = (with_batch && declared[0] >= 1 && declared[0] <= kMaxBatch &&
                     std::equal(s.feature_shape.begin(), s.feature_shape.end(), declared.begin() + 1)) ||
                    declared == s.feature_shape;
    if (ok) return codec::Status::Ok();
    shape_error = absl::InvalidArgumentError(absl::StrCat(
        "feature shape [", absl::StrJoin(declared, ","), "] does not match ", m.name, "/", m.version, " split ",
        s.name, " feature shape [B,", absl::StrJoin(s.feature_shape, ","), "] (B <= ", kMaxBatch, ")"));
    return codec::InvalidArgument(std::string(shape_error.message()));
  };
  const codec::Status cs = codec.Decode(req.codec_bytes, req.codec_size, tensor, &out->path, &limits);
  if (!shape_error.ok()) return shape_error;
  if (!cs.ok()) return FromCodecStatus(cs);
  out->manifest = &m;
  out->split = &s;
  out->shape = tensor->shape;
  if (out->shape.size() == s.feature_shape.size()) out->shape.insert(out->shape.begin(), 1);
  return absl::OkStatus();
}

}  // namespace splitrans::cloud

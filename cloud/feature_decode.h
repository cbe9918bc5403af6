// The cloud's packet handling up to the model, without Torch or gRPC: resolve the request's
// model, version and split, then decode its feature with that split's shape as the limit (the
// header is parsed and checksummed once, and nothing beyond the largest accepted tensor is
// allocated). Shared by TailPipeline and the packet fuzzer. Thread-safe.
#pragma once

#include <absl/status/statusor.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "common/feature_codec.h"
#include "common/model_repository.h"

namespace splitrans::cloud {

struct FeatureRequest {
  std::string model_name;
  std::string model_version;  // "" = latest
  std::string split;          // "" = the manifest's default split
  const uint8_t* codec_bytes = nullptr;
  size_t codec_size = 0;
  int top_k = 0;              // 0 = default
};

struct DecodedFeature {
  const ModelManifest* manifest = nullptr;
  const SplitSpec* split = nullptr;
  std::vector<int64_t> shape;    // [B, C, H, W] (a [C, H, W] feature gets B = 1)
  CodecPath path = CodecPath::kCpu;
};

// NOT_FOUND: unknown model, version or split; INVALID_ARGUMENT: a feature shape other than
// [B, C, H, W] with B in 1..kMaxBatch and C, H, W the split's (or [C, H, W]), or a bitstream this
// server does not accept; DATA_LOSS: a damaged bitstream (common/status_util.h). max_elements
// caps the tensor further. *tensor receives the values (it keeps its capacity across calls).
absl::Status DecodeFeature(const FeatureRequest& request, const ModelRepository& repo, FeatureCodec& codec,
                           uint64_t max_elements, codec::DecodedTensor* tensor, DecodedFeature* out);

}  // namespace splitrans::cloud

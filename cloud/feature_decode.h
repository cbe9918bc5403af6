// The cloud's packet handling up to the model, without Torch or gRPC: read the packet, resolve the request's
// model, version and split, then decode its feature with that split's shape as the limit (the
// header is parsed and checksummed once, and nothing beyond the largest accepted tensor is
// allocated). Shared by TailPipeline and the packet fuzzer. Thread-safe.
#pragma once

#include <absl/status/statusor.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "codec/codec.h"
#include "codec/quantize.h"
#include "common/feature_codec.h"
#include "common/feature_payload.h"
#include "common/model_repository.h"
#include "proto/split_inference.pb.h"

namespace splitrans::cloud {

struct FeatureRequest {
  std::string model_name;
  std::string model_version;  // "" = latest
  std::string split;          // "" = the manifest's default split (ignored for full offload)
  PayloadKind payload = PayloadKind::kSrns;
  const uint8_t* codec_bytes = nullptr;  // kSrns: the bitstream; otherwise the payload (not kInputImages)
  size_t codec_size = 0;
  std::vector<int64_t> shape;       // kRawF32, kZstdAiq, kInputF32, kInputU8, kInputTokens: the declared shape
  int q = 0;                        // kZstdAiq: its AIQ parameters
  codec::QuantParams aiq;
  std::vector<std::string_view> images;  // kInputImages: one encoded image per batch element (views into codec_bytes)
  int top_k = 0;              // 0 = default
};

// A packet's model, version, split and payload into *req (views into p: valid while it lives;
// top_k is left to the caller). INVALID_ARGUMENT for an unknown payload kind, AIQ parameters out
// of range, or fields that do not belong to the kind.
absl::Status FromPacket(const v1::FeaturePacket& p, FeatureRequest* req);

struct DecodedFeature {
  const ModelManifest* manifest = nullptr;
  const SplitSpec* split = nullptr;
  std::vector<int64_t> shape;    // [B, feature_shape...] (a feature without the batch gets B = 1)
  CodecPath path = CodecPath::kCpu;
};

// A split's feature (kSrns, kRawF32, kZstdAiq). NOT_FOUND: unknown model, version or split;
// INVALID_ARGUMENT: a feature shape other than [B, feature_shape...] with B in 1..kMaxBatch (or
// feature_shape alone; [C, H, W], [tokens, dim], ...), a payload kind that is not a feature, or a
// bitstream this server does not accept; DATA_LOSS: a damaged bitstream or payload (common/status_util.h).
// max_elements caps the tensor further. *tensor receives the values (it keeps its capacity
// across calls).
absl::Status DecodeFeature(const FeatureRequest& request, const ModelRepository& repo, FeatureCodec& codec,
                           uint64_t max_elements, codec::DecodedTensor* tensor, DecodedFeature* out);

// The model input of a kInputF32 or kInputU8 full-offload request: shape [B, C, H, W] (or
// [C, H, W]) with C, H, W the manifest's input shape and B in 1..kMaxBatch, exactly that many
// finite float32 values or pixels, at most max_elements of them. *shape receives [B, C, H, W],
// *out the normalized input.
// INVALID_ARGUMENT for a token model (its input is kInputTokens).
absl::Status DecodeOffloadInput(const FeatureRequest& request, const ModelManifest& manifest, uint64_t max_elements,
                                std::vector<float>* out, std::vector<int64_t>* shape);

// The token ids of a kInputTokens full-offload request to a token model: shape [B, T] (or [T])
// with T the manifest's and B in 1..kMaxBatch, exactly B * T little-endian int32 ids, each in
// [0, vocab), at most max_elements of them. INVALID_ARGUMENT otherwise (an image model, a size
// that does not match, an id out of range: the message names its position and value).
// *shape receives [B, T], *out the ids.
absl::Status DecodeOffloadTokens(const FeatureRequest& request, const ModelManifest& manifest, uint64_t max_elements,
                                 std::vector<int64_t>* out, std::vector<int64_t>* shape);

}  // namespace splitrans::cloud

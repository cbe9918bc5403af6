// KServe v2 <-> edge core translation as plain functions (no gRPC calls, no model): request
// parsing and validation, the response, and the checks on what the cloud answers. Thread-safe.
#pragma once

#include <absl/status/status.h>

#include <cstdint>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "common/feature_payload.h"
#include "common/model_repository.h"
#include "edge/head_pipeline.h"
#include "edge/link_policy.h"
#include "proto/grpc_service.pb.h"
#include "proto/split_inference.pb.h"

namespace splitrans::edge {

// Server-side defaults for what a request may leave out.
struct InferDefaults {
  codec::EncodeOptions encode;  // q 4, mode auto
  int top_k = 5;
  Placement placement = Placement::kSplit;
  FeatureWire wire = FeatureWire::kSrns;
  PolicyKind policy = PolicyKind::kFixed;
};

// A parsed ModelInfer request. head.input points into the request (raw_input_contents,
// contents) or into this object's own buffers: valid while both live. Movable, not copyable.
struct ParsedInfer {
  HeadRequest head;
  const ModelManifest* manifest = nullptr;
  int top_k = 0;
  bool raw_output = false;  // answer in raw_output_contents (the request used raw_input_contents)
  bool want_logits = true, want_topk = true;
  // kLatency: the edge chooses head.placement, split, encode and wire (the request set none of
  // kserve::kPolicyChosenParams; with the edge's default "latency" a request that sets one is
  // kFixed).
  PolicyKind policy = PolicyKind::kFixed;
  std::vector<float> floats;    // FP32 data copied out of an unaligned raw buffer
  std::vector<uint8_t> pixels;  // UINT8 data unpacked from uint_contents
  std::vector<int64_t> tokens;  // INT32/INT64 token ids (token models), widened to int64

  ParsedInfer() = default;
  ParsedInfer(ParsedInfer&&) = default;
  ParsedInfer& operator=(ParsedInfer&&) = default;
  ParsedInfer(const ParsedInfer&) = delete;
  ParsedInfer& operator=(const ParsedInfer&) = delete;
};

// Validates and parses req (model, parameters, the one input, requested outputs).
// NOT_FOUND: unknown model or version (the split is resolved later, by the pipeline);
// INVALID_ARGUMENT with a message naming the field otherwise.
absl::Status ParseInferRequest(const inference::ModelInferRequest& req, const ModelRepository& repo,
                               const InferDefaults& defaults, ParsedInfer* out);

// Checks a Result from the cloud for a request of `batch` elements, `classes` classes and
// top_k: status code range, logits shape and size, finite logits, top-k entries. OK for a
// well-formed per-request error too (its code is in range). INTERNAL "invalid result from the
// cloud: ..." otherwise.
absl::Status ValidateCloudResult(const splitrans::v1::Result& result, int64_t batch, int classes, int top_k);

// What the edge measured and chose, for the response parameters.
struct ResponseInfo {
  std::string id;  // echoed request id
  const ModelManifest* manifest = nullptr;
  std::string split;  // "full" when the unsplit model ran (offload, local)
  std::string mode;
  std::string quantizer;  // "aiq" | "clip"
  int q = 0;
  Placement placement = Placement::kSplit;
  FeatureWire wire = FeatureWire::kSrns;
  int64_t preprocess_us = 0, head_us = 0, encode_us = 0;
  int64_t cloud_round_trip_us = 0;  // send to result
  int64_t edge_total_us = 0;
  uint64_t feature_bytes = 0, raw_feature_bytes = 0;  // offload: the input's bytes as sent and as float32
  bool encoded_on_gpu = false;
  PolicyKind policy = PolicyKind::kFixed;
  int64_t policy_predicted_us = 0;  // kLatency
};

// Fills resp from a validated, successful cloud result.
void BuildInferResponse(const splitrans::v1::Result& result, const ParsedInfer& request,
                        const ResponseInfo& info, inference::ModelInferResponse* resp);

// The metadata of a model version: inputs (with the expected scaling stated in the input's
// parameters) and outputs.
void FillModelMetadata(const ModelManifest& manifest, const ModelRepository& repo,
                       inference::ModelMetadataResponse* resp);

}  // namespace splitrans::edge

// What splitrans-edge and its clients agree on over KServe v2, in one place: request and
// response parameter names, input scalings, output names and the raw BYTES framing.
#pragma once

#include <absl/status/status.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace splitrans::kserve {

// Request parameters (ModelInferRequest.parameters). Any other name is rejected.
inline constexpr char kParamQ[] = "q";                    // int64, codec::kMinQ..kMaxQ
inline constexpr char kParamCodecMode[] = "codec_mode";   // string, codec::kModeNames
inline constexpr char kParamSplit[] = "split";            // string, a split of the manifest
inline constexpr char kParamTopK[] = "top_k";             // int64, 1..kMaxTopK
inline constexpr char kParamInputScaling[] = "input_scaling";  // string, kScalings (FP32 only)
// string, common/feature_payload.h kPlacementNames: "split" (default), "offload" (the cloud runs
// the unsplit model on the input), "local" (the edge runs it; nothing is sent).
inline constexpr char kParamPlacement[] = "placement";
// string, kFeatureWireNames: "srns" (default, the codec), "raw" (float32) or "zstd" (zstd -3 of
// the AIQ symbols): how a split request's feature crosses the link.
inline constexpr char kParamFeatureCodec[] = "feature_codec";
// string, edge/link_policy.h kPolicyNames: "fixed" (the parameters above or the edge's defaults)
// or "latency" (the edge picks placement, split, q and codec_mode per request; the request must
// then leave those parameters out). Default: the edge's --policy.
inline constexpr char kParamPolicy[] = "policy";
// string, "aiq" (AIQ over [min, max]) or "clip" (AIQ over a clipped range chosen by squared
// error, outliers clamped): how a split request's feature is quantized (srns and zstd). Default:
// the edge's --quantizer. Not with codec_mode "paper".
inline constexpr char kParamQuantizer[] = "quantizer";
inline constexpr const char* kRequestParams[] = {kParamQ,          kParamCodecMode, kParamSplit,        kParamTopK,
                                                 kParamInputScaling, kParamPlacement, kParamFeatureCodec, kParamPolicy,
                                                 kParamQuantizer};
// The parameters that policy "latency" chooses: a request that sets one is served as "fixed".
inline constexpr const char* kPolicyChosenParams[] = {kParamQ, kParamCodecMode, kParamSplit, kParamPlacement,
                                                      kParamFeatureCodec};

// How FP32 input values are scaled. "normalized" (default): the model input itself,
// (pixel / 255 - mean) / std with the manifest's mean and std. "unit": pixel / 255 in [0, 1];
// the edge normalizes. UINT8 inputs are pixels 0..255 and BYTES inputs encoded images: the
// edge normalizes both; the parameter does not apply to them.
inline constexpr char kScalingNormalized[] = "normalized";
inline constexpr char kScalingUnit[] = "unit";
inline constexpr const char* kScalings[] = {kScalingNormalized, kScalingUnit};

// Outputs.
inline constexpr char kOutputLogits[] = "logits";       // FP32 [B, classes]
inline constexpr char kOutputTopk[] = "topk_labels";    // BYTES [B, k], "score:index:label"
inline constexpr const char* kOutputs[] = {kOutputLogits, kOutputTopk};

// Response parameters: int64 timings in microseconds and sizes in bytes ...
inline constexpr const char* kTimingParams[] = {"preprocess_us", "head_us", "encode_us", "transfer_us",
                                                "decode_us", "tail_us", "edge_total_us"};
inline constexpr char kRespCloudQueueUs[] = "cloud_queue_us";
inline constexpr char kRespFeatureBytes[] = "feature_bytes";
inline constexpr char kRespRawFeatureBytes[] = "raw_feature_bytes";
inline constexpr char kRespQ[] = "q";
// ... and strings.
inline constexpr char kRespSplit[] = "split";
inline constexpr char kRespCodecMode[] = "codec_mode";
inline constexpr char kRespQuantizer[] = "quantizer";  // split with srns or zstd: as the request parameter
inline constexpr char kRespEncodeDevice[] = "encode_device";  // "cpu" | "gpu"
inline constexpr char kRespDecodeDevice[] = "decode_device";
inline constexpr char kRespPlacement[] = "placement";          // as the request parameter
inline constexpr char kRespFeatureCodec[] = "feature_codec";   // split only
inline constexpr char kRespPolicy[] = "policy";                // "fixed" | "latency"
// int64, policy latency only: the latency the edge predicted for the configuration it chose
// (0 while that configuration was being measured for the first time).
inline constexpr char kRespPolicyPredictedUs[] = "policy_predicted_us";

// "a|b|c" of a list of names (for messages and --help).
template <size_t N>
std::string JoinNames(const char* const (&names)[N]) {
  std::string s;
  for (size_t i = 0; i < N; ++i) s += (i ? "|" : "") + std::string(names[i]);
  return s;
}
template <size_t N>
bool IsOneOf(std::string_view s, const char* const (&names)[N]) {
  for (const char* n : names)
    if (s == n) return true;
  return false;
}

// Raw BYTES tensor data (raw_input_contents / raw_output_contents): each element is a 4-byte
// little-endian length, then that many bytes.
void AppendRawBytes(std::string_view element, std::string* raw);
// Splits raw BYTES data of exactly count elements (views into raw). INVALID_ARGUMENT when it is
// truncated or has trailing bytes.
absl::Status SplitRawBytes(std::string_view raw, int64_t count, std::vector<std::string_view>* out);

}  // namespace splitrans::kserve

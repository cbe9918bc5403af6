// Client-side core (no CLI): KServe v2 request/response helpers, the unsplit reference model,
// and the Fashion-MNIST evaluation loop. Used by splitrans-client and the integration tests.
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/tls.h"
#include "proto/grpc_service.grpc.pb.h"

namespace grpc {
class Channel;
}

namespace splitrans::client {

struct InferSettings {
  std::string model = "fmnist_resnet";
  std::string model_version;  // "" = latest
  int q = 4;
  std::string mode = "auto";  // codec_mode
  std::string split;          // "" = the model's default split
  int top_k = 3;
  std::string placement;      // "" = the edge's default (split|offload|local)
  std::string feature_codec;  // "" = the edge's default (srns|raw|zstd)
};

// How a client reaches a server: TLS (and a client certificate) when tls is on, and a bearer
// token sent with every call when token is not empty.
struct ChannelSecurity {
  ClientTls tls;
  std::string token;
};
// Reads the first non-empty, non-comment line of a token file (the format of the edge's
// --auth-tokens). INVALID_ARGUMENT when there is none.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

// A channel with raised message size limits and a reconnect backoff of at most 250 ms.
// INVALID_ARGUMENT for unusable TLS files.
absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& target, const ChannelSecurity& security);
// Plaintext, no token (tests and loopback tools).
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target);

// ModelInfer request with one UINT8 input [batch, c, h, w] in raw_input_contents.
inference::ModelInferRequest MakePixelRequest(const InferSettings& s, const uint8_t* pixels,
                                              int64_t batch, int64_t c, int64_t h, int64_t w);
void SetParameters(const InferSettings& s, inference::ModelInferRequest* req);

// The "logits" output as floats (raw_output_contents or contents); rows/cols from its shape.
absl::Status GetLogits(const inference::ModelInferResponse& resp, std::vector<float>* logits,
                       int64_t* rows, int64_t* cols);
// The "topk_labels" output strings ("score:index:label").
std::vector<std::string> GetTopkLabels(const inference::ModelInferResponse& resp);
// An int64 response parameter (0 if absent).
int64_t GetIntParam(const inference::ModelInferResponse& resp, const std::string& name);

// Top-1 predictions of the unsplit model (full.pt of the manifest) run locally on uint8 images.
absl::StatusOr<std::vector<int>> UnsplitPredictions(const std::string& model_repo,
                                                    const std::string& model,
                                                    const uint8_t* pixels, int64_t count);

struct EvalOptions {
  std::string edge = "127.0.0.1:8001";
  ChannelSecurity security;
  std::string model_repo = "models";  // for the local unsplit model (full.pt)
  std::string images = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  std::string labels = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
  InferSettings infer;
  int64_t limit = 0;       // 0: all images
  int concurrency = 4;     // requests in flight
  int batch = 1;           // images per request
  int deadline_ms = 30000; // per request
  bool unsplit = true;     // run full.pt locally for the reference numbers
  bool progress = false;   // progress bar on stderr
};

struct StageStats {
  std::string name;
  double mean_ms = 0, p50_ms = 0, p90_ms = 0, p99_ms = 0;
};

struct EvalSummary {
  int64_t images = 0, requests = 0, failed_requests = 0;
  std::string first_error;
  std::string split, model_version;
  int q = 0;
  std::string mode;
  std::string placement, feature_codec;  // as the edge reported them
  double accuracy = 0;           // over all images (failed requests count as wrong)
  double unsplit_accuracy = -1;  // -1: not computed
  double agreement = -1;         // top-1(split) == top-1(unsplit)
  double mean_feature_bytes = 0;      // per request
  double mean_raw_feature_bytes = 0;  // float32 feature per request
  double compression_ratio = 0;       // raw / coded
  double wall_s = 0, requests_per_s = 0;
  std::vector<StageStats> stages;     // preprocess .. tail, edge_total, end_to_end

  std::string ToJson() const;
  std::string ToText() const;
};

absl::StatusOr<EvalSummary> RunEval(const EvalOptions& options);

}  // namespace splitrans::client

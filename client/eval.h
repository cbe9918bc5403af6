// Client-side core (no CLI): KServe v2 request/response helpers, the unsplit reference model,
// and the evaluation loop (Fashion-MNIST IDX files, or a directory of JPEG/PNG files). Used by splitrans-client and the integration tests.
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <memory>
#include <map>
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
  std::string quantizer;      // "" = the edge's default, else aiq | clip
  std::string split;          // "" = the model's default split
  int top_k = 3;
  std::string placement;      // "" = the edge's default (split|offload|local)
  std::string feature_codec;  // "" = the edge's default (srns|raw|zstd)
  // "" = the edge's default; "latency": the edge chooses placement, split, q and codec_mode (the
  // request then leaves them out, whatever the fields above say).
  std::string policy;
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
// ModelInfer request with one BYTES input [count]: images[first .. first+count) as they are
// (the edge decodes them). REQUIRES: first + count <= images.size().
inference::ModelInferRequest MakeEncodedRequest(const InferSettings& s, const std::vector<std::string>& images,
                                                int64_t first, int64_t count);
// ModelInferRequest with one INT64 input [batch, length] of token ids in raw_input_contents
// (little-endian). REQUIRES: ids holds batch * length ids.
inference::ModelInferRequest MakeTokenRequest(const InferSettings& s, const int64_t* ids, int64_t batch,
                                              int64_t length);
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
// The same for encoded PNG/JPEG images, decoded and normalized exactly as the edge does
// (common/image.h DecodeImageToInput with the manifest's size, mean and std).
absl::StatusOr<std::vector<int>> UnsplitPredictions(const std::string& model_repo,
                                                    const std::string& model,
                                                    const std::vector<std::string>& images);

// The unsplit model's top-1 for count token windows (ids: count * T, T the manifest's input
// length), and where labels is not null (count next-token ids) the mean bits per token,
// -log2 softmax(logits)[label], into *bits_per_token.
absl::StatusOr<std::vector<int>> UnsplitTokenPredictions(const std::string& model_repo, const std::string& model,
                                                         const std::vector<int64_t>& ids, int64_t count,
                                                         const std::vector<int>* labels = nullptr,
                                                         double* bits_per_token = nullptr);

struct EvalOptions {
  std::string edge = "127.0.0.1:8001";
  ChannelSecurity security;
  std::string model_repo = "models";  // for the local unsplit model (full.pt)
  std::string images = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
  std::string labels = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
  // Non-empty: evaluate on the JPEG/PNG files of this directory instead of images/labels,
  // each file sent as it is (BYTES). These have no labels: the reference is the unsplit model
  // (accuracy = top-1 agreement with it; needs unsplit).
  std::string image_dir;
  // Non-empty: the unsplit predictions are read from this file (one class index a line) when it
  // holds one per image, else computed and written to it (repeated runs on the same images).
  std::string unsplit_cache;
  // Non-empty: next-character prediction over this UTF-8 text file, for a token model (manifest
  // input.kind "tokens"; its labels are the characters): windows of T characters (T the
  // manifest's input length) every text_stride characters (0: T), each labelled with the
  // character after it, sent as INT64 ids. limit counts windows.
  std::string text;
  int64_t text_stride = 0;
  InferSettings infer;
  int64_t limit = 0;       // 0: all images
  int concurrency = 4;     // requests in flight
  int batch = 1;           // images per request
  int deadline_ms = 30000; // per request
  bool unsplit = true;     // run full.pt locally for the reference numbers
  bool progress = false;   // progress bar on stderr
  bool per_request = false;  // EvalSummary::per_request (every successful request, in answer order)
};

struct StageStats {
  std::string name;
  double mean_ms = 0, p50_ms = 0, p90_ms = 0, p99_ms = 0;
};

struct EvalSummary {
  int64_t images = 0, requests = 0, failed_requests = 0;  // images: inputs (text: windows)
  std::string first_error;
  std::string split, model_version;
  int q = 0;
  std::string mode;
  std::string placement, feature_codec;  // as the edge reported them
  std::string policy;                     // as the edge reported it
  // Requests per configuration the edge reported: "offload", "local" or split/qQ/mode
  // (split/raw, split/zstd-qQ); several under policy latency.
  std::map<std::string, int64_t> configs;
  struct RequestRecord {
    int64_t first = 0;     // index of the request's first image
    int64_t start_unix_us = 0, latency_us = 0;
    std::string config;    // as in configs
  };
  std::vector<RequestRecord> per_request;  // EvalOptions::per_request
  // idx (the label file) | unsplit (image_dir: top-1 of full.pt) | text (the next character)
  std::string label_source = "idx";
  int64_t text_stride = 0;       // text: characters between windows
  double bits_per_char = -1;     // text: mean -log2 p(next character) from the edge's logits (-1: not computed)
  double unsplit_bits_per_char = -1;  // text: the same from full.pt run locally
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

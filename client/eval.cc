#include "client/eval.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/ascii.h>
#include <absl/strings/str_format.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_interceptor.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>

#include "client/dataset.h"
#include "common/clock.h"
#include "common/image.h"
#include "common/kserve_protocol.h"
#include "common/limits.h"
#include "common/model_repository.h"
#include "common/torch_module.h"

namespace splitrans::client {
namespace inf = ::inference;
namespace ks = ::splitrans::kserve;

namespace {

// Adds "authorization: Bearer <token>" to every call of a channel.
class BearerInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit BearerInterceptor(const std::string* header) : header_(header) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      methods->GetSendInitialMetadata()->emplace("authorization", *header_);
    }
    methods->Proceed();
  }

 private:
  const std::string* header_;
};

class BearerInterceptorFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit BearerInterceptorFactory(const std::string& token) : header_("Bearer " + token) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo*) override {
    return new BearerInterceptor(&header_);
  }

 private:
  const std::string header_;
};

grpc::ChannelArguments ChannelArgs() {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kDefaultMaxMessageBytes);
  args.SetMaxSendMessageSize(kDefaultMaxMessageBytes);
  // Reconnect within 250 ms of a server coming (back) up (gRPC's default backoff grows to
  // two minutes, which made `health --wait-ms` notice a restarted server seconds late).
  // (GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, gRPC's minimum connect timeout, keeps its default.)
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 250);
  return args;
}

}  // namespace

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return absl::InvalidArgumentError(absl::StrCat("token file '", path, "' cannot be read"));
  std::string line;
  while (std::getline(f, line)) {
    const std::string t(absl::StripAsciiWhitespace(line));
    if (!t.empty() && t[0] != '#') return t;
  }
  return absl::InvalidArgumentError(absl::StrCat("token file '", path, "' holds no token"));
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const std::string& target, const ChannelSecurity& sec) {
  auto creds = MakeChannelCredentials(sec.tls);
  if (!creds.ok()) return creds.status();
  grpc::ChannelArguments args = ChannelArgs();
  AddChannelTlsArgs(sec.tls, &args);
  if (sec.token.empty()) return grpc::CreateCustomChannel(target, *creds, args);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<BearerInterceptorFactory>(sec.token));
  return grpc::experimental::CreateCustomChannelWithInterceptors(target, *creds, args, std::move(interceptors));
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& target) {
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), ChannelArgs());
}

void SetParameters(const InferSettings& s, inf::ModelInferRequest* req) {
  req->set_model_name(s.model);
  req->set_model_version(s.model_version);
  auto* p = req->mutable_parameters();
  (*p)[ks::kParamTopK].set_int64_param(s.top_k);
  if (!s.policy.empty()) (*p)[ks::kParamPolicy].set_string_param(s.policy);
  if (!s.quantizer.empty()) (*p)[ks::kParamQuantizer].set_string_param(s.quantizer);
  if (s.policy == "latency") return;  // the edge chooses the rest
  (*p)[ks::kParamQ].set_int64_param(s.q);
  (*p)[ks::kParamCodecMode].set_string_param(s.mode);
  if (!s.split.empty()) (*p)[ks::kParamSplit].set_string_param(s.split);
  if (!s.placement.empty()) (*p)[ks::kParamPlacement].set_string_param(s.placement);
  if (!s.feature_codec.empty()) (*p)[ks::kParamFeatureCodec].set_string_param(s.feature_codec);
}

inf::ModelInferRequest MakePixelRequest(const InferSettings& s, const uint8_t* pixels, int64_t batch,
                                        int64_t c, int64_t h, int64_t w) {
  inf::ModelInferRequest req;
  SetParameters(s, &req);
  auto* in = req.add_inputs();
  in->set_name("input");
  in->set_datatype("UINT8");
  for (int64_t d : {batch, c, h, w}) in->add_shape(d);
  req.add_raw_input_contents(reinterpret_cast<const char*>(pixels), batch * c * h * w);
  return req;
}

absl::Status GetLogits(const inf::ModelInferResponse& resp, std::vector<float>* logits, int64_t* rows,
                       int64_t* cols) {
  for (int i = 0; i < resp.outputs_size(); ++i) {
    const auto& o = resp.outputs(i);
    if (o.name() != ks::kOutputLogits) continue;
    if (o.shape_size() != 2) return absl::InternalError("logits: bad shape");
    *rows = o.shape(0);
    *cols = o.shape(1);
    const size_t n = static_cast<size_t>(*rows * *cols);
    if (resp.raw_output_contents_size() > i) {
      const std::string& raw = resp.raw_output_contents(i);
      if (raw.size() != n * sizeof(float)) return absl::InternalError("logits: bad raw size");
      logits->resize(n);
      std::memcpy(logits->data(), raw.data(), raw.size());
    } else {
      if (static_cast<size_t>(o.contents().fp32_contents_size()) != n) {
        return absl::InternalError("logits: bad contents size");
      }
      logits->assign(o.contents().fp32_contents().begin(), o.contents().fp32_contents().end());
    }
    return absl::OkStatus();
  }
  return absl::InternalError("response has no 'logits' output");
}

std::vector<std::string> GetTopkLabels(const inf::ModelInferResponse& resp) {
  std::vector<std::string> out;
  for (int i = 0; i < resp.outputs_size(); ++i) {
    const auto& o = resp.outputs(i);
    if (o.name() != ks::kOutputTopk) continue;
    if (resp.raw_output_contents_size() > i) {
      int64_t count = 1;
      for (int64_t d : o.shape()) count *= d;
      std::vector<std::string_view> views;
      if (ks::SplitRawBytes(resp.raw_output_contents(i), count, &views).ok()) out.assign(views.begin(), views.end());
    } else {
      out.assign(o.contents().bytes_contents().begin(), o.contents().bytes_contents().end());
    }
  }
  return out;
}

int64_t GetIntParam(const inf::ModelInferResponse& resp, const std::string& name) {
  auto it = resp.parameters().find(name);
  return it == resp.parameters().end() ? 0 : it->second.int64_param();
}

inf::ModelInferRequest MakeTokenRequest(const InferSettings& s, const int64_t* ids, int64_t batch, int64_t length) {
  inf::ModelInferRequest req;
  SetParameters(s, &req);
  auto* in = req.add_inputs();
  in->set_name("input");
  in->set_datatype("INT64");
  in->add_shape(batch);
  in->add_shape(length);
  std::string raw(static_cast<size_t>(batch * length) * 8, '\0');
  for (int64_t i = 0; i < batch * length; ++i) {
    const uint64_t v = static_cast<uint64_t>(ids[i]);
    for (int b = 0; b < 8; ++b) raw[i * 8 + b] = static_cast<char>((v >> (8 * b)) & 0xff);  // little-endian
  }
  req.add_raw_input_contents(std::move(raw));
  return req;
}

inf::ModelInferRequest MakeEncodedRequest(const InferSettings& s, const std::vector<std::string>& images,
                                          int64_t first, int64_t count) {
  inf::ModelInferRequest req;
  SetParameters(s, &req);
  auto* in = req.add_inputs();
  in->set_name("input");
  in->set_datatype("BYTES");
  in->add_shape(count);
  for (int64_t i = first; i < first + count; ++i) in->mutable_contents()->add_bytes_contents(images[i]);
  return req;
}

namespace {

// Top-1 of full.pt over count inputs; fill(i, out) writes input i (manifest.InputElements() floats).
absl::StatusOr<std::vector<int>> RunFullModel(
    const std::string& model_repo, const std::string& model, int64_t count,
    const std::function<absl::Status(const ModelManifest&, int64_t, float*)>& fill) {
  auto repo = ModelRepository::Load(model_repo);
  if (!repo.ok()) return repo.status();
  auto m = repo->Find(model);
  if (!m.ok()) return m.status();
  const ModelManifest& man = **m;
  if (man.full_path.empty()) return absl::NotFoundError("manifest has no 'full' model");
  ConfigureTorchThreads(1);
  auto full = TorchModule::Load(man.full_path);
  if (!full.ok()) return full.status();
  const int64_t per = man.InputElements();
  const int64_t kChunk = std::max<int64_t>(1, std::min<int64_t>(256, (int64_t{64} << 20) / (per * 4)));
  std::vector<float> input, logits;
  std::vector<int64_t> out_shape;
  std::vector<int> preds;
  for (int64_t i = 0; i < count; i += kChunk) {
    const int64_t b = std::min(kChunk, count - i);
    input.resize(b * per);
    for (int64_t j = 0; j < b; ++j) {
      auto st = fill(man, i + j, input.data() + j * per);
      if (!st.ok()) return st;
    }
    std::vector<int64_t> shape = {b};
    shape.insert(shape.end(), man.input_shape.begin(), man.input_shape.end());
    auto st = (*full)->Forward(input.data(), shape, &logits, &out_shape);
    if (!st.ok()) return st;
    const int64_t cols = out_shape.back();
    for (int64_t j = 0; j < b; ++j) {
      const float* row = logits.data() + j * cols;
      preds.push_back(static_cast<int>(std::max_element(row, row + cols) - row));
    }
  }
  return preds;
}

// Predictions from cache_path when it holds exactly count of them; otherwise empty.
std::vector<int> ReadPredictionCache(const std::string& cache_path, int64_t count) {
  std::vector<int> preds;
  std::ifstream f(cache_path);
  int v;
  while (f >> v) preds.push_back(v);
  if (static_cast<int64_t>(preds.size()) != count) preds.clear();
  return preds;
}

}  // namespace

absl::StatusOr<std::vector<int>> UnsplitPredictions(const std::string& model_repo,
                                                    const std::string& model, const uint8_t* pixels,
                                                    int64_t count) {
  return RunFullModel(model_repo, model, count, [pixels](const ModelManifest& man, int64_t i, float* out) {
    NormalizePixels(pixels + i * man.InputElements(), man, out);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<int>> UnsplitPredictions(const std::string& model_repo,
                                                    const std::string& model,
                                                    const std::vector<std::string>& images) {
  return RunFullModel(model_repo, model, static_cast<int64_t>(images.size()),
                      [&images](const ModelManifest& man, int64_t i, float* out) {
                        const std::string& b = images[i];
                        return DecodeImageToInput(reinterpret_cast<const uint8_t*>(b.data()), b.size(), man, out);
                      });
}

namespace {

// -log2 softmax(row)[label].
double BitsOf(const float* row, int64_t cols, int label) {
  const float mx = *std::max_element(row, row + cols);
  double sum = 0;
  for (int64_t c = 0; c < cols; ++c) sum += std::exp(static_cast<double>(row[c]) - mx);
  return (std::log(sum) - (static_cast<double>(row[label]) - mx)) / std::log(2.0);
}

}  // namespace

absl::StatusOr<std::vector<int>> UnsplitTokenPredictions(const std::string& model_repo, const std::string& model,
                                                         const std::vector<int64_t>& ids, int64_t count,
                                                         const std::vector<int>* labels, double* bits_per_token) {
  auto repo = ModelRepository::Load(model_repo);
  if (!repo.ok()) return repo.status();
  auto m = repo->Find(model);
  if (!m.ok()) return m.status();
  const ModelManifest& man = **m;
  if (!man.IsTokens()) return absl::InvalidArgumentError(absl::StrCat("model '", model, "' does not take token ids"));
  if (man.full_path.empty()) return absl::NotFoundError("manifest has no 'full' model");
  const int64_t len = man.input_shape[0];
  if (static_cast<int64_t>(ids.size()) != count * len) {
    return absl::InvalidArgumentError(absl::StrCat(ids.size(), " token ids are not ", count, " windows of ", len));
  }
  ConfigureTorchThreads(1);
  auto full = TorchModule::Load(man.full_path);
  if (!full.ok()) return full.status();
  constexpr int64_t kChunk = 64;
  std::vector<float> logits;
  std::vector<int64_t> out_shape;
  std::vector<int> preds;
  double bits = 0;
  for (int64_t i = 0; i < count; i += kChunk) {
    const int64_t b = std::min(kChunk, count - i);
    auto st = (*full)->Forward(ids.data() + i * len, {b, len}, &logits, &out_shape);
    if (!st.ok()) return st;
    if (out_shape.size() != 2 || out_shape[0] != b || out_shape[1] != man.NumClasses()) {
      return absl::InternalError("unsplit model: output is not [B, vocab]");
    }
    const int64_t cols = out_shape[1];
    for (int64_t j = 0; j < b; ++j) {
      const float* row = logits.data() + j * cols;
      preds.push_back(static_cast<int>(std::max_element(row, row + cols) - row));
      if (labels != nullptr) bits += BitsOf(row, cols, (*labels)[i + j]);
    }
  }
  if (bits_per_token != nullptr && labels != nullptr && count > 0) *bits_per_token = bits / count;
  return preds;
}

namespace {

double Percentile(std::vector<int64_t>& v, double p) {
  if (v.empty()) return 0;
  size_t idx = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  std::nth_element(v.begin(), v.begin() + idx, v.end());
  return v[idx] / 1000.0;
}

void DrawProgress(int64_t done, int64_t total, int64_t correct, int64_t failed, double elapsed_s) {
  const int kWidth = 40;
  int filled = total ? static_cast<int>(kWidth * done / total) : kWidth;
  std::string bar(filled, '=');
  if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
  std::fprintf(stderr, "\r[%s] %lld/%lld  acc %.2f%%  err %lld  %.0f img/s ", bar.c_str(),
               static_cast<long long>(done), static_cast<long long>(total),
               done ? 100.0 * correct / done : 0.0, static_cast<long long>(failed),
               elapsed_s > 0 ? done / elapsed_s : 0.0);
  std::fflush(stderr);
}

}  // namespace

absl::StatusOr<EvalSummary> RunEval(const EvalOptions& o) {
  // Inputs: IDX pixels with labels, or encoded files whose reference is the unsplit model.
  const bool encoded = !o.image_dir.empty();
  const bool text = !o.text.empty();
  IdxImages images;
  EncodedImages files;
  std::vector<int> labels;
  std::vector<int64_t> windows;  // text: n windows of len token ids
  int64_t len = 0, stride = 0;
  int64_t n = 0;
  if (text) {
    if (encoded) return absl::InvalidArgumentError("--text and --image-dir exclude each other");
    auto repo = ModelRepository::Load(o.model_repo);
    if (!repo.ok()) return repo.status();
    auto m = repo->Find(o.infer.model, o.infer.model_version);
    if (!m.ok()) return m.status();
    if (!(*m)->IsTokens()) {
      return absl::InvalidArgumentError(absl::StrCat("model '", o.infer.model,
                                                     "' takes images: --text needs a token model (manifest input.kind "
                                                     "\"tokens\")"));
    }
    len = (*m)->input_shape[0];
    stride = o.text_stride > 0 ? o.text_stride : len;
    auto content = ReadTextFile(o.text);
    if (!content.ok()) return content.status();
    auto tokens = TextToTokens(*content, (*m)->labels);
    if (!tokens.ok()) return absl::InvalidArgumentError(absl::StrCat(o.text, ": ", tokens.status().message()));
    n = CountWindows(static_cast<int64_t>(tokens->size()), len, stride, o.limit);
    if (n == 0) {
      return absl::InvalidArgumentError(absl::StrCat(o.text, ": ", tokens->size(), " characters, fewer than a window of ",
                                                     len, " and the character after it"));
    }
    windows.resize(n * len);
    labels.resize(n);
    for (int64_t w = 0; w < n; ++w) {
      std::copy_n(tokens->begin() + w * stride, len, windows.begin() + w * len);
      labels[w] = static_cast<int>((*tokens)[w * stride + len]);
    }
  } else if (encoded) {
    if (!o.unsplit) return absl::InvalidArgumentError("--image-dir has no labels: it needs the unsplit reference run");
    auto f = ReadImageDir(o.image_dir, o.limit);
    if (!f.ok()) return f.status();
    files = std::move(*f);
    n = static_cast<int64_t>(files.bytes.size());
  } else {
    auto im = ReadIdxImages(o.images, o.limit);
    if (!im.ok()) return im.status();
    images = std::move(*im);
    auto l = ReadIdxLabels(o.labels, o.limit);
    if (!l.ok()) return l.status();
    labels.assign(l->begin(), l->end());
    n = std::min<int64_t>(images.count, labels.size());
  }
  if (n == 0) return absl::InvalidArgumentError("no images");
  const int64_t per = images.rows * images.cols;
  const int batch = std::max(1, std::min<int>(o.batch, kMaxBatch));

  EvalSummary sum;
  sum.images = n;
  sum.q = o.infer.q;
  sum.mode = o.infer.mode;
  if (text) {
    sum.label_source = "text";
    sum.text_stride = stride;
  }
  std::vector<int> unsplit;
  if (o.unsplit && text) {
    auto p = UnsplitTokenPredictions(o.model_repo, o.infer.model, windows, n, &labels, &sum.unsplit_bits_per_char);
    if (!p.ok()) return p.status();
    unsplit = std::move(*p);
  } else if (o.unsplit) {
    if (!o.unsplit_cache.empty()) unsplit = ReadPredictionCache(o.unsplit_cache, n);
    if (unsplit.empty()) {
      auto p = encoded ? UnsplitPredictions(o.model_repo, o.infer.model, files.bytes)
                       : UnsplitPredictions(o.model_repo, o.infer.model, images.pixels.data(), n);
      if (!p.ok()) return p.status();
      unsplit = std::move(*p);
      if (!o.unsplit_cache.empty()) {
        std::ofstream f(o.unsplit_cache);
        for (int v : unsplit) f << v << "\n";
        if (!f) return absl::InvalidArgumentError(absl::StrCat("cannot write ", o.unsplit_cache));
      }
    }
  }
  if (encoded) {
    labels = unsplit;
    sum.label_source = "unsplit";
  }

  auto channel = MakeChannel(o.edge, o.security);
  if (!channel.ok()) return channel.status();
  auto stub = inf::GRPCInferenceService::NewStub(*channel);
  std::vector<int> preds(n, -1);
  const auto& kStages = ks::kTimingParams;
  constexpr int kNumStages = sizeof(ks::kTimingParams) / sizeof(ks::kTimingParams[0]);
  std::vector<std::vector<int64_t>> stage_us(kNumStages + 1);
  uint64_t feature_bytes = 0, raw_bytes = 0;
  double split_bits = 0;  // text: sum over the answered windows
  int64_t scored = 0;
  std::mutex mu;
  std::condition_variable cv;
  int inflight = 0;
  int64_t done_images = 0, correct = 0;
  const bool tty_progress = o.progress;
  const int64_t t0 = NowMicros();
  // NowMicros() (steady) + this = Unix time in microseconds (per_request records).
  const int64_t epoch_offset_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count() -
      t0;
  int64_t last_draw = 0;

  struct Call {
    grpc::ClientContext ctx;
    inf::ModelInferRequest req;
    inf::ModelInferResponse resp;
    int64_t first = 0, count = 0, start_us = 0;
  };
  for (int64_t first = 0; first < n; first += batch) {
    const int64_t count = std::min<int64_t>(batch, n - first);
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return inflight < std::max(1, o.concurrency); });
      ++inflight;
    }
    auto* call = new Call;
    call->first = first;
    call->count = count;
    call->req = text      ? MakeTokenRequest(o.infer, windows.data() + first * len, count, len)
                : encoded ? MakeEncodedRequest(o.infer, files.bytes, first, count)
                          : MakePixelRequest(o.infer, images.pixels.data() + first * per, count, 1, images.rows,
                                           images.cols);
    call->req.set_id(std::to_string(first));
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(o.deadline_ms));
    call->start_us = NowMicros();
    stub->async()->ModelInfer(&call->ctx, &call->req, &call->resp, [&, call](grpc::Status s) {
      const int64_t e2e = NowMicros() - call->start_us;
      std::vector<float> logits;
      int64_t rows = 0, cols = 0;
      absl::Status ps = s.ok() ? GetLogits(call->resp, &logits, &rows, &cols) : absl::OkStatus();
      std::lock_guard<std::mutex> lock(mu);
      ++sum.requests;
      if (!s.ok() || !ps.ok() || rows != call->count) {
        ++sum.failed_requests;
        if (sum.first_error.empty()) {
          sum.first_error = !s.ok() ? absl::StrCat("grpc code ", s.error_code(), ": ", s.error_message())
                                    : (ps.ok() ? "wrong number of rows" : std::string(ps.message()));
        }
      } else {
        for (int64_t j = 0; j < rows; ++j) {
          const float* row = logits.data() + j * cols;
          int pred = static_cast<int>(std::max_element(row, row + cols) - row);
          preds[call->first + j] = pred;
          if (pred == labels[call->first + j]) ++correct;
          if (text && labels[call->first + j] < cols) {
            split_bits += BitsOf(row, cols, labels[call->first + j]);
            ++scored;
          }
        }
        for (int k = 0; k < kNumStages; ++k) stage_us[k].push_back(GetIntParam(call->resp, kStages[k]));
        stage_us[kNumStages].push_back(e2e);
        feature_bytes += GetIntParam(call->resp, ks::kRespFeatureBytes);
        raw_bytes += GetIntParam(call->resp, ks::kRespRawFeatureBytes);
        {
          auto param = [&call](const char* k) -> std::string {
            auto it = call->resp.parameters().find(k);
            return it != call->resp.parameters().end() ? it->second.string_param() : "";
          };
          const std::string placement = param(ks::kRespPlacement), wire = param(ks::kRespFeatureCodec);
          std::string config = placement;
          if (placement == "split") {
            const std::string q = std::to_string(GetIntParam(call->resp, ks::kRespQ));
            config = param(ks::kRespSplit) + "/" +
                     (wire == "raw" ? "raw" : wire == "zstd" ? "zstd-q" + q : "q" + q + "/" + param(ks::kRespCodecMode));
          }
          ++sum.configs[config];
          if (o.per_request) {
            sum.per_request.push_back({call->first, call->start_us + epoch_offset_us, e2e, config});
          }
          if (sum.policy.empty()) sum.policy = param(ks::kRespPolicy);
        }
        if (sum.split.empty()) {
          auto it = call->resp.parameters().find(ks::kRespSplit);
          if (it != call->resp.parameters().end()) sum.split = it->second.string_param();
          sum.model_version = call->resp.model_version();
          for (auto [key, field] : {std::pair{ks::kRespPlacement, &sum.placement},
                                    std::pair{ks::kRespFeatureCodec, &sum.feature_codec}}) {
            auto p = call->resp.parameters().find(key);
            if (p != call->resp.parameters().end()) *field = p->second.string_param();
          }
        }
      }
      done_images += call->count;
      --inflight;
      const int64_t now = NowMicros();
      if (tty_progress && (now - last_draw > 100000 || done_images == n)) {
        last_draw = now;
        DrawProgress(done_images, n, correct, sum.failed_requests, (now - t0) / 1e6);
      }
      delete call;
      cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return inflight == 0; });
  }
  if (tty_progress) std::fprintf(stderr, "\n");
  sum.wall_s = (NowMicros() - t0) / 1e6;
  // Successful requests per second (0 when every request failed).
  sum.requests_per_s = sum.wall_s > 0 ? (sum.requests - sum.failed_requests) / sum.wall_s : 0;
  sum.accuracy = static_cast<double>(correct) / n;
  if (text && scored > 0) sum.bits_per_char = split_bits / scored;
  if (!unsplit.empty()) {
    int64_t ucorrect = 0, agree = 0;
    for (int64_t i = 0; i < n; ++i) {
      ucorrect += unsplit[i] == labels[i];
      agree += unsplit[i] == preds[i];
    }
    sum.unsplit_accuracy = static_cast<double>(ucorrect) / n;
    sum.agreement = static_cast<double>(agree) / n;
  }
  const int64_t ok_requests = sum.requests - sum.failed_requests;
  if (ok_requests > 0) {
    sum.mean_feature_bytes = static_cast<double>(feature_bytes) / ok_requests;
    sum.mean_raw_feature_bytes = static_cast<double>(raw_bytes) / ok_requests;
    sum.compression_ratio = feature_bytes ? static_cast<double>(raw_bytes) / feature_bytes : 0;
  }
  const char* names[] = {"preprocess", "head", "encode", "transfer", "decode", "tail", "edge_total", "end_to_end"};
  for (int k = 0; k <= kNumStages; ++k) {
    StageStats st;
    st.name = names[k];
    auto& v = stage_us[k];
    if (!v.empty()) {
      double total = 0;
      for (int64_t x : v) total += x;
      st.mean_ms = total / v.size() / 1000.0;
      st.p50_ms = Percentile(v, 0.50);
      st.p90_ms = Percentile(v, 0.90);
      st.p99_ms = Percentile(v, 0.99);
    }
    sum.stages.push_back(st);
  }
  return sum;
}

std::string EvalSummary::ToJson() const {
  nlohmann::json j;
  j["images"] = images;
  j["requests"] = requests;
  j["failed_requests"] = failed_requests;
  if (!first_error.empty()) j["first_error"] = first_error;
  j["split"] = split;
  j["model_version"] = model_version;
  j["q"] = q;
  j["codec_mode"] = mode;
  j["placement"] = placement;
  j["feature_codec"] = feature_codec;
  j["policy"] = policy;
  j["configs"] = configs;
  if (!per_request.empty()) {
    nlohmann::json& r = j["per_request"];
    for (const RequestRecord& e : per_request) {
      r.push_back({{"first", e.first}, {"start_unix_ms", e.start_unix_us / 1000.0}, {"ms", e.latency_us / 1000.0},
                   {"config", e.config}});
    }
  }
  j["label_source"] = label_source;
  if (label_source == "text") {
    j["windows"] = images;
    j["text_stride"] = text_stride;
    if (bits_per_char >= 0) j["bits_per_char"] = bits_per_char;
    if (unsplit_bits_per_char >= 0) j["unsplit_bits_per_char"] = unsplit_bits_per_char;
  }
  j["accuracy"] = accuracy;
  if (unsplit_accuracy >= 0) {
    j["unsplit_accuracy"] = unsplit_accuracy;
    j["agreement"] = agreement;
  }
  j["mean_feature_bytes"] = mean_feature_bytes;
  j["mean_raw_feature_bytes"] = mean_raw_feature_bytes;
  j["compression_ratio"] = compression_ratio;
  j["wall_s"] = wall_s;
  if (requests > failed_requests) {
    j["requests_per_s"] = requests_per_s;
  } else {
    j["requests_per_s"] = nullptr;  // every request failed: no throughput to report
  }
  for (const auto& s : stages) {
    j["latency_ms"][s.name] = {{"mean", s.mean_ms}, {"p50", s.p50_ms}, {"p90", s.p90_ms}, {"p99", s.p99_ms}};
  }
  return j.dump(2);
}

std::string EvalSummary::ToText() const {
  std::string s;
  const bool text = label_source == "text";
  absl::StrAppendFormat(&s, "%-20s: %d (%d requests, %d failed)\n", text ? "windows" : "images", images, requests,
                        failed_requests);
  if (!first_error.empty()) absl::StrAppendFormat(&s, "first error         : %s\n", first_error);
  absl::StrAppendFormat(&s, "split / q / mode    : %s / %d / %s (model version %s)\n", split, q, mode,
                        model_version);
  if (label_source == "unsplit") {
    absl::StrAppendFormat(&s, "labels              : none (image directory): accuracy = top-1 agreement with the "
                              "unsplit model\n");
  }
  if (text) {
    absl::StrAppendFormat(&s, "labels              : the character after each window (stride %d characters)\n",
                          text_stride);
  }
  absl::StrAppendFormat(&s, "accuracy (split)    : %.2f %%\n", 100 * accuracy);
  if (bits_per_char >= 0) {
    absl::StrAppendFormat(&s, "bits per character  : %.4f (split)", bits_per_char);
    if (unsplit_bits_per_char >= 0) absl::StrAppendFormat(&s, ", %.4f (unsplit)", unsplit_bits_per_char);
    absl::StrAppendFormat(&s, "\n");
  }
  if (unsplit_accuracy >= 0) {
    absl::StrAppendFormat(&s, "accuracy (unsplit)  : %.2f %%  (full.pt run locally; delta %+.2f points)\n",
                          100 * unsplit_accuracy, 100 * (accuracy - unsplit_accuracy));
    absl::StrAppendFormat(&s, "top-1 agreement     : %.2f %% with the unsplit model\n", 100 * agreement);
  }
  absl::StrAppendFormat(&s, "feature bytes/req   : %.1f coded vs %.0f raw float32 -> compression %.1fx (%.3f bits/value)\n",
                        mean_feature_bytes, mean_raw_feature_bytes, compression_ratio,
                        mean_raw_feature_bytes > 0 ? 32.0 * mean_feature_bytes / mean_raw_feature_bytes : 0.0);
  if (requests > failed_requests) {
    absl::StrAppendFormat(&s, "throughput          : %.1f req/s (wall %.2f s)\n", requests_per_s, wall_s);
  } else {
    absl::StrAppendFormat(&s, "throughput          : n/a (every request failed; wall %.2f s)\n", wall_s);
  }
  absl::StrAppendFormat(&s, "latency (ms)          %8s %8s %8s %8s\n", "mean", "p50", "p90", "p99");
  for (const auto& st : stages) {
    absl::StrAppendFormat(&s, "  %-19s %8.3f %8.3f %8.3f %8.3f\n", st.name, st.mean_ms, st.p50_ms,
                          st.p90_ms, st.p99_ms);
  }
  return s;
}

}  // namespace splitrans::client

#include "edge/edge_server.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <cstring>

#include "common/clock.h"
#include "common/limits.h"
#include "common/status_util.h"
#include "common/thread_pool.h"
#include "proto/grpc_service.grpc.pb.h"

namespace splitrans::edge {
namespace inf = ::inference;
namespace v1 = ::splitrans::v1;

namespace {

using ParamMap = google::protobuf::Map<std::string, inf::InferParameter>;

absl::Status GetIntParam(const ParamMap& params, const std::string& key, int64_t* value) {
  auto it = params.find(key);
  if (it == params.end()) return absl::OkStatus();
  const inf::InferParameter& p = it->second;
  switch (p.parameter_choice_case()) {
    case inf::InferParameter::kInt64Param:
      *value = p.int64_param();
      return absl::OkStatus();
    case inf::InferParameter::kUint64Param:
      *value = static_cast<int64_t>(std::min<uint64_t>(p.uint64_param(), 1u << 30));
      return absl::OkStatus();
    case inf::InferParameter::kStringParam: {
      const std::string& s = p.string_param();
      if (!s.empty() && s.size() < 10 && s.find_first_not_of("0123456789") == std::string::npos) {
        *value = std::stoll(s);
        return absl::OkStatus();
      }
      break;
    }
    default:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("parameter '", key, "' must be an int64"));
}

absl::Status GetStringParam(const ParamMap& params, const std::string& key, std::string* value) {
  auto it = params.find(key);
  if (it == params.end()) return absl::OkStatus();
  if (it->second.parameter_choice_case() != inf::InferParameter::kStringParam) {
    return absl::InvalidArgumentError(absl::StrCat("parameter '", key, "' must be a string"));
  }
  *value = it->second.string_param();
  return absl::OkStatus();
}

// Splits raw BYTES tensor data (each element: 4-byte little-endian length + bytes).
absl::Status SplitRawBytes(const std::string& raw, int64_t count, std::vector<std::string_view>* out) {
  size_t pos = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (raw.size() - pos < 4) return absl::InvalidArgumentError("raw BYTES input is truncated");
    uint32_t len = 0;
    for (int b = 0; b < 4; ++b) len |= static_cast<uint32_t>(static_cast<uint8_t>(raw[pos + b])) << (8 * b);
    pos += 4;
    if (raw.size() - pos < len) return absl::InvalidArgumentError("raw BYTES element is truncated");
    out->emplace_back(raw.data() + pos, len);
    pos += len;
  }
  if (pos != raw.size()) return absl::InvalidArgumentError("raw BYTES input has trailing bytes");
  return absl::OkStatus();
}

void AppendRawBytes(const std::string& s, std::string* raw) {
  uint32_t len = static_cast<uint32_t>(s.size());
  for (int b = 0; b < 4; ++b) raw->push_back(static_cast<char>((len >> (8 * b)) & 0xff));
  raw->append(s);
}

void SetInt(ParamMap* params, const std::string& key, int64_t v) {
  (*params)[key].set_int64_param(v);
}

}  // namespace

// Thin transport: KServe proto <-> HeadPipeline / CloudClient.
class EdgeServer::Service final : public inf::GRPCInferenceService::CallbackService {
 public:
  Service(const EdgeServerOptions& options, std::unique_ptr<HeadPipeline> pipeline)
      : options_(options),
        pipeline_(std::move(pipeline)),
        cloud_(options.cloud),
        pool_(options.workers) {}

  CloudClient& cloud() { return cloud_; }

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* ctx, const inf::ServerLiveRequest*,
                                       inf::ServerLiveResponse* resp) override {
    resp->set_live(true);
    return Done(ctx, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* ctx,
                                        const inf::ServerReadyRequest*,
                                        inf::ServerReadyResponse* resp) override {
    resp->set_ready(cloud_.Connected());
    return Done(ctx, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* ctx,
                                       const inf::ModelReadyRequest* req,
                                       inf::ModelReadyResponse* resp) override {
    auto m = pipeline_->repository().Find(req->name(), req->version());
    if (!m.ok()) return Done(ctx, ToGrpcStatus(m.status()));
    resp->set_ready(cloud_.Connected());
    return Done(ctx, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* ctx,
                                           const inf::ServerMetadataRequest*,
                                           inf::ServerMetadataResponse* resp) override {
    resp->set_name("splitrans-edge");
    resp->set_version("0.1.0");
    resp->add_extensions("splitrans_split_inference");
    return Done(ctx, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* ctx,
                                          const inf::ModelMetadataRequest* req,
                                          inf::ModelMetadataResponse* resp) override {
    auto found = pipeline_->repository().Find(req->name(), req->version());
    if (!found.ok()) return Done(ctx, ToGrpcStatus(found.status()));
    const ModelManifest& m = **found;
    resp->set_name(m.name);
    for (const ModelManifest* other : pipeline_->repository().All()) {
      if (other->name == m.name) resp->add_versions(std::to_string(other->version));
    }
    resp->set_platform("splitrans_torchscript_split");
    // One input; FP32 (normalized), UINT8 (pixels, normalized here) with this shape, or BYTES
    // (one encoded PNG/JPEG per batch element, shape [-1]) are accepted.
    auto* in = resp->add_inputs();
    in->set_name("input");
    in->set_datatype("FP32");
    in->add_shape(-1);
    for (int64_t d : m.input_shape) in->add_shape(d);
    auto* logits = resp->add_outputs();
    logits->set_name("logits");
    logits->set_datatype("FP32");
    logits->add_shape(-1);
    logits->add_shape(m.NumClasses());
    auto* topk = resp->add_outputs();
    topk->set_name("topk_labels");
    topk->set_datatype("BYTES");
    topk->add_shape(-1);
    topk->add_shape(-1);
    return Done(ctx, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx,
                                       const inf::ModelInferRequest* req,
                                       inf::ModelInferResponse* resp) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    pool_.Post([this, reactor, req, resp] { Infer(*req, resp, reactor); });
    return reactor;
  }

 private:
  static grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx, const grpc::Status& s) {
    auto* r = ctx->DefaultReactor();
    r->Finish(s);
    return r;
  }

  // Parses the KServe request into a HeadRequest (pointers borrow from req).
  absl::Status ParseRequest(const inf::ModelInferRequest& req, HeadRequest* out, int* top_k,
                            bool* raw) {
    out->model_name = req.model_name();
    out->model_version = req.model_version();
    out->encode = options_.default_encode;
    int64_t q = out->encode.q, k = options_.default_top_k;
    std::string mode = codec::ModeName(out->encode.mode);
    if (auto s = GetIntParam(req.parameters(), "q", &q); !s.ok()) return s;
    if (auto s = GetIntParam(req.parameters(), "top_k", &k); !s.ok()) return s;
    if (auto s = GetStringParam(req.parameters(), "codec_mode", &mode); !s.ok()) return s;
    if (auto s = GetStringParam(req.parameters(), "split", &out->split); !s.ok()) return s;
    if (q < codec::kMinQ || q > codec::kMaxQ) {
      return absl::InvalidArgumentError(absl::StrCat("parameter 'q' must be in [", codec::kMinQ,
                                                     ", ", codec::kMaxQ, "], got ", q));
    }
    out->encode.q = static_cast<int>(q);
    if (!codec::ParseMode(mode, &out->encode.mode)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "parameter 'codec_mode' must be auto|paper|dense|sparse|context, got '", mode, "'"));
    }
    if (k < 1 || k > kMaxTopK) {
      return absl::InvalidArgumentError(absl::StrCat("parameter 'top_k' must be in [1, ", kMaxTopK, "]"));
    }
    *top_k = static_cast<int>(k);

    auto found = pipeline_->repository().Find(req.model_name(), req.model_version());
    if (!found.ok()) return found.status();
    const ModelManifest& m = **found;
    if (req.inputs_size() != 1) {
      return absl::InvalidArgumentError(absl::StrCat("expected exactly 1 input, got ", req.inputs_size()));
    }
    const auto& t = req.inputs(0);
    *raw = req.raw_input_contents_size() > 0;
    if (*raw && req.raw_input_contents_size() != 1) {
      return absl::InvalidArgumentError("raw_input_contents must have one entry per input");
    }
    if (*raw && t.has_contents()) {
      return absl::InvalidArgumentError("an input uses both contents and raw_input_contents");
    }
    const std::string* raw_data = *raw ? &req.raw_input_contents(0) : nullptr;
    std::vector<int64_t> shape(t.shape().begin(), t.shape().end());
    for (int64_t d : shape) {
      if (d < 0 || d > (int64_t{1} << 31)) return absl::InvalidArgumentError("input shape has a bad dimension");
    }
    EdgeInput& in = out->input;
    if (t.datatype() == "BYTES") {
      if (shape.empty() || shape.size() > 2 || (shape.size() == 2 && shape[1] != 1)) {
        return absl::InvalidArgumentError("BYTES input shape must be [B] or [B, 1]");
      }
      in.kind = EdgeInput::Kind::kEncodedImages;
      in.batch = shape[0];
      if (in.batch < 1 || in.batch > kMaxBatch) {
        return absl::InvalidArgumentError(absl::StrCat("batch size must be in [1, ", kMaxBatch, "]"));
      }
      if (raw_data) {
        if (auto s = SplitRawBytes(*raw_data, in.batch, &in.images); !s.ok()) return s;
      } else {
        if (t.contents().bytes_contents_size() != in.batch) {
          return absl::InvalidArgumentError("bytes_contents size does not match the shape");
        }
        for (const auto& b : t.contents().bytes_contents()) in.images.emplace_back(b);
      }
      return absl::OkStatus();
    }
    // Tensors: [C, H, W] or [B, C, H, W].
    std::vector<int64_t> chw = shape;
    int64_t batch = 1;
    if (chw.size() == m.input_shape.size() + 1) {
      batch = chw[0];
      chw.erase(chw.begin());
    }
    if (chw != m.input_shape) {
      return absl::InvalidArgumentError(
          absl::StrCat("input shape [", absl::StrJoin(shape, ","), "] must be [",
                       absl::StrJoin(m.input_shape, ","), "] or [B,", absl::StrJoin(m.input_shape, ","), "]"));
    }
    if (batch < 1 || batch > kMaxBatch) {
      return absl::InvalidArgumentError(absl::StrCat("batch size must be in [1, ", kMaxBatch, "]"));
    }
    in.batch = batch;
    const size_t n = static_cast<size_t>(batch * m.InputElements());
    if (t.datatype() == "FP32") {
      in.kind = EdgeInput::Kind::kFloat32;
      if (raw_data) {
        if (raw_data->size() != n * sizeof(float)) {
          return absl::InvalidArgumentError(absl::StrCat("raw FP32 input has ", raw_data->size(),
                                                         " bytes, shape needs ", n * sizeof(float)));
        }
        if (reinterpret_cast<uintptr_t>(raw_data->data()) % alignof(float) == 0) {
          in.values = reinterpret_cast<const float*>(raw_data->data());
        } else {
          thread_local std::vector<float> aligned;
          aligned.resize(n);
          std::memcpy(aligned.data(), raw_data->data(), n * sizeof(float));
          in.values = aligned.data();
        }
      } else {
        if (static_cast<size_t>(t.contents().fp32_contents_size()) != n) {
          return absl::InvalidArgumentError("fp32_contents size does not match the shape");
        }
        in.values = t.contents().fp32_contents().data();
      }
      return absl::OkStatus();
    }
    if (t.datatype() == "UINT8") {
      in.kind = EdgeInput::Kind::kPixelsU8;
      if (raw_data) {
        if (raw_data->size() != n) {
          return absl::InvalidArgumentError(absl::StrCat("raw UINT8 input has ", raw_data->size(),
                                                         " bytes, shape needs ", n));
        }
        in.pixels = reinterpret_cast<const uint8_t*>(raw_data->data());
      } else {
        if (static_cast<size_t>(t.contents().uint_contents_size()) != n) {
          return absl::InvalidArgumentError("uint_contents size does not match the shape");
        }
        thread_local std::vector<uint8_t> pixels;
        pixels.resize(n);
        for (size_t i = 0; i < n; ++i) {
          uint32_t v = t.contents().uint_contents(static_cast<int>(i));
          if (v > 255) return absl::InvalidArgumentError("UINT8 value out of range");
          pixels[i] = static_cast<uint8_t>(v);
        }
        in.pixels = pixels.data();
      }
      return absl::OkStatus();
    }
    return absl::InvalidArgumentError(absl::StrCat("input datatype '", t.datatype(),
                                                   "' not supported (FP32, UINT8 or BYTES)"));
  }

  // Runs on the pool: parse, head + encode, then hand off to the cloud client (non-blocking).
  void Infer(const inf::ModelInferRequest& req, inf::ModelInferResponse* resp,
             grpc::ServerUnaryReactor* reactor) {
    const int64_t start_us = NowMicros();
    HeadRequest hreq;
    int top_k = 0;
    bool raw = false;
    absl::Status st = ParseRequest(req, &hreq, &top_k, &raw);
    if (!st.ok()) {
      reactor->Finish(ToGrpcStatus(st));
      return;
    }
    auto enc = pipeline_->Run(hreq);
    if (!enc.ok()) {
      reactor->Finish(ToGrpcStatus(enc.status()));
      return;
    }
    v1::FeaturePacket pkt;
    pkt.set_model_name(enc->manifest->name);
    pkt.set_model_version(std::to_string(enc->manifest->version));
    pkt.set_split(enc->split);
    pkt.set_codec_bytes(enc->bytes.data(), enc->bytes.size());
    pkt.mutable_edge_timings()->set_preprocess_us(enc->preprocess_us);
    pkt.mutable_edge_timings()->set_head_us(enc->head_us);
    pkt.mutable_edge_timings()->set_encode_us(enc->encode_us);
    pkt.mutable_edge_timings()->set_encoded_on_gpu(enc->encode_path == CodecPath::kGpu);
    pkt.set_raw_feature_bytes(enc->raw_feature_bytes);
    pkt.set_top_k(top_k);

    // Everything the completion needs, copied (the request may be large; keep what we need).
    struct Ctx {
      std::string model_name, model_version, id, split, mode;
      int q = 0;
      int64_t batch = 0, preprocess_us = 0, head_us = 0, encode_us = 0, start_us = 0, send_us = 0;
      uint64_t feature_bytes = 0, raw_feature_bytes = 0;
      bool raw = false, encoded_on_gpu = false;
      std::vector<std::string> requested;
    };
    auto c = std::make_shared<Ctx>();
    c->model_name = enc->manifest->name;
    c->model_version = std::to_string(enc->manifest->version);
    c->id = req.id();
    c->split = enc->split;
    c->mode = codec::ModeName(hreq.encode.mode);
    c->q = hreq.encode.q;
    c->batch = hreq.input.batch;
    c->preprocess_us = enc->preprocess_us;
    c->head_us = enc->head_us;
    c->encode_us = enc->encode_us;
    c->start_us = start_us;
    c->feature_bytes = enc->bytes.size();
    c->raw_feature_bytes = enc->raw_feature_bytes;
    c->raw = raw;
    c->encoded_on_gpu = enc->encode_path == CodecPath::kGpu;
    for (const auto& o : req.outputs()) c->requested.push_back(o.name());
    c->send_us = NowMicros();
    cloud_.Send(std::move(pkt), [c, resp, reactor](const grpc::Status& s, v1::Result r) {
      if (!s.ok()) {
        reactor->Finish(s);
        return;
      }
      if (r.status_code() != 0) {
        reactor->Finish(grpc::Status(static_cast<grpc::StatusCode>(r.status_code()),
                                     absl::StrCat("cloud: ", r.status_message())));
        return;
      }
      const int64_t now = NowMicros();
      const auto& ct = r.cloud_timings();
      resp->set_model_name(c->model_name);
      resp->set_model_version(c->model_version);
      resp->set_id(c->id);
      auto want = [&](const char* name) {
        if (c->requested.empty()) return true;
        for (const auto& n : c->requested) if (n == name) return true;
        return false;
      };
      const int64_t rows = r.logits_shape_size() == 2 ? r.logits_shape(0) : 0;
      const int64_t cols = r.logits_shape_size() == 2 ? r.logits_shape(1) : 0;
      if (want("logits")) {
        auto* o = resp->add_outputs();
        o->set_name("logits");
        o->set_datatype("FP32");
        o->add_shape(rows);
        o->add_shape(cols);
        if (c->raw) {
          resp->add_raw_output_contents(reinterpret_cast<const char*>(r.logits().data()),
                                        r.logits_size() * sizeof(float));
        } else {
          o->mutable_contents()->mutable_fp32_contents()->CopyFrom(r.logits());
        }
      }
      if (want("topk_labels")) {
        // KServe classification format: "score:index:label", best first per batch element.
        const int64_t k = rows > 0 ? r.topk_size() / rows : 0;
        auto* o = resp->add_outputs();
        o->set_name("topk_labels");
        o->set_datatype("BYTES");
        o->add_shape(rows);
        o->add_shape(k);
        std::string raw_bytes;
        for (const auto& e : r.topk()) {
          std::string s = absl::StrCat(absl::SixDigits(e.score()), ":", e.index(), ":", e.label());
          if (c->raw) {
            AppendRawBytes(s, &raw_bytes);
          } else {
            o->mutable_contents()->add_bytes_contents(std::move(s));
          }
        }
        if (c->raw) resp->add_raw_output_contents(std::move(raw_bytes));
      }
      auto* p = resp->mutable_parameters();
      SetInt(p, "preprocess_us", c->preprocess_us);
      SetInt(p, "head_us", c->head_us);
      SetInt(p, "encode_us", c->encode_us);
      // Edge -> cloud -> edge time not spent decoding or in the tail (network + queues).
      SetInt(p, "transfer_us", std::max<int64_t>(0, now - c->send_us - ct.decode_us() - ct.tail_us()));
      SetInt(p, "decode_us", ct.decode_us());
      SetInt(p, "tail_us", ct.tail_us());
      SetInt(p, "cloud_queue_us", ct.queue_us());
      SetInt(p, "edge_total_us", now - c->start_us);
      SetInt(p, "feature_bytes", static_cast<int64_t>(c->feature_bytes));
      SetInt(p, "raw_feature_bytes", static_cast<int64_t>(c->raw_feature_bytes));
      SetInt(p, "q", c->q);
      (*p)["split"].set_string_param(c->split);
      (*p)["codec_mode"].set_string_param(c->mode);
      (*p)["encode_device"].set_string_param(c->encoded_on_gpu ? "gpu" : "cpu");
      (*p)["decode_device"].set_string_param(ct.decoded_on_gpu() ? "gpu" : "cpu");
      reactor->Finish(grpc::Status::OK);
    });
  }

  const EdgeServerOptions options_;
  std::unique_ptr<HeadPipeline> pipeline_;
  CloudClient cloud_;
  ThreadPool pool_;
};

absl::StatusOr<std::unique_ptr<EdgeServer>> EdgeServer::Create(const EdgeServerOptions& options) {
  ConfigureTorchThreads(options.torch_threads);
  auto pipeline = HeadPipeline::Create(options.pipeline);
  if (!pipeline.ok()) return pipeline.status();
  std::unique_ptr<EdgeServer> s(new EdgeServer());
  s->options_ = options;
  s->service_ = std::make_unique<Service>(options, std::move(*pipeline));
  spdlog::info("edge: cloud target {} ({} mode, deadline {} ms)", options.cloud.target,
               options.cloud.use_stream ? "stream" : "unary", options.cloud.deadline_ms);
  return s;
}

EdgeServer::~EdgeServer() { Shutdown(0); }

CloudClient& EdgeServer::cloud() { return service_->cloud(); }

absl::Status EdgeServer::Start() {
  return server_.Start(
      GrpcServerOptionsOf(options_, "edge", "KServe v2 (inference.GRPCInferenceService)"), service_.get());
}

void EdgeServer::Shutdown(int grace_ms) { server_.Shutdown(grace_ms); }

void EdgeServer::Wait() { server_.Wait(); }

}  // namespace splitrans::edge

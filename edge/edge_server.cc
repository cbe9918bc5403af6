#include "edge/edge_server.h"

#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <map>
#include <mutex>
#include <new>

#include "common/clock.h"
#include "common/logging.h"
#include "common/status_util.h"
#include "common/thread_pool.h"
#include "common/topk.h"
#include "edge/kserve.h"
#include "proto/grpc_service.grpc.pb.h"

namespace splitrans::edge {
namespace inf = ::inference;
namespace v1 = ::splitrans::v1;
using Clock = std::chrono::steady_clock;

namespace {

// PayloadKind follows the proto's order (the packet takes it by value).
static_assert(static_cast<int>(PayloadKind::kSrns) == v1::PAYLOAD_SRNS);
static_assert(static_cast<int>(PayloadKind::kRawF32) == v1::PAYLOAD_RAW_F32);
static_assert(static_cast<int>(PayloadKind::kZstdAiq) == v1::PAYLOAD_ZSTD_AIQ);
static_assert(static_cast<int>(PayloadKind::kInputImages) == v1::PAYLOAD_INPUT_IMAGES);
static_assert(static_cast<int>(PayloadKind::kInputF32) == v1::PAYLOAD_INPUT_F32);
static_assert(static_cast<int>(PayloadKind::kInputU8) == v1::PAYLOAD_INPUT_U8);
static_assert(static_cast<int>(PayloadKind::kInputTokens) == v1::PAYLOAD_INPUT_TOKENS);

// One ModelInfer in flight, shared by its reactor (until OnDone), its worker task and its cloud
// callback. The reactor is finished exactly once, by Finish(); after that nothing touches the
// request or the response (both owned by gRPC).
struct InferState {
  grpc::ServerUnaryReactor* reactor = nullptr;
  const inf::ModelInferRequest* req = nullptr;  // valid until finished
  inf::ModelInferResponse* resp = nullptr;      // written only under mu, before Finish
  Clock::time_point deadline = Clock::time_point::max();  // the client's
  int64_t start_us = 0;
  int64_t work_start_us = 0;  // a worker took it
  ParsedInfer parsed;
  std::atomic<bool> cancelled{false};

  // Policy latency: the model's policy and the candidate it chose, until recorded or abandoned.
  LatencyPolicy* policy = nullptr;
  LatencyPolicy::Decision decision;

  std::mutex mu;
  bool finished = false;
  uint64_t cloud_id = 0;  // while waiting for the cloud
};

// The client's deadline on the steady clock (max when it set none).
Clock::time_point DeadlineOf(const grpc::CallbackServerContext* ctx) {
  const auto d = ctx->deadline();
  if (d >= std::chrono::system_clock::time_point::max() - std::chrono::hours(24 * 365)) {
    return Clock::time_point::max();
  }
  return Clock::now() + std::chrono::duration_cast<Clock::duration>(d - std::chrono::system_clock::now());
}

class InferReactor final : public grpc::ServerUnaryReactor {
 public:
  InferReactor(std::shared_ptr<InferState> state, std::function<void(const std::shared_ptr<InferState>&)> on_cancel)
      : state_(std::move(state)), on_cancel_(std::move(on_cancel)) {}
  void OnCancel() override { on_cancel_(state_); }
  void OnDone() override { delete this; }

 private:
  std::shared_ptr<InferState> state_;
  std::function<void(const std::shared_ptr<InferState>&)> on_cancel_;
};

// The edge's metrics (README "Metrics"). Label values come from the model repository, never
// from the request as sent (a bounded set of series).
struct EdgeMetrics {
  explicit EdgeMetrics(metrics::Registry* r)
      : requests(r->AddCounter("splitrans_edge_requests_total", "ModelInfer requests answered, by status code",
                               {"model", "version", "split", "code"})),
        duration(r->AddHistogram("splitrans_edge_request_duration_seconds",
                                 "ModelInfer from receipt to answer (any status)", {"model", "version", "split"},
                                 metrics::DefaultLatencyBuckets())),
        stages(r->AddHistogram("splitrans_edge_stage_duration_seconds",
                               "Time of each stage of successful requests: queue (waiting for a worker), "
                               "preprocess, head, encode, transfer (cloud round trip minus the cloud's queue, "
                               "decode and tail), and the cloud's queue, decode and tail as it reports them",
                               {"model", "version", "split", "stage"}, metrics::DefaultLatencyBuckets())),
        raw_bytes(r->AddCounter("splitrans_edge_feature_raw_bytes_total",
                                "Feature bytes before compression (float32) of requests sent to the cloud",
                                {"model", "version", "split"})),
        coded_bytes(r->AddCounter("splitrans_edge_feature_coded_bytes_total",
                                  "Feature bytes after compression (codec bitstream) of requests sent to the cloud",
                                  {"model", "version", "split"})),
        cloud_requests(r->AddCounter("splitrans_edge_cloud_requests_total",
                                     "Requests answered by each cloud replica (final attempt), by status code",
                                     {"replica", "code"})),
        cloud_retries(r->AddCounter("splitrans_edge_cloud_retries_total",
                                    "Requests that failed UNAVAILABLE on a replica and were sent to another one",
                                    {"replica"})),
        policy_choices(r->AddCounter("splitrans_edge_policy_choices_total",
                                     "Requests whose configuration policy latency chose, by configuration (split/q/mode "
                                     "or offload) and whether it was the predicted best or a measurement",
                                     {"model", "version", "choice", "reason"})) {}

  metrics::CounterFamily& requests;
  metrics::HistogramFamily& duration;
  metrics::HistogramFamily& stages;
  metrics::CounterFamily& raw_bytes;
  metrics::CounterFamily& coded_bytes;
  metrics::CounterFamily& cloud_requests;
  metrics::CounterFamily& cloud_retries;
  metrics::CounterFamily& policy_choices;
};

struct Labels {
  std::string model, version, split;
};

// The labels of a parsed request: model, version and split as the repository names them;
// "unknown" for what is not known: the request failed before it was resolved (refused at
// admission, a model or split the edge does not have), so that clients cannot create series.
Labels LabelsOf(const ParsedInfer& p) {
  Labels l{"unknown", "unknown", "unknown"};
  if (!p.manifest) return l;
  l.model = p.manifest->name;
  l.version = std::to_string(p.manifest->version);
  if (p.head.placement != Placement::kSplit) {
    l.split = "full";  // the unsplit model ran (offload, local)
    return l;
  }
  const std::string& split = p.head.split.empty() ? p.manifest->default_split : p.head.split;
  if (p.manifest->splits.count(split)) l.split = split;
  return l;
}

CloudPoolOptions MakePoolOptions(const EdgeServerOptions& options, EdgeMetrics* m) {
  CloudPoolOptions o;
  o.client = options.cloud;
  o.resolve_ms = options.cloud_resolve_ms;
  o.resolver = options.cloud_resolver;
  o.on_answer = [m](const std::string& replica, grpc::StatusCode code) {
    m->cloud_requests.WithLabels({replica, metrics::CodeLabel(static_cast<int>(code))}).Inc();
  };
  o.on_retry = [m](const std::string& replica) { m->cloud_retries.WithLabels({replica}).Inc(); };
  return o;
}

}  // namespace

// Thin transport: KServe proto <-> kserve.h functions, HeadPipeline and CloudClient.
class EdgeServer::Service final : public inf::GRPCInferenceService::CallbackService {
 public:
  Service(const EdgeServerOptions& options, std::unique_ptr<HeadPipeline> pipeline, const TokenAuth* auth,
          std::shared_ptr<grpc::ChannelCredentials> cloud_credentials, metrics::Registry* registry)
      : options_(options),
        auth_(auth),
        pipeline_(std::move(pipeline)),
        metrics_(registry),
        cloud_(MakePoolOptions(options, &metrics_), std::move(cloud_credentials)),
        pool_(options.workers, static_cast<size_t>(options.max_queue), "edge workers") {
    defaults_.encode = options.default_encode;
    defaults_.top_k = options.default_top_k;
    defaults_.placement = options.default_placement;
    defaults_.wire = options.default_wire;
    defaults_.policy = options.default_policy;
    CreatePolicies();
    // The callbacks read this service: the metrics endpoint stops before it is destroyed.
    registry->AddCallbackGauge("splitrans_edge_inflight_requests", "ModelInfer requests admitted and not answered",
                               {}, [this] {
                                 return std::vector<metrics::Registry::Sample>{{{}, double(inflight_.load())}};
                               });
    registry->AddCallbackGauge("splitrans_edge_queue_depth", "Admitted requests waiting for a worker", {}, [this] {
      return std::vector<metrics::Registry::Sample>{{{}, static_cast<double>(pool_.QueueDepth())}};
    });
    registry->AddCallbackGauge("splitrans_edge_cloud_replica_up",
                               "1 while the edge has an established stream to this cloud replica, else 0",
                               {"replica"}, [this] {
                                 std::vector<metrics::Registry::Sample> v;
                                 for (const auto& r : cloud_.replicas()) v.push_back({{r.address}, r.connected ? 1.0 : 0.0});
                                 return v;
                               });
    registry->AddCallbackGauge("splitrans_edge_cloud_send_queue_bytes",
                               "Feature bytes waiting to be written to the cloud streams", {}, [this] {
                                 return std::vector<metrics::Registry::Sample>{
                                     {{}, static_cast<double>(cloud_.stats().queued_bytes)}};
                               });
    registry->AddCallbackGauge("splitrans_edge_link_rtt_seconds",
                               "Round-trip time of the cloud link as the edge estimates it from its transfers "
                               "(policy latency)", {}, [this] {
                                 return std::vector<metrics::Registry::Sample>{{{}, link_.Get().rtt_us * 1e-6}};
                               });
    registry->AddCallbackGauge("splitrans_edge_link_throughput_bytes_per_second",
                               "Throughput of the cloud link as the edge estimates it from its transfers (policy "
                               "latency; 0 before the first)", {}, [this] {
                                 const LinkEstimate e = link_.Get();
                                 return std::vector<metrics::Registry::Sample>{
                                     {{}, e.samples > 0 ? e.bits_per_us * 1e6 / 8 : 0.0}};
                               });
    registry->AddGauge("splitrans_codec_device_info", "Where the codec runs (dense layout; other layouts on the CPU)",
                       {"device"})
        .WithLabels({pipeline_->codec().gpu() ? "gpu" : "cpu"})
        .Set(1);
    metrics::AddBuildInfo(registry);
  }

  CloudPool& cloud() { return cloud_; }

  // Why policy latency cannot serve a model version (empty when every model has a policy).
  const std::map<const ModelManifest*, absl::Status>& policy_errors() const { return policy_errors_; }

  grpc::ServerUnaryReactor* ServerLive(grpc::CallbackServerContext* ctx, const inf::ServerLiveRequest*,
                                       inf::ServerLiveResponse* resp) override {
    if (auto* r = Refused(ctx, "ServerLive")) return r;
    resp->set_live(true);
    return Done(ctx, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ServerReady(grpc::CallbackServerContext* ctx, const inf::ServerReadyRequest*,
                                        inf::ServerReadyResponse* resp) override {
    if (auto* r = Refused(ctx, "ServerReady")) return r;
    resp->set_ready(cloud_.Connected());
    return Done(ctx, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ModelReady(grpc::CallbackServerContext* ctx, const inf::ModelReadyRequest* req,
                                       inf::ModelReadyResponse* resp) override {
    if (auto* r = Refused(ctx, "ModelReady")) return r;
    auto m = pipeline_->repository().Find(req->name(), req->version());
    if (!m.ok()) return Done(ctx, ToGrpcStatus(m.status()));
    resp->set_ready(cloud_.Connected());
    return Done(ctx, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ServerMetadata(grpc::CallbackServerContext* ctx, const inf::ServerMetadataRequest*,
                                           inf::ServerMetadataResponse* resp) override {
    if (auto* r = Refused(ctx, "ServerMetadata")) return r;
    resp->set_name("splitrans-edge");
    resp->set_version(SPLITRANS_VERSION);
    resp->add_extensions("splitrans_split_inference");
    return Done(ctx, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ModelMetadata(grpc::CallbackServerContext* ctx, const inf::ModelMetadataRequest* req,
                                          inf::ModelMetadataResponse* resp) override {
    if (auto* r = Refused(ctx, "ModelMetadata")) return r;
    auto found = pipeline_->repository().Find(req->name(), req->version());
    if (!found.ok()) return Done(ctx, ToGrpcStatus(found.status()));
    FillModelMetadata(**found, pipeline_->repository(), resp);
    return Done(ctx, grpc::Status::OK);
  }

  grpc::ServerUnaryReactor* ModelInfer(grpc::CallbackServerContext* ctx, const inf::ModelInferRequest* req,
                                       inf::ModelInferResponse* resp) override {
    if (auto* r = Refused(ctx, "ModelInfer")) return r;
    auto st = std::make_shared<InferState>();
    st->req = req;
    st->resp = resp;
    st->deadline = DeadlineOf(ctx);
    st->start_us = NowMicros();
    auto* reactor = new InferReactor(st, [this](const std::shared_ptr<InferState>& s) { OnCancelled(s); });
    st->reactor = reactor;
    // Admission: bounded in flight, then in queue; both answered at once when full (a refused
    // request never holds a slot). The request is parsed on the worker.
    int n = inflight_.load();
    do {
      if (n >= options_.max_inflight) {
        Finish(st, grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                absl::StrCat("edge: ", options_.max_inflight,
                                             " requests already in flight (limit --max-inflight)")),
               nullptr, /*admitted=*/false);
        return reactor;
      }
    } while (!inflight_.compare_exchange_weak(n, n + 1));
    if (!pool_.TryPost([this, st] { Work(st); })) {
      Finish(st, grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                              absl::StrCat("edge: worker queue is full (", pool_.max_queue(),
                                           " requests waiting, limit --max-queue)")));
    }
    return reactor;
  }

 private:
  // One LatencyPolicy per model version, from its calibration.json; all share the link estimate.
  void CreatePolicies() {
    for (const ModelManifest* m : pipeline_->repository().All()) {
      auto calibration = LoadCalibration(*m);
      if (!calibration.ok() && !absl::IsNotFound(calibration.status())) {
        policy_errors_[m] = calibration.status();
        continue;
      }
      if (!calibration.ok()) {
        spdlog::warn("edge: {} v{} has no calibration.json (tools/evaluate.py --calibration-out): policy latency "
                     "codes its features at q {} at every split, with no accuracy floor",
                     m->name, m->version, options_.latency_policy.fallback_q);
      }
      LatencyPolicyOptions policy_options = options_.latency_policy;
      policy_options.edge_workers = options_.workers;
      auto policy = LatencyPolicy::Create(*m, calibration.ok() ? &*calibration : nullptr, policy_options, &link_);
      if (!policy.ok()) {
        policy_errors_[m] = policy.status();
        continue;
      }
      spdlog::info("edge: policy latency for {} v{}: accuracy floor {}, candidates {}", m->name, m->version,
                   (*policy)->floor(), (*policy)->Describe());
      policies_[m] = std::move(*policy);
    }
  }

  // Policy latency: the model's policy picks this request's configuration.
  absl::Status ApplyPolicy(InferState* st) {
    ParsedInfer& p = st->parsed;
    if (p.policy != PolicyKind::kLatency) return absl::OkStatus();
    auto it = policies_.find(p.manifest);
    if (it == policies_.end()) {
      auto err = policy_errors_.find(p.manifest);
      return absl::FailedPreconditionError(absl::StrCat(
          "policy 'latency' is not available for ", p.manifest->name, " v", p.manifest->version, ": ",
          err != policy_errors_.end() ? err->second.message() : "no policy"));
    }
    st->policy = it->second.get();
    st->decision = st->policy->Choose(pool_.QueueDepth());  // on a worker: the requests queued behind this one
    const PolicyChoice& c = st->decision.choice;
    p.head.placement = c.placement;
    p.head.split = c.split;
    p.head.wire = FeatureWire::kSrns;
    p.head.encode.q = c.q;
    p.head.encode.mode = c.mode;
    const std::string name = c.Name();
    metrics_.policy_choices
        .WithLabels({p.manifest->name, std::to_string(p.manifest->version), name,
                     st->decision.exploring ? "measure" : "best"})
        .Inc();
    if (st->decision.changed) {
      const LinkEstimate e = link_.Get();
      spdlog::info("edge: policy latency for {} v{} now chooses {} (predicted {:.2f} ms; link {:.3g} Mbit/s, "
                   "rtt {:.2f} ms from {} transfers)",
                   p.manifest->name, p.manifest->version, name, st->decision.predicted_us / 1000.0, e.bits_per_us,
                   e.rtt_us / 1000.0, e.samples);
    }
    return absl::OkStatus();
  }

  // A finished reactor when the call lacks a valid bearer token (UNAUTHENTICATED), else null.
  grpc::ServerUnaryReactor* Refused(grpc::CallbackServerContext* ctx, const char* method) {
    if (!auth_) return nullptr;
    absl::Status st = auth_->Check(ctx->client_metadata());
    if (st.ok()) return nullptr;
    int64_t suppressed = 0;
    if (failure_log_.Allow(&suppressed)) {
      spdlog::warn("edge: {} from {} refused: {}{}", method, ctx->peer(), std::string(st.message()),
                   suppressed ? absl::StrCat(" (", suppressed, " earlier failures not logged)") : "");
    }
    return Done(ctx, ToGrpcStatus(st));
  }

  static grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx, const grpc::Status& s) {
    auto* r = ctx->DefaultReactor();
    r->Finish(s);
    return r;
  }

  // Finishes the call once; logs a failure (rate-limited). False if it was already finished.
  // fill_response (nullable) writes the response of a successful call; if it throws, the call
  // fails with INTERNAL instead. admitted: the request holds an in-flight slot to release.
  bool Finish(const std::shared_ptr<InferState>& st, grpc::Status s,
              const std::function<void()>& fill_response = nullptr, bool admitted = true) {
    std::string id;
    {
      std::lock_guard<std::mutex> lock(st->mu);
      if (st->finished) return false;
      st->finished = true;
      if (s.ok() && fill_response) {
        try {
          fill_response();
        } catch (...) {
          s = grpc::Status(grpc::StatusCode::INTERNAL, "edge: building the response failed");
        }
      }
      if (!s.ok()) id = st->req->id().substr(0, 64);  // the request is gRPC's: read it before Finish
      if (admitted) inflight_.fetch_sub(1);
      st->reactor->Finish(s);
      if (st->policy) {  // not recorded: the chosen candidate's request failed
        st->policy->Abandon(st->decision.index);
        st->policy = nullptr;
      }
    }
    {
      const Labels l = LabelsOf(st->parsed);
      metrics_.requests.WithLabels({l.model, l.version, l.split, metrics::CodeLabel(static_cast<int>(s.error_code()))}).Inc();
      metrics_.duration.WithLabels({l.model, l.version, l.split}).Observe((NowMicros() - st->start_us) * 1e-6);
    }
    if (!s.ok()) {
      int64_t suppressed = 0;
      if (failure_log_.Allow(&suppressed)) {
        spdlog::warn("edge: request '{}' ({}) failed after {:.1f} ms: {}: {}{}", id,
                     st->parsed.manifest ? st->parsed.manifest->name : "-", (NowMicros() - st->start_us) / 1000.0,
                     absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code())), s.error_message(),
                     suppressed ? absl::StrCat(" (", suppressed, " earlier failures not logged)") : "");
      }
    }
    return true;
  }

  // Asked between stages: the client's cancellation and deadline.
  static absl::Status Check(const InferState& st, const char* next_stage) {
    if (st.cancelled.load()) return absl::CancelledError(absl::StrCat("request cancelled before ", next_stage));
    if (Clock::now() >= st.deadline) {
      return absl::DeadlineExceededError(absl::StrCat("the request's deadline passed before ", next_stage));
    }
    return absl::OkStatus();
  }

  // On the pool: any exception fails only this request (INTERNAL); Finish is a no-op if the
  // request was already answered.
  void Work(const std::shared_ptr<InferState>& st) {
    try {
      Run(st);
    } catch (const std::bad_alloc&) {
      Finish(st, grpc::Status(grpc::StatusCode::INTERNAL, "edge: out of memory while handling the request"));
    } catch (const std::exception& e) {
      Finish(st, grpc::Status(grpc::StatusCode::INTERNAL, absl::StrCat("edge: the request failed: ", e.what())));
    } catch (...) {
      Finish(st, grpc::Status(grpc::StatusCode::INTERNAL, "edge: the request failed (unknown exception)"));
    }
  }

  // Parse, head + encode, then hand off to the cloud client (non-blocking).
  void Run(const std::shared_ptr<InferState>& st) {
    st->work_start_us = NowMicros();
    if (auto s = Check(*st, "parsing"); !s.ok()) {
      Finish(st, ToGrpcStatus(s));
      return;
    }
    if (absl::Status parsed = ParseInferRequest(*st->req, pipeline_->repository(), defaults_, &st->parsed);
        !parsed.ok()) {
      Finish(st, ToGrpcStatus(parsed));
      return;
    }
    if (absl::Status s = ApplyPolicy(st.get()); !s.ok()) {
      Finish(st, ToGrpcStatus(s));
      return;
    }
    if (options_.test_before_head) options_.test_before_head();
    absl::StatusOr<EncodedFeature> enc =
        pipeline_->Run(st->parsed.head, [&st](const char* next) { return Check(*st, next); });
    if (enc.ok()) {
      if (absl::Status s = Check(*st, "sending to the cloud"); !s.ok()) enc = s;
    }
    if (!enc.ok()) {
      Finish(st, ToGrpcStatus(enc.status()));
      return;
    }
    auto info = std::make_shared<ResponseInfo>();
    info->id = st->req->id();
    info->manifest = enc->manifest;
    info->split = enc->split;
    info->mode = codec::ModeName(st->parsed.head.encode.mode);
    info->quantizer = codec::QuantizerName(st->parsed.head.encode.quantizer);
    info->q = st->parsed.head.encode.q;
    info->placement = st->parsed.head.placement;
    info->wire = st->parsed.head.wire;
    info->preprocess_us = enc->preprocess_us;
    info->head_us = enc->head_us;
    info->encode_us = enc->encode_us;
    info->feature_bytes = enc->payload_bytes;
    info->raw_feature_bytes = enc->raw_feature_bytes;
    info->encoded_on_gpu = enc->encode_path == CodecPath::kGpu;
    info->policy = st->parsed.policy;
    info->policy_predicted_us = static_cast<int64_t>(st->decision.predicted_us);
    if (info->placement == Placement::kLocal) {
      AnswerLocally(st, *info, *enc);
      return;
    }

    v1::FeaturePacket pkt;
    pkt.set_model_name(enc->manifest->name);
    pkt.set_model_version(std::to_string(enc->manifest->version));
    if (info->placement == Placement::kSplit) pkt.set_split(enc->split);
    pkt.set_payload(static_cast<v1::Payload>(enc->payload));
    pkt.set_codec_bytes(enc->bytes.data(), enc->bytes.size());
    if (enc->payload != PayloadKind::kSrns) {
      pkt.mutable_shape()->Assign(enc->feature_shape.begin(), enc->feature_shape.end());
    }
    if (enc->payload == PayloadKind::kZstdAiq) {
      v1::AiqParams* a = pkt.mutable_aiq();
      a->set_q(static_cast<uint32_t>(st->parsed.head.encode.q));
      a->set_scale(enc->aiq.scale);
      a->set_zero_point(enc->aiq.zero_point);
      a->set_constant(enc->aiq.constant);
      a->set_constant_value(enc->aiq.constant_value);
    }
    pkt.mutable_edge_timings()->set_preprocess_us(enc->preprocess_us);
    pkt.mutable_edge_timings()->set_head_us(enc->head_us);
    pkt.mutable_edge_timings()->set_encode_us(enc->encode_us);
    pkt.mutable_edge_timings()->set_encoded_on_gpu(info->encoded_on_gpu);
    pkt.set_raw_feature_bytes(enc->raw_feature_bytes);
    pkt.set_top_k(st->parsed.top_k);
    const int64_t batch = st->parsed.head.input.batch;
    const int classes = enc->manifest->NumClasses();
    const int top_k = st->parsed.top_k;
    {
      const Labels l = LabelsOf(st->parsed);
      metrics_.raw_bytes.WithLabels({l.model, l.version, l.split}).Inc(static_cast<double>(enc->raw_feature_bytes));
      metrics_.coded_bytes.WithLabels({l.model, l.version, l.split}).Inc(static_cast<double>(enc->payload_bytes));
    }
    const int64_t send_us = NowMicros();
    const uint64_t payload_bytes = info->feature_bytes;
    const uint64_t ahead_bytes = link_.Begin(payload_bytes);  // what this transfer queues behind
    const uint64_t id = cloud_.Send(std::move(pkt), st->deadline,
                                    [this, st, info, batch, classes, top_k, send_us, payload_bytes,
                                     ahead_bytes](const grpc::Status& s, v1::Result r) {
                                      link_.End(payload_bytes);
                                      OnCloudResult(st, *info, batch, classes, top_k, send_us, ahead_bytes, s,
                                                    std::move(r));
                                    });
    bool cancel = false;
    {
      std::lock_guard<std::mutex> lock(st->mu);
      if (!st->finished) st->cloud_id = id;
      cancel = !st->finished && st->cancelled.load();  // cancelled before the id was known
    }
    if (cancel) cloud_.Cancel(id);
  }

  // Placement local: the edge's own unsplit model answered; nothing crossed the link.
  void AnswerLocally(const std::shared_ptr<InferState>& st, const ResponseInfo& info, const EncodedFeature& enc) {
    v1::Result r;
    r.mutable_logits()->Assign(enc.logits.begin(), enc.logits.end());
    r.mutable_logits_shape()->Assign(enc.logits_shape.begin(), enc.logits_shape.end());
    for (const TopKEntry& e :
         SoftmaxTopK(enc.logits, enc.logits_shape[0], enc.logits_shape[1], st->parsed.top_k, enc.manifest->labels)) {
      v1::Classification* c = r.add_topk();
      c->set_batch_index(e.batch_index);
      c->set_index(e.index);
      c->set_label(e.label);
      c->set_score(e.score);
    }
    ResponseInfo full = info;
    full.feature_bytes = full.raw_feature_bytes = 0;
    full.edge_total_us = NowMicros() - st->start_us;
    const Labels l = LabelsOf(st->parsed);
    const std::pair<const char*, int64_t> stages[] = {
        {"queue", st->work_start_us - st->start_us}, {"preprocess", info.preprocess_us}, {"head", info.head_us}};
    for (const auto& [stage, us] : stages) {
      metrics_.stages.WithLabels({l.model, l.version, l.split, stage}).Observe(std::max<int64_t>(0, us) * 1e-6);
    }
    Finish(st, grpc::Status::OK, [&] { BuildInferResponse(r, st->parsed, full, st->resp); });
  }

  void OnCloudResult(const std::shared_ptr<InferState>& st, const ResponseInfo& info, int64_t batch, int classes,
                     int top_k, int64_t send_us, uint64_t ahead_bytes, const grpc::Status& s, v1::Result r) {
    if (!s.ok()) {
      Finish(st, s);
      return;
    }
    absl::Status valid = ValidateCloudResult(r, batch, classes, top_k);
    if (!valid.ok()) {
      Finish(st, ToGrpcStatus(valid));
      return;
    }
    if (r.status_code() != 0) {
      std::string msg = r.status_message();
      if (msg.size() > 1000) msg.resize(1000);
      // The cloud's own messages mostly say "cloud: ..." already.
      Finish(st, grpc::Status(static_cast<grpc::StatusCode>(r.status_code()),
                              absl::StartsWith(msg, "cloud: ") ? msg : absl::StrCat("cloud: ", msg)));
      return;
    }
    const int64_t now = NowMicros();
    ResponseInfo full = info;
    full.cloud_round_trip_us = now - send_us;
    full.edge_total_us = now - st->start_us;
    {
      const Labels l = LabelsOf(st->parsed);
      const auto& ct = r.cloud_timings();
      const int64_t cloud_us = ct.queue_us() + ct.decode_us() + ct.tail_us();
      const std::pair<const char*, int64_t> stages[] = {
          {"queue", st->work_start_us - st->start_us},
          {"preprocess", info.preprocess_us},
          {"head", info.head_us},
          {"encode", info.encode_us},
          {"transfer", std::max<int64_t>(0, full.cloud_round_trip_us - cloud_us)},
          {"cloud_queue", ct.queue_us()},
          {"decode", ct.decode_us()},
          {"tail", ct.tail_us()},
      };
      for (const auto& [stage, us] : stages) {
        metrics_.stages.WithLabels({l.model, l.version, l.split, stage}).Observe(std::max<int64_t>(0, us) * 1e-6);
      }
      RecordPolicy(st, info, full.cloud_round_trip_us, cloud_us, ct.decode_us() + ct.tail_us(), ahead_bytes);
    }
    Finish(st, grpc::Status::OK, [&] { BuildInferResponse(r, st->parsed, full, st->resp); });
  }

  // What the chosen configuration cost, for the policy (on a worker or the cloud client's thread).
  // cloud_us: all the cloud reports (queue + decode + tail); cloud_work_us: decode + tail.
  static void RecordPolicy(const std::shared_ptr<InferState>& st, const ResponseInfo& info, int64_t round_trip_us,
                           int64_t cloud_us, int64_t cloud_work_us, uint64_t ahead_bytes) {
    LatencyPolicy* policy = nullptr;
    {
      std::lock_guard<std::mutex> lock(st->mu);
      if (st->finished) return;
      std::swap(policy, st->policy);
    }
    if (!policy) return;
    LatencyPolicy::Observation o;
    o.index = st->decision.index;
    o.compute_us = info.preprocess_us + info.head_us;
    o.encode_us = info.encode_us;
    o.cloud_us = cloud_work_us;
    o.bytes = info.feature_bytes;
    o.ahead_bytes = ahead_bytes;
    o.transfer_us = round_trip_us - cloud_us;
    policy->Record(o);
  }

  void OnCancelled(const std::shared_ptr<InferState>& st) {
    st->cancelled.store(true);
    uint64_t id = 0;
    {
      std::lock_guard<std::mutex> lock(st->mu);
      if (!st->finished) id = st->cloud_id;
    }
    // Waiting for the cloud: answer now (the cloud is told to drop it). Queued or running on a
    // worker: the worker stops at its next stage boundary.
    if (id != 0) cloud_.Cancel(id);
  }

  const EdgeServerOptions options_;
  const TokenAuth* auth_;  // null: no authentication
  InferDefaults defaults_;
  std::unique_ptr<HeadPipeline> pipeline_;
  LinkEstimator link_;  // the cloud link, as the edge's transfers measure it
  std::map<const ModelManifest*, std::unique_ptr<LatencyPolicy>> policies_;
  std::map<const ModelManifest*, absl::Status> policy_errors_;
  EdgeMetrics metrics_;
  std::atomic<int> inflight_{0};
  LogRateLimiter failure_log_;
  CloudPool cloud_;  // after what its callbacks use: destroyed before them
  ThreadPool pool_;    // last: destroyed (joined) first
};

absl::StatusOr<std::unique_ptr<EdgeServer>> EdgeServer::Create(const EdgeServerOptions& options) {
  ConfigureTorchThreads(options.torch_threads);
  auto pipeline = HeadPipeline::Create(options.pipeline);
  if (!pipeline.ok()) return pipeline.status();
  std::unique_ptr<EdgeServer> s(new EdgeServer());
  s->options_ = options;
  if (!options.auth_tokens_file.empty()) {
    auto auth = TokenAuth::FromFile(options.auth_tokens_file);
    if (!auth.ok()) return auth.status();
    s->auth_ = std::move(*auth);
    if (!options.reflection_with_auth) s->options_.server.reflection = false;
    spdlog::info("edge: bearer-token authentication on ({} tokens from {}), health {}, reflection {}",
                 s->auth_->size(), options.auth_tokens_file, options.health_requires_auth ? "needs a token" : "open",
                 s->options_.server.reflection ? "on" : "off");
  }
  if (auto target = ParseCloudTarget(options.cloud.target); !target.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("edge: --cloud: ", target.status().message()));
  }
  auto cloud_credentials = MakeChannelCredentials(options.cloud.tls);
  if (!cloud_credentials.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("edge: cloud TLS: ", cloud_credentials.status().message()));
  }
  s->service_ = std::make_unique<Service>(s->options_, std::move(*pipeline), s->auth_.get(), *cloud_credentials,
                                         &s->registry_);
  for (const auto& [m, err] : s->service_->policy_errors()) {
    if (options.default_policy == PolicyKind::kLatency) {
      return absl::Status(err.code(), absl::StrCat("edge: --policy latency: ", m->name, " v", m->version, ": ", err.message()));
    }
    spdlog::warn("edge: policy latency will refuse {} v{}: {}", m->name, m->version, std::string(err.message()));
  }
  spdlog::info("edge: cloud target {} ({} mode, {}, deadline {} ms, {} workers, at most {} in flight and {} queued)",
               options.cloud.target, options.cloud.use_stream ? "stream" : "unary",
               options.cloud.tls.enabled()
                   ? absl::StrCat("TLS with CA ", options.cloud.tls.files.ca,
                                  options.cloud.tls.files.cert.empty() ? "" : ", client certificate " + options.cloud.tls.files.cert)
                   : std::string("plaintext"),
               options.cloud.deadline_ms, options.workers, options.max_inflight, options.max_queue);
  return s;
}

EdgeServer::~EdgeServer() {
  Shutdown(0);
  if (service_) service_->cloud().SetStateListener(nullptr);
}

CloudPool& EdgeServer::cloud() { return service_->cloud(); }

absl::Status EdgeServer::Start() {
  const std::string& metrics_address = options_.server.metrics_listen_address;
  if (!metrics_address.empty()) {
    auto m = metrics::MetricsServer::Start(metrics_address, &registry_);
    if (!m.ok()) return absl::Status(m.status().code(), absl::StrCat("edge: ", m.status().message()));
    metrics_server_ = std::move(*m);
    spdlog::info("edge: Prometheus metrics on port {} ({}), GET /metrics", metrics_server_->port(), metrics_address);
  }
  auto st = server_.Start(options_.server, "edge", "KServe v2 (inference.GRPCInferenceService)", service_.get(),
                          options_.health_requires_auth ? auth_.get() : nullptr);
  if (!st.ok()) {
    metrics_server_.reset();
    return st;
  }
  // grpc.health.v1 follows the cloud: NOT_SERVING while the edge cannot reach it.
  CloudPool* cloud = &service_->cloud();
  cloud->SetStateListener([this, cloud] { server_.SetServing(cloud->Connected()); });  // runs once now too
  return absl::OkStatus();
}

void EdgeServer::Shutdown(int grace_ms) { server_.Shutdown(grace_ms); }

void EdgeServer::Wait() { server_.Wait(); }

}  // namespace splitrans::edge

#include "cloud/cloud_server.h"

#include <absl/strings/str_cat.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <exception>
#include <mutex>
#include <new>
#include <set>
#include <unordered_map>

#include "common/clock.h"
#include "common/logging.h"
#include "common/status_util.h"
#include "common/thread_pool.h"
#include "proto/split_inference.grpc.pb.h"

namespace splitrans::cloud {
namespace v1 = ::splitrans::v1;

namespace {

constexpr int64_t kNoDeadline = INT64_MAX;

// The bytes a packet's payload took on the wire.
size_t PayloadBytes(const v1::FeaturePacket& p) {
  return p.codec_bytes().size();
}

v1::Result ErrorResult(uint64_t id, grpc::StatusCode code, std::string message) {
  v1::Result r;
  r.set_request_id(id);
  r.set_status_code(code);
  r.set_status_message(std::move(message));
  return r;
}

// A packet's timeout is bounded (it comes from the peer): beyond an hour it counts as none.
constexpr int64_t kMaxTimeoutUs = int64_t{3600} * 1000000;

// The earlier of a packet's own timeout and an RPC deadline, in NowMicros() time.
int64_t DeadlineUs(const v1::FeaturePacket& p, int64_t received_us, std::chrono::system_clock::time_point rpc) {
  int64_t d = p.timeout_us() > 0 && p.timeout_us() <= kMaxTimeoutUs ? received_us + p.timeout_us() : kNoDeadline;
  if (rpc < std::chrono::system_clock::time_point::max() - std::chrono::hours(24 * 365)) {
    const int64_t left = std::chrono::duration_cast<std::chrono::microseconds>(rpc - std::chrono::system_clock::now()).count();
    d = std::min(d, received_us + std::min(left, kMaxTimeoutUs));
  }
  return d;
}

// A request's label values, bounded by the repository: a model, version or split this server
// does not have is "unknown", so that a peer cannot create series at will.
struct RequestLabels {
  static constexpr const char* kUnknown = "unknown";
  std::string model = kUnknown, version = kUnknown, split = kUnknown;
  int64_t feature_elements = 0;  // C * H * W of the split (0: unknown)
};

double Seconds(int64_t us) { return static_cast<double>(us) * 1e-6; }

// The cloud's metrics (README "Metrics") except the gauges computed at scrape time.
class CloudMetrics {
 public:
  explicit CloudMetrics(metrics::Registry* r)
      : requests_(r->AddCounter("splitrans_cloud_requests_total",
                                "Requests answered (or dropped with their stream, as CANCELLED), by gRPC status code",
                                {"model", "version", "split", "code"})),
        request_duration_(r->AddHistogram("splitrans_cloud_request_duration_seconds",
                                          "Receipt of a request to its answer (errors included), in seconds",
                                          {"model", "version", "split"}, metrics::DefaultLatencyBuckets())),
        stage_duration_(r->AddHistogram("splitrans_cloud_stage_duration_seconds",
                                        "Time in each stage, in seconds: queue (waiting for a worker; every request "
                                        "that reached one), decode and tail (requests answered OK)",
                                        {"model", "version", "split", "stage"}, metrics::DefaultLatencyBuckets())),
        coded_bytes_(r->AddCounter("splitrans_cloud_feature_coded_bytes_total",
                                   "Coded feature bytes of the requests answered OK", {"model", "version", "split"})),
        raw_bytes_(r->AddCounter("splitrans_cloud_feature_raw_bytes_total",
                                 "Decoded (float32) feature bytes of the requests answered OK",
                                 {"model", "version", "split"})),
        inflight_(r->AddGauge("splitrans_cloud_inflight_requests",
                              "Requests received and not yet answered (queued ones included)")
                      .WithLabels({})) {}

  void Received() { inflight_.Inc(); }
  // Once per received request, when it is answered (or dropped with its stream).
  void Answered(const RequestLabels& l, int code, int64_t received_us) {
    inflight_.Dec();
    requests_.WithLabels({l.model, l.version, l.split, metrics::CodeLabel(code)}).Inc();
    request_duration_.WithLabels({l.model, l.version, l.split}).Observe(Seconds(NowMicros() - received_us));
  }
  void Queued(const RequestLabels& l, int64_t queue_us) { Stage(l, "queue", queue_us); }
  void Succeeded(const RequestLabels& l, const TailResult& r, size_t coded_bytes) {
    Stage(l, "decode", r.decode_us);
    Stage(l, "tail", r.tail_us);
    const int64_t batch = r.logits_shape.empty() ? 1 : r.logits_shape[0];
    coded_bytes_.WithLabels({l.model, l.version, l.split}).Inc(static_cast<double>(coded_bytes));
    raw_bytes_.WithLabels({l.model, l.version, l.split})
        .Inc(static_cast<double>(batch) * static_cast<double>(l.feature_elements) * sizeof(float));
  }

 private:
  void Stage(const RequestLabels& l, const char* stage, int64_t us) {
    stage_duration_.WithLabels({l.model, l.version, l.split, stage}).Observe(Seconds(us));
  }

  metrics::CounterFamily& requests_;
  metrics::HistogramFamily& request_duration_;
  metrics::HistogramFamily& stage_duration_;
  metrics::CounterFamily& coded_bytes_;
  metrics::CounterFamily& raw_bytes_;
  metrics::Gauge& inflight_;
};

class StreamReactor;

}  // namespace

// Thin transport: proto <-> core types, absl::Status -> grpc::Status. Work runs on pool_.
class CloudServer::Service final : public v1::SplitInference::CallbackService {
 public:
  Service(std::unique_ptr<TailPipeline> pipeline, const CloudServerOptions& options, metrics::Registry* registry)
      : pipeline_(std::move(pipeline)),
        options_(options),
        metrics_(registry),
        pool_(options.workers, static_cast<size_t>(options.max_queue), "cloud workers") {
    // The callbacks read this service: the metrics endpoint stops before it is destroyed.
    registry->AddCallbackGauge("splitrans_cloud_queue_depth", "Requests waiting for a worker", {}, [this] {
      return std::vector<metrics::Registry::Sample>{{{}, static_cast<double>(pool_.QueueDepth())}};
    });
    registry->AddCallbackGauge("splitrans_cloud_streams", "Open edge streams", {}, [this] {
      std::lock_guard<std::mutex> lock(streams_mu_);
      return std::vector<metrics::Registry::Sample>{{{}, static_cast<double>(streams_.size())}};
    });
    registry->AddGauge("splitrans_codec_device_info", "Where the codec runs (dense layout; other layouts on the CPU)",
                       {"device"})
        .WithLabels({pipeline_->codec().gpu() ? "gpu" : "cpu"})
        .Set(1);
    metrics::AddBuildInfo(registry);
  }

  // The request's label values (see RequestLabels).
  RequestLabels Labels(const v1::FeaturePacket& p) const {
    RequestLabels l;
    const ModelRepository& repo = pipeline_->repository();
    auto m = repo.Find(p.model_name(), p.model_version());
    if (!m.ok()) {
      if (repo.Find(p.model_name()).ok()) l.model = p.model_name();  // a known model, an unknown version
      return l;
    }
    l.model = (*m)->name;
    l.version = std::to_string((*m)->version);
    if (p.payload() == v1::PAYLOAD_INPUT_IMAGES || p.payload() == v1::PAYLOAD_INPUT_F32 ||
        p.payload() == v1::PAYLOAD_INPUT_U8 || p.payload() == v1::PAYLOAD_INPUT_TOKENS) {
      l.split = "full";  // full offload: the unsplit model's input
      l.feature_elements = (*m)->InputElements();
      return l;
    }
    auto split = (*m)->FindSplit(p.split());
    if (split.ok()) {
      l.split = (*split)->name;
      l.feature_elements = 1;
      for (int64_t d : (*split)->feature_shape) l.feature_elements *= d;
    }
    return l;
  }

  // Runs one packet through the pipeline into *out (status included), unless it expired or was
  // cancelled first. Blocking: pool threads only. Never throws: any exception becomes INTERNAL.
  // Records the stage metrics; the caller records the answer (CloudMetrics::Answered).
  void Process(const v1::FeaturePacket& in, const RequestLabels& labels, int64_t received_us, int64_t deadline_us,
               bool cancelled, v1::Result* out) {
    auto fail = [&](const char* why) {
      out->Clear();
      out->set_request_id(in.request_id());
      out->set_status_code(static_cast<int>(grpc::StatusCode::INTERNAL));
      out->set_status_message(why);
    };
    try {
      ProcessOrThrow(in, labels, received_us, deadline_us, cancelled, out);
    } catch (const std::bad_alloc&) {
      fail("cloud: out of memory while answering the request");
    } catch (...) {
      fail("cloud: answering the request failed (exception)");
    }
  }

  void ProcessOrThrow(const v1::FeaturePacket& in, const RequestLabels& labels, int64_t received_us,
                      int64_t deadline_us, bool cancelled, v1::Result* out) {
    const int64_t start = NowMicros();
    out->set_request_id(in.request_id());
    out->mutable_cloud_timings()->set_queue_us(start - received_us);
    metrics_.Queued(labels, start - received_us);
    absl::StatusOr<TailResult> r;
    if (cancelled) {
      r = absl::CancelledError("cancelled by the edge before decoding");
    } else if (start >= deadline_us) {
      r = absl::DeadlineExceededError(absl::StrCat("cloud: the request's deadline passed after ",
                                                   (start - received_us) / 1000, " ms in the cloud's queue, before decoding"));
    } else {
      try {
        if (options_.test_before_decode) options_.test_before_decode();
        FeatureRequest req;
        req.top_k = static_cast<int>(std::min<uint32_t>(in.top_k(), 1 << 20));
        if (absl::Status st = FromPacket(in, &req); !st.ok()) {
          r = st;
        } else {
          r = pipeline_->Run(req);
        }
      } catch (const std::bad_alloc&) {
        r = absl::InternalError("cloud: out of memory while decoding or running the tail");
      } catch (const std::exception& e) {
        r = absl::InternalError(absl::StrCat("cloud: request failed: ", e.what()));
      }
    }
    if (!r.ok()) {
      out->set_status_code(static_cast<int>(r.status().code()));
      out->set_status_message(std::string(r.status().message()));
      int64_t suppressed = 0;
      if (failure_log_.Allow(&suppressed)) {
        spdlog::warn("cloud: request {} ({}/{} split {}) failed: {}{}", in.request_id(), in.model_name().substr(0, 64),
                     in.model_version().substr(0, 16), in.split().substr(0, 64), r.status().ToString(),
                     suppressed ? absl::StrCat(" (", suppressed, " earlier failures not logged)") : "");
      }
      return;
    }
    metrics_.Succeeded(labels, *r, PayloadBytes(in));
    out->set_status_code(0);
    out->set_model_version(r->model_version);
    out->mutable_logits()->Assign(r->logits.begin(), r->logits.end());
    out->mutable_logits_shape()->Assign(r->logits_shape.begin(), r->logits_shape.end());
    for (const TopKEntry& e : r->topk) {
      v1::Classification* c = out->add_topk();
      c->set_batch_index(e.batch_index);
      c->set_index(e.index);
      c->set_label(e.label);
      c->set_score(e.score);
    }
    out->mutable_cloud_timings()->set_decode_us(r->decode_us);
    out->mutable_cloud_timings()->set_decoded_on_gpu(r->decode_path == CodecPath::kGpu);
    out->mutable_cloud_timings()->set_tail_us(r->tail_us);
  }

  grpc::ServerUnaryReactor* Infer(grpc::CallbackServerContext* ctx, const v1::FeaturePacket* in,
                                  v1::Result* out) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    const int64_t received = NowMicros();
    OnPacket();
    const RequestLabels labels = Labels(*in);
    metrics_.Received();
    const int64_t deadline = DeadlineUs(*in, received, ctx->deadline());
    const bool posted = pool_.TryPost([this, ctx, reactor, in, out, received, deadline, labels] {
      Process(*in, labels, received, deadline, ctx->IsCancelled(), out);
      metrics_.Answered(labels, out->status_code(), received);
      if (out->status_code() == 0) {
        reactor->Finish(grpc::Status::OK);
      } else {
        reactor->Finish(grpc::Status(static_cast<grpc::StatusCode>(out->status_code()), out->status_message()));
      }
    });
    OnAdmission(posted);
    if (!posted) {
      metrics_.Answered(labels, static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED), received);
      reactor->Finish(QueueFull());
    }
    return reactor;
  }

  grpc::ServerBidiReactor<v1::FeaturePacket, v1::Result>* Stream(grpc::CallbackServerContext* ctx) override;

  grpc::Status QueueFull() const {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("cloud: worker queue is full (", pool_.max_queue(), " requests waiting, limit --max-queue)"));
  }

  void OnCancelPacket() {
    if (options_.test_on_cancel) options_.test_on_cancel();
  }
  void OnPacket() {
    if (options_.test_on_packet) options_.test_on_packet();
  }
  void OnAdmission(bool queued) {
    if (options_.test_on_admission) options_.test_on_admission(queued);
  }

  // Tells every open stream (and every stream opened from now on) to drain.
  void Drain();
  void Unregister(StreamReactor* r);

  TailPipeline& pipeline() { return *pipeline_; }
  ThreadPool& pool() { return pool_; }
  CloudMetrics& metrics() { return metrics_; }
  int max_inflight() const { return std::max(1, options_.max_inflight_per_stream); }

 private:
  std::unique_ptr<TailPipeline> pipeline_;
  const CloudServerOptions options_;
  CloudMetrics metrics_;
  LogRateLimiter failure_log_;
  std::mutex streams_mu_;
  bool draining_ = false;
  std::unordered_map<StreamReactor*, std::weak_ptr<StreamReactor>> streams_;
  ThreadPool pool_;  // last: destroyed (joined) first
};

namespace {

// One edge connection: reads packets, processes them on the pool, writes results in completion
// order (one read and one write in flight). Finishes when the edge half-closes (or cancels) and
// all of its work is done; deletes itself after OnDone once no one else holds it.
class StreamReactor final : public grpc::ServerBidiReactor<v1::FeaturePacket, v1::Result> {
 public:
  StreamReactor(CloudServer::Service* service, grpc::CallbackServerContext* ctx)
      : service_(service), peer_(ctx->peer()), rpc_deadline_(ctx->deadline()) {}

  void Start(std::shared_ptr<StreamReactor> self) {
    self_ = std::move(self);
    spdlog::info("cloud: stream opened by {}", peer_);
    StartSendInitialMetadata();  // lets the edge know the stream is established
    {
      std::lock_guard<std::mutex> lock(mu_);
      read_pending_ = true;
    }
    StartRead(&in_);
  }

  // Asks the edge to send nothing more on this stream (a Result with draining = true).
  void Drain() {
    Act([&] {
      if (!drain_sent_ && !broken_) drain_pending_ = true;
    });
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Act([&] {
        read_pending_ = false;
        reads_done_ = true;
      });
      return;
    }
    v1::FeaturePacket pkt = std::move(in_);
    in_.Clear();
    const int64_t received = NowMicros();
    RequestLabels labels;
    if (!pkt.cancel()) {
      service_->OnPacket();
      labels = service_->Labels(pkt);
      service_->metrics().Received();
    }
    Act([&] {
      read_pending_ = false;  // Act starts the next read while the stream's budget allows it
      const uint64_t id = pkt.request_id();
      if (pkt.cancel()) {
        auto it = inflight_.find(id);
        if (it != inflight_.end()) it->second->cancelled.store(true);
        service_->OnCancelPacket();
        return;
      }
      if (inflight_.count(id)) {
        // Counted before the answer can be written (under the lock: a short one).
        service_->metrics().Answered(labels, static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT), received);
        queue_.push_back(ErrorResult(id, grpc::StatusCode::INVALID_ARGUMENT,
                                     absl::StrCat("duplicate request_id ", id, ": a request with this id is in flight on this stream")));
        return;
      }
      auto work = std::make_shared<Work>();
      work->labels = labels;
      work->received_us = received;
      work->deadline_us = DeadlineUs(pkt, received, rpc_deadline_);
      work->packet = std::move(pkt);
      const bool posted = service_->pool().TryPost([this, work, keep = self_] { RunWork(*work); });
      service_->OnAdmission(posted);
      if (!posted) {
        service_->metrics().Answered(labels, static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED), received);
        queue_.push_back(ErrorResult(id, grpc::StatusCode::RESOURCE_EXHAUSTED, service_->QueueFull().error_message()));
        return;
      }
      inflight_[id] = work;
      ++outstanding_;
    });
  }

  void OnWriteDone(bool ok) override {
    Act([&] {
      writing_ = false;
      if (!ok) broken_ = true;
    });
  }

  void OnCancel() override {
    Act([&] {
      broken_ = true;
      if (!read_pending_) reads_done_ = true;  // nothing else will report the end of reads
    });
  }

  void OnDone() override {
    spdlog::info("cloud: stream from {} closed", peer_);
    service_->Unregister(this);
    std::shared_ptr<StreamReactor> self;
    {
      std::lock_guard<std::mutex> lock(mu_);
      self = std::move(self_);
    }
    // self's destructor may delete this.
  }

 private:
  struct Work {
    v1::FeaturePacket packet;
    RequestLabels labels;
    int64_t received_us = 0, deadline_us = kNoDeadline;
    std::atomic<bool> cancelled{false};
  };

  void RunWork(const Work& work) {
    bool broken;
    {
      std::lock_guard<std::mutex> lock(mu_);
      broken = broken_;
    }
    v1::Result result;
    if (!broken) {
      service_->Process(work.packet, work.labels, work.received_us, work.deadline_us, work.cancelled.load(), &result);
    }
    service_->metrics().Answered(work.labels,
                                 broken ? static_cast<int>(grpc::StatusCode::CANCELLED) : result.status_code(),
                                 work.received_us);
    const uint64_t id = work.packet.request_id();
    Act([&] {
      inflight_.erase(id);
      --outstanding_;
      if (!broken_) queue_.push_back(std::move(result));
    });
  }

  // Applies a state change under the lock, then starts at most one write / read / Finish
  // outside it (a reaction may run inline and Finish may lead to OnDone). The next read starts
  // only while requests in progress plus answers waiting to be written stay under the stream's
  // budget: a peer that does not read its answers cannot make them pile up.
  template <typename F>
  void Act(F&& change) {
    bool write = false, read = false, finish = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      change();
      if (!writing_ && !broken_) {
        if (drain_pending_) {
          out_.Clear();
          out_.set_draining(true);
          drain_pending_ = false;
          drain_sent_ = true;
          writing_ = write = true;
        } else if (!queue_.empty()) {
          out_ = std::move(queue_.front());
          queue_.pop_front();
          writing_ = write = true;
        }
      }
      if (!read_pending_ && !reads_done_ && !broken_ &&
          outstanding_ + static_cast<int>(queue_.size()) < service_->max_inflight()) {
        read_pending_ = read = true;
      }
      if (broken_ && !read_pending_) reads_done_ = true;  // no read will report the end
      if (reads_done_ && outstanding_ == 0 && !writing_ && ((queue_.empty() && !drain_pending_) || broken_)) {
        finished_ = finish = true;
      }
    }
    if (write) StartWrite(&out_);
    if (read) StartRead(&in_);
    if (finish) Finish(grpc::Status::OK);
  }

  CloudServer::Service* service_;
  std::string peer_;
  std::chrono::system_clock::time_point rpc_deadline_;
  v1::FeaturePacket in_;
  v1::Result out_;
  std::mutex mu_;
  std::shared_ptr<StreamReactor> self_;
  std::deque<v1::Result> queue_;
  std::unordered_map<uint64_t, std::shared_ptr<Work>> inflight_;
  int outstanding_ = 0;
  bool reads_done_ = false, read_pending_ = false;
  bool writing_ = false, broken_ = false, finished_ = false;
  bool drain_pending_ = false, drain_sent_ = false;
};

}  // namespace

grpc::ServerBidiReactor<v1::FeaturePacket, v1::Result>* CloudServer::Service::Stream(
    grpc::CallbackServerContext* ctx) {
  auto r = std::make_shared<StreamReactor>(this, ctx);
  r->Start(r);  // before Drain() can reach it
  bool drain;
  {
    std::lock_guard<std::mutex> lock(streams_mu_);
    streams_[r.get()] = r;
    drain = draining_;
  }
  if (drain) r->Drain();
  return r.get();
}

void CloudServer::Service::Drain() {
  std::vector<std::shared_ptr<StreamReactor>> open;
  {
    std::lock_guard<std::mutex> lock(streams_mu_);
    draining_ = true;
    for (auto& [p, w] : streams_)
      if (auto s = w.lock()) open.push_back(std::move(s));
  }
  for (auto& s : open) s->Drain();
  if (!open.empty()) spdlog::info("cloud: asked {} edge stream(s) to drain", open.size());
}

void CloudServer::Service::Unregister(StreamReactor* r) {
  std::lock_guard<std::mutex> lock(streams_mu_);
  streams_.erase(r);
}

absl::StatusOr<std::unique_ptr<CloudServer>> CloudServer::Create(const CloudServerOptions& options) {
  ConfigureTorchThreads(options.torch_threads);
  auto pipeline = TailPipeline::Create(options.pipeline);
  if (!pipeline.ok()) return pipeline.status();
  std::unique_ptr<CloudServer> s(new CloudServer());
  s->options_ = options;
  s->service_ = std::make_unique<Service>(std::move(*pipeline), options, &s->registry_);
  spdlog::info("cloud: {} worker threads, {} torch threads, at most {} queued, {} in flight per stream",
               options.workers, options.torch_threads, options.max_queue, options.max_inflight_per_stream);
  return s;
}

CloudServer::~CloudServer() { Shutdown(0); }

const TailPipeline& CloudServer::pipeline() const { return service_->pipeline(); }

absl::Status CloudServer::Start() {
  const std::string& metrics_address = options_.server.metrics_listen_address;
  if (!metrics_address.empty()) {
    auto m = metrics::MetricsServer::Start(metrics_address, &registry_);
    if (!m.ok()) return absl::Status(m.status().code(), absl::StrCat("cloud: ", m.status().message()));
    metrics_server_ = std::move(*m);
    spdlog::info("cloud: Prometheus metrics on port {} ({}), GET /metrics", metrics_server_->port(), metrics_address);
  }
  auto st = server_.Start(options_.server, "cloud", "splitrans.v1.SplitInference", service_.get());
  if (!st.ok()) {
    metrics_server_.reset();
    return st;
  }
  server_.SetServing(true);  // the models are loaded: ready until shutdown
  return st;
}

void CloudServer::Shutdown(int grace_ms) {
  server_.Shutdown(grace_ms, [this] { service_->Drain(); });
}

void CloudServer::Wait() { server_.Wait(); }

}  // namespace splitrans::cloud

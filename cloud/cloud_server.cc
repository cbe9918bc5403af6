#include "cloud/cloud_server.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <deque>
#include <mutex>

#include "common/clock.h"
#include "common/status_util.h"
#include "common/thread_pool.h"
#include "proto/split_inference.grpc.pb.h"

namespace splitrans::cloud {
namespace v1 = ::splitrans::v1;

// Thin transport: proto <-> core types, absl::Status -> grpc::Status. Work runs on pool_.
class CloudServer::Service final : public v1::SplitInference::CallbackService {
 public:
  Service(std::unique_ptr<TailPipeline> pipeline, int workers, int max_inflight)
      : pipeline_(std::move(pipeline)), pool_(workers), max_inflight_(max_inflight) {}

  // Runs one packet through the pipeline into *out (status included). Blocking: pool threads only.
  void Process(const v1::FeaturePacket& in, int64_t enqueued_us, v1::Result* out) {
    const int64_t start = NowMicros();
    out->set_request_id(in.request_id());
    FeatureRequest req;
    req.model_name = in.model_name();
    req.model_version = in.model_version();
    req.split = in.split();
    req.codec_bytes = reinterpret_cast<const uint8_t*>(in.codec_bytes().data());
    req.codec_size = in.codec_bytes().size();
    req.top_k = static_cast<int>(std::min<uint32_t>(in.top_k(), 1 << 20));
    auto r = pipeline_->Run(req);
    out->mutable_cloud_timings()->set_queue_us(start - enqueued_us);
    if (!r.ok()) {
      out->set_status_code(static_cast<int>(r.status().code()));
      out->set_status_message(std::string(r.status().message()));
      spdlog::debug("cloud: request {} ({}/{}) failed: {}", in.request_id(), in.model_name(),
                    in.split(), r.status().ToString());
      return;
    }
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
    const int64_t enq = NowMicros();
    pool_.Post([this, reactor, in, out, enq] {
      Process(*in, enq, out);
      if (out->status_code() == 0) {
        reactor->Finish(grpc::Status::OK);
      } else {
        reactor->Finish(grpc::Status(static_cast<grpc::StatusCode>(out->status_code()),
                                     out->status_message()));
      }
    });
    return reactor;
  }

  grpc::ServerBidiReactor<v1::FeaturePacket, v1::Result>* Stream(
      grpc::CallbackServerContext* ctx) override;

  TailPipeline& pipeline() { return *pipeline_; }
  ThreadPool& pool() { return pool_; }
  int max_inflight() const { return max_inflight_; }

 private:
  std::unique_ptr<TailPipeline> pipeline_;
  ThreadPool pool_;
  int max_inflight_;
};

namespace {

// One edge connection: reads packets, processes them on the pool, writes results in completion
// order (one read and one write in flight). Finishes when the edge half-closes (or cancels) and
// all of its work is done; deletes itself in OnDone.
class StreamReactor final : public grpc::ServerBidiReactor<v1::FeaturePacket, v1::Result> {
 public:
  StreamReactor(CloudServer::Service* service, std::string peer)
      : service_(service), peer_(std::move(peer)) {
    spdlog::info("cloud: stream opened by {}", peer_);
    StartSendInitialMetadata();  // lets the edge know the stream is established
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Act([&] { reads_done_ = true; });
      return;
    }
    auto pkt = std::make_shared<v1::FeaturePacket>(std::move(in_));
    in_.Clear();
    bool read_more = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++outstanding_;
      read_more = outstanding_ < service_->max_inflight();
      read_paused_ = !read_more;
    }
    const int64_t enq = NowMicros();
    service_->pool().Post([this, pkt, enq] {
      v1::Result result;
      service_->Process(*pkt, enq, &result);
      Act([&] {
        --outstanding_;
        if (!broken_) queue_.push_back(std::move(result));
        if (read_paused_ && !reads_done_) {
          read_paused_ = false;
          if (broken_) {
            reads_done_ = true;  // no read is pending and none will be started
          } else {
            resume_read_ = true;
          }
        }
      });
    });
    if (read_more) StartRead(&in_);
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
      if (read_paused_) {  // no read pending: nothing else will report the end of reads
        read_paused_ = false;
        reads_done_ = true;
      }
    });
  }

  void OnDone() override {
    spdlog::info("cloud: stream from {} closed", peer_);
    delete this;
  }

 private:
  // Applies a state change under the lock, then starts at most one write / read / Finish
  // outside it (a reaction may run inline and Finish may delete this).
  template <typename F>
  void Act(F&& change) {
    bool write = false, read = false, finish = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      change();
      if (!writing_ && !broken_ && !queue_.empty()) {
        out_ = std::move(queue_.front());
        queue_.pop_front();
        writing_ = write = true;
      }
      if (resume_read_) {
        resume_read_ = false;
        read = true;
      }
      if (!finished_ && reads_done_ && outstanding_ == 0 && !writing_ &&
          (queue_.empty() || broken_)) {
        finished_ = finish = true;
      }
    }
    if (write) StartWrite(&out_);
    if (read) StartRead(&in_);
    if (finish) Finish(grpc::Status::OK);
  }

  CloudServer::Service* service_;
  std::string peer_;
  v1::FeaturePacket in_;
  v1::Result out_;
  std::mutex mu_;
  std::deque<v1::Result> queue_;
  int outstanding_ = 0;
  bool reads_done_ = false, read_paused_ = false, resume_read_ = false;
  bool writing_ = false, broken_ = false, finished_ = false;
};

}  // namespace

grpc::ServerBidiReactor<v1::FeaturePacket, v1::Result>* CloudServer::Service::Stream(
    grpc::CallbackServerContext* ctx) {
  return new StreamReactor(this, ctx->peer());
}

absl::StatusOr<std::unique_ptr<CloudServer>> CloudServer::Create(const CloudServerOptions& options) {
  ConfigureTorchThreads(options.torch_threads);
  auto pipeline = TailPipeline::Create(options.pipeline);
  if (!pipeline.ok()) return pipeline.status();
  std::unique_ptr<CloudServer> s(new CloudServer());
  s->options_ = options;
  s->service_ = std::make_unique<Service>(std::move(*pipeline), options.workers,
                                          std::max(1, options.max_inflight_per_stream));
  // GPU hook: the codec decodes on the CPU here; a CUDA decoder can be plugged into
  // TailPipeline::Run when the codec exposes one.
  spdlog::info("cloud: codec decode on CPU ({} worker threads, {} torch threads)", options.workers,
               options.torch_threads);
  return s;
}

CloudServer::~CloudServer() { Shutdown(0); }

const TailPipeline& CloudServer::pipeline() const { return service_->pipeline(); }

absl::Status CloudServer::Start() {
  return server_.Start(GrpcServerOptionsOf(options_, "cloud", "splitrans.v1.SplitInference"),
                       service_.get());
}

void CloudServer::Shutdown(int grace_ms) { server_.Shutdown(grace_ms); }

void CloudServer::Wait() { server_.Wait(); }

}  // namespace splitrans::cloud

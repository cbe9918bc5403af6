#include "edge/cloud_client.h"

#include <absl/strings/str_cat.h>
#include <spdlog/spdlog.h>

#include <deque>
#include <vector>

namespace splitrans::edge {
namespace v1 = ::splitrans::v1;
using Clock = std::chrono::steady_clock;

// One SplitInference.Stream call. Keeps itself alive (self_) until OnDone. One write and one
// read in flight; a hold keeps the call open for writes until the read side ends.
class CloudClient::StreamCall final : public grpc::ClientBidiReactor<v1::FeaturePacket, v1::Result> {
 public:
  explicit StreamCall(CloudClient* client) : client_(client) {}

  void Start(std::shared_ptr<StreamCall> self) {
    self_ = std::move(self);
    client_->stub_->async()->Stream(&ctx_, this);
    StartRead(&in_);
    AddHold();
    StartCall();
  }

  // Queues a packet; false if the stream is already ending.
  bool Write(v1::FeaturePacket packet) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (dead_) return false;
      queue_.push_back(std::move(packet));
      if (writing_) return true;
      writing_ = true;
      out_ = std::move(queue_.front());
      queue_.pop_front();
    }
    StartWrite(&out_);
    return true;
  }

  void Cancel() { ctx_.TryCancel(); }

  void OnReadInitialMetadataDone(bool ok) override {
    if (ok) client_->OnStreamEstablished(this);
  }

  void OnReadDone(bool ok) override {
    if (ok) {
      client_->OnResult(std::move(in_));
      in_.Clear();
      StartRead(&in_);
      return;
    }
    bool release = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      dead_ = true;
      queue_.clear();  // their requests fail in OnDone
      release = !writing_;
    }
    if (release) RemoveHold();
  }

  void OnWriteDone(bool ok) override {
    bool write = false, release = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!ok) queue_.clear();
      if (!dead_ && ok && !queue_.empty()) {
        out_ = std::move(queue_.front());
        queue_.pop_front();
        write = true;
      } else {
        writing_ = false;
        release = dead_;
      }
    }
    if (write) StartWrite(&out_);
    if (release) RemoveHold();
  }

  void OnDone(const grpc::Status& status) override {
    client_->OnStreamDone(this, status);
    self_.reset();  // may delete this
  }

 private:
  CloudClient* client_;
  std::shared_ptr<StreamCall> self_;
  grpc::ClientContext ctx_;
  v1::FeaturePacket out_;
  v1::Result in_;
  std::mutex mu_;
  std::deque<v1::FeaturePacket> queue_;
  bool writing_ = false, dead_ = false;
};

CloudClient::CloudClient(CloudClientOptions options) : options_(std::move(options)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options_.max_message_bytes);
  args.SetMaxSendMessageSize(options_.max_message_bytes);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, options_.initial_backoff_ms);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, options_.initial_backoff_ms);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, options_.max_backoff_ms);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  channel_ = grpc::CreateCustomChannel(options_.target, grpc::InsecureChannelCredentials(), args);
  stub_ = v1::SplitInference::NewStub(channel_);
  if (options_.use_stream) connector_ = std::thread([this] { ConnectLoop(); });
  sweeper_ = std::thread([this] { SweepLoop(); });
}

CloudClient::~CloudClient() {
  std::shared_ptr<StreamCall> stream;
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
    stream = stream_;
  }
  cv_.notify_all();
  if (stream) stream->Cancel();
  if (connector_.joinable()) connector_.join();
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return live_streams_ == 0; });
  }
  if (sweeper_.joinable()) sweeper_.join();
  // Unary calls complete on their own (deadline); wait for them.
  while (unary_inflight_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::map<uint64_t, Pending> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(pending_);
  }
  for (auto& [id, p] : left) p.done(grpc::Status(grpc::StatusCode::UNAVAILABLE, "edge shutting down"), {});
}

bool CloudClient::Connected() const {
  if (!options_.use_stream) return channel_->GetState(true) == GRPC_CHANNEL_READY;
  std::lock_guard<std::mutex> lock(mu_);
  return established_;
}

void CloudClient::ConnectLoop() {
  int backoff_ms = options_.initial_backoff_ms;
  std::unique_lock<std::mutex> lock(mu_);
  while (!shutdown_) {
    // Open a stream and wait until it is established or has failed.
    auto call = std::make_shared<StreamCall>(this);
    stream_ = call;
    established_ = false;
    ++live_streams_;
    lock.unlock();
    call->Start(call);
    lock.lock();
    cv_.wait(lock, [&] { return shutdown_ || established_ || stream_ != call; });
    if (shutdown_) break;
    if (established_ && stream_ == call) {
      spdlog::info("edge: connected to cloud {} (stream established)", options_.target);
      backoff_ms = options_.initial_backoff_ms;
      cv_.wait(lock, [&] { return shutdown_ || stream_ != call; });
      if (shutdown_) break;
      spdlog::warn("edge: cloud stream lost: {}; reconnecting", last_error_);
    }
    // Failed or lost: back off (exponentially) before the next attempt.
    // Warn once per outage (first failed attempt), then keep retrying quietly.
    spdlog::log(backoff_ms == options_.initial_backoff_ms ? spdlog::level::warn : spdlog::level::debug,
                "edge: cloud {} unavailable ({}), retrying in {} ms (backoff up to {} ms)",
                options_.target, last_error_, backoff_ms, options_.max_backoff_ms);
    cv_.wait_for(lock, std::chrono::milliseconds(backoff_ms), [&] { return shutdown_; });
    backoff_ms = std::min(backoff_ms * 2, options_.max_backoff_ms);
  }
}

void CloudClient::OnStreamEstablished(StreamCall* call) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stream_.get() == call) established_ = true;
  }
  cv_.notify_all();
}

void CloudClient::OnStreamDone(StreamCall* call, const grpc::Status& status) {
  std::vector<Callback> failed;
  std::string why = status.ok() ? "cloud closed the stream"
                                : absl::StrCat("cloud stream failed: ", status.error_message());
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.stream == call) {
        failed.push_back(std::move(it->second.done));
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
    if (stream_.get() == call) {
      stream_.reset();
      established_ = false;
      last_error_ = why;
    }
    --live_streams_;
  }
  cv_.notify_all();
  for (auto& cb : failed) cb(grpc::Status(grpc::StatusCode::UNAVAILABLE, why), {});
}

void CloudClient::OnResult(v1::Result result) {
  Callback cb = Take(result.request_id());
  if (cb) {
    cb(grpc::Status::OK, std::move(result));
  } else {
    spdlog::debug("edge: late result for request {} (already timed out)", result.request_id());
  }
}

CloudClient::Callback CloudClient::Take(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pending_.find(id);
  if (it == pending_.end()) return nullptr;
  Callback cb = std::move(it->second.done);
  pending_.erase(it);
  return cb;
}

void CloudClient::SweepLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!shutdown_) {
    cv_.wait_for(lock, std::chrono::milliseconds(10), [&] { return shutdown_; });
    const auto now = Clock::now();
    std::vector<Callback> expired;
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.deadline <= now) {
        expired.push_back(std::move(it->second.done));
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
    if (expired.empty()) continue;
    lock.unlock();
    for (auto& cb : expired) {
      cb(grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                      absl::StrCat("cloud did not answer within ", options_.deadline_ms, " ms")),
         {});
    }
    lock.lock();
  }
}

void CloudClient::Send(v1::FeaturePacket packet, Callback done) {
  if (!options_.use_stream) return SendUnary(std::move(packet), std::move(done));
  std::shared_ptr<StreamCall> stream;
  uint64_t id = 0;
  std::string why;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_) {
      why = "edge shutting down";
    } else if (!stream_ || !established_) {
      why = absl::StrCat("cloud ", options_.target, " unavailable (", last_error_, "); reconnecting");
    } else {
      stream = stream_;
      id = next_id_++;
      pending_[id] = Pending{std::move(done),
                             Clock::now() + std::chrono::milliseconds(options_.deadline_ms),
                             stream.get()};
    }
  }
  if (!stream) {
    done(grpc::Status(grpc::StatusCode::UNAVAILABLE, why), {});
    return;
  }
  packet.set_request_id(id);
  if (!stream->Write(std::move(packet))) {
    if (Callback cb = Take(id)) {
      cb(grpc::Status(grpc::StatusCode::UNAVAILABLE, "cloud stream is closing"), {});
    }
  }
}

void CloudClient::SendUnary(v1::FeaturePacket packet, Callback done) {
  struct Call {
    grpc::ClientContext ctx;
    v1::FeaturePacket request;
    v1::Result response;
    Callback done;
  };
  auto* call = new Call;
  call->request = std::move(packet);
  call->done = std::move(done);
  call->ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(options_.deadline_ms));
  ++unary_inflight_;
  stub_->async()->Infer(&call->ctx, &call->request, &call->response, [this, call](grpc::Status s) {
    if (s.ok()) {
      call->done(s, std::move(call->response));
    } else if (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
               s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
      call->done(s, {});
    } else {
      // A per-request error from the cloud: report it like the stream does (in the Result).
      v1::Result r;
      r.set_status_code(s.error_code());
      r.set_status_message(s.error_message());
      call->done(grpc::Status::OK, std::move(r));
    }
    delete call;
    --unary_inflight_;
  });
}

}  // namespace splitrans::edge

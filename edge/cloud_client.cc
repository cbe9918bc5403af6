#include "edge/cloud_client.h"

#include <absl/strings/str_cat.h>
#include <spdlog/spdlog.h>

#include <vector>

namespace splitrans::edge {
namespace v1 = ::splitrans::v1;

namespace {
// Bytes a packet grows by after Send measures it (request_id and timeout_us, varints of <= 10 B
// each with their tags).
constexpr size_t kPacketFieldsMargin = 32;

int64_t MicrosUntil(CloudClient::Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t - CloudClient::Clock::now()).count();
}
}  // namespace

// One SplitInference.Stream call. Keeps itself alive (self_) until OnDone. One read and at most
// one write in flight; the hold keeps the call open for writes until the read side has ended.
// Its fields below the line are guarded by the client's mutex.
class CloudClient::StreamCall final : public grpc::ClientBidiReactor<v1::FeaturePacket, v1::Result> {
 public:
  explicit StreamCall(CloudClient* client) : client_(client), ctx_(std::make_unique<grpc::ClientContext>()) {}
  // The call's context holds a reference to the channel. It is released here, before the client
  // hears that this call is gone, so that the channel's last reference always drops in the
  // client's destructor and never on a gRPC thread inside a reaction: gRPC 1.51 frees its
  // callback completion queue twice when the last channel goes away on one of that queue's own
  // threads (the edge's "double free or corruption" at shutdown after a cloud restart).
  ~StreamCall() override {
    ctx_.reset();
    client_->OnStreamDestroyed(this);
  }

  void Start() {
    // Waits for the channel to be READY instead of failing while the cloud is down: the stream
    // is established as soon as the cloud can be reached.
    ctx_->set_wait_for_ready(true);
    client_->stub_->async()->Stream(ctx_.get(), this);
    StartRead(&in_);
    AddHold();
    StartCall();
  }

  void Cancel() { ctx_->TryCancel(); }
  void Write(v1::FeaturePacket* packet) {
    out_ = std::move(*packet);
    StartWrite(&out_);
  }
  void CloseWrites() { StartWritesDone(); }
  void Release() { RemoveHold(); }

  void OnReadInitialMetadataDone(bool ok) override {
    if (ok) client_->OnStreamEstablished(this);
  }
  void OnReadDone(bool ok) override {
    if (!ok) {
      client_->OnReadsDone(this);
      return;
    }
    if (in_.draining()) {
      client_->OnDrain(this, /*by_cloud=*/true);
    } else {
      client_->OnResult(this, std::move(in_));
    }
    in_.Clear();
    StartRead(&in_);
  }
  void OnWriteDone(bool ok) override { client_->OnWriteDone(this, ok); }
  void OnWritesDoneDone(bool ok) override { client_->OnWriteDone(this, false); }
  // The client drops self_ (under its mutex): this may be deleted when OnStreamDone returns.
  void OnDone(const grpc::Status& status) override { client_->OnStreamDone(this, status); }

 private:
  friend class CloudClient;
  CloudClient* client_;
  std::shared_ptr<StreamCall> self_;  // guarded by client_->mu_ once started
  std::unique_ptr<grpc::ClientContext> ctx_;
  v1::FeaturePacket out_;
  v1::Result in_;
  // ---- guarded by client_->mu_
  bool established_ = false;
  bool writing_ = false;      // a write (or the writes-done) is in flight
  bool writes_closed_ = false;  // no more writes: failed write, drained, or reads ended
  bool reads_done_ = false;
  bool released_ = false;
  bool draining_ = false;     // the cloud asked for no new requests on this stream
  int inflight_ = 0;          // written requests without an answer yet
  std::deque<uint64_t> cancels_;  // ids of written requests the cloud should drop
};

// One grpc.health.v1 Watch on the client's channel. Owned by HealthLoop, which destroys it (on
// its own thread) once OnDone has reported.
class CloudClient::HealthWatch final : public grpc::ClientReadReactor<grpc::health::v1::HealthCheckResponse> {
 public:
  explicit HealthWatch(CloudClient* client) : client_(client) {}
  void Start() {
    ctx_.set_wait_for_ready(true);  // waits for the cloud instead of failing while it is down
    client_->health_stub_->async()->Watch(&ctx_, &req_, this);
    StartRead(&resp_);
    StartCall();
  }
  void Cancel() { ctx_.TryCancel(); }
  bool got_status() const { return got_status_; }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    got_status_ = true;
    client_->OnHealth(resp_.status() == grpc::health::v1::HealthCheckResponse::SERVING);
    StartRead(&resp_);
  }
  void OnDone(const grpc::Status& status) override { client_->OnHealthDone(this, status); }

 private:
  friend class CloudClient;
  CloudClient* client_;
  grpc::ClientContext ctx_;
  grpc::health::v1::HealthCheckRequest req_;  // service "": the whole server
  grpc::health::v1::HealthCheckResponse resp_;
  bool got_status_ = false;
  // ---- guarded by client_->mu_
  bool done_ = false;
  grpc::Status status_;
};

struct CloudClient::UnaryCall {
  grpc::ClientContext ctx;
  v1::FeaturePacket request;
  v1::Result response;
};

CloudClient::CloudClient(CloudClientOptions options, std::shared_ptr<grpc::ChannelCredentials> credentials)
    : options_(std::move(options)) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options_.max_message_bytes);
  args.SetMaxSendMessageSize(options_.max_message_bytes);
  // (GRPC_ARG_MIN_RECONNECT_BACKOFF_MS is gRPC's minimum connect timeout, not a backoff: left at
  // its default so that slow links can still connect.)
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, options_.initial_backoff_ms);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, options_.max_backoff_ms);
  // Keepalive within the server's policy (GrpcServerOptions::keepalive_min_ping_ms): pings
  // also on an idle stream, with no cap on pings without data.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, options_.keepalive_ms);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, options_.keepalive_timeout_ms);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  AddChannelTlsArgs(options_.tls, &args);
  channel_ = grpc::CreateCustomChannel(options_.target, credentials ? credentials : grpc::InsecureChannelCredentials(),
                                       args);
  stub_ = v1::SplitInference::NewStub(channel_);
  health_stub_ = grpc::health::v1::Health::NewStub(channel_);
  health_ = std::thread([this] { HealthLoop(); });
  if (options_.use_stream) {
    connector_ = std::thread([this] { ConnectLoop(); });
    sweeper_ = std::thread([this] { SweepLoop(); });
  } else {
    connector_ = std::thread([this] { WatchChannel(); });
  }
}

CloudClient::~CloudClient() {
  SetStateListener(nullptr);
  std::vector<UnaryCall*> unary;
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
    for (auto& [id, p] : pending_)
      if (p.unary) unary.push_back(p.unary);
    for (UnaryCall* u : unary) u->ctx.TryCancel();  // under the lock: the call is alive
    if (health_watch_) health_watch_->Cancel();
  }
  cv_.notify_all();
  sweep_cv_.notify_all();
  if (health_.joinable()) health_.join();
  if (connector_.joinable()) connector_.join();
  if (sweeper_.joinable()) sweeper_.join();
  // Cancel every stream still open (the current one and any draining one).
  std::vector<std::shared_ptr<StreamCall>> open;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (StreamCall* c : live_)
      if (c->self_) open.push_back(c->self_);
    if (stream_) open.push_back(std::move(stream_));
    stream_.reset();
  }
  for (auto& c : open) c->Cancel();
  open.clear();  // outside the lock: may destroy calls
  std::vector<Completion> left;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return live_.empty() && unary_inflight_ == 0; });
    for (auto& [id, p] : pending_) {
      left.emplace_back(std::move(p.done), grpc::Status(grpc::StatusCode::UNAVAILABLE, "edge shutting down"));
    }
    pending_.clear();
    by_deadline_.clear();
  }
  Run(&left);
}

void CloudClient::Run(std::vector<Completion>* completions) {
  for (auto& [cb, st] : *completions) {
    if (cb) cb(st, {});
  }
  completions->clear();
}

bool CloudClient::Connected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ConnectedLocked();
}

bool CloudClient::ConnectedLocked() const {
  const bool healthy = serving_ || !health_checked_;
  if (!options_.use_stream) return healthy && channel_->GetState(false) == GRPC_CHANNEL_READY;
  return healthy && established_;
}

void CloudClient::HealthLoop() {
  int backoff_ms = options_.initial_backoff_ms;
  for (;;) {
    auto watch = std::make_unique<HealthWatch>(this);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (shutdown_) return;
      health_watch_ = watch.get();
    }
    const auto since = Clock::now();
    watch->Start();
    grpc::Status status;
    bool changed = false, again_now = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return watch->done_; });
      health_watch_ = nullptr;
      status = watch->status_;
      if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
        changed = health_checked_ && !serving_;
        health_checked_ = false;
      } else if (watch->got_status() && Clock::now() - since > std::chrono::seconds(1)) {
        // A Watch that worked for a while ended (its connection was replaced after a GOAWAY,
        // or the cloud is shutting down): the last status stands until the next Watch, opened
        // at once, answers; the stream says meanwhile whether the cloud can be reached.
        again_now = true;
      } else if (serving_) {
        serving_ = false;  // unknown until the next Watch answers
        changed = true;
      }
    }
    watch.reset();  // here, not on a gRPC thread (its context holds a channel reference)
    if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      spdlog::info("edge: cloud {} has no grpc.health.v1 service; its stream alone says whether it is usable",
                   options_.target);
      if (changed) NotifyState();
      return;
    }
    if (changed) NotifyState();
    std::unique_lock<std::mutex> lock(mu_);
    if (shutdown_) return;
    if (again_now) {
      backoff_ms = options_.initial_backoff_ms;
      continue;
    }
    cv_.wait_for(lock, std::chrono::milliseconds(backoff_ms), [&] { return shutdown_; });
    if (shutdown_) return;
    backoff_ms = std::min(backoff_ms * 2, options_.max_backoff_ms);
  }
}

void CloudClient::OnHealth(bool serving) {
  bool changed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    changed = serving_ != serving;
    serving_ = serving;
  }
  if (!changed) return;
  spdlog::log(serving ? spdlog::level::debug : spdlog::level::info, "edge: cloud {} health: {}", options_.target,
              serving ? "SERVING" : "NOT_SERVING (no new requests while other replicas can take them)");
  NotifyState();
}

void CloudClient::OnHealthDone(HealthWatch* watch, const grpc::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  watch->done_ = true;
  watch->status_ = status;
  cv_.notify_all();  // under the lock: HealthLoop destroys the watch once it sees done_
}

void CloudClient::SetStateListener(std::function<void()> listener) {
  std::lock_guard<std::mutex> lock(listener_mu_);
  listener_ = std::move(listener);
  if (listener_) listener_();  // the current state, with no change able to slip in between
}

void CloudClient::NotifyState() {
  std::lock_guard<std::mutex> lock(listener_mu_);
  if (listener_) listener_();
}

CloudClient::Stats CloudClient::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.queued_bytes = queued_bytes_;
  return s;
}

void CloudClient::ConnectLoop() {
  int backoff_ms = options_.initial_backoff_ms;
  for (;;) {
    auto call = std::make_shared<StreamCall>(this);
    const bool again = RunStream(call, &backoff_ms);
    call.reset();  // outside the lock: it may be the last reference (~StreamCall locks mu_)
    if (!again) return;
  }
}

bool CloudClient::RunStream(const std::shared_ptr<StreamCall>& call, int* backoff_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  if (shutdown_) return false;
  // Open a stream; it waits for the channel to be READY, then is established.
  call->self_ = call;
  stream_ = call;
  established_ = false;
  live_.insert(call.get());
  lock.unlock();
  call->Start();
  lock.lock();
  cv_.wait(lock, [&] { return shutdown_ || established_ || stream_ != call; });
  if (shutdown_) return false;
  if (established_ && stream_ == call) {
    const auto since = Clock::now();
    // While the stream lives, the channel is watched: a connection that leaves READY under a
    // live stream got a GOAWAY (the cloud's --max-connection-age-ms, or its shutdown). The stream
    // is then drained from this side, as if the cloud had asked: no new requests on it, the
    // written ones are answered, and the next stream goes out on a new connection (to a
    // rebalanced replica behind a virtual IP), so that the end of the connection's grace period
    // cuts off nothing.
    // Two polls in a row: a connection that died (the stream ends within moments) is not taken
    // for a GOAWAY.
    int not_ready = 0;
    while (!shutdown_ && stream_ == call) {
      cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return shutdown_ || stream_ != call; });
      if (shutdown_ || stream_ != call) break;
      lock.unlock();
      not_ready = channel_->GetState(false) == GRPC_CHANNEL_READY ? 0 : not_ready + 1;
      if (not_ready >= 2) OnDrain(call.get(), /*by_cloud=*/false);
      lock.lock();
    }
    if (shutdown_) return false;
    // A stream that lived a while resets the backoff; one that keeps dying young (a peer that
    // accepts and drops every stream) is retried with a growing pause, not in a tight loop.
    const bool young = Clock::now() - since < std::chrono::seconds(1);
    if (!young) *backoff_ms = options_.initial_backoff_ms;
    if (call->draining_) {
      // The cloud is draining this stream: open the next one (to another replica, or to this
      // one once it is back). A short pause keeps a cloud that drains every new stream while
      // its shutdown begins from being asked again and again.
      cv_.wait_for(lock, std::chrono::milliseconds(20), [&] { return shutdown_; });
      return !shutdown_;
    }
    spdlog::warn("edge: cloud stream lost: {}; reconnecting", last_error_);
    if (young) {
      cv_.wait_for(lock, std::chrono::milliseconds(*backoff_ms), [&] { return shutdown_; });
      *backoff_ms = std::min(*backoff_ms * 2, options_.max_backoff_ms);
    }
    return !shutdown_;  // the next stream waits for the channel to be ready again
  }
  // The call ended before it was established although the channel was ready (the server
  // refused it): back off before trying again.
  spdlog::warn("edge: cloud {} refused the stream ({}), retrying in {} ms", options_.target, last_error_, *backoff_ms);
  cv_.wait_for(lock, std::chrono::milliseconds(*backoff_ms), [&] { return shutdown_; });
  *backoff_ms = std::min(*backoff_ms * 2, options_.max_backoff_ms);
  return !shutdown_;
}

void CloudClient::WatchChannel() {
  grpc_connectivity_state state = channel_->GetState(true);
  bool was_ready = state == GRPC_CHANNEL_READY;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (shutdown_) return;
    }
    // Blocks until the state changes or the timeout (which only bounds the shutdown check).
    if (channel_->WaitForStateChange(state, std::chrono::system_clock::now() + std::chrono::milliseconds(200))) {
      state = channel_->GetState(true);
      const bool ready = state == GRPC_CHANNEL_READY;
      if (ready != was_ready) {
        was_ready = ready;
        spdlog::log(ready ? spdlog::level::info : spdlog::level::warn, "edge: cloud {} {}", options_.target,
                    ready ? "connected (unary mode)" : "not reachable (unary mode)");
        NotifyState();
      }
    }
  }
}

void CloudClient::OnStreamEstablished(StreamCall* call) {
  bool notify = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    call->established_ = true;
    if (stream_.get() == call) {
      established_ = true;
      notify = true;
      ++stats_.streams_established;
    }
  }
  cv_.notify_all();
  if (notify) {
    spdlog::info("edge: connected to cloud {} (stream established)", options_.target);
    StartWrites(call);  // requests kept from a lost stream
    NotifyState();
  }
}

uint64_t CloudClient::Send(v1::FeaturePacket packet, Clock::time_point deadline, Callback done) {
  deadline = std::min(deadline, Clock::now() + std::chrono::milliseconds(options_.deadline_ms));
  // gRPC would fail the write, and in stream mode the whole stream with it (every request on it):
  // refuse the one packet instead. The margin covers the request id and timeout set below.
  if (const size_t bytes = packet.ByteSizeLong();
      bytes + kPacketFieldsMargin > static_cast<size_t>(options_.max_message_bytes)) {
    done(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                      absl::StrCat("edge: the feature packet for the cloud is ", bytes,
                                   " bytes, over the gRPC message limit of ", options_.max_message_bytes,
                                   " bytes (--max-message-bytes); use a smaller batch, a lower q or a compressing "
                                   "feature_codec")),
         {});
    return 0;
  }
  if (!options_.use_stream) return SendUnary(std::move(packet), deadline, std::move(done));
  std::shared_ptr<StreamCall> stream;
  uint64_t id = 0;
  grpc::Status fail;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const size_t bytes = packet.ByteSizeLong();
    const bool awaiting = (!stream_ || !established_) && Clock::now() < accept_until_;
    if (shutdown_) {
      fail = grpc::Status(grpc::StatusCode::UNAVAILABLE, "edge shutting down");
    } else if ((!stream_ || !established_) && !awaiting) {
      fail = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          absl::StrCat("cloud ", options_.target, " unavailable (", last_error_, "); reconnecting"));
    } else if (queued_bytes_ > 0 && queued_bytes_ + static_cast<int64_t>(bytes) > options_.max_queue_bytes) {
      fail = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          absl::StrCat("edge: send queue to the cloud is full (", queued_bytes_, " bytes waiting, limit ",
                                       options_.max_queue_bytes, ", --cloud-queue-bytes)"));
    } else if (MicrosUntil(deadline) <= 0) {
      fail = grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline passed before the feature was sent");
    } else {
      // Established: written at once. Just after a drain: queued for the next stream.
      if (!awaiting) stream = stream_;
      id = next_id_++;
      packet.set_request_id(id);
      Pending& p = pending_[id];
      p.done = std::move(done);
      p.deadline = deadline;
      p.packet = std::move(packet);
      p.bytes = bytes;
      p.awaited_stream = awaiting;
      const bool earliest = by_deadline_.empty() || deadline < by_deadline_.begin()->first;
      by_deadline_.emplace(deadline, id);
      send_queue_.push_back(id);
      queued_bytes_ += static_cast<int64_t>(bytes);
      if (earliest) sweep_cv_.notify_one();
    }
  }
  if (id == 0) {
    done(fail, {});
    return 0;
  }
  if (stream) StartWrites(stream.get());
  return id;
}

uint64_t CloudClient::SendUnary(v1::FeaturePacket packet, Clock::time_point deadline, Callback done) {
  auto* call = new UnaryCall;
  uint64_t id = 0;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (shutdown_) {
      lock.unlock();
      delete call;
      done(grpc::Status(grpc::StatusCode::UNAVAILABLE, "edge shutting down"), {});
      return 0;
    }
    id = next_id_++;
    packet.set_request_id(id);
    packet.set_timeout_us(std::max<int64_t>(1, MicrosUntil(deadline)));
    call->request = std::move(packet);
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::microseconds(MicrosUntil(deadline)));
    Pending& p = pending_[id];
    p.done = std::move(done);
    p.deadline = deadline;
    p.written = true;
    p.unary = call;
    ++unary_inflight_;
  }
  stub_->async()->Infer(&call->ctx, &call->request, &call->response, [this, id, call](grpc::Status s) {
    Callback cb;
    {
      std::lock_guard<std::mutex> lock(mu_);
      cb = TakeLocked(id);
    }
    if (cb) {
      if (s.ok()) {
        cb(s, std::move(call->response));
      } else if (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
                 s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
                 s.error_code() == grpc::StatusCode::CANCELLED) {
        cb(s, {});
      } else {
        // A per-request error from the cloud: report it like the stream does (in the Result).
        v1::Result r;
        r.set_status_code(s.error_code());
        r.set_status_message(s.error_message());
        cb(grpc::Status::OK, std::move(r));
      }
    }
    delete call;
    std::lock_guard<std::mutex> lock(mu_);
    --unary_inflight_;
    cv_.notify_all();  // under the lock: the destructor may free this client once it is released
  });
  return id;
}

void CloudClient::Cancel(uint64_t id) {
  if (id == 0) return;
  Callback cb;
  std::shared_ptr<StreamCall> stream;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    Pending& p = it->second;
    if (p.unary) {
      p.unary->ctx.TryCancel();  // its completion finds nothing pending and only cleans up
    } else if (p.written && p.stream && !p.stream->writes_closed_) {
      p.stream->cancels_.push_back(id);
      stream = p.stream->self_;
    }
    cb = TakeLocked(id);
  }
  if (stream) StartWrites(stream.get());
  if (cb) cb(grpc::Status(grpc::StatusCode::CANCELLED, "request cancelled"), {});
}

CloudClient::Callback CloudClient::TakeLocked(uint64_t id) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return nullptr;
  Pending& p = it->second;
  Callback cb = std::move(p.done);
  if (!p.unary) by_deadline_.erase({p.deadline, id});
  const bool queued = !p.written;
  if (queued) {
    queued_bytes_ -= static_cast<int64_t>(p.bytes);  // its queue slot is skipped later ...
  } else if (p.stream) {
    --p.stream->inflight_;
  }
  pending_.erase(it);
  // ... or dropped here once stale ids make up most of a long queue (a stalled stream would
  // otherwise keep every expired request's id).
  if (queued && ++stale_queued_ > 64 && stale_queued_ * 2 > send_queue_.size()) {
    std::deque<uint64_t> live;
    for (uint64_t q : send_queue_) {
      auto pit = pending_.find(q);
      if (pit != pending_.end() && !pit->second.written) live.push_back(q);
    }
    send_queue_.swap(live);
    stale_queued_ = 0;
  }
  return cb;
}

bool CloudClient::NextWriteLocked(StreamCall* call, v1::FeaturePacket* out, std::vector<Completion>* expired) {
  if (!call->cancels_.empty()) {
    out->Clear();
    out->set_request_id(call->cancels_.front());
    out->set_cancel(true);
    call->cancels_.pop_front();
    return true;
  }
  if (call->draining_ || call != stream_.get() || !established_) return false;
  while (!send_queue_.empty()) {
    const uint64_t id = send_queue_.front();
    send_queue_.pop_front();
    auto it = pending_.find(id);
    if (it == pending_.end() || it->second.written) {  // completed or cancelled meanwhile
      if (stale_queued_ > 0) --stale_queued_;
      continue;
    }
    Pending& p = it->second;
    const int64_t left_us = MicrosUntil(p.deadline);
    if (left_us <= 0) {
      ++stats_.expired_unsent;
      expired->emplace_back(TakeLocked(id), grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                                                        "deadline passed in the edge's send queue; never sent"));
      continue;
    }
    queued_bytes_ -= static_cast<int64_t>(p.bytes);
    p.written = true;
    p.stream = call;
    ++call->inflight_;
    p.packet.set_timeout_us(left_us);
    *out = std::move(p.packet);
    p.packet.Clear();
    return true;
  }
  return false;
}

void CloudClient::StartWrites(StreamCall* call) {
  v1::FeaturePacket packet;
  std::vector<Completion> expired;
  bool write = false, writes_done = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (call->writing_ || call->writes_closed_ || !call->established_) return;
    write = NextWriteLocked(call, &packet, &expired);
    if (write) {
      call->writing_ = true;
    } else {
      MaybeCloseDrainedLocked(call, &writes_done);
    }
  }
  Run(&expired);
  if (write) call->Write(&packet);
  if (writes_done) call->CloseWrites();
}

void CloudClient::MaybeCloseDrainedLocked(StreamCall* call, bool* writes_done) {
  // A draining stream half-closes once every request written on it has its answer (or ended)
  // and no cancel is left to write; the cloud then finishes it.
  if (call->draining_ && !call->writing_ && !call->writes_closed_ && call->inflight_ == 0 && call->cancels_.empty()) {
    call->writes_closed_ = true;
    call->writing_ = true;  // the writes-done is in flight
    *writes_done = true;
  }
}

void CloudClient::OnWriteDone(StreamCall* call, bool ok) {
  bool release = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    call->writing_ = false;
    if (!ok) call->writes_closed_ = true;
    if (call->writes_closed_ && call->reads_done_ && !call->released_) release = call->released_ = true;
  }
  if (release) {
    call->Release();
    return;
  }
  if (ok) StartWrites(call);
}

void CloudClient::OnReadsDone(StreamCall* call) {
  bool release = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    call->reads_done_ = true;
    call->writes_closed_ = true;  // nothing written now could be answered
    call->cancels_.clear();
    if (!call->writing_ && !call->released_) release = call->released_ = true;
  }
  if (release) call->Release();
}

void CloudClient::OnDrain(StreamCall* call, bool by_cloud) {
  bool writes_done = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (call->draining_ || call->reads_done_) return;
    call->draining_ = true;
    ++(by_cloud ? stats_.streams_drained : stats_.streams_goaway);
    if (stream_.get() == call) {
      stream_.reset();  // the call keeps itself alive until OnDone
      established_ = false;
      last_error_ = by_cloud ? "the cloud drained its stream and no new one is ready yet"
                             : "the connection to the cloud is going away and no new stream is ready yet";
      // New requests wait (bounded by their deadlines and the send queue) for the next stream
      // instead of failing during the moment it takes to open one.
      accept_until_ = Clock::now() + std::chrono::milliseconds(kDrainReconnectWindowMs);
    }
    MaybeCloseDrainedLocked(call, &writes_done);
  }
  if (by_cloud) {
    spdlog::info("edge: cloud {} is draining the stream; opening a new one", options_.target);
  } else {
    spdlog::info("edge: the connection to cloud {} is going away (GOAWAY); finishing its stream, opening a new one",
                 options_.target);
  }
  cv_.notify_all();
  NotifyState();
  if (writes_done) call->CloseWrites();
}

void CloudClient::OnResult(StreamCall* call, v1::Result result) {
  Callback cb;
  bool writes_done = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(result.request_id());
    // Only an answer on the stream the request went out on counts.
    if (it != pending_.end() && it->second.written && it->second.stream == call) cb = TakeLocked(result.request_id());
    MaybeCloseDrainedLocked(call, &writes_done);
  }
  if (writes_done) call->CloseWrites();
  if (cb) {
    cb(grpc::Status::OK, std::move(result));
  } else {
    spdlog::debug("edge: result for request {} that is no longer pending (timed out or cancelled)",
                  result.request_id());
  }
}

void CloudClient::OnStreamDone(StreamCall* call, const grpc::Status& status) {
  std::vector<Completion> failed;
  const std::string why = status.ok() ? "the cloud closed the stream"
                                      : absl::StrCat("cloud stream failed: ", status.error_message());
  bool was_current = false;
  std::shared_ptr<StreamCall> self;  // the call's own reference: released last, outside the lock
  {
    std::lock_guard<std::mutex> lock(mu_);
    self = std::move(call->self_);
    // Requests written on this stream may have reached the cloud: they fail. (O(pending), once
    // per stream.)
    std::vector<uint64_t> lost;
    for (const auto& [id, p] : pending_)
      if (p.written && p.stream == call) lost.push_back(id);
    for (uint64_t id : lost) {
      failed.emplace_back(TakeLocked(id), grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                                       absl::StrCat(why, " after the request was sent")));
    }
    if (stream_.get() == call) {
      was_current = call->established_;
      stream_.reset();
      established_ = false;
      last_error_ = why;
      if (was_current) {
        ++stats_.streams_lost;
        // Requests still queued never left the edge: they wait for the next stream, once.
        for (uint64_t id : send_queue_) {
          auto it = pending_.find(id);
          if (it == pending_.end() || it->second.written) continue;
          if (it->second.retried) {
            failed.emplace_back(TakeLocked(id), grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                                             absl::StrCat(why, "; the request was never sent")));
          } else {
            it->second.retried = true;
            ++stats_.retried;
          }
        }
      }
    }
  }
  cv_.notify_all();
  if (was_current) NotifyState();
  Run(&failed);
}

void CloudClient::OnStreamDestroyed(StreamCall* call) {
  std::lock_guard<std::mutex> lock(mu_);
  live_.erase(call);
  cv_.notify_all();  // under the lock: the destructor may free this client once it is released
}

void CloudClient::SweepLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!shutdown_) {
    if (by_deadline_.empty()) {
      sweep_cv_.wait(lock);
      continue;
    }
    const Clock::time_point next = by_deadline_.begin()->first;
    if (Clock::now() < next) {
      sweep_cv_.wait_until(lock, next);
      continue;
    }
    std::vector<Completion> expired;
    std::vector<std::shared_ptr<StreamCall>> cancel_on;
    const auto now = Clock::now();
    while (!by_deadline_.empty() && by_deadline_.begin()->first <= now) {
      const uint64_t id = by_deadline_.begin()->second;
      Pending& p = pending_.at(id);
      std::string why;
      if (p.written) {
        why = "no answer from the cloud within the request's deadline";
        if (p.stream && !p.stream->writes_closed_) {  // tell the cloud to drop it
          p.stream->cancels_.push_back(id);
          cancel_on.push_back(p.stream->self_);
        }
      } else {
        ++stats_.expired_unsent;
        why = p.retried          ? "the cloud stream was lost and no new one was ready within the request's deadline"
              : p.awaited_stream ? "the cloud drained its stream and no new one was ready within the request's deadline"
                                 : "deadline passed in the edge's send queue; never sent";
      }
      const grpc::StatusCode code = !p.written && (p.retried || p.awaited_stream) ? grpc::StatusCode::UNAVAILABLE
                                                                                  : grpc::StatusCode::DEADLINE_EXCEEDED;
      expired.emplace_back(TakeLocked(id), grpc::Status(code, why));
    }
    lock.unlock();
    Run(&expired);
    for (auto& s : cancel_on) {
      if (s) StartWrites(s.get());
    }
    cancel_on.clear();  // may drop the last reference: outside the lock
    lock.lock();
  }
}

}  // namespace splitrans::edge

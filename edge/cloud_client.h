// Edge -> cloud client. Multiplexes requests on one long-lived SplitInference.Stream (or, with
// use_stream = false, one unary Infer per request). Every request has a deadline (the earlier of
// the caller's and deadline_ms), carried to the cloud in the packet; the edge's send queue is
// bounded in bytes; a lost stream is re-established as soon as the cloud is reachable, and a
// request that provably never left the edge is retried once on the next stream. Thread-safe;
// callbacks run on gRPC or internal threads (or inline in Send/Cancel) and must not block.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>

#include "common/limits.h"
#include "common/tls.h"
#include "proto/health.grpc.pb.h"
#include "proto/split_inference.grpc.pb.h"

namespace splitrans::edge {

struct CloudClientOptions {
  std::string target = "127.0.0.1:50052";
  int deadline_ms = 5000;          // per request, counted from Send
  int initial_backoff_ms = 100;    // reconnect backoff (gRPC's, with jitter): doubles ...
  int max_backoff_ms = 500;        // ... up to this, so a returning cloud is found within it
  int max_message_bytes = kDefaultMaxMessageBytes;
  bool use_stream = true;          // false: unary Infer per request
  int64_t max_queue_bytes = kDefaultCloudQueueBytes;  // packets waiting to be written (stream)
  int keepalive_ms = kDefaultKeepaliveMs;  // ping interval, also when idle (server allows it)
  int keepalive_timeout_ms = kDefaultKeepaliveTimeoutMs;
  ClientTls tls;  // TLS (and the edge's client certificate) to the cloud; plaintext when off
};

class CloudClient {
 public:
  using Clock = std::chrono::steady_clock;
  // status OK: result holds the cloud's Result (whose per-request status may still be an error).
  using Callback = std::function<void(const grpc::Status& status, splitrans::v1::Result result)>;

  // credentials: from MakeChannelCredentials(options.tls) (validated by the caller); null:
  // plaintext.
  explicit CloudClient(CloudClientOptions options, std::shared_ptr<grpc::ChannelCredentials> credentials = nullptr);
  ~CloudClient();  // fails what is pending with UNAVAILABLE, closes the stream, joins
  CloudClient(const CloudClient&) = delete;
  CloudClient& operator=(const CloudClient&) = delete;

  // Sends one packet (request_id and timeout_us are set here); it must be answered before
  // deadline (capped at now + deadline_ms). done is called exactly once, possibly inline: with
  // the result, UNAVAILABLE (cloud not connected, stream lost after sending), DEADLINE_EXCEEDED,
  // RESOURCE_EXHAUSTED (send queue full) or CANCELLED (Cancel). Returns the request's id for
  // Cancel (0 when done has already been called).
  uint64_t Send(splitrans::v1::FeaturePacket packet, Clock::time_point deadline, Callback done);
  // Completes request id with CANCELLED if it is still pending and asks the cloud to drop it.
  void Cancel(uint64_t id);

  // Stream mode: a stream is established and not draining. Unary mode: the channel is READY.
  // Both: and the cloud's grpc.health.v1 (watched on the same channel) says SERVING, unless the
  // cloud does not implement it. A cloud that turned NOT_SERVING (the start of its drain) still
  // gets what Send is given, but a pool of replicas sends it nothing new.
  bool Connected() const;
  // Called once right away (in this call) and then (on a gRPC or internal thread, never inline
  // in Send or Cancel) whenever Connected() may have changed; calls never overlap, and none
  // holds mu_ (the listener may call Connected(), but not SetStateListener). nullptr removes it;
  // returns once no call of the old listener is running.
  void SetStateListener(std::function<void()> listener);

  struct Stats {
    uint64_t streams_established = 0;  // including the first
    uint64_t streams_lost = 0;         // ended without a drain from the cloud
    uint64_t streams_drained = 0;      // ended after the cloud announced a drain
    uint64_t streams_goaway = 0;       // drained by the edge: their connection got a GOAWAY
    uint64_t retried = 0;              // queued when a stream was lost and kept for the next one
    uint64_t expired_unsent = 0;       // expired in the send queue, never sent
    int64_t queued_bytes = 0;          // now: features waiting to be written
  };
  Stats stats() const;

  class StreamCall;
  class HealthWatch;

 private:
  struct UnaryCall;
  struct Pending {
    Callback done;
    Clock::time_point deadline;
    splitrans::v1::FeaturePacket packet;  // until it is written
    size_t bytes = 0;
    bool written = false;
    bool retried = false;          // survived one stream loss in the queue
    bool awaited_stream = false;   // sent just after a drain, before the next stream was up
    StreamCall* stream = nullptr;  // written: the stream it went out on
    UnaryCall* unary = nullptr;    // unary mode: the call
  };
  using Completion = std::pair<Callback, grpc::Status>;

  uint64_t SendUnary(splitrans::v1::FeaturePacket packet, Clock::time_point deadline, Callback done);
  void ConnectLoop();
  // One stream's life (open, wait until it ends); false once shutting down.
  bool RunStream(const std::shared_ptr<StreamCall>& call, int* backoff_ms);
  void SweepLoop();
  void WatchChannel();  // unary mode: state changes for the listener
  // Keeps a grpc.health.v1 Watch open on the channel (waiting for it to be ready; reopened with
  // backoff when it ends); stops for good when the cloud answers UNIMPLEMENTED.
  void HealthLoop();
  void OnHealth(bool serving);
  void OnHealthDone(HealthWatch* watch, const grpc::Status& status);
  bool ConnectedLocked() const;
  void NotifyState();
  // Removes a pending entry (and its deadline); its callback, or null if it was not pending.
  Callback TakeLocked(uint64_t id);
  // The next packet for call (a cancel, else the oldest live queued request); expired queued
  // requests met on the way go to *expired. False when there is nothing to write.
  bool NextWriteLocked(StreamCall* call, splitrans::v1::FeaturePacket* out, std::vector<Completion>* expired);
  void StartWrites(StreamCall* call);  // starts the next write on call if it is idle
  void MaybeCloseDrainedLocked(StreamCall* call, bool* writes_done);
  void OnStreamEstablished(StreamCall* call);
  void OnWriteDone(StreamCall* call, bool ok);
  void OnReadsDone(StreamCall* call);
  // No new requests on call (by_cloud: the cloud asked; else its connection is going away).
  void OnDrain(StreamCall* call, bool by_cloud);
  void OnStreamDone(StreamCall* call, const grpc::Status& status);
  void OnStreamDestroyed(StreamCall* call);  // the call and its context are gone
  void OnResult(StreamCall* call, splitrans::v1::Result result);
  static void Run(std::vector<Completion>* completions);

  const CloudClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<splitrans::v1::SplitInference::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_stub_;

  mutable std::mutex mu_;
  std::condition_variable cv_;        // ConnectLoop, destructor
  std::condition_variable sweep_cv_;  // SweepLoop
  bool shutdown_ = false;
  std::shared_ptr<StreamCall> stream_;  // current stream (connecting or established)
  bool established_ = false;
  bool serving_ = false;          // the cloud's last grpc.health.v1 status was SERVING
  bool health_checked_ = true;    // false: the cloud has no health service; serving_ is ignored
  HealthWatch* health_watch_ = nullptr;  // the open Watch (cancelled by the destructor)
  std::set<StreamCall*> live_;  // streams not yet destroyed (each holds a channel reference)
  int unary_inflight_ = 0;
  std::string last_error_ = "not connected yet";
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Pending> pending_;
  std::set<std::pair<Clock::time_point, uint64_t>> by_deadline_;  // stream mode
  std::deque<uint64_t> send_queue_;  // queued ids, oldest first (ids no longer pending are skipped)
  int64_t queued_bytes_ = 0;
  size_t stale_queued_ = 0;  // ids in send_queue_ that are no longer pending
  // After a drain, Send queues new requests for the next stream until then.
  static constexpr int kDrainReconnectWindowMs = 2000;
  Clock::time_point accept_until_{};
  Stats stats_;

  std::mutex listener_mu_;  // held while the listener runs
  std::function<void()> listener_;

  std::thread connector_;
  std::thread sweeper_;
  std::thread health_;
};

}  // namespace splitrans::edge

// Edge -> cloud client. Multiplexes requests on one long-lived SplitInference.Stream (or, with
// use_stream = false, one unary Infer per request), with a deadline per request and automatic
// reconnection with exponential backoff. Thread-safe; callbacks run on gRPC or internal threads
// and must not block.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/limits.h"
#include "proto/split_inference.grpc.pb.h"

namespace splitrans::edge {

struct CloudClientOptions {
  std::string target = "127.0.0.1:50052";
  int deadline_ms = 5000;          // per request
  int initial_backoff_ms = 100;    // reconnect backoff: doubles after each failure ...
  int max_backoff_ms = 2000;       // ... up to this
  int max_message_bytes = kDefaultMaxMessageBytes;
  bool use_stream = true;          // false: unary Infer per request
};

class CloudClient {
 public:
  // status OK: result holds the cloud's Result (whose per-request status may still be an error).
  using Callback = std::function<void(const grpc::Status& status, splitrans::v1::Result result)>;

  explicit CloudClient(CloudClientOptions options);
  ~CloudClient();  // fails pending requests with UNAVAILABLE and joins
  CloudClient(const CloudClient&) = delete;
  CloudClient& operator=(const CloudClient&) = delete;

  // Sends one packet (request_id is assigned here); done is called exactly once: with the
  // result, UNAVAILABLE (cloud not connected / stream broken) or DEADLINE_EXCEEDED.
  void Send(splitrans::v1::FeaturePacket packet, Callback done);

  // Stream mode: the stream is established. Unary mode: the channel is READY.
  bool Connected() const;

  class StreamCall;

 private:
  struct Pending {
    Callback done;
    std::chrono::steady_clock::time_point deadline;
    const StreamCall* stream = nullptr;
  };

  void SendUnary(splitrans::v1::FeaturePacket packet, Callback done);
  void ConnectLoop();
  void SweepLoop();
  // Removes and returns the pending entry (empty callback if it was already completed).
  Callback Take(uint64_t id);
  void OnStreamEstablished(StreamCall* call);
  void OnStreamDone(StreamCall* call, const grpc::Status& status);
  void OnResult(splitrans::v1::Result result);

  const CloudClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<splitrans::v1::SplitInference::Stub> stub_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool shutdown_ = false;
  std::shared_ptr<StreamCall> stream_;  // current stream (established or connecting)
  bool established_ = false;
  int live_streams_ = 0;
  std::string last_error_ = "not connected yet";
  uint64_t next_id_ = 1;
  std::map<uint64_t, Pending> pending_;
  std::atomic<int> unary_inflight_{0};

  std::thread connector_;
  std::thread sweeper_;
};

}  // namespace splitrans::edge

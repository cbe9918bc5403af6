// splitrans-cloud: serves splitrans.v1.SplitInference (Stream + Infer) over the TailPipeline,
// with the gRPC health service and reflection. Work is bounded (a worker queue, requests in
// flight per stream); expired and cancelled requests are dropped before decoding; shutdown
// drains (edges are told to stop sending, in-flight requests are answered). Thread-safe.
#pragma once

#include <absl/status/statusor.h>

#include <functional>
#include <memory>
#include <string>

#include "cloud/tail_pipeline.h"
#include "common/grpc_server.h"
#include "common/limits.h"

namespace splitrans::cloud {

struct CloudServerOptions {
  GrpcServerOptions server{"0.0.0.0:50052"};  // listen address "127.0.0.1:0" picks a free port
  TailPipelineOptions pipeline;
  int workers = 2;                 // threads running decode + tail
  int torch_threads = 1;           // LibTorch intra-op threads
  int max_queue = kDefaultMaxQueue;   // requests waiting for a worker (all streams and calls)
  int max_inflight_per_stream = 256;  // reading a stream pauses above this
  // Tests only: runs on the worker before each request is decoded (may block or throw), and on
  // the gRPC thread for every feature packet received (must not block).
  std::function<void()> test_before_decode;
  std::function<void()> test_on_packet;
};

class CloudServer {
 public:
  static absl::StatusOr<std::unique_ptr<CloudServer>> Create(const CloudServerOptions& options);
  ~CloudServer();

  absl::Status Start();
  int port() const { return server_.port(); }
  // Health NOT_SERVING, tells every edge stream to drain, refuses new calls, answers what is in
  // flight until grace_ms, then cancels the rest; returns when every call is done.
  void Shutdown(int grace_ms = 1000);
  void Wait();
  const TailPipeline& pipeline() const;

  class Service;

 private:
  CloudServer() = default;
  CloudServerOptions options_;
  std::unique_ptr<Service> service_;
  GrpcServer server_;  // after service_: destroyed first
};

}  // namespace splitrans::cloud

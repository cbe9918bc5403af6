// splitrans-cloud: serves splitrans.v1.SplitInference (Stream + Infer) over the TailPipeline,
// with the gRPC health service and reflection. Work is bounded (a worker queue, requests in
// flight per stream); expired and cancelled requests are dropped before decoding; shutdown
// drains (edges are told to stop sending, in-flight requests are answered). Prometheus metrics
// (README "Metrics") on an optional HTTP endpoint. Thread-safe.
#pragma once

#include <absl/status/statusor.h>

#include <functional>
#include <memory>
#include <string>

#include "cloud/tail_pipeline.h"
#include "common/grpc_server.h"
#include "common/limits.h"
#include "common/metrics.h"

namespace splitrans::cloud {

struct CloudServerOptions {
  GrpcServerOptions server{"0.0.0.0:50052"};  // listen address "127.0.0.1:0" picks a free port
  TailPipelineOptions pipeline;
  int workers = 2;                 // threads running decode + tail
  int torch_threads = 1;           // LibTorch intra-op threads
  int max_queue = kDefaultMaxQueue;   // requests waiting for a worker (all streams and calls)
  int max_inflight_per_stream = 256;  // reading a stream pauses above this
  // Tests only: runs on the worker before each request is decoded (may block or throw), and on
  // the gRPC thread for every feature packet received (must not block), and on the gRPC thread
  // once a stream's cancel packet has been applied (must not block). test_on_admission runs once
  // the worker queue has taken (true) or refused (false) a request (must not block).
  std::function<void()> test_before_decode;
  std::function<void()> test_on_packet;
  std::function<void(bool queued)> test_on_admission;
  std::function<void()> test_on_cancel;
};

class CloudServer {
 public:
  static absl::StatusOr<std::unique_ptr<CloudServer>> Create(const CloudServerOptions& options);
  ~CloudServer();

  // Starts the metrics endpoint (options.server.metrics_listen_address, if any), then gRPC;
  // either failing to listen fails Start().
  absl::Status Start();
  int port() const { return server_.port(); }
  // The metrics endpoint's port (0 before Start() or without a metrics address).
  int metrics_port() const { return metrics_server_ ? metrics_server_->port() : 0; }
  // This server's metrics (README "Metrics"), as the endpoint serves them.
  const metrics::Registry& registry() const { return registry_; }
  // Health NOT_SERVING, tells every edge stream to drain, refuses new calls, answers what is in
  // flight until grace_ms, then cancels the rest; returns when every call is done.
  void Shutdown(int grace_ms = 1000);
  void Wait();
  const TailPipeline& pipeline() const;

  class Service;

 private:
  CloudServer() = default;
  metrics::Registry registry_;  // first: outlives everything that updates it
  CloudServerOptions options_;
  std::unique_ptr<Service> service_;
  GrpcServer server_;  // after service_: destroyed first
  // Last: stops first (the callback gauges read service_).
  std::unique_ptr<metrics::MetricsServer> metrics_server_;
};

}  // namespace splitrans::cloud

// splitrans-edge: serves the KServe v2 (Open Inference Protocol) gRPC API. Each ModelInfer is
// admitted (bounded in flight and in queue), parsed, run through preprocessing + head + codec on
// a worker pool, sent to the cloud and answered when the cloud's result (or an error) arrives.
// The client's deadline and cancellation bound every stage. Thread-safe.
#pragma once

#include <absl/status/statusor.h>

#include <functional>
#include <memory>
#include <string>

#include "codec/codec.h"
#include "common/auth.h"
#include "common/grpc_server.h"
#include "common/limits.h"
#include "common/metrics.h"
#include "edge/cloud_client.h"
#include "edge/cloud_pool.h"
#include "edge/head_pipeline.h"
#include "edge/link_policy.h"

namespace splitrans::edge {

struct EdgeServerOptions {
  GrpcServerOptions server{"0.0.0.0:8001"};  // listen address "127.0.0.1:0" picks a free port
  HeadPipelineOptions pipeline;
  CloudClientOptions cloud;  // cloud.target: one replica or several (edge/cloud_pool.h)
  int cloud_resolve_ms = 5000;  // DNS cloud targets are re-resolved this often
  Resolver cloud_resolver;      // tests only: replaces getaddrinfo
  int workers = 2;             // threads running preprocessing + head + encode
  int torch_threads = 1;
  int max_inflight = kDefaultEdgeMaxInflight;  // admitted requests not yet answered
  int max_queue = kDefaultMaxQueue;            // admitted requests waiting for a worker
  codec::EncodeOptions default_encode;  // q = 4, mode auto
  int default_top_k = 5;
  // For requests without the "placement" / "feature_codec" parameters.
  Placement default_placement = Placement::kSplit;
  FeatureWire default_wire = FeatureWire::kSrns;
  // For requests without the "policy" parameter (README "Adaptive policy").
  PolicyKind default_policy = PolicyKind::kFixed;
  LatencyPolicyOptions latency_policy;
  // Bearer tokens, one per line (common/auth.h); empty: no authentication. With tokens, every
  // KServe call needs one; grpc.health.v1 too when health_requires_auth; reflection is turned
  // off unless reflection_with_auth.
  std::string auth_tokens_file;
  bool health_requires_auth = false;
  bool reflection_with_auth = false;
  // Tests only: runs on the worker before the head of each request (may throw, may block).
  std::function<void()> test_before_head;
};

class EdgeServer {
 public:
  static absl::StatusOr<std::unique_ptr<EdgeServer>> Create(const EdgeServerOptions& options);
  ~EdgeServer();

  // Starts the metrics endpoint (options.server.metrics_listen_address, if any), then gRPC;
  // either failing to listen fails Start().
  absl::Status Start();
  int port() const { return server_.port(); }
  // The metrics endpoint's port (0 before Start() or without a metrics address).
  int metrics_port() const { return metrics_server_ ? metrics_server_->port() : 0; }
  // This server's metrics (README "Metrics"), as the endpoint serves them.
  const metrics::Registry& registry() const { return registry_; }
  // Health NOT_SERVING, refuses new calls, lets in-flight requests finish until grace_ms, then
  // cancels what is left; returns when every call is done.
  void Shutdown(int grace_ms = 1000);
  void Wait();
  CloudPool& cloud();

  class Service;

 private:
  EdgeServer() = default;
  metrics::Registry registry_;  // first: outlives everything that updates it
  EdgeServerOptions options_;
  std::unique_ptr<TokenAuth> auth_;
  std::unique_ptr<Service> service_;
  GrpcServer server_;  // after service_: destroyed first
  // Last: stops first (the callback gauges read service_).
  std::unique_ptr<metrics::MetricsServer> metrics_server_;
};

}  // namespace splitrans::edge

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
#include "edge/cloud_client.h"
#include "edge/head_pipeline.h"

namespace splitrans::edge {

struct EdgeServerOptions {
  GrpcServerOptions server{"0.0.0.0:8001"};  // listen address "127.0.0.1:0" picks a free port
  HeadPipelineOptions pipeline;
  CloudClientOptions cloud;
  int workers = 2;             // threads running preprocessing + head + encode
  int torch_threads = 1;
  int max_inflight = kDefaultEdgeMaxInflight;  // admitted requests not yet answered
  int max_queue = kDefaultMaxQueue;            // admitted requests waiting for a worker
  codec::EncodeOptions default_encode;  // q = 4, mode auto
  int default_top_k = 5;
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

  absl::Status Start();
  int port() const { return server_.port(); }
  // Health NOT_SERVING, refuses new calls, lets in-flight requests finish until grace_ms, then
  // cancels what is left; returns when every call is done.
  void Shutdown(int grace_ms = 1000);
  void Wait();
  CloudClient& cloud();

  class Service;

 private:
  EdgeServer() = default;
  EdgeServerOptions options_;
  std::unique_ptr<TokenAuth> auth_;
  std::unique_ptr<Service> service_;
  GrpcServer server_;  // after service_: destroyed first
};

}  // namespace splitrans::edge

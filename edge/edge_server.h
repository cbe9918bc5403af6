// splitrans-edge: serves the KServe v2 (Open Inference Protocol) gRPC API. Each ModelInfer runs
// preprocessing + head + codec on a worker pool, sends the feature to the cloud on the shared
// stream and answers when the cloud's result (or an error) arrives.
#pragma once

#include <absl/status/statusor.h>

#include <memory>
#include <string>

#include "codec/codec.h"
#include "common/grpc_server.h"
#include "common/limits.h"
#include "edge/cloud_client.h"
#include "edge/head_pipeline.h"

namespace splitrans::edge {

struct EdgeServerOptions {
  std::string listen_address = "0.0.0.0:8001";  // "127.0.0.1:0" picks a free port
  HeadPipelineOptions pipeline;
  CloudClientOptions cloud;
  int workers = 2;             // threads running preprocessing + head + encode
  int torch_threads = 1;
  int max_message_bytes = kDefaultMaxMessageBytes;
  codec::EncodeOptions default_encode;  // q = 4, mode auto
  int default_top_k = 5;
  bool reflection = true;
};

class EdgeServer {
 public:
  static absl::StatusOr<std::unique_ptr<EdgeServer>> Create(const EdgeServerOptions& options);
  ~EdgeServer();

  absl::Status Start();
  int port() const { return server_.port(); }
  void Shutdown(int grace_ms = 1000);
  void Wait();
  CloudClient& cloud();

  class Service;

 private:
  EdgeServer() = default;
  EdgeServerOptions options_;
  std::unique_ptr<Service> service_;
  GrpcServer server_;  // after service_: destroyed first
};

}  // namespace splitrans::edge

// splitrans-cloud: serves splitrans.v1.SplitInference (Stream + Infer) over the TailPipeline,
// with the gRPC health service and reflection. Create() loads the models, Start() binds.
#pragma once

#include <absl/status/statusor.h>

#include <memory>
#include <string>

#include "cloud/tail_pipeline.h"
#include "common/grpc_server.h"
#include "common/limits.h"

namespace splitrans::cloud {

struct CloudServerOptions {
  std::string listen_address = "0.0.0.0:50052";  // "127.0.0.1:0" picks a free port
  TailPipelineOptions pipeline;
  int workers = 2;                 // threads running decode + tail
  int torch_threads = 1;           // LibTorch intra-op threads
  int max_message_bytes = kDefaultMaxMessageBytes;
  int max_inflight_per_stream = 256;  // reading pauses above this
  bool reflection = true;
};

class CloudServer {
 public:
  static absl::StatusOr<std::unique_ptr<CloudServer>> Create(const CloudServerOptions& options);
  ~CloudServer();

  absl::Status Start();
  int port() const { return server_.port(); }
  // Stops accepting calls, cancels open streams after grace_ms, waits for in-flight work.
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

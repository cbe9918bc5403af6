// One gRPC service behind a server with the house settings (health service, optional
// reflection, raised message size limits), shared by splitrans-edge and splitrans-cloud.
// Start() and Shutdown() from one thread; Wait() may block in another.
#pragma once

#include <absl/status/status.h>

#include <memory>
#include <string>
#include <utility>

#include "common/limits.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace splitrans {

struct GrpcServerOptions {
  std::string name;            // log and error prefix: "edge", "cloud"
  std::string service_label;   // what is served, for the log: "splitrans.v1.SplitInference"
  std::string listen_address;  // "127.0.0.1:0" picks a free port
  int max_message_bytes = kDefaultMaxMessageBytes;  // send and receive
  bool reflection = true;
};

// The GrpcServerOptions of a server binary's options (listen_address, max_message_bytes,
// reflection), as EdgeServerOptions and CloudServerOptions have them.
template <typename ServerOptions>
GrpcServerOptions GrpcServerOptionsOf(const ServerOptions& o, std::string name, std::string service_label) {
  GrpcServerOptions g;
  g.name = std::move(name);
  g.service_label = std::move(service_label);
  g.listen_address = o.listen_address;
  g.max_message_bytes = o.max_message_bytes;
  g.reflection = o.reflection;
  return g;
}

class GrpcServer {
 public:
  GrpcServer();
  ~GrpcServer();

  // Binds options.listen_address and serves service (borrowed: it must outlive this server).
  // UNAVAILABLE "<name>: cannot listen on <address>" when the address cannot be bound.
  absl::Status Start(const GrpcServerOptions& options, grpc::Service* service);
  // The bound port (0 before a successful Start()).
  int port() const { return port_; }
  // Health NOT_SERVING, stops accepting calls, cancels open calls after grace_ms. No-op before
  // Start() or after the first call.
  void Shutdown(int grace_ms);
  // Blocks until the server has shut down. Returns at once if it never started.
  void Wait();

 private:
  std::string name_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace splitrans

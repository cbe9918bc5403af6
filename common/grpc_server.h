// One gRPC service behind a server with the house settings (health service, optional
// reflection, raised message size limits, a memory quota, a keepalive policy that our clients
// follow, no SO_REUSEPORT), shared by splitrans-edge and splitrans-cloud. Thread-safe.
#pragma once

#include <absl/status/status.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "common/limits.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace splitrans {

struct GrpcServerOptions {
  std::string listen_address;  // "127.0.0.1:0" picks a free port
  int max_message_bytes = kDefaultMaxMessageBytes;  // send and receive
  bool reflection = true;
  // SO_REUSEPORT lets a second server bind a port that is in use and silently share it; off,
  // Start() fails on a port in use.
  bool reuse_port = false;
  // Keepalive policy: a client may ping at most once per this interval while no data flows
  // (more often: "too_many_pings" GOAWAY after kMaxPingStrikes). Our clients ping every
  // kDefaultKeepaliveMs >= this default, with pings allowed on idle connections.
  int keepalive_min_ping_ms = kDefaultKeepaliveMinPingMs;
  // gRPC ResourceQuota: memory the server's transport may use for buffers (bytes).
  int64_t memory_quota_bytes = kDefaultMemoryQuotaBytes;
};

class GrpcServer {
 public:
  GrpcServer();
  ~GrpcServer();

  // Binds options.listen_address and serves service (borrowed: it must outlive this server).
  // name ("edge", "cloud") prefixes logs and errors; service_label says what is served.
  // UNAVAILABLE "<name>: cannot listen on <address> ..." when the address cannot be bound.
  absl::Status Start(const GrpcServerOptions& options, const std::string& name,
                     const std::string& service_label, grpc::Service* service);
  // The bound port (0 before a successful Start()).
  int port() const { return port_; }
  // grpc.health.v1 status of the whole server (Check and Watch). Ignored once shutting down.
  void SetServing(bool serving);
  // Health NOT_SERVING, refuses new calls, lets open calls finish until grace_ms, then cancels
  // them; returns when every call is done. on_shutdown (nullable) runs once new calls are being
  // refused (e.g. to ask long-lived streams to wind down). No-op before Start() or after the
  // first call.
  void Shutdown(int grace_ms, const std::function<void()>& on_shutdown = nullptr);
  // Blocks until the server has shut down. Returns at once if it never started.
  void Wait();

 private:
  std::string name_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::mutex mu_;  // guards shut_down_ and health changes
  bool shut_down_ = false;
};

}  // namespace splitrans

// One gRPC service behind a server with the house settings, shared by splitrans-edge and
// splitrans-cloud: plaintext or TLS (certificates re-read for rotation), grpc.health.v1 (our
// HealthService, optionally behind the bearer token), optional reflection, and limits against
// hostile peers (message and metadata size, concurrent streams per connection, connection age,
// a keepalive policy our clients follow, a memory quota, no SO_REUSEPORT). Thread-safe.
#pragma once

#include <absl/status/status.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "common/limits.h"
#include "common/tls.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace splitrans {

class HealthService;
class TokenAuth;

struct GrpcServerOptions {
  GrpcServerOptions() = default;
  explicit GrpcServerOptions(std::string address) : listen_address(std::move(address)) {}

  std::string listen_address;  // "127.0.0.1:0" picks a free port
  ServerTls tls;               // plaintext when !tls.enabled() (a warning off loopback)
  int max_message_bytes = kDefaultMaxMessageBytes;  // send and receive
  int max_metadata_bytes = kDefaultMaxMetadataBytes;  // a call's metadata (headers)
  int max_concurrent_streams = kDefaultMaxConcurrentStreams;  // per connection
  // GOAWAY after a connection has been open this long (0: never; gRPC adds +-10% jitter), so
  // that clients reconnect and spread over replicas, also those added since; calls then have
  // max_connection_age_grace_ms (0: unlimited) to end. The edge's cloud streams move to a new
  // connection on the GOAWAY without losing a request (edge/cloud_client.h).
  int max_connection_age_ms = kDefaultMaxConnectionAgeMs;
  int max_connection_age_grace_ms = kDefaultMaxConnectionAgeGraceMs;
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
  // On shutdown: health says NOT_SERVING this long while calls are still accepted, so that
  // probes and load balancers see it before new calls are refused.
  int drain_delay_ms = 0;
  // host:port of the plain-HTTP Prometheus endpoint (GET /metrics, common/metrics.h) that the
  // edge or cloud server starts beside this one in its Start(); "" = none. GrpcServer itself
  // does not read it.
  std::string metrics_listen_address;
};

class GrpcServer {
 public:
  GrpcServer();
  ~GrpcServer();

  // Binds options.listen_address and serves service (borrowed: it must outlive this server).
  // name ("edge", "cloud") prefixes logs and errors; service_label says what is served.
  // health_auth (nullable, borrowed): grpc.health.v1 requires this bearer token too.
  // UNAVAILABLE "<name>: cannot listen on <address> ..." when the address cannot be bound;
  // INVALID_ARGUMENT for unusable TLS files.
  absl::Status Start(const GrpcServerOptions& options, const std::string& name, const std::string& service_label,
                     grpc::Service* service, const TokenAuth* health_auth = nullptr);
  // The bound port (0 before a successful Start()).
  int port() const { return port_; }
  // grpc.health.v1 status of the whole server (Check and Watch). Ignored once shutting down.
  void SetServing(bool serving);
  // Health NOT_SERVING (for drain_delay_ms while calls are still accepted), then Watch streams
  // end, new calls are refused, open calls get until grace_ms (counted from the refusal) to
  // finish and are then cancelled; returns when every call is done. on_shutdown (nullable) runs
  // beside gRPC's own shutdown, which starts refusing calls at once (e.g. to ask long-lived
  // streams to wind down). No-op before Start(); a second call waits for the first to finish.
  void Shutdown(int grace_ms, const std::function<void()>& on_shutdown = nullptr);
  // Blocks until the server has shut down. Returns at once if it never started.
  void Wait();

 private:
  std::string name_;
  std::unique_ptr<HealthService> health_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::mutex mu_;  // guards shut_down_
  bool shut_down_ = false;
  std::mutex shutdown_mu_;  // held by Shutdown() from start to end
  int drain_delay_ms_ = 0;
};

}  // namespace splitrans

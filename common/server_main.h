// What a server binary does around its own flags, shared by splitrans-edge and splitrans-cloud:
// the common flags (listen address, gRPC limits, metrics endpoint, logging, grace), logging,
// Create(), Start(), wait for SIGINT/SIGTERM, graceful shutdown bounded by a watchdog.
#pragma once

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "common/grpc_server.h"
#include "common/logging.h"
#include "common/signals.h"

namespace splitrans {

struct ServerMainFlags {
  std::string log_level = "info";
  int grace_ms = 2000;
  bool no_reflection = false;
  std::string tls_client_certs = "auto";
};

// The flags every server has. env_prefix: "SPLITRANS_EDGE" or "SPLITRANS_CLOUD" (for the
// address and the TLS files). Call ApplyServerFlags after parsing.
inline void AddServerFlags(CLI::App* app, const std::string& env_prefix, GrpcServerOptions* server,
                           ServerMainFlags* flags) {
  app->add_option("--listen", server->listen_address, "host:port to listen on (port 0: pick a free one)")
      ->envname(env_prefix + "_ADDR");
  app->add_option("--tls-cert", server->tls.files.cert, "PEM certificate (chain) of this server: turns TLS on")
      ->envname(env_prefix + "_TLS_CERT");
  app->add_option("--tls-key", server->tls.files.key, "PEM private key of --tls-cert")
      ->envname(env_prefix + "_TLS_KEY");
  app->add_option("--tls-ca", server->tls.files.ca, "PEM CA bundle that client certificates must chain to")
      ->envname(env_prefix + "_TLS_CA");
  app->add_option("--tls-client-certs", flags->tls_client_certs,
                  "client certificates: none, optional (verified when presented), require (mutual TLS); "
                  "auto: require when --tls-ca is given, else none")
      ->envname(env_prefix + "_TLS_CLIENT_CERTS")
      ->check(CLI::IsMember({"auto", "none", "optional", "require"}));
  app->add_option("--tls-refresh-s", server->tls.files.refresh_s,
                  "re-read the certificate, key and CA files this often (rotation without a restart)")
      ->check(CLI::Range(1, 86400));
  app->add_option("--max-message-bytes", server->max_message_bytes, "gRPC max send/receive message size")
      ->envname("SPLITRANS_MAX_MESSAGE_BYTES")
      ->check(CLI::Range(4096, 1 << 30));
  app->add_option("--max-metadata-bytes", server->max_metadata_bytes,
                  "largest metadata (headers) a call may carry; larger calls are refused")
      ->check(CLI::Range(1024, 1 << 24));
  app->add_option("--max-concurrent-streams", server->max_concurrent_streams,
                  "calls one connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS); "
                  "further calls wait for a free one")
      ->check(CLI::Range(1, 1 << 20));
  app->add_option("--max-connection-age-ms", server->max_connection_age_ms,
                  "send GOAWAY after a connection has been open this long, so that clients reconnect and "
                  "spread over replicas (0: never)")
      ->check(CLI::Range(0, 1 << 30));
  app->add_option("--max-connection-age-grace-ms", server->max_connection_age_grace_ms,
                  "time the calls of such a connection then have to end (0: unlimited)")
      ->check(CLI::Range(0, 1 << 30));
  app->add_flag("--reuse-port", server->reuse_port,
                "share a port that is already in use (SO_REUSEPORT); without it, starting on a port in "
                "use fails");
  app->add_option("--keepalive-min-ping-ms", server->keepalive_min_ping_ms,
                  "keepalive policy: clients may ping this often while no data flows; faster pingers "
                  "get GOAWAY too_many_pings (our clients ping every " + std::to_string(kDefaultKeepaliveMs) + " ms)")
      ->check(CLI::Range(1, 3600000));
  app->add_option("--drain-delay-ms", server->drain_delay_ms,
                  "on SIGTERM: health reports NOT_SERVING this long while calls are still accepted, before "
                  "new calls are refused (lets probes and load balancers move traffic first)")
      ->check(CLI::Range(0, 600000));
  app->add_option("--memory-quota-bytes", server->memory_quota_bytes,
                  "gRPC resource quota for the transport's buffers")
      ->check(CLI::Range(int64_t{1} << 20, int64_t{1} << 40));
  app->add_option("--metrics-listen", server->metrics_listen_address,
                  "host:port of the Prometheus metrics endpoint, plain HTTP, path /metrics (e.g. 0.0.0.0:8002 "
                  "on the edge, 0.0.0.0:8003 on the cloud; [::]:port for IPv6). Put it on a port that is not "
                  "exposed publicly. Empty: no metrics endpoint")
      ->envname(env_prefix + "_METRICS_LISTEN");
  app->add_flag("--no-reflection", flags->no_reflection, "disable gRPC server reflection (on by default)");
  app->add_option("--grace-ms", flags->grace_ms,
                  "on SIGTERM/SIGINT: health NOT_SERVING, new calls refused, in-flight calls get this "
                  "long to finish, then are cancelled; exit 0")
      ->envname("SPLITRANS_GRACE_MS")
      ->check(CLI::Range(0, 3600000));
  app->add_option("--log-level", flags->log_level, "log level (gRPC's own lines follow it)")
      ->envname("SPLITRANS_LOG_LEVEL")
      ->check(CLI::IsMember(std::vector<std::string>(std::begin(kLogLevels), std::end(kLogLevels))));
}

// What AddServerFlags's flags mean for the server options, once parsed.
inline void ApplyServerFlags(const ServerMainFlags& flags, GrpcServerOptions* server) {
  server->reflection = !flags.no_reflection;
  if (flags.tls_client_certs == "auto") {
    server->tls.client_certs = server->tls.files.ca.empty() ? ClientCerts::kNone : ClientCerts::kRequire;
  } else {
    ParseClientCerts(flags.tls_client_certs, &server->tls.client_certs);
  }
}

// Runs a Server (static Create(options) -> absl::StatusOr<std::unique_ptr<Server>>, Start(),
// Shutdown(grace_ms), Wait()) until SIGINT or SIGTERM; returns main()'s exit code: 0 after a
// graceful shutdown, 1 when the server cannot start. A watchdog ends the process with exit
// code 1 if the shutdown overruns the grace period by more than 5 s.
// REQUIRES: called from main() before any thread is created.
template <typename Server, typename Options>
int ServeUntilSignal(const Options& options, const std::string& name, const ServerMainFlags& flags) {
  BlockTerminationSignals();
  SetupLogging(flags.log_level, name);
  auto server = Server::Create(options);
  if (!server.ok()) {
    spdlog::critical("{}", server.status().ToString());
    return 1;
  }
  if (auto st = (*server)->Start(); !st.ok()) {
    spdlog::critical("{}", st.ToString());
    return 1;
  }
  int sig = WaitForTerminationSignal();
  spdlog::info("{}: signal {}, shutting down (grace {} ms)", name, sig, flags.grace_ms);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread watchdog([&] {
    std::unique_lock<std::mutex> lock(mu);
    const int limit_ms = flags.grace_ms + options.server.drain_delay_ms + 5000;
    if (!cv.wait_for(lock, std::chrono::milliseconds(limit_ms), [&] { return done; })) {
      spdlog::critical("{}: shutdown still not finished {} ms after the signal; exiting", name, limit_ms);
      spdlog::default_logger()->flush();
      std::_Exit(1);
    }
  });
  (*server)->Shutdown(flags.grace_ms);
  (*server)->Wait();
  server->reset();
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  spdlog::info("{}: exiting", name);
  RestoreGrpcLogging();
  return 0;
}

}  // namespace splitrans

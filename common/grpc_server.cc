#include "common/grpc_server.h"

#include <absl/strings/str_cat.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/resource_quota.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <thread>

#include "common/health_service.h"

namespace splitrans {

namespace {

// Reflection is a process-wide plugin in gRPC: every builder gets it once it is registered.
// This option takes it out of one server's builder.
class WithoutReflection final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    for (auto it = plugins->begin(); it != plugins->end();) {
      it = (*it)->name() == "proto_server_reflection" ? plugins->erase(it) : it + 1;
    }
  }
};

}  // namespace

GrpcServer::GrpcServer() = default;
GrpcServer::~GrpcServer() = default;

absl::Status GrpcServer::Start(const GrpcServerOptions& options, const std::string& name,
                               const std::string& service_label, grpc::Service* service,
                               const TokenAuth* health_auth) {
  name_ = name;
  drain_delay_ms_ = options.drain_delay_ms;
  auto creds = MakeServerCredentials(options.tls);
  if (!creds.ok()) return absl::InvalidArgumentError(absl::StrCat(name, ": ", creds.status().message()));
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  health_ = std::make_unique<HealthService>(health_auth);
  grpc::ServerBuilder builder;
  if (!options.reflection) builder.SetOption(std::make_unique<WithoutReflection>());
  builder.AddListeningPort(options.listen_address, *creds, &port_);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, options.max_metadata_bytes);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
  if (options.max_connection_age_ms > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, options.max_connection_age_ms);
  }
  if (options.max_connection_age_grace_ms > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS, options.max_connection_age_grace_ms);
  }
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, options.reuse_port ? 1 : 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, options.keepalive_min_ping_ms);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, kMaxPingStrikes);
  grpc::ResourceQuota quota(name + "-quota");
  quota.Resize(static_cast<size_t>(options.memory_quota_bytes));
  builder.SetResourceQuota(quota);
  builder.RegisterService(health_.get());
  builder.RegisterService(service);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    server_.reset();
    port_ = 0;
    return absl::UnavailableError(absl::StrCat(
        name, ": cannot listen on ", options.listen_address,
        options.reuse_port ? "" : " (is the port in use? --reuse-port shares it on purpose)"));
  }
  spdlog::info("{}: serving {} on port {} ({}), {}", name, service_label, port_, options.listen_address,
               DescribeServerTls(options.tls));
  if (!options.tls.enabled() && !IsLoopbackAddress(options.listen_address)) {
    spdlog::warn("{}: listening on {} WITHOUT TLS: anyone who can reach this address can send calls and read "
                 "the traffic (see deploy/SECURITY.md; --tls-cert and --tls-key turn TLS on)",
                 name, options.listen_address);
  }
  return absl::OkStatus();
}

void GrpcServer::SetServing(bool serving) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!server_ || shut_down_) return;
  health_->SetServing(serving);
}

void GrpcServer::Shutdown(int grace_ms, const std::function<void()>& on_shutdown) {
  std::lock_guard<std::mutex> whole(shutdown_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!server_ || shut_down_) return;
    shut_down_ = true;
  }
  health_->SetServing(false);
  if (drain_delay_ms_ > 0) {
    spdlog::info("{}: health NOT_SERVING; still accepting calls for {} ms (--drain-delay-ms)", name_, drain_delay_ms_);
    std::this_thread::sleep_for(std::chrono::milliseconds(drain_delay_ms_));
  }
  health_->Shutdown();  // Watch streams end: they would otherwise hold gRPC's shutdown until the grace
  spdlog::info("{}: refusing new calls, draining open ones (grace {} ms)", name_, grace_ms);
  const auto t0 = std::chrono::steady_clock::now();
  const auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(grace_ms);
  // grpc::Server::Shutdown blocks until every call is done; on_shutdown runs beside it.
  std::thread shutdown([this, deadline] { server_->Shutdown(deadline); });
  if (on_shutdown) on_shutdown();
  shutdown.join();
  spdlog::info("{}: shut down after {} ms", name_,
               std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
}

void GrpcServer::Wait() {
  if (server_) server_->Wait();
}

}  // namespace splitrans

#include "common/grpc_server.h"

#include <absl/strings/str_cat.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <chrono>

namespace splitrans {

GrpcServer::GrpcServer() = default;
GrpcServer::~GrpcServer() = default;

absl::Status GrpcServer::Start(const GrpcServerOptions& options, grpc::Service* service) {
  name_ = options.name;
  grpc::EnableDefaultHealthCheckService(true);
  if (options.reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen_address, grpc::InsecureServerCredentials(), &port_);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.RegisterService(service);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    server_.reset();
    return absl::UnavailableError(
        absl::StrCat(options.name, ": cannot listen on ", options.listen_address));
  }
  spdlog::info("{}: serving {} on port {} ({})", options.name, options.service_label, port_,
               options.listen_address);
  return absl::OkStatus();
}

void GrpcServer::Shutdown(int grace_ms) {
  if (!server_ || shut_down_) return;
  shut_down_ = true;
  if (auto* health = server_->GetHealthCheckService()) health->SetServingStatus(false);
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(grace_ms));
  spdlog::info("{}: shut down", name_);
}

void GrpcServer::Wait() {
  if (server_) server_->Wait();
}

}  // namespace splitrans

// grpc.health.v1.Health for the servers (Check and Watch), in place of gRPC's default service
// so that it can (optionally) require the same bearer token as the rest of the server, and so
// that shutdown can end the Watch streams at once. Two service names are known: "" (the whole
// server's readiness, SetServing) and kLivenessService (SERVING from construction until
// Shutdown: for liveness probes, which must not fail while the server is merely not ready);
// others get NOT_FOUND (Check) or SERVICE_UNKNOWN (Watch). Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "proto/health.grpc.pb.h"

namespace splitrans {

class TokenAuth;

class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  static constexpr char kLivenessService[] = "splitrans.live";

  // auth (nullable, borrowed): when given, every call needs a valid bearer token.
  explicit HealthService(const TokenAuth* auth = nullptr);
  ~HealthService() override;

  // Changes the whole server's status; every Watch stream gets the new one. Ignored after
  // Shutdown().
  void SetServing(bool serving);
  bool serving() const;
  // NOT_SERVING to every watcher, then their streams end; new Watch calls end at once.
  void Shutdown();

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* ctx, const grpc::health::v1::HealthCheckRequest* req,
                                  grpc::health::v1::HealthCheckResponse* resp) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* ctx, const grpc::health::v1::HealthCheckRequest* req) override;

  class Watcher;

 private:
  friend class Watcher;
  enum class Kind { kServer, kLive, kUnknown };
  static Kind KindOf(const std::string& service);
  grpc::health::v1::HealthCheckResponse::ServingStatus StatusLocked(Kind kind) const;  // under mu_
  void Remove(Watcher* w);

  const TokenAuth* auth_;
  mutable std::mutex mu_;
  bool serving_ = false;
  bool shut_down_ = false;
  // Open Watch streams; each holds itself here until its OnDone (senders copy the pointer under
  // mu_ and send outside it, since a reaction may run inline).
  std::map<Watcher*, std::shared_ptr<Watcher>> watchers_;
};

}  // namespace splitrans

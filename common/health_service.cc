#include "common/health_service.h"

#include <absl/strings/str_cat.h>

#include <vector>

#include "common/auth.h"
#include "common/status_util.h"

namespace splitrans {

namespace hv1 = ::grpc::health::v1;
using ServingStatus = hv1::HealthCheckResponse::ServingStatus;

// One Watch stream: writes the current status, then each change (coalesced: only the latest
// status waits while a write is in flight), until the client cancels or the service shuts down.
// Its fields are guarded by mu_; the service owns it (shared) until its OnDone.
class HealthService::Watcher final : public grpc::ServerWriteReactor<hv1::HealthCheckResponse> {
 public:
  Watcher(HealthService* service, Kind kind) : service_(service), kind_(kind) {}

  // Queues the service's current status (and finishes after it once the service is shut down).
  // Never called with the service's lock held: it takes it, then its own, so that the last Send
  // after a change always queues the latest status.
  void Send() {
    bool write = false, finish = false;
    {
      std::lock_guard<std::mutex> service_lock(service_->mu_);
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      const ServingStatus status = service_->StatusLocked(kind_);
      if (status != last_) {  // each change once
        pending_ = last_ = status;
        have_pending_ = true;
      }
      finish_after_ = finish_after_ || service_->shut_down_;
      Next(&write, &finish);
    }
    Start(write, finish);
  }

  void OnWriteDone(bool ok) override {
    bool write = false, finish = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
      if (!ok) {
        have_pending_ = false;
        finish_after_ = true;
      }
      Next(&write, &finish);
    }
    Start(write, finish);
  }

  void OnCancel() override {
    bool finish = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      have_pending_ = false;
      finish_after_ = true;
      bool write = false;
      Next(&write, &finish);
    }
    Start(false, finish);
  }

  void OnDone() override { service_->Remove(this); }  // may delete this

 private:
  // Under mu_: the next write, or the Finish once nothing is left to write.
  void Next(bool* write, bool* finish) {
    if (writing_ || finished_) return;
    if (have_pending_) {
      out_.set_status(pending_);
      have_pending_ = false;
      writing_ = *write = true;
    } else if (finish_after_) {
      finished_ = *finish = true;
    }
  }
  void Start(bool write, bool finish) {
    if (write) StartWrite(&out_);
    if (finish) Finish(grpc::Status::OK);
  }

  HealthService* service_;
  const Kind kind_;
  std::mutex mu_;
  hv1::HealthCheckResponse out_;
  ServingStatus pending_ = hv1::HealthCheckResponse::UNKNOWN;
  ServingStatus last_ = static_cast<ServingStatus>(-1);  // last status queued (none yet)
  bool have_pending_ = false, writing_ = false, finish_after_ = false, finished_ = false;
};

HealthService::HealthService(const TokenAuth* auth) : auth_(auth) {}
HealthService::~HealthService() = default;

HealthService::Kind HealthService::KindOf(const std::string& service) {
  if (service.empty()) return Kind::kServer;
  if (service == kLivenessService) return Kind::kLive;
  return Kind::kUnknown;
}

ServingStatus HealthService::StatusLocked(Kind kind) const {
  switch (kind) {
    case Kind::kServer:
      return serving_ ? hv1::HealthCheckResponse::SERVING : hv1::HealthCheckResponse::NOT_SERVING;
    case Kind::kLive:
      return shut_down_ ? hv1::HealthCheckResponse::NOT_SERVING : hv1::HealthCheckResponse::SERVING;
    case Kind::kUnknown:
      break;
  }
  return hv1::HealthCheckResponse::SERVICE_UNKNOWN;
}

void HealthService::SetServing(bool serving) {
  std::vector<std::shared_ptr<Watcher>> to;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_ || serving_ == serving) return;
    serving_ = serving;
    for (auto& [p, w] : watchers_) to.push_back(w);
  }
  for (auto& w : to) w->Send();
}

bool HealthService::serving() const {
  std::lock_guard<std::mutex> lock(mu_);
  return serving_;
}

void HealthService::Shutdown() {
  std::vector<std::shared_ptr<Watcher>> to;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_down_) return;
    shut_down_ = true;
    serving_ = false;
    for (auto& [p, w] : watchers_) to.push_back(w);
  }
  for (auto& w : to) w->Send();
}

void HealthService::Remove(Watcher* w) {
  std::shared_ptr<Watcher> last;  // released after the lock
  std::lock_guard<std::mutex> lock(mu_);
  auto it = watchers_.find(w);
  if (it == watchers_.end()) return;
  last = std::move(it->second);
  watchers_.erase(it);
}

grpc::ServerUnaryReactor* HealthService::Check(grpc::CallbackServerContext* ctx, const hv1::HealthCheckRequest* req,
                                               hv1::HealthCheckResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auth_) {
    if (absl::Status st = auth_->Check(ctx->client_metadata()); !st.ok()) {
      reactor->Finish(ToGrpcStatus(st));
      return reactor;
    }
  }
  const Kind kind = KindOf(req->service());
  if (kind == Kind::kUnknown) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                 absl::StrCat("unknown service (known: \"\", the whole server's readiness, and \"",
                                              kLivenessService, "\", liveness)")));
    return reactor;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    resp->set_status(StatusLocked(kind));
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

namespace {
// A Watch refused before it started: finishes with the given status.
class RefusedWatch final : public grpc::ServerWriteReactor<hv1::HealthCheckResponse> {
 public:
  explicit RefusedWatch(grpc::Status s) { Finish(std::move(s)); }
  void OnDone() override { delete this; }
};
}  // namespace

grpc::ServerWriteReactor<hv1::HealthCheckResponse>* HealthService::Watch(grpc::CallbackServerContext* ctx,
                                                                          const hv1::HealthCheckRequest* req) {
  if (auth_) {
    if (absl::Status st = auth_->Check(ctx->client_metadata()); !st.ok()) return new RefusedWatch(ToGrpcStatus(st));
  }
  auto w = std::make_shared<Watcher>(this, KindOf(req->service()));
  {
    std::lock_guard<std::mutex> lock(mu_);
    watchers_[w.get()] = w;
  }
  w->Send();
  return w.get();
}

}  // namespace splitrans

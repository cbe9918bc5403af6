// Helpers shared by the in-process serving tests (serving_test, scaleout_test): cloud and edge
// servers on loopback ephemeral ports with the bundled model repository, synthetic requests,
// and bounded waits.
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "client/eval.h"
#include "cloud/cloud_server.h"
#include "edge/edge_server.h"
#include "proto/grpc_service.grpc.pb.h"

namespace splitrans::testutil {

using Clock = std::chrono::steady_clock;
namespace inf = ::inference;

inline int64_t MsSince(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
}

// Blocks callers of Wait() until Open(); counts them.
class Gate {
 public:
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    ++arrived_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // True once n callers have arrived (within ms).
  bool AwaitArrivals(int n, int ms) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return arrived_ >= n; });
  }
  int arrived() {
    std::lock_guard<std::mutex> lock(mu_);
    return arrived_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int arrived_ = 0;
};

// Counts events and lets a test wait for a number of them (bounded).
class Counter {
 public:
  void Add() {
    std::lock_guard<std::mutex> lock(mu_);
    ++n_;
    cv_.notify_all();
  }
  bool AwaitAtLeast(int n, int ms) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return n_ >= n; });
  }
  int value() {
    std::lock_guard<std::mutex> lock(mu_);
    return n_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int n_ = 0;
};

// Create(options) then Start() of a server (cloud::CloudServer, edge::EdgeServer); null, with a
// failed expectation saying why, when either fails.
template <typename Server, typename Options>
std::unique_ptr<Server> CreateAndStart(const Options& o) {
  auto s = Server::Create(o);
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok()) return nullptr;
  auto st = (*s)->Start();
  EXPECT_TRUE(st.ok()) << st;
  return st.ok() ? std::move(*s) : nullptr;
}

inline std::unique_ptr<cloud::CloudServer> StartCloud(const std::function<void(cloud::CloudServerOptions*)>& edit = nullptr,
                                               const std::string& addr = "127.0.0.1:0") {
  cloud::CloudServerOptions o;
  o.server.listen_address = addr;
  o.pipeline.model_repo = SPLITRANS_MODEL_REPO;
  o.pipeline.codec_device = CodecDevice::kCpu;
  if (edit) edit(&o);
  return CreateAndStart<cloud::CloudServer>(o);
}

inline std::unique_ptr<edge::EdgeServer> StartEdge(int cloud_port,
                                            const std::function<void(edge::EdgeServerOptions*)>& edit = nullptr) {
  edge::EdgeServerOptions o;
  o.server.listen_address = "127.0.0.1:0";
  o.pipeline.model_repo = SPLITRANS_MODEL_REPO;
  o.pipeline.codec_device = CodecDevice::kCpu;
  o.cloud.target = "127.0.0.1:" + std::to_string(cloud_port);
  o.cloud.initial_backoff_ms = 50;
  o.cloud.max_backoff_ms = 250;
  if (edit) edit(&o);
  return CreateAndStart<edge::EdgeServer>(o);
}

inline bool WaitConnected(edge::EdgeServer& e, int ms) {
  const auto until = Clock::now() + std::chrono::milliseconds(ms);
  while (Clock::now() < until) {
    if (e.cloud().Connected()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

inline std::string Addr(int port) { return "127.0.0.1:" + std::to_string(port); }

// Deterministic pixels of `batch` 28x28 images.
inline std::vector<uint8_t> Pixels(int batch, uint32_t seed = 7) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> p(static_cast<size_t>(batch) * 784);
  for (auto& x : p) x = static_cast<uint8_t>(rng() % 256);
  return p;
}

inline inf::ModelInferRequest PixelRequest(int batch = 1, client::InferSettings s = {}) {
  const auto p = Pixels(batch);
  return client::MakePixelRequest(s, p.data(), batch, 1, 28, 28);
}

struct Outcome {
  grpc::StatusCode code = grpc::StatusCode::OK;
  std::string message;
  int64_t ms = 0;
  inf::ModelInferResponse resp;
};

// Sends every request at once (async) and waits for all answers (bounded by the deadlines).
inline std::vector<Outcome> Fire(const std::string& addr, const std::vector<inf::ModelInferRequest>& reqs, int deadline_ms) {
  auto stub = inf::GRPCInferenceService::NewStub(client::MakeChannel(addr));
  struct Call {
    grpc::ClientContext ctx;
    inf::ModelInferResponse resp;
    Clock::time_point t0;
  };
  std::vector<Call> calls(reqs.size());
  std::vector<Outcome> out(reqs.size());
  std::mutex mu;
  std::condition_variable cv;
  size_t done = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    calls[i].ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
    calls[i].t0 = Clock::now();
    stub->async()->ModelInfer(&calls[i].ctx, &reqs[i], &calls[i].resp, [&, i](grpc::Status s) {
      std::lock_guard<std::mutex> lock(mu);
      out[i].code = s.error_code();
      out[i].message = s.error_message();
      out[i].ms = MsSince(calls[i].t0);
      out[i].resp = std::move(calls[i].resp);
      ++done;
      cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(mu);
  if (!cv.wait_for(lock, std::chrono::milliseconds(deadline_ms + 10000), [&] { return done == reqs.size(); })) {
    ADD_FAILURE() << "requests left unanswered";
    for (auto& c : calls) c.ctx.TryCancel();  // the calls must end before their state goes away
    cv.wait(lock, [&] { return done == reqs.size(); });
  }
  return out;
}

inline Outcome Infer(const std::string& addr, const inf::ModelInferRequest& req, int deadline_ms = 5000) {
  return Fire(addr, {req}, deadline_ms)[0];
}

inline std::map<grpc::StatusCode, int> CountCodes(const std::vector<Outcome>& v) {
  std::map<grpc::StatusCode, int> m;
  for (const auto& o : v) ++m[o.code];
  return m;
}

}  // namespace splitrans::testutil

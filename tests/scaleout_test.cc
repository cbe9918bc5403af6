// Several cloud replicas behind one edge (in-process, loopback): requests spread evenly, a
// draining replica costs no request, re-resolution adds and removes replicas, DNS names resolve
// to their addresses. (A replica killed with SIGKILL under load: tests/fault_test.cc.)
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "common/metrics_testing.h"
#include "edge/cloud_pool.h"
#include "tests/serving_util.h"

namespace splitrans {
namespace {

using namespace testutil;  // NOLINT(build/namespaces)

// Closed-loop load: `threads` clients, each sending one request after the other until `total`
// requests have been sent in all (bounded) or stop is set. Records every outcome.
class Load {
 public:
  Load(std::string addr, int threads, int total) : addr_(std::move(addr)), total_(total) {
    for (int t = 0; t < threads; ++t) threads_.emplace_back([this] { Run(); });
  }
  ~Load() { Join(); }
  void Join() {
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  // Sends nothing more (the requests in flight still finish); Join() waits for them.
  void Stop() { sent_.store(total_); }
  int done() const { return done_.load(); }
  // Waits until at least n requests are answered (bounded).
  bool AwaitDone(int n, int ms) const {
    const auto until = Clock::now() + std::chrono::milliseconds(ms);
    while (done_.load() < n && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return done_.load() >= n;
  }
  std::map<grpc::StatusCode, int> codes() {
    std::lock_guard<std::mutex> lock(mu_);
    return codes_;
  }
  std::vector<std::string> errors() {
    std::lock_guard<std::mutex> lock(mu_);
    return errors_;
  }

 private:
  void Run() {
    auto stub = inf::GRPCInferenceService::NewStub(client::MakeChannel(addr_));
    const auto req = PixelRequest();
    while (sent_.fetch_add(1) < total_) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      inf::ModelInferResponse resp;
      const grpc::Status s = stub->ModelInfer(&ctx, req, &resp);
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++codes_[s.error_code()];
        if (!s.ok() && errors_.size() < 20) errors_.push_back(s.error_message());
      }
      done_.fetch_add(1);
    }
  }

  const std::string addr_;
  const int total_;
  std::atomic<int> sent_{0}, done_{0};
  std::mutex mu_;
  std::map<grpc::StatusCode, int> codes_;
  std::vector<std::string> errors_;
  std::vector<std::thread> threads_;
};

int CountOf(const std::map<grpc::StatusCode, int>& m, grpc::StatusCode c) {
  auto it = m.find(c);
  return it == m.end() ? 0 : it->second;
}

std::string List(const std::vector<std::unique_ptr<cloud::CloudServer>>& clouds) {
  std::string s = "ipv4:";
  for (size_t i = 0; i < clouds.size(); ++i) s += (i ? "," : "") + Addr(clouds[i]->port());
  return s;
}

std::map<std::string, uint64_t> Answered(edge::EdgeServer& e) {
  std::map<std::string, uint64_t> m;
  for (const auto& r : e.cloud().replicas()) m[r.address] = r.answered;
  return m;
}

bool WaitReplicasConnected(edge::EdgeServer& e, size_t n, int ms) {
  const auto until = Clock::now() + std::chrono::milliseconds(ms);
  while (Clock::now() < until) {
    size_t up = 0;
    for (const auto& r : e.cloud().replicas()) up += r.connected;
    if (up >= n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

class ScaleOutTest : public ::testing::Test {
 protected:
  void SetUp() override { spdlog::set_level(spdlog::level::err); }
  std::vector<std::unique_ptr<cloud::CloudServer>> StartClouds(int n) {
    std::vector<std::unique_ptr<cloud::CloudServer>> v;
    for (int i = 0; i < n; ++i) {
      v.push_back(StartCloud());
      EXPECT_NE(v.back(), nullptr);
    }
    return v;
  }
};

TEST(CloudTargetTest, FormsAndErrors) {
  auto list = edge::ParseCloudTarget("ipv4:127.0.0.1:5001,127.0.0.1:5002,127.0.0.1:5001");
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->kind, edge::CloudTarget::Kind::kStatic);
  EXPECT_EQ(list->addresses, (std::vector<std::string>{"ipv4:127.0.0.1:5001", "ipv4:127.0.0.1:5002"}));
  auto v6 = edge::ParseCloudTarget("ipv6:[::1]:5001,[::1]:5002");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->addresses.size(), 2u);
  for (const char* dns : {"dns:///cloud.example:50052", "dns://8.8.8.8/cloud.example:50052", "cloud.example:50052"}) {
    auto t = edge::ParseCloudTarget(dns);
    ASSERT_TRUE(t.ok()) << dns << ": " << t.status();
    EXPECT_EQ(t->kind, edge::CloudTarget::Kind::kDns) << dns;
    EXPECT_EQ(t->host, "cloud.example");
    EXPECT_EQ(t->port, "50052");
  }
  for (const char* one : {"127.0.0.1:50052", "[::1]:50052", "unix:/tmp/cloud.sock"}) {
    auto t = edge::ParseCloudTarget(one);
    ASSERT_TRUE(t.ok()) << one << ": " << t.status();
    EXPECT_EQ(t->kind, edge::CloudTarget::Kind::kStatic);
    EXPECT_EQ(t->addresses, std::vector<std::string>{one});
  }
  for (const char* bad : {"", "cloud.example", "ipv4:", "ipv4:127.0.0.1:5001,", "ipv4:cloud:5001",
                          "ipv4:127.0.0.1", "dns:///cloud.example", "dns://x", "cloud:port", "::1:5001"}) {
    auto t = edge::ParseCloudTarget(bad);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    if (!t.ok()) {
      EXPECT_NE(t.status().message().find("dns:///host:port"), std::string::npos) << t.status();
    }
  }
  // getaddrinfo: localhost is one replica (IPv4 preferred over the dual-stack pair).
  auto local = edge::ResolveWithGetaddrinfo("localhost", "5001");
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ(*local, std::vector<std::string>{"ipv4:127.0.0.1:5001"});
  EXPECT_FALSE(edge::ResolveWithGetaddrinfo("no-such-host.invalid", "5001").ok());
}

// An edge with a bad target refuses to start and says what it accepts.
TEST_F(ScaleOutTest, BadTargetIsRefusedAtStart) {
  edge::EdgeServerOptions o;
  o.server.listen_address = "127.0.0.1:0";
  o.pipeline.model_repo = SPLITRANS_MODEL_REPO;
  o.pipeline.codec_device = CodecDevice::kCpu;
  o.cloud.target = "ipv4:127.0.0.1:1,cloud:2";
  auto s = edge::EdgeServer::Create(o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("'cloud' is not an IP address"), std::string::npos) << s.status();
}

// Steady load over 3 replicas: each gets its share within +-20%, and every request succeeds.
TEST_F(ScaleOutTest, RequestsSpreadEvenlyOverThreeReplicas) {
  auto clouds = StartClouds(3);
  auto edge = StartEdge(0, [&](edge::EdgeServerOptions* o) {
    o->cloud.target = List(clouds);
    o->workers = 2;
    o->server.metrics_listen_address = "127.0.0.1:0";
  });
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitReplicasConnected(*edge, 3, 10000));
  constexpr int kTotal = 600;
  Load load(Addr(edge->port()), 8, kTotal);
  load.Join();
  EXPECT_EQ(CountOf(load.codes(), grpc::StatusCode::OK), kTotal) << ::testing::PrintToString(load.errors());
  const auto per = Answered(*edge);
  ASSERT_EQ(per.size(), 3u);
  std::string figures;
  for (const auto& [addr, n] : per) {
    figures += addr + "=" + std::to_string(n) + " ";
    EXPECT_GE(n, kTotal / 3 * 0.8) << addr;
    EXPECT_LE(n, kTotal / 3 * 1.2) << addr;
  }
  std::printf("spread over 3 replicas, %d requests at concurrency 8: %s\n", kTotal, figures.c_str());
  // The edge's metrics say the same: per replica, per code, per stage; and promtool accepts them.
  const std::string text = metrics::testing::Scrape(edge->metrics_port());
  const auto m = metrics::testing::ParseSamples(text);
  for (const auto& [addr, n] : per) {
    EXPECT_EQ(m.at("splitrans_edge_cloud_requests_total{replica=\"" + addr + "\",code=\"OK\"}"), n) << addr;
    EXPECT_EQ(m.at("splitrans_edge_cloud_replica_up{replica=\"" + addr + "\"}"), 1) << addr;
  }
  const std::string labels = "model=\"fmnist_resnet\",version=\"1\",split=\"stage2\"";
  EXPECT_EQ(m.at("splitrans_edge_requests_total{" + labels + ",code=\"OK\"}"), kTotal) << text;
  EXPECT_EQ(m.at("splitrans_edge_request_duration_seconds_count{" + labels + "}"), kTotal);
  for (const char* stage : {"queue", "preprocess", "head", "encode", "transfer", "cloud_queue", "decode", "tail"}) {
    EXPECT_EQ(m.at("splitrans_edge_stage_duration_seconds_count{" + labels + ",stage=\"" + stage + "\"}"), kTotal)
        << stage;
  }
  const double raw = m.at("splitrans_edge_feature_raw_bytes_total{" + labels + "}");
  const double coded = m.at("splitrans_edge_feature_coded_bytes_total{" + labels + "}");
  EXPECT_GT(coded, 0);
  EXPECT_GT(raw, 2 * coded) << "compression ratio";
  EXPECT_EQ(m.at("splitrans_edge_inflight_requests"), 0);
  EXPECT_EQ(m.at("splitrans_codec_device_info{device=\"cpu\"}"), 1);
  auto [rc, out] = metrics::testing::PromtoolCheck(text);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "");
}

// A replica drains (SIGTERM-style shutdown with a grace period) under load: no request fails,
// it gets nothing new once it announced the drain, and the others take over.
TEST_F(ScaleOutTest, DrainingReplicaUnderLoadCostsNoRequest) {
  auto clouds = StartClouds(3);
  auto edge = StartEdge(0, [&](edge::EdgeServerOptions* o) { o->cloud.target = List(clouds); });
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitReplicasConnected(*edge, 3, 10000));
  const std::string drained = "ipv4:" + Addr(clouds[1]->port());
  constexpr int kTotal = 900;
  const auto start = Clock::now();
  Load load(Addr(edge->port()), 8, kTotal);
  ASSERT_TRUE(load.AwaitDone(kTotal / 3, 60000));
  const int64_t before_ms = MsSince(start);
  const auto t0 = Clock::now();
  clouds[1]->Shutdown(5000);  // drains its streams, answers what it has, then stops
  const int64_t shutdown_ms = MsSince(t0);
  const auto after_drain = Answered(*edge)[drained];
  const int done_at_drain = load.done();
  load.Join();
  std::printf("drain: first %d requests took %lld ms; shutdown took %lld ms, %d answered by then, the rest took %lld ms\n",
              kTotal / 3, static_cast<long long>(before_ms), static_cast<long long>(shutdown_ms), done_at_drain,
              static_cast<long long>(MsSince(t0)));
  const auto codes = load.codes();
  EXPECT_EQ(CountOf(codes, grpc::StatusCode::OK), kTotal) << ::testing::PrintToString(load.errors());
  const auto per = Answered(*edge);
  EXPECT_LE(per.at(drained), after_drain + 8) << "the draining replica kept getting requests";
  for (const auto& [addr, n] : per) {
    if (addr != drained) {
      EXPECT_GT(n, static_cast<uint64_t>(kTotal / 3)) << addr;
    }
  }
  std::printf("drain of one of 3 replicas under load: %d of %d OK; drained replica answered %llu (%llu by the drain)\n",
              CountOf(codes, grpc::StatusCode::OK), kTotal, static_cast<unsigned long long>(per.at(drained)),
              static_cast<unsigned long long>(after_drain));
}

// Client-side health checking: a replica whose grpc.health.v1 turns NOT_SERVING (the start of
// its shutdown, --drain-delay-ms, while it still accepts calls) gets no new requests from then on.
TEST_F(ScaleOutTest, NotServingReplicaGetsNoNewRequests) {
  std::vector<std::unique_ptr<cloud::CloudServer>> clouds;
  for (int i = 0; i < 3; ++i) {
    clouds.push_back(StartCloud([i](cloud::CloudServerOptions* o) {
      if (i == 1) o->server.drain_delay_ms = 2500;
    }));
    ASSERT_NE(clouds.back(), nullptr);
  }
  auto edge = StartEdge(0, [&](edge::EdgeServerOptions* o) { o->cloud.target = List(clouds); });
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitReplicasConnected(*edge, 3, 10000));
  const std::string draining = "ipv4:" + Addr(clouds[1]->port());
  auto replica = [&] {
    for (const auto& r : edge->cloud().replicas())
      if (r.address == draining) return r;
    return edge::CloudPool::Replica{};
  };
  Load load(Addr(edge->port()), 8, 100000);
  ASSERT_TRUE(load.AwaitDone(200, 60000));
  const auto t0 = Clock::now();
  std::thread stopper([&] { clouds[1]->Shutdown(5000); });
  while (replica().connected && MsSince(t0) < 2000) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const int64_t noticed_ms = MsSince(t0);
  EXPECT_FALSE(replica().connected) << "the edge did not see NOT_SERVING";
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // requests already on their way
  const uint64_t sent = replica().sent;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // still within the drain delay
  EXPECT_EQ(replica().sent, sent) << "a NOT_SERVING replica got new requests";
  load.Stop();
  load.Join();
  stopper.join();
  EXPECT_EQ(CountOf(load.codes(), grpc::StatusCode::OK), load.done()) << ::testing::PrintToString(load.errors());
  std::printf("health NOT_SERVING seen by the edge %lld ms after the replica's shutdown began; no new requests to "
              "it during the rest of its 2.5 s drain delay; %d of %d OK\n",
              static_cast<long long>(noticed_ms), CountOf(load.codes(), grpc::StatusCode::OK), load.done());
}

// Re-resolution: a replica that appears is connected and gets traffic; one that disappears gets
// no new requests and nothing fails.
TEST_F(ScaleOutTest, ReResolutionAddsAndRemovesReplicas) {
  auto clouds = StartClouds(3);
  std::mutex mu;
  std::vector<std::string> dns = {"ipv4:" + Addr(clouds[0]->port()), "ipv4:" + Addr(clouds[1]->port())};
  std::atomic<int> lookups{0};
  auto edge = StartEdge(0, [&](edge::EdgeServerOptions* o) {
    o->cloud.target = "dns:///cloud.test:50052";
    o->cloud_resolve_ms = 200;
    o->cloud_resolver = [&](const std::string& host, const std::string& port) -> absl::StatusOr<std::vector<std::string>> {
      EXPECT_EQ(host, "cloud.test");
      EXPECT_EQ(port, "50052");
      ++lookups;
      std::lock_guard<std::mutex> lock(mu);
      return dns;
    };
  });
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitReplicasConnected(*edge, 2, 10000));
  EXPECT_EQ(edge->cloud().replicas().size(), 2u);
  const std::string added = "ipv4:" + Addr(clouds[2]->port());
  {
    Load load(Addr(edge->port()), 4, 600);
    ASSERT_TRUE(load.AwaitDone(100, 60000));
    {
      std::lock_guard<std::mutex> lock(mu);
      dns.push_back(added);  // scale out
    }
    const auto t0 = Clock::now();
    ASSERT_TRUE(WaitReplicasConnected(*edge, 3, 5000));
    const int64_t picked_up_ms = MsSince(t0);
    ASSERT_TRUE(load.AwaitDone(400, 60000));
    {
      std::lock_guard<std::mutex> lock(mu);
      dns.erase(dns.begin());  // scale in: the first replica leaves the name
    }
    load.Join();
    EXPECT_EQ(CountOf(load.codes(), grpc::StatusCode::OK), 600) << ::testing::PrintToString(load.errors());
    std::printf("re-resolution every 200 ms: added replica connected %lld ms after it appeared\n",
                static_cast<long long>(picked_up_ms));
  }
  const auto per = Answered(*edge);
  EXPECT_EQ(per.size(), 2u) << "the removed replica is still in the pool";
  EXPECT_GT(per.count(added) ? per.at(added) : 0, 50u) << "the added replica got (almost) no traffic";
  EXPECT_GE(lookups.load(), 3);
  // Everything goes to the remaining two now.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(Infer(Addr(edge->port()), PixelRequest()).code, grpc::StatusCode::OK);
}

// The cloud closes connections after --max-connection-age-ms (GOAWAY) so that clients rebalance;
// the edge then finishes the old stream and moves to a new connection before the grace period
// ends: no request fails although the connection is replaced several times under load.
TEST_F(ScaleOutTest, MaxConnectionAgeCostsNoRequest) {
  auto cloud = StartCloud([](cloud::CloudServerOptions* o) {
    o->server.max_connection_age_ms = 1000;
    o->server.max_connection_age_grace_ms = 1000;
  });
  ASSERT_NE(cloud, nullptr);
  auto edge = StartEdge(cloud->port());
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitConnected(*edge, 10000));
  const auto t0 = Clock::now();
  Load load(Addr(edge->port()), 4, 100000);
  while (MsSince(t0) < 6000) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  load.Stop();
  load.Join();
  const auto codes = load.codes();
  const auto stats = edge->cloud().stats();
  EXPECT_EQ(CountOf(codes, grpc::StatusCode::OK), load.done()) << ::testing::PrintToString(load.errors());
  EXPECT_GE(stats.streams_goaway, 3u) << "the connection was not replaced (max age 1 s, 6 s of load)";
  EXPECT_EQ(stats.streams_lost, 0u);
  std::printf("max connection age 1 s, grace 1 s, 6 s of load: %d requests, all OK; %llu streams moved to a new "
              "connection on GOAWAY, %llu lost\n",
              load.done(), static_cast<unsigned long long>(stats.streams_goaway),
              static_cast<unsigned long long>(stats.streams_lost));
}

// A real DNS name (getaddrinfo) with a cloud behind it.
TEST_F(ScaleOutTest, DnsTargetResolvesAndServes) {
  auto cloud = StartCloud();
  ASSERT_NE(cloud, nullptr);
  auto edge = StartEdge(0, [&](edge::EdgeServerOptions* o) {
    o->cloud.target = "dns:///localhost:" + std::to_string(cloud->port());
  });
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitConnected(*edge, 10000));
  EXPECT_EQ(Infer(Addr(edge->port()), PixelRequest()).code, grpc::StatusCode::OK);
  const auto replicas = edge->cloud().replicas();
  ASSERT_EQ(replicas.size(), 1u);
  EXPECT_EQ(replicas[0].address, "ipv4:127.0.0.1:" + std::to_string(cloud->port()));
  EXPECT_GE(edge->cloud().resolutions(), 1u);
}

// A name that does not resolve: the edge starts, is not ready, and says why on each request.
TEST_F(ScaleOutTest, UnresolvableNameIsUnavailableWithTheReason) {
  auto edge = StartEdge(0, [&](edge::EdgeServerOptions* o) { o->cloud.target = "dns:///no-such-host.invalid:50052"; });
  ASSERT_NE(edge, nullptr);
  EXPECT_FALSE(edge->cloud().Connected());
  const auto o = Infer(Addr(edge->port()), PixelRequest());
  EXPECT_EQ(o.code, grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(o.message.find("no-such-host.invalid"), std::string::npos) << o.message;
}

}  // namespace
}  // namespace splitrans

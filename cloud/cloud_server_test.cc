// The cloud server's Prometheus metrics, scraped over HTTP from an in-process server: counters
// and histogram counts match the requests sent (answered OK, failed, refused by a full queue),
// labels stay bounded for unknown models, the gauges follow the queue, and promtool accepts the
// exposition. A metrics port in use fails Start().
#include "cloud/cloud_server.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <sstream>

#include "codec/codec.h"
#include "common/metrics_testing.h"
#include "proto/split_inference.grpc.pb.h"

namespace splitrans::cloud {
namespace {
namespace v1 = ::splitrans::v1;
using metrics::testing::ParseSamples;
using metrics::testing::PromtoolCheck;

std::string Key(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels) {
  std::string k = name + "{";
  for (size_t i = 0; i < labels.size(); ++i) k += (i ? "," : "") + labels[i].first + "=\"" + labels[i].second + "\"";
  return k + "}";
}

// model="fmnist_resnet", version="1", split=split, then extra labels.
std::string Fm(const std::string& name, const std::string& split,
               std::vector<std::pair<std::string, std::string>> extra = {}) {
  std::vector<std::pair<std::string, std::string>> l = {{"model", "fmnist_resnet"}, {"version", "1"}, {"split", split}};
  l.insert(l.end(), extra.begin(), extra.end());
  return Key(name, l);
}

std::vector<uint8_t> Feature(const std::vector<int64_t>& shape, unsigned seed) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::vector<float> v(n);
  std::mt19937 rng(seed);
  for (auto& x : v) x = rng() % 3 == 0 ? 0.f : (rng() % 100) / 25.f;
  auto r = codec::Encode({v.data(), codec::DType::kFloat32, shape}, {4, codec::Mode::kAuto});
  EXPECT_TRUE(r.ok());
  return *r;
}

v1::FeaturePacket Packet(uint64_t id, const std::string& model, const std::string& split,
                         const std::vector<uint8_t>& bytes) {
  v1::FeaturePacket p;
  p.set_request_id(id);
  p.set_model_name(model);
  p.set_split(split);
  p.set_codec_bytes(bytes.data(), bytes.size());
  return p;
}

class CloudMetricsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CloudServerOptions o;
    o.server.listen_address = "127.0.0.1:0";
    o.server.metrics_listen_address = "127.0.0.1:0";
    o.pipeline.model_repo = SPLITRANS_MODEL_REPO;
    o.pipeline.codec_device = CodecDevice::kCpu;
    o.workers = 1;
    o.max_queue = 1;
    o.test_before_decode = [this] {
      std::unique_lock<std::mutex> lock(mu_);
      entered_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return !hold_; });
    };
    auto s = CloudServer::Create(o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_GT(server_->metrics_port(), 0);
    stub_ = v1::SplitInference::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials()));
  }

  std::string Scrape() { return metrics::testing::Scrape(server_->metrics_port()); }

  grpc::Status Infer(const v1::FeaturePacket& p, v1::Result* r) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    return stub_->Infer(&ctx, p, r);
  }

  std::mutex mu_;  // before server_: its hook uses them until the server is gone
  std::condition_variable cv_;
  bool hold_ = false, entered_ = false;
  std::unique_ptr<CloudServer> server_;
  std::unique_ptr<v1::SplitInference::Stub> stub_;
};

TEST_F(CloudMetricsTest, CountsMatchTheRequestsSent) {
  const std::vector<int64_t> s2 = {1, 32, 14, 14}, s3 = {2, 64, 7, 7};
  double coded_s2 = 0;
  std::map<std::string, int> codes;  // the codes the client saw for stage2
  // Unary: three OK on stage2 (version "" resolves to 1, split "" to the default stage2).
  for (int i = 0; i < 3; ++i) {
    const auto bytes = Feature(s2, i);
    v1::Result r;
    ASSERT_TRUE(Infer(Packet(i, "fmnist_resnet", i == 0 ? "" : "stage2", bytes), &r).ok());
    coded_s2 += bytes.size();
  }
  const auto bytes3 = Feature(s3, 7);
  v1::Result r3;
  ASSERT_TRUE(Infer(Packet(10, "fmnist_resnet", "stage3", bytes3), &r3).ok());
  // Failures: an unknown model (its name must not become a label), an unknown split, a damaged
  // bitstream.
  v1::Result r;
  EXPECT_EQ(Infer(Packet(20, "no_such_model\"\n", "stage2", Feature(s2, 1)), &r).error_code(), grpc::NOT_FOUND);
  EXPECT_EQ(Infer(Packet(21, "fmnist_resnet", "stage9", Feature(s2, 1)), &r).error_code(), grpc::NOT_FOUND);
  auto damaged = Feature(s2, 2);
  damaged.resize(damaged.size() - 16);
  const grpc::Status bad = Infer(Packet(22, "fmnist_resnet", "stage2", damaged), &r);
  ASSERT_FALSE(bad.ok());
  const std::string bad_code = absl::StatusCodeToString(static_cast<absl::StatusCode>(bad.error_code()));

  // A stream: two OK on stage2, version "1"; the streams gauge counts it while it is open.
  {
    grpc::ClientContext ctx;
    auto stream = stub_->Stream(&ctx);
    for (int i = 0; i < 2; ++i) {
      const auto bytes = Feature(s2, 100 + i);
      auto p = Packet(100 + i, "fmnist_resnet", "stage2", bytes);
      p.set_model_version("1");
      ASSERT_TRUE(stream->Write(p));
      v1::Result res;
      ASSERT_TRUE(stream->Read(&res));
      EXPECT_EQ(res.status_code(), 0) << res.status_message();
      coded_s2 += bytes.size();
    }
    EXPECT_EQ(ParseSamples(Scrape())["splitrans_cloud_streams"], 1);
    stream->WritesDone();
    EXPECT_TRUE(stream->Finish().ok());
  }

  const std::string text = Scrape();
  auto m = ParseSamples(text);
  const std::string req = "splitrans_cloud_requests_total";
  EXPECT_EQ(m[Fm(req, "stage2", {{"code", "OK"}})], 5) << text;
  EXPECT_EQ(m[Fm(req, "stage3", {{"code", "OK"}})], 1);
  EXPECT_EQ(m[Fm(req, "stage2", {{"code", bad_code}})], 1) << bad_code << "\n" << text;
  EXPECT_EQ(m[Fm(req, "unknown", {{"code", "NOT_FOUND"}})], 1);
  EXPECT_EQ(
      m[Key(req, {{"model", "unknown"}, {"version", "unknown"}, {"split", "unknown"}, {"code", "NOT_FOUND"}})], 1);
  EXPECT_EQ(text.find("no_such_model"), std::string::npos);
  double total = 0;
  for (const auto& [k, v] : m) total += k.rfind(req + "{", 0) == 0 ? v : 0;
  EXPECT_EQ(total, 9);

  const std::string dur = "splitrans_cloud_request_duration_seconds";
  EXPECT_EQ(m[Fm(dur + "_count", "stage2")], 6);  // 5 OK + the damaged one
  EXPECT_EQ(m[Fm(dur + "_bucket", "stage2", {{"le", "+Inf"}})], 6);
  EXPECT_GT(m[Fm(dur + "_sum", "stage2")], 0);
  EXPECT_EQ(m[Fm(dur + "_count", "stage3")], 1);
  EXPECT_EQ(m[Fm(dur + "_count", "unknown")], 1);
  const std::string stage = "splitrans_cloud_stage_duration_seconds_count";
  EXPECT_EQ(m[Fm(stage, "stage2", {{"stage", "queue"}})], 6);
  EXPECT_EQ(m[Fm(stage, "stage2", {{"stage", "decode"}})], 5);
  EXPECT_EQ(m[Fm(stage, "stage2", {{"stage", "tail"}})], 5);
  EXPECT_EQ(m[Fm(stage, "stage3", {{"stage", "tail"}})], 1);

  EXPECT_EQ(m[Fm("splitrans_cloud_feature_coded_bytes_total", "stage2")], coded_s2);
  EXPECT_EQ(m[Fm("splitrans_cloud_feature_raw_bytes_total", "stage2")], 5 * 32 * 14 * 14 * 4);
  EXPECT_EQ(m[Fm("splitrans_cloud_feature_coded_bytes_total", "stage3")], bytes3.size());
  EXPECT_EQ(m[Fm("splitrans_cloud_feature_raw_bytes_total", "stage3")], 2 * 64 * 7 * 7 * 4);

  EXPECT_EQ(m["splitrans_cloud_inflight_requests"], 0);
  EXPECT_EQ(m["splitrans_cloud_queue_depth"], 0);
  EXPECT_EQ(m[Key("splitrans_codec_device_info", {{"device", "cpu"}})], 1);
  EXPECT_NE(text.find("\nsplitrans_build_info{version=\""), std::string::npos);

  auto [rc, out] = PromtoolCheck(text);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << text;
}

TEST_F(CloudMetricsTest, QueueFullIsCountedAndTheGaugesFollow) {
  // One worker held in test_before_decode, one request queued, the third refused.
  {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = true;
  }
  struct Call {
    grpc::ClientContext ctx;
    v1::FeaturePacket req;
    v1::Result resp;
    grpc::Status status;
    bool done = false;
  };
  std::vector<std::unique_ptr<Call>> calls;
  int done = 0, exhausted = 0;
  auto send = [&](uint64_t id) {
    calls.push_back(std::make_unique<Call>());
    Call* c = calls.back().get();
    c->req = Packet(id, "fmnist_resnet", "stage2", Feature({1, 32, 14, 14}, id));
    c->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    stub_->async()->Infer(&c->ctx, &c->req, &c->resp, [&, c](grpc::Status s) {
      std::lock_guard<std::mutex> lock(mu_);
      c->status = s;
      c->done = true;
      ++done;
      exhausted += s.error_code() == grpc::RESOURCE_EXHAUSTED;
      cv_.notify_all();
    });
  };
  send(1);
  {
    std::unique_lock<std::mutex> lock(mu_);
    ASSERT_TRUE(cv_.wait_for(lock, std::chrono::seconds(30), [&] { return entered_; }));
  }
  send(2);
  send(3);
  {
    std::unique_lock<std::mutex> lock(mu_);
    ASSERT_TRUE(cv_.wait_for(lock, std::chrono::seconds(30), [&] { return exhausted == 1; }));
  }
  auto m = ParseSamples(Scrape());
  EXPECT_EQ(m["splitrans_cloud_queue_depth"], 1);
  EXPECT_EQ(m["splitrans_cloud_inflight_requests"], 2);
  EXPECT_EQ(m[Fm("splitrans_cloud_requests_total", "stage2", {{"code", "RESOURCE_EXHAUSTED"}})], 1);
  {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = false;
    cv_.notify_all();
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    ASSERT_TRUE(cv_.wait_for(lock, std::chrono::seconds(30), [&] { return done == 3; }));
  }
  m = ParseSamples(Scrape());
  EXPECT_EQ(m[Fm("splitrans_cloud_requests_total", "stage2", {{"code", "OK"}})], 2);
  EXPECT_EQ(m[Fm("splitrans_cloud_requests_total", "stage2", {{"code", "RESOURCE_EXHAUSTED"}})], 1);
  EXPECT_EQ(m[Fm("splitrans_cloud_request_duration_seconds_count", "stage2")], 3);
  EXPECT_EQ(m[Fm("splitrans_cloud_stage_duration_seconds_count", "stage2", {{"stage", "queue"}})], 2);
  EXPECT_EQ(m["splitrans_cloud_queue_depth"], 0);
  EXPECT_EQ(m["splitrans_cloud_inflight_requests"], 0);
}

TEST_F(CloudMetricsTest, MetricsPortInUseFailsStart) {
  CloudServerOptions o;
  o.server.listen_address = "127.0.0.1:0";
  const std::string addr = "127.0.0.1:" + std::to_string(server_->metrics_port());
  o.server.metrics_listen_address = addr;
  o.pipeline.model_repo = SPLITRANS_MODEL_REPO;
  o.pipeline.codec_device = CodecDevice::kCpu;
  auto s = CloudServer::Create(o);
  ASSERT_TRUE(s.ok()) << s.status();
  const absl::Status st = (*s)->Start();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("cloud: metrics: cannot listen on " + addr), std::string::npos) << st;
  EXPECT_EQ((*s)->port(), 0) << "gRPC must not start when the metrics endpoint cannot";
  EXPECT_EQ((*s)->metrics_port(), 0);
}

}  // namespace
}  // namespace splitrans::cloud

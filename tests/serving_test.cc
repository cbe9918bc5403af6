// Serving under pressure, in one process: splitrans-cloud and splitrans-edge on 127.0.0.1
// ephemeral ports with the bundled model and synthetic inputs (no dataset needed), test hooks to
// stall or break a stage. Overload, deadlines, cancellation, failures inside workers, cloud drain,
// health, keepalive, port reuse, input kinds and parameter validation. Every wait is bounded.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <new>
#include <random>
#include <stdexcept>
#include <thread>

#include "client/eval.h"
#include "cloud/cloud_server.h"
#include "codec/codec.h"
#include "common/health_service.h"
#include "common/kserve_protocol.h"
#include "edge/edge_server.h"
#include "proto/grpc_service.grpc.pb.h"
#include "proto/health.grpc.pb.h"
#include "proto/split_inference.grpc.pb.h"
#include "tests/serving_util.h"

namespace splitrans {
namespace {

using Clock = std::chrono::steady_clock;
namespace inf = ::inference;
namespace ks = ::splitrans::kserve;
using HealthResponse = grpc::health::v1::HealthCheckResponse;

using namespace testutil;  // NOLINT(build/namespaces)

class ServingTest : public ::testing::Test {
 protected:
  void SetUp() override { spdlog::set_level(spdlog::level::err); }
};

// More concurrent requests than the edge admits: some RESOURCE_EXHAUSTED at once (naming the
// limit), every request answered, none later than its deadline + 100 ms.
TEST_F(ServingTest, OverloadGetsResourceExhaustedAndEveryRequestIsAnswered) {
  auto cloud = StartCloud([](cloud::CloudServerOptions* o) {
    o->workers = 1;
    o->test_before_decode = [] { std::this_thread::sleep_for(std::chrono::milliseconds(15)); };
  });
  ASSERT_NE(cloud, nullptr);
  auto edge = StartEdge(cloud->port(), [](edge::EdgeServerOptions* o) {
    o->workers = 1;
    o->max_queue = 4;
    o->max_inflight = 8;
  });
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitConnected(*edge, 10000));
  constexpr int kDeadlineMs = 3000;
  std::vector<inf::ModelInferRequest> reqs(64, PixelRequest());
  const auto out = Fire(Addr(edge->port()), reqs, kDeadlineMs);
  const auto codes = CountCodes(out);
  EXPECT_GT(codes.count(grpc::StatusCode::RESOURCE_EXHAUSTED) ? codes.at(grpc::StatusCode::RESOURCE_EXHAUSTED) : 0, 0);
  EXPECT_GT(codes.count(grpc::StatusCode::OK) ? codes.at(grpc::StatusCode::OK) : 0, 0);
  for (const auto& o : out) {
    EXPECT_TRUE(o.code == grpc::StatusCode::OK || o.code == grpc::StatusCode::RESOURCE_EXHAUSTED)
        << o.code << " " << o.message;
    EXPECT_LE(o.ms, kDeadlineMs + 100);
    if (o.code == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      EXPECT_TRUE(o.message.find("--max-inflight") != std::string::npos ||
                  o.message.find("--max-queue") != std::string::npos)
          << o.message;
      EXPECT_LE(o.ms, 1000) << "rejections must be immediate";
    }
  }
  // The server is fine afterwards.
  EXPECT_EQ(Infer(Addr(edge->port()), PixelRequest()).code, grpc::StatusCode::OK);
}

// The cloud's worker queue is bounded too: requests past it get RESOURCE_EXHAUSTED results.
TEST_F(ServingTest, CloudQueueIsBounded) {
  Gate gate;
  Counter packets;
  auto cloud = StartCloud([&](cloud::CloudServerOptions* o) {
    o->workers = 1;
    o->max_queue = 2;
    o->test_before_decode = [&] { gate.Wait(); };
    // Counted once the queue has taken or refused the request: the packet hook runs before that.
    o->test_on_admission = [&](bool) { packets.Add(); };
  });
  ASSERT_NE(cloud, nullptr);
  auto edge = StartEdge(cloud->port(), [](edge::EdgeServerOptions* o) { o->max_queue = 64; });
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitConnected(*edge, 10000));
  std::vector<Outcome> out;
  std::thread t([&] { out = Fire(Addr(edge->port()), std::vector<inf::ModelInferRequest>(10, PixelRequest()), 5000); });
  ASSERT_TRUE(gate.AwaitArrivals(1, 10000));
  ASSERT_TRUE(packets.AwaitAtLeast(10, 10000)) << packets.value() << " of 10 were admitted or refused by the cloud";
  gate.Open();
  t.join();
  const auto codes = CountCodes(out);
  EXPECT_EQ(codes.count(grpc::StatusCode::OK) ? codes.at(grpc::StatusCode::OK) : 0, 3) << "1 running + 2 queued";
  EXPECT_EQ(codes.count(grpc::StatusCode::RESOURCE_EXHAUSTED) ? codes.at(grpc::StatusCode::RESOURCE_EXHAUSTED) : 0, 7);
  for (const auto& o : out) {
    if (o.code != grpc::StatusCode::OK) {
      EXPECT_NE(o.message.find("cloud: worker queue is full"), std::string::npos) << o.message;
    }
  }
}

// A cloud that stalls: DEADLINE_EXCEEDED within the deadline + 100 ms; requests that expired in
// the cloud's queue are dropped before decoding; it recovers when the cloud resumes.
class StalledCloudTest : public ServingTest, public ::testing::WithParamInterface<bool> {};

TEST_P(StalledCloudTest, DeadlineExceededAndExpiredWorkIsDropped) {
  const bool use_stream = GetParam();
  Gate gate;
  std::atomic<int> decodes{0};
  auto cloud = StartCloud([&](cloud::CloudServerOptions* o) {
    o->workers = 1;
    o->test_before_decode = [&] {
      ++decodes;
      gate.Wait();
    };
  });
  ASSERT_NE(cloud, nullptr);
  auto edge = StartEdge(cloud->port(), [&](edge::EdgeServerOptions* o) { o->cloud.use_stream = use_stream; });
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitConnected(*edge, 10000));
  constexpr int kDeadlineMs = 400;
  const auto out = Fire(Addr(edge->port()), std::vector<inf::ModelInferRequest>(4, PixelRequest()), kDeadlineMs);
  for (const auto& o : out) {
    EXPECT_EQ(o.code, grpc::StatusCode::DEADLINE_EXCEEDED) << o.message;
    EXPECT_LE(o.ms, kDeadlineMs + 100);
    EXPECT_GE(o.ms, kDeadlineMs - 50);
  }
  EXPECT_EQ(decodes.load(), 1) << "one request reached the stalled worker";
  gate.Open();
  // The 3 queued requests expired in the cloud's queue: the worker drops them without decoding.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(decodes.load(), 1);
  const Outcome ok = Infer(Addr(edge->port()), PixelRequest());
  EXPECT_EQ(ok.code, grpc::StatusCode::OK) << ok.message;
  EXPECT_EQ(decodes.load(), 2);
}

INSTANTIATE_TEST_SUITE_P(StreamAndUnary, StalledCloudTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "stream" : "unary"; });

// The client's cancellation ends the request at once on the edge and tells the cloud, which
// drops it before decoding.
TEST_F(ServingTest, CancelledRequestIsAnsweredAndDroppedByTheCloud) {
  Gate gate;
  Counter packets, cancels;
  std::atomic<int> decodes{0};
  auto cloud = StartCloud([&](cloud::CloudServerOptions* o) {
    o->workers = 1;
    o->test_before_decode = [&] {
      ++decodes;
      gate.Wait();
    };
    o->test_on_packet = [&] { packets.Add(); };
    o->test_on_cancel = [&] { cancels.Add(); };
  });
  ASSERT_NE(cloud, nullptr);
  auto edge = StartEdge(cloud->port());
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitConnected(*edge, 10000));
  auto stub = inf::GRPCInferenceService::NewStub(client::MakeChannel(Addr(edge->port())));
  // Request 1 occupies the cloud's only worker; request 2 waits in its queue and is cancelled.
  std::vector<Outcome> first;
  std::thread t([&] { first = Fire(Addr(edge->port()), {PixelRequest()}, 10000); });
  ASSERT_TRUE(gate.AwaitArrivals(1, 5000));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  inf::ModelInferResponse resp;
  const auto req = PixelRequest();
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  Clock::time_point cancelled_at;
  stub->async()->ModelInfer(&ctx, &req, &resp, [&](grpc::Status s) {
    std::lock_guard<std::mutex> lock(mu);
    status = s;
    done = true;
    cv.notify_all();
  });
  ASSERT_TRUE(packets.AwaitAtLeast(2, 10000)) << "the second request never reached the cloud";
  cancelled_at = Clock::now();
  ctx.TryCancel();
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(5), [&] { return done; }));
  }
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_LE(MsSince(cancelled_at), 500);
  // The client has its answer at once; the cloud learns of the cancel from the edge's cancel
  // packet. Once it has it, the queued request is dropped when a worker reaches it.
  ASSERT_TRUE(cancels.AwaitAtLeast(1, 5000)) << "the edge never told the cloud";
  gate.Open();
  t.join();
  EXPECT_EQ(first[0].code, grpc::StatusCode::OK) << first[0].message;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(decodes.load(), 1) << "the cancelled request must not be decoded";
}

// A Torch error, an allocation failure or any exception inside a worker fails that request with
// INTERNAL and a message; the servers keep serving.
TEST_F(ServingTest, ExceptionsInWorkersFailOnlyTheirRequest) {
  std::atomic<int> cloud_throw{0}, edge_throw{0};
  auto cloud = StartCloud([&](cloud::CloudServerOptions* o) {
    o->test_before_decode = [&] {
      if (cloud_throw.exchange(0) == 1) throw std::runtime_error("simulated tail failure");
    };
  });
  ASSERT_NE(cloud, nullptr);
  auto edge = StartEdge(cloud->port(), [&](edge::EdgeServerOptions* o) {
    o->test_before_head = [&] {
      const int kind = edge_throw.exchange(0);
      if (kind == 1) throw std::bad_alloc();
      if (kind == 2) throw std::runtime_error("simulated head failure");
    };
  });
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitConnected(*edge, 10000));
  const std::string addr = Addr(edge->port());
  edge_throw = 1;
  Outcome o = Infer(addr, PixelRequest());
  EXPECT_EQ(o.code, grpc::StatusCode::INTERNAL);
  EXPECT_NE(o.message.find("out of memory"), std::string::npos) << o.message;
  edge_throw = 2;
  o = Infer(addr, PixelRequest());
  EXPECT_EQ(o.code, grpc::StatusCode::INTERNAL);
  EXPECT_NE(o.message.find("simulated head failure"), std::string::npos) << o.message;
  cloud_throw = 1;
  o = Infer(addr, PixelRequest());
  EXPECT_EQ(o.code, grpc::StatusCode::INTERNAL);
  EXPECT_NE(o.message.find("simulated tail failure"), std::string::npos) << o.message;
  o = Infer(addr, PixelRequest());
  EXPECT_EQ(o.code, grpc::StatusCode::OK) << o.message;
}

// FP32 contents, raw FP32 in unit scaling, raw BYTES, UINT8: the same images give the same
// answer; the unary edge->cloud mode too. Non-finite results fail instead of returning NaN.
class InputKindsTest : public ServingTest, public ::testing::WithParamInterface<bool> {};

std::string GrayPng(const uint8_t* pixels, int side = 28);  // below
std::string DeflatedPng(int width, int height);

TEST_P(InputKindsTest, EveryInputKindGivesTheSameLogits) {
  const bool use_stream = GetParam();
  auto cloud = StartCloud();
  ASSERT_NE(cloud, nullptr);
  auto edge = StartEdge(cloud->port(), [&](edge::EdgeServerOptions* o) { o->cloud.use_stream = use_stream; });
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitConnected(*edge, 10000));
  const std::string addr = Addr(edge->port());
  auto repo = ModelRepository::Load(SPLITRANS_MODEL_REPO);
  ASSERT_TRUE(repo.ok());
  const ModelManifest& m = **repo->Find("fmnist_resnet");
  const auto pixels = Pixels(2, 11);
  client::InferSettings s;
  s.q = 8;
  s.mode = "dense";

  auto logits_of = [](const Outcome& o) {
    std::vector<float> l;
    int64_t rows = 0, cols = 0;
    EXPECT_TRUE(client::GetLogits(o.resp, &l, &rows, &cols).ok());
    EXPECT_EQ(rows, 2);
    return l;
  };
  const Outcome u8 = Infer(addr, client::MakePixelRequest(s, pixels.data(), 2, 1, 28, 28));
  ASSERT_EQ(u8.code, grpc::StatusCode::OK) << u8.message;
  const auto ref = logits_of(u8);

  // FP32 normalized, in contents.
  inf::ModelInferRequest f;
  client::SetParameters(s, &f);
  auto* in = f.add_inputs();
  in->set_name("input");
  in->set_datatype("FP32");
  for (int64_t d : {2, 1, 28, 28}) in->add_shape(d);
  for (uint8_t p : pixels) in->mutable_contents()->add_fp32_contents((p / 255.f - m.mean[0]) / m.std[0]);
  const Outcome fp = Infer(addr, f);
  ASSERT_EQ(fp.code, grpc::StatusCode::OK) << fp.message;
  // FP32 unit scaling, raw.
  inf::ModelInferRequest unit = f;
  unit.mutable_inputs(0)->clear_contents();
  std::vector<float> uv(pixels.size());
  for (size_t i = 0; i < pixels.size(); ++i) uv[i] = pixels[i] / 255.f;
  unit.add_raw_input_contents(std::string(reinterpret_cast<const char*>(uv.data()), uv.size() * 4));
  (*unit.mutable_parameters())[ks::kParamInputScaling].set_string_param(ks::kScalingUnit);
  const Outcome un = Infer(addr, unit);
  ASSERT_EQ(un.code, grpc::StatusCode::OK) << un.message;
  // The same unit-scaled values sent as "normalized" are silently different inputs: not the
  // same answer (this is why the scaling is explicit).
  (*unit.mutable_parameters())[ks::kParamInputScaling].set_string_param(ks::kScalingNormalized);
  const Outcome wrong = Infer(addr, unit);
  ASSERT_EQ(wrong.code, grpc::StatusCode::OK) << wrong.message;
  // Raw BYTES (PNG).
  inf::ModelInferRequest b;
  client::SetParameters(s, &b);
  auto* bi = b.add_inputs();
  bi->set_name("input");
  bi->set_datatype("BYTES");
  bi->add_shape(2);
  std::string raw;
  for (int i = 0; i < 2; ++i) ks::AppendRawBytes(GrayPng(pixels.data() + i * 784), &raw);
  b.add_raw_input_contents(raw);
  const Outcome by = Infer(addr, b);
  ASSERT_EQ(by.code, grpc::StatusCode::OK) << by.message;
  ASSERT_EQ(client::GetTopkLabels(by.resp).size(), 6u);

  double max_diff_wrong = 0;
  const auto lf = logits_of(fp), lu = logits_of(un), lb = logits_of(by), lw = logits_of(wrong);
  for (size_t i = 0; i < ref.size(); ++i) {
    EXPECT_NEAR(lf[i], ref[i], 1e-3);
    EXPECT_NEAR(lu[i], ref[i], 1e-3);
    EXPECT_NEAR(lb[i], ref[i], 1e-3);
    max_diff_wrong = std::max(max_diff_wrong, std::abs(double(lw[i]) - ref[i]));
  }
  EXPECT_GT(max_diff_wrong, 0.1);

  // A finite but huge input overflows the model: an error, not NaN logits.
  inf::ModelInferRequest huge = f;
  for (int i = 0; i < huge.inputs(0).contents().fp32_contents_size(); ++i) {
    huge.mutable_inputs(0)->mutable_contents()->set_fp32_contents(i, 3e38f);
  }
  const Outcome h = Infer(addr, huge);
  EXPECT_EQ(h.code, grpc::StatusCode::INVALID_ARGUMENT) << h.message;
  EXPECT_NE(h.message.find("not finite"), std::string::npos) << h.message;
}

INSTANTIATE_TEST_SUITE_P(StreamAndUnary, InputKindsTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "stream" : "unary"; });

// Parameter validation end to end (every bad value answered with a clear error, the server
// keeps serving).
TEST_F(ServingTest, BadParametersAreRejected) {
  auto cloud = StartCloud();
  ASSERT_NE(cloud, nullptr);
  auto edge = StartEdge(cloud->port());
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitConnected(*edge, 10000));
  const std::string addr = Addr(edge->port());
  struct Case {
    const char* key;
    std::function<void(inf::InferParameter*)> set;
    grpc::StatusCode code;
  };
  const std::vector<Case> cases = {
      {"q", [](inf::InferParameter* p) { p->set_int64_param(0); }, grpc::StatusCode::INVALID_ARGUMENT},
      {"q", [](inf::InferParameter* p) { p->set_int64_param(99); }, grpc::StatusCode::INVALID_ARGUMENT},
      {"codec_mode", [](inf::InferParameter* p) { p->set_string_param("bogus"); }, grpc::StatusCode::INVALID_ARGUMENT},
      {"quantizer", [](inf::InferParameter* p) { p->set_string_param("minmax"); }, grpc::StatusCode::INVALID_ARGUMENT},
      {"split", [](inf::InferParameter* p) { p->set_string_param("bogus"); }, grpc::StatusCode::NOT_FOUND},
      {"top_k", [](inf::InferParameter* p) { p->set_int64_param(0); }, grpc::StatusCode::INVALID_ARGUMENT},
      {"colour", [](inf::InferParameter* p) { p->set_string_param("red"); }, grpc::StatusCode::INVALID_ARGUMENT},
  };
  for (const Case& c : cases) {
    auto req = PixelRequest();
    c.set(&(*req.mutable_parameters())[c.key]);
    const Outcome o = Infer(addr, req);
    EXPECT_EQ(o.code, c.code) << c.key << ": " << o.message;
    EXPECT_FALSE(o.message.empty());
  }
  auto req = PixelRequest();
  req.add_outputs()->set_name("no_such_output");
  EXPECT_EQ(Infer(addr, req).code, grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Infer(addr, PixelRequest()).code, grpc::StatusCode::OK);
  // The clipped quantizer is served (the cloud decodes it as any bitstream) and reported.
  for (const char* wire : {"srns", "zstd"}) {
    auto clip = PixelRequest();
    (*clip.mutable_parameters())["quantizer"].set_string_param("clip");
    (*clip.mutable_parameters())["q"].set_int64_param(2);
    (*clip.mutable_parameters())["feature_codec"].set_string_param(wire);
    const Outcome o = Infer(addr, clip);
    ASSERT_EQ(o.code, grpc::StatusCode::OK) << wire << ": " << o.message;
    EXPECT_EQ(o.resp.parameters().at("quantizer").string_param(), "clip") << wire;
  }
}

// A feature packet over the gRPC message limit fails only its own request (RESOURCE_EXHAUSTED,
// naming the limit); the stream to the cloud, and the next request on it, carry on.
TEST_F(ServingTest, OversizedFeaturePacketFailsOnlyItsRequest) {
  for (const bool stream : {true, false}) {
    SCOPED_TRACE(stream ? "stream" : "unary");
    auto cloud = StartCloud();
    ASSERT_NE(cloud, nullptr);
    auto edge = StartEdge(cloud->port(), [&](edge::EdgeServerOptions* o) {
      o->cloud.use_stream = stream;
      o->cloud.max_message_bytes = 20000;  // stage2's raw float32 feature is 25,088 B
    });
    ASSERT_NE(edge, nullptr);
    ASSERT_TRUE(WaitConnected(*edge, 10000));
    const std::string addr = Addr(edge->port());
    auto raw = PixelRequest();
    (*raw.mutable_parameters())["feature_codec"].set_string_param("raw");
    const Outcome big = Infer(addr, raw);
    EXPECT_EQ(big.code, grpc::StatusCode::RESOURCE_EXHAUSTED) << big.message;
    EXPECT_NE(big.message.find("--max-message-bytes"), std::string::npos) << big.message;
    const Outcome next = Infer(addr, PixelRequest(), 2000);
    EXPECT_EQ(next.code, grpc::StatusCode::OK) << next.message;
  }
}

// The edge's health follows the cloud: NOT_SERVING while it cannot reach the cloud, SERVING once
// it can; grpc.health.v1 Watch streams the changes.
TEST_F(ServingTest, EdgeHealthFollowsTheCloudAndWatchStreamsChanges) {
  auto probe = StartCloud();  // find a free port, then free it again
  ASSERT_NE(probe, nullptr);
  const int port = probe->port();
  probe.reset();
  auto edge = StartEdge(port);
  ASSERT_NE(edge, nullptr);
  auto health = grpc::health::v1::Health::NewStub(client::MakeChannel(Addr(edge->port())));
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    HealthResponse resp;
    ASSERT_TRUE(health->Check(&ctx, {}, &resp).ok());
    EXPECT_EQ(resp.status(), HealthResponse::NOT_SERVING);
  }
  {
    // Not ready, but alive: the liveness service (Kubernetes livenessProbe) stays SERVING, and
    // unknown service names are refused.
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest live;
    live.set_service(HealthService::kLivenessService);
    HealthResponse resp;
    ASSERT_TRUE(health->Check(&ctx, live, &resp).ok());
    EXPECT_EQ(resp.status(), HealthResponse::SERVING);
    grpc::ClientContext ctx2;
    live.set_service("no.such.service");
    EXPECT_EQ(health->Check(&ctx2, live, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  grpc::ClientContext watch_ctx;
  watch_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto watch = health->Watch(&watch_ctx, {});
  HealthResponse w;
  ASSERT_TRUE(watch->Read(&w));
  EXPECT_EQ(w.status(), HealthResponse::NOT_SERVING);
  auto cloud = StartCloud(nullptr, Addr(port));
  ASSERT_NE(cloud, nullptr);
  const auto t0 = Clock::now();
  ASSERT_TRUE(watch->Read(&w));
  EXPECT_EQ(w.status(), HealthResponse::SERVING);
  EXPECT_LE(MsSince(t0), 2000);
  // The cloud goes away: NOT_SERVING again.
  cloud->Shutdown(0);
  cloud.reset();
  ASSERT_TRUE(watch->Read(&w));
  EXPECT_EQ(w.status(), HealthResponse::NOT_SERVING);
  watch_ctx.TryCancel();
  watch->Finish();
}

// A server on a port that is in use does not start (gRPC would otherwise share it through
// SO_REUSEPORT), unless reuse_port asks for exactly that.
TEST_F(ServingTest, PortInUseIsRefused) {
  auto first = StartCloud();
  ASSERT_NE(first, nullptr);
  cloud::CloudServerOptions o;
  o.server.listen_address = Addr(first->port());
  o.pipeline.model_repo = SPLITRANS_MODEL_REPO;
  o.pipeline.codec_device = CodecDevice::kCpu;
  auto second = cloud::CloudServer::Create(o);
  ASSERT_TRUE(second.ok());
  const absl::Status st = (*second)->Start();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("port in use"), std::string::npos) << st;
  // Both with reuse_port: allowed on purpose.
  auto a = StartCloud([](cloud::CloudServerOptions* c) { c->server.reuse_port = true; });
  ASSERT_NE(a, nullptr);
  auto b = StartCloud([](cloud::CloudServerOptions* c) { c->server.reuse_port = true; }, Addr(a->port()));
  EXPECT_NE(b, nullptr);
}

// Keepalive both ends agree on: an idle stream outlives several ping windows with no GOAWAY and
// no reconnect, and serves afterwards. A client pinging faster than the policy allows is cut off
// (too_many_pings), which shows that the check above can fail. (gRPC clients send at most one
// ping per second, so the windows here are seconds long.)
TEST_F(ServingTest, IdleStreamSurvivesKeepaliveAndFastPingersAreCutOff) {
  auto cloud = StartCloud([](cloud::CloudServerOptions* o) { o->server.keepalive_min_ping_ms = 1500; });
  ASSERT_NE(cloud, nullptr);
  auto good = StartEdge(cloud->port(), [](edge::EdgeServerOptions* o) { o->cloud.keepalive_ms = 1600; });
  auto bad = StartEdge(cloud->port(), [](edge::EdgeServerOptions* o) { o->cloud.keepalive_ms = 100; });
  ASSERT_NE(good, nullptr);
  ASSERT_NE(bad, nullptr);
  ASSERT_TRUE(WaitConnected(*good, 10000));
  ASSERT_TRUE(WaitConnected(*bad, 10000));
  ASSERT_EQ(Infer(Addr(good->port()), PixelRequest()).code, grpc::StatusCode::OK);
  std::this_thread::sleep_for(std::chrono::milliseconds(6500));  // 4 ping windows, idle
  const auto gs = good->cloud().stats();
  EXPECT_EQ(gs.streams_established, 1u);
  EXPECT_EQ(gs.streams_lost, 0u);
  const Outcome after = Infer(Addr(good->port()), PixelRequest());
  EXPECT_EQ(after.code, grpc::StatusCode::OK) << after.message;
  EXPECT_EQ(good->cloud().stats().streams_established, 1u);
  EXPECT_GE(bad->cloud().stats().streams_lost, 1u) << "pings every second against a 1.5 s policy";
}

// SIGTERM-like shutdown of the cloud with requests in flight at it: the edge is told to drain,
// every in-flight request is answered, and the cloud finishes within the grace period.
TEST_F(ServingTest, CloudDrainAnswersEveryRequestInFlight) {
  Gate gate;
  Counter packets;
  auto cloud = StartCloud([&](cloud::CloudServerOptions* o) {
    o->workers = 2;
    o->test_before_decode = [&] { gate.Wait(); };
    o->test_on_packet = [&] { packets.Add(); };
  });
  ASSERT_NE(cloud, nullptr);
  auto edge = StartEdge(cloud->port());
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitConnected(*edge, 10000));
  std::vector<Outcome> out;
  std::thread t([&] { out = Fire(Addr(edge->port()), std::vector<inf::ModelInferRequest>(6, PixelRequest()), 10000); });
  ASSERT_TRUE(gate.AwaitArrivals(2, 10000));
  ASSERT_TRUE(packets.AwaitAtLeast(6, 10000)) << "all 6 must be at the cloud";
  const auto t0 = Clock::now();
  std::thread stop([&] { cloud->Shutdown(5000); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  gate.Open();
  stop.join();
  EXPECT_LE(MsSince(t0), 3000);
  t.join();
  for (const auto& o : out) EXPECT_EQ(o.code, grpc::StatusCode::OK) << o.message;
  EXPECT_GE(edge->cloud().stats().streams_drained, 1u);
  EXPECT_EQ(edge->cloud().stats().streams_lost, 0u);
}

// The edge's shutdown respects the grace period even when its workers are busy: what is left
// is cancelled, every call is answered.
TEST_F(ServingTest, EdgeShutdownRespectsGraceWithBusyWorkers) {
  auto cloud = StartCloud();
  ASSERT_NE(cloud, nullptr);
  auto edge = StartEdge(cloud->port(), [](edge::EdgeServerOptions* o) {
    o->workers = 1;
    o->max_queue = 100;
    o->test_before_head = [] { std::this_thread::sleep_for(std::chrono::milliseconds(100)); };
  });
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitConnected(*edge, 10000));
  std::vector<Outcome> out;
  std::thread t([&] { out = Fire(Addr(edge->port()), std::vector<inf::ModelInferRequest>(40, PixelRequest()), 30000); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto t0 = Clock::now();
  edge->Shutdown(500);
  const int64_t took = MsSince(t0);
  t.join();
  EXPECT_LE(took, 500 + 100 + 1000) << "grace + one stage + margin";
  auto codes = CountCodes(out);
  EXPECT_GT(codes[grpc::StatusCode::OK], 0);
  EXPECT_GT(codes[grpc::StatusCode::CANCELLED] + codes[grpc::StatusCode::UNAVAILABLE], 0);
  for (const auto& o : out) {
    EXPECT_TRUE(o.code == grpc::StatusCode::OK || o.code == grpc::StatusCode::CANCELLED ||
                o.code == grpc::StatusCode::UNAVAILABLE)
        << o.code << " " << o.message;
  }
}

// Raw stream to the cloud: duplicate request ids in flight are rejected; a cancel packet drops a
// queued request (CANCELLED, not decoded).
TEST_F(ServingTest, CloudStreamRejectsDuplicateIdsAndHonoursCancel) {
  Gate gate;
  std::atomic<int> decodes{0};
  auto cloud = StartCloud([&](cloud::CloudServerOptions* o) {
    o->workers = 1;
    o->test_before_decode = [&] {
      ++decodes;
      gate.Wait();
    };
  });
  ASSERT_NE(cloud, nullptr);
  std::vector<float> feature(32 * 14 * 14, 0.5f);
  for (size_t i = 0; i < feature.size(); i += 3) feature[i] = 0;
  auto bytes = codec::Encode({feature.data(), codec::DType::kFloat32, {1, 32, 14, 14}}, {4});
  ASSERT_TRUE(bytes.ok());
  auto stub = v1::SplitInference::NewStub(client::MakeChannel(Addr(cloud->port())));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto stream = stub->Stream(&ctx);
  auto packet = [&](uint64_t id) {
    v1::FeaturePacket p;
    p.set_request_id(id);
    p.set_model_name("fmnist_resnet");
    p.set_split("stage2");
    p.set_codec_bytes(bytes->data(), bytes->size());
    return p;
  };
  ASSERT_TRUE(stream->Write(packet(1)));
  ASSERT_TRUE(gate.AwaitArrivals(1, 5000));
  ASSERT_TRUE(stream->Write(packet(2)));  // queued behind 1
  ASSERT_TRUE(stream->Write(packet(1)));  // duplicate of 1, in flight
  v1::FeaturePacket cancel;
  cancel.set_request_id(2);
  cancel.set_cancel(true);
  ASSERT_TRUE(stream->Write(cancel));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  gate.Open();
  stream->WritesDone();
  std::map<uint64_t, std::vector<v1::Result>> results;
  v1::Result r;
  while (stream->Read(&r)) results[r.request_id()].push_back(r);
  EXPECT_TRUE(stream->Finish().ok());
  ASSERT_EQ(results[1].size(), 2u);
  EXPECT_EQ(results[1][0].status_code(), grpc::StatusCode::INVALID_ARGUMENT) << "the duplicate is answered first";
  EXPECT_NE(results[1][0].status_message().find("duplicate request_id"), std::string::npos);
  EXPECT_EQ(results[1][1].status_code(), 0) << results[1][1].status_message();
  ASSERT_EQ(results[2].size(), 1u);
  EXPECT_EQ(results[2][0].status_code(), grpc::StatusCode::CANCELLED);
  EXPECT_EQ(decodes.load(), 1);
}

// Work does not outlive its request: the images of one request may cost at most
// --max-request-pixels pixels (refused from their headers, before any is decoded), and a
// request that runs out of time stops between images; the next request is served at once.
TEST_F(ServingTest, ImageDecodingIsBoundedPerRequest) {
  auto cloud = StartCloud();
  ASSERT_NE(cloud, nullptr);
  constexpr int kSide = 4096, kImages = 16;
  auto edge = StartEdge(cloud->port(), [](edge::EdgeServerOptions* o) {
    o->workers = 1;
    o->pipeline.max_request_pixels = int64_t{kImages} * kSide * kSide;
  });
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitConnected(*edge, 10000));
  const std::string addr = Addr(edge->port());
  const std::string png = DeflatedPng(kSide, kSide);  // small file, 16.8 Mpixels to decode
  auto bytes_request = [&](int count) {
    inf::ModelInferRequest r;
    client::SetParameters({}, &r);
    auto* in = r.add_inputs();
    in->set_name("input");
    in->set_datatype("BYTES");
    in->add_shape(count);
    for (int i = 0; i < count; ++i) in->mutable_contents()->add_bytes_contents(png);
    return r;
  };
  // One image over the budget: refused at once.
  Outcome o = Infer(addr, bytes_request(kImages + 1), 10000);
  EXPECT_EQ(o.code, grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(o.message.find("--max-request-pixels"), std::string::npos) << o.message;
  EXPECT_LE(o.ms, 500);
  const Outcome full = Infer(addr, bytes_request(kImages), 60000);
  ASSERT_EQ(full.code, grpc::StatusCode::OK) << full.message;
  // Within the budget but with a deadline of a fifth of the full time: stopped between images,
  // and the next request on the single worker is answered long before the full time.
  const int deadline_ms = std::max<int>(20, static_cast<int>(full.ms / 5));
  const auto t0 = Clock::now();
  o = Infer(addr, bytes_request(kImages), deadline_ms);
  EXPECT_EQ(o.code, grpc::StatusCode::DEADLINE_EXCEEDED) << o.message;
  const Outcome next = Infer(addr, PixelRequest(), 60000);
  EXPECT_EQ(next.code, grpc::StatusCode::OK) << next.message;
  const int64_t both = MsSince(t0);
  std::printf("%d PNGs of %dx%d: %lld ms in full; with a %d ms deadline the next request was answered %lld ms after "
              "the first was sent\n",
              kImages, kSide, kSide, static_cast<long long>(full.ms), deadline_ms, static_cast<long long>(both));
  EXPECT_LT(both, full.ms / 2) << "the deadline did not stop the decoding";
}

// The edge->cloud send queue is bounded in bytes (RESOURCE_EXHAUSTED naming --cloud-queue-bytes),
// and requests still queued when the cloud goes away are sent, once, on the next stream.
TEST_F(ServingTest, SendQueueIsBoundedAndQueuedRequestsSurviveACloudRestart) {
  Gate gate;
  auto cloud = StartCloud([&](cloud::CloudServerOptions* o) {
    o->workers = 1;
    o->max_inflight_per_stream = 1;  // reading stops: the edge's writes back up
    o->test_before_decode = [&] { gate.Wait(); };
  });
  ASSERT_NE(cloud, nullptr);
  const int port = cloud->port();
  auto edge = StartEdge(port, [](edge::EdgeServerOptions* o) {
    o->workers = 2;
    o->max_queue = 256;
    o->cloud.max_queue_bytes = 4 << 20;
    o->cloud.deadline_ms = 60000;
  });
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitConnected(*edge, 10000));
  client::InferSettings s;
  s.q = 8;
  s.mode = "dense";
  s.split = "stage1";  // 64 x 12544 values per request: ~800 KB on the wire
  const auto px = Pixels(64);
  const auto big = client::MakePixelRequest(s, px.data(), 64, 1, 28, 28);
  std::mutex mu;
  std::vector<Outcome> out;
  std::vector<std::thread> senders;
  auto send = [&] {
    senders.emplace_back([&] {
      Outcome o = Infer(Addr(edge->port()), big, 60000);
      std::lock_guard<std::mutex> lock(mu);
      out.push_back(std::move(o));
    });
  };
  auto refused = [&] {
    std::lock_guard<std::mutex> lock(mu);
    return std::count_if(out.begin(), out.end(),
                         [](const Outcome& o) { return o.message.find("--cloud-queue-bytes") != std::string::npos; });
  };
  auto handed_over = [&] {  // requests that reached the cloud client (queued, written or refused)
    uint64_t n = 0;
    for (const auto& r : edge->cloud().replicas()) n += r.sent;
    return n;
  };
  send();
  ASSERT_TRUE(gate.AwaitArrivals(1, 10000));
  // The held cloud's HTTP/2 stream window (BDP-grown, up to 32 MiB) absorbs a timing-dependent
  // number of packets: send, 4 ahead of the edge's workers, until one is refused at the bound.
  const auto until = Clock::now() + std::chrono::seconds(90);
  while (refused() == 0 && senders.size() < 160 && Clock::now() < until) {
    if (senders.size() < handed_over() + 4) {
      send();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  const auto full = edge->cloud().stats();
  EXPECT_GT(refused(), 0) << senders.size() << " sent, " << handed_over() << " handed over, " << full.queued_bytes
                          << " bytes queued";
  EXPECT_LE(full.queued_bytes, 4 << 20);
  // Gate shut until the edge saw its stream end: nothing queued can leave on the old stream.
  auto ended = [&] {
    const auto st = edge->cloud().stats();
    return st.streams_lost + st.streams_drained + st.streams_goaway;
  };
  std::thread stop([&] { cloud->Shutdown(0); });
  const auto stop_until = Clock::now() + std::chrono::seconds(10);
  while (ended() == 0 && Clock::now() < stop_until) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const int64_t queued_at_end = edge->cloud().stats().queued_bytes;
  EXPECT_GT(ended(), 0u) << "the edge never saw its stream end";
  gate.Open();
  stop.join();
  cloud.reset();
  cloud = StartCloud(nullptr, Addr(port));
  EXPECT_NE(cloud, nullptr);
  for (auto& t : senders) t.join();
  auto codes = CountCodes(out);
  int queue_full = 0;
  for (const auto& o : out) {
    EXPECT_TRUE(o.code == grpc::StatusCode::OK || o.code == grpc::StatusCode::RESOURCE_EXHAUSTED ||
                o.code == grpc::StatusCode::UNAVAILABLE)
        << o.code << " " << o.message;
    queue_full += o.message.find("--cloud-queue-bytes") != std::string::npos;
  }
  const auto stats = edge->cloud().stats();
  std::printf("%zu requests of ~800 KB: OK %d, RESOURCE_EXHAUSTED %d (send queue full: %d), UNAVAILABLE %d "
              "(written before the cloud went away); streams drained %llu, lost %llu\n",
              out.size(), codes[grpc::StatusCode::OK], codes[grpc::StatusCode::RESOURCE_EXHAUSTED], queue_full,
              codes[grpc::StatusCode::UNAVAILABLE], static_cast<unsigned long long>(stats.streams_drained),
              static_cast<unsigned long long>(stats.streams_lost));
  EXPECT_GT(queue_full, 0);
  EXPECT_GT(codes[grpc::StatusCode::OK], 1) << "queued requests must succeed on the new cloud";
  // Packets are < 1 MiB: at least this many were still queued when the stream ended.
  EXPECT_GE(codes[grpc::StatusCode::OK], queued_at_end / (1 << 20)) << queued_at_end;
}

// When every request failed, eval reports no throughput instead of a made-up one.
TEST(EvalSummaryTest, NoThroughputWhenEveryRequestFailed) {
  client::EvalSummary s;
  s.images = s.requests = s.failed_requests = 10;
  s.wall_s = 2;
  s.requests_per_s = 0;
  s.first_error = "grpc code 14: cloud unavailable";
  EXPECT_NE(s.ToText().find("throughput          : n/a"), std::string::npos) << s.ToText();
  EXPECT_NE(s.ToJson().find("\"requests_per_s\": null"), std::string::npos) << s.ToJson();
  s.failed_requests = 4;
  s.requests_per_s = 3;
  EXPECT_NE(s.ToText().find("3.0 req/s"), std::string::npos) << s.ToText();
}

// An open Watch stream does not hold the shutdown: it gets NOT_SERVING and ends, and the
// server stops at once instead of after its whole grace period.
TEST_F(ServingTest, HealthWatchEndsAtShutdown) {
  auto cloud = StartCloud();
  ASSERT_NE(cloud, nullptr);
  auto health = grpc::health::v1::Health::NewStub(client::MakeChannel(Addr(cloud->port())));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto watch = health->Watch(&ctx, {});
  HealthResponse w;
  ASSERT_TRUE(watch->Read(&w));
  EXPECT_EQ(w.status(), HealthResponse::SERVING);
  grpc::ClientContext live_ctx;
  live_ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  grpc::health::v1::HealthCheckRequest live;
  live.set_service(HealthService::kLivenessService);
  auto live_watch = health->Watch(&live_ctx, live);
  ASSERT_TRUE(live_watch->Read(&w));
  EXPECT_EQ(w.status(), HealthResponse::SERVING);
  const auto t0 = Clock::now();
  cloud->Shutdown(10000);
  EXPECT_LE(MsSince(t0), 2000) << "the Watch stream held the shutdown";
  ASSERT_TRUE(watch->Read(&w));
  EXPECT_EQ(w.status(), HealthResponse::NOT_SERVING);
  EXPECT_FALSE(watch->Read(&w));
  EXPECT_TRUE(watch->Finish().ok());
  ASSERT_TRUE(live_watch->Read(&w));  // liveness ends with the shutdown too
  EXPECT_EQ(w.status(), HealthResponse::NOT_SERVING);
  EXPECT_FALSE(live_watch->Read(&w));
  EXPECT_TRUE(live_watch->Finish().ok());
}

// Shutdown order: health NOT_SERVING first while calls are still served (--drain-delay-ms),
// then new calls are refused while the one in flight finishes within the grace period.
TEST_F(ServingTest, ShutdownTurnsNotServingFirstThenRefusesNewCalls) {
  Gate gate;
  Counter packets;
  auto cloud = StartCloud([&](cloud::CloudServerOptions* o) {
    o->test_on_packet = [&] { packets.Add(); };
    o->test_before_decode = [&] {
      if (packets.value() == 1) gate.Wait();  // only the first request is held
    };
  });
  ASSERT_NE(cloud, nullptr);
  auto edge = StartEdge(cloud->port(), [](edge::EdgeServerOptions* o) { o->server.drain_delay_ms = 800; });
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitConnected(*edge, 10000));
  const std::string addr = Addr(edge->port());
  std::vector<Outcome> held;
  std::thread t([&] { held = Fire(addr, {PixelRequest()}, 20000); });
  ASSERT_TRUE(gate.AwaitArrivals(1, 10000));
  std::thread stop([&] { edge->Shutdown(10000); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // During the drain delay: NOT_SERVING, but calls are still served.
  {
    auto health = grpc::health::v1::Health::NewStub(client::MakeChannel(addr));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    HealthResponse resp;
    ASSERT_TRUE(health->Check(&ctx, {}, &resp).ok());
    EXPECT_EQ(resp.status(), HealthResponse::NOT_SERVING);
  }
  const Outcome during = Infer(addr, PixelRequest(), 5000);
  EXPECT_EQ(during.code, grpc::StatusCode::OK) << during.message;
  std::this_thread::sleep_for(std::chrono::milliseconds(900));
  // After it: refused, while the held request is still in flight.
  const Outcome after = Infer(addr, PixelRequest(), 2000);
  EXPECT_NE(after.code, grpc::StatusCode::OK);
  gate.Open();
  stop.join();
  t.join();
  EXPECT_EQ(held[0].code, grpc::StatusCode::OK) << held[0].message;
}

// Requests that arrive just after the cloud drained its stream wait for the next stream (here:
// a new cloud on the same port) instead of failing.
TEST_F(ServingTest, RequestsDuringADrainWaitForTheNextStream) {
  auto cloud = StartCloud();
  ASSERT_NE(cloud, nullptr);
  const int port = cloud->port();
  auto edge = StartEdge(port);
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitConnected(*edge, 10000));
  const std::string addr = Addr(edge->port());
  ASSERT_EQ(Infer(addr, PixelRequest()).code, grpc::StatusCode::OK);
  cloud->Shutdown(1000);
  cloud.reset();
  std::vector<Outcome> out;
  std::thread t([&] { out = Fire(addr, std::vector<inf::ModelInferRequest>(4, PixelRequest()), 10000); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  cloud = StartCloud(nullptr, Addr(port));
  ASSERT_NE(cloud, nullptr);
  t.join();
  for (const auto& o : out) EXPECT_EQ(o.code, grpc::StatusCode::OK) << o.message;
  EXPECT_GE(edge->cloud().stats().streams_drained, 1u);
}

// A minimal grayscale PNG (8-bit, filter 0 per row, stored deflate blocks, no zlib needed).
std::string GrayPng(const uint8_t* pixels, int side) {
  auto be32 = [](std::string* s, uint32_t v) {
    for (int i = 3; i >= 0; --i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  auto crc = [](const std::string& d) {
    uint32_t c = 0xffffffffu;
    for (unsigned char ch : d) {
      c ^= ch;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
  };
  auto chunk = [&](std::string* out, const char* type, const std::string& data) {
    be32(out, static_cast<uint32_t>(data.size()));
    const std::string td = std::string(type, 4) + data;
    out->append(td);
    be32(out, crc(td));
  };
  std::string png("\x89PNG\r\n\x1a\n", 8), ihdr;
  be32(&ihdr, side);
  be32(&ihdr, side);
  ihdr += std::string("\x08\x00\x00\x00\x00", 5);
  chunk(&png, "IHDR", ihdr);
  std::string raw;
  for (int y = 0; y < side; ++y) {
    raw.push_back(0);
    raw.append(reinterpret_cast<const char*>(pixels + static_cast<size_t>(y) * side), side);
  }
  // zlib stream: header, stored blocks of at most 65535 bytes, Adler-32.
  std::string z("\x78\x01", 2);
  for (size_t pos = 0; pos < raw.size();) {
    const size_t n = std::min<size_t>(65535, raw.size() - pos);
    z.push_back(pos + n == raw.size() ? '\x01' : '\x00');
    const uint16_t len = static_cast<uint16_t>(n);
    z.push_back(static_cast<char>(len & 0xff));
    z.push_back(static_cast<char>(len >> 8));
    z.push_back(static_cast<char>(~len & 0xff));
    z.push_back(static_cast<char>((~len >> 8) & 0xff));
    z.append(raw, pos, n);
    pos += n;
  }
  uint32_t a = 1, b = 0;
  for (unsigned char ch : raw) {
    a = (a + ch) % 65521;
    b = (b + a) % 65521;
  }
  be32(&z, (b << 16) | a);
  chunk(&png, "IDAT", z);
  chunk(&png, "IEND", "");
  return png;
}

// A mid-gray PNG compressed with zlib: tiny on the wire, width x height pixels to decode.
std::string DeflatedPng(int width, int height) {
  auto be32 = [](std::string* s, uint32_t v) {
    for (int i = 3; i >= 0; --i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  auto chunk = [&](std::string* out, const char* type, const std::string& data) {
    be32(out, static_cast<uint32_t>(data.size()));
    const std::string td = std::string(type, 4) + data;
    out->append(td);
    be32(out, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(td.data()), td.size())));
  };
  std::string png("\x89PNG\r\n\x1a\n", 8), ihdr;
  be32(&ihdr, width);
  be32(&ihdr, height);
  ihdr += std::string("\x08\x00\x00\x00\x00", 5);
  chunk(&png, "IHDR", ihdr);
  std::string raw;
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);
    raw.append(width, static_cast<char>(128));
  }
  uLongf len = compressBound(raw.size());
  std::string z(len, '\0');
  compress(reinterpret_cast<Bytef*>(z.data()), &len, reinterpret_cast<const Bytef*>(raw.data()), raw.size());
  z.resize(len);
  chunk(&png, "IDAT", z);
  chunk(&png, "IEND", "");
  return png;
}

}  // namespace
}  // namespace splitrans

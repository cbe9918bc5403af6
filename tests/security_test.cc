// Security, in one process: TLS and mutual TLS on both hops, bearer tokens on the edge's front
// door, certificate rotation, and the limits against hostile peers. Certificates come from
// deploy/make_certs.sh (Debian's openssl) into a temporary directory: two unrelated CAs, A (the
// deployment's) and B (an attacker's). Every wait is bounded.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "client/eval.h"
#include "cloud/cloud_server.h"
#include "codec/codec.h"
#include "edge/edge_server.h"
#include "proto/grpc_service.grpc.pb.h"
#include "proto/health.grpc.pb.h"
#include "proto/split_inference.grpc.pb.h"
#include "tests/serving_util.h"

namespace splitrans {
namespace {

namespace fs = std::filesystem;
namespace inf = ::inference;
using Clock = std::chrono::steady_clock;
using HealthResponse = grpc::health::v1::HealthCheckResponse;

constexpr char kToken[] = "s3cr3t-token-0123456789abcdef";
constexpr char kOtherToken[] = "another-token-9876543210zyxwvu";

std::string Addr(int port) { return "127.0.0.1:" + std::to_string(port); }

std::string ReadFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class SecurityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fs::temp_directory_path() / ("splitrans-security-" + std::to_string(getpid())));
    fs::remove_all(*dir_);
    for (const char* ca : {"a", "b"}) {
      const std::string cmd = "bash " SPLITRANS_SOURCE_DIR "/deploy/make_certs.sh " + (*dir_ / ca).string() + " 2 >/dev/null";
      ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    }
    std::ofstream(*dir_ / "tokens") << "# test tokens\n" << kToken << "\n\n" << kOtherToken << "\n";
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  void SetUp() override { spdlog::set_level(spdlog::level::warn); }

  static std::string F(const char* ca, const char* file) { return (*dir_ / ca / file).string(); }
  static TlsFiles Files(const char* ca, const char* name, bool with_ca = true) {
    TlsFiles f;
    f.cert = F(ca, (std::string(name) + ".pem").c_str());
    f.key = F(ca, (std::string(name) + ".key").c_str());
    if (with_ca) f.ca = F(ca, "ca.pem");
    f.refresh_s = 1;
    return f;
  }

  // A cloud with TLS from CA A and client certificates required (mutual TLS).
  static std::unique_ptr<cloud::CloudServer> StartCloud(const std::function<void(cloud::CloudServerOptions*)>& edit = nullptr) {
    cloud::CloudServerOptions o;
    o.server.listen_address = "127.0.0.1:0";
    o.server.tls.files = Files("a", "cloud");
    o.server.tls.client_certs = ClientCerts::kRequire;
    o.pipeline.model_repo = SPLITRANS_MODEL_REPO;
    o.pipeline.codec_device = CodecDevice::kCpu;
    if (edit) edit(&o);
    return testutil::CreateAndStart<cloud::CloudServer>(o);
  }

  // An edge with TLS on its front door (optional client certificates from CA A) and mutual TLS
  // to the cloud with its edge-client certificate.
  static std::unique_ptr<edge::EdgeServer> StartEdge(int cloud_port,
                                                     const std::function<void(edge::EdgeServerOptions*)>& edit = nullptr) {
    edge::EdgeServerOptions o;
    o.server.listen_address = "127.0.0.1:0";
    o.server.tls.files = Files("a", "edge");
    o.server.tls.client_certs = ClientCerts::kOptional;
    o.pipeline.model_repo = SPLITRANS_MODEL_REPO;
    o.pipeline.codec_device = CodecDevice::kCpu;
    o.cloud.target = Addr(cloud_port);
    o.cloud.tls.files = Files("a", "edge-client");
    o.cloud.initial_backoff_ms = 50;
    o.cloud.max_backoff_ms = 250;
    if (edit) edit(&o);
    return testutil::CreateAndStart<edge::EdgeServer>(o);
  }

  static bool WaitConnected(edge::EdgeServer& e, int ms) { return testutil::WaitConnected(e, ms); }

  static std::shared_ptr<grpc::Channel> Channel(int port, const char* ca, const char* cert = nullptr,
                                                const std::string& token = "") {
    client::ChannelSecurity sec;
    if (ca) sec.tls.files.ca = F(ca, "ca.pem");
    if (cert) {
      sec.tls.files.cert = F(ca, (std::string(cert) + ".pem").c_str());
      sec.tls.files.key = F(ca, (std::string(cert) + ".key").c_str());
    }
    sec.token = token;
    auto ch = client::MakeChannel(Addr(port), sec);
    EXPECT_TRUE(ch.ok()) << ch.status();
    return ch.ok() ? *ch : nullptr;
  }

  static grpc::Status Infer(const std::shared_ptr<grpc::Channel>& ch, int deadline_ms = 5000) {
    auto stub = inf::GRPCInferenceService::NewStub(ch);
    std::vector<uint8_t> px(784, 90);
    const auto req = client::MakePixelRequest({}, px.data(), 1, 1, 28, 28);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
    inf::ModelInferResponse resp;
    return stub->ModelInfer(&ctx, req, &resp);
  }

  static grpc::Status CheckHealth(const std::shared_ptr<grpc::Channel>& ch, HealthResponse* resp) {
    auto stub = grpc::health::v1::Health::NewStub(ch);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    return stub->Check(&ctx, {}, resp);
  }

  // A unary Infer straight to the cloud (the feature of one stage2 request).
  // wait_for_ready: the call waits for the channel to (re)connect instead of failing UNAVAILABLE.
  static grpc::Status CloudInfer(const std::shared_ptr<grpc::Channel>& ch, size_t extra_bytes = 0,
                                 bool wait_for_ready = false) {
    std::vector<float> v(32 * 14 * 14, 0.25f);
    for (size_t i = 0; i < v.size(); i += 3) v[i] = 0;
    auto bytes = codec::Encode({v.data(), codec::DType::kFloat32, {1, 32, 14, 14}}, {4});
    EXPECT_TRUE(bytes.ok());
    v1::FeaturePacket p;
    p.set_model_name("fmnist_resnet");
    p.set_split("stage2");
    p.set_codec_bytes(bytes->data(), bytes->size());
    if (extra_bytes) p.set_model_version(std::string(extra_bytes, '1'));  // only makes the message big
    auto stub = v1::SplitInference::NewStub(ch);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    ctx.set_wait_for_ready(wait_for_ready);
    v1::Result r;
    return stub->Infer(&ctx, p, &r);
  }

  // One message on the reflection service's stream: UNIMPLEMENTED when reflection is off.
  static grpc::Status ReflectionCall(const std::shared_ptr<grpc::Channel>& ch) {
    grpc::GenericStub generic(ch);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    grpc::Slice empty("", 0);  // an empty ServerReflectionRequest
    grpc::ByteBuffer out(&empty, 1), in;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    grpc::Status st;
    generic.UnaryCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", grpc::StubOptions(),
                      &out, &in, [&](grpc::Status s) {
                        std::lock_guard<std::mutex> lock(mu);
                        st = s;
                        done = true;
                        cv.notify_all();
                      });
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });  // bounded by the deadline
    return st;
  }

  static fs::path* dir_;
};
fs::path* SecurityTest::dir_ = nullptr;

// TLS on both hops, mutual on the edge->cloud hop: a client that trusts CA A is served.
TEST_F(SecurityTest, TlsRoundTripOnBothHops) {
  auto cloud = StartCloud();
  ASSERT_NE(cloud, nullptr);
  auto edge = StartEdge(cloud->port());
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitConnected(*edge, 10000)) << "the edge could not reach the cloud over mutual TLS";
  const grpc::Status st = Infer(Channel(edge->port(), "a"));
  EXPECT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
  // With a client certificate from CA A (optional at the front door): served too.
  EXPECT_TRUE(Infer(Channel(edge->port(), "a", "client")).ok());
}

// Threats: eavesdropping or talking plaintext to a TLS server, and impersonating a server with
// another CA: a plaintext client fails, and a client that trusts only CA B refuses the server.
TEST_F(SecurityTest, PlaintextClientsAndOtherCasFail) {
  auto cloud = StartCloud();
  ASSERT_NE(cloud, nullptr);
  auto edge = StartEdge(cloud->port());
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitConnected(*edge, 10000));
  EXPECT_EQ(Infer(client::MakeChannel(Addr(edge->port())), 2000).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Infer(Channel(edge->port(), "b"), 2000).error_code(), grpc::StatusCode::UNAVAILABLE);
  // A client certificate from CA B is refused even where client certificates are optional.
  EXPECT_EQ(Infer(Channel(edge->port(), "b", "client"), 2000).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_TRUE(Infer(Channel(edge->port(), "a")).ok()) << "still serving";
}

// Threat: anyone who can reach the cloud feeding it bitstreams. With mutual TLS the cloud serves
// only clients whose certificate chains to CA A: not one without a certificate, nor one with a
// certificate from CA B; an edge without a client certificate never gets a stream.
TEST_F(SecurityTest, CloudRefusesEdgesWithoutACertificateFromItsCa) {
  auto cloud = StartCloud();
  ASSERT_NE(cloud, nullptr);
  EXPECT_EQ(CloudInfer(Channel(cloud->port(), "a")).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(CloudInfer(Channel(cloud->port(), "b", "edge-client")).error_code(), grpc::StatusCode::UNAVAILABLE);
  {
    // A certificate from CA B while trusting the cloud's CA A: the cloud refuses it.
    client::ChannelSecurity sec;
    sec.tls.files.ca = F("a", "ca.pem");
    sec.tls.files.cert = F("b", "edge-client.pem");
    sec.tls.files.key = F("b", "edge-client.key");
    auto ch = client::MakeChannel(Addr(cloud->port()), sec);
    ASSERT_TRUE(ch.ok());
    EXPECT_EQ(CloudInfer(*ch).error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  EXPECT_TRUE(CloudInfer(Channel(cloud->port(), "a", "edge-client")).ok());
  auto bare = StartEdge(cloud->port(), [&](edge::EdgeServerOptions* o) {
    o->cloud.tls.files.cert.clear();
    o->cloud.tls.files.key.clear();
  });
  ASSERT_NE(bare, nullptr);
  EXPECT_FALSE(WaitConnected(*bare, 1500)) << "an edge without a client certificate got a stream";
  HealthResponse h;
  ASSERT_TRUE(CheckHealth(Channel(bare->port(), "a"), &h).ok());
  EXPECT_EQ(h.status(), HealthResponse::NOT_SERVING);
}

// Threat: anyone who can reach the edge running inference. With --auth-tokens: no token and a
// wrong token get UNAUTHENTICATED, the right ones are served, health stays open for probes,
// reflection is off, and no token ever shows in the logs.
TEST_F(SecurityTest, BearerTokensOnTheFrontDoor) {
  auto ring = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
  auto logger = std::make_shared<spdlog::logger>("security-test", ring);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::debug);
  auto cloud = StartCloud();
  ASSERT_NE(cloud, nullptr);
  auto edge = StartEdge(cloud->port(), [&](edge::EdgeServerOptions* o) {
    o->auth_tokens_file = (*dir_ / "tokens").string();
  });
  ASSERT_NE(edge, nullptr);
  ASSERT_TRUE(WaitConnected(*edge, 10000));
  const int port = edge->port();
  grpc::Status none = Infer(Channel(port, "a"));
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED) << none.error_message();
  grpc::Status wrong = Infer(Channel(port, "a", nullptr, "not-the-token-at-all-0000"));
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED) << wrong.error_message();
  EXPECT_EQ(Infer(Channel(port, "a", nullptr, std::string(kToken) + "x")).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Infer(Channel(port, "a", nullptr, kToken)).ok());
  EXPECT_TRUE(Infer(Channel(port, "a", nullptr, kOtherToken)).ok());
  // Every KServe call needs it, not only ModelInfer.
  {
    auto stub = inf::GRPCInferenceService::NewStub(Channel(port, "a"));
    grpc::ClientContext ctx;
    inf::ServerMetadataResponse md;
    EXPECT_EQ(stub->ServerMetadata(&ctx, {}, &md).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  HealthResponse h;
  EXPECT_TRUE(CheckHealth(Channel(port, "a"), &h).ok()) << "health must stay open for probes";
  // Reflection is off once tokens are required (and on without them: the check can fail).
  EXPECT_EQ(ReflectionCall(Channel(port, "a", nullptr, kToken)).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  auto open_edge = StartEdge(cloud->port());
  ASSERT_NE(open_edge, nullptr);
  EXPECT_NE(ReflectionCall(Channel(open_edge->port(), "a")).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  open_edge.reset();
  edge.reset();
  cloud.reset();
  spdlog::set_default_logger(previous);
  const auto lines = ring->last_formatted();
  bool refused_logged = false;
  for (const std::string& l : lines) {
    EXPECT_EQ(l.find(kToken), std::string::npos) << "a token in the logs: " << l;
    EXPECT_EQ(l.find(kOtherToken), std::string::npos) << "a token in the logs: " << l;
    EXPECT_EQ(l.find("not-the-token-at-all"), std::string::npos) << "a presented token in the logs: " << l;
    refused_logged |= l.find("refused: unknown bearer token") != std::string::npos;
  }
  EXPECT_TRUE(refused_logged) << "refusals must be logged (without the token)";
}

TEST_F(SecurityTest, HealthCanRequireTheTokenToo) {
  auto cloud = StartCloud();
  ASSERT_NE(cloud, nullptr);
  auto edge = StartEdge(cloud->port(), [&](edge::EdgeServerOptions* o) {
    o->auth_tokens_file = (*dir_ / "tokens").string();
    o->health_requires_auth = true;
  });
  ASSERT_NE(edge, nullptr);
  HealthResponse h;
  EXPECT_EQ(CheckHealth(Channel(edge->port(), "a"), &h).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(CheckHealth(Channel(edge->port(), "a", nullptr, kToken), &h).ok());
}

// A certificate that changes on disk is served from the next refresh on, without a restart.
TEST_F(SecurityTest, CertificateRotationWithoutRestart) {
  const fs::path live = *dir_ / "live";
  fs::create_directories(live);
  fs::copy_file(F("a", "cloud.pem"), live / "cloud.pem", fs::copy_options::overwrite_existing);
  fs::copy_file(F("a", "cloud.key"), live / "cloud.key", fs::copy_options::overwrite_existing);
  // The client trusts both CAs, so that either certificate is accepted and can be told apart.
  std::ofstream(live / "both.pem") << ReadFile(F("a", "ca.pem")) << ReadFile(F("b", "ca.pem"));
  auto cloud = StartCloud([&](cloud::CloudServerOptions* o) {
    o->server.tls.files.cert = (live / "cloud.pem").string();
    o->server.tls.files.key = (live / "cloud.key").string();
    o->server.tls.files.ca.clear();
    o->server.tls.client_certs = ClientCerts::kNone;
  });
  ASSERT_NE(cloud, nullptr);
  auto served_cert = [&]() -> std::string {
    client::ChannelSecurity sec;
    sec.tls.files.ca = (live / "both.pem").string();
    auto ch = client::MakeChannel(Addr(cloud->port()), sec);
    if (!ch.ok()) return "";
    auto stub = grpc::health::v1::Health::NewStub(*ch);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    HealthResponse h;
    if (!stub->Check(&ctx, {}, &h).ok()) return "";
    auto v = ctx.auth_context()->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
    return v.empty() ? "" : std::string(v[0].data(), v[0].size());
  };
  const std::string a = ReadFile(F("a", "cloud.pem")), b = ReadFile(F("b", "cloud.pem"));
  EXPECT_EQ(served_cert(), a);
  // Rotate: new key first, then the certificate (as a deployment's copy would).
  fs::copy_file(F("b", "cloud.key"), live / "cloud.key.new", fs::copy_options::overwrite_existing);
  fs::copy_file(F("b", "cloud.pem"), live / "cloud.pem.new", fs::copy_options::overwrite_existing);
  fs::rename(live / "cloud.key.new", live / "cloud.key");
  fs::rename(live / "cloud.pem.new", live / "cloud.pem");
  const auto t0 = Clock::now();
  std::string now;
  while (Clock::now() - t0 < std::chrono::seconds(10)) {
    now = served_cert();
    if (now == b) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(now, b) << "the rotated certificate was not served within 10 s";
  std::printf("rotated certificate served after %lld ms (refresh every 1 s)\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count()));
}

// Hostile-peer limits: each refuses what is over it and the server keeps serving.
TEST_F(SecurityTest, MessageAndMetadataLimits) {
  auto cloud = StartCloud([](cloud::CloudServerOptions* o) {
    o->server.max_message_bytes = 64 << 10;
    o->server.max_metadata_bytes = 4096;
  });
  ASSERT_NE(cloud, nullptr);
  auto ch = Channel(cloud->port(), "a", "edge-client");
  const grpc::Status big = CloudInfer(ch, 100 << 10);
  EXPECT_EQ(big.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << big.error_message();
  {
    auto stub = grpc::health::v1::Health::NewStub(ch);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    ctx.AddMetadata("x-padding", std::string(8000, 'p'));
    HealthResponse h;
    const grpc::Status st = stub->Check(&ctx, {}, &h);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  }
  // The metadata violation makes gRPC reset that connection, and a call can race the reset
  // (UNAVAILABLE "Socket closed"): the server still serves the next calls, on the same channel
  // once it has reconnected. A few attempts, UNAVAILABLE only.
  grpc::Status after;
  for (int attempt = 0; attempt < 5; ++attempt) {
    after = CloudInfer(ch, 0, /*wait_for_ready=*/true);
    if (after.error_code() != grpc::StatusCode::UNAVAILABLE) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(after.ok()) << "still serving: " << after.error_code() << " " << after.error_message();
}

TEST_F(SecurityTest, ConcurrentStreamsPerConnectionAreLimited) {
  auto cloud = StartCloud([](cloud::CloudServerOptions* o) { o->server.max_concurrent_streams = 2; });
  ASSERT_NE(cloud, nullptr);
  auto ch = Channel(cloud->port(), "a", "edge-client");
  auto stub = grpc::health::v1::Health::NewStub(ch);
  grpc::ClientContext w1, w2;
  w1.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  w2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto s1 = stub->Watch(&w1, {});
  auto s2 = stub->Watch(&w2, {});
  HealthResponse h;
  ASSERT_TRUE(s1->Read(&h));
  ASSERT_TRUE(s2->Read(&h));
  // Both streams of this connection are taken: a third call waits for one (until its deadline).
  grpc::ClientContext c;
  c.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  EXPECT_EQ(stub->Check(&c, {}, &h).error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  w1.TryCancel();
  while (s1->Read(&h)) {
  }
  s1->Finish();
  grpc::ClientContext c2;
  c2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  EXPECT_TRUE(stub->Check(&c2, {}, &h).ok()) << "a freed stream is usable again";
  w2.TryCancel();
  while (s2->Read(&h)) {
  }
  s2->Finish();
}

// A connection older than --max-connection-age-ms gets GOAWAY: an idle client channel leaves
// READY by itself, and the next call reconnects and is served.
TEST_F(SecurityTest, ConnectionAgeIsLimited) {
  auto cloud = StartCloud([](cloud::CloudServerOptions* o) {
    o->server.max_connection_age_ms = 300;
    o->server.max_connection_age_grace_ms = 100;
  });
  ASSERT_NE(cloud, nullptr);
  auto ch = Channel(cloud->port(), "a", "edge-client");
  ASSERT_TRUE(CloudInfer(ch).ok());
  ASSERT_EQ(ch->GetState(false), GRPC_CHANNEL_READY);
  EXPECT_TRUE(ch->WaitForStateChange(GRPC_CHANNEL_READY, std::chrono::system_clock::now() + std::chrono::seconds(5)))
      << "the connection was not closed after its maximum age";
  EXPECT_TRUE(CloudInfer(ch).ok()) << "a new connection is served";
}

// Safe defaults: a plaintext server on an address others can reach says so, once.
TEST_F(SecurityTest, PlaintextOffLoopbackIsWarnedAbout) {
  auto ring = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(100);
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("security-test", ring));
  auto cloud = StartCloud([](cloud::CloudServerOptions* o) {
    o->server.listen_address = "0.0.0.0:0";
    o->server.tls = ServerTls{};
  });
  auto local = StartCloud([](cloud::CloudServerOptions* o) { o->server.tls = ServerTls{}; });
  spdlog::set_default_logger(previous);
  ASSERT_NE(cloud, nullptr);
  ASSERT_NE(local, nullptr);
  int warnings = 0;
  for (const std::string& l : ring->last_formatted()) warnings += l.find("WITHOUT TLS") != std::string::npos;
  EXPECT_EQ(warnings, 1) << "one warning for 0.0.0.0, none for 127.0.0.1";
}

// Bad TLS settings are refused at start with a message naming the file.
TEST_F(SecurityTest, UnusableTlsFilesAreRefusedAtStart) {
  cloud::CloudServerOptions o;
  o.server.listen_address = "127.0.0.1:0";
  o.pipeline.model_repo = SPLITRANS_MODEL_REPO;
  o.pipeline.codec_device = CodecDevice::kCpu;
  o.server.tls.files = Files("a", "cloud");
  o.server.tls.files.key = (*dir_ / "no-such.key").string();
  auto s = cloud::CloudServer::Create(o);
  ASSERT_TRUE(s.ok());
  absl::Status st = (*s)->Start();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("no-such.key"), std::string::npos) << st;
  o.server.tls.files = Files("a", "cloud");
  o.server.tls.files.cert = F("a", "cloud.key");  // a key where the certificate should be
  s = cloud::CloudServer::Create(o);
  ASSERT_TRUE(s.ok());
  st = (*s)->Start();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("not a PEM CERTIFICATE"), std::string::npos) << st;
}

}  // namespace
}  // namespace splitrans

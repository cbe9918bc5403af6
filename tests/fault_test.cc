// Faults with real processes: splitrans-cloud and splitrans-edge run as child processes on
// 127.0.0.1 ports; the test kills them (SIGKILL), stops them (SIGTERM) and restarts them while
// requests are in flight, and checks exit codes and refused bad flags. Every wait is bounded and
// every child is killed when a test ends.
#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "client/eval.h"
#include "codec/codec.h"
#include "edge/edge_server.h"
#include "proto/grpc_service.grpc.pb.h"
#include "proto/health.grpc.pb.h"
#include "proto/split_inference.grpc.pb.h"

namespace splitrans {
namespace {

using Clock = std::chrono::steady_clock;
namespace inf = ::inference;
using HealthResponse = grpc::health::v1::HealthCheckResponse;

int64_t MsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

// A free TCP port on 127.0.0.1 for a child to listen on. Taken below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), so no outgoing connection of this or another test can be given
// it between the check here and the child's bind (a bind(0) port comes from that range: the
// edge once failed in CI with "Address already in use" on such a port). Each port is handed out
// once per process; the start is spread by pid so tests running side by side pick apart.
bool PortBindable(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  close(fd);
  return ok;
}

int FreePort() {
  static std::mutex mu;
  static int next = -1;
  std::lock_guard<std::mutex> lock(mu);
  int ephemeral_lo = 32768;
  if (std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range"); range) range >> ephemeral_lo;
  const int lo = 10000, hi = std::max(lo + 1000, std::min(ephemeral_lo, 65536));
  if (next < 0) next = lo + static_cast<int>(getpid() * 97 % (hi - lo));
  for (int tries = 0; tries < hi - lo; ++tries) {
    const int port = next;
    next = next + 1 < hi ? next + 1 : lo;
    if (PortBindable(port)) return port;
  }
  ADD_FAILURE() << "no bindable port in [" << lo << ", " << hi << ")";
  return 0;
}

std::string Addr(int port) { return "127.0.0.1:" + std::to_string(port); }

// A child process with its stderr/stdout in a log file; killed on destruction if still running.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::string& log) : log_(log) {
    pid_ = fork();
    if (pid_ == 0) {
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~Child() {
    if (running()) {
      kill(pid_, SIGKILL);
      Wait(5000);
    }
  }
  int pid() const { return pid_; }
  bool running() const { return pid_ > 0 && !status_.has_value(); }
  void Signal(int sig) { kill(pid_, sig); }
  // The exit status (WEXITSTATUS, or 128 + signal), or nullopt if it is still running after ms.
  std::optional<int> Wait(int ms) {
    const auto until = Clock::now() + std::chrono::milliseconds(ms);
    while (!status_) {
      int st = 0;
      const pid_t r = waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        break;
      }
      if (Clock::now() >= until) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return status_;
  }
  std::string Log() const {
    std::ifstream f(log_);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

 private:
  pid_t pid_ = -1;
  std::string log_;
  std::optional<int> status_;
};

std::string LogPath(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / "splitrans-fault-test";
  std::filesystem::create_directories(dir);
  return (dir / (name + "-" + std::to_string(getpid()) + ".log")).string();
}

std::unique_ptr<Child> SpawnCloud(int port, const std::string& log, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {SPLITRANS_CLOUD_BIN, "--listen", Addr(port), "--model-repo", SPLITRANS_MODEL_REPO,
                                   "--codec-device", "cpu"};
  if (std::find(extra.begin(), extra.end(), "--log-level") == extra.end()) extra.insert(extra.end(), {"--log-level", "info"});
  argv.insert(argv.end(), extra.begin(), extra.end());
  return std::make_unique<Child>(argv, log);
}

std::unique_ptr<Child> SpawnEdge(int port, int cloud_port, const std::string& log, std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {SPLITRANS_EDGE_BIN, "--listen", Addr(port), "--cloud", Addr(cloud_port),
                                   "--model-repo", SPLITRANS_MODEL_REPO, "--codec-device", "cpu",
                                   "--reconnect-max-ms", "250"};
  if (std::find(extra.begin(), extra.end(), "--log-level") == extra.end()) extra.insert(extra.end(), {"--log-level", "info"});
  argv.insert(argv.end(), extra.begin(), extra.end());
  return std::make_unique<Child>(argv, log);
}

// grpc.health.v1 status of the server at addr ("" when it does not answer).
std::string Health(const std::string& addr) {
  auto stub = grpc::health::v1::Health::NewStub(client::MakeChannel(addr));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
  HealthResponse r;
  if (!stub->Check(&ctx, {}, &r).ok()) return "";
  return HealthResponse::ServingStatus_Name(r.status());
}

bool WaitServing(const std::string& addr, int ms, Clock::time_point* when = nullptr) {
  const auto until = Clock::now() + std::chrono::milliseconds(ms);
  while (Clock::now() < until) {
    if (Health(addr) == "SERVING") {
      if (when) *when = Clock::now();
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

std::vector<uint8_t> Pixels(int batch) {
  std::mt19937 rng(3);
  std::vector<uint8_t> p(static_cast<size_t>(batch) * 784);
  for (auto& x : p) x = static_cast<uint8_t>(rng() % 256);
  return p;
}

struct Answer {
  grpc::StatusCode code;
  std::string message;
  Clock::time_point start, end;
};

// Keeps `concurrency` requests in flight until stop is set; records every answer.
class Load {
 public:
  // pause_ms: how long a failed request's slot waits before the next request (0: at once).
  Load(const std::string& edge, int concurrency, int deadline_ms, int batch = 1, int pause_ms = 5)
      : stub_(inf::GRPCInferenceService::NewStub(client::MakeChannel(edge))), deadline_ms_(deadline_ms),
        pause_ms_(pause_ms) {
    const auto px = Pixels(batch);
    req_ = client::MakePixelRequest({}, px.data(), batch, 1, 28, 28);
    for (int i = 0; i < concurrency; ++i) Next();
  }
  ~Load() { Stop(); }
  // Stops issuing and waits for the requests in flight (bounded by their deadline).
  void Stop() {
    std::unique_lock<std::mutex> lock(mu_);
    stop_ = true;
    cv_.wait_for(lock, std::chrono::milliseconds(deadline_ms_ + 5000), [&] { return inflight_ == 0; });
    EXPECT_EQ(inflight_, 0) << "requests left unanswered";
  }
  std::vector<Answer> answers() {
    std::lock_guard<std::mutex> lock(mu_);
    return answers_;
  }

 private:
  struct Call {
    grpc::ClientContext ctx;
    inf::ModelInferResponse resp;
    Clock::time_point start;
  };
  // Each of the `concurrency` slots issues one request after another until Stop(); a slot is
  // released (inflight_) only when it issues nothing more, so Stop() returns only after every
  // callback is done with this object.
  void Next() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      ++inflight_;
    }
    Issue();
  }
  void Issue() {
    auto* c = new Call;
    c->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms_));
    c->start = Clock::now();
    stub_->async()->ModelInfer(&c->ctx, &req_, &c->resp, [this, c](grpc::Status s) {
      const Answer a{s.error_code(), s.error_message(), c->start, Clock::now()};
      // The call's context holds a channel reference: it goes before the slot is released, so
      // that the channel's last reference never drops on this gRPC thread (gRPC 1.51 then frees
      // its callback queue twice).
      delete c;
      if (!s.ok() && pause_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms_));
      {
        std::lock_guard<std::mutex> lock(mu_);
        answers_.push_back(a);
        if (stop_) {
          --inflight_;
          cv_.notify_all();
          return;
        }
      }
      Issue();
    });
  }

  std::unique_ptr<inf::GRPCInferenceService::Stub> stub_;
  inf::ModelInferRequest req_;
  const int deadline_ms_;
  const int pause_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  int inflight_ = 0;
  std::vector<Answer> answers_;
};

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override { spdlog::set_level(spdlog::level::warn); }
};

// The cloud is killed (SIGKILL) under load and restarted on the same port: every request ends
// with success, UNAVAILABLE or DEADLINE_EXCEEDED (no hang), and success resumes within 1 s of
// the cloud being ready. Then the edge gets SIGTERM while the load still runs and exits 0.
TEST_F(FaultTest, CloudKilledMidLoadAndRestarted) {
  {
    const int cport = FreePort(), eport = FreePort();
    auto cloud = SpawnCloud(cport, LogPath("kill-cloud-1"));
    auto edge = SpawnEdge(eport, cport, LogPath("kill-edge"));
    ASSERT_TRUE(WaitServing(Addr(cport), 30000)) << cloud->Log();
    ASSERT_TRUE(WaitServing(Addr(eport), 30000)) << edge->Log();
    constexpr int kDeadlineMs = 2000;
    Load load(Addr(eport), 8, kDeadlineMs);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    const auto killed = Clock::now();
    cloud->Signal(SIGKILL);
    ASSERT_TRUE(cloud->Wait(5000).has_value());
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    cloud = SpawnCloud(cport, LogPath("kill-cloud-2"));
    Clock::time_point ready;
    ASSERT_TRUE(WaitServing(Addr(cport), 30000, &ready)) << cloud->Log();
    std::this_thread::sleep_for(std::chrono::milliseconds(2000));
    const auto term = Clock::now();
    edge->Signal(SIGTERM);
    EXPECT_EQ(edge->Wait(10000), std::optional<int>(0)) << edge->Log();
    load.Stop();
    const auto answers = load.answers();
    std::map<grpc::StatusCode, int> codes;
    std::optional<Clock::time_point> first_ok_after;
    int ok_before = 0;
    for (const Answer& a : answers) {
      ++codes[a.code];
      EXPECT_LE(MsBetween(a.start, a.end), kDeadlineMs + 100);
      if (a.end < term) {
        EXPECT_TRUE(a.code == grpc::StatusCode::OK || a.code == grpc::StatusCode::UNAVAILABLE ||
                    a.code == grpc::StatusCode::DEADLINE_EXCEEDED)
            << a.code << " " << a.message;
      }
      if (a.code == grpc::StatusCode::OK && a.end < killed) ++ok_before;
      if (a.code == grpc::StatusCode::OK && a.end > ready && (!first_ok_after || a.end < *first_ok_after)) {
        first_ok_after = a.end;
      }
    }
    EXPECT_GT(ok_before, 0);
    ASSERT_TRUE(first_ok_after.has_value()) << "no success after the restart";
    const int64_t recovery_ms = MsBetween(ready, *first_ok_after);
    std::printf("cloud SIGKILL + restart: %zu answers (OK %d, UNAVAILABLE %d, DEADLINE_EXCEEDED %d); "
                "first success %lld ms after the new cloud was ready; edge SIGTERM under load: exit 0\n",
                answers.size(), codes[grpc::StatusCode::OK], codes[grpc::StatusCode::UNAVAILABLE],
                codes[grpc::StatusCode::DEADLINE_EXCEEDED], static_cast<long long>(recovery_ms));
    RecordProperty("recovery_ms", std::to_string(recovery_ms));
    EXPECT_LE(recovery_ms, 1000);
    EXPECT_GT(codes[grpc::StatusCode::OK], ok_before);
    cloud->Signal(SIGTERM);
    EXPECT_EQ(cloud->Wait(10000), std::optional<int>(0)) << cloud->Log();
  }
}

// SIGTERM to the edge under load shortly after its cloud came back (the edge's stream was just
// re-established): exit 0 every time. Before the fix in CloudClient::StreamCall this crashed
// the edge in about one run of four under AddressSanitizer (gRPC 1.51 freed its callback
// completion queue twice when the channel's last reference went away on one of that queue's own
// threads); the cycles spread the SIGTERM over the first second after the restart.
TEST_F(FaultTest, EdgeSigtermRightAfterCloudRestart) {
  for (int delay_ms : {100, 300, 500, 700, 900}) {
    const int cport = FreePort(), eport = FreePort();
    auto cloud = SpawnCloud(cport, LogPath("restart-term-cloud-1"), {"--log-level", "warn"});
    auto edge = SpawnEdge(eport, cport, LogPath("restart-term-edge"), {"--log-level", "warn"});
    ASSERT_TRUE(WaitServing(Addr(cport), 30000)) << cloud->Log();
    ASSERT_TRUE(WaitServing(Addr(eport), 30000)) << edge->Log();
    Load load(Addr(eport), 32, 1000, 1, /*pause_ms=*/0);
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    cloud->Signal(SIGKILL);
    ASSERT_TRUE(cloud->Wait(5000).has_value());
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms / 2));
    cloud = SpawnCloud(cport, LogPath("restart-term-cloud-2"), {"--log-level", "warn"});
    ASSERT_TRUE(WaitServing(Addr(cport), 30000)) << cloud->Log();
    std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    edge->Signal(SIGTERM);
    const auto status = edge->Wait(10000);
    EXPECT_EQ(status, std::optional<int>(0)) << "SIGTERM " << delay_ms << " ms after the restart\n" << edge->Log();
    load.Stop();
    cloud->Signal(SIGTERM);
    EXPECT_EQ(cloud->Wait(10000), std::optional<int>(0)) << cloud->Log();
    if (status != std::optional<int>(0)) break;
  }
}

// Requests still in the edge's send queue when its cloud dies (SIGKILL) provably never reached
// it: they are sent, once, on the next stream and succeed on the restarted cloud. The cloud is
// stopped (SIGSTOP) first so that the edge's writes back up into that queue.
TEST_F(FaultTest, QueuedRequestsAreRetriedOnceAfterTheCloudDies) {
  const int cport = FreePort();
  auto cloud = SpawnCloud(cport, LogPath("retry-cloud-1"));
  ASSERT_TRUE(WaitServing(Addr(cport), 30000)) << cloud->Log();
  edge::EdgeServerOptions o;
  o.server.listen_address = "127.0.0.1:0";
  o.pipeline.model_repo = SPLITRANS_MODEL_REPO;
  o.pipeline.codec_device = CodecDevice::kCpu;
  o.cloud.target = Addr(cport);
  o.cloud.deadline_ms = 30000;
  o.cloud.max_queue_bytes = int64_t{1} << 30;
  o.cloud.max_backoff_ms = 250;
  o.max_queue = 256;
  auto edge = edge::EdgeServer::Create(o);
  ASSERT_TRUE(edge.ok()) << edge.status();
  ASSERT_TRUE((*edge)->Start().ok());
  ASSERT_TRUE(WaitServing(Addr((*edge)->port()), 30000));
  client::InferSettings s;
  s.q = 8;
  s.mode = "dense";
  s.split = "stage1";  // ~800 KB per request on the wire
  const auto px = Pixels(64);
  const auto req = client::MakePixelRequest(s, px.data(), 64, 1, 28, 28);
  auto stub = inf::GRPCInferenceService::NewStub(client::MakeChannel(Addr((*edge)->port())));
  constexpr int kRequests = 40;
  struct Call {
    grpc::ClientContext ctx;
    inf::ModelInferResponse resp;
    grpc::Status status;
  };
  std::vector<Call> calls(kRequests);
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  cloud->Signal(SIGSTOP);
  for (auto& c : calls) {
    c.ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(40));
    stub->async()->ModelInfer(&c.ctx, &req, &c.resp, [&, &c = c](grpc::Status st) {
      std::lock_guard<std::mutex> lock(mu);
      c.status = st;
      ++done;
      cv.notify_all();
    });
  }
  // Wait until the transport's windows are full and requests pile up in the edge's queue.
  const auto until = Clock::now() + std::chrono::seconds(30);
  while ((*edge)->cloud().stats().queued_bytes < (8 << 20) && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE((*edge)->cloud().stats().queued_bytes, 8 << 20) << "the send queue never filled";
  cloud->Signal(SIGKILL);
  ASSERT_TRUE(cloud->Wait(5000).has_value());
  cloud = SpawnCloud(cport, LogPath("retry-cloud-2"));
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return done == kRequests; }));
  }
  std::map<grpc::StatusCode, int> codes;
  for (const auto& c : calls) {
    ++codes[c.status.error_code()];
    EXPECT_TRUE(c.status.ok() || c.status.error_code() == grpc::StatusCode::UNAVAILABLE)
        << c.status.error_code() << " " << c.status.error_message();
  }
  const auto stats = (*edge)->cloud().stats();
  std::printf("cloud stopped, %d requests of ~800 KB sent, cloud killed and restarted: OK %d, UNAVAILABLE %d "
              "(written before it died); %llu were still queued, kept for the next stream\n",
              kRequests, codes[grpc::StatusCode::OK], codes[grpc::StatusCode::UNAVAILABLE],
              static_cast<unsigned long long>(stats.retried));
  EXPECT_GT(stats.retried, 0u);
  EXPECT_EQ(static_cast<uint64_t>(codes[grpc::StatusCode::OK]), stats.retried)
      << "every request kept across the lost stream must succeed on the new one";
  EXPECT_EQ(stats.streams_lost, 1u);
  (*edge)->Shutdown(1000);
}

uint64_t RetriedAway(edge::EdgeServer& e) {
  uint64_t n = 0;
  for (const auto& r : e.cloud().replicas()) n += r.retried_away;
  return n;
}

// Three cloud replicas behind one edge under load. One is killed (SIGKILL): only requests in
// flight on it may fail (UNAVAILABLE; most are retried on another replica), and within 1 s the
// edge sends it nothing more and every request succeeds again. Then another gets SIGTERM: it
// drains, and no request fails at all.
TEST_F(FaultTest, ReplicaKilledThenOneDrainedUnderLoad) {
  std::vector<int> ports;
  std::vector<std::unique_ptr<Child>> clouds;
  std::string target = "ipv4:";
  for (int i = 0; i < 3; ++i) {
    ports.push_back(FreePort());
    clouds.push_back(SpawnCloud(ports[i], LogPath("replica-" + std::to_string(i)),
                                {"--log-level", "warn", "--drain-delay-ms", "300", "--grace-ms", "5000"}));
    target += (i ? "," : "") + Addr(ports[i]);
  }
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(WaitServing(Addr(ports[i]), 30000)) << clouds[i]->Log();
  edge::EdgeServerOptions o;
  o.server.listen_address = "127.0.0.1:0";
  o.pipeline.model_repo = SPLITRANS_MODEL_REPO;
  o.pipeline.codec_device = CodecDevice::kCpu;
  o.cloud.target = target;
  o.cloud.max_backoff_ms = 250;
  auto edge = edge::EdgeServer::Create(o);
  ASSERT_TRUE(edge.ok()) << edge.status();
  ASSERT_TRUE((*edge)->Start().ok());
  const auto all_up_until = Clock::now() + std::chrono::seconds(20);
  auto connected = [&] {
    int n = 0;
    for (const auto& r : (*edge)->cloud().replicas()) n += r.connected;
    return n;
  };
  while (connected() < 3 && Clock::now() < all_up_until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(connected(), 3);
  auto sent_to = [&](int i) {
    for (const auto& r : (*edge)->cloud().replicas())
      if (r.address == "ipv4:" + Addr(ports[i])) return r.sent;
    return uint64_t{0};
  };
  constexpr int kConcurrency = 8;
  Load load(Addr((*edge)->port()), kConcurrency, 5000);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  // Stopped first for a moment, so that requests are surely in flight on it when it dies.
  clouds[0]->Signal(SIGSTOP);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const auto killed_at = Clock::now();
  clouds[0]->Signal(SIGKILL);
  ASSERT_TRUE(clouds[0]->Wait(5000).has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  const uint64_t sent_after_1s = sent_to(0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const auto term_at = Clock::now();
  clouds[1]->Signal(SIGTERM);
  EXPECT_EQ(clouds[1]->Wait(15000), std::optional<int>(0)) << clouds[1]->Log();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  load.Stop();
  const auto answers = load.answers();
  int ok = 0, failed_kill = 0, failed_late = 0, failed_drain = 0;
  int64_t last_failure_ms = -1;
  for (const auto& a : answers) {
    if (a.code == grpc::StatusCode::OK) {
      ++ok;
      continue;
    }
    if (a.start >= term_at) {
      ++failed_drain;
      ADD_FAILURE() << "failed during the drain: " << a.code << " " << a.message;
    } else if (a.start >= killed_at + std::chrono::seconds(1)) {
      ++failed_late;
      ADD_FAILURE() << "failed more than 1 s after the kill: " << a.code << " " << a.message;
    } else {
      ++failed_kill;
      EXPECT_EQ(a.code, grpc::StatusCode::UNAVAILABLE) << a.message;
      last_failure_ms = std::max<int64_t>(last_failure_ms, MsBetween(killed_at, a.end));
    }
  }
  EXPECT_LE(failed_kill, kConcurrency) << "more failures than requests in flight";
  EXPECT_GT(static_cast<uint64_t>(failed_kill) + RetriedAway(**edge), 0u) << "nothing was in flight on it";
  EXPECT_EQ(sent_to(0), sent_after_1s) << "the killed replica still got requests 1 s after it died";
  EXPECT_GT(ok, 100);
  const uint64_t retried = RetriedAway(**edge);
  std::string per;
  for (const auto& r : (*edge)->cloud().replicas()) per += r.address + " answered " + std::to_string(r.answered) + "; ";
  const std::string last = last_failure_ms < 0 ? "none" : std::to_string(last_failure_ms) + " ms after the kill";
  std::printf("3 replicas, concurrency %d: %zu requests; SIGKILL of one: %d failed (UNAVAILABLE only; last: %s), "
              "%llu retried on another replica, none sent to it after 1 s; SIGTERM of another: %d failed; %s\n",
              kConcurrency, answers.size(), failed_kill, last.c_str(),
              static_cast<unsigned long long>(retried), failed_drain, per.c_str());
  (*edge)->Shutdown(1000);
}

// SIGTERM to the cloud with requests in flight on a stream: every request is answered, the
// stream is asked to drain, and the process exits 0 within its grace period.
TEST_F(FaultTest, SigtermDrainsTheCloud) {
  const int cport = FreePort();
  auto cloud = SpawnCloud(cport, LogPath("term-cloud"), {"--workers", "1", "--grace-ms", "20000"});
  ASSERT_TRUE(WaitServing(Addr(cport), 30000)) << cloud->Log();
  std::vector<float> feature(64 * 32 * 14 * 14);
  std::mt19937 rng(5);
  for (auto& x : feature) x = rng() % 3 == 0 ? 0.f : (rng() % 1000) / 300.f;
  auto bytes = codec::Encode({feature.data(), codec::DType::kFloat32, {64, 32, 14, 14}}, {4});
  ASSERT_TRUE(bytes.ok());
  auto stub = v1::SplitInference::NewStub(client::MakeChannel(Addr(cport)));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto stream = stub->Stream(&ctx);
  constexpr int kRequests = 24;
  for (int i = 1; i <= kRequests; ++i) {
    v1::FeaturePacket p;
    p.set_request_id(i);
    p.set_model_name("fmnist_resnet");
    p.set_split("stage2");
    p.set_codec_bytes(bytes->data(), bytes->size());
    ASSERT_TRUE(stream->Write(p));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto term = Clock::now();
  cloud->Signal(SIGTERM);
  int ok = 0, drains = 0, answered = 0;
  v1::Result r;
  while (answered < kRequests && stream->Read(&r)) {
    if (r.draining()) {
      ++drains;
      continue;
    }
    ++answered;
    ok += r.status_code() == 0;
    EXPECT_EQ(r.status_code(), 0) << r.request_id() << ": " << r.status_message();
  }
  stream->WritesDone();
  while (stream->Read(&r)) drains += r.draining();
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(answered, kRequests);
  EXPECT_EQ(ok, kRequests);
  EXPECT_EQ(drains, 1);
  EXPECT_EQ(cloud->Wait(10000), std::optional<int>(0)) << cloud->Log();
  std::printf("cloud SIGTERM with %d requests on the stream: %d answered OK, exit 0 after %lld ms\n", kRequests, ok,
              static_cast<long long>(MsBetween(term, Clock::now())));
}

// SIGTERM to the edge with requests in flight: all of them succeed, then it exits 0; the cloud
// stays up and serves a new edge.
TEST_F(FaultTest, SigtermDrainsTheEdge) {
  const int cport = FreePort(), eport = FreePort();
  auto cloud = SpawnCloud(cport, LogPath("term-edge-cloud"));
  auto edge = SpawnEdge(eport, cport, LogPath("term-edge"),
                        {"--grace-ms", "10000", "--workers", "1", "--drain-delay-ms", "1500"});
  ASSERT_TRUE(WaitServing(Addr(cport), 30000)) << cloud->Log();
  ASSERT_TRUE(WaitServing(Addr(eport), 30000)) << edge->Log();
  auto stub = inf::GRPCInferenceService::NewStub(client::MakeChannel(Addr(eport)));
  const auto px = Pixels(64);
  const auto req = client::MakePixelRequest({}, px.data(), 64, 1, 28, 28);
  constexpr int kRequests = 12;
  struct Call {
    grpc::ClientContext ctx;
    inf::ModelInferResponse resp;
    grpc::Status status;
  };
  std::vector<Call> calls(kRequests);
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  for (auto& c : calls) {
    c.ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    stub->async()->ModelInfer(&c.ctx, &req, &c.resp, [&, &c = c](grpc::Status s) {
      std::lock_guard<std::mutex> lock(mu);
      c.status = s;
      ++done;
      cv.notify_all();
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // all received, most still queued
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_LT(done, kRequests) << "the requests finished too fast to be in flight";
  }
  edge->Signal(SIGTERM);
  // Health turns NOT_SERVING first, while the server still answers (--drain-delay-ms).
  std::string health;
  for (int i = 0; i < 100 && health != "NOT_SERVING"; ++i) {
    health = Health(Addr(eport));
    if (health != "NOT_SERVING") std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(health, "NOT_SERVING");
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return done == kRequests; }));
  }
  for (const auto& c : calls) EXPECT_TRUE(c.status.ok()) << c.status.error_code() << " " << c.status.error_message();
  EXPECT_EQ(edge->Wait(15000), std::optional<int>(0)) << edge->Log();
  // The cloud serves the next edge.
  const int eport2 = FreePort();
  auto edge2 = SpawnEdge(eport2, cport, LogPath("term-edge-2"));
  ASSERT_TRUE(WaitServing(Addr(eport2), 30000)) << edge2->Log();
}

// With busy workers the edge still exits within its grace period (plus one stage), exit 0, and
// every request is answered.
TEST_F(FaultTest, EdgeExitsWithinGraceUnderLoad) {
  const int cport = FreePort(), eport = FreePort();
  auto cloud = SpawnCloud(cport, LogPath("grace-cloud"));
  auto edge = SpawnEdge(eport, cport, LogPath("grace-edge"),
                        {"--grace-ms", "500", "--workers", "1", "--max-queue", "1000", "--max-inflight", "1000"});
  ASSERT_TRUE(WaitServing(Addr(cport), 30000)) << cloud->Log();
  ASSERT_TRUE(WaitServing(Addr(eport), 30000)) << edge->Log();
  {
    Load load(Addr(eport), 64, 30000, 64);
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    const auto term = Clock::now();
    edge->Signal(SIGTERM);
    const auto status = edge->Wait(10000);
    const int64_t took = MsBetween(term, Clock::now());
    EXPECT_EQ(status, std::optional<int>(0)) << edge->Log();
    std::printf("edge SIGTERM under load (64 in flight, grace 500 ms): exited after %lld ms\n",
                static_cast<long long>(took));
    EXPECT_LE(took, 500 + 1500);
    load.Stop();
    for (const Answer& a : load.answers()) {
      EXPECT_TRUE(a.code == grpc::StatusCode::OK || a.code == grpc::StatusCode::CANCELLED ||
                  a.code == grpc::StatusCode::UNAVAILABLE)
          << a.code << " " << a.message;
    }
  }
}

// Flags that make no sense are refused at start; a second server on a port in use fails.
TEST_F(FaultTest, BadFlagsAndPortInUseAreRefused) {
  const int port = FreePort();
  for (const std::vector<std::string>& extra :
       {std::vector<std::string>{"--log-level", "bogus"}, {"--grace-ms", "-5"}, {"--max-queue", "0"}}) {
    auto c = SpawnCloud(port, LogPath("bad-flag"), extra);
    const auto st = c->Wait(20000);
    ASSERT_TRUE(st.has_value());
    EXPECT_NE(*st, 0) << extra[0];
    EXPECT_NE(c->Log().find(extra[0]), std::string::npos) << c->Log();
  }
  auto first = SpawnCloud(port, LogPath("port-1"));
  ASSERT_TRUE(WaitServing(Addr(port), 30000)) << first->Log();
  auto second = SpawnCloud(port, LogPath("port-2"));
  const auto st = second->Wait(30000);
  ASSERT_TRUE(st.has_value()) << "a second cloud on a port in use must not start";
  EXPECT_EQ(*st, 1);
  EXPECT_NE(second->Log().find("port in use"), std::string::npos) << second->Log();
  first->Signal(SIGTERM);
  EXPECT_EQ(first->Wait(10000), std::optional<int>(0));
}

}  // namespace
}  // namespace splitrans

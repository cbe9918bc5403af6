// Unit tests of common/metrics: the text exposition format (escaping, ordering, histogram
// buckets), programmer errors, exact totals under concurrency, the /metrics endpoint (status
// codes, bind failures, slow clients) and promtool's verdict on a realistic exposition.
#include "common/metrics.h"
#include "common/metrics_testing.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace splitrans::metrics {
namespace {

using namespace std::chrono_literals;
using testing::PromtoolCheck;

TEST(MetricsFormat, ValuesAsGoWritesThem) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(1), "1");
  EXPECT_EQ(FormatValue(-2.5), "-2.5");
  EXPECT_EQ(FormatValue(0.25), "0.25");
  EXPECT_EQ(FormatValue(0.0001), "0.0001");
  EXPECT_EQ(FormatValue(0.00005), "5e-05");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(123456), "123456");
  EXPECT_EQ(FormatValue(1e6), "1e+06");
  EXPECT_EQ(FormatValue(1234567), "1.234567e+06");
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
}

TEST(MetricsFormat, ExpositionWithEscapingBucketsAndOrder) {
  Registry r;
  // Registered out of name order: the output is sorted by name, series by label values.
  r.AddCallbackGauge("d_queue", "Queue.", {"replica"}, [] {
    return std::vector<Registry::Sample>{{{"b"}, 2}, {{"a"}, 1}, {{"x", "y"}, 9}, {{"a"}, 7}};
  });
  auto& h = r.AddHistogram("c_seconds", "Latency.", {"stage"}, {0.25, 1, 10});
  auto& c = r.AddCounter("a_requests_total", "Requests.\nSecond line with \\ and \"quotes\"", {"code", "path"});
  r.AddGauge("b_inflight", "In flight.").WithLabels({}).Set(3);
  r.AddCounter("e_unused_total", "No series yet: left out.", {"x"});
  c.WithLabels({"OK", "/x"}).Inc(2);
  c.WithLabels({"NOT_FOUND", "a\"b\\c\nd"}).Inc();
  for (double v : {0.125, 0.25, 5.0, 100.0}) h.WithLabels({"decode"}).Observe(v);
  h.WithLabels({"decode"}).Observe(std::nan(""));  // ignored
  EXPECT_EQ(r.Serialize(),
            "# HELP a_requests_total Requests.\\nSecond line with \\\\ and \"quotes\"\n"
            "# TYPE a_requests_total counter\n"
            "a_requests_total{code=\"NOT_FOUND\",path=\"a\\\"b\\\\c\\nd\"} 1\n"
            "a_requests_total{code=\"OK\",path=\"/x\"} 2\n"
            "# HELP b_inflight In flight.\n"
            "# TYPE b_inflight gauge\n"
            "b_inflight 3\n"
            "# HELP c_seconds Latency.\n"
            "# TYPE c_seconds histogram\n"
            "c_seconds_bucket{stage=\"decode\",le=\"0.25\"} 2\n"
            "c_seconds_bucket{stage=\"decode\",le=\"1\"} 2\n"
            "c_seconds_bucket{stage=\"decode\",le=\"10\"} 3\n"
            "c_seconds_bucket{stage=\"decode\",le=\"+Inf\"} 4\n"
            "c_seconds_sum{stage=\"decode\"} 105.375\n"
            "c_seconds_count{stage=\"decode\"} 4\n"
            "# HELP d_queue Queue.\n"
            "# TYPE d_queue gauge\n"
            "d_queue{replica=\"a\"} 1\n"
            "d_queue{replica=\"b\"} 2\n");
}

TEST(MetricsFormat, UnlabelledSeriesStartAtZeroAndHistogramsWithoutLabels) {
  Registry r;
  r.AddCounter("x_total", "X.");
  r.AddHistogram("y_bytes", "Y.", {}, {1, 2, 1.0 / 0.0});  // a trailing +Inf is dropped, not doubled
  EXPECT_EQ(r.Serialize(),
            "# HELP x_total X.\n# TYPE x_total counter\nx_total 0\n"
            "# HELP y_bytes Y.\n# TYPE y_bytes histogram\n"
            "y_bytes_bucket{le=\"1\"} 0\ny_bytes_bucket{le=\"2\"} 0\ny_bytes_bucket{le=\"+Inf\"} 0\n"
            "y_bytes_sum 0\ny_bytes_count 0\n");
}

TEST(MetricsFormat, InvalidUtf8BecomesReplacementCharacter) {
  Registry r;
  r.AddGauge("g", "bad \xff help").WithLabels({}).Set(1);
  r.AddGauge("h", "H.", {"v"}).WithLabels({"caf\xc3\xa9 \xc0\xaf"}).Set(1);
  const std::string s = r.Serialize();
  EXPECT_NE(s.find("# HELP g bad \xEF\xBF\xBD help\n"), std::string::npos) << s;
  EXPECT_NE(s.find("h{v=\"caf\xc3\xa9 \xEF\xBF\xBD\xEF\xBF\xBD\"} 1\n"), std::string::npos) << s;
}

TEST(MetricsFormat, WithLabelsReturnsTheSameSeries) {
  Registry r;
  auto& f = r.AddGauge("g", "G.", {"a"});
  Gauge& x = f.WithLabels({"1"});
  x.Set(5);
  EXPECT_EQ(&x, &f.WithLabels({"1"}));
  f.WithLabels({"2"}).Inc(2);
  f.WithLabels({"2"}).Dec(0.5);
  EXPECT_EQ(f.WithLabels({"1"}).Value(), 5);
  EXPECT_EQ(f.WithLabels({"2"}).Value(), 1.5);
}

TEST(MetricsBuckets, ExponentialAndDefaultLatency) {
  EXPECT_EQ(ExponentialBuckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  const std::vector<double> b = DefaultLatencyBuckets();
  EXPECT_EQ(b.front(), 50e-6);
  EXPECT_EQ(b.back(), 30);
  EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
  EXPECT_EQ(std::adjacent_find(b.begin(), b.end()), b.end());
}

TEST(MetricsBuckets, BuildInfo) {
  Registry r;
  AddBuildInfo(&r);
  EXPECT_NE(r.Serialize().find("splitrans_build_info{version=\""), std::string::npos);
}

TEST(MetricsDeathTest, ProgrammerErrorsAbortWithAMessage) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Registry r;
  r.AddCounter("ok_total", "ok");
  r.AddHistogram("lat_seconds", "lat", {"a"}, {1});
  EXPECT_DEATH(r.AddCounter("requests", "no suffix"), "must end in _total");
  EXPECT_DEATH(r.AddGauge("1abc", "bad name"), "not \\[a-zA-Z_:\\]");
  EXPECT_DEATH(r.AddGauge("a-b", "bad name"), "is not");
  EXPECT_DEATH(r.AddGauge("g", "bad label", {"a-b"}), "label name 'a-b'");
  EXPECT_DEATH(r.AddGauge("g", "reserved label", {"__x"}), "starts with __");
  EXPECT_DEATH(r.AddGauge("g", "twice", {"a", "a"}), "named twice");
  EXPECT_DEATH(r.AddHistogram("h", "le", {"le"}, {1}), "reserved");
  EXPECT_DEATH(r.AddCounter("ok_total", "dup"), "registered twice");
  EXPECT_DEATH(r.AddGauge("lat_seconds_count", "taken by the histogram"), "registered twice");
  EXPECT_DEATH(r.AddHistogram("h", "unsorted", {}, {2, 1}), "strictly increasing");
  EXPECT_DEATH(r.AddHistogram("h", "none", {}, {}), "at least one");
  EXPECT_DEATH(r.AddCounter("c_total", "arity", {"a"}).WithLabels({"x", "y"}), "2 label values for 1 labels");
  EXPECT_DEATH(r.AddCounter("d_total", "neg").WithLabels({}).Inc(-1), "counters only go up");
  EXPECT_DEATH(ExponentialBuckets(0, 2, 3), "start > 0");
}

TEST(MetricsConcurrency, ExactTotalsWhileScraping) {
  Registry r;
  auto& c = r.AddCounter("c_total", "C.", {"parity"});
  auto& g = r.AddGauge("g", "G.").WithLabels({});
  auto& h = r.AddHistogram("h_seconds", "H.", {"t"}, {0.5, 1});
  constexpr int kThreads = 8, kIters = 20000;
  h.WithLabels({"0"});  // a labelled family is written once it has a series
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    while (!done.load()) {
      const std::string s = r.Serialize();
      ASSERT_NE(s.find("# TYPE h_seconds histogram"), std::string::npos);
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Histogram& mine = h.WithLabels({std::to_string(t % 2)});
      for (int i = 0; i < kIters; ++i) {
        c.WithLabels({i % 2 ? "odd" : "even"}).Inc();
        g.Inc();
        mine.Observe((i % 3) * 0.5);  // 0, 0.5, 1: exact in binary
        g.Dec();
      }
    });
  }
  for (auto& t : threads) t.join();
  done = true;
  scraper.join();
  EXPECT_EQ(c.WithLabels({"odd"}).Value() + c.WithLabels({"even"}).Value(), double{kThreads} * kIters);
  EXPECT_EQ(g.Value(), 0);
  uint64_t count = 0;
  double sum = 0;
  for (const char* t : {"0", "1"}) {
    const Histogram::Snapshot s = h.WithLabels({t}).Snap();
    count += s.count;
    sum += s.sum;
    EXPECT_EQ(s.cumulative.back(), s.count);
  }
  EXPECT_EQ(count, uint64_t{kThreads} * kIters);
  int64_t expect_sum2 = 0;  // twice the sum: integers
  for (int i = 0; i < kIters; ++i) expect_sum2 += i % 3;
  EXPECT_EQ(sum, expect_sum2 * kThreads * 0.5);
}

// A registry with a bit of everything and label values that need escaping.
void FillRealistic(Registry* r) {
  AddBuildInfo(r);
  auto& req = r->AddCounter("splitrans_cloud_requests_total", "Requests answered, by gRPC status code.",
                            {"model", "version", "split", "code"});
  req.WithLabels({"fmnist_resnet", "1", "stage2", "OK"}).Inc(41);
  req.WithLabels({"quote\"back\\slash\nnewline", "1", "stage2", "NOT_FOUND"}).Inc();
  req.WithLabels({"caf\xc3\xa9", "unknown", "unknown", "RESOURCE_EXHAUSTED"}).Inc(3);
  auto& lat = r->AddHistogram("splitrans_cloud_request_duration_seconds", "Receipt to answer, in seconds.",
                              {"model", "version", "split"}, DefaultLatencyBuckets());
  for (int i = 0; i < 100; ++i) lat.WithLabels({"fmnist_resnet", "1", "stage2"}).Observe(i * 0.0007);
  lat.WithLabels({"fmnist_resnet", "1", "stage2"}).Observe(45);
  r->AddCounter("splitrans_cloud_feature_coded_bytes_total", "Coded bytes.", {"model"}).WithLabels({"m"}).Inc(1234567);
  r->AddGauge("splitrans_cloud_inflight_requests", "Requests in flight \\ \"help\" with\nnewline.")
      .WithLabels({})
      .Set(2);
  r->AddCallbackGauge("splitrans_edge_cloud_replica_up", "1 while the replica's stream is up.", {"replica"}, [] {
    return std::vector<Registry::Sample>{{{"10.0.0.2:50052"}, 1}, {{"[::1]:50052"}, 0}};
  });
}

TEST(MetricsPromtool, RealisticExpositionPassesTheLinter) {
  Registry r;
  FillRealistic(&r);
  const std::string text = r.Serialize();
  auto [rc, out] = PromtoolCheck(text);
  EXPECT_EQ(rc, 0) << out << "\n--- exposition:\n" << text;
  EXPECT_EQ(out, "") << "\n--- exposition:\n" << text;
}

TEST(MetricsPromtool, TheLinterDoesCatchMistakes) {
  // What the registry refuses to write, promtool must refuse too, or the test above proves nothing.
  auto [rc1, out1] = PromtoolCheck("# HELP requests R.\n# TYPE requests counter\nrequests 1\n");
  EXPECT_NE(rc1, 0);
  EXPECT_NE(out1.find("_total"), std::string::npos) << out1;
  auto [rc2, out2] = PromtoolCheck("# TYPE x gauge\nx{a=\"unterminated} 1\n");
  EXPECT_NE(rc2, 0) << out2;
}

// ---- the HTTP endpoint ----

class MetricsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    FillRealistic(&registry_);
    auto s = MetricsServer::Start("127.0.0.1:0", &registry_);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    ASSERT_GT(server_->port(), 0);
  }
  httplib::Client Client() {
    httplib::Client c("127.0.0.1", server_->port());
    c.set_connection_timeout(5s);
    c.set_read_timeout(5s);
    return c;
  }
  Registry registry_;
  std::unique_ptr<MetricsServer> server_;
};

// A raw TCP connection to 127.0.0.1:port (-1 on failure).
int Connect(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST_F(MetricsServerTest, ServesMetricsAndStatusCodes) {
  auto c = Client();
  auto res = c.Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(res->body, registry_.Serialize());
  registry_.AddGauge("added_later", "A family added while serving.").WithLabels({}).Set(7);
  res = c.Get("/metrics?debug=1");
  ASSERT_TRUE(res);
  EXPECT_NE(res->body.find("\nadded_later 7\n"), std::string::npos);

  res = c.Head("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->body, "");

  for (const char* path : {"/", "/metrics/", "/metricsx", "/favicon.ico"}) {
    res = c.Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 404) << path;
  }
  res = c.Post("/metrics", "x", "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);
  EXPECT_EQ(res->get_header_value("Allow"), "GET, HEAD");
  res = c.Delete("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 405);
}

TEST_F(MetricsServerTest, PortInUseAndBadAddressesAreRefused) {
  const std::string addr = "127.0.0.1:" + std::to_string(server_->port());
  auto again = MetricsServer::Start(addr, &registry_);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(again.status().message().find("cannot listen on " + addr), std::string::npos) << again.status();

  for (const char* bad : {"", "8003", ":8003", "localhost", "host:", "host:port", "::1:8003", "[::1]8003",
                          "127.0.0.1:65536", "127.0.0.1:-1", "[]:80"}) {
    auto s = MetricsServer::Start(bad, &registry_);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad << ": " << s.status();
    EXPECT_NE(s.status().message().find(bad), std::string::npos) << s.status();
  }
  auto foreign = MetricsServer::Start("192.0.2.1:0", &registry_);  // TEST-NET-1: not ours
  ASSERT_FALSE(foreign.ok());
  EXPECT_EQ(foreign.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(MetricsServerTest, Ipv6AnyAddressServesLoopback) {
  auto s = MetricsServer::Start("[::]:0", &registry_);
  ASSERT_TRUE(s.ok()) << s.status();
  httplib::Client c("::1", (*s)->port());
  auto res = c.Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
}

TEST(MetricsServerLimits, SlowAndIdleClientsCannotHoldTheThreads) {
  Registry r;
  r.AddGauge("g", "G.").WithLabels({}).Set(1);
  MetricsServerOptions o;
  o.threads = 1;
  o.read_timeout_ms = 300;
  o.connection_deadline_ms = 800;
  auto s = MetricsServer::Start("127.0.0.1:0", &r, o);
  ASSERT_TRUE(s.ok()) << s.status();
  const int port = (*s)->port();

  // A client that drips a header byte every 100 ms (each read arrives within the read timeout)
  // is cut off at the connection deadline.
  const int drip = Connect(port);
  ASSERT_GE(drip, 0);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(::send(drip, "GET /metrics HTTP/1.1\r\n", 23, 0), 23);
  bool closed = false;
  while (std::chrono::steady_clock::now() - t0 < 5s) {
    if (::send(drip, "X", 1, MSG_NOSIGNAL) != 1) {
      closed = true;
      break;
    }
    char b;
    if (::recv(drip, &b, 1, MSG_DONTWAIT) == 0) {
      closed = true;
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  const auto took = std::chrono::steady_clock::now() - t0;
  ::close(drip);
  EXPECT_TRUE(closed);
  EXPECT_GE(took, 700ms);
  EXPECT_LT(took, 3s);

  // Idle connections that send nothing hold the one thread for a read timeout at most: a real
  // scrape behind them still succeeds.
  const int idle1 = Connect(port), idle2 = Connect(port);
  ASSERT_GE(idle1, 0);
  ASSERT_GE(idle2, 0);
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(5s);
  const auto t1 = std::chrono::steady_clock::now();
  auto res = c.Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - t1, 3s);
  ::close(idle1);
  ::close(idle2);

  // An oversized request is refused without reading it all.
  const int big = Connect(port);
  ASSERT_GE(big, 0);
  const std::string huge = "GET /metrics HTTP/1.1\r\nX: " + std::string(200000, 'a') + "\r\n\r\n";
  ::send(big, huge.data(), huge.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  std::string reply;
  char buf[1024];
  timeval tv{3, 0};
  ::setsockopt(big, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  for (ssize_t n; (n = ::recv(big, buf, sizeof buf, 0)) > 0;) reply.append(buf, n);
  ::close(big);
  EXPECT_EQ(reply.find("200 OK"), std::string::npos) << reply;
}

TEST(MetricsServerLimits, StopsPromptlyWithOpenConnections) {
  Registry r;
  auto s = MetricsServer::Start("127.0.0.1:0", &r);  // default timeouts: 5 s reads
  ASSERT_TRUE(s.ok()) << s.status();
  const int idle = Connect((*s)->port());
  ASSERT_GE(idle, 0);
  std::this_thread::sleep_for(50ms);  // let the server take the connection
  const auto t0 = std::chrono::steady_clock::now();
  s->reset();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  ::close(idle);
}

}  // namespace
}  // namespace splitrans::metrics

#include "client/load.h"

#include <absl/status/status.h>
#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "client/dataset.h"
#include "common/clock.h"

namespace splitrans::client {
namespace inf = ::inference;

int64_t ReadRssKib(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      try {
        return std::stoll(line.substr(6));
      } catch (...) {
        return 0;
      }
    }
  }
  return 0;
}

namespace {

double Percentile(std::vector<int64_t>& v, double p) {
  if (v.empty()) return 0;
  const size_t idx = std::min(v.size() - 1, static_cast<size_t>(p * (v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + idx, v.end());
  return v[idx] / 1000.0;
}

}  // namespace

absl::StatusOr<LoadSummary> RunLoad(const LoadOptions& o) {
  if (o.requests <= 0 && o.duration_s <= 0) {
    return absl::InvalidArgumentError("load: give a request count or a duration (or both)");
  }
  auto images = ReadIdxImages(o.images, 1000);
  if (!images.ok()) return images.status();
  const int64_t per = images->rows * images->cols;
  const int batch = std::max(1, o.batch);
  if (images->count < batch) return absl::InvalidArgumentError("load: fewer images than the batch size");

  auto channel = MakeChannel(o.edge, o.security);
  if (!channel.ok()) return channel.status();
  auto stub = inf::GRPCInferenceService::NewStub(*channel);
  LoadSummary sum;
  std::mutex mu;
  std::condition_variable cv;
  int inflight = 0;
  std::vector<int64_t> ok_us;
  struct Event {
    int64_t start_us, end_us;
    int code;
  };
  std::vector<Event> timeline;
  const int64_t t0 = NowMicros();
  // NowMicros() (steady) + this = Unix time in microseconds, for the timeline.
  const int64_t epoch_offset_us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch()).count() - t0;
  const int64_t stop_us = o.duration_s > 0 ? t0 + static_cast<int64_t>(o.duration_s * 1e6) : INT64_MAX;

  // RSS sampler: one sample every sample_ms; "warm" is the first sample past the warm-up share.
  std::atomic<bool> sampling{true};
  std::vector<RssStats> rss;
  for (const auto& [name, pid] : o.pids) rss.push_back(RssStats{name, pid});
  std::mutex rss_mu;
  std::condition_variable rss_cv;
  std::atomic<int64_t> answered{0};
  std::thread sampler([&] {
    std::unique_lock<std::mutex> lock(rss_mu);
    while (sampling.load()) {
      const int64_t now = NowMicros();
      const double done_share =
          o.requests > 0 ? static_cast<double>(answered.load()) / o.requests
                         : static_cast<double>(now - t0) / std::max<double>(1, stop_us - t0);
      for (RssStats& r : rss) {
        const int64_t kib = ReadRssKib(r.pid);
        if (kib <= 0) continue;
        r.max_kib = std::max(r.max_kib, kib);
        r.end_kib = kib;
        if (r.warm_kib == 0 && done_share >= o.warmup_fraction) r.warm_kib = kib;
      }
      rss_cv.wait_for(lock, std::chrono::milliseconds(std::max(1, o.sample_ms)), [&] { return !sampling.load(); });
    }
  });

  struct Call {
    grpc::ClientContext ctx;
    inf::ModelInferRequest req;
    inf::ModelInferResponse resp;
    int64_t start_us = 0;
    int64_t deadline_us = 0;
  };
  std::atomic<bool> rejected{false};
  for (int64_t i = 0; o.requests <= 0 || i < o.requests; ++i) {
    if (o.reject_pause_ms > 0 && rejected.exchange(false)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(o.reject_pause_ms));  // a client that backs off
    }
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return inflight < std::max(1, o.concurrency); });
      if (NowMicros() >= stop_us) break;
      ++inflight;
      ++sum.sent;
    }
    auto* call = new Call;
    const int64_t first = (i * batch) % (images->count - batch + 1);
    call->req = MakePixelRequest(o.infer, images->pixels.data() + first * per, batch, 1, images->rows, images->cols);
    call->req.set_id(absl::StrCat("load-", i));
    call->start_us = NowMicros();
    call->deadline_us = call->start_us + int64_t{o.deadline_ms} * 1000;
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(o.deadline_ms));
    stub->async()->ModelInfer(&call->ctx, &call->req, &call->resp, [&, call](grpc::Status s) {
      const int64_t end = NowMicros();
      const int64_t us = end - call->start_us;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (s.ok()) {
          ++sum.ok;
          ok_us.push_back(us);
        } else {
          if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) rejected.store(true);
          ++sum.errors[absl::StatusCodeToString(static_cast<absl::StatusCode>(s.error_code()))];
          if (sum.first_error.empty()) sum.first_error = s.error_message();
        }
        if (end > call->deadline_us + 100000) ++sum.late;
        if (!o.timeline.empty()) {
          timeline.push_back({call->start_us + epoch_offset_us, end + epoch_offset_us, static_cast<int>(s.error_code())});
        }
        sum.max_any_ms = std::max(sum.max_any_ms, us / 1000.0);
        // Before the count that lets RunLoad return and drop the channel: the call's context
        // holds a channel reference, whose last release must not happen on this gRPC thread.
        delete call;
        answered.fetch_add(1);
        --inflight;
        cv.notify_all();  // under the lock: RunLoad's locals may go once it is released
      }
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return inflight == 0; });
  }
  sum.wall_s = (NowMicros() - t0) / 1e6;
  {
    std::lock_guard<std::mutex> lock(rss_mu);
    sampling.store(false);
  }
  rss_cv.notify_all();
  sampler.join();
  for (RssStats& r : rss) {
    const int64_t kib = ReadRssKib(r.pid);
    if (kib > 0) r.end_kib = kib;
    if (r.warm_kib == 0) r.warm_kib = r.end_kib;
  }
  sum.rss = rss;
  if (!o.timeline.empty()) {
    std::ofstream f(o.timeline);
    if (!f) return absl::InvalidArgumentError("load: cannot write " + o.timeline);
    f << "start_unix_ms,end_unix_ms,code\n";
    for (const Event& e : timeline) f << e.start_us / 1000 << "," << e.end_us / 1000 << "," << e.code << "\n";
  }
  sum.ok_per_s = sum.wall_s > 0 ? sum.ok / sum.wall_s : 0;
  sum.answered_per_s = sum.wall_s > 0 ? sum.sent / sum.wall_s : 0;
  sum.p50_ms = Percentile(ok_us, 0.50);
  sum.p90_ms = Percentile(ok_us, 0.90);
  sum.p99_ms = Percentile(ok_us, 0.99);
  sum.max_ms = ok_us.empty() ? 0 : *std::max_element(ok_us.begin(), ok_us.end()) / 1000.0;
  return sum;
}

std::string LoadSummary::ToText() const {
  std::string s;
  absl::StrAppendFormat(&s, "requests            : %d sent, %d ok, %d failed\n", sent, ok, sent - ok);
  for (const auto& [code, n] : errors) absl::StrAppendFormat(&s, "  %-18s: %d\n", code, n);
  if (!first_error.empty()) absl::StrAppendFormat(&s, "first error         : %s\n", first_error);
  absl::StrAppendFormat(&s, "late (>100 ms past deadline): %d\n", late);
  if (ok > 0) {
    absl::StrAppendFormat(&s, "throughput          : %.1f ok req/s (%.1f answers/s, wall %.2f s)\n", ok_per_s,
                          answered_per_s, wall_s);
    absl::StrAppendFormat(&s, "latency ok (ms)     : p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", p50_ms, p90_ms,
                          p99_ms, max_ms);
  } else {
    absl::StrAppendFormat(&s, "throughput          : n/a (no request succeeded; wall %.2f s)\n", wall_s);
  }
  absl::StrAppendFormat(&s, "latency any (ms)    : max %.3f\n", max_any_ms);
  for (const RssStats& r : rss) {
    absl::StrAppendFormat(&s, "rss %-6s pid %-7d: after warm-up %.1f MiB, end %.1f MiB, max %.1f MiB (growth %+.1f%%)\n",
                          r.name, r.pid, r.warm_kib / 1024.0, r.end_kib / 1024.0, r.max_kib / 1024.0,
                          100 * r.growth());
  }
  return s;
}

std::string LoadSummary::ToJson() const {
  nlohmann::json j;
  j["sent"] = sent;
  j["ok"] = ok;
  j["errors"] = errors;
  j["late"] = late;
  if (!first_error.empty()) j["first_error"] = first_error;
  j["wall_s"] = wall_s;
  if (ok > 0) {
    j["ok_per_s"] = ok_per_s;
    j["latency_ms"] = {{"p50", p50_ms}, {"p90", p90_ms}, {"p99", p99_ms}, {"max", max_ms}};
  } else {
    j["ok_per_s"] = nullptr;
  }
  j["answered_per_s"] = answered_per_s;
  j["max_any_ms"] = max_any_ms;
  for (const RssStats& r : rss) {
    j["rss"][r.name] = {{"pid", r.pid}, {"warm_kib", r.warm_kib}, {"end_kib", r.end_kib}, {"max_kib", r.max_kib},
                        {"growth", r.growth()}};
  }
  return j.dump(2);
}

}  // namespace splitrans::client

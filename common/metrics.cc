#include "common/metrics.h"

#include <absl/strings/numbers.h>
#include <absl/strings/str_cat.h>
#include <fcntl.h>
#include <httplib.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <set>
#include <thread>
#include <type_traits>

#ifndef SPLITRANS_VERSION
#define SPLITRANS_VERSION "unknown"
#endif

namespace splitrans::metrics {

namespace {

[[noreturn]] void Fatal(const std::string& message) {
  std::fprintf(stderr, "metrics: %s\n", message.c_str());
  std::fflush(stderr);
  std::abort();
}

void AtomicAdd(std::atomic<double>* a, double v) {
  double cur = a->load(std::memory_order_relaxed);
  while (!a->compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

bool IsMetricName(const std::string& s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool IsLabelName(const std::string& s) {
  if (s.empty() || s.rfind("__", 0) == 0) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

void CheckLabelNames(const std::string& metric, const std::vector<std::string>& labels, bool histogram) {
  std::set<std::string> seen;
  for (const std::string& l : labels) {
    if (!IsLabelName(l)) {
      Fatal(absl::StrCat(metric, ": label name '", l, "' is not [a-zA-Z_][a-zA-Z0-9_]* or starts with __"));
    }
    if (histogram && l == "le") Fatal(absl::StrCat(metric, ": label 'le' is reserved for a histogram's buckets"));
    if (!seen.insert(l).second) Fatal(absl::StrCat(metric, ": label '", l, "' named twice"));
  }
}

// Length of the valid UTF-8 sequence at s[i..], 0 if there is none.
size_t Utf8Length(const std::string& s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n;
  uint32_t cp;
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2, cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3, cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4, cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return n;
}

// Escapes backslash and newline (and the double quote in label values); bytes that are not
// UTF-8 become U+FFFD (the format is UTF-8).
void AppendEscaped(const std::string& s, bool label_value, std::string* out) {
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '"' && label_value) {
      out->append("\\\"");
    } else {
      const size_t n = Utf8Length(s, i);
      if (n == 0) {
        out->append("\xEF\xBF\xBD");
        ++i;
        continue;
      }
      out->append(s, i, n);
      i += n;
      continue;
    }
    ++i;
  }
}

// name{a="x",b="y"[,extra]} value\n
void AppendSample(const std::string& name, const std::vector<std::string>& label_names,
                  const std::vector<std::string>& values, const std::string& extra_label, double v, std::string* out) {
  out->append(name);
  if (!label_names.empty() || !extra_label.empty()) {
    out->push_back('{');
    for (size_t i = 0; i < label_names.size(); ++i) {
      if (i) out->push_back(',');
      out->append(label_names[i]).append("=\"");
      AppendEscaped(values[i], true, out);
      out->push_back('"');
    }
    if (!extra_label.empty()) {
      if (!label_names.empty()) out->push_back(',');
      out->append(extra_label);
    }
    out->push_back('}');
  }
  out->push_back(' ');
  out->append(FormatValue(v));
  out->push_back('\n');
}

// A gauge whose samples come from a callback at each Serialize().
class CallbackGaugeFamily final : public internal::FamilyBase {
 public:
  CallbackGaugeFamily(std::string name, std::string help, std::vector<std::string> label_names,
                      std::function<std::vector<Registry::Sample>()> callback)
      : FamilyBase(std::move(name), std::move(help), std::move(label_names)), callback_(std::move(callback)) {}

  void Serialize(std::string* out) const override {
    std::vector<Registry::Sample> samples = callback_();
    samples.erase(std::remove_if(samples.begin(), samples.end(),
                                 [&](const Registry::Sample& s) { return s.first.size() != label_names_.size(); }),
                  samples.end());
    std::stable_sort(samples.begin(), samples.end(),
                     [](const Registry::Sample& a, const Registry::Sample& b) { return a.first < b.first; });
    samples.erase(std::unique(samples.begin(), samples.end(),
                              [](const Registry::Sample& a, const Registry::Sample& b) { return a.first == b.first; }),
                  samples.end());
    if (samples.empty()) return;
    AppendHeader("gauge", out);
    for (const auto& [labels, v] : samples) AppendSample(name_, label_names_, labels, "", v, out);
  }

 private:
  const std::function<std::vector<Registry::Sample>()> callback_;
};

}  // namespace

std::string CodeLabel(int code) {
  if (code < 0 || code > static_cast<int>(absl::StatusCode::kUnauthenticated)) return "UNKNOWN";
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Go's 'g' with the shortest precision: exponent form when the decimal exponent is < -4 or >= 6
  // ("if precision was the shortest possible, use precision 6 for this decision").
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  const std::string sci(buf, r.ptr);
  const size_t e = sci.find('e');
  int exp = 0;
  if (e == std::string::npos || !absl::SimpleAtoi(sci.substr(e + 1), &exp)) return sci;
  if (exp < -4 || exp >= 6) return sci;
  r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return std::string(buf, r.ptr);
}

void Counter::Inc(double v) {
  if (!(v >= 0)) Fatal(absl::StrCat("counter incremented by ", FormatValue(v), ": counters only go up"));
  AtomicAdd(&value_, v);
}

void Gauge::Inc(double v) { AtomicAdd(&value_, v); }

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(*bounds), counts_(new std::atomic<uint64_t>[bounds->size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  if (std::isnan(v)) return;
  // The first bucket whose upper bound is >= v (le: less than or equal); past the end: +Inf.
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  AtomicAdd(&sum_, v);
}

Histogram::Snapshot Histogram::Snap() const {
  Snapshot s;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = total;
  }
  s.count = total;  // so that _count always equals the +Inf bucket
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

void internal::FamilyBase::AppendHeader(const char* type, std::string* out) const {
  out->append("# HELP ").append(name_).push_back(' ');
  AppendEscaped(help_, false, out);
  out->append("\n# TYPE ").append(name_).push_back(' ');
  out->append(type).push_back('\n');
}

template <typename M>
Family<M>::Family(std::string name, std::string help, std::vector<std::string> label_names, std::vector<double> bounds)
    : FamilyBase(std::move(name), std::move(help), std::move(label_names)), bounds_(std::move(bounds)) {
  if (label_names_.empty()) WithLabels({});
}

template <typename M>
M& Family<M>::WithLabels(const std::vector<std::string>& values) {
  if (values.size() != label_names_.size()) {
    Fatal(absl::StrCat(name_, ": ", values.size(), " label values for ", label_names_.size(), " labels"));
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = series_.find(values);
  if (it == series_.end()) {
    std::unique_ptr<M> m;
    if constexpr (std::is_same_v<M, Histogram>) {
      m = std::make_unique<Histogram>(&bounds_);
    } else {
      m = std::make_unique<M>();
    }
    it = series_.emplace(values, std::move(m)).first;
  }
  return *it->second;
}

template <typename M>
void Family<M>::Serialize(std::string* out) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (series_.empty()) return;
  if constexpr (std::is_same_v<M, Histogram>) {
    AppendHeader("histogram", out);
    const std::string bucket = name_ + "_bucket", sum = name_ + "_sum", count = name_ + "_count";
    for (const auto& [values, h] : series_) {
      const Histogram::Snapshot s = h->Snap();
      for (size_t i = 0; i <= bounds_.size(); ++i) {
        const std::string le =
            absl::StrCat("le=\"", i < bounds_.size() ? FormatValue(bounds_[i]) : std::string("+Inf"), "\"");
        AppendSample(bucket, label_names_, values, le, static_cast<double>(s.cumulative[i]), out);
      }
      AppendSample(sum, label_names_, values, "", s.sum, out);
      AppendSample(count, label_names_, values, "", static_cast<double>(s.count), out);
    }
  } else {
    AppendHeader(std::is_same_v<M, Counter> ? "counter" : "gauge", out);
    for (const auto& [values, m] : series_) AppendSample(name_, label_names_, values, "", m->Value(), out);
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

Registry::Registry() = default;
Registry::~Registry() = default;

void Registry::Reserve(const std::string& name, bool histogram) {
  if (!IsMetricName(name)) Fatal(absl::StrCat("metric name '", name, "' is not [a-zA-Z_:][a-zA-Z0-9_:]*"));
  std::vector<std::string> taken = {name};
  if (histogram) {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) taken.push_back(name + suffix);
  }
  for (const std::string& t : taken) {
    if (std::find(names_.begin(), names_.end(), t) != names_.end()) {
      Fatal(absl::StrCat("metric name '", t, "' registered twice"));
    }
  }
  names_.insert(names_.end(), taken.begin(), taken.end());
}

template <typename F>
F& Registry::Add(std::unique_ptr<F> family) {
  F& ref = *family;
  families_.emplace(family->name(), std::move(family));
  return ref;
}

CounterFamily& Registry::AddCounter(const std::string& name, const std::string& help,
                                    std::vector<std::string> label_names) {
  if (name.size() < 6 || name.compare(name.size() - 6, 6, "_total") != 0) {
    Fatal(absl::StrCat("counter '", name, "' must end in _total"));
  }
  CheckLabelNames(name, label_names, false);
  std::lock_guard<std::mutex> lock(mu_);
  Reserve(name, false);
  return Add(std::unique_ptr<CounterFamily>(new CounterFamily(name, help, std::move(label_names))));
}

GaugeFamily& Registry::AddGauge(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names) {
  CheckLabelNames(name, label_names, false);
  std::lock_guard<std::mutex> lock(mu_);
  Reserve(name, false);
  return Add(std::unique_ptr<GaugeFamily>(new GaugeFamily(name, help, std::move(label_names))));
}

HistogramFamily& Registry::AddHistogram(const std::string& name, const std::string& help,
                                        std::vector<std::string> label_names, std::vector<double> bounds) {
  CheckLabelNames(name, label_names, true);
  if (!bounds.empty() && std::isinf(bounds.back()) && bounds.back() > 0) bounds.pop_back();
  if (bounds.empty()) Fatal(absl::StrCat(name, ": a histogram needs at least one finite bucket bound"));
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1]))) {
      Fatal(absl::StrCat(name, ": bucket bounds must be finite and strictly increasing"));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  Reserve(name, true);
  return Add(std::unique_ptr<HistogramFamily>(
      new HistogramFamily(name, help, std::move(label_names), std::move(bounds))));
}

void Registry::AddCallbackGauge(const std::string& name, const std::string& help, std::vector<std::string> label_names,
                                std::function<std::vector<Sample>()> callback) {
  CheckLabelNames(name, label_names, false);
  if (!callback) Fatal(absl::StrCat(name, ": null callback"));
  std::lock_guard<std::mutex> lock(mu_);
  Reserve(name, false);
  Add(std::make_unique<CallbackGaugeFamily>(name, help, std::move(label_names), std::move(callback)));
}

std::string Registry::Serialize() const {
  std::vector<const internal::FamilyBase*> families;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, f] : families_) families.push_back(f.get());
  }
  // Families are never removed: serialize without the registry's lock (callbacks may take theirs).
  std::string out;
  for (const internal::FamilyBase* f : families) f->Serialize(&out);
  return out;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  if (!(start > 0) || !(factor > 1) || count < 1) {
    Fatal(absl::StrCat("ExponentialBuckets(", start, ", ", factor, ", ", count,
                       "): need start > 0, factor > 1, count >= 1"));
  }
  std::vector<double> b;
  for (int i = 0; i < count; ++i) b.push_back(start * std::pow(factor, i));
  return b;
}

std::vector<double> DefaultLatencyBuckets() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,    0.1,    0.25,    0.5,    1,     2.5,    5,     10,    30};
}

void AddBuildInfo(Registry* registry) {
  registry->AddGauge("splitrans_build_info", "splitrans build; the value is always 1", {"version"})
      .WithLabels({SPLITRANS_VERSION})
      .Set(1);
}

// ---------------------------------------------------------------------------------------------
// MetricsServer: cpp-httplib parses and answers the requests; this file only supplies the
// connection's byte stream (httplib::Stream) so that every wait is bounded by the connection's
// deadline and by the server's stop, and a thread pool with a bounded queue.

namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr int kMaxRequestsPerConnection = 100;

absl::Status ParseListenAddress(const std::string& address, std::string* host, int* port) {
  const auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics: listen address '", address, "' is not host:port (e.g. 0.0.0.0:8003, [::]:8003, 127.0.0.1:0)"));
  };
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) return bad();
  std::string h = address.substr(0, colon);
  const std::string p = address.substr(colon + 1);
  if (h.front() == '[') {
    if (h.size() < 3 || h.back() != ']') return bad();
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string::npos) {
    return bad();  // an IPv6 address needs brackets
  }
  if (p.size() > 5 || !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; })) return bad();
  const int n = std::stoi(p);
  if (n > 65535) return bad();
  *host = std::move(h);
  *port = n;
  return absl::OkStatus();
}

// A pool of threads with a bounded queue: when max_queue connections are waiting, enqueue() (the
// accept loop) waits, so further connections stay in the kernel's backlog.
class BoundedTaskQueue final : public httplib::TaskQueue {
 public:
  BoundedTaskQueue(int threads, size_t max_queue) : max_queue_(std::max<size_t>(1, max_queue)) {
    for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this] { Run(); });
  }
  ~BoundedTaskQueue() override { shutdown(); }

  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lock(mu_);
    space_.wait(lock, [&] { return tasks_.size() < max_queue_; });
    tasks_.push_back(std::move(fn));
    work_.notify_one();
  }

  // Runs what is queued (each task closes its socket), then joins.
  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    work_.notify_all();
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  void Run() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        fn = std::move(tasks_.front());
        tasks_.pop_front();
      }
      space_.notify_one();
      fn();
    }
  }

  const size_t max_queue_;
  std::mutex mu_;
  std::condition_variable work_, space_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// One accepted connection as httplib reads and writes it. Each wait lasts at most the read or
// write timeout, never past the connection's deadline, and ends when the server stops (its stop
// pipe becomes readable); at most max_request_bytes are read in all.
class ConnectionStream final : public httplib::Stream {
 public:
  ConnectionStream(int fd, int stop_fd, const MetricsServerOptions& options)
      : fd_(fd),
        stop_fd_(stop_fd),
        options_(options),
        deadline_(SteadyClock::now() + std::chrono::milliseconds(options.connection_deadline_ms)) {}

  using httplib::Stream::write;

  bool is_readable() const override { return pos_ < len_ || Wait(POLLIN, options_.read_timeout_ms); }
  bool is_writable() const override { return Wait(POLLOUT, options_.write_timeout_ms); }

  ssize_t read(char* ptr, size_t size) override {
    if (pos_ == len_) {
      if (total_read_ >= options_.max_request_bytes || !Wait(POLLIN, options_.read_timeout_ms)) return -1;
      const size_t want = std::min(sizeof buf_, options_.max_request_bytes - total_read_);
      ssize_t n;
      do {
        n = ::recv(fd_, buf_, want, 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      total_read_ += static_cast<size_t>(n);
      pos_ = 0;
      len_ = static_cast<size_t>(n);
    }
    const size_t n = std::min(size, len_ - pos_);
    std::copy(buf_ + pos_, buf_ + pos_ + n, ptr);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    for (;;) {
      if (!Wait(POLLOUT, options_.write_timeout_ms)) return -1;
      const ssize_t n = ::send(fd_, ptr, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n >= 0) return n;
      if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    }
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { Name(false, &ip, &port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { Name(true, &ip, &port); }
  socket_t socket() const override { return fd_; }

 private:
  // True when fd_ is ready for events (or has an error for the next call to report) within
  // timeout_ms and before the deadline; false on timeout, deadline or stop.
  bool Wait(short events, int timeout_ms) const {
    const auto until = std::min(deadline_, SteadyClock::now() + std::chrono::milliseconds(timeout_ms));
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - SteadyClock::now()).count();
      if (left <= 0) return false;
      pollfd fds[2] = {{fd_, events, 0}, {stop_fd_, POLLIN, 0}};
      const int r = ::poll(fds, 2, static_cast<int>(left));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0 || fds[1].revents != 0) return false;
      if (fds[0].revents != 0) return true;
    }
  }

  void Name(bool local, std::string* ip, int* port) const {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    const int r = local ? ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len)
                        : ::getpeername(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    if (r == 0 && ::getnameinfo(reinterpret_cast<sockaddr*>(&addr), len, host, sizeof host, serv, sizeof serv,
                                NI_NUMERICHOST | NI_NUMERICSERV) == 0) {
      *ip = host;
      *port = std::atoi(serv);
    }
  }

  const int fd_, stop_fd_;
  const MetricsServerOptions& options_;
  const SteadyClock::time_point deadline_;
  char buf_[4096];
  size_t pos_ = 0, len_ = 0, total_read_ = 0;
};

// httplib's server with our connection handling: accepted sockets are served through a
// ConnectionStream, keep-alive included.
class HttpServer final : public httplib::Server {
 public:
  HttpServer(const MetricsServerOptions& options, int stop_fd, const std::atomic<bool>* stopping)
      : options_(options), stop_fd_(stop_fd), stopping_(stopping) {}

 private:
  bool process_and_close_socket(socket_t sock) override {
    bool ok = false;
    if (!stopping_->load()) {
      ConnectionStream stream(sock, stop_fd_, options_);
      for (int i = 1; i <= kMaxRequestsPerConnection && !stopping_->load(); ++i) {
        if (!stream.is_readable()) break;  // no (further) request within the read timeout
        bool closed = false;
        ok = process_request(stream, i == kMaxRequestsPerConnection, closed, nullptr);
        if (!ok || closed) break;
      }
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ok;
  }

  const MetricsServerOptions options_;
  const int stop_fd_;
  const std::atomic<bool>* stopping_;
};

}  // namespace

struct MetricsServer::Impl {
  MetricsServerOptions options;
  const Registry* registry = nullptr;
  std::atomic<bool> stopping{false};
  int stop_pipe[2] = {-1, -1};
  std::unique_ptr<HttpServer> http;
  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  bool accepting = false;  // the accept loop runs (or has ended)

  ~Impl() {
    if (thread.joinable()) {
      stopping.store(true);
      const char b = 1;
      [[maybe_unused]] ssize_t n = ::write(stop_pipe[1], &b, 1);  // wakes every waiting connection
      http->stop();  // closes the listening socket: the accept loop ends and joins the pool
      thread.join();
    }
    for (int fd : stop_pipe) {
      if (fd >= 0) ::close(fd);
    }
  }
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen_address,
                                                                    const Registry* registry,
                                                                    const MetricsServerOptions& options) {
  std::string host;
  int port = 0;
  if (auto st = ParseListenAddress(listen_address, &host, &port); !st.ok()) return st;
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  s->impl_ = std::make_unique<Impl>();
  Impl* impl = s->impl_.get();
  impl->options = options;
  impl->registry = registry;
  if (::pipe2(impl->stop_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("metrics: pipe: ", std::strerror(errno)));
  }
  impl->http = std::make_unique<HttpServer>(impl->options, impl->stop_pipe[0], &impl->stopping);
  httplib::Server& http = *impl->http;
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which would let a second server
  // share a port in use without an error.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  http.set_payload_max_length(options.max_request_bytes);
  // What the Keep-Alive response header announces (HttpServer enforces it).
  http.set_keep_alive_max_count(kMaxRequestsPerConnection);
  http.set_keep_alive_timeout(std::max(1, options.read_timeout_ms / 1000));
  http.new_task_queue = [impl]() -> httplib::TaskQueue* {
    {
      std::lock_guard<std::mutex> lock(impl->mu);
      impl->accepting = true;
    }
    impl->cv.notify_all();
    return new BoundedTaskQueue(impl->options.threads, impl->options.max_queued_connections);
  };
  http.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    if (req.path != "/metrics") {
      res.status = 404;
      res.set_content("not found: the metrics are at /metrics\n", "text/plain; charset=utf-8");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (req.method != "GET" && req.method != "HEAD") {
      res.status = 405;
      res.set_header("Allow", "GET, HEAD");
      res.set_content("method not allowed: GET /metrics\n", "text/plain; charset=utf-8");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.Get("/metrics", [registry](const httplib::Request&, httplib::Response& res) {
    res.set_content(registry->Serialize(), kContentType);
  });

  if (port == 0) {
    port = http.bind_to_any_port(host);
  } else if (!http.bind_to_port(host, port)) {
    port = -1;
  }
  if (port <= 0) {
    return absl::UnavailableError(absl::StrCat("metrics: cannot listen on ", listen_address,
                                               " (is the port in use, or the host not an address of this machine?)"));
  }
  s->port_ = port;
  impl->thread = std::thread([impl] {
    impl->http->listen_after_bind();
    {
      std::lock_guard<std::mutex> lock(impl->mu);
      impl->accepting = true;  // also when the loop failed at once: nothing to wait for
    }
    impl->cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(impl->mu);
  impl->cv.wait(lock, [&] { return impl->accepting; });  // stop() is a no-op before the loop runs
  return s;
}

MetricsServer::~MetricsServer() = default;

}  // namespace splitrans::metrics

// Prometheus metrics without a client library: a registry of counters, gauges, histograms and
// gauges computed at scrape time, the text exposition format 0.0.4, and an HTTP endpoint
// (cpp-httplib) that serves it at /metrics. No Torch, no gRPC.
// Thread-safe: updates are lock-free (atomics); WithLabels() takes a short per-family mutex (keep
// the reference where a series is hot); Serialize() may run while other threads update.
#pragma once

#include <absl/status/statusor.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace splitrans::metrics {

// A value that only goes up (requests, bytes). Starts at 0.
class Counter {
 public:
  // REQUIRES: v >= 0 (a negative or NaN increment is a programmer error: aborts).
  void Inc(double v = 1);
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// A value that goes up and down (requests in flight). Starts at 0.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Inc(double v = 1);
  void Dec(double v = 1) { Inc(-v); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Counts observations into buckets with upper bounds (le), plus their sum and count.
class Histogram {
 public:
  // bounds: strictly increasing, finite (the +Inf bucket is implicit); borrowed from the family.
  explicit Histogram(const std::vector<double>* bounds);
  // NaN is ignored (it would poison _sum for good).
  void Observe(double v);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // bounds.size() + 1 entries; the last is +Inf == count
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot Snap() const;

 private:
  const std::vector<double>& bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, not cumulative; last: +Inf
  std::atomic<double> sum_{0};
};

namespace internal {

// What Registry keeps of each metric family.
class FamilyBase {
 public:
  virtual ~FamilyBase() = default;
  const std::string& name() const { return name_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // Appends # HELP, # TYPE and the samples (nothing for a family with no series).
  virtual void Serialize(std::string* out) const = 0;

 protected:
  FamilyBase(std::string name, std::string help, std::vector<std::string> label_names)
      : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {}
  // "# HELP name help\n# TYPE name type\n"
  void AppendHeader(const char* type, std::string* out) const;

  const std::string name_, help_;
  const std::vector<std::string> label_names_;
};

}  // namespace internal

// The series of one metric, one per combination of label values.
template <typename M>
class Family final : public internal::FamilyBase {
 public:
  // The series with these label values (in label_names() order), created on first use; the
  // reference stays valid as long as the registry. REQUIRES: values.size() == label_names().size()
  // (aborts otherwise). Bound the values' cardinality (never raw peer input).
  M& WithLabels(const std::vector<std::string>& values);
  void Serialize(std::string* out) const override;

 private:
  friend class Registry;
  Family(std::string name, std::string help, std::vector<std::string> label_names, std::vector<double> bounds = {});

  const std::vector<double> bounds_;  // histograms only
  mutable std::mutex mu_;             // guards series_ (not the values)
  std::map<std::vector<std::string>, std::unique_ptr<M>> series_;  // ordered: stable output
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;
extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

// A metric family's name, help and values. Families are created at start-up and live as long as
// the registry. Misuse is a programmer error and aborts with a message naming the metric: a name
// that is not [a-zA-Z_:][a-zA-Z0-9_:]*, a label name that is not [a-zA-Z_][a-zA-Z0-9_]* or starts
// with "__" (or is "le" on a histogram), a label named twice, a counter whose name does not end in
// "_total", a name already taken (a histogram takes <name>_bucket, _sum and _count too), bounds
// that are not strictly increasing and finite.
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // A family without labels has its one series (at 0) from the start.
  CounterFamily& AddCounter(const std::string& name, const std::string& help,
                            std::vector<std::string> label_names = {});
  GaugeFamily& AddGauge(const std::string& name, const std::string& help, std::vector<std::string> label_names = {});
  // bounds: the buckets' upper bounds (le), strictly increasing; +Inf is added (a trailing +Inf
  // is accepted and dropped).
  HistogramFamily& AddHistogram(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names, std::vector<double> bounds);

  // One sample of a callback gauge: label values (in label_names order) and value.
  using Sample = std::pair<std::vector<std::string>, double>;
  // A gauge computed at each Serialize() (queue depths, per-replica state). callback runs on the
  // scraping thread, possibly concurrently with anything else: thread-safe, quick, and it must
  // not call this registry. Samples with the wrong number of label values, or label values
  // already returned, are dropped.
  void AddCallbackGauge(const std::string& name, const std::string& help, std::vector<std::string> label_names,
                        std::function<std::vector<Sample>()> callback);

  // The text exposition format 0.0.4: families by name, series by label values.
  std::string Serialize() const;

 private:
  void Reserve(const std::string& name, bool histogram);  // aborts when taken
  template <typename F>
  F& Add(std::unique_ptr<F> family);

  mutable std::mutex mu_;  // guards families_ and names_ (not the families' contents)
  std::map<std::string, std::unique_ptr<internal::FamilyBase>> families_;
  std::vector<std::string> names_;  // every sample name taken
};

// count bounds: start, start * factor, start * factor^2, ... REQUIRES: start > 0, factor > 1,
// count >= 1.
std::vector<double> ExponentialBuckets(double start, double factor, int count);
// Latency bounds in seconds, 50 us to 30 s in 1-2.5-5 steps.
std::vector<double> DefaultLatencyBuckets();

// splitrans_build_info{version="<CMake project version>"} 1.
void AddBuildInfo(Registry* registry);

// A gRPC / absl status code as a label value: "OK", "RESOURCE_EXHAUSTED", ...; codes outside
// the known range: "UNKNOWN" (a peer's code never creates new series).
std::string CodeLabel(int code);

// A value as the text format writes it (Go's strconv 'g' shortest, as client_golang does):
// "1", "0.25", "5e-05", "1.5e+06", "+Inf", "-Inf", "NaN".
std::string FormatValue(double v);

struct MetricsServerOptions {
  int threads = 2;                    // connections served at once
  size_t max_queued_connections = 8;  // accepted connections waiting for a thread; accepting pauses beyond
  int read_timeout_ms = 5000;         // waiting for each read (request bytes, or the next request)
  int write_timeout_ms = 5000;        // waiting for each write
  // A connection is closed this long after it was accepted, whatever it does (keep-alive or a
  // slow drip of bytes cannot hold a thread for longer).
  int connection_deadline_ms = 10000;
  size_t max_request_bytes = 64 * 1024;  // read from one connection in all (headers included)
};

// Plain-HTTP endpoint: GET or HEAD /metrics -> 200 "text/plain; version=0.0.4; charset=utf-8"
// with registry->Serialize(); other paths 404; other methods on /metrics 405.
class MetricsServer {
 public:
  // listen_address: "host:port" or "[v6 address]:port"; port 0 picks a free one. registry is
  // borrowed: it (and whatever its callback gauges read) must outlive this server.
  // UNAVAILABLE "metrics: cannot listen on <address> ..." when it cannot be bound (in use, not a
  // local address); INVALID_ARGUMENT for an address that is not host:port.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen_address,
                                                              const Registry* registry,
                                                              const MetricsServerOptions& options = {});
  // Stops accepting, closes open connections and joins every thread.
  ~MetricsServer();
  int port() const { return port_; }

  struct Impl;

 private:
  MetricsServer() = default;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace splitrans::metrics

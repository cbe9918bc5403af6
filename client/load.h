// Load and soak driver for splitrans-edge (no CLI): keeps C requests in flight for N requests or
// S seconds, counts outcomes by status code, measures latency, and samples the resident memory
// of given processes (edge, cloud) while it runs.
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "client/eval.h"

namespace splitrans::client {

struct LoadOptions {
  std::string edge = "127.0.0.1:8001";
  ChannelSecurity security;
  InferSettings infer;
  std::string images = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";  // request inputs
  int concurrency = 8;       // requests in flight
  int64_t requests = 1000;   // stop after this many (0: no limit; then duration_s must be > 0)
  double duration_s = 0;     // stop after this long (0: no limit)
  int batch = 1;             // images per request
  int deadline_ms = 5000;    // per request
  std::vector<std::pair<std::string, int>> pids;  // name, pid: RSS sampled while running
  int sample_ms = 200;
  double warmup_fraction = 0.05;  // RSS "after warm-up" is the first sample past this share of the run
  std::string timeline;           // CSV file: start and end (Unix ms) and code of every request (empty: none)
  int reject_pause_ms = 0;        // after a RESOURCE_EXHAUSTED, wait this long before the next request
};

struct RssStats {
  std::string name;
  int pid = 0;
  int64_t warm_kib = 0, end_kib = 0, max_kib = 0;  // 0: not readable
  double growth() const { return warm_kib > 0 ? static_cast<double>(end_kib) / warm_kib - 1 : 0; }
};

struct LoadSummary {
  int64_t sent = 0, ok = 0;
  std::map<std::string, int64_t> errors;  // status code name -> count
  int64_t late = 0;                       // answered more than 100 ms after their deadline
  std::string first_error;
  double wall_s = 0;
  double ok_per_s = 0;       // successful requests per second
  double answered_per_s = 0; // all answers per second
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0;  // successful requests
  double max_any_ms = 0;     // any answer, errors included
  std::vector<RssStats> rss;

  std::string ToText() const;
  std::string ToJson() const;
};

absl::StatusOr<LoadSummary> RunLoad(const LoadOptions& options);

// Resident set size of a process in KiB from /proc/<pid>/status (0 if it cannot be read).
int64_t ReadRssKib(int pid);

}  // namespace splitrans::client

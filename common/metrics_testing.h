// Test helpers for the Prometheus endpoint (common/metrics.h): scrape it over HTTP, read the
// samples back, and run `promtool check metrics` (a required test dependency, installed by
// deploy/bootstrap.sh: a missing promtool fails the test, it does not skip it). GoogleTest only.
#pragma once

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <utility>

namespace splitrans::metrics::testing {

// GET /metrics from 127.0.0.1:port (a failed test and "" when it does not answer 200).
inline std::string Scrape(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(std::chrono::seconds(10));
  auto res = c.Get("/metrics");
  EXPECT_TRUE(res) << httplib::to_string(res.error());
  if (!res) return "";
  EXPECT_EQ(res->status, 200);
  return res->body;
}

// Every sample of an exposition: "name{labels}" as written -> value.
inline std::map<std::string, double> ParseSamples(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.rfind(' ');
    out[line.substr(0, sp)] = std::strtod(line.c_str() + sp + 1, nullptr);
  }
  return out;
}

// The sum of every sample whose "name{labels}" starts with prefix (e.g. all codes of a counter).
inline double SumOf(const std::map<std::string, double>& samples, const std::string& prefix) {
  double sum = 0;
  for (auto it = samples.lower_bound(prefix); it != samples.end() && it->first.compare(0, prefix.size(), prefix) == 0;
       ++it) {
    sum += it->second;
  }
  return sum;
}

inline std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "");
  for (std::string dir; std::getline(ss, dir, ':');) {
    const std::string p = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

// Runs `promtool check metrics` on text; returns its exit status and output (stdout + stderr).
inline std::pair<int, std::string> PromtoolCheck(const std::string& text) {
  const std::string promtool = FindOnPath("promtool");
  if (promtool.empty()) {
    ADD_FAILURE() << "promtool not found on PATH: it is a required test dependency (Debian package prometheus, "
                     "installed by deploy/bootstrap.sh)";
    return {-1, ""};
  }
  char file[] = "/tmp/metrics_check_XXXXXX";
  const int fd = ::mkstemp(file);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  ::close(fd);
  FILE* p = ::popen(("'" + promtool + "' check metrics < '" + file + "' 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t n; p && (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = p ? ::pclose(p) : -1;
  ::unlink(file);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace splitrans::metrics::testing

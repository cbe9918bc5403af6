// Shared spdlog setup for the binaries (stderr, one format), gRPC's own log lines routed through
// it, and a rate limiter for per-request log lines (thread-safe).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

namespace splitrans {

// The accepted --log-level values.
inline constexpr const char* kLogLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
bool IsLogLevel(const std::string& level);

// Logs to stderr as "<time> <name> <level> [<thread>] <message>" at level (one of kLogLevels;
// false and info for anything else), and routes gRPC's log lines through the same logger
// (prefixed "grpc:"; gRPC's verbosity follows level: debug and below -> gRPC debug, else error
// unless GRPC_VERBOSITY is set). Safe to call more than once.
bool SetupLogging(const std::string& level, const std::string& name);
// Sends gRPC's lines straight to stderr again (before the process exits: gRPC threads may
// still log while static objects, spdlog's among them, are destroyed).
void RestoreGrpcLogging();

// Allows `per_second` events per second, in bursts of up to that many (token bucket). Used to
// log failed requests without letting an overload flood the log: Allow() returns false once the
// budget is spent and counts what it refused; the next allowed line reports that count.
class LogRateLimiter {
 public:
  explicit LogRateLimiter(double per_second = 20);
  // True if a line may be logged now; *suppressed gets the number of refused lines since the
  // last allowed one (then resets).
  bool Allow(int64_t* suppressed);

 private:
  std::mutex mu_;
  const double rate_;
  double tokens_;
  int64_t last_us_ = 0;
  int64_t suppressed_ = 0;
};

}  // namespace splitrans

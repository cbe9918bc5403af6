#include "common/logging.h"

#include <grpc/support/log.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/clock.h"

namespace splitrans {

namespace {

// gRPC's log callback: one spdlog line per gRPC line, with its source location at debug.
void GrpcLog(gpr_log_func_args* args) {
  spdlog::level::level_enum level = spdlog::level::info;
  switch (args->severity) {
    case GPR_LOG_SEVERITY_DEBUG: level = spdlog::level::debug; break;
    case GPR_LOG_SEVERITY_INFO: level = spdlog::level::info; break;
    case GPR_LOG_SEVERITY_ERROR: level = spdlog::level::err; break;
  }
  const char* file = args->file ? std::strrchr(args->file, '/') : nullptr;
  file = file ? file + 1 : (args->file ? args->file : "?");
  spdlog::log(level, "grpc: {} ({}:{})", args->message ? args->message : "", file, args->line);
}

}  // namespace

bool IsLogLevel(const std::string& level) {
  return std::find(std::begin(kLogLevels), std::end(kLogLevels), level) != std::end(kLogLevels);
}

bool SetupLogging(const std::string& level, const std::string& name) {
  auto logger = spdlog::get(name);
  if (!logger) logger = spdlog::stderr_color_mt(name);
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %n %^%l%$ [%t] %v");
  const bool ok = IsLogLevel(level);
  const auto lvl = ok ? spdlog::level::from_str(level) : spdlog::level::info;
  spdlog::set_level(lvl);
  spdlog::flush_on(spdlog::level::warn);
  gpr_set_log_function(GrpcLog);
  if (std::getenv("GRPC_VERBOSITY") == nullptr) {
    gpr_set_log_verbosity(lvl <= spdlog::level::debug ? GPR_LOG_SEVERITY_DEBUG : GPR_LOG_SEVERITY_ERROR);
  }
  return ok;
}

namespace {
// What gRPC's lines go to once spdlog may be gone: plain stderr.
void GrpcLogToStderr(gpr_log_func_args* args) {
  std::fprintf(stderr, "grpc %s: %s (%s:%d)\n", gpr_log_severity_string(args->severity),
               args->message ? args->message : "", args->file ? args->file : "?", args->line);
}
}  // namespace

void RestoreGrpcLogging() { gpr_set_log_function(GrpcLogToStderr); }

LogRateLimiter::LogRateLimiter(double per_second)
    : rate_(per_second > 0 ? per_second : 1), tokens_(rate_) {}

bool LogRateLimiter::Allow(int64_t* suppressed) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = NowMicros();
  if (last_us_ != 0) tokens_ = std::min(rate_, tokens_ + (now - last_us_) * 1e-6 * rate_);
  last_us_ = now;
  if (tokens_ < 1) {
    ++suppressed_;
    return false;
  }
  tokens_ -= 1;
  *suppressed = suppressed_;
  suppressed_ = 0;
  return true;
}

}  // namespace splitrans

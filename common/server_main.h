// What a server binary does once its flags are parsed, shared by splitrans-edge and
// splitrans-cloud: logging, Create(), Start(), wait for SIGINT/SIGTERM, graceful shutdown.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

#include "common/logging.h"
#include "common/signals.h"

namespace splitrans {

// Runs a Server (static Create(options) -> absl::StatusOr<std::unique_ptr<Server>>, Start(),
// Shutdown(grace_ms), Wait()) until SIGINT or SIGTERM; returns main()'s exit code. name ("edge",
// "cloud") names the logger and prefixes the log lines.
// REQUIRES: called from main() before any thread is created.
template <typename Server, typename Options>
int ServeUntilSignal(const Options& options, const std::string& name,
                     const std::string& log_level, int grace_ms) {
  BlockTerminationSignals();
  SetupLogging(log_level, name);
  auto server = Server::Create(options);
  if (!server.ok()) {
    spdlog::critical("{}", server.status().ToString());
    return 1;
  }
  if (auto st = (*server)->Start(); !st.ok()) {
    spdlog::critical("{}", st.ToString());
    return 1;
  }
  int sig = WaitForTerminationSignal();
  spdlog::info("{}: signal {}, shutting down", name, sig);
  (*server)->Shutdown(grace_ms);
  (*server)->Wait();
  return 0;
}

}  // namespace splitrans

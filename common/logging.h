// Shared spdlog setup for the binaries (stderr, one format).
#pragma once

#include <string>

namespace splitrans {

// level: trace|debug|info|warn|error|critical|off. Returns false for an unknown level (then info).
bool SetupLogging(const std::string& level, const std::string& name);

}  // namespace splitrans

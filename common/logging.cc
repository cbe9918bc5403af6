#include "common/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace splitrans {

bool SetupLogging(const std::string& level, const std::string& name) {
  auto logger = spdlog::stderr_color_mt(name);
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %n %^%l%$ [%t] %v");
  auto lvl = spdlog::level::from_str(level);
  bool ok = true;
  if (lvl == spdlog::level::off && level != "off") {
    lvl = spdlog::level::info;
    ok = false;
  }
  spdlog::set_level(lvl);
  spdlog::flush_on(spdlog::level::warn);
  return ok;
}

}  // namespace splitrans

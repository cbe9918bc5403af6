// Host SIMD detection and the process-wide cap (see cpu_features.h).
#include "codec/cpu_features.h"

#include <atomic>
#include <cstdlib>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace splitrans::codec {
namespace {

SimdLevel DetectHost() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("sse4.2")) return SimdLevel::kScalar;
  // __builtin_cpu_supports("avx2") also checks that the OS saves the YMM state (XGETBV), and the
  // AVX-512 bits that it saves the ZMM and mask state. F16C has no __builtin_cpu_supports name
  // in every compiler, hence cpuid leaf 1.
  unsigned a, b, c, d;
  const bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
  if (!__builtin_cpu_supports("avx2") || !f16c) return SimdLevel::kSse42;
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
      !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("popcnt")) {
    return SimdLevel::kAvx2;
  }
  return SimdLevel::kAvx512;
#else
  return SimdLevel::kScalar;
#endif
}

struct State {
  SimdLevel host = SimdLevel::kScalar;
  Status env;  // SPLITRANS_SIMD's verdict
  std::atomic<uint8_t> cap{static_cast<uint8_t>(kMaxSimdLevel)};

  State() : host(DetectHost()) {
    const char* v = std::getenv("SPLITRANS_SIMD");
    if (v == nullptr || *v == '\0') return;
    SimdLevel level;
    if (ParseSimdLevel(v, &level)) {
      cap.store(static_cast<uint8_t>(level), std::memory_order_relaxed);
    } else {
      env = InvalidArgument(std::string("environment variable SPLITRANS_SIMD=\"") + v +
                            "\" is not one of scalar, sse42, avx2, avx512, native (unset it for native)");
    }
  }
};

State& GetState() {
  static State state;  // thread-safe initialization; afterwards one guard check per call
  return state;
}

}  // namespace

SimdLevel HostSimdLevel() { return GetState().host; }

SimdLevel SimdCap() { return static_cast<SimdLevel>(GetState().cap.load(std::memory_order_relaxed)); }

SimdLevel SetSimdCap(SimdLevel cap) {
  return static_cast<SimdLevel>(GetState().cap.exchange(static_cast<uint8_t>(cap), std::memory_order_relaxed));
}

SimdLevel ActiveSimdLevel() {
  const State& s = GetState();
  const uint8_t cap = s.cap.load(std::memory_order_relaxed);
  return cap < static_cast<uint8_t>(s.host) ? static_cast<SimdLevel>(cap) : s.host;
}

const Status& SimdEnvironmentStatus() { return GetState().env; }

const char* SimdLevelName(SimdLevel level) {
  switch (level) {
    case SimdLevel::kScalar: return "scalar";
    case SimdLevel::kSse42: return "sse42";
    case SimdLevel::kAvx2: return "avx2";
    case SimdLevel::kAvx512: return "avx512";
  }
  return "unknown";
}

bool ParseSimdLevel(const std::string& s, SimdLevel* level) {
  for (SimdLevel l : {SimdLevel::kScalar, SimdLevel::kSse42, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    if (s == SimdLevelName(l)) {
      *level = l;
      return true;
    }
  }
  if (s == "native") {
    *level = kMaxSimdLevel;
    return true;
  }
  return false;
}

}  // namespace splitrans::codec

// Monotonic microsecond timing helpers.
#pragma once

#include <chrono>
#include <cstdint>

namespace splitrans {

inline int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class Stopwatch {
 public:
  Stopwatch() : start_(NowMicros()) {}
  // Microseconds since construction or the last Lap(); restarts the lap.
  int64_t Lap() {
    int64_t now = NowMicros();
    int64_t d = now - start_;
    start_ = now;
    return d;
  }

 private:
  int64_t start_;
};

}  // namespace splitrans

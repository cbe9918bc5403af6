// Test helpers that force the codec's SIMD level (codec/cpu_features.h): a scoped cap and a
// fixture parameterized over every level, which skips (GTEST_SKIP) the levels the host lacks.
#pragma once

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "codec/cpu_features.h"

namespace splitrans::codec {

// Sets the cap for its lifetime, then restores the previous one.
class ScopedSimdCap {
 public:
  explicit ScopedSimdCap(SimdLevel cap) : previous_(SetSimdCap(cap)) {}
  ~ScopedSimdCap() { SetSimdCap(previous_); }
  ScopedSimdCap(const ScopedSimdCap&) = delete;
  ScopedSimdCap& operator=(const ScopedSimdCap&) = delete;

 private:
  SimdLevel previous_;
};

// TEST_P(SimdLevelTest-derived fixture, ...) runs the body with the cap at GetParam(); the
// reference results come from the scalar path (Scalar()). Instantiate with
// INSTANTIATE_TEST_SUITE_P(Levels, Fixture, ::testing::ValuesIn(AllSimdLevels()), SimdLevelParamName).
class SimdLevelTest : public ::testing::TestWithParam<SimdLevel> {
 protected:
  void SetUp() override {
    if (HostSimdLevel() < GetParam()) {
      GTEST_SKIP() << "this CPU lacks " << SimdLevelName(GetParam()) << " (host level "
                   << SimdLevelName(HostSimdLevel()) << "); the other levels are tested";
    }
    previous_ = SetSimdCap(GetParam());
    capped_ = true;
    ASSERT_EQ(ActiveSimdLevel(), GetParam());
  }
  void TearDown() override {
    if (capped_) SetSimdCap(previous_);
  }

  // Runs f with the cap at kScalar, then back at the level under test.
  template <typename F>
  static auto Scalar(F&& f) {
    const SimdLevel level = SetSimdCap(SimdLevel::kScalar);
    struct Restore {
      SimdLevel l;
      ~Restore() { SetSimdCap(l); }
    } restore{level};
    return f();
  }

 private:
  SimdLevel previous_ = kMaxSimdLevel;
  bool capped_ = false;  // a skipped level leaves the cap alone
};

// gtest prints a level by name.
inline void PrintTo(SimdLevel level, std::ostream* os) { *os << SimdLevelName(level); }

inline std::vector<SimdLevel> AllSimdLevels() {
  return {SimdLevel::kScalar, SimdLevel::kSse42, SimdLevel::kAvx2, SimdLevel::kAvx512};
}

inline std::string SimdLevelParamName(const ::testing::TestParamInfo<SimdLevel>& info) {
  return SimdLevelName(info.param);
}

}  // namespace splitrans::codec

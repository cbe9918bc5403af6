// Which instruction sets the codec's CPU kernels may use: the host's (detected once), lowered by
// a process-wide cap. Every SIMD dispatch site (quantizer, histogram, rANS blocks, context model,
// CRC32C, float16 input) asks ActiveSimdLevel() per call, so the cap takes effect on the next call.
// Thread-safety: all functions may be called from any thread (the cap is an atomic), but
// SetSimdCap is meant for tests and start-up: a call running concurrently may use either level.
#pragma once

#include <cstdint>
#include <string>

#include "codec/status.h"

namespace splitrans::codec {

// Cumulative levels: each includes the ones below it. Every level produces the same bytes and
// values as kScalar (the tests in simd_test.cc force each one).
enum class SimdLevel : uint8_t {
  kScalar = 0,  // portable C++ only (table CRC32C, scalar quantizer, scalar rANS)
  kSse42 = 1,   // + the SSE4.2 crc32 instruction
  kAvx2 = 2,    // + AVX2 and F16C: quantizer range/quantize/dequantize, context model, float16 input
  kAvx512 = 3,  // + AVX-512 F/BW/VL (and POPCNT): quantizer, Q <= 4 dequantize and histogram, rANS blocks
};
constexpr SimdLevel kMaxSimdLevel = SimdLevel::kAvx512;

// The highest level the CPU (and OS) supports; kScalar off x86-64. Detected once.
SimdLevel HostSimdLevel();

// The current cap: kMaxSimdLevel ("native") unless lowered by SPLITRANS_SIMD or SetSimdCap.
SimdLevel SimdCap();

// Sets the cap and returns the previous one (tests restore it). A cap above the host's level
// has no effect beyond the host's: the codec never uses what the CPU lacks. Replaces the cap
// read from SPLITRANS_SIMD (but not SimdEnvironmentStatus's verdict on it).
SimdLevel SetSimdCap(SimdLevel cap);

// min(HostSimdLevel(), SimdCap()): what the kernels use now. One atomic load.
SimdLevel ActiveSimdLevel();

// The environment variable SPLITRANS_SIMD, read once at the first call of any function above:
// scalar | sse42 | avx2 | avx512 | native (unset or empty: native). An unrecognized value is
// refused: this returns INVALID_ARGUMENT naming it and the accepted values, and so do the CPU
// codec's entry points (Encode, Encoder::PaperCandidates, Decode, DecodeInto, PeekShape,
// Inspect); the kernels themselves, which cannot fail, then run uncapped. OK otherwise.
const Status& SimdEnvironmentStatus();

// "scalar", "sse42", "avx2", "avx512".
const char* SimdLevelName(SimdLevel level);
// Parses a SPLITRANS_SIMD value: the names above, or "native" (kMaxSimdLevel). False otherwise.
bool ParseSimdLevel(const std::string& s, SimdLevel* level);

}  // namespace splitrans::codec

// The codec API's small pieces: status and enum names, parsing of mode and quantizer names,
// float16 conversion. The Encoder is in encoder.cc, the Decoder, PeekShape and Inspect in
// decoder.cc.
#include "codec/codec.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "codec/cpu_features.h"

namespace splitrans::codec {

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "OK";
    case ErrorCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case ErrorCode::kTruncated: return "TRUNCATED";
    case ErrorCode::kBadMagic: return "BAD_MAGIC";
    case ErrorCode::kUnsupportedVersion: return "UNSUPPORTED_VERSION";
    case ErrorCode::kReservedBits: return "RESERVED_BITS";
    case ErrorCode::kBadHeaderField: return "BAD_HEADER_FIELD";
    case ErrorCode::kLimitExceeded: return "LIMIT_EXCEEDED";
    case ErrorCode::kChecksumMismatch: return "CHECKSUM_MISMATCH";
    case ErrorCode::kTrailingBytes: return "TRAILING_BYTES";
    case ErrorCode::kCorruptPayload: return "CORRUPT_PAYLOAD";
    case ErrorCode::kInternal: return "INTERNAL";
    case ErrorCode::kUnavailable: return "UNAVAILABLE";
  }
  return "UNKNOWN";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(ErrorCodeName(code_)) + ": " + message_;
}

const char* LayoutName(Layout layout) {
  switch (layout) {
    case Layout::kConstant: return "constant";
    case Layout::kDense: return "dense";
    case Layout::kSparse: return "sparse";
    case Layout::kPaper: return "paper";
    case Layout::kContext: return "context";
  }
  return "unknown";
}

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kAuto: return "auto";
    case Mode::kPaper: return "paper";
    case Mode::kDense: return "dense";
    case Mode::kSparse: return "sparse";
    case Mode::kContext: return "context";
  }
  return "unknown";
}

namespace {
constexpr Mode kModes[] = {Mode::kAuto, Mode::kPaper, Mode::kDense, Mode::kSparse, Mode::kContext};
}  // namespace

bool ParseMode(const std::string& s, Mode* mode) {
  for (Mode m : kModes) {
    if (s == ModeName(m)) {
      *mode = m;
      return true;
    }
  }
  return false;
}

std::vector<std::string> ModeNames() {
  std::vector<std::string> names;
  for (Mode m : kModes) names.push_back(ModeName(m));
  return names;
}

const char* QuantizerName(Quantizer quantizer) {
  switch (quantizer) {
    case Quantizer::kMinMax: return "aiq";
    case Quantizer::kClip: return "clip";
  }
  return "unknown";
}

bool ParseQuantizer(const std::string& s, Quantizer* quantizer) {
  for (Quantizer x : {Quantizer::kMinMax, Quantizer::kClip}) {
    if (s == QuantizerName(x)) {
      *quantizer = x;
      return true;
    }
  }
  return false;
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while (!(mant & 0x400));
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0);  // Inf/NaN
  if (absx >= 0x477ff000u) return sign | 0x7c00;  // rounds to >= 65520: overflow to Inf
  if (absx < 0x38800000u) {  // subnormal half (or zero)
    if (absx < 0x33000000u) return sign;
    const uint32_t e = absx >> 23;
    const uint32_t m = (absx & 0x7fffff) | 0x800000;
    const uint32_t shift = 126 - e;  // 14..24
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;
    return sign | static_cast<uint16_t>(r);
  }
  uint32_t r = ((absx - 0x38000000u) >> 13);
  const uint32_t rem = absx & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) ++r;
  return sign | static_cast<uint16_t>(r);
}

// float16 -> float32 for a whole tensor: F16C when ActiveSimdLevel() allows (the conversion is exact, as
// HalfToFloat's; NaN payloads may differ, but the encoder rejects NaN either way).
#if defined(__x86_64__)
__attribute__((target("avx,f16c"))) static void HalvesToFloatsF16c(const uint16_t* h, uint64_t n, float* out) {
  uint64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(v));
  }
  for (; i < n; ++i) out[i] = HalfToFloat(h[i]);
}
#endif

void HalvesToFloats(const uint16_t* h, uint64_t n, float* out) {
#if defined(__x86_64__)
  if (ActiveSimdLevel() >= SimdLevel::kAvx2) return HalvesToFloatsF16c(h, n, out);  // the level includes F16C
#endif
  for (uint64_t i = 0; i < n; ++i) out[i] = HalfToFloat(h[i]);
}

// ---------------------------------------------------------------------------------------------
// Encoder

}  // namespace splitrans::codec

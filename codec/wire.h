// The wire format's one source of truth (codec/FORMAT.md, version 1): the fixed header's layout,
// its field codes (dtype, layout) and limits (rank, q), the stream kinds and rANS parameter
// ranges, and the one writer of the fixed header and shape, compiled for the host and for the
// CUDA encoder alike. The CPU encoder and decoder, the CUDA encoder and planner, Inspect and the
// services' header peeks (common/feature_codec.cc) all read these; nothing restates them.
// Little-endian on the wire. Byte readers and writers: codec/byte_io.h. Validation of a header
// against FORMAT.md's order: codec/header.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "codec/host_device.h"

namespace splitrans::codec {

constexpr uint8_t kMagic[4] = {'S', 'R', 'N', 'S'};
// The magic as one little-endian word, for device code (which cannot index kMagic).
constexpr uint32_t kMagicWord = uint32_t{'S'} | uint32_t{'R'} << 8 | uint32_t{'N'} << 16 | uint32_t{'S'} << 24;
static_assert((kMagicWord & 0xFF) == kMagic[0] && (kMagicWord >> 8 & 0xFF) == kMagic[1] &&
                  (kMagicWord >> 16 & 0xFF) == kMagic[2] && (kMagicWord >> 24) == kMagic[3],
              "kMagicWord spells kMagic");
constexpr uint8_t kFormatVersion = 1;
constexpr size_t kFixedHeaderBytes = 24;
constexpr size_t kChecksumBytes = 4;

// Header field codes: the public enums' values are the bytes on the wire.
enum class DType : uint8_t { kFloat32 = 1, kFloat16 = 2 };

// How the quantized symbols are represented in the bitstream (stored in the header).
enum class Layout : uint8_t {
  kConstant = 0,  // every element has the same value (also 0-element tensors)
  kDense = 1,     // q coded with one order-0 table: the fastest layout
  kSparse = 2,    // modified CSR (v, c, r) with one table per stream
  kPaper = 3,     // the paper's method: D = v ++ c ++ r with one merged table
  kContext = 4,   // adaptive binary context model over 2-D maps: the smallest layout
};
constexpr uint8_t kMaxLayoutCode = static_cast<uint8_t>(Layout::kContext);

constexpr int kMaxRank = 8;  // header rank 1..8
constexpr int kMinQ = 1;     // header q 1..8
constexpr int kMaxQ = 8;

// Fixed header, byte-for-byte as on the wire (little-endian hosts; see FORMAT.md).
#pragma pack(push, 1)
struct FixedHeader {
  uint8_t magic[4];
  uint8_t version;
  uint8_t flags;       // reserved, must be 0 in v1
  uint8_t dtype;       // DType
  uint8_t rank;        // 1..kMaxRank
  uint8_t q;           // kMinQ..kMaxQ
  uint8_t layout;      // Layout
  uint16_t reserved;   // must be 0
  float scale;         // AIQ scale s (> 0 and finite; 0 for the constant layout)
  int32_t zero_point;  // AIQ zero point z
  uint32_t body_size;  // bytes from the end of this header to the checksum
};
#pragma pack(pop)
static_assert(sizeof(FixedHeader) == kFixedHeaderBytes, "FixedHeader must match FORMAT.md");
static_assert(offsetof(FixedHeader, version) == 4 && offsetof(FixedHeader, dtype) == 6 &&
                  offsetof(FixedHeader, rank) == 7 && offsetof(FixedHeader, q) == 8 &&
                  offsetof(FixedHeader, layout) == 9 && offsetof(FixedHeader, scale) == 12 &&
                  offsetof(FixedHeader, zero_point) == 16 && offsetof(FixedHeader, body_size) == 20,
              "FixedHeader offsets must match FORMAT.md");

// Stream kinds (FORMAT.md "Streams").
enum class StreamKind : uint8_t { kEmpty = 0, kConstant = 1, kRans = 2 };

// rANS stream parameters accepted by the decoder.
constexpr int kMinProbBits = 8;
constexpr int kMaxProbBits = 15;
constexpr int kMaxLanesLog2 = 5;     // up to 32 interleaved states per block
constexpr int kMinBlockLog2 = 8;
constexpr int kMaxBlockLog2 = 20;
constexpr uint32_t kMaxAlphabet = 4096;

SPLITRANS_HD uint32_t WireFloatBits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
#endif
}

SPLITRANS_HD void WireU32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
  p[2] = static_cast<uint8_t>(v >> 16);
  p[3] = static_cast<uint8_t>(v >> 24);
}

// Writes the fixed header (flags and reserved 0) and the shape, as the CPU and CUDA encoders
// do; returns kFixedHeaderBytes + 4 * rank. body_size: bytes from the end of the fixed header
// to the checksum (the CPU encoder patches it once the body is written). REQUIRES: out holds
// kFixedHeaderBytes + 4 * rank bytes.
SPLITRANS_HD uint32_t WriteHeaderAndShape(uint8_t* out, uint32_t dtype, uint32_t rank, uint32_t q, uint32_t layout,
                                          float scale, int32_t zero_point, uint32_t body_size,
                                          const uint32_t* shape) {
  WireU32(out, kMagicWord);
  out[4] = kFormatVersion;
  out[5] = 0;
  out[6] = static_cast<uint8_t>(dtype);
  out[7] = static_cast<uint8_t>(rank);
  out[8] = static_cast<uint8_t>(q);
  out[9] = static_cast<uint8_t>(layout);
  out[10] = 0;
  out[11] = 0;
  WireU32(out + 12, WireFloatBits(scale));
  WireU32(out + 16, static_cast<uint32_t>(zero_point));
  WireU32(out + 20, body_size);
  for (uint32_t i = 0; i < rank; ++i) WireU32(out + kFixedHeaderBytes + 4 * i, shape[i]);
  return static_cast<uint32_t>(kFixedHeaderBytes) + 4 * rank;
}

}  // namespace splitrans::codec

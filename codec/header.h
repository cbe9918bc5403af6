// The first validation steps of FORMAT.md "Decoding" and the one type that carries their result,
// shared by the CPU Decoder, Inspect and the CUDA decoder's host-side plan: fixed header,
// declared size, checksum, trailing bytes, shape.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "codec/codec.h"
#include "codec/status.h"
#include "codec/wire.h"

namespace splitrans::codec {

// A checksum computed elsewhere (on the GPU, for device-resident bitstreams).
struct ExternalCrc {
  uint32_t computed = 0;  // CRC32C of [0, 24 + body_size)
  uint32_t stored = 0;    // the 4 bytes at 24 + body_size
};

// A header that passed ValidateHeader: every field in range, the checksum right, the shape
// within the limits. Offsets are from the start of the bitstream.
struct ValidatedHeader {
  FixedHeader h{};
  std::vector<int64_t> shape;
  uint64_t elements = 0;   // product of shape (<= limits.max_elements)
  size_t body_offset = 0;  // first byte after the shape
  size_t body_end = 0;     // 24 + body_size: where the checksum starts

  size_t body_bytes() const { return body_end - body_offset; }  // the layout body
  Layout layout() const { return static_cast<Layout>(h.layout); }
};

// Validates in FORMAT.md order: length >= header, magic, version, reserved bits, dtype, rank, q,
// layout, scale, declared size, checksum, trailing bytes, then reads the shape and checks it
// against limits (max_elements, max_shape, then accept_shape). data: host, all size bytes
// readable, or, when crc (nullable) is given, at least min(size, 24 + 4 * 8) bytes (the checksum
// is then taken from crc).
// Errors: TRUNCATED, BAD_MAGIC, UNSUPPORTED_VERSION, RESERVED_BITS, BAD_HEADER_FIELD,
// CHECKSUM_MISMATCH, TRAILING_BYTES, LIMIT_EXCEEDED, or what accept_shape returns.
Status ValidateHeader(const uint8_t* data, size_t size, const DecodeLimits& limits, const ExternalCrc* crc,
                      ValidatedHeader* out);

}  // namespace splitrans::codec

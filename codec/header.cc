// Steps 1-9 of FORMAT.md "Decoding and validation order" (see header.h).
#include "codec/header.h"

#include <cmath>
#include <cstring>
#include <string>

#include "codec/byte_io.h"
#include "codec/codec.h"
#include "codec/crc32c.h"

namespace splitrans::codec {

namespace {

// "[3, 5, 7]"
std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

Status ValidateHeader(const uint8_t* data, size_t size, const DecodeLimits& limits, const ExternalCrc* crc,
                      ValidatedHeader* out) {
  if (data == nullptr && size > 0) return InvalidArgument("null input");
  if (size < kFixedHeaderBytes) {
    return Truncated("input has " + std::to_string(size) + " bytes, the header alone needs " +
                     std::to_string(kFixedHeaderBytes));
  }
  std::memcpy(&out->h, data, sizeof(FixedHeader));
  const FixedHeader& h = out->h;
  if (std::memcmp(h.magic, kMagic, 4) != 0) return Status(ErrorCode::kBadMagic, "not a splitrans bitstream (bad magic)");
  if (h.version != kFormatVersion) {
    return Status(ErrorCode::kUnsupportedVersion,
                  "bitstream version " + std::to_string(h.version) + " is not supported (this build reads " +
                      std::to_string(kFormatVersion) + ")");
  }
  if (h.flags != 0 || h.reserved != 0) return Status(ErrorCode::kReservedBits, "reserved header bits are set");
  auto bad = [](std::string m) { return Status(ErrorCode::kBadHeaderField, std::move(m)); };
  if (h.dtype != static_cast<uint8_t>(DType::kFloat32) && h.dtype != static_cast<uint8_t>(DType::kFloat16)) {
    return bad("dtype " + std::to_string(h.dtype) + " unknown");
  }
  if (h.rank < 1 || h.rank > kMaxRank) {
    return bad("rank " + std::to_string(h.rank) + " out of range 1.." + std::to_string(kMaxRank));
  }
  if (h.q < kMinQ || h.q > kMaxQ) {
    return bad("q " + std::to_string(h.q) + " out of range " + std::to_string(kMinQ) + ".." + std::to_string(kMaxQ));
  }
  if (h.layout > kMaxLayoutCode) return bad("layout " + std::to_string(h.layout) + " unknown");
  if (h.layout == static_cast<uint8_t>(Layout::kConstant)) {
    if (h.scale != 0.f || h.zero_point != 0) return bad("constant layout with a nonzero scale or zero point");
  } else if (!(h.scale > 0.f) || !std::isfinite(h.scale)) {
    return bad("scale must be finite and > 0");
  }
  const uint64_t need = kFixedHeaderBytes + uint64_t{h.body_size} + kChecksumBytes;
  if (size < need) {
    return Truncated("bitstream declares " + std::to_string(need) + " bytes, input has " + std::to_string(size));
  }
  uint32_t stored, computed;
  if (crc != nullptr) {
    stored = crc->stored;
    computed = crc->computed;
  } else {
    std::memcpy(&stored, data + kFixedHeaderBytes + h.body_size, 4);
    computed = Crc32c(data, kFixedHeaderBytes + h.body_size);
  }
  if (computed != stored) return Status(ErrorCode::kChecksumMismatch, "CRC32C mismatch: the bitstream is corrupt");
  if (size > need) {
    return Status(ErrorCode::kTrailingBytes, std::to_string(size - need) + " bytes follow the checksum");
  }
  ByteReader rd(data + kFixedHeaderBytes, h.body_size);
  out->shape.resize(h.rank);
  const uint64_t max_elements = limits.max_elements;
  uint64_t t = 1;
  for (int i = 0; i < h.rank; ++i) {
    uint32_t d;
    SPLITRANS_RETURN_IF_ERROR(rd.U32(&d, "shape"));
    out->shape[i] = d;
    // Every prefix product is checked (t * d > max_elements, without overflow).
    if (d != 0 && t > max_elements / d) {
      return Status(ErrorCode::kLimitExceeded,
                    "tensor has more than max_elements = " + std::to_string(max_elements) + " elements");
    }
    t *= d;
  }
  const std::vector<int64_t>& max_shape = limits.max_shape;
  if (!max_shape.empty()) {
    bool fits = max_shape.size() == out->shape.size();
    for (size_t i = 0; fits && i < max_shape.size(); ++i) fits = out->shape[i] <= max_shape[i];
    if (!fits) {
      return Status(ErrorCode::kLimitExceeded,
                    "shape " + ShapeText(out->shape) + " does not fit max_shape " + ShapeText(max_shape) +
                        (max_shape.size() != out->shape.size() ? " (rank " + std::to_string(out->shape.size()) +
                                                                     ", allowed " + std::to_string(max_shape.size()) + ")"
                                                               : ""));
    }
  }
  if (limits.accept_shape) SPLITRANS_RETURN_IF_ERROR(limits.accept_shape(out->shape));
  out->elements = t;
  out->body_offset = kFixedHeaderBytes + 4 * size_t{h.rank};
  out->body_end = kFixedHeaderBytes + h.body_size;
  return Status::Ok();
}

}  // namespace splitrans::codec

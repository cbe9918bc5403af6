// Little-endian byte writer and bounds-checked reader for the bitstream's fields (varints as
// FORMAT.md "Conventions" defines them). Every read fails cleanly past the end, with the name
// of the field in the message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "codec/status.h"

namespace splitrans::codec {

// Little-endian byte writer appending to a vector.
class ByteWriter {
 public:
  explicit ByteWriter(std::vector<uint8_t>* out) : out_(out) {}
  void U8(uint8_t v) { out_->push_back(v); }
  void U16(uint16_t v) { Raw(&v, 2); }
  void U32(uint32_t v) { Raw(&v, 4); }
  void F32(float v) { Raw(&v, 4); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_->push_back(static_cast<uint8_t>(v | 0x80));
      v >>= 7;
    }
    out_->push_back(static_cast<uint8_t>(v));
  }
  void Raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out_->insert(out_->end(), b, b + n);
  }
  size_t size() const { return out_->size(); }

 private:
  std::vector<uint8_t>* out_;
};

// Bounds-checked little-endian reader. Every read fails cleanly past the end.
class ByteReader {
 public:
  ByteReader(const uint8_t* p, size_t n) : p_(p), end_(p + n) {}
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  const uint8_t* pos() const { return p_; }

  Status U8(uint8_t* v, const char* what) { return Raw(v, 1, what); }
  Status U16(uint16_t* v, const char* what) { return Raw(v, 2, what); }
  Status U32(uint32_t* v, const char* what) { return Raw(v, 4, what); }
  Status F32(float* v, const char* what) { return Raw(v, 4, what); }
  // LEB128, at most 5 bytes, value <= max.
  Status Varint(uint32_t* v, uint32_t max, const char* what) {
    uint64_t x = 0;
    for (int i = 0; i < 5; ++i) {
      if (p_ == end_) return Truncated(std::string("truncated in ") + what);
      uint8_t b = *p_++;
      x |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
      if (!(b & 0x80)) {
        if (x > max) {
          return Status(ErrorCode::kCorruptPayload,
                        std::string(what) + " = " + std::to_string(x) + " exceeds " + std::to_string(max));
        }
        *v = static_cast<uint32_t>(x);
        return Status::Ok();
      }
    }
    return Corrupt(std::string("overlong varint in ") + what);
  }
  Status Raw(void* dst, size_t n, const char* what) {
    if (remaining() < n) {
      return Truncated(std::string(what) + " needs " + std::to_string(n) + " bytes, " +
                       std::to_string(remaining()) + " remain");
    }
    std::memcpy(dst, p_, n);
    p_ += n;
    return Status::Ok();
  }
  // Returns a view of the next n bytes.
  Status Span(const uint8_t** dst, size_t n, const char* what) {
    if (remaining() < n) {
      return Truncated(std::string(what) + " needs " + std::to_string(n) + " bytes, " +
                       std::to_string(remaining()) + " remain");
    }
    *dst = p_;
    p_ += n;
    return Status::Ok();
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

}  // namespace splitrans::codec

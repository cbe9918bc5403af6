// Wire format v1 constants and the fixed header struct that mirrors codec/FORMAT.md.
// All multi-byte fields are little-endian. Read FORMAT.md first.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "codec/status.h"

namespace splitrans::codec {

constexpr uint8_t kMagic[4] = {'S', 'R', 'N', 'S'};
constexpr uint8_t kFormatVersion = 1;
constexpr size_t kFixedHeaderBytes = 24;
constexpr size_t kChecksumBytes = 4;

// Fixed header, byte-for-byte as on the wire (little-endian hosts; see FORMAT.md).
#pragma pack(push, 1)
struct FixedHeader {
  uint8_t magic[4];
  uint8_t version;
  uint8_t flags;       // reserved, must be 0 in v1
  uint8_t dtype;       // 1 = float32, 2 = float16
  uint8_t rank;        // 1..8
  uint8_t q;           // 1..8
  uint8_t layout;      // Layout
  uint16_t reserved;   // must be 0
  float scale;         // AIQ scale s (> 0 and finite; 0 for the constant layout)
  int32_t zero_point;  // AIQ zero point z
  uint32_t body_size;  // bytes from the end of this header to the checksum
};
#pragma pack(pop)
static_assert(sizeof(FixedHeader) == kFixedHeaderBytes, "FixedHeader must match FORMAT.md");

// Stream kinds (FORMAT.md "Streams").
enum class StreamKind : uint8_t { kEmpty = 0, kConstant = 1, kRans = 2 };

// rANS stream parameters accepted by the decoder.
constexpr int kMinProbBits = 8;
constexpr int kMaxProbBits = 15;
constexpr int kMaxLanesLog2 = 5;     // up to 32 interleaved states per block
constexpr int kMinBlockLog2 = 8;
constexpr int kMaxBlockLog2 = 20;
constexpr uint32_t kMaxAlphabet = 4096;

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

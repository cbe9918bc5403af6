// Status and Result<T>: the codec's error type. The codec depends on nothing but the C++
// standard library (it must build on bare GPU machines), so it does not use absl::Status;
// services translate with one function (common/status_util.h).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace splitrans::codec {

// Stable error codes: the numeric values are part of the public contract (logged, returned
// over the wire by the services, asserted by tests). Never renumber; only append.
enum class ErrorCode : uint8_t {
  kOk = 0,
  kInvalidArgument = 1,     // caller error: bad options, bad shape, NaN/Inf input
  kTruncated = 2,           // fewer bytes than the header or a declared size needs
  kBadMagic = 3,            // not a splitrans bitstream
  kUnsupportedVersion = 4,  // a version this build does not read
  kReservedBits = 5,        // a reserved field or flag is not zero
  kBadHeaderField = 6,      // a header field is out of its valid range
  kLimitExceeded = 7,       // a declared size exceeds the decoder's limits
  kChecksumMismatch = 8,    // CRC32C over header and body does not match
  kTrailingBytes = 9,       // bytes after the checksum
  kCorruptPayload = 10,     // the body is inconsistent (tables, block sizes, coded data)
  kInternal = 11,           // a bug: please report
  kUnavailable = 12,        // e.g. no GPU
};

// Short stable name of a code ("TRUNCATED", ...).
const char* ErrorCodeName(ErrorCode code);

class Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return Status(); }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "TRUNCATED: body needs 120 bytes, 64 remain"
  std::string ToString() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return Status(ErrorCode::kInvalidArgument, std::move(m)); }
inline Status Truncated(std::string m) { return Status(ErrorCode::kTruncated, std::move(m)); }
inline Status Corrupt(std::string m) { return Status(ErrorCode::kCorruptPayload, std::move(m)); }

// A value or an error (REQUIRES: the error status is not ok).
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  const Status& status() const {
    static const Status kOkStatus;
    return ok() ? kOkStatus : std::get<1>(v_);
  }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() & { return std::get<0>(v_); }

 private:
  std::variant<T, Status> v_;
};

#define SPLITRANS_RETURN_IF_ERROR(expr)        \
  do {                                         \
    ::splitrans::codec::Status _st = (expr);   \
    if (!_st.ok()) return _st;                 \
  } while (0)

}  // namespace splitrans::codec

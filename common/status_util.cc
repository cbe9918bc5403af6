#include "common/status_util.h"

#include <string>

namespace splitrans {

absl::Status FromCodecStatus(const codec::Status& status) {
  using codec::ErrorCode;
  if (status.ok()) return absl::OkStatus();
  absl::StatusCode code = absl::StatusCode::kInternal;
  switch (status.code()) {
    case ErrorCode::kOk:
      return absl::OkStatus();
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kBadMagic:
    case ErrorCode::kUnsupportedVersion:
    case ErrorCode::kReservedBits:
    case ErrorCode::kBadHeaderField:
    case ErrorCode::kTrailingBytes:
    case ErrorCode::kLimitExceeded:
      code = absl::StatusCode::kInvalidArgument;
      break;
    case ErrorCode::kTruncated:
    case ErrorCode::kChecksumMismatch:
    case ErrorCode::kCorruptPayload:
      code = absl::StatusCode::kDataLoss;
      break;
    case ErrorCode::kUnavailable:
      code = absl::StatusCode::kUnavailable;
      break;
    case ErrorCode::kInternal:
      code = absl::StatusCode::kInternal;
      break;
  }
  return absl::Status(code, std::string("codec ") + codec::ErrorCodeName(status.code()) + ": " +
                                status.message());
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

}  // namespace splitrans

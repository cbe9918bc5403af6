// Status translation in one place: codec::Status -> absl::Status -> grpc::Status.
#pragma once

#include <absl/status/status.h>
#include <grpcpp/support/status.h>

#include "codec/status.h"

namespace splitrans {

// Maps a codec status to absl::Status. The mapping (stable, asserted by tests):
//   OK                                   -> OK
//   INVALID_ARGUMENT                     -> INVALID_ARGUMENT  (caller error)
//   BAD_MAGIC, UNSUPPORTED_VERSION,
//   RESERVED_BITS, BAD_HEADER_FIELD,
//   TRAILING_BYTES, LIMIT_EXCEEDED       -> INVALID_ARGUMENT  (not a bitstream this server accepts)
//   TRUNCATED, CHECKSUM_MISMATCH,
//   CORRUPT_PAYLOAD                      -> DATA_LOSS         (a well-formed stream was damaged)
//   UNAVAILABLE                          -> UNAVAILABLE
//   INTERNAL                             -> INTERNAL
// The message is prefixed with the codec's stable code name, e.g. "codec CHECKSUM_MISMATCH: ...".
absl::Status FromCodecStatus(const codec::Status& status);

// absl and gRPC share the canonical code numbering; this copies code and message.
grpc::Status ToGrpcStatus(const absl::Status& status);
inline grpc::Status ToGrpcStatus(const codec::Status& status) {
  return ToGrpcStatus(FromCodecStatus(status));
}

}  // namespace splitrans

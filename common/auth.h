// Bearer-token authentication for the edge's front door: `authorization: Bearer <token>` call
// metadata checked against the tokens of a file. Tokens are kept only as SHA-256 digests,
// compared in constant time, and never logged or echoed. Thread-safe (immutable once loaded).
#pragma once

#include <absl/status/statusor.h>
#include <grpcpp/support/string_ref.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace splitrans {

class TokenAuth {
 public:
  // One token per line; blank lines and lines starting with '#' are skipped; surrounding spaces
  // are trimmed. INVALID_ARGUMENT when the file cannot be read, holds no token, or a token has
  // characters outside printable ASCII or is shorter than 16 characters.
  static absl::StatusOr<std::unique_ptr<TokenAuth>> FromFile(const std::string& path);
  static absl::StatusOr<std::unique_ptr<TokenAuth>> FromText(const std::string& text, const std::string& what);

  // OK when the metadata carries "authorization: Bearer <a known token>"; UNAUTHENTICATED
  // otherwise, with a message that says what is missing (never the token itself).
  absl::Status Check(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) const;
  size_t size() const { return digests_.size(); }

 private:
  using Digest = std::array<uint8_t, 32>;
  static Digest Sha256(const char* data, size_t size);
  std::vector<Digest> digests_;
};

}  // namespace splitrans

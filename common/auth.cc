#include "common/auth.h"

#include <absl/strings/ascii.h>
#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <fstream>
#include <sstream>

namespace splitrans {

namespace {
constexpr size_t kMinTokenLength = 16;
constexpr char kBearer[] = "Bearer ";
}  // namespace

TokenAuth::Digest TokenAuth::Sha256(const char* data, size_t size) {
  Digest d;
  SHA256(reinterpret_cast<const unsigned char*>(data), size, d.data());
  return d;
}

absl::StatusOr<std::unique_ptr<TokenAuth>> TokenAuth::FromFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return absl::InvalidArgumentError(absl::StrCat("token file '", path, "' cannot be read"));
  std::stringstream ss;
  ss << f.rdbuf();
  return FromText(ss.str(), absl::StrCat("token file '", path, "'"));
}

absl::StatusOr<std::unique_ptr<TokenAuth>> TokenAuth::FromText(const std::string& text, const std::string& what) {
  std::unique_ptr<TokenAuth> auth(new TokenAuth());
  std::istringstream lines(text);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    ++n;
    const std::string token(absl::StripAsciiWhitespace(line));
    if (token.empty() || token[0] == '#') continue;
    for (unsigned char c : token) {
      if (c < 0x21 || c > 0x7e) {
        return absl::InvalidArgumentError(absl::StrCat(what, " line ", n, ": a token must be printable ASCII without spaces"));
      }
    }
    if (token.size() < kMinTokenLength) {
      return absl::InvalidArgumentError(absl::StrCat(what, " line ", n, ": a token must have at least ", kMinTokenLength,
                                                     " characters"));
    }
    auth->digests_.push_back(Sha256(token.data(), token.size()));
  }
  if (auth->digests_.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " holds no token"));
  return auth;
}

absl::Status TokenAuth::Check(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) const {
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return absl::UnauthenticatedError("missing 'authorization: Bearer <token>' metadata");
  }
  const absl::string_view value(it->second.data(), it->second.size());
  if (!absl::StartsWith(value, kBearer)) {
    return absl::UnauthenticatedError("the 'authorization' metadata is not 'Bearer <token>'");
  }
  const absl::string_view token = value.substr(sizeof(kBearer) - 1);
  const Digest d = Sha256(token.data(), token.size());
  // Every stored digest is compared, in constant time: neither the match nor its position shows.
  int match = 0;
  for (const Digest& known : digests_) match |= CRYPTO_memcmp(d.data(), known.data(), d.size()) == 0;
  if (!match) return absl::UnauthenticatedError("unknown bearer token");
  return absl::OkStatus();
}

}  // namespace splitrans

#include "common/tls.h"

#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <fstream>
#include <sstream>

namespace splitrans {

namespace gx = ::grpc::experimental;

namespace {

// Reads a PEM file and checks that it holds a block of the given kind ("CERTIFICATE",
// "PRIVATE KEY": any "-----BEGIN ... PRIVATE KEY-----" counts for keys).
absl::Status CheckPem(const std::string& path, const char* what, const char* block) {
  std::ifstream f(path);
  if (!f) return absl::InvalidArgumentError(absl::StrCat(what, " '", path, "' cannot be read"));
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  const bool ok = absl::StrContains(text, "-----BEGIN ") && absl::StrContains(text, block);
  if (!ok) return absl::InvalidArgumentError(absl::StrCat(what, " '", path, "' is not a PEM ", block));
  return absl::OkStatus();
}

absl::Status CheckIdentity(const TlsFiles& f, const char* side) {
  if (f.cert.empty() != f.key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(side, ": a TLS certificate needs its key and a key its certificate (got ",
                     f.cert.empty() ? "a key only" : "a certificate only", ")"));
  }
  if (f.cert.empty()) return absl::OkStatus();
  if (auto st = CheckPem(f.cert, "certificate", "CERTIFICATE"); !st.ok()) return st;
  return CheckPem(f.key, "private key", "PRIVATE KEY");
}

unsigned Refresh(const TlsFiles& f) { return static_cast<unsigned>(f.refresh_s < 1 ? 1 : f.refresh_s); }

}  // namespace

bool ParseClientCerts(const std::string& s, ClientCerts* out) {
  if (s == "none") *out = ClientCerts::kNone;
  else if (s == "optional") *out = ClientCerts::kOptional;
  else if (s == "require") *out = ClientCerts::kRequire;
  else return false;
  return true;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerTls& tls) {
  if (!tls.enabled()) {
    if (tls.client_certs != ClientCerts::kNone || !tls.files.ca.empty()) {
      return absl::InvalidArgumentError("client certificates (or a client CA) need TLS: give a certificate and key");
    }
    return grpc::InsecureServerCredentials();
  }
  if (auto st = CheckIdentity(tls.files, "server"); !st.ok()) return st;
  if (tls.client_certs == ClientCerts::kRequire && tls.files.ca.empty()) {
    return absl::InvalidArgumentError("required client certificates need a CA to verify them against");
  }
  if (!tls.files.ca.empty()) {
    if (auto st = CheckPem(tls.files.ca, "CA bundle", "CERTIFICATE"); !st.ok()) return st;
  }
  auto provider = tls.files.ca.empty()
                      ? std::make_shared<gx::FileWatcherCertificateProvider>(tls.files.key, tls.files.cert, Refresh(tls.files))
                      : std::make_shared<gx::FileWatcherCertificateProvider>(tls.files.key, tls.files.cert, tls.files.ca,
                                                                               Refresh(tls.files));
  gx::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (!tls.files.ca.empty()) options.watch_root_certs();
  switch (tls.client_certs) {
    case ClientCerts::kNone:
      options.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
      break;
    case ClientCerts::kOptional:
      options.set_cert_request_type(tls.files.ca.empty() ? GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY
                                                         : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
      break;
    case ClientCerts::kRequire:
      options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
      break;
  }
  return grpc::experimental::TlsServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(const ClientTls& tls) {
  if (!tls.enabled()) return grpc::InsecureChannelCredentials();
  if (tls.files.ca.empty()) {
    return absl::InvalidArgumentError("TLS to the server needs a CA bundle that verifies its certificate");
  }
  if (auto st = CheckPem(tls.files.ca, "CA bundle", "CERTIFICATE"); !st.ok()) return st;
  if (auto st = CheckIdentity(tls.files, "client"); !st.ok()) return st;
  auto provider = tls.files.cert.empty()
                      ? std::make_shared<gx::FileWatcherCertificateProvider>(tls.files.ca, Refresh(tls.files))
                      : std::make_shared<gx::FileWatcherCertificateProvider>(tls.files.key, tls.files.cert, tls.files.ca,
                                                                               Refresh(tls.files));
  gx::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(provider);
  options.watch_root_certs();
  if (!tls.files.cert.empty()) options.watch_identity_key_cert_pairs();
  return grpc::experimental::TlsCredentials(options);
}

void AddChannelTlsArgs(const ClientTls& tls, grpc::ChannelArguments* args) {
  if (tls.enabled() && !tls.server_name.empty()) args->SetSslTargetNameOverride(tls.server_name);
}

std::string DescribeServerTls(const ServerTls& tls) {
  if (!tls.enabled()) return "plaintext";
  const char* clients = tls.client_certs == ClientCerts::kRequire    ? "client certificates required"
                        : tls.client_certs == ClientCerts::kOptional ? "client certificates optional"
                                                                     : "no client certificates";
  return absl::StrCat("TLS (certificate ", tls.files.cert, ", ", clients,
                      tls.files.ca.empty() ? "" : absl::StrCat(", CA ", tls.files.ca), ", files re-read every ",
                      Refresh(tls.files), " s)");
}

bool IsLoopbackAddress(const std::string& a) {
  return absl::StartsWith(a, "127.") || absl::StartsWith(a, "[::1]") || absl::StartsWith(a, "localhost:") ||
         absl::StartsWith(a, "unix:") || absl::StartsWith(a, "ipv4:127.") || absl::StartsWith(a, "ipv6:[::1]");
}

}  // namespace splitrans

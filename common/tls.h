// TLS for the services: gRPC server and channel credentials from PEM files, re-read every
// refresh_s seconds so that certificates and keys rotate without a restart (gRPC's file-watcher
// certificate provider). TLS 1.2 or later, as gRPC's TLS credentials negotiate.
#pragma once

#include <absl/status/statusor.h>

#include <memory>
#include <string>

namespace grpc {
class ServerCredentials;
class ChannelCredentials;
class ChannelArguments;
}  // namespace grpc

namespace splitrans {

// PEM files. cert + key: this side's identity (both or neither); ca: the roots that verify the
// peer's certificate.
struct TlsFiles {
  std::string cert;
  std::string key;
  std::string ca;
  int refresh_s = 10;  // how often the files are re-read (a rotated file is served from then on)
};

enum class ClientCerts {
  kNone,      // no client certificate asked for
  kOptional,  // asked for, verified against ca when given; clients without one are let in
  kRequire,   // required and verified against ca (mutual TLS)
};

struct ServerTls {
  TlsFiles files;               // cert and key required when TLS is on
  ClientCerts client_certs = ClientCerts::kNone;
  bool enabled() const { return !files.cert.empty() || !files.key.empty(); }
};

struct ClientTls {
  TlsFiles files;               // ca required when TLS is on; cert + key for mutual TLS
  std::string server_name;      // name to verify the server's certificate against (default: the target's host)
  bool enabled() const { return !files.ca.empty() || !files.cert.empty() || !files.key.empty(); }
};

// "none" | "optional" | "require"; false for anything else.
bool ParseClientCerts(const std::string& s, ClientCerts* out);

// Insecure credentials when !tls.enabled(). INVALID_ARGUMENT naming the file and the problem
// when a file is missing, unreadable or not PEM, or a required one is not given.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerTls& tls);
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(const ClientTls& tls);
// Adds what the channel needs beside its credentials (the server name override).
void AddChannelTlsArgs(const ClientTls& tls, grpc::ChannelArguments* args);

// One line for the logs: "TLS (cert ..., client certificates required, CA ...)" or "plaintext".
std::string DescribeServerTls(const ServerTls& tls);

// True for addresses that only this machine can reach (127.0.0.0/8, [::1], localhost, unix:).
bool IsLoopbackAddress(const std::string& listen_address);

}  // namespace splitrans

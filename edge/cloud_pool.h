// Edge -> cloud replicas. The cloud target may name several replicas: a static list
// ("ipv4:10.0.0.1:50052,10.0.0.2:50052", "ipv6:[::1]:5001,[::1]:5002") or a DNS name that
// resolves to several addresses ("dns:///cloud.example:50052", or plain "cloud.example:50052", as
// a Kubernetes headless Service gives), re-resolved every resolve_ms. The pool keeps one
// CloudClient (its own channel and long-lived stream) per resolved address and spreads requests
// to the replica with the fewest requests in flight among those whose stream is established and
// not draining and whose grpc.health.v1 says SERVING (round-robin among equals).
//
// Why one stream per replica instead of gRPC's round_robin policy: a long-lived bidi stream is
// one HTTP/2 stream on one connection, so round_robin (which balances calls) would pin all of
// the edge's traffic to whichever replica the stream landed on. Per-replica streams keep the
// stream's low per-request cost and still balance per request; a replica that drains
// (grpc.health.v1 NOT_SERVING and the stream's drain message) or dies is out of the rotation as
// soon as its stream ends, and a replica that appears in DNS gets a stream at the next
// re-resolution.
//
// Retry: inference is idempotent, so a request that failed with UNAVAILABLE on one replica (its
// stream was lost before or after the request was written, or the replica was not connected) is
// sent once more to another connected replica while its deadline allows. With a single replica
// the CloudClient's own rule applies (requests never written are kept for the next stream).
// Thread-safe; the same callback rules as CloudClient.
#pragma once

#include <absl/status/statusor.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "edge/cloud_client.h"

namespace splitrans::edge {

// What a cloud target names, parsed (no resolution yet).
struct CloudTarget {
  enum class Kind { kStatic, kDns };
  Kind kind = Kind::kStatic;
  std::vector<std::string> addresses;  // kStatic: gRPC targets, one per replica
  std::string host;                    // kDns
  std::string port;                    // kDns
};
// INVALID_ARGUMENT with the accepted forms for targets that cannot work (empty, no port, empty
// list entries, unknown scheme).
absl::StatusOr<CloudTarget> ParseCloudTarget(const std::string& target);

// host -> "ip:port" targets (IPv4 addresses when there are any, else IPv6), sorted and unique.
using Resolver = std::function<absl::StatusOr<std::vector<std::string>>(const std::string& host,
                                                                       const std::string& port)>;
absl::StatusOr<std::vector<std::string>> ResolveWithGetaddrinfo(const std::string& host, const std::string& port);

struct CloudPoolOptions {
  CloudClientOptions client;  // client.target: the pool's target (see above)
  int resolve_ms = 5000;      // DNS targets: re-resolution interval
  Resolver resolver;          // null: getaddrinfo (tests inject their own)
  // Called once per request that reached a replica, with the replica that gave the final answer
  // and its code (the transport's or, when that is OK, the cloud's per-request code); not for
  // requests refused before any replica was tried (none resolved, shutting down). Must not block.
  std::function<void(const std::string& replica, grpc::StatusCode code)> on_answer;
  // Called when a request that failed on replica is sent to another one. Must not block.
  std::function<void(const std::string& replica)> on_retry;
};

class CloudPool {
 public:
  using Clock = CloudClient::Clock;
  using Callback = CloudClient::Callback;

  // The target must parse (ParseCloudTarget); a DNS name that does not resolve yet is retried.
  CloudPool(CloudPoolOptions options, std::shared_ptr<grpc::ChannelCredentials> credentials);
  ~CloudPool();  // fails what is pending with UNAVAILABLE, joins
  CloudPool(const CloudPool&) = delete;
  CloudPool& operator=(const CloudPool&) = delete;

  // As CloudClient::Send: done is called exactly once, possibly inline. Returns an id for Cancel
  // (0 when done has already been called).
  uint64_t Send(splitrans::v1::FeaturePacket packet, Clock::time_point deadline, Callback done);
  void Cancel(uint64_t id);

  bool Connected() const;  // at least one replica can take requests
  // As CloudClient::SetStateListener: called at once and whenever Connected() may have changed.
  void SetStateListener(std::function<void()> listener);

  struct Replica {
    std::string address;
    bool connected = false;
    uint64_t sent = 0;     // attempts sent to it (a retry counts on the replica it went to)
    uint64_t answered = 0; // final answers it gave (any code)
    uint64_t retried_away = 0;  // attempts that failed UNAVAILABLE here and went to another one
  };
  std::vector<Replica> replicas() const;  // current replicas, by address
  CloudClient::Stats stats() const;       // summed over current replicas
  uint64_t resolutions() const;           // successful resolutions so far (DNS targets)

 private:
  struct Backend {
    std::string address;
    std::unique_ptr<CloudClient> client;
    uint64_t sent = 0, answered = 0, retried_away = 0;
    int pending = 0;       // attempts in flight on it
    int users = 0;         // threads inside a call on client (it is not destroyed meanwhile)
    bool retired = false;  // no longer resolved: no new requests; destroyed once idle
    bool reaping = false;  // being destroyed: no thread may start a call on client
    Clock::time_point retired_at{};
  };
  struct Request {
    Callback done;
    Clock::time_point deadline;
    splitrans::v1::FeaturePacket packet;  // kept for a retry (pools of several replicas only)
    Backend* backend = nullptr;           // current attempt's replica (kept while pending)
    uint64_t inner_id = 0;                // the attempt's CloudClient id (0: being sent)
    int attempts = 0;
    bool cancelled = false;
  };

  // Chooses a replica for an attempt (the fewest in flight among connected ones, skipping
  // `avoid`); null when there is none at all. Under mu_.
  // Backends are destroyed only on the resolver thread or in the destructor (never on a gRPC
  // thread: see CloudClient::StreamCall), once no attempt is pending on them and no thread is
  // inside one of their calls.
  Backend* PickLocked(const Backend* avoid, bool require_connected);
  void Attempt(uint64_t id, Backend* backend, int attempt, Clock::time_point deadline,
               splitrans::v1::FeaturePacket packet);
  void OnAttemptDone(uint64_t id, Backend* backend, int attempt, const grpc::Status& status,
                     splitrans::v1::Result result);
  void ResolveLoop();
  // Makes the replica set equal to addresses (new ones connect, missing ones retire).
  void Update(const std::vector<std::string>& addresses);
  std::shared_ptr<Backend> MakeBackend(const std::string& address);
  void ReapRetired();
  void NotifyState();

  const CloudPoolOptions options_;
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;
  CloudTarget target_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool shutdown_ = false;
  std::vector<std::shared_ptr<Backend>> backends_;  // current, sorted by address
  std::vector<std::shared_ptr<Backend>> retired_;
  size_t next_ = 0;  // round-robin position
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Request> requests_;
  uint64_t resolutions_ = 0;
  std::string resolve_error_;

  std::mutex listener_mu_;  // held while the listener runs
  std::function<void()> listener_;
  std::thread resolver_;
};

}  // namespace splitrans::edge

#include "edge/cloud_pool.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>
#include <absl/strings/str_split.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <set>

namespace splitrans::edge {
namespace v1 = ::splitrans::v1;

namespace {

constexpr char kTargetForms[] =
    "expected host:port, dns:///host:port, ipv4:A:PORT[,A:PORT...], ipv6:[A]:PORT[,[A]:PORT...] or "
    "another gRPC URI (unix:PATH)";

// "host:port" / "[v6]:port" -> host and port (both non-empty).
bool SplitHostPort(const std::string& s, std::string* host, std::string* port) {
  if (!s.empty() && s[0] == '[') {
    const size_t close = s.find(']');
    if (close == std::string::npos || close + 1 >= s.size() || s[close + 1] != ':') return false;
    *host = s.substr(1, close - 1);
    *port = s.substr(close + 2);
  } else {
    const size_t colon = s.rfind(':');
    if (colon == std::string::npos || s.find(':') != colon) return false;  // bare IPv6 needs brackets
    *host = s.substr(0, colon);
    *port = s.substr(colon + 1);
  }
  if (host->empty() || port->empty()) return false;
  return std::all_of(port->begin(), port->end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

absl::StatusOr<CloudTarget> ParseCloudTarget(const std::string& target) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat("cloud target '", target, "': ", why, " (", kTargetForms, ")"));
  };
  if (target.empty()) return bad("empty");
  CloudTarget t;
  for (const char* scheme : {"ipv4:", "ipv6:"}) {
    if (target.rfind(scheme, 0) != 0) continue;
    std::set<std::string> seen;
    for (absl::string_view part : absl::StrSplit(target.substr(5), ',')) {
      std::string host, port, entry(part);
      if (!SplitHostPort(entry, &host, &port)) return bad(absl::StrCat("entry '", entry, "' is not address:port"));
      if (!IsIpLiteral(host)) return bad(absl::StrCat("'", host, "' is not an IP address"));
      if (seen.insert(entry).second) t.addresses.push_back(absl::StrCat(scheme, entry));
    }
    return t;
  }
  std::string rest = target;
  if (rest.rfind("dns:", 0) == 0) {
    rest = rest.substr(4);
    if (rest.rfind("//", 0) == 0) {  // dns://[authority]/host:port
      const size_t slash = rest.find('/', 2);
      if (slash == std::string::npos) return bad("dns:// needs a path: dns:///host:port");
      rest = rest.substr(slash + 1);
    }
  } else if (rest.find("://") != std::string::npos || rest.rfind("unix:", 0) == 0 ||
             rest.rfind("unix-abstract:", 0) == 0) {
    t.addresses.push_back(target);  // another gRPC URI scheme: one replica, handed to gRPC as it is
    return t;
  }
  std::string host, port;
  if (!SplitHostPort(rest, &host, &port)) return bad("needs host:port");
  if (IsIpLiteral(host)) {
    t.addresses.push_back(target);
    return t;
  }
  t.kind = CloudTarget::Kind::kDns;
  t.host = host;
  t.port = port;
  return t;
}

absl::StatusOr<std::vector<std::string>> ResolveWithGetaddrinfo(const std::string& host, const std::string& port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) return absl::UnavailableError(absl::StrCat("cannot resolve ", host, ": ", gai_strerror(rc)));
  std::set<std::string> v4, v6;
  for (addrinfo* a = res; a; a = a->ai_next) {
    char buf[INET6_ADDRSTRLEN] = {};
    if (a->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr, buf, sizeof(buf));
      v4.insert(absl::StrCat("ipv4:", buf, ":", port));
    } else if (a->ai_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr, buf, sizeof(buf));
      v6.insert(absl::StrCat("ipv6:[", buf, "]:", port));
    }
  }
  freeaddrinfo(res);
  // One family: a dual-stack name ("localhost") would otherwise count each replica twice.
  const std::set<std::string>& pick = v4.empty() ? v6 : v4;
  if (pick.empty()) return absl::UnavailableError(absl::StrCat(host, " has no IPv4 or IPv6 address"));
  return std::vector<std::string>(pick.begin(), pick.end());
}

CloudPool::CloudPool(CloudPoolOptions options, std::shared_ptr<grpc::ChannelCredentials> credentials)
    : options_(std::move(options)), credentials_(std::move(credentials)) {
  auto parsed = ParseCloudTarget(options_.client.target);
  if (parsed.ok()) {
    target_ = *parsed;
  } else {  // validated by the caller; a bad one serves nothing and says why
    resolve_error_ = std::string(parsed.status().message());
    spdlog::error("edge: {}", resolve_error_);
  }
  if (target_.kind == CloudTarget::Kind::kStatic) {
    Update(target_.addresses);
  } else {
    const Resolver& resolve = options_.resolver ? options_.resolver : Resolver(ResolveWithGetaddrinfo);
    auto addresses = resolve(target_.host, target_.port);
    if (addresses.ok()) {
      ++resolutions_;
      Update(*addresses);
    } else {
      resolve_error_ = std::string(addresses.status().message());
      spdlog::warn("edge: cloud target {}: {}; retrying", options_.client.target, resolve_error_);
    }
  }
  resolver_ = std::thread([this] { ResolveLoop(); });
}

CloudPool::~CloudPool() {
  SetStateListener(nullptr);
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
  }
  cv_.notify_all();
  resolver_.join();
  std::vector<std::shared_ptr<Backend>> all;
  {
    std::unique_lock<std::mutex> lock(mu_);
    all = backends_;
    all.insert(all.end(), retired_.begin(), retired_.end());
    // No thread may be inside a call on a client that is destroyed below (a retry that was
    // decided just before shutdown_ was set is still being sent).
    cv_.wait(lock, [&] {
      return std::all_of(all.begin(), all.end(), [](const auto& b) { return b->users == 0; });
    });
    for (auto& b : all) b->reaping = true;
  }
  // Each client fails what it still has (UNAVAILABLE); no retries once shutting down.
  for (auto& b : all) b->client.reset();
  std::vector<Callback> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, r] : requests_) left.push_back(std::move(r.done));
    requests_.clear();
    backends_.clear();
    retired_.clear();
  }
  for (auto& cb : left) {
    if (cb) cb(grpc::Status(grpc::StatusCode::UNAVAILABLE, "edge shutting down"), {});
  }
}

std::shared_ptr<CloudPool::Backend> CloudPool::MakeBackend(const std::string& address) {
  auto b = std::make_shared<Backend>();
  b->address = address;
  CloudClientOptions o = options_.client;
  o.target = address;
  // A resolved address is an IP: the certificate is still checked against the name asked for.
  if (target_.kind == CloudTarget::Kind::kDns && o.tls.server_name.empty()) o.tls.server_name = target_.host;
  b->client = std::make_unique<CloudClient>(std::move(o), credentials_);
  return b;
}

void CloudPool::Update(const std::vector<std::string>& addresses) {
  const std::set<std::string> want(addresses.begin(), addresses.end());
  std::vector<std::string> added, removed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& b : backends_) {
      if (!want.count(b->address)) removed.push_back(b->address);
    }
    for (const auto& a : want) {
      if (std::none_of(backends_.begin(), backends_.end(), [&](const auto& b) { return b->address == a; }))
        added.push_back(a);
    }
  }
  if (added.empty() && removed.empty()) return;
  std::vector<std::shared_ptr<Backend>> fresh;
  for (const auto& a : added) fresh.push_back(MakeBackend(a));  // outside the lock: starts threads
  std::vector<std::string> now;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto when = Clock::now();
    for (auto it = backends_.begin(); it != backends_.end();) {
      if (!want.count((*it)->address)) {
        (*it)->retired = true;
        (*it)->retired_at = when;
        retired_.push_back(std::move(*it));
        it = backends_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& b : fresh) backends_.push_back(b);
    std::sort(backends_.begin(), backends_.end(), [](const auto& x, const auto& y) { return x->address < y->address; });
    for (auto& b : backends_) now.push_back(b->address);
  }
  spdlog::info("edge: cloud {}: {} replica(s) [{}]{}{}", options_.client.target, now.size(), absl::StrJoin(now, ", "),
               added.empty() ? "" : absl::StrCat(", added ", absl::StrJoin(added, ", ")),
               removed.empty() ? "" : absl::StrCat(", removed ", absl::StrJoin(removed, ", ")));
  // The listener is set outside the lock: it runs once at once (and later on its own threads).
  for (auto& b : fresh) b->client->SetStateListener([this] { NotifyState(); });
  if (!removed.empty()) NotifyState();
}

void CloudPool::ReapRetired() {
  std::vector<std::shared_ptr<Backend>> dead;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = Clock::now();
    // A retired replica keeps serving what it has, bounded by the longest deadline.
    const auto linger = std::chrono::milliseconds(options_.client.deadline_ms) + std::chrono::seconds(2);
    for (auto it = retired_.begin(); it != retired_.end();) {
      Backend& b = **it;
      if (b.users == 0 && (b.pending == 0 || now - b.retired_at > linger)) {
        b.reaping = true;
        dead.push_back(std::move(*it));
        it = retired_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& b : dead) b->client.reset();  // fails what is left (UNAVAILABLE, retried elsewhere)
}

void CloudPool::ResolveLoop() {
  const Resolver resolve = options_.resolver ? options_.resolver : Resolver(ResolveWithGetaddrinfo);
  auto next_resolve = Clock::now() + std::chrono::milliseconds(options_.resolve_ms);
  std::unique_lock<std::mutex> lock(mu_);
  while (!shutdown_) {
    cv_.wait_for(lock, std::chrono::milliseconds(std::min(options_.resolve_ms, 1000)), [this] { return shutdown_; });
    if (shutdown_) break;
    lock.unlock();
    ReapRetired();
    if (target_.kind == CloudTarget::Kind::kDns) {
      // Every resolve_ms; every second while no replica is connected (a restarted replica may
      // have a new address).
      if (Clock::now() >= next_resolve || !Connected()) {
        next_resolve = Clock::now() + std::chrono::milliseconds(options_.resolve_ms);
        auto addresses = resolve(target_.host, target_.port);
        if (addresses.ok()) {
          {
            std::lock_guard<std::mutex> l(mu_);
            ++resolutions_;
            resolve_error_.clear();
          }
          Update(*addresses);
        } else {
          std::lock_guard<std::mutex> l(mu_);
          if (resolve_error_ != addresses.status().message()) {
            resolve_error_ = std::string(addresses.status().message());
            spdlog::warn("edge: cloud target {}: {} (keeping {} replica(s))", options_.client.target,
                         resolve_error_, backends_.size());
          }
        }
      }
    }
    lock.lock();
  }
}

CloudPool::Backend* CloudPool::PickLocked(const Backend* avoid, bool require_connected) {
  const size_t n = backends_.size();
  if (n == 0) return nullptr;
  // Least pending among the connected replicas, starting the scan at the round-robin position
  // (ties go round-robin): even under steady load, and a slow replica gets less.
  Backend* best = nullptr;
  for (size_t i = 0; i < n; ++i) {
    Backend* b = backends_[(next_ + i) % n].get();
    if (b == avoid || !b->client->Connected()) continue;
    if (!best || b->pending < best->pending) best = b;
  }
  next_ = (next_ + 1) % n;
  if (best || require_connected) return best;
  // None connected: the next one in turn, whose client says why (or holds the request briefly
  // while a drained stream is replaced).
  for (size_t i = 0; i < n; ++i) {
    Backend* b = backends_[(next_ + i) % n].get();
    if (b != avoid) return b;
  }
  return nullptr;
}

uint64_t CloudPool::Send(v1::FeaturePacket packet, Clock::time_point deadline, Callback done) {
  deadline = std::min(deadline, Clock::now() + std::chrono::milliseconds(options_.client.deadline_ms));
  uint64_t id = 0;
  Backend* b = nullptr;
  std::string why;
  bool several = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    several = backends_.size() > 1;
  }
  // Kept for a retry on another replica (copied outside the lock: features can be large).
  v1::FeaturePacket copy;
  if (several) copy = packet;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_) {
      why = "edge shutting down";
    } else if (!(b = PickLocked(nullptr, false))) {
      why = absl::StrCat("cloud ", options_.client.target, " has no replica (",
                         resolve_error_.empty() ? "resolved to no address" : resolve_error_, ")");
    } else {
      id = next_id_++;
      Request& r = requests_[id];
      r.done = std::move(done);
      r.deadline = deadline;
      r.backend = b;
      r.attempts = 1;
      r.packet = std::move(copy);
      ++b->pending;
      ++b->sent;
      ++b->users;
    }
  }
  if (id == 0) {
    done(grpc::Status(grpc::StatusCode::UNAVAILABLE, why), {});
    return 0;
  }
  Attempt(id, b, 1, deadline, std::move(packet));
  std::lock_guard<std::mutex> lock(mu_);
  return requests_.count(id) ? id : 0;  // 0: already answered (inline)
}

// REQUIRES: backend->users was incremented for this call (released here).
void CloudPool::Attempt(uint64_t id, Backend* backend, int attempt, Clock::time_point deadline,
                        v1::FeaturePacket packet) {
  const uint64_t inner = backend->client->Send(
      std::move(packet), deadline, [this, id, backend, attempt](const grpc::Status& s, v1::Result r) {
        OnAttemptDone(id, backend, attempt, s, std::move(r));
      });
  bool cancel = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = requests_.find(id);
    if (it != requests_.end() && it->second.attempts == attempt && it->second.backend == backend) {
      it->second.inner_id = inner;
      cancel = it->second.cancelled && inner != 0;
    }
    if (!cancel && --backend->users == 0) cv_.notify_all();
  }
  if (cancel) {
    backend->client->Cancel(inner);
    std::lock_guard<std::mutex> lock(mu_);
    if (--backend->users == 0) cv_.notify_all();
  }
}

void CloudPool::OnAttemptDone(uint64_t id, Backend* backend, int attempt, const grpc::Status& status,
                              v1::Result result) {
  Callback done;
  std::string replica;
  Backend* next = nullptr;
  v1::FeaturePacket packet;
  Clock::time_point deadline;
  {
    std::lock_guard<std::mutex> lock(mu_);
    --backend->pending;
    auto it = requests_.find(id);
    if (it == requests_.end() || it->second.attempts != attempt) return;
    Request& r = it->second;
    const bool retry = status.error_code() == grpc::StatusCode::UNAVAILABLE && r.attempts == 1 && !r.cancelled &&
                       !shutdown_ && r.packet.ByteSizeLong() > 0 && Clock::now() < r.deadline;
    if (retry) next = PickLocked(backend, true);
    if (next) {
      ++backend->retried_away;
      r.attempts = 2;
      r.backend = next;
      r.inner_id = 0;
      ++next->pending;
      ++next->sent;
      ++next->users;
      packet = std::move(r.packet);
      r.packet.Clear();
      deadline = r.deadline;
    } else {
      ++backend->answered;
      replica = backend->address;
      done = std::move(r.done);
      requests_.erase(it);
    }
  }
  if (next) {
    if (options_.on_retry) options_.on_retry(backend->address);
    spdlog::debug("edge: request retried on cloud replica {} after {} failed: {}", next->address, backend->address,
                  status.error_message());
    Attempt(id, next, 2, deadline, std::move(packet));
    return;
  }
  if (options_.on_answer) {
    options_.on_answer(replica,
                       status.ok() ? static_cast<grpc::StatusCode>(result.status_code()) : status.error_code());
  }
  if (done) done(status, std::move(result));
}

void CloudPool::Cancel(uint64_t id) {
  if (id == 0) return;
  Backend* b = nullptr;
  uint64_t inner = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = requests_.find(id);
    if (it == requests_.end()) return;
    it->second.cancelled = true;
    inner = it->second.inner_id;
    b = it->second.backend;
    // Being sent: Attempt cancels it once its id is known. Shutting down or its replica being
    // destroyed: that fails it anyway.
    if (inner == 0 || shutdown_ || b->reaping) return;
    ++b->users;
  }
  b->client->Cancel(inner);  // completes it with CANCELLED (through OnAttemptDone)
  std::lock_guard<std::mutex> lock(mu_);
  if (--b->users == 0) cv_.notify_all();
}

bool CloudPool::Connected() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& b : backends_)
    if (b->client->Connected()) return true;
  return false;
}

void CloudPool::SetStateListener(std::function<void()> listener) {
  std::lock_guard<std::mutex> lock(listener_mu_);
  listener_ = std::move(listener);
  if (listener_) listener_();
}

void CloudPool::NotifyState() {
  std::lock_guard<std::mutex> lock(listener_mu_);
  if (listener_) listener_();
}

std::vector<CloudPool::Replica> CloudPool::replicas() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Replica> out;
  for (const auto& b : backends_) {
    out.push_back({b->address, b->client->Connected(), b->sent, b->answered, b->retried_away});
  }
  return out;
}

CloudClient::Stats CloudPool::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  CloudClient::Stats sum;
  for (const auto& b : backends_) {
    const auto s = b->client->stats();
    sum.streams_established += s.streams_established;
    sum.streams_lost += s.streams_lost;
    sum.streams_drained += s.streams_drained;
    sum.streams_goaway += s.streams_goaway;
    sum.retried += s.retried;
    sum.expired_unsent += s.expired_unsent;
    sum.queued_bytes += s.queued_bytes;
  }
  return sum;
}

uint64_t CloudPool::resolutions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return resolutions_;
}

}  // namespace splitrans::edge

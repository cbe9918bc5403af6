#include "edge/link_policy.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

namespace splitrans::edge {
namespace {

constexpr double kMaxBitsPerUs = 1e6;  // 1 Tbit/s: "no measurable serialization time"
constexpr double kAlpha = 0.1;          // weight of a new measurement in a candidate's averages
constexpr double kSwitchMargin = 0.10;  // a new best must be predicted this much faster
constexpr double kOffloadMargin = 0.10; // a split must be predicted this much faster than offload
constexpr double kAutoMargin = 0.05;    // auto a further this much (its coding time varies)
// Each candidate is measured this often before its averages count, and only the last of these
// counts: a model's first runs (TorchScript's profiling ones, then cold caches) are slower than
// the rest, by 2x for the first and still by ~40% for the second and third (the bundled model's
// full offload, measured on this project's 2-core machines: 1995, 1444, 1440, then 1054-1156 us).
constexpr int64_t kWarmupSamples = 4;
// A candidate not measured for this many explorations is re-measured whatever its prediction.
constexpr uint64_t kStaleExplorations = 8;

}  // namespace

bool ParsePolicy(const std::string& s, PolicyKind* policy) {
  if (s == "fixed") {
    *policy = PolicyKind::kFixed;
  } else if (s == "latency") {
    *policy = PolicyKind::kLatency;
  } else {
    return false;
  }
  return true;
}

const char* PolicyName(PolicyKind policy) { return kPolicyNames[static_cast<int>(policy)]; }

double LinkEstimate::PredictUs(uint64_t bytes) const {
  if (samples == 0) return 0;
  return rtt_us + 8.0 * static_cast<double>(bytes) / bits_per_us;
}

// ---- LinkEstimator ----

void LinkEstimator::Add(uint64_t bytes, int64_t transfer_us, uint64_t own_bytes) {
  transfer_us = std::max<int64_t>(transfer_us, 0);
  if (own_bytes == 0 || own_bytes > bytes) own_bytes = bytes;
  std::lock_guard<std::mutex> lock(mu_);
  if (estimate_.samples > 0) {
    const double predicted = estimate_.PredictUs(bytes);
    const double t = static_cast<double>(transfer_us);
    int sign = 0;
    if (t > options_.change_factor * predicted + options_.change_slack_us) sign = 1;
    if (t + options_.change_slack_us < predicted / options_.change_factor) sign = -1;
    if (sign != 0 && sign == surprise_sign_) {
      ++surprises_;
    } else {
      surprises_ = sign != 0 ? 1 : 0;
      surprise_sign_ = sign;
    }
  }
  samples_.emplace_back(bytes, transfer_us);
  if (options_.floor_window > 0) {
    floor_rates_.push_back(8.0 * static_cast<double>(own_bytes) / static_cast<double>(std::max<int64_t>(transfer_us, 1)));
  }
  while (static_cast<int>(floor_rates_.size()) > options_.floor_window) floor_rates_.pop_front();
  if (surprises_ >= options_.change_samples) {
    // The link is not what the window says any more: keep only the transfers that said so.
    while (static_cast<int>(samples_.size()) > surprises_) samples_.pop_front();
    surprises_ = 0;
    surprise_sign_ = 0;
    ++changes_;
  }
  while (static_cast<int>(samples_.size()) > options_.window) samples_.pop_front();
  Refit();
}

void LinkEstimator::Refit() {
  const double n = static_cast<double>(samples_.size());
  double sb = 0, st = 0, min_t = std::numeric_limits<double>::max();
  uint64_t min_b = std::numeric_limits<uint64_t>::max(), max_b = 0;
  double floor_rate = 0;  // the fastest own bytes over time of the last floor_window (see Add)
  for (double r : floor_rates_) floor_rate = std::max(floor_rate, r);
  for (const auto& [b, t] : samples_) {
    sb += static_cast<double>(b);
    st += static_cast<double>(t);
    min_t = std::min(min_t, static_cast<double>(t));
    min_b = std::min(min_b, b);
    max_b = std::max(max_b, b);
  }
  // rtt: the intercept of a least-squares line where the sizes differ enough to tell it from the
  // serialization time, else the previous estimate's; never above the fastest transfer. Where the
  // sizes differ and the larger ones are not slower (payloads within the link's burst, or a link
  // much faster than the transfers' fixed costs), bytes cost no measurable time: the rtt is the
  // fastest transfer, and the rate below is read from what the others took beyond it (reading
  // all the time as serialization would make every byte look dear).
  double rtt = estimate_.samples > 0 ? estimate_.rtt_us : 0;
  if (samples_.size() >= 3 && max_b >= 1000 && static_cast<double>(max_b - min_b) >= 0.25 * static_cast<double>(max_b)) {
    const double mb = sb / n, mt = st / n;
    double sxy = 0, sxx = 0;
    for (const auto& [b, t] : samples_) {
      sxy += (static_cast<double>(b) - mb) * (static_cast<double>(t) - mt);
      sxx += (static_cast<double>(b) - mb) * (static_cast<double>(b) - mb);
    }
    if (sxx > 0) rtt = sxy > 0 ? mt - (sxy / sxx) * mb : min_t;
  }
  rtt = std::clamp(rtt, 0.0, min_t);
  // rate: the bits sent over the time beyond rtt (a ratio of sums: large transfers weigh most).
  double beyond = 0;
  for (const auto& [b, t] : samples_) beyond += std::max(static_cast<double>(t) - rtt, 0.0);
  const double bits = 8.0 * sb;
  double rate = beyond > 0 ? bits / beyond : kMaxBitsPerUs;
  rate = std::clamp(std::max(rate, floor_rate), 1e-6, kMaxBitsPerUs);
  estimate_.rtt_us = rtt;
  estimate_.bits_per_us = rate;
  estimate_.samples = static_cast<int>(samples_.size());
}

namespace {
constexpr int64_t kOfferedWindowUs = 1000000;  // utilization: the bytes offered in the last second
constexpr size_t kOfferedMin = 8;              // at least this many transfers, else "unknown" (1)
constexpr size_t kOfferedMax = 4096;
int64_t SteadyNowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

uint64_t LinkEstimator::Begin(uint64_t bytes, int64_t now_us) {
  if (now_us < 0) now_us = SteadyNowUs();
  std::lock_guard<std::mutex> lock(mu_);
  offered_.emplace_back(now_us, bytes);
  while (offered_.size() > kOfferedMax || (!offered_.empty() && offered_.front().first < now_us - kOfferedWindowUs)) {
    offered_.pop_front();
  }
  const uint64_t ahead = in_flight_bytes_;
  in_flight_bytes_ += bytes;
  ++in_flight_;
  return ahead;
}

void LinkEstimator::End(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  in_flight_bytes_ -= std::min(bytes, in_flight_bytes_);
  if (in_flight_ > 0) --in_flight_;
}

LinkEstimate LinkEstimator::Get(int64_t now_us) const {
  if (now_us < 0) now_us = SteadyNowUs();
  std::lock_guard<std::mutex> lock(mu_);
  LinkEstimate e = estimate_;
  e.in_flight = in_flight_;
  // Offered load over the window (from the oldest transfer still in it, or the whole window once
  // it is full), against the estimated rate.
  uint64_t bytes = 0;
  size_t n = 0;
  int64_t oldest = now_us;
  for (auto it = offered_.rbegin(); it != offered_.rend() && it->first >= now_us - kOfferedWindowUs; ++it) {
    bytes += it->second;
    oldest = it->first;
    ++n;
  }
  e.utilization = 1;
  if (e.samples > 0 && n >= kOfferedMin) {
    const double span = static_cast<double>(std::max<int64_t>(now_us - oldest, 1));
    e.utilization = std::clamp(8.0 * static_cast<double>(bytes) / span / e.bits_per_us, 0.0, 1.0);
  }
  return e;
}

int64_t LinkEstimator::changes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return changes_;
}

// ---- Calibration ----

absl::StatusOr<Calibration> ParseCalibration(const std::string& json_text, const ModelManifest& manifest) {
  using json = nlohmann::json;
  const std::string where = absl::StrCat(manifest.dir, "/calibration.json: ");
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return absl::InvalidArgumentError(where + "not a JSON object");
  Calibration c;
  try {
    c.metric = j.value("metric", "");
    c.accuracy_floor = j.value("accuracy_floor", 0.99);
    if (!(c.accuracy_floor >= 0 && c.accuracy_floor <= 1)) {
      return absl::InvalidArgumentError(where + "accuracy_floor must be in [0, 1]");
    }
    const json& entries = j.at("entries");
    if (!entries.is_array() || entries.empty()) return absl::InvalidArgumentError(where + "entries must be a non-empty array");
    std::set<std::pair<std::string, int>> seen;
    for (const json& e : entries) {
      Calibration::Entry x;
      x.split = e.at("split").get<std::string>();
      x.q = e.at("q").get<int>();
      x.agreement = e.at("agreement").get<double>();
      if (!manifest.splits.count(x.split)) {
        return absl::InvalidArgumentError(absl::StrCat(where, "split '", x.split, "' is not a split of the manifest"));
      }
      if (x.q < codec::kMinQ || x.q > codec::kMaxQ) {
        return absl::InvalidArgumentError(absl::StrCat(where, "q ", x.q, " out of range"));
      }
      if (!(x.agreement >= 0 && x.agreement <= 1)) {
        return absl::InvalidArgumentError(absl::StrCat(where, "agreement of ", x.split, " q", x.q, " must be in [0, 1]"));
      }
      if (!seen.insert({x.split, x.q}).second) {
        return absl::InvalidArgumentError(absl::StrCat(where, x.split, " q", x.q, " appears twice"));
      }
      c.entries.push_back(std::move(x));
    }
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(where + e.what());
  }
  return c;
}

absl::StatusOr<Calibration> LoadCalibration(const ModelManifest& manifest) {
  const std::filesystem::path path = std::filesystem::path(manifest.dir) / "calibration.json";
  std::ifstream f(path);
  if (!f) return absl::NotFoundError(absl::StrCat(path.string(), ": not found"));
  std::stringstream ss;
  ss << f.rdbuf();
  return ParseCalibration(ss.str(), manifest);
}

// ---- LatencyPolicy ----

std::string PolicyChoice::Name() const {
  if (placement != Placement::kSplit) return PlacementName(placement);
  return absl::StrCat(split, "/q", q, "/", codec::ModeName(mode));
}

void LatencyPolicy::Ewma::Add(double x, double alpha) {
  value = set ? (1 - alpha) * value + alpha * x : x;
  set = true;
}

absl::StatusOr<std::unique_ptr<LatencyPolicy>> LatencyPolicy::Create(const ModelManifest& manifest,
                                                                     const Calibration* calibration,
                                                                     const LatencyPolicyOptions& options,
                                                                     LinkEstimator* link) {
  const double floor =
      calibration ? (options.accuracy_floor >= 0 ? options.accuracy_floor : calibration->accuracy_floor) : 0;
  std::vector<PolicyChoice> choices;
  std::vector<double> agreement;
  if (options.offload && !manifest.full_path.empty()) {
    PolicyChoice c;
    c.placement = Placement::kOffload;
    choices.push_back(c);
    agreement.push_back(1.0);
  }
  for (const auto& [name, spec] : manifest.splits) {
    // The smallest Q that meets the floor: a smaller Q never codes to more bytes.
    int q = 0;
    double agree = -1;
    if (calibration) {
      for (const Calibration::Entry& e : calibration->entries) {
        if (e.split == name && e.agreement >= floor && (q == 0 || e.q < q)) {
          q = e.q;
          agree = e.agreement;
        }
      }
      if (q == 0) continue;  // no calibrated Q of this split is accurate enough
    } else {
      q = options.fallback_q;
    }
    for (codec::Mode mode : options.modes) {
      PolicyChoice c;
      c.split = name;
      c.q = q;
      c.mode = mode;
      choices.push_back(c);
      agreement.push_back(agree);
    }
  }
  if (choices.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "policy latency: no configuration of ", manifest.name, " v", manifest.version,
        " meets the accuracy floor ", floor, " (calibration.json) and full offload is not available"));
  }
  return std::unique_ptr<LatencyPolicy>(new LatencyPolicy(std::move(choices), std::move(agreement), floor, options, link));
}

LatencyPolicy::LatencyPolicy(std::vector<PolicyChoice> choices, std::vector<double> agreement, double floor,
                             const LatencyPolicyOptions& options, LinkEstimator* link)
    : choices_(std::move(choices)),
      has_offload_(std::any_of(choices_.begin(), choices_.end(),
                               [](const PolicyChoice& c) { return c.placement == Placement::kOffload; })),
      floor_(floor), options_(options), link_(link), stats_(choices_.size()) {
  for (size_t i = 0; i < stats_.size(); ++i) stats_[i].agreement = agreement[i];
}

double LatencyPolicy::PredictUs(const Stats& s, const LinkEstimate& link, size_t queued) const {
  // With k transfers in flight, a steady choice of this payload has k of them queued on the link
  // as far as they keep it busy (its utilization: 1 on a saturated link).
  const double shared_bytes = s.bytes.value * (1 + std::max(link.in_flight, 0) * link.utilization);
  // Likewise each of the requests queued for an edge worker waits behind this much edge work,
  // shared by the workers.
  const double edge_us = s.compute.value + s.encode.value;
  const double edge_wait_us =
      edge_us * static_cast<double>(queued) / static_cast<double>(std::max(options_.edge_workers, 1));
  return edge_us + edge_wait_us + link.PredictUs(static_cast<uint64_t>(shared_bytes)) + s.cloud.value;
}

double LatencyPolicy::RankUs(int i, const LinkEstimate& link, size_t queued) const {
  double factor = 1;
  if (choices_[i].placement == Placement::kSplit) {
    if (has_offload_) factor *= 1 + kOffloadMargin;
    if (choices_[i].mode == codec::Mode::kAuto) factor *= 1 + kAutoMargin;
  }
  // The margins are on what differs between candidates: the link's RTT (and the waiting behind
  // other requests that its fit absorbs under load) is paid by every one of them.
  return std::max(PredictUs(stats_[i], link, queued) - link.rtt_us, 0.0) * factor;
}

int LatencyPolicy::Best(const LinkEstimate& link, size_t queued) const {
  int best = -1;
  double best_rank = 0;
  for (int i = 0; i < static_cast<int>(stats_.size()); ++i) {
    if (stats_[i].samples == 0) continue;
    const double r = RankUs(i, link, queued);
    if (best < 0 || r < best_rank) {
      best = i;
      best_rank = r;
    }
  }
  return best;
}

LatencyPolicy::Decision LatencyPolicy::Choose(size_t queued) {
  const LinkEstimate link = link_->Get();
  std::lock_guard<std::mutex> lock(mu_);
  ++seq_;
  Decision d;
  auto take = [&](int i, bool exploring) {
    d.index = i;
    d.choice = choices_[i];
    d.exploring = exploring;
    d.predicted_us = stats_[i].samples > 0 ? PredictUs(stats_[i], link, queued) : 0;
    ++stats_[i].pending;
    return d;
  };
  // First, measure every candidate kWarmupSamples times (one request at a time per candidate).
  for (size_t i = 0; i < stats_.size(); ++i) {
    if (stats_[i].samples < kWarmupSamples && stats_[i].pending == 0) return take(static_cast<int>(i), true);
  }
  int best = Best(link, queued);
  if (best < 0) {  // every candidate's first request is still in flight
    int least = 0;
    for (size_t i = 1; i < stats_.size(); ++i) {
      if (stats_[i].pending < stats_[least].pending) least = static_cast<int>(i);
    }
    return take(least, true);
  }
  // Hysteresis: the previous best stays unless another ranks clearly (kSwitchMargin) faster, so
  // near-equal candidates do not alternate (and the log says only what matters).
  if (last_best_ >= 0 && last_best_ != best && stats_[last_best_].samples > 0 &&
      RankUs(last_best_, link, queued) * (1 - kSwitchMargin) <= RankUs(best, link, queued)) {
    best = last_best_;
  }
  const double best_us = PredictUs(stats_[best], link, queued);
  d.changed = best != last_best_;
  last_best_ = best;
  // With k requests in flight an exploration delays the others (an expensive candidate holds the
  // edge's worker or the link in front of them): explore k times less often, so that measuring
  // costs the same share of the requests' time at any load.
  int in_flight = 1;  // this one
  for (const Stats& s : stats_) in_flight += s.pending;
  ++since_explore_;
  if (options_.explore_every > 0 &&
      since_explore_ >= static_cast<uint64_t>(options_.explore_every) * static_cast<uint64_t>(in_flight)) {
    // Refresh the least recently measured candidate that could plausibly be the best, or one not
    // measured for long whatever it is predicted (its last measurement may have been unlucky).
    const uint64_t stale = kStaleExplorations * static_cast<uint64_t>(options_.explore_every);
    int pick = -1;
    for (size_t i = 0; i < stats_.size(); ++i) {
      if (static_cast<int>(i) == best || stats_[i].pending > 0) continue;
      const bool is_stale = seq_ - stats_[i].last_seq > stale;
      if (!is_stale && PredictUs(stats_[i], link, queued) > 2 * best_us) continue;
      if (pick < 0 || stats_[i].last_seq < stats_[pick].last_seq) pick = static_cast<int>(i);
    }
    if (pick >= 0) {
      since_explore_ = 0;
      return take(pick, true);
    }
  }
  return take(best, false);
}

void LatencyPolicy::Record(const Observation& o) {
  if (o.index < 0 || o.index >= static_cast<int>(stats_.size())) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Stats& s = stats_[o.index];
    if (s.pending > 0) --s.pending;
    // Warm-up: the latest replaces; then the mean of the measurements since, until a new one's
    // weight would fall below kAlpha (a candidate measured rarely is not held at its first value).
    const double alpha =
        s.samples < kWarmupSamples
            ? 1.0
            : std::max(kAlpha, 1.0 / static_cast<double>(s.samples - kWarmupSamples + 2));
    s.compute.Add(static_cast<double>(std::max<int64_t>(o.compute_us, 0)), alpha);
    s.encode.Add(static_cast<double>(std::max<int64_t>(o.encode_us, 0)), alpha);
    s.cloud.Add(static_cast<double>(std::max<int64_t>(o.cloud_us, 0)), alpha);
    s.bytes.Add(static_cast<double>(o.bytes), alpha);
    ++s.samples;
    s.last_seq = seq_;
  }
  link_->Add(o.bytes + o.ahead_bytes, o.transfer_us, o.bytes);
}

void LatencyPolicy::Abandon(int index) {
  if (index < 0 || index >= static_cast<int>(stats_.size())) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (stats_[index].pending > 0) --stats_[index].pending;
}

std::string LatencyPolicy::Describe() const {
  std::string s;
  for (size_t i = 0; i < choices_.size(); ++i) {
    if (i) s += ", ";
    s += choices_[i].Name();
    if (stats_[i].agreement >= 0 && choices_[i].placement == Placement::kSplit) {
      absl::StrAppendFormat(&s, " (agreement %.4f)", stats_[i].agreement);
    }
  }
  return s;
}

}  // namespace splitrans::edge

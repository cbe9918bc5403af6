// The edge's view of its link to the cloud, and the adaptive "latency" policy (README "Adaptive
// policy"). Plain C++ (no gRPC, no Torch): the service feeds it what each request measured and
// asks it what the next request should do. Thread-safe.
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "codec/codec.h"
#include "common/feature_payload.h"
#include "common/model_repository.h"

namespace splitrans::edge {

// "fixed": the request's (or the edge's default) placement, split, Q and layout. "latency": the
// edge picks them per request (LatencyPolicy).
enum class PolicyKind { kFixed, kLatency };
inline constexpr const char* kPolicyNames[] = {"fixed", "latency"};
bool ParsePolicy(const std::string& s, PolicyKind* policy);
const char* PolicyName(PolicyKind policy);

// Transfer time of a payload: rtt + 8 * bytes / rate.
struct LinkEstimate {
  double rtt_us = 0;
  double bits_per_us = 0;  // = Mbit/s
  int samples = 0;         // transfers the estimate rests on (0: nothing known yet)
  int in_flight = 0;       // transfers sent and not answered yet, when the estimate was read
  // Bytes offered to the link over the last second (Begin), as a fraction of its rate, in [0, 1];
  // 1 where too little is known. Transfers in flight delay a new one only as far as they keep the
  // link busy: most of a request's time in flight may be the cloud's compute, not the link's.
  double utilization = 1;
  double PredictUs(uint64_t bytes) const;
};

// Fits LinkEstimate to the edge's own transfers (payload bytes, and the cloud round trip minus
// the time the cloud reports it spent). Concurrent transfers share the link: each sample's bytes
// are its own plus those still in flight when it was sent (Begin() says how many), so that time
// spent behind other requests' bytes is not read as a slow rate for its own. A window of recent transfers; least squares on it where
// the payload sizes differ enough to separate rtt from rate, else the rate from the bytes and
// time beyond the last rtt. `change_samples` transfers in a row that the estimate mispredicts by
// more than `change_factor` (and `change_slack_us`) mean the link changed: the older transfers
// are dropped, so the estimate follows a new link within a few requests.
class LinkEstimator {
 public:
  struct Options {
    int window = 16;
    int change_samples = 3;
    double change_factor = 2.0;
    int64_t change_slack_us = 1000;
    int floor_window = 8;  // 0: no floor
  };
  LinkEstimator() : LinkEstimator(Options{}) {}
  explicit LinkEstimator(const Options& options) : options_(options) {}

  // A transfer of `bytes` starts: returns the bytes of the transfers already in flight (the ones
  // it queues behind). Every Begin() is matched by one End() with the same bytes.
  // now_us: a steady clock in microseconds (< 0: the steady clock's now; tests pass their own).
  uint64_t Begin(uint64_t bytes, int64_t now_us = -1);
  void End(uint64_t bytes);
  // A finished transfer: `bytes` crossed the link (its own and those ahead of it) in transfer_us;
  // `own_bytes` of them were its own payload (0: all of them). No transfer is faster than its own
  // bytes' serialization, so the fastest of the last `floor_window` transfers (own bytes over
  // time) bounds the rate from below: delays that are not the link's (CPU scheduling under load,
  // on either end) make a transfer slower, never faster, so they cannot drag the estimate below
  // what was seen. That history is not dropped when a change is detected (a run of delayed
  // transfers looks like one), so after a real drop the old rate lingers for up to
  // `floor_window` transfers.
  void Add(uint64_t bytes, int64_t transfer_us, uint64_t own_bytes = 0);
  LinkEstimate Get(int64_t now_us = -1) const;
  int64_t changes() const;  // link changes detected so far

 private:
  void Refit();  // under mu_
  const Options options_;
  mutable std::mutex mu_;
  std::deque<std::pair<uint64_t, int64_t>> samples_;  // (own + ahead bytes, transfer us)
  std::deque<double> floor_rates_;  // own bytes' bits over time of the last floor_window transfers
  int surprises_ = 0, surprise_sign_ = 0;
  int64_t changes_ = 0;
  uint64_t in_flight_bytes_ = 0;
  int in_flight_ = 0;
  std::deque<std::pair<int64_t, uint64_t>> offered_;  // (Begin time, bytes), the last second's
  LinkEstimate estimate_;
};

// Accuracy of a model per split and Q, as tools/evaluate.py --calibration-out measures it
// (calibration.json in the model's version directory): the fraction of images on which the split
// model at that Q agrees with the unsplit model's top-1.
struct Calibration {
  struct Entry {
    std::string split;
    int q = 0;
    double agreement = 0;
  };
  std::string metric;           // what "agreement" measures, as the tool wrote it
  double accuracy_floor = 0.99; // the model's default floor
  std::vector<Entry> entries;
};
// NOT_FOUND when the directory has no calibration.json; INVALID_ARGUMENT when it is malformed.
absl::StatusOr<Calibration> ParseCalibration(const std::string& json_text, const ModelManifest& manifest);
absl::StatusOr<Calibration> LoadCalibration(const ModelManifest& manifest);

// One configuration the policy may pick.
struct PolicyChoice {
  Placement placement = Placement::kSplit;
  std::string split;  // kSplit
  int q = 4;
  codec::Mode mode = codec::Mode::kDense;
  std::string Name() const;  // "stage2/q2/dense" or "offload"
};

struct LatencyPolicyOptions {
  double accuracy_floor = -1;  // < 0: the calibration's
  std::vector<codec::Mode> modes = {codec::Mode::kDense, codec::Mode::kAuto};
  bool offload = true;   // full offload is a candidate (where the model has an unsplit model)
  // every n-th request (n times the requests in flight) re-measures another plausible candidate
  // (0: never)
  int explore_every = 16;
  int fallback_q = 4;    // Q of every split when the model has no calibration
  int edge_workers = 1;  // threads running preprocessing + head + encode (the edge's --workers)
};

// Per model version: the candidates (offload, and per split the smallest Q whose calibrated
// agreement meets the floor, in each layout) with online averages of what each costs (preprocess
// + head, encode, the cloud's decode + tail, payload bytes). Queue waits are left out: every
// request waits behind the same queue whatever its configuration, and a candidate measured once
// at a quiet moment would otherwise look better than the one measured all the time. The
// predicted latency of a
// candidate is those plus the link's transfer time of its bytes, times the transfers in flight
// (with k requests on the link, each one's bytes wait behind the others': choosing a larger
// payload for all of them costs k times its bytes), plus its edge work (preprocess + head +
// encode) times the requests queued for an edge worker over the workers (the same argument: a
// steady choice has every queued request wait behind that much work; at concurrency 1 the queue
// is empty and this adds nothing). Choose() returns the fastest, after trying
// each candidate four times (the first three, a model's slow first runs, are dropped), and now
// and then another plausible one (or one not measured for long) so that estimates stay fresh.
// What the prediction cannot see decides near-ties (the margins are on the prediction less the
// link's RTT, which every candidate pays): a split must be predicted 10% faster than full offload (it also spends the edge's CPU, which under load delays the requests behind it),
// and `auto` a further 5% (its coding time varies with the tensor and with load). The best changes
// only to a candidate predicted at least 10% faster (a switch has a cost the prediction does not
// see: the other model's weights and code are cold in the caches).
class LatencyPolicy {
 public:
  // calibration: null when the model has none (every split at fallback_q, no floor).
  // FAILED_PRECONDITION when no split meets the floor and offload is not a candidate.
  static absl::StatusOr<std::unique_ptr<LatencyPolicy>> Create(const ModelManifest& manifest,
                                                              const Calibration* calibration,
                                                              const LatencyPolicyOptions& options,
                                                              LinkEstimator* link);

  struct Decision {
    int index = -1;
    PolicyChoice choice;
    double predicted_us = 0;  // 0 while the candidate is not measured yet
    bool exploring = false;   // not the predicted best (a first or a refreshing measurement)
    bool changed = false;     // a different best than the previous decision's
  };
  // queued: requests waiting for an edge worker (behind this one) when it is chosen.
  Decision Choose(size_t queued = 0);

  struct Observation {
    int index = -1;
    int64_t compute_us = 0;  // preprocess + head on the edge
    int64_t encode_us = 0;
    int64_t cloud_us = 0;    // the cloud's decode + tail (not its queue: see LatencyPolicy)
    uint64_t bytes = 0;      // payload sent
    uint64_t ahead_bytes = 0;  // payloads in flight when it was sent (LinkEstimator::Begin)
    int64_t transfer_us = 0; // round trip minus cloud_us
  };
  // A chosen request succeeded (feeds the link estimate too) or failed (Abandon).
  void Record(const Observation& o);
  void Abandon(int index);

  const std::vector<PolicyChoice>& choices() const { return choices_; }
  double floor() const { return floor_; }
  // "offload, stage1/q4/dense (agreement 0.995), ..." for the start-up log.
  std::string Describe() const;

 private:
  struct Ewma {
    double value = 0;
    bool set = false;
    void Add(double x, double alpha);
  };
  struct Stats {
    Ewma compute, encode, cloud, bytes;
    int pending = 0;
    int64_t samples = 0;
    uint64_t last_seq = 0;
    double agreement = -1;  // -1: unknown (no calibration, or offload)
  };
  LatencyPolicy(std::vector<PolicyChoice> choices, std::vector<double> agreement, double floor,
                const LatencyPolicyOptions& options, LinkEstimator* link);
  double PredictUs(const Stats& s, const LinkEstimate& link, size_t queued) const;
  // PredictUs less the link's RTT (what every candidate pays), with the near-tie preferences: a
  // split's weighs 1 + kOffloadMargin (where offload is a candidate), auto's a further 1 + kAutoMargin.
  double RankUs(int i, const LinkEstimate& link, size_t queued) const;
  int Best(const LinkEstimate& link, size_t queued) const;  // the best ranked measured candidate; -1: none

  const std::vector<PolicyChoice> choices_;
  const bool has_offload_;
  const double floor_;
  const LatencyPolicyOptions options_;
  LinkEstimator* const link_;
  std::mutex mu_;
  std::vector<Stats> stats_;
  uint64_t seq_ = 0;
  uint64_t since_explore_ = 0;  // decisions since the last exploration
  int last_best_ = -1;
};

}  // namespace splitrans::edge

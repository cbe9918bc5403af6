// splitrans-edge: KServe v2 front end that runs the head of a split model, compresses the
// feature with the splitrans codec and streams it to splitrans-cloud.
#include <absl/strings/str_join.h>

#include <cstdio>
#include <iterator>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "codec/codec.h"
#include "common/feature_payload.h"
#include "common/kserve_protocol.h"
#include "common/server_main.h"
#include "edge/edge_server.h"

int main(int argc, char** argv) {
  namespace ks = splitrans::kserve;
  splitrans::edge::EdgeServerOptions opt;
  splitrans::ServerMainFlags flags;
  std::string mode = "auto", cloud_rpc = "stream", codec_device = "auto";
  std::string quantizer = "aiq";

  CLI::App app{
      "splitrans-edge: serves the KServe v2 gRPC API (inference.GRPCInferenceService). ModelInfer accepts one "
      "input: BYTES (PNG/JPEG, one per batch element), UINT8 pixels 0..255, or FP32 [C,H,W] / [B,C,H,W] "
      "(contents or raw_input_contents). FP32 values must be the normalized model input, (pixel/255 - mean) / "
      "std with the manifest's mean and std (ModelMetadata states them), unless the request parameter "
      "input_scaling=unit says they are pixel/255 in [0, 1]. A token model (manifest input.kind \"tokens\") "
      "takes INT64 or INT32 token ids [T] / [B,T] instead, each in [0, vocab). Request parameters: " +
      ks::JoinNames(ks::kRequestParams) + " (others are rejected). Runs the head, encodes the feature and "
      "sends it to splitrans-cloud. Requests over --max-inflight or --max-queue get RESOURCE_EXHAUSTED at "
      "once; the client's deadline bounds every stage. TLS on the front door with --tls-cert/--tls-key "
      "(client certificates per --tls-client-certs), to the cloud with --cloud-tls-*; bearer tokens with "
      "--auth-tokens. Health (grpc.health.v1: SERVING only while the cloud is connected) and reflection "
      "are enabled (reflection is off with --auth-tokens unless --reflection-with-auth)."};
  app.option_defaults()->always_capture_default();
  splitrans::AddServerFlags(&app, "SPLITRANS_EDGE", &opt.server, &flags);
  app.add_option("--cloud", opt.cloud.target,
                 "splitrans-cloud replica(s): host:port or dns:///host:port (every address the name "
                 "resolves to is a replica; re-resolved every --cloud-resolve-ms), ipv4:A:PORT,B:PORT,... "
                 "or ipv6:[A]:PORT,... (a static list). One stream per replica; requests go to the "
                 "connected replica with the fewest in flight and are retried once on another replica "
                 "after UNAVAILABLE")
      ->envname("SPLITRANS_CLOUD_TARGET");
  app.add_option("--cloud-resolve-ms", opt.cloud_resolve_ms,
                 "re-resolve a DNS cloud target this often (every second while no replica is connected)")
      ->envname("SPLITRANS_CLOUD_RESOLVE_MS")
      ->check(CLI::Range(100, 3600000));
  app.add_option("--model-repo", opt.pipeline.model_repo, "model repository root (<repo>/<model>/<version>/manifest.json)")
      ->envname("SPLITRANS_MODEL_REPO");
  app.add_option("--cloud-deadline-ms", opt.cloud.deadline_ms,
                 "deadline of each edge->cloud request (the client's deadline applies when it is earlier)")
      ->envname("SPLITRANS_CLOUD_DEADLINE_MS")
      ->check(CLI::Range(1, 3600000));
  app.add_option("--cloud-tls-ca", opt.cloud.tls.files.ca,
                 "PEM CA bundle that verifies the cloud's certificate: turns TLS to the cloud on")
      ->envname("SPLITRANS_EDGE_CLOUD_TLS_CA");
  app.add_option("--cloud-tls-cert", opt.cloud.tls.files.cert,
                 "PEM client certificate the edge presents to the cloud (mutual TLS)")
      ->envname("SPLITRANS_EDGE_CLOUD_TLS_CERT");
  app.add_option("--cloud-tls-key", opt.cloud.tls.files.key, "PEM private key of --cloud-tls-cert")
      ->envname("SPLITRANS_EDGE_CLOUD_TLS_KEY");
  app.add_option("--cloud-tls-server-name", opt.cloud.tls.server_name,
                 "name the cloud's certificate must carry (default: the host of --cloud)")
      ->envname("SPLITRANS_EDGE_CLOUD_TLS_SERVER_NAME");
  app.add_option("--auth-tokens", opt.auth_tokens_file,
                 "file of bearer tokens, one per line: every KServe call then needs 'authorization: Bearer "
                 "<token>' (UNAUTHENTICATED otherwise); tokens are never logged")
      ->envname("SPLITRANS_EDGE_AUTH_TOKENS");
  app.add_flag("--health-auth", opt.health_requires_auth,
               "grpc.health.v1 needs a token too (default: health stays open for probes)");
  app.add_flag("--reflection-with-auth", opt.reflection_with_auth,
               "keep server reflection on when tokens are required (default: off then)");
  app.add_option("--cloud-rpc", cloud_rpc, "stream: one long-lived multiplexed stream; unary: one Infer per request")
      ->envname("SPLITRANS_CLOUD_RPC")
      ->check(CLI::IsMember({"stream", "unary"}));
  app.add_option("--cloud-queue-bytes", opt.cloud.max_queue_bytes,
                 "bytes of features that may wait to be written to the cloud stream; more: RESOURCE_EXHAUSTED")
      ->check(CLI::Range(int64_t{1} << 16, int64_t{1} << 40));
  app.add_option("--reconnect-initial-ms", opt.cloud.initial_backoff_ms, "first reconnect backoff")
      ->check(CLI::Range(1, 60000));
  app.add_option("--reconnect-max-ms", opt.cloud.max_backoff_ms,
                 "maximum reconnect backoff: a cloud that comes back is found within about this long")
      ->check(CLI::Range(1, 600000));
  app.add_option("--keepalive-ms", opt.cloud.keepalive_ms,
                 "keepalive ping interval on the cloud connection, also when idle (the cloud's "
                 "--keepalive-min-ping-ms must not be larger)")
      ->check(CLI::Range(1, 3600000));
  app.add_option("--workers", opt.workers, "threads running preprocessing + head + encode")
      ->envname("SPLITRANS_EDGE_WORKERS")
      ->check(CLI::Range(1, 256));
  app.add_option("--max-inflight", opt.max_inflight, "requests admitted and not yet answered")
      ->envname("SPLITRANS_EDGE_MAX_INFLIGHT")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--max-queue", opt.max_queue, "admitted requests that may wait for a worker")
      ->envname("SPLITRANS_EDGE_MAX_QUEUE")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--max-request-pixels", opt.pipeline.max_request_pixels,
                 "decoded pixels (width x height summed over a request's images) one request may cost")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_option("--torch-threads", opt.torch_threads, "LibTorch intra-op threads")
      ->envname("SPLITRANS_TORCH_THREADS")
      ->check(CLI::Range(1, 256));
  app.add_option("--q", opt.default_encode.q, "default bits per quantized value (request parameter q overrides)")
      ->envname("SPLITRANS_Q")
      ->check(CLI::Range(splitrans::codec::kMinQ, splitrans::codec::kMaxQ));
  app.add_option("--codec-mode", mode, "default codec mode (request parameter codec_mode overrides)")
      ->envname("SPLITRANS_CODEC_MODE")
      ->check(CLI::IsMember(splitrans::codec::ModeNames()));
  app.add_option("--quantizer", quantizer,
                 "default quantizer (request parameter quantizer overrides): aiq = the paper's AIQ over [min, max]; "
                 "clip = AIQ over a clipped range chosen by squared reconstruction error (outliers are clamped; "
                 "better at low q on heavy-tailed features; encoded on the CPU; not with --codec-mode paper)")
      ->envname("SPLITRANS_QUANTIZER")
      ->check(CLI::IsMember({"aiq", "clip"}))
      ->capture_default_str();
  app.add_option("--codec-device", codec_device,
                 "where the codec runs: auto (GPU when one is usable, else CPU; logged at start), cpu, or gpu "
                 "(refuse to start without a usable GPU). The GPU codes the dense layout; other layouts "
                 "always run on the CPU")
      ->envname("SPLITRANS_CODEC_DEVICE")
      ->check(CLI::IsMember({"auto", "cpu", "gpu"}));
  app.add_option("--top-k", opt.default_top_k, "default top-k (request parameter top_k overrides)")
      ->check(CLI::Range(1, 100));
  std::string placement = "split", feature_codec = "srns";
  app.add_option("--placement", placement,
                 "default placement (request parameter placement overrides): split (head here, tail in the cloud), "
                 "offload (the input goes to the cloud, which runs the unsplit model) or local (the unsplit model "
                 "runs here; nothing is sent)")
      ->envname("SPLITRANS_PLACEMENT")
      ->check(CLI::IsMember(std::vector<std::string>(std::begin(splitrans::kPlacementNames),
                                                     std::end(splitrans::kPlacementNames))));
  app.add_option("--feature-codec", feature_codec,
                 "default coding of split features (request parameter feature_codec overrides): srns (the codec), "
                 "raw (float32) or zstd (zstd -3 of the AIQ symbols at --q bits); raw and zstd are baselines")
      ->envname("SPLITRANS_FEATURE_CODEC")
      ->check(CLI::IsMember(std::vector<std::string>(std::begin(splitrans::kFeatureWireNames),
                                                     std::end(splitrans::kFeatureWireNames))));
  std::string policy = "fixed";
  app.add_option("--policy", policy,
                 "default policy (request parameter policy overrides): fixed (the request's parameters, else these "
                 "defaults) or latency (per request the edge picks placement, split, q and codec_mode that minimise "
                 "the latency it predicts from its own measurements of the link and of each stage, among the "
                 "configurations whose calibrated accuracy meets the floor; a request that sets one of those "
                 "parameters is served as fixed). README \"Adaptive policy\"")
      ->envname("SPLITRANS_POLICY")
      ->check(CLI::IsMember(std::vector<std::string>(std::begin(splitrans::edge::kPolicyNames),
                                                     std::end(splitrans::edge::kPolicyNames))));
  app.add_option("--accuracy-floor", opt.latency_policy.accuracy_floor,
                 "policy latency: the least top-1 agreement with the unsplit model (calibration.json) a split and q "
                 "must have; negative: each model's calibration.json accuracy_floor")
      ->envname("SPLITRANS_ACCURACY_FLOOR")
      ->check(CLI::Range(-1.0, 1.0));
  app.add_option("--policy-explore-every", opt.latency_policy.explore_every,
                 "policy latency: every n-th request (n times the requests in flight) re-measures another "
                 "configuration predicted within 2x of the best (0: never, after each has been measured once)")
      ->check(CLI::Range(0, 1000000));
  app.add_flag("!--policy-no-offload", opt.latency_policy.offload,
               "policy latency: never choose full offload (the input to the cloud's unsplit model)");
  CLI11_PARSE(app, argc, argv);
  splitrans::edge::ParsePolicy(policy, &opt.default_policy);
  splitrans::ParsePlacement(placement, &opt.default_placement);
  splitrans::ParseFeatureWire(feature_codec, &opt.default_wire);
  splitrans::ApplyServerFlags(flags, &opt.server);
  splitrans::codec::ParseMode(mode, &opt.default_encode.mode);
  splitrans::codec::ParseQuantizer(quantizer, &opt.default_encode.quantizer);
  if (opt.default_encode.quantizer == splitrans::codec::Quantizer::kClip &&
      opt.default_encode.mode == splitrans::codec::Mode::kPaper) {
    std::fprintf(stderr, "--quantizer clip cannot be combined with --codec-mode paper (paper mode quantizes over "
                         "[min, max])\n");
    return 2;
  }
  splitrans::ParseCodecDevice(codec_device, &opt.pipeline.codec_device);
  opt.cloud.use_stream = cloud_rpc == "stream";
  opt.cloud.max_message_bytes = opt.server.max_message_bytes;
  return splitrans::ServeUntilSignal<splitrans::edge::EdgeServer>(opt, "edge", flags);
}

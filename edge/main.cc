// splitrans-edge: KServe v2 front end that runs the head of a split model, compresses the
// feature with the splitrans codec and streams it to splitrans-cloud.
#include <CLI/CLI.hpp>

#include "codec/codec.h"
#include "common/server_main.h"
#include "edge/edge_server.h"

int main(int argc, char** argv) {
  splitrans::edge::EdgeServerOptions opt;
  std::string log_level = "info", mode = "auto", cloud_rpc = "stream", codec_device = "auto";
  int grace_ms = 2000;

  CLI::App app{"splitrans-edge: serves the KServe v2 gRPC API (inference.GRPCInferenceService). "
               "ModelInfer accepts one input: BYTES (PNG/JPEG, one per batch element), UINT8 pixels "
               "or FP32 normalized tensors [C,H,W] / [B,C,H,W] (contents or raw_input_contents); "
               "request parameters: q (int64), codec_mode (auto|paper|dense|sparse|context), split "
               "(e.g. stage1|stage2|stage3), top_k. Runs the head, encodes the feature and sends it "
               "to splitrans-cloud. Health (grpc.health.v1) and reflection are enabled."};
  app.option_defaults()->always_capture_default();
  app.add_option("--listen", opt.listen_address, "host:port to listen on (port 0: pick a free one)")
      ->envname("SPLITRANS_EDGE_ADDR");
  app.add_option("--cloud", opt.cloud.target, "splitrans-cloud address (host:port)")
      ->envname("SPLITRANS_CLOUD_TARGET");
  app.add_option("--model-repo", opt.pipeline.model_repo,
                 "model repository root (<repo>/<model>/<version>/manifest.json)")
      ->envname("SPLITRANS_MODEL_REPO");
  app.add_option("--cloud-deadline-ms", opt.cloud.deadline_ms, "deadline of each edge->cloud request")
      ->envname("SPLITRANS_CLOUD_DEADLINE_MS")->check(CLI::Range(1, 3600000));
  app.add_option("--cloud-rpc", cloud_rpc, "stream: one long-lived multiplexed stream; unary: one Infer per request")
      ->envname("SPLITRANS_CLOUD_RPC")->check(CLI::IsMember({"stream", "unary"}));
  app.add_option("--reconnect-initial-ms", opt.cloud.initial_backoff_ms, "first reconnect backoff")
      ->check(CLI::Range(1, 60000));
  app.add_option("--reconnect-max-ms", opt.cloud.max_backoff_ms, "maximum reconnect backoff")
      ->check(CLI::Range(1, 600000));
  app.add_option("--workers", opt.workers, "threads running preprocessing + head + encode")
      ->envname("SPLITRANS_EDGE_WORKERS")->check(CLI::Range(1, 256));
  app.add_option("--torch-threads", opt.torch_threads, "LibTorch intra-op threads")
      ->envname("SPLITRANS_TORCH_THREADS")->check(CLI::Range(1, 256));
  app.add_option("--q", opt.default_encode.q, "default bits per quantized value (request parameter q overrides)")
      ->envname("SPLITRANS_Q")->check(CLI::Range(splitrans::codec::kMinQ, splitrans::codec::kMaxQ));
  app.add_option("--codec-mode", mode, "default codec mode (request parameter codec_mode overrides)")
      ->envname("SPLITRANS_CODEC_MODE")->check(CLI::IsMember({"auto", "paper", "dense", "sparse", "context"}));
  app.add_option("--codec-device", codec_device,
                 "where the codec runs: auto (GPU when one is usable, else CPU; logged at start), "
                 "cpu, or gpu (refuse to start without a usable GPU). The GPU codes the dense "
                 "layout; other layouts always run on the CPU")
      ->envname("SPLITRANS_CODEC_DEVICE")->check(CLI::IsMember({"auto", "cpu", "gpu"}));
  app.add_option("--top-k", opt.default_top_k, "default top-k (request parameter top_k overrides)")
      ->check(CLI::Range(1, 100));
  app.add_option("--max-message-bytes", opt.max_message_bytes, "gRPC max send/receive message size (both sides)")
      ->envname("SPLITRANS_MAX_MESSAGE_BYTES")->check(CLI::Range(4096, 1 << 30));
  app.add_option("--grace-ms", grace_ms, "shutdown grace period for open calls");
  bool no_reflection = false;
  app.add_flag("--no-reflection", no_reflection, "disable gRPC server reflection (on by default)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->envname("SPLITRANS_LOG_LEVEL");
  CLI11_PARSE(app, argc, argv);
  opt.reflection = !no_reflection;

  splitrans::codec::ParseMode(mode, &opt.default_encode.mode);
  splitrans::ParseCodecDevice(codec_device, &opt.pipeline.codec_device);
  opt.cloud.use_stream = cloud_rpc == "stream";
  opt.cloud.max_message_bytes = opt.max_message_bytes;
  return splitrans::ServeUntilSignal<splitrans::edge::EdgeServer>(opt, "edge", log_level, grace_ms);
}

// splitrans-cloud: decodes compressed features from edges and runs the tail of split models.
#include <CLI/CLI.hpp>

#include "cloud/cloud_server.h"
#include "common/server_main.h"

int main(int argc, char** argv) {
  splitrans::cloud::CloudServerOptions opt;
  std::string log_level = "info", codec_device = "auto";
  int grace_ms = 2000;

  CLI::App app{"splitrans-cloud: serves splitrans.v1.SplitInference (Stream, Infer): decodes codec "
               "bitstreams from edges, runs the tail of each split model, returns logits + top-k. "
               "Health (grpc.health.v1) and reflection are enabled."};
  app.option_defaults()->always_capture_default();
  app.add_option("--listen", opt.listen_address, "host:port to listen on (port 0: pick a free one)")
      ->envname("SPLITRANS_CLOUD_ADDR");
  app.add_option("--model-repo", opt.pipeline.model_repo,
                 "model repository root (<repo>/<model>/<version>/manifest.json)")
      ->envname("SPLITRANS_MODEL_REPO");
  app.add_option("--workers", opt.workers, "threads running decode + tail")
      ->envname("SPLITRANS_CLOUD_WORKERS")->check(CLI::Range(1, 256));
  app.add_option("--torch-threads", opt.torch_threads, "LibTorch intra-op threads")
      ->envname("SPLITRANS_TORCH_THREADS")->check(CLI::Range(1, 256));
  app.add_option("--codec-device", codec_device,
                 "where the codec runs: auto (GPU when one is usable, else CPU; logged at start), "
                 "cpu, or gpu (refuse to start without a usable GPU). The GPU decodes the dense "
                 "layout; other layouts always run on the CPU")
      ->envname("SPLITRANS_CODEC_DEVICE")->check(CLI::IsMember({"auto", "cpu", "gpu"}));
  app.add_option("--top-k", opt.pipeline.default_top_k, "default top-k when a request sends 0")
      ->envname("SPLITRANS_TOP_K")->check(CLI::Range(1, 100));
  app.add_option("--max-message-bytes", opt.max_message_bytes, "gRPC max send/receive message size")
      ->envname("SPLITRANS_MAX_MESSAGE_BYTES")->check(CLI::Range(4096, 1 << 30));
  app.add_option("--max-inflight-per-stream", opt.max_inflight_per_stream,
                 "requests in progress per edge stream before reading pauses")
      ->check(CLI::Range(1, 1 << 16));
  app.add_option("--grace-ms", grace_ms, "shutdown grace period for open calls");
  bool no_reflection = false;
  app.add_flag("--no-reflection", no_reflection, "disable gRPC server reflection (on by default)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error")
      ->envname("SPLITRANS_LOG_LEVEL");
  CLI11_PARSE(app, argc, argv);
  opt.reflection = !no_reflection;
  splitrans::ParseCodecDevice(codec_device, &opt.pipeline.codec_device);

  return splitrans::ServeUntilSignal<splitrans::cloud::CloudServer>(opt, "cloud", log_level,
                                                                    grace_ms);
}

// splitrans-cloud: decodes compressed features from edges and runs the tail of split models.
#include <CLI/CLI.hpp>

#include "cloud/cloud_server.h"
#include "common/server_main.h"

int main(int argc, char** argv) {
  splitrans::cloud::CloudServerOptions opt;
  splitrans::ServerMainFlags flags;
  std::string codec_device = "auto";

  CLI::App app{"splitrans-cloud: serves splitrans.v1.SplitInference (Stream, Infer): decodes codec bitstreams "
               "(or the raw/zstd baselines) from edges, runs the tail of each split model, returns logits + top-k; "
               "for full offload it runs the unsplit model on the input the edge forwards. Requests over "
               "--max-queue get RESOURCE_EXHAUSTED; requests whose deadline passed are dropped before "
               "decoding. On SIGTERM edges are asked to drain their streams and in-flight requests are "
               "answered within --grace-ms. TLS with --tls-cert/--tls-key; mutual TLS (edges must present a "
               "certificate from --tls-ca) by default once --tls-ca is given. Health (grpc.health.v1) and "
               "reflection are enabled. Prometheus metrics (plain HTTP, GET /metrics) with --metrics-listen."};
  app.option_defaults()->always_capture_default();
  splitrans::AddServerFlags(&app, "SPLITRANS_CLOUD", &opt.server, &flags);
  app.add_option("--model-repo", opt.pipeline.model_repo, "model repository root (<repo>/<model>/<version>/manifest.json)")
      ->envname("SPLITRANS_MODEL_REPO");
  app.add_option("--workers", opt.workers, "threads running decode + tail")
      ->envname("SPLITRANS_CLOUD_WORKERS")
      ->check(CLI::Range(1, 256));
  app.add_option("--max-queue", opt.max_queue, "requests (of all streams and calls) that may wait for a worker")
      ->envname("SPLITRANS_CLOUD_MAX_QUEUE")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--max-inflight-per-stream", opt.max_inflight_per_stream,
                 "requests in progress per edge stream before reading it pauses (flow control)")
      ->check(CLI::Range(1, 1 << 16));
  app.add_option("--torch-threads", opt.torch_threads, "LibTorch intra-op threads")
      ->envname("SPLITRANS_TORCH_THREADS")
      ->check(CLI::Range(1, 256));
  app.add_option("--codec-device", codec_device,
                 "where the codec runs: auto (GPU when one is usable, else CPU; logged at start), cpu, or gpu "
                 "(refuse to start without a usable GPU). The GPU decodes the dense layout; other layouts "
                 "always run on the CPU")
      ->envname("SPLITRANS_CODEC_DEVICE")
      ->check(CLI::IsMember({"auto", "cpu", "gpu"}));
  app.add_option("--top-k", opt.pipeline.default_top_k, "default top-k when a request sends 0")
      ->envname("SPLITRANS_TOP_K")
      ->check(CLI::Range(1, 100));
  app.add_option("--max-request-pixels", opt.pipeline.max_request_pixels,
                 "full offload: decoded pixels (width x height, summed over a request's images) one request may cost")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  CLI11_PARSE(app, argc, argv);
  splitrans::ApplyServerFlags(flags, &opt.server);
  splitrans::ParseCodecDevice(codec_device, &opt.pipeline.codec_device);
  return splitrans::ServeUntilSignal<splitrans::cloud::CloudServer>(opt, "cloud", flags);
}

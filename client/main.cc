// splitrans-client: KServe v2 client for splitrans-edge. Subcommands: infer (images / .npy),
// eval (Fashion-MNIST test set with accuracy, compression and latency breakdown), health.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "client/dataset.h"
#include "client/eval.h"
#include "proto/health.grpc.pb.h"

namespace sc = splitrans::client;

namespace {

int RunInfer(const std::string& edge, const sc::InferSettings& s, const std::vector<std::string>& files,
             int deadline_ms) {
  auto stub = inference::GRPCInferenceService::NewStub(sc::MakeChannel(edge));
  int failures = 0;
  for (const auto& path : files) {
    inference::ModelInferRequest req;
    sc::SetParameters(s, &req);
    req.set_id(path);
    auto* in = req.add_inputs();
    in->set_name("input");
    if (path.size() > 4 && path.substr(path.size() - 4) == ".npy") {
      auto arr = sc::ReadNpy(path);
      if (!arr.ok()) {
        std::cerr << path << ": " << arr.status().message() << "\n";
        ++failures;
        continue;
      }
      in->set_datatype(arr->dtype);
      for (int64_t d : arr->shape) in->add_shape(d);
      req.add_raw_input_contents(std::string(arr->data.begin(), arr->data.end()));
    } else {
      std::ifstream f(path, std::ios::binary);
      if (!f) {
        std::cerr << path << ": cannot open\n";
        ++failures;
        continue;
      }
      std::stringstream ss;
      ss << f.rdbuf();
      in->set_datatype("BYTES");
      in->add_shape(1);
      in->mutable_contents()->add_bytes_contents(ss.str());
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
    inference::ModelInferResponse resp;
    auto t0 = std::chrono::steady_clock::now();
    grpc::Status st = stub->ModelInfer(&ctx, req, &resp);
    double e2e_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!st.ok()) {
      std::cerr << path << ": error " << st.error_code() << ": " << st.error_message() << "\n";
      ++failures;
      continue;
    }
    std::cout << path << "\n  top-k (score:index:label):";
    for (const auto& l : sc::GetTopkLabels(resp)) std::cout << "  " << l;
    const int64_t fb = sc::GetIntParam(resp, "feature_bytes"), rb = sc::GetIntParam(resp, "raw_feature_bytes");
    auto str_param = [&resp](const char* k) -> std::string {
      return resp.parameters().count(k) ? resp.parameters().at(k).string_param() : "";
    };
    std::cout << "\n  model " << resp.model_name() << "/" << resp.model_version() << ", split "
              << str_param("split") << ", q " << sc::GetIntParam(resp, "q") << ", codec "
              << str_param("codec_mode") << " (encode " << str_param("encode_device") << ", decode "
              << str_param("decode_device") << ")\n  feature: " << fb << " bytes on the wire ("
              << rb << " raw float32, " << (fb ? static_cast<double>(rb) / fb : 0) << "x), request "
              << req.ByteSizeLong() << " bytes, response " << resp.ByteSizeLong() << " bytes\n  latency (ms):";
    for (const char* k : {"preprocess_us", "head_us", "encode_us", "transfer_us", "decode_us", "tail_us", "edge_total_us"}) {
      std::string name(k);
      std::cout << " " << name.substr(0, name.size() - 3) << " " << sc::GetIntParam(resp, k) / 1000.0;
    }
    std::cout << " end_to_end " << e2e_ms << "\n";
  }
  return failures ? 1 : 0;
}

// KServe ServerReady (the edge is ready when its cloud stream is up).
int RunReady(const std::string& addr, int wait_ms) {
  auto stub = inference::GRPCInferenceService::NewStub(sc::MakeChannel(addr));
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  std::string last;
  do {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(1000));
    inference::ServerReadyResponse resp;
    grpc::Status st = stub->ServerReady(&ctx, {}, &resp);
    if (st.ok() && resp.ready()) {
      std::cout << addr << ": READY\n";
      return 0;
    }
    last = st.ok() ? "not ready" : st.error_message();
    if (std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  } while (true);
  std::cout << addr << ": " << last << "\n";
  return 1;
}

int RunHealth(const std::string& addr, const std::string& service, int wait_ms) {
  auto stub = grpc::health::v1::Health::NewStub(sc::MakeChannel(addr));
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  std::string last;
  do {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(1000));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status st = stub->Check(&ctx, req, &resp);
    if (st.ok() && resp.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      std::cout << addr << ": SERVING\n";
      return 0;
    }
    last = st.ok() ? grpc::health::v1::HealthCheckResponse::ServingStatus_Name(resp.status())
                   : st.error_message();
    if (std::chrono::steady_clock::now() >= until) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  } while (true);
  std::cout << addr << ": " << last << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"splitrans-client: KServe v2 client for splitrans-edge"};
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  std::string edge = "127.0.0.1:8001";
  sc::InferSettings settings;
  int deadline_ms = 30000;
  auto add_common = [&](CLI::App* cmd) {
    cmd->add_option("--edge", edge, "splitrans-edge address")->envname("SPLITRANS_EDGE_TARGET");
    cmd->add_option("--model", settings.model, "model name");
    cmd->add_option("--model-version", settings.model_version, "model version (empty: latest)");
    cmd->add_option("--q", settings.q, "bits per quantized feature value (1..8)")->check(CLI::Range(1, 8));
    cmd->add_option("--mode", settings.mode, "codec mode")
        ->check(CLI::IsMember({"auto", "paper", "dense", "sparse", "context"}));
    cmd->add_option("--split", settings.split, "split point (stage1|stage2|stage3; empty: model default)");
    cmd->add_option("--top-k", settings.top_k, "top-k labels")->check(CLI::Range(1, 100));
    cmd->add_option("--deadline-ms", deadline_ms, "deadline per request")->check(CLI::Range(1, 3600000));
  };

  auto* infer = app.add_subcommand("infer", "classify PNG/JPEG images or .npy tensors ([1,28,28] / [B,1,28,28]; "
                                            "float = normalized model input, uint8 = pixels)");
  add_common(infer);
  std::vector<std::string> files;
  infer->add_option("files", files, "image (.png/.jpg) or .npy files")->required()->check(CLI::ExistingFile);

  auto* eval = app.add_subcommand("eval", "evaluate over the Fashion-MNIST test set: accuracy vs the unsplit "
                                          "model, compression ratio, latency percentiles");
  add_common(eval);
  sc::EvalOptions eo;
  bool json = false, no_progress = false, no_unsplit = false;
  eval->add_option("--model-repo", eo.model_repo, "model repository (for the unsplit full.pt run locally)")
      ->envname("SPLITRANS_MODEL_REPO");
  eval->add_option("--images", eo.images, "IDX image file (gzip'd)");
  eval->add_option("--labels", eo.labels, "IDX label file (gzip'd)");
  eval->add_option("--limit", eo.limit, "evaluate the first N images (0: all)")->check(CLI::NonNegativeNumber);
  eval->add_option("--concurrency", eo.concurrency, "requests in flight")->check(CLI::Range(1, 1024));
  eval->add_option("--batch", eo.batch, "images per request")->check(CLI::Range(1, 256));
  eval->add_flag("--json", json, "print the summary as JSON on stdout");
  eval->add_flag("--no-progress", no_progress, "no progress bar on stderr");
  eval->add_flag("--no-unsplit", no_unsplit, "skip the local unsplit reference run");

  auto* health = app.add_subcommand("health", "check grpc.health.v1 (exit 0 when SERVING)");
  std::string health_addr = "127.0.0.1:8001", service;
  int wait_ms = 0;
  health->add_option("--addr", health_addr, "server address");
  health->add_option("--service", service, "service name (empty: whole server)");
  health->add_option("--wait-ms", wait_ms, "keep trying for this long");
  bool kserve_ready = false;
  health->add_flag("--ready", kserve_ready, "check KServe ServerReady instead (edge: cloud connected)");

  CLI11_PARSE(app, argc, argv);

  if (*infer) return RunInfer(edge, settings, files, deadline_ms);
  if (*health) {
    return kserve_ready ? RunReady(health_addr, wait_ms) : RunHealth(health_addr, service, wait_ms);
  }
  eo.edge = edge;
  eo.infer = settings;
  eo.deadline_ms = deadline_ms;
  eo.unsplit = !no_unsplit;
  eo.progress = !no_progress && isatty(2);
  auto sum = sc::RunEval(eo);
  if (!sum.ok()) {
    std::cerr << "eval: " << sum.status().ToString() << "\n";
    return 1;
  }
  std::cout << (json ? sum->ToJson() + "\n" : sum->ToText());
  return sum->failed_requests == 0 ? 0 : 2;
}

// splitrans-client: KServe v2 client for splitrans-edge. Subcommands: infer (images / .npy, or
// --text for a token model), eval (Fashion-MNIST test set, a directory of JPEG/PNG files, or --text
// next-character prediction, with accuracy, compression and latency breakdown), load, health.
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "client/dataset.h"
#include "client/eval.h"
#include "client/load.h"
#include "codec/codec.h"
#include "codec/npy.h"
#include "common/kserve_protocol.h"
#include "common/model_repository.h"
#include "proto/health.grpc.pb.h"

namespace sc = splitrans::client;
namespace ks = splitrans::kserve;

namespace {

int RunInfer(const std::shared_ptr<grpc::Channel>& channel, const sc::InferSettings& s,
             const std::vector<std::string>& files, int deadline_ms, const std::string& input_scaling) {
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  int failures = 0;
  for (const auto& path : files) {
    inference::ModelInferRequest req;
    sc::SetParameters(s, &req);
    req.set_id(path);
    auto* in = req.add_inputs();
    in->set_name("input");
    if (path.size() > 4 && path.substr(path.size() - 4) == ".npy") {
      auto arr = splitrans::codec::ReadNpy(path, /*accept_uint8=*/true);
      if (!arr.ok()) {
        std::cerr << path << ": " << arr.status().ToString() << "\n";
        ++failures;
        continue;
      }
      for (int64_t d : arr->shape) in->add_shape(d);
      if (arr->is_uint8) {
        in->set_datatype("UINT8");
        req.add_raw_input_contents(std::string(arr->bytes.begin(), arr->bytes.end()));
      } else {
        in->set_datatype("FP32");
        std::vector<float> values(arr->ElementCount());
        if (arr->dtype == splitrans::codec::DType::kFloat16) {
          splitrans::codec::HalvesToFloats(reinterpret_cast<const uint16_t*>(arr->bytes.data()), values.size(),
                                           values.data());
        } else {
          std::memcpy(values.data(), arr->bytes.data(), arr->bytes.size());
        }
        req.add_raw_input_contents(std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4));
        (*req.mutable_parameters())[ks::kParamInputScaling].set_string_param(input_scaling);
      }
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
    const int64_t fb = sc::GetIntParam(resp, ks::kRespFeatureBytes), rb = sc::GetIntParam(resp, ks::kRespRawFeatureBytes);
    auto str_param = [&resp](const char* k) -> std::string {
      auto it = resp.parameters().find(k);
      return it != resp.parameters().end() ? it->second.string_param() : "";
    };
    std::cout << "\n  model " << resp.model_name() << "/" << resp.model_version() << ", split "
              << str_param(ks::kRespSplit) << " (placement " << str_param(ks::kRespPlacement) << ", policy "
              << str_param(ks::kRespPolicy) << "), q " << sc::GetIntParam(resp, ks::kRespQ) << ", codec "
              << str_param(ks::kRespCodecMode) << " (encode " << str_param(ks::kRespEncodeDevice) << ", decode "
              << str_param(ks::kRespDecodeDevice) << ")\n  feature: " << fb << " bytes on the wire ("
              << rb << " raw float32, " << (fb ? static_cast<double>(rb) / fb : 0) << "x), request "
              << req.ByteSizeLong() << " bytes, response " << resp.ByteSizeLong() << " bytes\n  latency (ms):";
    for (const char* k : ks::kTimingParams) {
      std::string name(k);
      std::cout << " " << name.substr(0, name.size() - 3) << " " << sc::GetIntParam(resp, k) / 1000.0;
    }
    std::cout << " end_to_end " << e2e_ms << "\n";
  }
  return failures ? 1 : 0;
}

// KServe ServerReady (the edge is ready when its cloud stream is up).
int RunReady(const std::string& addr, const std::shared_ptr<grpc::Channel>& channel, int wait_ms) {
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  std::string last;
  do {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(1000));
    ctx.set_wait_for_ready(true);
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

int RunHealth(const std::string& addr, const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
              int wait_ms) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  std::string last;
  do {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(1000));
    ctx.set_wait_for_ready(true);  // a server that comes up meanwhile answers this attempt
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

// infer --text: the last T characters of text as token ids (T the manifest's input length), the
// top-k next characters printed.
int RunInferText(const std::shared_ptr<grpc::Channel>& channel, const sc::InferSettings& s, const std::string& text,
                 const std::string& model_repo, int deadline_ms) {
  auto repo = splitrans::ModelRepository::Load(model_repo);
  if (!repo.ok()) {
    std::cerr << "infer: " << repo.status().message() << " (--model-repo: the manifest maps characters to ids)\n";
    return 1;
  }
  auto m = repo->Find(s.model, s.model_version);
  if (!m.ok()) {
    std::cerr << "infer: " << m.status().message() << "\n";
    return 1;
  }
  if (!(*m)->IsTokens()) {
    std::cerr << "infer: model '" << s.model << "' takes images: --text needs a token model\n";
    return 1;
  }
  auto ids = sc::TextToTokens(text, (*m)->labels);
  if (!ids.ok()) {
    std::cerr << "infer: --text: " << ids.status().message() << "\n";
    return 1;
  }
  const int64_t len = (*m)->input_shape[0];
  if (static_cast<int64_t>(ids->size()) < len) {
    std::cerr << "infer: --text has " << ids->size() << " characters; model '" << s.model << "' needs at least " << len
              << " (the last " << len << " are used; there is no padding)\n";
    return 1;
  }
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  inference::ModelInferRequest req = sc::MakeTokenRequest(s, ids->data() + ids->size() - len, 1, len);
  req.set_id("text");
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
  inference::ModelInferResponse resp;
  grpc::Status st = stub->ModelInfer(&ctx, req, &resp);
  if (!st.ok()) {
    std::cerr << "infer: error " << st.error_code() << ": " << st.error_message() << "\n";
    return 1;
  }
  std::cout << "next character after the last " << len << " (top-k, probability):";
  for (const std::string& e : sc::GetTopkLabels(resp)) {  // score:index:label; the label may be ':'
    const size_t a = e.find(':'), b = a == std::string::npos ? a : e.find(':', a + 1);
    if (b == std::string::npos) continue;
    std::cout << "  '" << sc::ShowChar(e.substr(b + 1)) << "' " << e.substr(0, a);
  }
  auto str_param = [&resp](const char* k) -> std::string {
    auto it = resp.parameters().find(k);
    return it != resp.parameters().end() ? it->second.string_param() : "";
  };
  std::cout << "\n  model " << resp.model_name() << "/" << resp.model_version() << ", split " << str_param(ks::kRespSplit)
            << " (placement " << str_param(ks::kRespPlacement) << "), " << sc::GetIntParam(resp, ks::kRespFeatureBytes)
            << " bytes sent (" << sc::GetIntParam(resp, ks::kRespRawFeatureBytes) << " raw)\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"splitrans-client: KServe v2 client for splitrans-edge"};
  app.require_subcommand(1);
  app.option_defaults()->always_capture_default();
  std::string edge = "127.0.0.1:8001";
  sc::InferSettings settings;
  int deadline_ms = 30000;
  sc::ChannelSecurity security;
  std::string token_file;
  auto add_security = [&](CLI::App* cmd) {
    cmd->add_option("--tls-ca", security.tls.files.ca, "PEM CA bundle that verifies the server: turns TLS on")
        ->envname("SPLITRANS_CLIENT_TLS_CA");
    cmd->add_option("--tls-cert", security.tls.files.cert, "PEM client certificate (mutual TLS)")
        ->envname("SPLITRANS_CLIENT_TLS_CERT");
    cmd->add_option("--tls-key", security.tls.files.key, "PEM private key of --tls-cert")
        ->envname("SPLITRANS_CLIENT_TLS_KEY");
    cmd->add_option("--tls-server-name", security.tls.server_name,
                    "name the server's certificate must carry (default: the host of the address)")
        ->envname("SPLITRANS_CLIENT_TLS_SERVER_NAME");
    cmd->add_option("--token-file", token_file,
                    "file whose first line is the bearer token to send (the edge's --auth-tokens format)")
        ->envname("SPLITRANS_TOKEN_FILE");
  };
  auto add_common = [&](CLI::App* cmd) {
    add_security(cmd);
    cmd->add_option("--edge", edge, "splitrans-edge address")->envname("SPLITRANS_EDGE_TARGET");
    cmd->add_option("--model", settings.model, "model name");
    cmd->add_option("--model-version", settings.model_version, "model version (empty: latest)");
    cmd->add_option("--q", settings.q, "bits per quantized feature value")
        ->check(CLI::Range(splitrans::codec::kMinQ, splitrans::codec::kMaxQ));
    cmd->add_option("--mode", settings.mode, "codec mode")->check(CLI::IsMember(splitrans::codec::ModeNames()));
    cmd->add_option("--quantizer", settings.quantizer,
                    "aiq (AIQ over [min, max]) | clip (AIQ over a range clipped by squared error); empty: the edge's "
                    "default")
        ->check(CLI::IsMember({"", "aiq", "clip"}));
    cmd->add_option("--split", settings.split, "split point, one of the manifest's splits (e.g. stage2, block2; empty: model default)");
    cmd->add_option("--top-k", settings.top_k, "top-k labels")->check(CLI::Range(1, 100));
    cmd->add_option("--placement", settings.placement,
                    "split | offload (the cloud runs the unsplit model) | local (the edge does); empty: the edge's "
                    "default")
        ->check(CLI::IsMember({"", "split", "offload", "local"}));
    cmd->add_option("--feature-codec", settings.feature_codec,
                    "srns (the codec) | raw (float32) | zstd (zstd -3 of the AIQ symbols); empty: the edge's default")
        ->check(CLI::IsMember({"", "srns", "raw", "zstd"}));
    cmd->add_option("--policy", settings.policy,
                    "edge policy: fixed (the parameters above) or latency (the edge picks placement, split, q and "
                    "codec_mode; they are not sent); empty: the edge's default")
        ->check(CLI::IsMember({"", "fixed", "latency"}));
    cmd->add_option("--deadline-ms", deadline_ms, "deadline per request")->check(CLI::Range(1, 3600000));
  };

  auto* infer = app.add_subcommand("infer", "classify PNG/JPEG images or .npy tensors ([1,28,28] / [B,1,28,28]; "
                                            "<f4/<f2 = model input scaled as --input-scaling says, |u1 = pixels), "
                                            "or with --text the next character of a token model");
  add_common(infer);
  std::vector<std::string> files;
  std::string input_scaling = ks::kScalingNormalized, infer_text, infer_repo = "models";
  infer->add_option("files", files, "image (.png/.jpg) or .npy files")->check(CLI::ExistingFile);
  infer->add_option("--text", infer_text,
                    "token model (e.g. --model kjv_charlm): print the top-k characters after this text; it must "
                    "have at least T characters (the manifest's input length) and the last T are sent as INT64 ids")
      ->excludes("files");
  infer->add_option("--model-repo", infer_repo, "model repository (with --text: the manifest's labels map characters "
                                                "to token ids)")
      ->envname("SPLITRANS_MODEL_REPO");
  infer->add_option("--input-scaling", input_scaling,
                    "float .npy values: normalized = (pixel/255 - mean) / std, unit = pixel/255 in [0, 1]")
      ->check(CLI::IsMember(std::vector<std::string>(std::begin(ks::kScalings), std::end(ks::kScalings))));

  auto* eval = app.add_subcommand("eval", "evaluate over the Fashion-MNIST test set (or --image-dir, or --text for a "
                                          "token model): accuracy vs the unsplit model, compression ratio, latency "
                                          "percentiles");
  add_common(eval);
  sc::EvalOptions eo;
  bool json = false, no_progress = false, no_unsplit = false;
  eval->add_option("--model-repo", eo.model_repo, "model repository (for the unsplit full.pt run locally)")
      ->envname("SPLITRANS_MODEL_REPO");
  eval->add_option("--images", eo.images, "IDX image file (gzip'd)");
  eval->add_option("--labels", eo.labels, "IDX label file (gzip'd)");
  eval->add_option("--image-dir", eo.image_dir,
                   "evaluate on the .jpg/.jpeg/.png files of this directory (sorted; each sent as it is, BYTES) "
                   "instead of --images/--labels; no labels: accuracy = top-1 agreement with the unsplit model")
      ->check(CLI::ExistingDirectory);
  eval->add_option("--text", eo.text,
                   "token model (e.g. --model kjv_charlm): next-character prediction over this UTF-8 text file: "
                   "windows of T characters (the manifest's input length, read from --model-repo) every --stride "
                   "characters, labelled with the character after each, sent as INT64 ids; also reports bits per "
                   "character; --limit counts windows")
      ->check(CLI::ExistingFile)
      ->excludes("--image-dir");
  eval->add_option("--stride", eo.text_stride, "with --text: characters between windows (0: T, no overlap)")
      ->check(CLI::NonNegativeNumber);
  eval->add_option("--unsplit-cache", eo.unsplit_cache,
                   "read the unsplit model's predictions from this file if it holds one per image, else write "
                   "them there (not used with --text)");
  eval->add_option("--limit", eo.limit, "evaluate the first N images (--text: windows; 0: all)")->check(CLI::NonNegativeNumber);
  eval->add_option("--concurrency", eo.concurrency, "requests in flight")->check(CLI::Range(1, 1024));
  eval->add_option("--batch", eo.batch, "images (--text: windows) per request")->check(CLI::Range(1, 256));
  eval->add_flag("--json", json, "print the summary as JSON on stdout");
  eval->add_flag("--no-progress", no_progress, "no progress bar on stderr");
  eval->add_flag("--no-unsplit", no_unsplit, "skip the local unsplit reference run");
  eval->add_flag("--per-request", eo.per_request,
                 "with --json: every successful request (first image, start time, latency, the configuration "
                 "the edge reported) under per_request");

  auto* load = app.add_subcommand("load", "load/soak test: keep --concurrency requests in flight for --requests "
                                          "requests or --duration-s seconds; prints outcomes by status code, "
                                          "throughput, latency percentiles and (with --pid) server RSS");
  add_common(load);
  sc::LoadOptions lo;
  std::vector<std::string> pid_args;
  bool load_json = false;
  load->add_option("--concurrency", lo.concurrency, "requests in flight")->check(CLI::Range(1, 4096));
  load->add_option("--requests", lo.requests, "stop after this many requests (0: no limit)")->check(CLI::NonNegativeNumber);
  load->add_option("--duration-s", lo.duration_s, "stop after this many seconds (0: no limit)")->check(CLI::NonNegativeNumber);
  load->add_option("--batch", lo.batch, "images per request")->check(CLI::Range(1, 256));
  load->add_option("--images", lo.images, "IDX image file (gzip'd) to take inputs from");
  load->add_option("--pid", pid_args, "name=pid of a process whose RSS to sample (repeatable), e.g. edge=1234");
  load->add_option("--sample-ms", lo.sample_ms, "RSS sampling interval")->check(CLI::Range(1, 60000));
  load->add_option("--reject-pause-ms", lo.reject_pause_ms,
                   "after a RESOURCE_EXHAUSTED answer, wait this long before sending the next request (0: never)")
      ->check(CLI::Range(0, 60000));
  load->add_flag("--json", load_json, "print the summary as JSON on stdout");
  load->add_option("--timeline", lo.timeline,
                   "write start_unix_ms,end_unix_ms,code (gRPC status code) of every request to this CSV");

  auto* health = app.add_subcommand("health", "check grpc.health.v1 (exit 0 when SERVING)");
  std::string health_addr = "127.0.0.1:8001", service;
  int wait_ms = 0;
  add_security(health);
  health->add_option("--addr", health_addr, "server address");
  health->add_option("--service", service, "service name (empty: whole server)");
  health->add_option("--wait-ms", wait_ms, "keep trying for this long");
  bool kserve_ready = false;
  health->add_flag("--ready", kserve_ready, "check KServe ServerReady instead (edge: cloud connected)");

  CLI11_PARSE(app, argc, argv);

  if (!token_file.empty()) {
    auto token = sc::ReadTokenFile(token_file);
    if (!token.ok()) {
      std::cerr << token.status().message() << "\n";
      return 1;
    }
    security.token = *token;
  }
  auto channel = sc::MakeChannel(*health ? health_addr : edge, security);
  if (!channel.ok()) {
    std::cerr << channel.status().message() << "\n";
    return 1;
  }
  if (*infer) {
    if (!infer_text.empty()) return RunInferText(*channel, settings, infer_text, infer_repo, deadline_ms);
    if (files.empty()) {
      std::cerr << "infer: give image/.npy files or --text\n";
      return 1;
    }
    return RunInfer(*channel, settings, files, deadline_ms, input_scaling);
  }
  if (*health) {
    return kserve_ready ? RunReady(health_addr, *channel, wait_ms) : RunHealth(health_addr, *channel, service, wait_ms);
  }
  if (*load) {
    for (const std::string& a : pid_args) {
      const size_t eq = a.find('=');
      try {
        if (eq == std::string::npos) throw std::invalid_argument(a);
        lo.pids.emplace_back(a.substr(0, eq), std::stoi(a.substr(eq + 1)));
      } catch (const std::exception&) {
        std::cerr << "load: --pid wants name=pid, got '" << a << "'\n";
        return 1;
      }
    }
    lo.edge = edge;
    lo.security = security;
    lo.infer = settings;
    lo.deadline_ms = deadline_ms;
    auto sum = sc::RunLoad(lo);
    if (!sum.ok()) {
      std::cerr << "load: " << sum.status().ToString() << "\n";
      return 1;
    }
    std::cout << (load_json ? sum->ToJson() + "\n" : sum->ToText());
    return sum->ok > 0 ? 0 : 2;
  }
  eo.edge = edge;
  eo.security = security;
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

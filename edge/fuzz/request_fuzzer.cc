// libFuzzer target for the edge's request handling before the model runs: a serialized
// inference.ModelInferRequest is parsed and validated (ParseInferRequest, against the bundled
// model repository), the parsed input is read in full, images are sized and decoded (the edge's
// preprocessing) under a small pixel budget, and a response is built for it. Aborts when an
// invariant of the parser's output fails.
//
// Build and run: see edge/fuzz/README.md.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "common/image.h"
#include "common/limits.h"
#include "common/model_repository.h"
#include "edge/kserve.h"
#include "proto/grpc_service.pb.h"

#include <google/protobuf/stubs/logging.h>

namespace {

void Check(bool cond) {
  if (!cond) std::abort();
}

const splitrans::ModelRepository& Repo() {
  static const splitrans::ModelRepository* repo = [] {
    auto r = splitrans::ModelRepository::Load(SPLITRANS_MODEL_REPO);
    Check(r.ok());
    return new splitrans::ModelRepository(std::move(*r));
  }();
  return *repo;
}

constexpr int64_t kFuzzPixelBudget = int64_t{1} << 20;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);  // invalid UTF-8 in string fields is logged otherwise
  Repo();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace splitrans;
  inference::ModelInferRequest req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return 0;
  edge::ParsedInfer p;
  const absl::Status st = edge::ParseInferRequest(req, Repo(), edge::InferDefaults{}, &p);
  if (!st.ok()) {
    Check(st.code() == absl::StatusCode::kInvalidArgument || st.code() == absl::StatusCode::kNotFound);
    Check(!st.message().empty());
    return 0;
  }
  const edge::EdgeInput& in = p.head.input;
  Check(p.manifest != nullptr);
  Check(in.batch >= 1 && in.batch <= kMaxBatch);
  Check(p.top_k >= 1 && p.top_k <= kMaxTopK);
  Check(p.head.encode.q >= codec::kMinQ && p.head.encode.q <= codec::kMaxQ);
  const ModelManifest& m = *p.manifest;
  const size_t n = static_cast<size_t>(in.batch * m.InputElements());
  volatile float sink = 0;
  switch (in.kind) {
    case edge::EdgeInput::Kind::kEncodedImages: {
      Check(static_cast<int64_t>(in.images.size()) == in.batch);
      int64_t pixels = 0;
      bool ok = true;
      for (const auto& img : in.images) {
        int w = 0, h = 0;
        ok = ok && ImageDimensions(reinterpret_cast<const uint8_t*>(img.data()), img.size(), &w, &h).ok();
        pixels += int64_t{w} * h;
      }
      if (!ok || pixels > kFuzzPixelBudget) break;
      std::vector<float> out(static_cast<size_t>(m.InputElements()));
      for (const auto& img : in.images) {
        if (DecodeImageToInput(reinterpret_cast<const uint8_t*>(img.data()), img.size(), m, out.data()).ok()) {
          for (float v : out) Check(std::isfinite(v));
        }
      }
      break;
    }
    case edge::EdgeInput::Kind::kPixelsU8:
      Check(in.pixels != nullptr);
      for (size_t i = 0; i < n; ++i) sink = sink + in.pixels[i];
      break;
    case edge::EdgeInput::Kind::kFloat32:
    case edge::EdgeInput::Kind::kUnitFloat32:
      Check(in.values != nullptr);
      Check(reinterpret_cast<uintptr_t>(in.values) % alignof(float) == 0);
      for (size_t i = 0; i < n; ++i) sink = sink + in.values[i];
      break;
    case edge::EdgeInput::Kind::kTokens:  // every id was checked against the vocabulary
      Check(in.tokens != nullptr && m.IsTokens());
      for (size_t i = 0; i < n; ++i) Check(in.tokens[i] >= 0 && in.tokens[i] < m.vocab);
      break;
  }
  // A well-formed answer for this request goes through the response path.
  splitrans::v1::Result r;
  const int classes = m.NumClasses();
  const int k = std::min(p.top_k, classes);
  r.add_logits_shape(in.batch);
  r.add_logits_shape(classes);
  for (int64_t i = 0; i < in.batch * classes; ++i) r.add_logits(0.5f);
  for (int64_t b = 0; b < in.batch; ++b) {
    for (int i = 0; i < k; ++i) {
      auto* c = r.add_topk();
      c->set_batch_index(static_cast<uint32_t>(b));
      c->set_index(static_cast<uint32_t>(i));
      c->set_score(0.1f);
    }
  }
  Check(edge::ValidateCloudResult(r, in.batch, classes, p.top_k).ok());
  edge::ResponseInfo info;
  info.id = req.id();
  info.manifest = &m;
  inference::ModelInferResponse resp;
  edge::BuildInferResponse(r, p, info, &resp);
  Check(resp.outputs_size() == int{p.want_logits} + int{p.want_topk});
  return 0;
}

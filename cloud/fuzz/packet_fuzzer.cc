// libFuzzer target for the cloud's packet handling before the model runs: a serialized
// splitrans.v1.FeaturePacket is resolved and its feature decoded with the split's shape and the
// production limits (cloud::DecodeFeature, the CPU codec), as the cloud's workers do it. Random
// bytes rarely carry a valid CRC32C, so a packet's bitstream is also tried with body_size and the
// checksum patched to match its length. Aborts when an invariant of the result fails.
//
// Build and run: see edge/fuzz/README.md.
#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cloud/feature_decode.h"
#include "codec/crc32c.h"
#include "codec/wire.h"
#include "common/limits.h"
#include "proto/split_inference.pb.h"

namespace {

using namespace splitrans;

void Check(bool cond) {
  if (!cond) std::abort();
}

struct State {
  ModelRepository repo;
  std::unique_ptr<FeatureCodec> codec;
};

State& Get() {
  static State* s = [] {
    auto r = ModelRepository::Load(SPLITRANS_MODEL_REPO);
    Check(r.ok());
    FeatureCodecOptions o;
    o.device = CodecDevice::kCpu;
    auto c = FeatureCodec::Create(o);
    Check(c.ok());
    return new State{std::move(*r), std::move(*c)};
  }();
  return *s;
}

void Run(const v1::FeaturePacket& p, const std::string& bytes) {
  State& s = Get();
  cloud::FeatureRequest req;
  if (!cloud::FromPacket(p, &req).ok()) return;
  // An exactly-sized heap copy so that ASan sees any read past the end.
  std::unique_ptr<uint8_t[]> copy(new uint8_t[bytes.size() + 1]);
  std::memcpy(copy.get(), bytes.data(), bytes.size());
  req.codec_bytes = bytes.empty() ? nullptr : copy.get();
  req.codec_size = bytes.size();
  if (IsFullOffload(req.payload)) {
    // The tensor inputs' checks (images are decoded by common/image.cc, fuzzed with the edge's requests).
    const ModelManifest* m = s.repo.Find(req.model_name, req.model_version).value_or(nullptr);
    if (!m || req.payload == PayloadKind::kInputImages) return;
    if (req.payload == PayloadKind::kInputTokens) {
      std::vector<int64_t> ids, shape;
      const absl::Status st = cloud::DecodeOffloadTokens(req, *m, kMaxFeatureElements, &ids, &shape);
      if (!st.ok()) return;
      Check(m->IsTokens() && ids.size() == static_cast<size_t>(shape[0] * m->InputElements()));
      for (int64_t id : ids) Check(id >= 0 && id < m->vocab);
      return;
    }
    std::vector<float> in;
    std::vector<int64_t> shape;
    const absl::Status st = cloud::DecodeOffloadInput(req, *m, kMaxFeatureElements, &in, &shape);
    if (st.ok()) Check(in.size() == static_cast<size_t>(shape[0] * m->InputElements()));
    return;
  }
  codec::DecodedTensor t;
  cloud::DecodedFeature f;
  const absl::Status st = cloud::DecodeFeature(req, s.repo, *s.codec, kMaxFeatureElements, &t, &f);
  if (!st.ok()) {
    Check(st.code() == absl::StatusCode::kInvalidArgument || st.code() == absl::StatusCode::kDataLoss ||
          st.code() == absl::StatusCode::kNotFound);
    return;
  }
  Check(f.shape.size() == f.split->feature_shape.size() + 1);
  Check(f.shape[0] >= 1 && f.shape[0] <= kMaxBatch);
  uint64_t n = 1;
  for (int64_t d : f.shape) n *= static_cast<uint64_t>(d);
  Check(t.values.size() == n);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  Get();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  v1::FeaturePacket p;
  if (!p.ParseFromArray(data, static_cast<int>(size))) return 0;
  const std::string& bytes = p.codec_bytes();
  Run(p, bytes);
  constexpr size_t kMin = codec::kFixedHeaderBytes + codec::kChecksumBytes;
  if (bytes.size() >= kMin) {
    std::string fixed = bytes;
    const uint32_t body = static_cast<uint32_t>(fixed.size() - kMin);
    std::memcpy(fixed.data() + offsetof(codec::FixedHeader, body_size), &body, 4);
    const uint32_t crc = codec::Crc32c(reinterpret_cast<const uint8_t*>(fixed.data()), fixed.size() - 4);
    std::memcpy(fixed.data() + fixed.size() - 4, &crc, 4);
    Run(p, fixed);
  }
  return 0;
}

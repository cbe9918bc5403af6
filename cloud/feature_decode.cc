#include "cloud/feature_decode.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_join.h>

#include <algorithm>

#include "common/feature_payload.h"
#include "common/image.h"
#include "common/kserve_protocol.h"
#include "common/limits.h"
#include "common/status_util.h"
#include "proto/split_inference.pb.h"

namespace splitrans::cloud {
namespace v1 = ::splitrans::v1;

namespace {

// [expected] or [B, expected...] with B in 1..kMaxBatch.
bool ShapeAccepted(const std::vector<int64_t>& declared, const std::vector<int64_t>& expected) {
  const bool with_batch = declared.size() == expected.size() + 1;
  return (with_batch && declared[0] >= 1 && declared[0] <= kMaxBatch &&
          std::equal(expected.begin(), expected.end(), declared.begin() + 1)) ||
         declared == expected;
}

uint64_t Elements(const std::vector<int64_t>& shape) {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

}  // namespace

absl::Status DecodeFeature(const FeatureRequest& req, const ModelRepository& repo, FeatureCodec& codec,
                           uint64_t max_elements, codec::DecodedTensor* tensor, DecodedFeature* out) {
  if (IsFullOffload(req.payload)) {
    return absl::InvalidArgumentError("a full-offload payload carries a model input, not a feature");
  }
  auto resolved = repo.Resolve(req.model_name, req.model_version, req.split);
  if (!resolved.ok()) return resolved.status();
  const ModelManifest& m = *resolved->manifest;
  const SplitSpec& s = *resolved->split;
  const uint64_t per = Elements(s.feature_shape);
  auto shape_error = [&](const std::vector<int64_t>& declared) {
    return absl::InvalidArgumentError(absl::StrCat(
        "feature shape [", absl::StrJoin(declared, ","), "] does not match ", m.name, "/", m.version, " split ",
        s.name, " feature shape [B,", absl::StrJoin(s.feature_shape, ","), "] (B <= ", kMaxBatch, ")"));
  };
  if (req.payload != PayloadKind::kSrns) {
    // Baselines: the shape travels in the packet; it bounds the allocation exactly.
    if (!ShapeAccepted(req.shape, s.feature_shape)) return shape_error(req.shape);
    const uint64_t n = Elements(req.shape);
    if (n > max_elements) {
      return absl::InvalidArgumentError(absl::StrCat("feature of ", n, " elements is over this server's limit of ",
                                                     max_elements));
    }
    tensor->values.resize(n);
    tensor->shape = req.shape;
    absl::Status st =
        req.payload == PayloadKind::kRawF32
            ? DecodeRawFloat32(req.codec_bytes, req.codec_size, n, tensor->values.data())
            : DecodeZstdAiq(req.codec_bytes, req.codec_size, n, req.q, req.aiq, tensor->values.data());
    if (!st.ok()) return st;
    out->path = CodecPath::kCpu;
  } else {
    // The largest tensor this split accepts bounds every allocation of the decode; the exact
    // shape is checked once the header is read, before the payload is decoded.
    codec::DecodeLimits limits;
    limits.max_elements = std::min<uint64_t>(max_elements, per * kMaxBatch);
    absl::Status shape_status;
    limits.accept_shape = [&](const std::vector<int64_t>& declared) {
      if (ShapeAccepted(declared, s.feature_shape)) return codec::Status::Ok();
      shape_status = shape_error(declared);
      return codec::InvalidArgument(std::string(shape_status.message()));
    };
    const codec::Status cs = codec.Decode(req.codec_bytes, req.codec_size, tensor, &out->path, &limits);
    if (!shape_status.ok()) return shape_status;
    if (!cs.ok()) return FromCodecStatus(cs);
  }
  out->manifest = &m;
  out->split = &s;
  out->shape = tensor->shape;
  if (out->shape.size() == s.feature_shape.size()) out->shape.insert(out->shape.begin(), 1);
  return absl::OkStatus();
}

absl::Status FromPacket(const v1::FeaturePacket& p, FeatureRequest* req) {
  req->model_name = p.model_name();
  req->model_version = p.model_version();
  req->split = p.split();
  req->codec_bytes = reinterpret_cast<const uint8_t*>(p.codec_bytes().data());
  req->codec_size = p.codec_bytes().size();
  switch (p.payload()) {
    case v1::PAYLOAD_SRNS: req->payload = PayloadKind::kSrns; break;
    case v1::PAYLOAD_RAW_F32: req->payload = PayloadKind::kRawF32; break;
    case v1::PAYLOAD_ZSTD_AIQ: req->payload = PayloadKind::kZstdAiq; break;
    case v1::PAYLOAD_INPUT_IMAGES: req->payload = PayloadKind::kInputImages; break;
    case v1::PAYLOAD_INPUT_F32: req->payload = PayloadKind::kInputF32; break;
    case v1::PAYLOAD_INPUT_U8: req->payload = PayloadKind::kInputU8; break;
    case v1::PAYLOAD_INPUT_TOKENS: req->payload = PayloadKind::kInputTokens; break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("cloud: unknown payload kind ", static_cast<int>(p.payload())));
  }
  if (p.shape_size() > 8) return absl::InvalidArgumentError("cloud: shape has more than 8 dimensions");
  req->shape.assign(p.shape().begin(), p.shape().end());
  req->images.clear();
  if (req->payload == PayloadKind::kInputImages) {
    if (req->shape.size() != 1 || req->shape[0] < 1 || req->shape[0] > kMaxBatch) {
      return absl::InvalidArgumentError(absl::StrCat("cloud: PAYLOAD_INPUT_IMAGES needs shape [B], B in 1..", kMaxBatch));
    }
    if (auto st = kserve::SplitRawBytes(p.codec_bytes(), req->shape[0], &req->images); !st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("cloud: images: ", st.message()));
    }
  }
  if (req->payload == PayloadKind::kZstdAiq) {
    const v1::AiqParams& a = p.aiq();
    if (a.q() < static_cast<uint32_t>(codec::kMinQ) || a.q() > static_cast<uint32_t>(codec::kMaxQ)) {
      return absl::InvalidArgumentError(absl::StrCat("cloud: AIQ q must be in [", codec::kMinQ, ", ", codec::kMaxQ,
                                                     "], got ", a.q()));
    }
    req->q = static_cast<int>(a.q());
    req->aiq.scale = a.scale();
    req->aiq.zero_point = a.zero_point();
    req->aiq.constant = a.constant();
    req->aiq.constant_value = a.constant_value();
  }
  return absl::OkStatus();
}

absl::Status DecodeOffloadInput(const FeatureRequest& req, const ModelManifest& m, uint64_t max_elements,
                                std::vector<float>* out, std::vector<int64_t>* shape) {
  if (req.payload != PayloadKind::kInputF32 && req.payload != PayloadKind::kInputU8) {
    return absl::InvalidArgumentError("not a tensor model input payload");
  }
  if (m.IsTokens()) {
    return absl::InvalidArgumentError(absl::StrCat(m.name, "/", m.version,
                                                   " takes token ids: full offload needs PAYLOAD_INPUT_TOKENS"));
  }
  if (!ShapeAccepted(req.shape, m.input_shape)) {
    return absl::InvalidArgumentError(absl::StrCat("input shape [", absl::StrJoin(req.shape, ","), "] does not match ",
                                                   m.name, "/", m.version, " input shape [B,",
                                                   absl::StrJoin(m.input_shape, ","), "] (B <= ", kMaxBatch, ")"));
  }
  const uint64_t n = Elements(req.shape);
  if (n > max_elements) {
    return absl::InvalidArgumentError(absl::StrCat("input of ", n, " elements is over this server's limit of ",
                                                   max_elements));
  }
  out->resize(n);
  if (req.payload == PayloadKind::kInputF32) {
    if (auto st = DecodeRawFloat32(req.codec_bytes, req.codec_size, n, out->data()); !st.ok()) return st;
  } else {
    if (req.codec_size != n) {
      return absl::InvalidArgumentError(absl::StrCat("uint8 input payload has ", req.codec_size, " bytes, the shape needs ", n));
    }
    const uint64_t per = Elements(m.input_shape);
    for (uint64_t off = 0; off < n; off += per) NormalizePixels(req.codec_bytes + off, m, out->data() + off);
  }
  *shape = req.shape;
  if (shape->size() == m.input_shape.size()) shape->insert(shape->begin(), 1);
  return absl::OkStatus();
}

absl::Status DecodeOffloadTokens(const FeatureRequest& req, const ModelManifest& m, uint64_t max_elements,
                                 std::vector<int64_t>* out, std::vector<int64_t>* shape) {
  if (req.payload != PayloadKind::kInputTokens) return absl::InvalidArgumentError("not a token input payload");
  if (!m.IsTokens()) {
    return absl::InvalidArgumentError(absl::StrCat(m.name, "/", m.version,
                                                   " takes images: PAYLOAD_INPUT_TOKENS is for token models"));
  }
  if (!ShapeAccepted(req.shape, m.input_shape)) {
    return absl::InvalidArgumentError(absl::StrCat("token input shape [", absl::StrJoin(req.shape, ","),
                                                   "] does not match ", m.name, "/", m.version, " input shape [B,",
                                                   m.input_shape[0], "] (B <= ", kMaxBatch, ")"));
  }
  const uint64_t n = Elements(req.shape);
  if (n > max_elements) {
    return absl::InvalidArgumentError(absl::StrCat("input of ", n, " token ids is over this server's limit of ",
                                                   max_elements));
  }
  out->resize(n);
  if (auto st = DecodeTokensInt32(req.codec_bytes, req.codec_size, n, m.vocab, out->data()); !st.ok()) return st;
  *shape = req.shape;
  if (shape->size() == m.input_shape.size()) shape->insert(shape->begin(), 1);
  return absl::OkStatus();
}

}  // namespace splitrans::cloud

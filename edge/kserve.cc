#include "edge/kserve.h"

#include <absl/strings/str_cat.h>
#include <absl/strings/str_format.h>
#include <absl/strings/str_join.h>

#include <cmath>
#include <cstring>
#include <set>

#include "common/kserve_protocol.h"
#include "common/limits.h"

namespace splitrans::edge {
namespace inf = ::inference;
namespace v1 = ::splitrans::v1;
namespace ks = ::splitrans::kserve;

namespace {

using ParamMap = google::protobuf::Map<std::string, inf::InferParameter>;

absl::Status GetIntParam(const ParamMap& params, const char* key, int64_t* value) {
  auto it = params.find(key);
  if (it == params.end()) return absl::OkStatus();
  const inf::InferParameter& p = it->second;
  switch (p.parameter_choice_case()) {
    case inf::InferParameter::kInt64Param:
      *value = p.int64_param();
      return absl::OkStatus();
    case inf::InferParameter::kUint64Param:
      *value = static_cast<int64_t>(std::min<uint64_t>(p.uint64_param(), uint64_t{1} << 30));
      return absl::OkStatus();
    case inf::InferParameter::kStringParam: {
      const std::string& s = p.string_param();
      if (!s.empty() && s.size() < 10 && s.find_first_not_of("0123456789") == std::string::npos) {
        *value = std::stoll(s);
        return absl::OkStatus();
      }
      break;
    }
    default:
      break;
  }
  return absl::InvalidArgumentError(absl::StrCat("parameter '", key, "' must be an int64"));
}

absl::Status GetStringParam(const ParamMap& params, const char* key, std::string* value) {
  auto it = params.find(key);
  if (it == params.end()) return absl::OkStatus();
  if (it->second.parameter_choice_case() != inf::InferParameter::kStringParam) {
    return absl::InvalidArgumentError(absl::StrCat("parameter '", key, "' must be a string"));
  }
  *value = it->second.string_param();
  return absl::OkStatus();
}

// Names in a message are cut short: they come from the client.
std::string Shown(const std::string& s) { return s.size() <= 64 ? s : s.substr(0, 64) + "..."; }

absl::Status CheckBatch(int64_t batch) {
  if (batch < 1 || batch > kMaxBatch) {
    return absl::InvalidArgumentError(absl::StrCat("batch size ", batch, " not in [1, ", kMaxBatch, "]"));
  }
  return absl::OkStatus();
}

// A token model's input: INT64 or INT32 ids, shape [T] or [B, T], in contents or little-endian
// raw_input_contents; every id in [0, vocab).
absl::Status ParseTokens(const inf::ModelInferRequest::InferInputTensor& t, const std::string* raw_data, const ModelManifest& m,
                         ParsedInfer* out) {
  const std::string& dt = t.datatype();
  if (dt != "INT64" && dt != "INT32") {
    return absl::InvalidArgumentError(absl::StrCat("model '", m.name, "' takes token ids: input datatype must be INT64 or INT32, not '",
                                                   Shown(dt), "'"));
  }
  std::vector<int64_t> shape(t.shape().begin(), t.shape().end());
  const int64_t len = m.input_shape[0];
  int64_t batch = 1;
  if (shape.size() == 2) batch = shape[0];
  if ((shape.size() != 1 && shape.size() != 2) || shape.back() != len) {
    return absl::InvalidArgumentError(
        absl::StrCat("input shape [", absl::StrJoin(shape, ","), "] must be [", len, "] or [B,", len, "] (token ids)"));
  }
  if (auto s = CheckBatch(batch); !s.ok()) return s;
  const size_t n = static_cast<size_t>(batch * len);
  const size_t width = dt == "INT64" ? 8 : 4;
  std::vector<int64_t>& ids = out->tokens;
  ids.resize(n);
  if (raw_data) {
    if (raw_data->size() != n * width) {
      return absl::InvalidArgumentError(
          absl::StrCat("raw ", dt, " input has ", raw_data->size(), " bytes, shape needs ", n * width));
    }
    const auto* p = reinterpret_cast<const uint8_t*>(raw_data->data());
    for (size_t i = 0; i < n; ++i) {
      uint64_t v = 0;
      for (size_t b = 0; b < width; ++b) v |= uint64_t{p[i * width + b]} << (8 * b);  // little-endian
      ids[i] = width == 8 ? static_cast<int64_t>(v) : static_cast<int64_t>(static_cast<int32_t>(v));
    }
  } else if (dt == "INT64") {
    if (static_cast<size_t>(t.contents().int64_contents_size()) != n) {
      return absl::InvalidArgumentError(absl::StrCat("int64_contents has ", t.contents().int64_contents_size(),
                                                     " values, the shape needs ", n));
    }
    std::copy(t.contents().int64_contents().begin(), t.contents().int64_contents().end(), ids.begin());
  } else {
    if (static_cast<size_t>(t.contents().int_contents_size()) != n) {
      return absl::InvalidArgumentError(absl::StrCat("int_contents has ", t.contents().int_contents_size(),
                                                     " values, the shape needs ", n));
    }
    std::copy(t.contents().int_contents().begin(), t.contents().int_contents().end(), ids.begin());
  }
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= m.vocab) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", ids[i], " at position ", i,
                                                     " is outside the vocabulary [0, ", m.vocab, ") of model '",
                                                     m.name, "'"));
    }
  }
  EdgeInput& in = out->head.input;
  in.kind = EdgeInput::Kind::kTokens;
  in.batch = batch;
  in.tokens = ids.data();
  return absl::OkStatus();
}

absl::Status ParseInput(const inf::ModelInferRequest& req, const ModelManifest& m, bool unit_scaling,
                        ParsedInfer* out) {
  const auto& t = req.inputs(0);
  if (!t.parameters().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("input parameters are not supported (got '", Shown(t.parameters().begin()->first), "')"));
  }
  out->raw_output = req.raw_input_contents_size() > 0;
  const bool raw = out->raw_output;
  if (raw && req.raw_input_contents_size() != 1) {
    return absl::InvalidArgumentError("raw_input_contents must have one entry per input (1)");
  }
  if (raw && t.has_contents()) {
    return absl::InvalidArgumentError("an input uses both contents and raw_input_contents");
  }
  const std::string* raw_data = raw ? &req.raw_input_contents(0) : nullptr;
  std::vector<int64_t> shape(t.shape().begin(), t.shape().end());
  for (int64_t d : shape) {
    if (d < 0 || d > (int64_t{1} << 31)) {
      return absl::InvalidArgumentError(absl::StrCat("input shape has a bad dimension ", d));
    }
  }
  if (unit_scaling && t.datatype() != "FP32") {
    return absl::InvalidArgumentError(absl::StrCat("parameter '", ks::kParamInputScaling,
                                                   "' applies to FP32 inputs only, not ", Shown(t.datatype())));
  }
  if (m.IsTokens()) return ParseTokens(t, raw_data, m, out);
  if (t.datatype() == "INT64" || t.datatype() == "INT32") {
    return absl::InvalidArgumentError(absl::StrCat("input datatype ", t.datatype(), " is for token models; model '",
                                                   m.name, "' takes images: FP32, UINT8 or BYTES"));
  }
  EdgeInput& in = out->head.input;
  if (t.datatype() == "BYTES") {
    if (shape.empty() || shape.size() > 2 || (shape.size() == 2 && shape[1] != 1)) {
      return absl::InvalidArgumentError("BYTES input shape must be [B] or [B, 1]");
    }
    in.kind = EdgeInput::Kind::kEncodedImages;
    in.batch = shape[0];
    if (auto s = CheckBatch(in.batch); !s.ok()) return s;
    if (raw_data) return ks::SplitRawBytes(*raw_data, in.batch, &in.images);
    if (t.contents().bytes_contents_size() != in.batch) {
      return absl::InvalidArgumentError(absl::StrCat("bytes_contents has ", t.contents().bytes_contents_size(),
                                                     " elements, the shape says ", in.batch));
    }
    for (const auto& b : t.contents().bytes_contents()) in.images.emplace_back(b);
    return absl::OkStatus();
  }
  // Tensors: [C, H, W] or [B, C, H, W].
  std::vector<int64_t> chw = shape;
  int64_t batch = 1;
  if (chw.size() == m.input_shape.size() + 1) {
    batch = chw[0];
    chw.erase(chw.begin());
  }
  if (chw != m.input_shape) {
    return absl::InvalidArgumentError(
        absl::StrCat("input shape [", absl::StrJoin(shape, ","), "] must be [", absl::StrJoin(m.input_shape, ","),
                     "] or [B,", absl::StrJoin(m.input_shape, ","), "]"));
  }
  if (auto s = CheckBatch(batch); !s.ok()) return s;
  in.batch = batch;
  const size_t n = static_cast<size_t>(batch * m.InputElements());
  if (t.datatype() == "FP32") {
    in.kind = unit_scaling ? EdgeInput::Kind::kUnitFloat32 : EdgeInput::Kind::kFloat32;
    if (raw_data) {
      if (raw_data->size() != n * sizeof(float)) {
        return absl::InvalidArgumentError(
            absl::StrCat("raw FP32 input has ", raw_data->size(), " bytes, shape needs ", n * sizeof(float)));
      }
      if (reinterpret_cast<uintptr_t>(raw_data->data()) % alignof(float) == 0) {
        in.values = reinterpret_cast<const float*>(raw_data->data());
      } else {
        out->floats.resize(n);
        std::memcpy(out->floats.data(), raw_data->data(), n * sizeof(float));
        in.values = out->floats.data();
      }
    } else {
      if (static_cast<size_t>(t.contents().fp32_contents_size()) != n) {
        return absl::InvalidArgumentError(absl::StrCat("fp32_contents has ", t.contents().fp32_contents_size(),
                                                       " values, the shape needs ", n));
      }
      in.values = t.contents().fp32_contents().data();
    }
    return absl::OkStatus();
  }
  if (t.datatype() == "UINT8") {
    in.kind = EdgeInput::Kind::kPixelsU8;
    if (raw_data) {
      if (raw_data->size() != n) {
        return absl::InvalidArgumentError(absl::StrCat("raw UINT8 input has ", raw_data->size(), " bytes, shape needs ", n));
      }
      in.pixels = reinterpret_cast<const uint8_t*>(raw_data->data());
    } else {
      if (static_cast<size_t>(t.contents().uint_contents_size()) != n) {
        return absl::InvalidArgumentError(absl::StrCat("uint_contents has ", t.contents().uint_contents_size(),
                                                       " values, the shape needs ", n));
      }
      out->pixels.resize(n);
      for (size_t i = 0; i < n; ++i) {
        const uint32_t v = t.contents().uint_contents(static_cast<int>(i));
        if (v > 255) return absl::InvalidArgumentError(absl::StrCat("UINT8 value ", v, " at ", i, " is out of range"));
        out->pixels[i] = static_cast<uint8_t>(v);
      }
      in.pixels = out->pixels.data();
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("input datatype '", Shown(t.datatype()), "' not supported (FP32, UINT8 or BYTES)"));
}

}  // namespace

absl::Status ParseInferRequest(const inf::ModelInferRequest& req, const ModelRepository& repo,
                               const InferDefaults& defaults, ParsedInfer* out) {
  for (const auto& [name, value] : req.parameters()) {
    if (!ks::IsOneOf(name, ks::kRequestParams)) {
      return absl::InvalidArgumentError(absl::StrCat("unknown request parameter '", Shown(name),
                                                     "' (known: ", ks::JoinNames(ks::kRequestParams), ")"));
    }
  }
  HeadRequest& h = out->head;
  h.model_name = req.model_name();
  h.model_version = req.model_version();
  h.encode = defaults.encode;
  int64_t q = h.encode.q, k = defaults.top_k;
  std::string mode = codec::ModeName(h.encode.mode);
  std::string quantizer = codec::QuantizerName(h.encode.quantizer);
  std::string scaling = ks::kScalingNormalized;
  std::string placement = PlacementName(defaults.placement), wire = FeatureWireName(defaults.wire);
  if (auto s = GetIntParam(req.parameters(), ks::kParamQ, &q); !s.ok()) return s;
  if (auto s = GetIntParam(req.parameters(), ks::kParamTopK, &k); !s.ok()) return s;
  if (auto s = GetStringParam(req.parameters(), ks::kParamCodecMode, &mode); !s.ok()) return s;
  if (auto s = GetStringParam(req.parameters(), ks::kParamQuantizer, &quantizer); !s.ok()) return s;
  if (auto s = GetStringParam(req.parameters(), ks::kParamSplit, &h.split); !s.ok()) return s;
  if (auto s = GetStringParam(req.parameters(), ks::kParamInputScaling, &scaling); !s.ok()) return s;
  if (auto s = GetStringParam(req.parameters(), ks::kParamPlacement, &placement); !s.ok()) return s;
  if (auto s = GetStringParam(req.parameters(), ks::kParamFeatureCodec, &wire); !s.ok()) return s;
  std::string policy = PolicyName(defaults.policy);
  const bool policy_asked = req.parameters().count(ks::kParamPolicy) > 0;
  if (auto s = GetStringParam(req.parameters(), ks::kParamPolicy, &policy); !s.ok()) return s;
  if (!ParsePolicy(policy, &out->policy)) {
    return absl::InvalidArgumentError(absl::StrCat("parameter 'policy' must be ", ks::JoinNames(kPolicyNames),
                                                   ", got '", Shown(policy), "'"));
  }
  if (out->policy == PolicyKind::kLatency) {
    for (const char* name : ks::kPolicyChosenParams) {
      if (!req.parameters().count(name)) continue;
      if (policy_asked) {
        return absl::InvalidArgumentError(absl::StrCat("parameter '", name,
                                                       "' cannot be combined with policy 'latency', which chooses ",
                                                       ks::JoinNames(ks::kPolicyChosenParams), " itself"));
      }
      out->policy = PolicyKind::kFixed;  // the edge's default policy yields to a request that chose
    }
  }
  if (!ParsePlacement(placement, &h.placement)) {
    return absl::InvalidArgumentError(absl::StrCat("parameter 'placement' must be ", ks::JoinNames(kPlacementNames),
                                                   ", got '", Shown(placement), "'"));
  }
  if (!ParseFeatureWire(wire, &h.wire)) {
    return absl::InvalidArgumentError(absl::StrCat("parameter 'feature_codec' must be ",
                                                   ks::JoinNames(kFeatureWireNames), ", got '", Shown(wire), "'"));
  }
  if (q < codec::kMinQ || q > codec::kMaxQ) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameter 'q' must be in [", codec::kMinQ, ", ", codec::kMaxQ, "], got ", q));
  }
  h.encode.q = static_cast<int>(q);
  if (!codec::ParseMode(mode, &h.encode.mode)) {
    return absl::InvalidArgumentError(absl::StrCat("parameter 'codec_mode' must be ",
                                                   absl::StrJoin(codec::ModeNames(), "|"), ", got '", Shown(mode), "'"));
  }
  if (!codec::ParseQuantizer(quantizer, &h.encode.quantizer)) {
    return absl::InvalidArgumentError(
        absl::StrCat("parameter 'quantizer' must be aiq|clip, got '", Shown(quantizer), "'"));
  }
  if (h.encode.quantizer == codec::Quantizer::kClip && h.encode.mode == codec::Mode::kPaper) {
    return absl::InvalidArgumentError(
        "parameter 'quantizer' clip cannot be combined with codec_mode paper (paper mode quantizes as the paper "
        "does, over [min, max])");
  }
  if (k < 1 || k > kMaxTopK) {
    return absl::InvalidArgumentError(absl::StrCat("parameter 'top_k' must be in [1, ", kMaxTopK, "], got ", k));
  }
  out->top_k = static_cast<int>(k);
  if (!ks::IsOneOf(scaling, ks::kScalings)) {
    return absl::InvalidArgumentError(absl::StrCat("parameter 'input_scaling' must be ", ks::JoinNames(ks::kScalings),
                                                   ", got '", Shown(scaling), "'"));
  }
  auto resolved = repo.Resolve(req.model_name(), req.model_version(), h.split);
  if (!resolved.ok()) return resolved.status();
  out->manifest = resolved->manifest;
  if (req.inputs_size() != 1) {
    return absl::InvalidArgumentError(absl::StrCat("expected exactly 1 input, got ", req.inputs_size()));
  }
  if (!req.outputs().empty()) {
    out->want_logits = out->want_topk = false;
    std::set<std::string> seen;
    for (const auto& o : req.outputs()) {
      if (!ks::IsOneOf(o.name(), ks::kOutputs)) {
        return absl::InvalidArgumentError(absl::StrCat("unknown output '", Shown(o.name()),
                                                       "' requested (outputs: ", ks::JoinNames(ks::kOutputs), ")"));
      }
      if (!seen.insert(o.name()).second) {
        return absl::InvalidArgumentError(absl::StrCat("output '", o.name(), "' requested twice"));
      }
      if (!o.parameters().empty()) {
        return absl::InvalidArgumentError(absl::StrCat("output parameters are not supported (output '", o.name(),
                                                       "' has '", Shown(o.parameters().begin()->first), "')"));
      }
      (o.name() == ks::kOutputLogits ? out->want_logits : out->want_topk) = true;
    }
  }
  return ParseInput(req, *out->manifest, scaling == ks::kScalingUnit, out);
}

absl::Status ValidateCloudResult(const v1::Result& r, int64_t batch, int classes, int top_k) {
  auto bad = [](auto&&... parts) {
    return absl::InternalError(absl::StrCat("invalid result from the cloud: ", parts...));
  };
  if (r.status_code() < 0 || r.status_code() > 16) return bad("status code ", r.status_code(), " out of range");
  if (r.status_code() != 0) return absl::OkStatus();
  if (r.logits_shape_size() != 2 || r.logits_shape(0) != batch || r.logits_shape(1) != classes) {
    return bad("logits shape [", absl::StrJoin(r.logits_shape(), ","), "], expected [", batch, ",", classes, "]");
  }
  if (r.logits_size() != batch * classes) {
    return bad(r.logits_size(), " logits, expected ", batch * classes);
  }
  for (float v : r.logits()) {
    if (!std::isfinite(v)) return bad("a logit is not finite");
  }
  const int64_t k = std::min(top_k, classes);
  if (r.topk_size() != batch * k) return bad(r.topk_size(), " top-k entries, expected ", batch * k);
  for (int i = 0; i < r.topk_size(); ++i) {
    const v1::Classification& c = r.topk(i);
    if (c.batch_index() != static_cast<uint32_t>(i / k) || c.index() >= static_cast<uint32_t>(classes) ||
        !(c.score() >= 0.f && c.score() <= 1.f)) {
      return bad("top-k entry ", i, " (batch ", c.batch_index(), ", class ", c.index(), ", score ", c.score(), ")");
    }
  }
  return absl::OkStatus();
}

void BuildInferResponse(const v1::Result& r, const ParsedInfer& req, const ResponseInfo& info,
                        inf::ModelInferResponse* resp) {
  const auto& ct = r.cloud_timings();
  resp->set_model_name(info.manifest->name);
  resp->set_model_version(std::to_string(info.manifest->version));
  resp->set_id(info.id);
  const int64_t rows = r.logits_shape(0), cols = r.logits_shape(1);
  if (req.want_logits) {
    auto* o = resp->add_outputs();
    o->set_name(ks::kOutputLogits);
    o->set_datatype("FP32");
    o->add_shape(rows);
    o->add_shape(cols);
    if (req.raw_output) {
      resp->add_raw_output_contents(reinterpret_cast<const char*>(r.logits().data()), r.logits_size() * sizeof(float));
    } else {
      o->mutable_contents()->mutable_fp32_contents()->CopyFrom(r.logits());
    }
  }
  if (req.want_topk) {
    // KServe classification format: "score:index:label", best first per batch element.
    const int64_t k = rows > 0 ? r.topk_size() / rows : 0;
    auto* o = resp->add_outputs();
    o->set_name(ks::kOutputTopk);
    o->set_datatype("BYTES");
    o->add_shape(rows);
    o->add_shape(k);
    std::string raw_bytes;
    for (const auto& e : r.topk()) {
      const std::string label =
          e.index() < info.manifest->labels.size() ? info.manifest->labels[e.index()] : std::to_string(e.index());
      std::string s = absl::StrCat(absl::SixDigits(e.score()), ":", e.index(), ":", label);
      if (req.raw_output) {
        ks::AppendRawBytes(s, &raw_bytes);
      } else {
        o->mutable_contents()->add_bytes_contents(std::move(s));
      }
    }
    if (req.raw_output) resp->add_raw_output_contents(std::move(raw_bytes));
  }
  auto* p = resp->mutable_parameters();
  auto set_int = [p](const char* key, int64_t v) { (*p)[key].set_int64_param(v); };
  set_int("preprocess_us", info.preprocess_us);
  set_int("head_us", info.head_us);
  set_int("encode_us", info.encode_us);
  // Edge -> cloud -> edge time not spent decoding or in the tail (network + queues).
  set_int("transfer_us", std::max<int64_t>(0, info.cloud_round_trip_us - ct.decode_us() - ct.tail_us()));
  set_int("decode_us", ct.decode_us());
  set_int("tail_us", ct.tail_us());
  set_int(ks::kRespCloudQueueUs, ct.queue_us());
  set_int("edge_total_us", info.edge_total_us);
  set_int(ks::kRespFeatureBytes, static_cast<int64_t>(info.feature_bytes));
  set_int(ks::kRespRawFeatureBytes, static_cast<int64_t>(info.raw_feature_bytes));
  (*p)[ks::kRespSplit].set_string_param(info.split);
  (*p)[ks::kRespPlacement].set_string_param(PlacementName(info.placement));
  if (info.placement == Placement::kSplit) {
    // Q and the codec's mode only where they shaped the payload.
    (*p)[ks::kRespFeatureCodec].set_string_param(FeatureWireName(info.wire));
    if (info.wire != FeatureWire::kRaw) set_int(ks::kRespQ, info.q);
    if (info.wire == FeatureWire::kSrns) (*p)[ks::kRespCodecMode].set_string_param(info.mode);
    if (info.wire != FeatureWire::kRaw) (*p)[ks::kRespQuantizer].set_string_param(info.quantizer);
  }
  (*p)[ks::kRespPolicy].set_string_param(PolicyName(info.policy));
  if (info.policy == PolicyKind::kLatency) set_int(ks::kRespPolicyPredictedUs, info.policy_predicted_us);
  (*p)[ks::kRespEncodeDevice].set_string_param(info.encoded_on_gpu ? "gpu" : "cpu");
  (*p)[ks::kRespDecodeDevice].set_string_param(ct.decoded_on_gpu() ? "gpu" : "cpu");
}

void FillModelMetadata(const ModelManifest& m, const ModelRepository& repo, inf::ModelMetadataResponse* resp) {
  resp->set_name(m.name);
  for (const ModelManifest* other : repo.All()) {
    if (other->name == m.name) resp->add_versions(std::to_string(other->version));
  }
  resp->set_platform("splitrans_torchscript_split");
  auto* in = resp->add_inputs();
  in->set_name("input");
  auto* ip = in->mutable_parameters();
  if (m.IsTokens()) {
    // Token ids [B, T], INT64 (INT32 accepted too); label i of the outputs names id i.
    in->set_datatype("INT64");
    in->add_shape(-1);
    in->add_shape(m.input_shape[0]);
    (*ip)["accepted_datatypes"].set_string_param("INT64,INT32");
    (*ip)["kind"].set_string_param("tokens");
    (*ip)["vocab"].set_int64_param(m.vocab);
    (*ip)["token_range"].set_string_param(absl::StrCat("0..", m.vocab - 1, "; id i is label i"));
  } else {
    // One input. Listed as FP32 [B, C, H, W]; UINT8 pixels of the same shape and BYTES (one
    // PNG/JPEG per batch element, shape [B]) are accepted too. The parameters say how FP32 values
    // must be scaled, so that a client does not have to guess.
    in->set_datatype("FP32");
    in->add_shape(-1);
    for (int64_t d : m.input_shape) in->add_shape(d);
    (*ip)["accepted_datatypes"].set_string_param("FP32,UINT8,BYTES");
    (*ip)["fp32_scaling"].set_string_param(
        absl::StrCat(ks::kScalingNormalized, ": (pixel/255 - mean) / std (default); ", ks::kScalingUnit,
                     ": pixel/255 in [0, 1], send request parameter ", ks::kParamInputScaling, "=", ks::kScalingUnit));
    (*ip)["mean"].set_string_param(absl::StrJoin(m.mean, ","));
    (*ip)["std"].set_string_param(absl::StrJoin(m.std, ","));
    (*ip)["color"].set_string_param(m.color);
    (*ip)["uint8_scaling"].set_string_param("pixels 0..255");
  }
  auto* logits = resp->add_outputs();
  logits->set_name(ks::kOutputLogits);
  logits->set_datatype("FP32");
  logits->add_shape(-1);
  logits->add_shape(m.NumClasses());
  auto* topk = resp->add_outputs();
  topk->set_name(ks::kOutputTopk);
  topk->set_datatype("BYTES");
  topk->add_shape(-1);
  topk->add_shape(-1);
}

}  // namespace splitrans::edge

// Unit tests of the KServe v2 <-> edge core translation (edge/kserve.h) and the shared protocol
// definitions (common/kserve_protocol.h): every input kind, every bad request, the cloud-result
// checks and the response. No sockets, no model runs.
#include "edge/kserve.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include "common/image.h"
#include "common/kserve_protocol.h"

namespace splitrans::edge {
namespace {

namespace inf = ::inference;
namespace v1 = ::splitrans::v1;
namespace ks = ::splitrans::kserve;

// A request for `model` with one input "input" of this datatype and shape, no contents yet.
inf::ModelInferRequest OneInputRequest(const std::string& model, const std::string& datatype,
                                       const std::vector<int64_t>& shape) {
  inf::ModelInferRequest req;
  req.set_model_name(model);
  auto* in = req.add_inputs();
  in->set_name("input");
  in->set_datatype(datatype);
  for (int64_t d : shape) in->add_shape(d);
  return req;
}

class KServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto r = ModelRepository::Load(SPLITRANS_MODEL_REPO);
    ASSERT_TRUE(r.ok()) << r.status();
    repo_ = new ModelRepository(std::move(*r));
  }
  static void TearDownTestSuite() {
    delete repo_;
    repo_ = nullptr;
  }

  static inf::ModelInferRequest Request(const std::string& datatype, std::vector<int64_t> shape) {
    inf::ModelInferRequest req = OneInputRequest("fmnist_resnet", datatype, shape);
    req.set_id("r1");
    return req;
  }
  static inf::ModelInferRequest PixelsRaw(int64_t batch) {
    auto req = Request("UINT8", {batch, 1, 28, 28});
    req.add_raw_input_contents(std::string(static_cast<size_t>(batch) * 784, '\x10'));
    return req;
  }
  absl::Status Parse(const inf::ModelInferRequest& req, ParsedInfer* out) {
    InferDefaults d;
    return ParseInferRequest(req, *repo_, d, out);
  }
  absl::StatusCode Code(const inf::ModelInferRequest& req) {
    ParsedInfer p;
    return Parse(req, &p).code();
  }

  static ModelRepository* repo_;
};
ModelRepository* KServeTest::repo_ = nullptr;

TEST_F(KServeTest, Uint8RawAndContents) {
  ParsedInfer p;
  auto req = PixelsRaw(3);
  ASSERT_TRUE(Parse(req, &p).ok());
  EXPECT_EQ(p.head.input.kind, EdgeInput::Kind::kPixelsU8);
  EXPECT_EQ(p.head.input.batch, 3);
  EXPECT_EQ(p.head.input.pixels, reinterpret_cast<const uint8_t*>(req.raw_input_contents(0).data()));
  EXPECT_TRUE(p.raw_output);
  EXPECT_EQ(p.top_k, 5);
  EXPECT_EQ(p.head.encode.q, 4);
  EXPECT_EQ(p.head.encode.mode, codec::Mode::kAuto);

  auto c = Request("UINT8", {1, 28, 28});
  for (int i = 0; i < 784; ++i) c.mutable_inputs(0)->mutable_contents()->add_uint_contents(i % 256);
  ParsedInfer q;
  ASSERT_TRUE(Parse(c, &q).ok());
  EXPECT_EQ(q.head.input.batch, 1);
  EXPECT_FALSE(q.raw_output);
  ASSERT_EQ(q.pixels.size(), 784u);
  EXPECT_EQ(q.head.input.pixels, q.pixels.data());
  EXPECT_EQ(q.pixels[300], 300 % 256);
  c.mutable_inputs(0)->mutable_contents()->set_uint_contents(5, 256);
  ParsedInfer r;
  auto st = Parse(c, &r);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("out of range"), std::string::npos) << st;
}

TEST_F(KServeTest, Fp32ContentsRawAlignedAndUnaligned) {
  auto c = Request("FP32", {2, 1, 28, 28});
  for (int i = 0; i < 2 * 784; ++i) c.mutable_inputs(0)->mutable_contents()->add_fp32_contents(i * 0.001f);
  ParsedInfer p;
  ASSERT_TRUE(Parse(c, &p).ok());
  EXPECT_EQ(p.head.input.kind, EdgeInput::Kind::kFloat32);
  EXPECT_EQ(p.head.input.batch, 2);
  EXPECT_EQ(p.head.input.values, c.inputs(0).contents().fp32_contents().data());

  std::vector<float> v(784);
  for (int i = 0; i < 784; ++i) v[i] = i * 0.5f;
  // The raw bytes of a proto string may sit at any address: the parser copies when unaligned.
  for (int offset : {0, 1}) {
    auto r = Request("FP32", {1, 28, 28});
    std::string raw(784 * 4 + offset, '\0');
    std::memcpy(raw.data() + offset, v.data(), 784 * 4);
    r.add_raw_input_contents(raw.substr(offset));
    ParsedInfer q;
    ASSERT_TRUE(Parse(r, &q).ok());
    ASSERT_NE(q.head.input.values, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(q.head.input.values) % alignof(float), 0u);
    EXPECT_EQ(std::memcmp(q.head.input.values, v.data(), 784 * 4), 0);
  }
  auto bad = Request("FP32", {1, 28, 28});
  bad.add_raw_input_contents(std::string(784 * 4 - 1, '\0'));
  EXPECT_EQ(Code(bad), absl::StatusCode::kInvalidArgument);
}

TEST_F(KServeTest, InputScalingIsExplicit) {
  auto req = Request("FP32", {1, 28, 28});
  req.add_raw_input_contents(std::string(784 * 4, '\0'));
  (*req.mutable_parameters())[ks::kParamInputScaling].set_string_param(ks::kScalingUnit);
  ParsedInfer p;
  ASSERT_TRUE(Parse(req, &p).ok());
  EXPECT_EQ(p.head.input.kind, EdgeInput::Kind::kUnitFloat32);
  (*req.mutable_parameters())[ks::kParamInputScaling].set_string_param(ks::kScalingNormalized);
  ParsedInfer q;
  ASSERT_TRUE(Parse(req, &q).ok());
  EXPECT_EQ(q.head.input.kind, EdgeInput::Kind::kFloat32);
  (*req.mutable_parameters())[ks::kParamInputScaling].set_string_param("percent");
  EXPECT_EQ(Code(req), absl::StatusCode::kInvalidArgument);
  // Only FP32 values can be scaled either way.
  auto px = PixelsRaw(1);
  (*px.mutable_parameters())[ks::kParamInputScaling].set_string_param(ks::kScalingUnit);
  EXPECT_EQ(Code(px), absl::StatusCode::kInvalidArgument);
}

TEST_F(KServeTest, BytesContentsAndRaw) {
  auto c = Request("BYTES", {2});
  c.mutable_inputs(0)->mutable_contents()->add_bytes_contents("png-a");
  c.mutable_inputs(0)->mutable_contents()->add_bytes_contents("png-bb");
  ParsedInfer p;
  ASSERT_TRUE(Parse(c, &p).ok());
  EXPECT_EQ(p.head.input.kind, EdgeInput::Kind::kEncodedImages);
  ASSERT_EQ(p.head.input.images.size(), 2u);
  EXPECT_EQ(p.head.input.images[1], "png-bb");

  auto r = Request("BYTES", {2, 1});
  std::string raw;
  ks::AppendRawBytes("one", &raw);
  ks::AppendRawBytes("", &raw);
  r.add_raw_input_contents(raw);
  ParsedInfer q;
  ASSERT_TRUE(Parse(r, &q).ok());
  ASSERT_EQ(q.head.input.images.size(), 2u);
  EXPECT_EQ(q.head.input.images[0], "one");
  EXPECT_EQ(q.head.input.images[1], "");

  auto truncated = Request("BYTES", {2});
  truncated.add_raw_input_contents(raw.substr(0, raw.size() - 1));
  EXPECT_EQ(Code(truncated), absl::StatusCode::kInvalidArgument);
  auto trailing = Request("BYTES", {1});
  trailing.add_raw_input_contents(raw);
  EXPECT_EQ(Code(trailing), absl::StatusCode::kInvalidArgument);
  auto count = Request("BYTES", {3});
  count.mutable_inputs(0)->mutable_contents()->add_bytes_contents("x");
  EXPECT_EQ(Code(count), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(Request("BYTES", {2, 2})), absl::StatusCode::kInvalidArgument);
}

TEST_F(KServeTest, RawBytesFraming) {
  std::string raw;
  ks::AppendRawBytes("abc", &raw);
  ks::AppendRawBytes(std::string(300, 'z'), &raw);
  ASSERT_EQ(raw.size(), 4u + 3 + 4 + 300);
  EXPECT_EQ(raw.substr(0, 4), std::string("\x03\x00\x00\x00", 4));
  EXPECT_EQ(raw.substr(7, 4), std::string("\x2c\x01\x00\x00", 4));
  std::vector<std::string_view> parts;
  ASSERT_TRUE(ks::SplitRawBytes(raw, 2, &parts).ok());
  EXPECT_EQ(parts[0], "abc");
  EXPECT_EQ(parts[1].size(), 300u);
  EXPECT_FALSE(ks::SplitRawBytes(raw, 3, &parts).ok());
  EXPECT_FALSE(ks::SplitRawBytes(raw, 1, &parts).ok());
  EXPECT_FALSE(ks::SplitRawBytes(raw.substr(0, 6), 1, &parts).ok());
  EXPECT_TRUE(ks::SplitRawBytes("", 0, &parts).ok());
  EXPECT_TRUE(parts.empty());
}

TEST_F(KServeTest, ParametersAreValidated) {
  struct Case {
    const char* name;
    std::function<void(inf::ModelInferRequest*)> edit;
    absl::StatusCode code;
  };
  auto set_int = [](const char* k, int64_t v) {
    return [=](inf::ModelInferRequest* r) { (*r->mutable_parameters())[k].set_int64_param(v); };
  };
  auto set_str = [](const char* k, const char* v) {
    return [=](inf::ModelInferRequest* r) { (*r->mutable_parameters())[k].set_string_param(v); };
  };
  const std::vector<Case> cases = {
      {"q=0", set_int("q", 0), absl::StatusCode::kInvalidArgument},
      {"q=99", set_int("q", 99), absl::StatusCode::kInvalidArgument},
      {"q=9", set_int("q", 9), absl::StatusCode::kInvalidArgument},
      {"q as double", [](inf::ModelInferRequest* r) { (*r->mutable_parameters())["q"].set_double_param(4.0); },
       absl::StatusCode::kInvalidArgument},
      {"q as text", set_str("q", "four"), absl::StatusCode::kInvalidArgument},
      {"codec_mode=bogus", set_str("codec_mode", "bogus"), absl::StatusCode::kInvalidArgument},
      {"codec_mode as int", set_int("codec_mode", 2), absl::StatusCode::kInvalidArgument},
      {"quantizer=minmax", set_str("quantizer", "minmax"), absl::StatusCode::kInvalidArgument},
      {"quantizer as int", set_int("quantizer", 1), absl::StatusCode::kInvalidArgument},
      {"quantizer clip with codec_mode paper",
       [](inf::ModelInferRequest* r) {
         (*r->mutable_parameters())["quantizer"].set_string_param("clip");
         (*r->mutable_parameters())["codec_mode"].set_string_param("paper");
       },
       absl::StatusCode::kInvalidArgument},
      {"split=bogus", set_str("split", "bogus"), absl::StatusCode::kNotFound},
      {"placement=cloud", set_str("placement", "cloud"), absl::StatusCode::kInvalidArgument},
      {"placement as int", set_int("placement", 1), absl::StatusCode::kInvalidArgument},
      {"feature_codec=gzip", set_str("feature_codec", "gzip"), absl::StatusCode::kInvalidArgument},
      {"top_k=0", set_int("top_k", 0), absl::StatusCode::kInvalidArgument},
      {"top_k=101", set_int("top_k", 101), absl::StatusCode::kInvalidArgument},
      {"unknown parameter", set_int("quality", 90), absl::StatusCode::kInvalidArgument},
      {"unknown model", [](inf::ModelInferRequest* r) { r->set_model_name("no_such_model"); }, absl::StatusCode::kNotFound},
      {"unknown version", [](inf::ModelInferRequest* r) { r->set_model_version("7"); }, absl::StatusCode::kNotFound},
      {"unknown output",
       [](inf::ModelInferRequest* r) { r->add_outputs()->set_name("probabilities"); }, absl::StatusCode::kInvalidArgument},
      {"output twice",
       [](inf::ModelInferRequest* r) {
         r->add_outputs()->set_name("logits");
         r->add_outputs()->set_name("logits");
       },
       absl::StatusCode::kInvalidArgument},
      {"output parameter",
       [](inf::ModelInferRequest* r) {
         auto* o = r->add_outputs();
         o->set_name("topk_labels");
         (*o->mutable_parameters())["classification"].set_int64_param(3);
       },
       absl::StatusCode::kInvalidArgument},
      {"input parameter",
       [](inf::ModelInferRequest* r) { (*r->mutable_inputs(0)->mutable_parameters())["x"].set_int64_param(1); },
       absl::StatusCode::kInvalidArgument},
      {"no input", [](inf::ModelInferRequest* r) { r->clear_inputs(); r->clear_raw_input_contents(); },
       absl::StatusCode::kInvalidArgument},
      {"two inputs", [](inf::ModelInferRequest* r) { *r->add_inputs() = r->inputs(0); }, absl::StatusCode::kInvalidArgument},
      {"two raw entries", [](inf::ModelInferRequest* r) { r->add_raw_input_contents("x"); },
       absl::StatusCode::kInvalidArgument},
      {"raw and contents",
       [](inf::ModelInferRequest* r) { r->mutable_inputs(0)->mutable_contents()->add_uint_contents(1); },
       absl::StatusCode::kInvalidArgument},
      {"datatype INT64", [](inf::ModelInferRequest* r) { r->mutable_inputs(0)->set_datatype("INT64"); },
       absl::StatusCode::kInvalidArgument},
      {"wrong shape",
       [](inf::ModelInferRequest* r) { r->mutable_inputs(0)->set_shape(3, 27); }, absl::StatusCode::kInvalidArgument},
      {"negative dimension",
       [](inf::ModelInferRequest* r) { r->mutable_inputs(0)->set_shape(0, -1); }, absl::StatusCode::kInvalidArgument},
      {"batch 0",
       [](inf::ModelInferRequest* r) {
         r->mutable_inputs(0)->set_shape(0, 0);
         r->set_raw_input_contents(0, "");
       },
       absl::StatusCode::kInvalidArgument},
      {"batch 257",
       [](inf::ModelInferRequest* r) {
         r->mutable_inputs(0)->set_shape(0, 257);
         r->set_raw_input_contents(0, std::string(257 * 784, '\0'));
       },
       absl::StatusCode::kInvalidArgument},
      {"size mismatch", [](inf::ModelInferRequest* r) { r->set_raw_input_contents(0, "short"); },
       absl::StatusCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    auto req = PixelsRaw(1);
    c.edit(&req);
    ParsedInfer p;
    absl::Status st = Parse(req, &p);
    EXPECT_EQ(st.code(), c.code) << c.name << ": " << st;
    EXPECT_FALSE(st.message().empty()) << c.name;
  }
  // And the good ones: q as uint64 or a digit string, every mode, a known split, both outputs.
  auto req = PixelsRaw(1);
  (*req.mutable_parameters())["q"].set_uint64_param(8);
  (*req.mutable_parameters())["top_k"].set_string_param("3");
  (*req.mutable_parameters())["split"].set_string_param("stage3");
  req.add_outputs()->set_name("topk_labels");
  for (const std::string& mode : codec::ModeNames()) {
    (*req.mutable_parameters())["codec_mode"].set_string_param(mode);
    ParsedInfer p;
    ASSERT_TRUE(Parse(req, &p).ok()) << mode;
    EXPECT_EQ(p.head.encode.q, 8);
    EXPECT_EQ(p.top_k, 3);
    EXPECT_EQ(p.head.split, "stage3");
    EXPECT_STREQ(codec::ModeName(p.head.encode.mode), mode.c_str());
    EXPECT_EQ(p.head.encode.quantizer, codec::Quantizer::kMinMax);  // the default
    EXPECT_FALSE(p.want_logits);
    EXPECT_TRUE(p.want_topk);
  }
  (*req.mutable_parameters())["codec_mode"].set_string_param("dense");
  (*req.mutable_parameters())["quantizer"].set_string_param("clip");
  ParsedInfer clip;
  ASSERT_TRUE(Parse(req, &clip).ok());
  EXPECT_EQ(clip.head.encode.quantizer, codec::Quantizer::kClip);
}

// Inputs the request fuzzer once crashed on stay plain errors (edge/fuzz/corpus/regression_*).
TEST_F(KServeTest, FuzzerRegressionsAreCleanErrors) {
  const std::string dir = std::string(SPLITRANS_SOURCE_DIR) + "/edge/fuzz/corpus/";
  for (const char* name : {"regression_jpeg_huffman_overflow.pb"}) {
    std::ifstream f(dir + name, std::ios::binary);
    ASSERT_TRUE(f) << name;
    const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    inf::ModelInferRequest req;
    ASSERT_TRUE(req.ParseFromString(bytes)) << name;
    ParsedInfer p;
    const absl::Status st = Parse(req, &p);
    ASSERT_TRUE(st.ok()) << name << " no longer reaches the image decoder: " << st;
    // Decoded or refused, never undefined behaviour (which the sanitizer build would report).
    for (const auto& img : p.head.input.images) {
      std::vector<float> out(784);
      const absl::Status ds = DecodeImageToInput(reinterpret_cast<const uint8_t*>(img.data()), img.size(), *p.manifest,
                                                 out.data());
      if (ds.ok()) {
        for (float v : out) EXPECT_TRUE(std::isfinite(v));
      } else {
        EXPECT_EQ(ds.code(), absl::StatusCode::kInvalidArgument) << ds;
      }
    }
  }
}

TEST(CodecModes, OneListForParsingAndNaming) {
  const auto names = codec::ModeNames();
  ASSERT_EQ(names.size(), 5u);
  for (size_t i = 0; i < names.size(); ++i) {
    codec::Mode m;
    ASSERT_TRUE(codec::ParseMode(names[i], &m)) << names[i];
    EXPECT_EQ(static_cast<size_t>(m), i);
    EXPECT_EQ(names[i], codec::ModeName(m));
  }
  codec::Mode m;
  EXPECT_FALSE(codec::ParseMode("bogus", &m));
}

v1::Result GoodResult(int64_t batch, int classes, int k) {
  v1::Result r;
  r.add_logits_shape(batch);
  r.add_logits_shape(classes);
  for (int64_t i = 0; i < batch * classes; ++i) r.add_logits(static_cast<float>(i % classes));
  for (int64_t b = 0; b < batch; ++b) {
    for (int i = 0; i < k; ++i) {
      auto* c = r.add_topk();
      c->set_batch_index(static_cast<uint32_t>(b));
      c->set_index(static_cast<uint32_t>(classes - 1 - i));
      c->set_score(0.5f / (i + 1));
    }
  }
  return r;
}

TEST(CloudResultTest, WellFormedResultsPass) {
  EXPECT_TRUE(ValidateCloudResult(GoodResult(2, 10, 3), 2, 10, 3).ok());
  EXPECT_TRUE(ValidateCloudResult(GoodResult(1, 10, 10), 1, 10, 50).ok());  // k is capped at the classes
  v1::Result err;
  err.set_status_code(15);  // DATA_LOSS
  err.set_status_message("codec CHECKSUM_MISMATCH");
  EXPECT_TRUE(ValidateCloudResult(err, 4, 10, 3).ok());
}

TEST(CloudResultTest, WhatTheCloudSendsIsNotTrusted) {
  struct Case {
    const char* name;
    std::function<void(v1::Result*)> edit;
  };
  const std::vector<Case> cases = {
      {"status 17", [](v1::Result* r) { r->set_status_code(17); }},
      {"status -1", [](v1::Result* r) { r->set_status_code(-1); }},
      {"rows", [](v1::Result* r) { r->set_logits_shape(0, 3); }},
      {"classes", [](v1::Result* r) { r->set_logits_shape(1, 9); }},
      {"rank", [](v1::Result* r) { r->add_logits_shape(1); }},
      {"too few logits", [](v1::Result* r) { r->mutable_logits()->RemoveLast(); }},
      {"NaN logit", [](v1::Result* r) { r->set_logits(3, std::nanf("")); }},
      {"inf logit", [](v1::Result* r) { r->set_logits(0, std::numeric_limits<float>::infinity()); }},
      {"missing top-k", [](v1::Result* r) { r->mutable_topk()->RemoveLast(); }},
      {"class out of range", [](v1::Result* r) { r->mutable_topk(1)->set_index(10); }},
      {"wrong batch index", [](v1::Result* r) { r->mutable_topk(0)->set_batch_index(1); }},
      {"score above 1", [](v1::Result* r) { r->mutable_topk(2)->set_score(1.5f); }},
      {"NaN score", [](v1::Result* r) { r->mutable_topk(2)->set_score(std::nanf("")); }},
  };
  for (const Case& c : cases) {
    v1::Result r = GoodResult(2, 10, 3);
    c.edit(&r);
    absl::Status st = ValidateCloudResult(r, 2, 10, 3);
    EXPECT_EQ(st.code(), absl::StatusCode::kInternal) << c.name;
    EXPECT_NE(st.message().find("invalid result from the cloud"), std::string::npos) << c.name << ": " << st;
  }
}

TEST_F(KServeTest, PlacementAndFeatureCodecParameters) {
  auto req = PixelsRaw(1);
  ParsedInfer p;
  ASSERT_TRUE(ParseInferRequest(req, *repo_, InferDefaults{}, &p).ok());
  EXPECT_EQ(p.head.placement, Placement::kSplit);
  EXPECT_EQ(p.head.wire, FeatureWire::kSrns);
  InferDefaults d;
  d.placement = Placement::kLocal;
  d.wire = FeatureWire::kZstd;
  ParsedInfer q;
  ASSERT_TRUE(ParseInferRequest(req, *repo_, d, &q).ok());
  EXPECT_EQ(q.head.placement, Placement::kLocal) << "the server's default applies";
  EXPECT_EQ(q.head.wire, FeatureWire::kZstd);
  (*req.mutable_parameters())["placement"].set_string_param("offload");
  (*req.mutable_parameters())["feature_codec"].set_string_param("raw");
  ParsedInfer r;
  ASSERT_TRUE(ParseInferRequest(req, *repo_, d, &r).ok());
  EXPECT_EQ(r.head.placement, Placement::kOffload) << "the request overrides it";
  EXPECT_EQ(r.head.wire, FeatureWire::kRaw);
}

TEST_F(KServeTest, PolicyParameter) {
  auto req = PixelsRaw(1);
  ParsedInfer p;
  ASSERT_TRUE(Parse(req, &p).ok());
  EXPECT_EQ(p.policy, PolicyKind::kFixed) << "the default";
  (*req.mutable_parameters())["policy"].set_string_param("latency");
  ParsedInfer l;
  ASSERT_TRUE(Parse(req, &l).ok());
  EXPECT_EQ(l.policy, PolicyKind::kLatency);
  (*req.mutable_parameters())["policy"].set_string_param("fastest");
  EXPECT_EQ(Code(req), absl::StatusCode::kInvalidArgument);
  (*req.mutable_parameters())["policy"].set_int64_param(1);
  EXPECT_EQ(Code(req), absl::StatusCode::kInvalidArgument);
  // Asking for latency and choosing what it chooses is a contradiction ...
  for (const char* chosen : ks::kPolicyChosenParams) {
    auto r = PixelsRaw(1);
    (*r.mutable_parameters())["policy"].set_string_param("latency");
    (*r.mutable_parameters())[chosen].set_string_param("x");
    ParsedInfer x;
    const absl::Status st = Parse(r, &x);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << chosen;
    EXPECT_NE(st.message().find(chosen), std::string::npos) << st;
  }
  // ... but with the edge's default latency a request that chooses is served as it asks.
  InferDefaults d;
  d.policy = PolicyKind::kLatency;
  auto r = PixelsRaw(1);
  ParsedInfer a;
  ASSERT_TRUE(ParseInferRequest(r, *repo_, d, &a).ok());
  EXPECT_EQ(a.policy, PolicyKind::kLatency);
  (*r.mutable_parameters())["q"].set_int64_param(3);
  ParsedInfer b;
  ASSERT_TRUE(ParseInferRequest(r, *repo_, d, &b).ok());
  EXPECT_EQ(b.policy, PolicyKind::kFixed);
  EXPECT_EQ(b.head.encode.q, 3);
}

TEST_F(KServeTest, ResponseInContentsOrRawWithTheRequestedOutputs) {
  auto m = repo_->Find("fmnist_resnet");
  ASSERT_TRUE(m.ok());
  const v1::Result r = GoodResult(2, 10, 3);
  ResponseInfo info;
  info.id = "abc";
  info.manifest = *m;
  info.split = "stage2";
  info.mode = "dense";
  info.quantizer = "clip";
  info.q = 6;
  info.cloud_round_trip_us = 900;
  info.feature_bytes = 321;
  for (bool raw : {false, true}) {
    ParsedInfer p;
    p.raw_output = raw;
    inf::ModelInferResponse resp;
    BuildInferResponse(r, p, info, &resp);
    EXPECT_EQ(resp.id(), "abc");
    EXPECT_EQ(resp.model_name(), "fmnist_resnet");
    ASSERT_EQ(resp.outputs_size(), 2);
    EXPECT_EQ(resp.outputs(0).name(), "logits");
    EXPECT_EQ(resp.outputs(0).shape(0), 2);
    EXPECT_EQ(resp.outputs(0).shape(1), 10);
    EXPECT_EQ(resp.outputs(1).name(), "topk_labels");
    EXPECT_EQ(resp.outputs(1).shape(1), 3);
    std::vector<std::string_view> labels;
    if (raw) {
      ASSERT_EQ(resp.raw_output_contents_size(), 2);
      EXPECT_EQ(resp.raw_output_contents(0).size(), 20u * 4);
      ASSERT_TRUE(ks::SplitRawBytes(resp.raw_output_contents(1), 6, &labels).ok());
    } else {
      EXPECT_EQ(resp.raw_output_contents_size(), 0);
      EXPECT_EQ(resp.outputs(0).contents().fp32_contents_size(), 20);
      for (const auto& s : resp.outputs(1).contents().bytes_contents()) labels.push_back(s);
    }
    ASSERT_EQ(labels.size(), 6u);
    EXPECT_EQ(labels[0], "0.5:9:Ankle boot");  // labels come from the edge's own manifest
    EXPECT_EQ(resp.parameters().at("q").int64_param(), 6);
    EXPECT_EQ(resp.parameters().at("feature_bytes").int64_param(), 321);
    EXPECT_EQ(resp.parameters().at("codec_mode").string_param(), "dense");
    EXPECT_EQ(resp.parameters().at("quantizer").string_param(), "clip");
    EXPECT_EQ(resp.parameters().at("transfer_us").int64_param(), 900);
    EXPECT_EQ(resp.parameters().at("placement").string_param(), "split");
    EXPECT_EQ(resp.parameters().at("feature_codec").string_param(), "srns");
    for (const char* k : ks::kTimingParams) EXPECT_EQ(resp.parameters().count(k), 1u) << k;
    EXPECT_EQ(resp.parameters().at("policy").string_param(), "fixed");
    EXPECT_EQ(resp.parameters().count("policy_predicted_us"), 0u);
  }
  {  // The policy's choice is reported; offload has neither Q nor a codec mode.
    ResponseInfo o = info;
    o.placement = Placement::kOffload;
    o.split = "full";
    o.policy = PolicyKind::kLatency;
    o.policy_predicted_us = 1234;
    inf::ModelInferResponse resp;
    BuildInferResponse(r, ParsedInfer{}, o, &resp);
    EXPECT_EQ(resp.parameters().at("policy").string_param(), "latency");
    EXPECT_EQ(resp.parameters().at("policy_predicted_us").int64_param(), 1234);
    EXPECT_EQ(resp.parameters().at("placement").string_param(), "offload");
    EXPECT_EQ(resp.parameters().count("q"), 0u);
    EXPECT_EQ(resp.parameters().count("codec_mode"), 0u);
    EXPECT_EQ(resp.parameters().count("quantizer"), 0u);
    EXPECT_EQ(resp.parameters().count("feature_codec"), 0u);
  }
  ParsedInfer only_logits;
  only_logits.want_topk = false;
  inf::ModelInferResponse resp;
  BuildInferResponse(r, only_logits, info, &resp);
  ASSERT_EQ(resp.outputs_size(), 1);
  EXPECT_EQ(resp.outputs(0).name(), "logits");
}

TEST_F(KServeTest, MetadataStatesTheInputScaling) {
  auto m = repo_->Find("fmnist_resnet");
  ASSERT_TRUE(m.ok());
  inf::ModelMetadataResponse resp;
  FillModelMetadata(**m, *repo_, &resp);
  ASSERT_EQ(resp.inputs_size(), 1);
  const auto& params = resp.inputs(0).parameters();
  ASSERT_EQ(params.count("fp32_scaling"), 1u);
  EXPECT_NE(params.at("fp32_scaling").string_param().find("input_scaling=unit"), std::string::npos);
  EXPECT_NE(params.at("mean").string_param().find("0.286"), std::string::npos);
  EXPECT_NE(params.at("std").string_param().find("0.353"), std::string::npos);
  EXPECT_EQ(resp.inputs(0).shape_size(), 4);
  EXPECT_EQ(resp.outputs_size(), 2);
  EXPECT_EQ(resp.outputs(0).shape(1), 10);
}

// A token model (manifest input.kind "tokens", T = 8, vocab 5) in a repository of its own: the
// request parser reads manifests only, no TorchScript.
class TokenKServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string root = ::testing::TempDir() + "/kserve_token_repo";
    std::filesystem::create_directories(root + "/lm/1");
    std::ofstream(root + "/lm/1/manifest.json") << R"({"name": "lm", "version": 1,
      "input": {"shape": [8], "dtype": "INT64", "kind": "tokens", "vocab": 5},
      "output": {"shape": [5], "dtype": "FP32", "kind": "logits"}, "labels": ["\n", " ", "a", "b", "c"],
      "full": "full.pt", "splits": {"b1": {"head": "h.pt", "tail": "t.pt", "feature_shape": [8, 4]}}})";
    auto r = ModelRepository::Load(root);
    ASSERT_TRUE(r.ok()) << r.status();
    repo_ = new ModelRepository(std::move(*r));
  }
  static void TearDownTestSuite() {
    delete repo_;
    repo_ = nullptr;
  }
  static inf::ModelInferRequest Request(const std::string& datatype, std::vector<int64_t> shape) {
    return OneInputRequest("lm", datatype, shape);
  }
  absl::Status Parse(const inf::ModelInferRequest& req, ParsedInfer* out) {
    return ParseInferRequest(req, *repo_, InferDefaults{}, out);
  }
  static std::vector<int64_t> Ids(int64_t n) {
    std::vector<int64_t> ids(n);
    for (int64_t i = 0; i < n; ++i) ids[i] = (i * 3) % 5;
    return ids;
  }
  static ModelRepository* repo_;
};
ModelRepository* TokenKServeTest::repo_ = nullptr;

TEST_F(TokenKServeTest, Int64AndInt32InContentsAndRaw) {
  const std::vector<int64_t> one = Ids(8), two = Ids(16);
  auto check = [&](const inf::ModelInferRequest& req, const std::vector<int64_t>& want, const char* what) {
    ParsedInfer p;
    absl::Status st = Parse(req, &p);
    ASSERT_TRUE(st.ok()) << what << ": " << st;
    EXPECT_EQ(p.head.input.kind, EdgeInput::Kind::kTokens) << what;
    EXPECT_EQ(p.head.input.batch, static_cast<int64_t>(want.size()) / 8) << what;
    ASSERT_NE(p.head.input.tokens, nullptr);
    EXPECT_EQ(std::vector<int64_t>(p.head.input.tokens, p.head.input.tokens + want.size()), want) << what;
    EXPECT_EQ(p.raw_output, req.raw_input_contents_size() > 0) << what;
  };
  auto i64 = Request("INT64", {8});
  for (int64_t v : one) i64.mutable_inputs(0)->mutable_contents()->add_int64_contents(v);
  check(i64, one, "INT64 [8] contents");
  auto i32 = Request("INT32", {2, 8});
  for (int64_t v : two) i32.mutable_inputs(0)->mutable_contents()->add_int_contents(static_cast<int32_t>(v));
  check(i32, two, "INT32 [2,8] contents");
  // raw_input_contents: little-endian, 8 or 4 bytes per id.
  std::string raw64, raw32;
  for (int64_t v : two) {
    for (int b = 0; b < 8; ++b) raw64.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * b)) & 0xff));
    for (int b = 0; b < 4; ++b) raw32.push_back(static_cast<char>((static_cast<uint64_t>(v) >> (8 * b)) & 0xff));
  }
  auto r64 = Request("INT64", {2, 8});
  r64.add_raw_input_contents(raw64);
  check(r64, two, "INT64 raw");
  auto r32 = Request("INT32", {2, 8});
  r32.add_raw_input_contents(raw32);
  check(r32, two, "INT32 raw");
}

TEST_F(TokenKServeTest, IdsOutsideTheVocabularyNameTheirPositionAndValue) {
  struct Case {
    inf::ModelInferRequest req;
    std::string why;
  };
  std::vector<Case> cases;
  {
    auto r = Request("INT64", {8});
    for (int i = 0; i < 8; ++i) r.mutable_inputs(0)->mutable_contents()->add_int64_contents(i == 3 ? 5 : 0);
    cases.push_back({r, "token id 5 at position 3 is outside the vocabulary [0, 5)"});
  }
  {
    auto r = Request("INT32", {2, 8});
    for (int i = 0; i < 16; ++i) r.mutable_inputs(0)->mutable_contents()->add_int_contents(i == 9 ? -1 : 1);
    cases.push_back({r, "token id -1 at position 9"});
  }
  {
    auto r = Request("INT64", {8});
    std::string raw(64, '\0');
    raw[8 * 7 + 5] = 1;  // id 7 = 2^40
    r.add_raw_input_contents(raw);
    cases.push_back({r, "token id 1099511627776 at position 7"});
  }
  {
    auto r = Request("INT32", {8});
    std::string raw(32, '\0');
    for (int b = 0; b < 4; ++b) raw[4 + b] = '\xff';  // id 1 = -1
    r.add_raw_input_contents(raw);
    cases.push_back({r, "token id -1 at position 1"});
  }
  for (const Case& c : cases) {
    ParsedInfer p;
    absl::Status st = Parse(c.req, &p);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.why;
    EXPECT_NE(st.message().find(c.why), std::string::npos) << st;
  }
}

TEST_F(TokenKServeTest, OtherDatatypesShapesAndSizesAreRefused) {
  struct Case {
    inf::ModelInferRequest req;
    std::string why;
  };
  std::vector<Case> cases;
  for (const char* dt : {"FP32", "UINT8", "BYTES", "INT16", "FP16"}) {
    auto r = Request(dt, {8});
    r.add_raw_input_contents(std::string(32, '\0'));
    cases.push_back({r, "takes token ids: input datatype must be INT64 or INT32"});
  }
  for (std::vector<int64_t> shape : {std::vector<int64_t>{7}, {1, 1, 8}, {8, 1}, {0, 8}, {}}) {
    auto r = Request("INT64", shape);
    r.add_raw_input_contents(std::string(64, '\0'));
    cases.push_back({r, shape.size() == 2 && shape[0] == 0 ? "batch size 0" : "must be [8] or [B,8]"});
  }
  {
    auto r = Request("INT64", {8});
    r.add_raw_input_contents(std::string(63, '\0'));
    cases.push_back({r, "raw INT64 input has 63 bytes, shape needs 64"});
  }
  {
    auto r = Request("INT32", {2, 8});
    r.add_raw_input_contents(std::string(64, '\0'));
    cases.push_back({r, "raw INT32 input has 64 bytes, shape needs 64"});  // 2 x 8 x 4 = 64: accepted, see below
  }
  {
    auto r = Request("INT64", {8});
    r.mutable_inputs(0)->mutable_contents()->add_int_contents(1);  // INT64 needs int64_contents
    cases.push_back({r, "int64_contents has 0 values, the shape needs 8"});
  }
  {
    auto r = Request("INT64", {8});
    r.add_raw_input_contents(std::string(64, '\0'));
    (*r.mutable_parameters())[ks::kParamInputScaling].set_string_param(ks::kScalingUnit);
    cases.push_back({r, "applies to FP32 inputs only"});
  }
  for (const Case& c : cases) {
    ParsedInfer p;
    absl::Status st = Parse(c.req, &p);
    if (c.why.rfind("raw INT32 input has 64", 0) == 0) {
      EXPECT_TRUE(st.ok()) << st;  // the size matches
      continue;
    }
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.why;
    EXPECT_NE(st.message().find(c.why), std::string::npos) << c.why << " -- got: " << st;
  }
}

TEST_F(KServeTest, ImageModelsRefuseTokenIds) {
  for (const char* dt : {"INT64", "INT32"}) {
    auto req = Request(dt, {1, 1, 28, 28});
    req.add_raw_input_contents(std::string(784 * (dt[3] == '6' ? 8 : 4), '\0'));
    ParsedInfer p;
    absl::Status st = Parse(req, &p);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find("is for token models; model 'fmnist_resnet' takes images: FP32, UINT8 or BYTES"),
              std::string::npos)
        << st;
  }
}

TEST_F(TokenKServeTest, MetadataListsTokenIdsAndTheResponseUsesTheCharacters) {
  auto m = repo_->Find("lm");
  ASSERT_TRUE(m.ok());
  inf::ModelMetadataResponse md;
  FillModelMetadata(**m, *repo_, &md);
  ASSERT_EQ(md.inputs_size(), 1);
  EXPECT_EQ(md.inputs(0).datatype(), "INT64");
  ASSERT_EQ(md.inputs(0).shape_size(), 2);
  EXPECT_EQ(md.inputs(0).shape(0), -1);
  EXPECT_EQ(md.inputs(0).shape(1), 8);
  const auto& params = md.inputs(0).parameters();
  EXPECT_EQ(params.at("accepted_datatypes").string_param(), "INT64,INT32");
  EXPECT_EQ(params.at("vocab").int64_param(), 5);
  EXPECT_EQ(params.count("mean"), 0u);
  EXPECT_EQ(md.outputs(0).shape(1), 5);

  // A cloud answer for a batch of 2: top-k labels are the characters.
  auto req = Request("INT64", {2, 8});
  req.add_raw_input_contents(std::string(128, '\0'));
  ParsedInfer p;
  ASSERT_TRUE(Parse(req, &p).ok());
  v1::Result r;
  r.add_logits_shape(2);
  r.add_logits_shape(5);
  for (int i = 0; i < 10; ++i) r.add_logits(static_cast<float>(i % 5));
  for (uint32_t b = 0; b < 2; ++b) {
    auto* c = r.add_topk();
    c->set_batch_index(b);
    c->set_index(4);
    c->set_score(0.5f);
  }
  ASSERT_TRUE(ValidateCloudResult(r, 2, 5, 1).ok());
  ResponseInfo info;
  info.manifest = *m;
  info.split = "b1";
  inf::ModelInferResponse resp;
  p.raw_output = false;
  BuildInferResponse(r, p, info, &resp);
  ASSERT_EQ(resp.outputs_size(), 2);
  EXPECT_EQ(resp.outputs(0).shape(1), 5);
  ASSERT_EQ(resp.outputs(1).contents().bytes_contents_size(), 2);
  EXPECT_EQ(resp.outputs(1).contents().bytes_contents(0), "0.5:4:c");
}

}  // namespace
}  // namespace splitrans::edge

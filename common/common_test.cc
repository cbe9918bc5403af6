// Unit tests for common/: status mapping, manifest validation, image decoding errors, top-k.
#include <gtest/gtest.h>

#include <grpc/support/log.h>
#include <png.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <turbojpeg.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <cstring>
#include <random>

#include "common/feature_codec.h"
#include "common/feature_payload.h"
#include "common/image.h"
#include "common/logging.h"
#include "common/thread_pool.h"
#include "common/model_repository.h"
#include "common/status_util.h"
#include "common/topk.h"

namespace splitrans {
namespace {

TEST(StatusUtil, CodecErrorsMapToInvalidArgumentOrDataLoss) {
  using codec::ErrorCode;
  struct Case {
    ErrorCode codec;
    grpc::StatusCode grpc;
  } cases[] = {
      {ErrorCode::kOk, grpc::StatusCode::OK},
      {ErrorCode::kInvalidArgument, grpc::StatusCode::INVALID_ARGUMENT},
      {ErrorCode::kTruncated, grpc::StatusCode::DATA_LOSS},
      {ErrorCode::kBadMagic, grpc::StatusCode::INVALID_ARGUMENT},
      {ErrorCode::kUnsupportedVersion, grpc::StatusCode::INVALID_ARGUMENT},
      {ErrorCode::kReservedBits, grpc::StatusCode::INVALID_ARGUMENT},
      {ErrorCode::kBadHeaderField, grpc::StatusCode::INVALID_ARGUMENT},
      {ErrorCode::kLimitExceeded, grpc::StatusCode::INVALID_ARGUMENT},
      {ErrorCode::kChecksumMismatch, grpc::StatusCode::DATA_LOSS},
      {ErrorCode::kTrailingBytes, grpc::StatusCode::INVALID_ARGUMENT},
      {ErrorCode::kCorruptPayload, grpc::StatusCode::DATA_LOSS},
      {ErrorCode::kInternal, grpc::StatusCode::INTERNAL},
      {ErrorCode::kUnavailable, grpc::StatusCode::UNAVAILABLE},
  };
  for (const auto& c : cases) {
    grpc::Status s = ToGrpcStatus(codec::Status(c.codec, "why"));
    EXPECT_EQ(s.error_code(), c.grpc) << codec::ErrorCodeName(c.codec);
    if (c.codec != ErrorCode::kOk) {
      EXPECT_NE(s.error_message().find(codec::ErrorCodeName(c.codec)), std::string::npos);
    }
  }
}

constexpr char kManifest[] = R"({
  "name": "m", "version": 2,
  "input": {"shape": [1, 4, 4], "mean": [0.5], "std": [0.25]},
  "output": {"shape": [2]}, "labels": ["a", "b"],
  "default_split": "s1",
  "splits": {"s1": {"head": "h.pt", "tail": "t.pt", "feature_shape": [3, 2, 2]}}
})";

TEST(ModelRepository, ParsesAndResolvesPaths) {
  auto m = ParseManifest(kManifest, "/repo/m/2");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->version, 2);
  EXPECT_EQ(m->InputElements(), 16);
  EXPECT_EQ(m->splits.at("s1").head_path, "/repo/m/2/h.pt");
  EXPECT_EQ((*m->FindSplit(""))->name, "s1");
  EXPECT_EQ(m->FindSplit("nope").status().code(), absl::StatusCode::kNotFound);
}

TEST(ModelRepository, ResolvesModelVersionAndSplit) {
  auto repo = ModelRepository::Load(std::string(SPLITRANS_SOURCE_DIR) + "/models");
  ASSERT_TRUE(repo.ok()) << repo.status();
  auto r = repo->Resolve("fmnist_resnet", "", "");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->manifest->name, "fmnist_resnet");
  EXPECT_EQ(r->split, *r->manifest->FindSplit(""));  // the manifest's default split
  auto s1 = repo->Resolve("fmnist_resnet", std::to_string(r->manifest->version), "stage1");
  ASSERT_TRUE(s1.ok()) << s1.status();
  EXPECT_EQ(s1->split->name, "stage1");
  EXPECT_EQ(repo->Resolve("nope", "", "").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repo->Resolve("fmnist_resnet", "999", "").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(repo->Resolve("fmnist_resnet", "", "stage9").status().code(), absl::StatusCode::kNotFound);
}

TEST(ModelRepository, RejectsInvalidManifests) {
  EXPECT_FALSE(ParseManifest("not json", "d").ok());
  std::string s = kManifest;
  EXPECT_FALSE(ParseManifest(std::string(s).replace(s.find("[2]"), 3, "[3]"), "d").ok());  // labels
  EXPECT_FALSE(ParseManifest(std::string(s).replace(s.find("[0.25]"), 6, "[0]"), "d").ok());  // std
  EXPECT_FALSE(ParseManifest(std::string(s).replace(s.find("\"s1\","), 5, "\"s9\","), "d").ok());
  EXPECT_FALSE(ParseManifest(std::string(s).replace(s.find("[3, 2, 2]"), 9, "[3, -2, 2]"), "d").ok());
}

constexpr char kTokenManifest[] = R"({
  "name": "lm", "version": 1,
  "input": {"shape": [8], "dtype": "INT64", "kind": "tokens", "vocab": 3},
  "output": {"shape": [3], "dtype": "FP32", "kind": "logits"}, "labels": ["\n", " ", "a"],
  "full": "full.pt", "default_split": "b",
  "splits": {"b": {"head": "h.pt", "tail": "t.pt", "feature_shape": [8, 4]}},
  "architecture": {"kind": "transformer"}, "heldout_top1": 0.5
})";

TEST(ModelRepository, ParsesTokenManifests) {
  auto m = ParseManifest(kTokenManifest, "/r/lm/1");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->IsTokens());
  EXPECT_EQ(m->vocab, 3);
  EXPECT_EQ(m->input_shape, std::vector<int64_t>{8});
  EXPECT_EQ(m->InputElements(), 8);
  EXPECT_EQ(m->labels[0], "\n");
  EXPECT_TRUE(m->mean.empty());
  EXPECT_EQ(m->splits.at("b").feature_shape, (std::vector<int64_t>{8, 4}));
  auto img = ParseManifest(kManifest, "d");
  ASSERT_TRUE(img.ok());
  EXPECT_FALSE(img->IsTokens());
  EXPECT_EQ(img->vocab, 0);
}

TEST(ModelRepository, RejectsInconsistentTokenManifests) {
  const std::string s = kTokenManifest;
  auto edit = [&s](const std::string& from, const std::string& to) {
    std::string t = s;
    const size_t at = t.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return t.replace(at, from.size(), to);
  };
  struct Case {
    std::string text, why;
  } cases[] = {
      {edit("\"vocab\": 3", "\"vocab\": 4"), "must equal the number of labels"},
      {edit(", \"vocab\": 3", ""), "input.vocab"},
      {edit("\"vocab\": 3", "\"vocab\": 0"), "input.vocab must be in"},
      {edit("\"vocab\": 3", "\"vocab\": \"3\""), "input.vocab"},
      {edit("\"dtype\": \"INT64\"", "\"dtype\": \"FP32\""), "needs input.dtype INT64"},
      {edit("\"dtype\": \"INT64\"", "\"dtype\": \"INT32\""), "input.dtype must be FP32 (images) or INT64"},
      {edit("\"kind\": \"tokens\"", "\"kind\": \"audio\""), "input.kind must be"},
      {edit("\"shape\": [8]", "\"shape\": [1, 8]"), "must be [T]"},
      {edit("\"vocab\": 3}", "\"vocab\": 3, \"mean\": [0.5]}"), "input.mean applies to image inputs"},
      {edit("\"output\": {\"shape\": [3]", "\"output\": {\"shape\": [4]"), "output.shape"},
      {edit("[\"\\n\", \" \", \"a\"]", "[\"\\n\", \" \"]"), "output.shape"},
  };
  for (const Case& c : cases) {
    auto m = ParseManifest(c.text, "d");
    ASSERT_FALSE(m.ok()) << c.why;
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << c.why;
    EXPECT_NE(m.status().message().find(c.why), std::string::npos) << m.status();
  }
  // An image manifest stays an image manifest: no vocab, no INT64.
  const std::string img = kManifest;
  auto with_vocab = ParseManifest(std::string(img).replace(img.find("\"std\""), 5, "\"vocab\": 2, \"std\""), "d");
  EXPECT_EQ(with_vocab.status().code(), absl::StatusCode::kInvalidArgument);
  auto image_int64 = ParseManifest(std::string(img).replace(img.find("\"std\""), 5, "\"dtype\": \"INT64\", \"std\""), "d");
  EXPECT_EQ(image_int64.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Image, CorruptImagesAreInvalidArgument) {
  auto m = ParseManifest(kManifest, "d");
  ASSERT_TRUE(m.ok());
  std::vector<float> out(16);
  const std::string bad[] = {"", "hello", std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16),
                             std::string("\xff\xd8\xff\xe0garbage", 11)};
  for (const auto& b : bad) {
    auto st = DecodeImageToInput(reinterpret_cast<const uint8_t*>(b.data()), b.size(), *m, out.data());
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  }
}

std::string EncodePng(int w, int h, const std::vector<uint8_t>& gray) {
  png_image img;
  std::memset(&img, 0, sizeof(img));
  img.version = PNG_IMAGE_VERSION;
  img.width = w;
  img.height = h;
  img.format = PNG_FORMAT_GRAY;
  png_alloc_size_t size = 0;
  EXPECT_TRUE(png_image_write_to_memory(&img, nullptr, &size, 0, gray.data(), 0, nullptr));
  std::string out(size, '\0');
  EXPECT_TRUE(png_image_write_to_memory(&img, out.data(), &size, 0, gray.data(), 0, nullptr));
  out.resize(size);
  return out;
}

std::string EncodeJpeg(int w, int h, const std::vector<uint8_t>& rgb) {
  tjhandle tj = tjInitCompress();
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  EXPECT_EQ(tjCompress2(tj, rgb.data(), w, 0, h, TJPF_RGB, &buf, &size, TJSAMP_444, 95, 0), 0);
  std::string out(reinterpret_cast<const char*>(buf), size);
  tjFree(buf);
  tjDestroy(tj);
  return out;
}

TEST(Image, PngAndJpegDecodeResizeAndNormalize) {
  auto m = ParseManifest(kManifest, "d");  // 1 x 4 x 4, mean 0.5, std 0.25
  ASSERT_TRUE(m.ok());
  std::vector<float> out(16);
  const std::string png = EncodePng(8, 8, std::vector<uint8_t>(64, 204));
  int w = 0, h = 0;
  ASSERT_TRUE(ImageDimensions(reinterpret_cast<const uint8_t*>(png.data()), png.size(), &w, &h).ok());
  EXPECT_EQ(w, 8);
  EXPECT_EQ(h, 8);
  ASSERT_TRUE(DecodeImageToInput(reinterpret_cast<const uint8_t*>(png.data()), png.size(), *m, out.data()).ok());
  for (float v : out) EXPECT_NEAR(v, (204 / 255.f - 0.5f) / 0.25f, 1e-5);
  // An RGB JPEG for a grayscale model: converted to gray by the decoder.
  const std::string jpg = EncodeJpeg(12, 6, std::vector<uint8_t>(12 * 6 * 3, 51));
  ASSERT_TRUE(ImageDimensions(reinterpret_cast<const uint8_t*>(jpg.data()), jpg.size(), &w, &h).ok());
  EXPECT_EQ(w, 12);
  EXPECT_EQ(h, 6);
  ASSERT_TRUE(DecodeImageToInput(reinterpret_cast<const uint8_t*>(jpg.data()), jpg.size(), *m, out.data()).ok());
  for (float v : out) EXPECT_NEAR(v, (51 / 255.f - 0.5f) / 0.25f, 0.05);
  // Truncated files are errors, not partial images.
  for (const std::string& full : {png, jpg}) {
    const std::string cut = full.substr(0, full.size() - 24);  // into the image data
    auto st = DecodeImageToInput(reinterpret_cast<const uint8_t*>(cut.data()), cut.size(), *m, out.data());
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  }
  // Sides over the limit are refused from the header alone.
  const std::string wide = EncodePng(9000, 1, std::vector<uint8_t>(9000, 0));
  auto st = ImageDimensions(reinterpret_cast<const uint8_t*>(wide.data()), wide.size(), &w, &h);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("exceeds the limit"), std::string::npos) << st;
}

TEST(Image, NormalizePixels) {
  auto m = ParseManifest(kManifest, "d");
  ASSERT_TRUE(m.ok());
  std::vector<uint8_t> px(16, 255);
  std::vector<float> out(16);
  NormalizePixels(px.data(), *m, out.data());
  EXPECT_FLOAT_EQ(out[0], 2.0f);  // (1 - 0.5) / 0.25
}

TEST(Logging, GrpcLinesGoThroughOurLoggerAndLevelsAreChecked) {
  ASSERT_TRUE(SetupLogging("info", "common_test"));
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
  spdlog::default_logger()->sinks().push_back(sink);
  gpr_log(GPR_ERROR, "hello from grpc %d", 42);
  const auto lines = sink->last_formatted();
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find("grpc: hello from grpc 42"), std::string::npos) << lines.back();
  EXPECT_NE(lines.back().find("error"), std::string::npos) << lines.back();
  spdlog::default_logger()->sinks().pop_back();
  EXPECT_FALSE(SetupLogging("bogus", "common_test"));  // and falls back to info
  EXPECT_EQ(spdlog::get_level(), spdlog::level::info);
  EXPECT_TRUE(IsLogLevel("warn"));
  EXPECT_FALSE(IsLogLevel("verbose"));
}

TEST(Logging, RateLimiterCountsWhatItRefuses) {
  LogRateLimiter limiter(3);
  int64_t suppressed = -1;
  int allowed = 0;
  for (int i = 0; i < 10; ++i) allowed += limiter.Allow(&suppressed);
  EXPECT_EQ(allowed, 3);  // the burst, then nothing within the same instant
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // > 1/3 s: one more token
  EXPECT_TRUE(limiter.Allow(&suppressed));
  EXPECT_EQ(suppressed, 7);
}

TEST(ThreadPool, QueueIsBoundedAndThrowingTasksDoNotKillThreads) {
  ThreadPool pool(1, 2, "test");
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  std::atomic<int> ran{0};
  ASSERT_TRUE(pool.TryPost([&] {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return release; });
    ++ran;
  }));
  // The first task may still be waiting in the queue: allow for it.
  int accepted = 0;
  for (int i = 0; i < 5; ++i) accepted += pool.TryPost([&] { throw std::runtime_error("boom"); });
  EXPECT_GE(accepted, 1);
  EXPECT_LE(accepted, 2);
  EXPECT_LE(pool.QueueDepth(), 2u);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  // The thread survives the throwing tasks and runs the next one.
  for (int i = 0; i < 200 && !pool.TryPost([&] { ++ran; }); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  for (int i = 0; i < 200 && ran.load() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(ran.load(), 2);
}

TEST(FeaturePayload, NamesParseAndRoundTrip) {
  for (const char* name : kPlacementNames) {
    Placement p;
    ASSERT_TRUE(ParsePlacement(name, &p)) << name;
    EXPECT_STREQ(PlacementName(p), name);
  }
  for (const char* name : kFeatureWireNames) {
    FeatureWire w;
    ASSERT_TRUE(ParseFeatureWire(name, &w)) << name;
    EXPECT_STREQ(FeatureWireName(w), name);
  }
  Placement p;
  FeatureWire w;
  EXPECT_FALSE(ParsePlacement("cloud", &p));
  EXPECT_FALSE(ParseFeatureWire("SRNS", &w));
}

TEST(FeaturePayload, TokensRoundTripAsLittleEndianInt32AndAreRangeChecked) {
  const std::vector<int64_t> ids = {0, 1, 72, 300, 65536};
  std::vector<uint8_t> bytes;
  EncodeTokensInt32(ids.data(), ids.size(), &bytes);
  ASSERT_EQ(bytes.size(), ids.size() * 4);
  EXPECT_EQ(bytes[8], 72);  // little-endian: id 2's low byte first
  EXPECT_EQ(bytes[12], 300 & 0xff);
  EXPECT_EQ(bytes[13], 300 >> 8);
  EXPECT_EQ(bytes[18], 1);  // 65536 = 0x00010000
  std::vector<int64_t> back(ids.size(), -7);
  ASSERT_TRUE(DecodeTokensInt32(bytes.data(), bytes.size(), ids.size(), 65537, back.data()).ok());
  EXPECT_EQ(back, ids);
  // An id >= vocab: the message names the position and the value.
  absl::Status st = DecodeTokensInt32(bytes.data(), bytes.size(), ids.size(), 300, back.data());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("id 300 at position 3"), std::string::npos) << st;
  // A negative id (0xffffffff).
  std::vector<uint8_t> neg(4, 0xff);
  st = DecodeTokensInt32(neg.data(), neg.size(), 1, 10, back.data());
  EXPECT_NE(st.message().find("id -1 at position 0"), std::string::npos) << st;
  // Sizes other than 4 per id.
  for (size_t size : {size_t{0}, bytes.size() - 1, bytes.size() + 4}) {
    EXPECT_EQ(DecodeTokensInt32(bytes.data(), size, ids.size(), 65537, back.data()).code(),
              absl::StatusCode::kInvalidArgument)
        << size;
  }
}

TEST(FeaturePayload, ZstdAiqErrorsAndConstantFeatures) {
  std::vector<float> v(1000, 2.5f);
  std::vector<uint8_t> z;
  codec::QuantParams qp;
  ASSERT_TRUE(EncodeZstdAiq(v.data(), v.size(), 4, &z, &qp).ok());
  EXPECT_TRUE(qp.constant);
  EXPECT_TRUE(z.empty()) << "a constant feature carries no symbols";
  std::vector<float> out(v.size(), 0.f);
  ASSERT_TRUE(DecodeZstdAiq(z.data(), z.size(), out.size(), 4, qp, out.data()).ok());
  EXPECT_EQ(out, v);
  EXPECT_EQ(EncodeZstdAiq(v.data(), v.size(), 0, &z, &qp).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(EncodeZstdAiq(v.data(), v.size(), 9, &z, &qp).code(), absl::StatusCode::kInvalidArgument);
  v[7] = std::nanf("");
  EXPECT_EQ(EncodeZstdAiq(v.data(), v.size(), 4, &z, &qp).code(), absl::StatusCode::kInvalidArgument);
  // Garbage, and parameters no encoder writes.
  const uint8_t junk[] = {1, 2, 3, 4, 5, 6, 7, 8};
  qp = {};
  qp.scale = 0.1f;
  EXPECT_EQ(DecodeZstdAiq(junk, sizeof junk, 10, 4, qp, out.data()).code(), absl::StatusCode::kDataLoss);
  qp.scale = -1.f;
  EXPECT_EQ(DecodeZstdAiq(junk, sizeof junk, 10, 4, qp, out.data()).code(), absl::StatusCode::kInvalidArgument);
  qp.constant = true;
  qp.constant_value = 1.f;
  EXPECT_EQ(DecodeZstdAiq(junk, sizeof junk, 10, 4, qp, out.data()).code(), absl::StatusCode::kDataLoss);
}

TEST(TopK, SoftmaxOrderAndTies) {
  std::vector<float> logits = {1, 3, 3, 0, /*row 2*/ 0, 0, 0, 5};
  auto t = SoftmaxTopK(logits, 2, 4, 2, {"a", "b", "c", "d"});
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[0].index, 1);  // tie with 2: lower index first
  EXPECT_EQ(t[1].index, 2);
  EXPECT_EQ(t[2].index, 3);
  EXPECT_EQ(t[2].label, "d");
  EXPECT_NEAR(t[0].score, t[1].score, 1e-6);
}

TEST(FeatureCodec, ParseCodecDevice) {
  CodecDevice d = CodecDevice::kCpu;
  for (CodecDevice want : {CodecDevice::kAuto, CodecDevice::kCpu, CodecDevice::kGpu}) {
    ASSERT_TRUE(ParseCodecDevice(CodecDeviceName(want), &d));
    EXPECT_EQ(d, want);
  }
  EXPECT_FALSE(ParseCodecDevice("cuda", &d));
  EXPECT_FALSE(ParseCodecDevice("", &d));
}

// A post-ReLU-like tensor: ~half zeros, the rest exponential.
std::vector<float> FeatureLike(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::exponential_distribution<float> mag(2.0f);
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = (rng() & 1) ? mag(rng) : 0.0f;
  return v;
}

// Every device choice must give the CPU codec's bytes and values (the GPU codec is byte-identical).
void ExpectSameAsCpuCodec(FeatureCodec* fc, codec::Mode mode) {
  const std::vector<int64_t> shape = {2, 8, 12, 12};
  const std::vector<float> x = FeatureLike(2 * 8 * 12 * 12, 7);
  const codec::TensorView view{x.data(), codec::DType::kFloat32, shape};
  codec::EncodeOptions eo;
  eo.q = 4;
  eo.mode = mode;
  std::vector<uint8_t> got, want;
  CodecPath path;
  ASSERT_TRUE(fc->Encode(view, eo, &got, &path).ok());
  EXPECT_EQ(path, fc->gpu() && mode == codec::Mode::kDense ? CodecPath::kGpu : CodecPath::kCpu);
  codec::Encoder cpu;
  ASSERT_TRUE(cpu.Encode(view, eo, &want).ok());
  EXPECT_EQ(got, want) << codec::ModeName(mode);

  codec::DecodedTensor a;
  ASSERT_TRUE(fc->Decode(got.data(), got.size(), &a, &path).ok());
  auto b = codec::Decode(want.data(), want.size());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a.shape, shape);
  EXPECT_EQ(a.values, b->values);
  if (!fc->gpu()) EXPECT_EQ(path, CodecPath::kCpu);
}

TEST(FeatureCodec, CpuDeviceMatchesCodec) {
  FeatureCodecOptions o;
  o.device = CodecDevice::kCpu;
  auto fc = FeatureCodec::Create(o);
  ASSERT_TRUE(fc.ok()) << fc.status();
  EXPECT_FALSE((*fc)->gpu());
  for (codec::Mode m : {codec::Mode::kAuto, codec::Mode::kDense, codec::Mode::kContext}) {
    ExpectSameAsCpuCodec(fc->get(), m);
  }
}

TEST(FeatureCodec, AutoDeviceFallsBackOrUsesGpu) {
  auto fc = FeatureCodec::Create(FeatureCodecOptions{});
  ASSERT_TRUE(fc.ok()) << fc.status();
  // Without a GPU the description says why; with one, the dense path runs there.
  if (!(*fc)->gpu()) EXPECT_NE((*fc)->description().find("no usable GPU"), std::string::npos);
  for (codec::Mode m : {codec::Mode::kAuto, codec::Mode::kDense}) ExpectSameAsCpuCodec(fc->get(), m);
}

TEST(FeatureCodec, GpuDeviceRefusesToStartWithoutGpu) {
  auto probe = FeatureCodec::Create(FeatureCodecOptions{});
  ASSERT_TRUE(probe.ok());
  if ((*probe)->gpu()) GTEST_SKIP() << "a GPU is usable here";
  FeatureCodecOptions o;
  o.device = CodecDevice::kGpu;
  auto fc = FeatureCodec::Create(o);
  ASSERT_FALSE(fc.ok());
  EXPECT_EQ(fc.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(fc.status().message().find("no usable GPU"), std::string::npos);
}

TEST(FeatureCodec, DecodeErrorsKeepTheirCodes) {
  auto fc = FeatureCodec::Create(FeatureCodecOptions{});
  ASSERT_TRUE(fc.ok());
  codec::DecodedTensor out;
  const uint8_t junk[32] = {'S', 'R', 'N', 'S', 1, 0, 1, 4, 4, 1};  // dense layout, bad checksum
  codec::Status s = (*fc)->Decode(junk, sizeof(junk), &out);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.code(), codec::ErrorCode::kInternal);
  EXPECT_NE(s.code(), codec::ErrorCode::kUnavailable);
  s = (*fc)->Decode(junk, 3, &out);
  EXPECT_EQ(s.code(), codec::ErrorCode::kTruncated);
}

}  // namespace
}  // namespace splitrans

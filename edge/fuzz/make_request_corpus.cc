// Writes the seed corpus of the edge's request fuzzer: serialized ModelInferRequests of every
// input kind (UINT8, FP32 normalized and unit-scaled, BYTES PNG/JPEG, INT64/INT32 token ids, contents and raw), batches,
// parameters and output selections, plus a few invalid ones. See edge/fuzz/README.md.
//   usage: make_request_corpus OUT_DIR
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/kserve_protocol.h"
#include "proto/grpc_service.pb.h"

#include <png.h>
#include <turbojpeg.h>

namespace {
namespace inf = ::inference;
namespace ks = ::splitrans::kserve;

std::vector<uint8_t> Pixels(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> p(n);
  for (auto& x : p) x = static_cast<uint8_t>(rng() % 256);
  return p;
}

std::string Png(int w, int h, uint32_t seed) {
  const auto px = Pixels(w * h, seed);
  png_image img;
  std::memset(&img, 0, sizeof(img));
  img.version = PNG_IMAGE_VERSION;
  img.width = w;
  img.height = h;
  img.format = PNG_FORMAT_GRAY;
  png_alloc_size_t size = 0;
  png_image_write_to_memory(&img, nullptr, &size, 0, px.data(), 0, nullptr);
  std::string out(size, '\0');
  png_image_write_to_memory(&img, out.data(), &size, 0, px.data(), 0, nullptr);
  out.resize(size);
  return out;
}

std::string Jpeg(int w, int h, uint32_t seed) {
  const auto px = Pixels(w * h * 3, seed);
  tjhandle tj = tjInitCompress();
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  tjCompress2(tj, px.data(), w, 0, h, TJPF_RGB, &buf, &size, TJSAMP_420, 90, 0);
  std::string out(reinterpret_cast<const char*>(buf), size);
  tjFree(buf);
  tjDestroy(tj);
  return out;
}

inf::ModelInferRequest Base(const char* datatype, std::vector<int64_t> shape) {
  inf::ModelInferRequest r;
  r.set_model_name("fmnist_resnet");
  r.set_id("seed");
  auto* in = r.add_inputs();
  in->set_name("input");
  in->set_datatype(datatype);
  for (int64_t d : shape) in->add_shape(d);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  int count = 0;
  auto write = [&](const std::string& name, const inf::ModelInferRequest& r) {
    std::ofstream f(dir + "/" + name + ".pb", std::ios::binary);
    f << r.SerializeAsString();
    ++count;
  };
  {
    auto r = Base("UINT8", {1, 1, 28, 28});
    const auto px = Pixels(784, 1);
    r.add_raw_input_contents(std::string(px.begin(), px.end()));
    write("uint8_raw", r);
    (*r.mutable_parameters())[ks::kParamQ].set_int64_param(8);
    (*r.mutable_parameters())[ks::kParamCodecMode].set_string_param("dense");
    (*r.mutable_parameters())[ks::kParamSplit].set_string_param("stage3");
    (*r.mutable_parameters())[ks::kParamTopK].set_int64_param(3);
    r.add_outputs()->set_name(ks::kOutputTopk);
    write("uint8_raw_params", r);
  }
  {
    auto r = Base("UINT8", {1, 28, 28});
    for (uint8_t p : Pixels(784, 2)) r.mutable_inputs(0)->mutable_contents()->add_uint_contents(p);
    write("uint8_contents", r);
  }
  {
    auto r = Base("FP32", {2, 1, 28, 28});
    for (uint8_t p : Pixels(2 * 784, 3)) r.mutable_inputs(0)->mutable_contents()->add_fp32_contents((p / 255.f - 0.286f) / 0.353f);
    write("fp32_contents_batch2", r);
  }
  {
    auto r = Base("FP32", {1, 28, 28});
    std::vector<float> v;
    for (uint8_t p : Pixels(784, 4)) v.push_back(p / 255.f);
    r.add_raw_input_contents(std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4));
    (*r.mutable_parameters())[ks::kParamInputScaling].set_string_param(ks::kScalingUnit);
    write("fp32_raw_unit", r);
  }
  {
    auto r = Base("BYTES", {2});
    r.mutable_inputs(0)->mutable_contents()->add_bytes_contents(Png(28, 28, 5));
    r.mutable_inputs(0)->mutable_contents()->add_bytes_contents(Jpeg(40, 30, 6));
    write("bytes_png_jpeg", r);
  }
  {
    auto r = Base("BYTES", {1, 1});
    std::string raw;
    ks::AppendRawBytes(Png(64, 48, 7), &raw);
    r.add_raw_input_contents(raw);
    r.add_outputs()->set_name(ks::kOutputLogits);
    write("bytes_raw_png", r);
  }
  {
    // Token model (models/kjv_charlm, T = 64): INT64 raw and INT32 contents.
    auto r = Base("INT64", {2, 64});
    r.set_model_name("kjv_charlm");
    std::string raw;
    for (int i = 0; i < 128; ++i) {
      for (int b = 0; b < 8; ++b) raw.push_back(b == 0 ? static_cast<char>(i % 73) : '\0');
    }
    r.add_raw_input_contents(raw);
    write("tokens_int64_raw", r);
    auto c = Base("INT32", {64});
    c.set_model_name("kjv_charlm");
    for (int i = 0; i < 64; ++i) c.mutable_inputs(0)->mutable_contents()->add_int_contents(i % 73);
    write("tokens_int32_contents", c);
  }
  {
    auto r = Base("UINT8", {1, 1, 28, 28});
    r.add_raw_input_contents(std::string(100, '\0'));
    (*r.mutable_parameters())["bogus"].set_int64_param(1);
    write("invalid_unknown_param", r);
  }
  std::printf("wrote %d seeds to %s\n", count, dir.c_str());
  return 0;
}

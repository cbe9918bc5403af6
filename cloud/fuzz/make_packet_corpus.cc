// Writes the seed corpus of the cloud's packet fuzzer: serialized FeaturePackets with valid
// features for every split of the bundled model in every layout (Q 2, 4, 8), batches, a [C,H,W]
// feature, and a few that fail (wrong shape, unknown split, damaged bits). See edge/fuzz/README.md.
//   usage: make_packet_corpus OUT_DIR
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "proto/split_inference.pb.h"

int main(int argc, char** argv) {
  namespace v1 = ::splitrans::v1;
  namespace codec = ::splitrans::codec;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  int count = 0;
  std::mt19937 rng(11);
  auto feature = [&](const std::vector<int64_t>& shape, codec::Mode mode, int q) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v(n);
    for (auto& x : v) x = rng() % 2 ? 0.f : (rng() % 1000) / 200.f;  // post-ReLU-like
    auto r = codec::Encode({v.data(), codec::DType::kFloat32, shape}, {q, mode});
    return r.ok() ? std::string(r->begin(), r->end()) : std::string();
  };
  auto write = [&](const std::string& name, const std::string& split, const std::string& bytes) {
    v1::FeaturePacket p;
    p.set_request_id(1);
    p.set_model_name("fmnist_resnet");
    p.set_split(split);
    p.set_codec_bytes(bytes);
    p.set_timeout_us(1000000);
    std::ofstream f(dir + "/" + name + ".pb", std::ios::binary);
    f << p.SerializeAsString();
    ++count;
  };
  const struct {
    const char* split;
    std::vector<int64_t> shape;
  } splits[] = {{"stage1", {1, 16, 28, 28}}, {"stage2", {1, 32, 14, 14}}, {"stage3", {1, 64, 7, 7}}};
  const struct {
    const char* name;
    codec::Mode mode;
  } modes[] = {{"dense", codec::Mode::kDense},
               {"sparse", codec::Mode::kSparse},
               {"paper", codec::Mode::kPaper},
               {"context", codec::Mode::kContext}};
  for (const auto& s : splits) {
    for (const auto& m : modes) {
      for (int q : {2, 4, 8}) {
        write(std::string(s.split) + "_" + m.name + "_q" + std::to_string(q), s.split, feature(s.shape, m.mode, q));
      }
    }
  }
  write("stage3_batch4", "stage3", feature({4, 64, 7, 7}, codec::Mode::kAuto, 4));
  write("stage3_chw", "stage3", feature({64, 7, 7}, codec::Mode::kAuto, 4));
  std::vector<float> constant(64 * 7 * 7, 2.5f);
  auto c = codec::Encode({constant.data(), codec::DType::kFloat32, {1, 64, 7, 7}}, {4});
  write("stage3_constant", "stage3", std::string(c->begin(), c->end()));
  write("invalid_wrong_shape", "stage2", feature({1, 64, 7, 7}, codec::Mode::kAuto, 4));
  write("invalid_unknown_split", "stage9", feature({1, 64, 7, 7}, codec::Mode::kAuto, 4));
  std::string damaged = feature({1, 32, 14, 14}, codec::Mode::kDense, 4);
  damaged[damaged.size() / 2] ^= 0x11;
  write("invalid_damaged", "stage2", damaged);
  std::printf("wrote %d seeds to %s\n", count, dir.c_str());
  return 0;
}

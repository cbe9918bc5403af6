// Writes a seed corpus for decode_fuzzer: small valid bitstreams of every layout and Q (plus
// constant, empty, float16 and signed tensors) into a directory.
//
//   fuzz_make_corpus <output-dir>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "codec/codec.h"

namespace codec = splitrans::codec;

namespace {

bool WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  return std::fclose(f) == 0 && ok;
}

// ReLU-like (zero-heavy, non-negative) or signed data; deterministic.
std::vector<float> Data(size_t n, bool is_signed, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<float> x(n);
  for (auto& v : x) {
    if (is_signed) v = 3.f * (u(rng) - 0.4f);
    else v = u(rng) < 0.6f ? 0.f : -std::log(1.f - u(rng));
  }
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <output-dir>\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  int written = 0;
  auto emit = [&](const std::string& name, const codec::TensorView& t, int q, codec::Mode mode,
                  codec::NSearch search = codec::NSearch::kAlgorithm1) {
    codec::EncodeOptions opt;
    opt.q = q;
    opt.mode = mode;
    opt.search = search;
    auto enc = codec::Encode(t, opt);
    if (!enc.ok()) {
      std::fprintf(stderr, "%s: %s\n", name.c_str(), enc.status().ToString().c_str());
      std::exit(1);
    }
    if (!WriteFile(dir + "/" + name + ".srns", enc.value())) {
      std::fprintf(stderr, "cannot write %s/%s.srns\n", dir.c_str(), name.c_str());
      std::exit(1);
    }
    ++written;
  };
  // Every layout at every Q: 4 x 6 x 6 ReLU-like tensor (dense, sparse, paper, context).
  const std::vector<int64_t> shape = {4, 6, 6};
  const auto relu = Data(144, false, 1);
  const codec::Mode modes[] = {codec::Mode::kDense, codec::Mode::kSparse, codec::Mode::kPaper, codec::Mode::kContext};
  for (codec::Mode mode : modes) {
    for (int q = codec::kMinQ; q <= codec::kMaxQ; ++q) {
      emit(std::string(codec::ModeName(mode)) + "_q" + std::to_string(q),
           codec::TensorView{relu.data(), codec::DType::kFloat32, shape}, q, mode);
    }
  }
  // Signed data (zero point > 0: context signs), other ranks, exhaustive paper search.
  const auto sig = Data(120, true, 2);
  for (codec::Mode mode : modes) {
    emit(std::string(codec::ModeName(mode)) + "_signed_q5", codec::TensorView{sig.data(), codec::DType::kFloat32, {2, 3, 4, 5}},
         5, mode);
  }
  emit("paper_exhaustive_q8", codec::TensorView{relu.data(), codec::DType::kFloat32, shape}, 8, codec::Mode::kPaper,
       codec::NSearch::kExhaustive);
  emit("auto_rank1_q4", codec::TensorView{sig.data(), codec::DType::kFloat32, {120}}, 4, codec::Mode::kAuto);
  emit("dense_rank8_q3", codec::TensorView{relu.data(), codec::DType::kFloat32, {2, 2, 2, 2, 3, 1, 3, 1}}, 3,
       codec::Mode::kDense);
  // Longer streams (several lanes) for dense and context.
  const auto big = Data(1200, false, 3);
  emit("dense_1200_q8", codec::TensorView{big.data(), codec::DType::kFloat32, {12, 100}}, 8, codec::Mode::kDense);
  emit("context_1200_q6", codec::TensorView{big.data(), codec::DType::kFloat32, {3, 20, 20}}, 6, codec::Mode::kContext);
  // Constant, empty and single-element tensors (constant layout).
  const std::vector<float> constant(10, 2.5f);
  emit("constant", codec::TensorView{constant.data(), codec::DType::kFloat32, {2, 5}}, 4, codec::Mode::kAuto);
  emit("empty", codec::TensorView{nullptr, codec::DType::kFloat32, {0, 7}}, 4, codec::Mode::kAuto);
  emit("single", codec::TensorView{constant.data(), codec::DType::kFloat32, {1}}, 4, codec::Mode::kAuto);
  // float16.
  std::vector<uint16_t> half(64);
  for (size_t i = 0; i < half.size(); ++i) half[i] = codec::FloatToHalf(relu[i]);
  emit("float16_sparse_q4", codec::TensorView{half.data(), codec::DType::kFloat16, {8, 8}}, 4, codec::Mode::kSparse);
  emit("float16_context_q4", codec::TensorView{half.data(), codec::DType::kFloat16, {8, 8}}, 4,
       codec::Mode::kContext);
  std::printf("wrote %d files to %s\n", written, dir.c_str());
  return 0;
}

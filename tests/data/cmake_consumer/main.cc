// Encodes a small float tensor with the installed codec, decodes it and checks the round trip.
#include <cmath>
#include <cstdio>
#include <vector>

#include "codec/codec.h"

int main() {
  namespace sc = splitrans::codec;
  const std::vector<int64_t> shape = {2, 3, 16};
  std::vector<float> data(2 * 3 * 16);
  for (size_t i = 0; i < data.size(); ++i) data[i] = (i % 7 == 0) ? 0.0f : std::sin(0.1f * i) * 3.0f;

  const int q = 8;
  sc::Encoder enc;
  std::vector<uint8_t> bytes;
  sc::Status st = enc.Encode({data.data(), sc::DType::kFloat32, shape}, {q}, &bytes);
  if (!st.ok()) {
    std::fprintf(stderr, "encode: %s\n", st.ToString().c_str());
    return 1;
  }
  sc::Decoder dec;
  sc::DecodedTensor t;
  st = dec.Decode(bytes.data(), bytes.size(), &t);
  if (!st.ok()) {
    std::fprintf(stderr, "decode: %s\n", st.ToString().c_str());
    return 1;
  }
  if (t.shape != shape || t.values.size() != data.size()) {
    std::fprintf(stderr, "decode: wrong shape or size\n");
    return 1;
  }
  float lo = data[0], hi = data[0], max_err = 0;
  for (float v : data) lo = std::fmin(lo, v), hi = std::fmax(hi, v);
  for (size_t i = 0; i < data.size(); ++i) max_err = std::fmax(max_err, std::fabs(t.values[i] - data[i]));
  const float step = (hi - lo) / ((1 << q) - 1);  // asymmetric quantization: error <= step / 2
  if (!(max_err <= 0.5f * step + 1e-6f)) {
    std::fprintf(stderr, "round trip: max error %g > %g\n", max_err, 0.5f * step);
    return 1;
  }
  std::printf("round trip ok: %zu floats -> %zu bytes (q=%d, layout %s), max error %g\n", data.size(),
              bytes.size(), q, sc::LayoutName(sc::Inspect(bytes.data(), bytes.size())->layout), max_err);
  return 0;
}

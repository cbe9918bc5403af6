// libFuzzer target for the bitstream decoder: codec::Decode, Decoder::DecodeInto and
// codec::Inspect on arbitrary bytes, with small limits. Random bytes rarely pass the CRC32C,
// so every input of at least 28 bytes is also tried with body_size and the checksum patched to
// match its length: that lets the fuzzer explore shape and layout-body parsing.
//
// Build and run: see codec/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "codec/codec.h"
#include "codec/crc32c.h"
#include "codec/format.h"

namespace {

using splitrans::codec::DecodeLimits;
using splitrans::codec::DecodedTensor;
using splitrans::codec::Decoder;

void Check(bool cond) {
  if (!cond) std::abort();  // an invariant failed: report as a crash
}

void DecodeAll(const uint8_t* data, size_t size) {
  DecodeLimits limits;
  limits.max_elements = uint64_t{1} << 16;
  Decoder dec(limits);
  DecodedTensor out;
  const splitrans::codec::Status s = dec.Decode(data, size, &out);
  auto info = splitrans::codec::Inspect(data, size, limits);
  // Decode and Inspect share validation: they must agree on the outcome.
  Check(s.code() == info.status().code());
  if (!s.ok()) return;
  uint64_t t = 1;
  for (int64_t d : out.shape) t *= static_cast<uint64_t>(d);
  Check(out.values.size() == t);
  Check(info->shape == out.shape);
  Check(info->total_bytes == size);
  // DecodeInto into an exactly-sized buffer gives the same values (NaN-free: bitwise compare).
  std::vector<float> buf(t);
  std::vector<int64_t> shape;
  Check(dec.DecodeInto(data, size, buf.data(), buf.size(), &shape).ok());
  Check(shape == out.shape);
  Check(t == 0 || std::memcmp(buf.data(), out.values.data(), t * sizeof(float)) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Exactly-sized heap copies so that ASan sees any read past the end.
  std::vector<uint8_t> copy(data, data + size);
  DecodeAll(copy.empty() ? nullptr : copy.data(), copy.size());
  constexpr size_t kMin = splitrans::codec::kFixedHeaderBytes + splitrans::codec::kChecksumBytes;
  if (size >= kMin) {
    std::vector<uint8_t> fixed(data, data + size);
    const uint32_t body = static_cast<uint32_t>(size - kMin);
    std::memcpy(fixed.data() + offsetof(splitrans::codec::FixedHeader, body_size), &body, 4);
    const uint32_t crc = splitrans::codec::Crc32c(fixed.data(), size - 4);
    std::memcpy(fixed.data() + size - 4, &crc, 4);
    DecodeAll(fixed.data(), fixed.size());
  }
  return 0;
}

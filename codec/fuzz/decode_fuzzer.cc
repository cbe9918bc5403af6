// libFuzzer target for the bitstream decoder: codec::Decode, Decoder::DecodeInto and
// codec::Inspect on arbitrary bytes, with small limits, then Decode and PeekShape with the
// cloud's limits. Random bytes rarely pass the CRC32C, so every input of at least 28 bytes is
// also tried with body_size and the checksum patched to match its length: that lets the fuzzer
// explore shape and layout-body parsing.
//
// Build and run: see codec/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "codec/codec.h"
#include "codec/crc32c.h"
#include "codec/wire.h"

namespace {

using splitrans::codec::DecodeLimits;
using splitrans::codec::DecodedTensor;
using splitrans::codec::Decoder;
using splitrans::codec::Status;

// The cloud's limit on decoded feature elements (common/limits.h kMaxFeatureElements).
constexpr uint64_t kProductionMaxElements = uint64_t{1} << 26;

void Check(bool cond) {
  if (!cond) std::abort();  // an invariant failed: report as a crash
}

void DecodeAll(const uint8_t* data, size_t size) {
  DecodeLimits limits;
  limits.max_elements = uint64_t{1} << 16;
  Decoder dec(limits);
  DecodedTensor out;
  const Status s = dec.Decode(data, size, &out);
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

// With production limits (large tensors are accepted: only Decode, whose heap is the output plus
// a constant, and PeekShape), once without and once with a rank-4 max_shape. accept_shape must
// be asked once per call that gets past the checksum, and agree with PeekShape.
void DecodeWithProductionLimits(const uint8_t* data, size_t size) {
  for (bool shaped : {false, true}) {
    int calls = 0;
    DecodeLimits limits;
    limits.max_elements = kProductionMaxElements;
    if (shaped) limits.max_shape = {256, 1024, 64, 64};
    limits.accept_shape = [&calls](const std::vector<int64_t>&) {
      ++calls;
      return Status::Ok();
    };
    std::vector<int64_t> peeked;
    const Status peek = splitrans::codec::PeekShape(data, size, &peeked, limits);
    Check(calls == (peek.ok() ? 1 : 0));
    calls = 0;
    Decoder dec(limits);
    DecodedTensor out;
    const Status s = dec.Decode(data, size, &out);
    Check(calls == (peek.ok() ? 1 : 0));
    if (!peek.ok()) {
      Check(s.code() == peek.code());
      continue;
    }
    if (!s.ok()) continue;
    Check(out.shape == peeked);
    uint64_t t = 1;
    for (int64_t d : out.shape) t *= static_cast<uint64_t>(d);
    Check(t <= kProductionMaxElements && out.values.size() == t);
    if (shaped) Check(out.shape.size() == 4);
  }
}

void Run(const uint8_t* data, size_t size) {
  DecodeAll(data, size);
  DecodeWithProductionLimits(data, size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Exactly-sized heap copies so that ASan sees any read past the end.
  std::vector<uint8_t> copy(data, data + size);
  Run(copy.empty() ? nullptr : copy.data(), copy.size());
  constexpr size_t kMin = splitrans::codec::kFixedHeaderBytes + splitrans::codec::kChecksumBytes;
  if (size >= kMin) {
    std::vector<uint8_t> fixed(data, data + size);
    const uint32_t body = static_cast<uint32_t>(size - kMin);
    std::memcpy(fixed.data() + offsetof(splitrans::codec::FixedHeader, body_size), &body, 4);
    const uint32_t crc = splitrans::codec::Crc32c(fixed.data(), size - 4);
    std::memcpy(fixed.data() + size - 4, &crc, 4);
    Run(fixed.data(), fixed.size());
  }
  return 0;
}

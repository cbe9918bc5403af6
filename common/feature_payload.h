// The baselines a feature (or a model input) can travel as instead of an .srns bitstream, for
// comparing against the codec through the same edge, link and cloud (proto Payload):
//   raw   the float32 values, little-endian, C order;
//   zstd  AIQ at q bits (codec/quantize.h, the codec's own quantizer), one byte per symbol, then
//         one zstd frame at level 3 (the "zstd -3 of the quantized bytes" of codec_bench).
// Decoders take the element count the receiver expects and allocate nothing beyond it: a
// payload that does not decode to exactly that many values is refused. No Torch, no gRPC.
// Thread-safe (no shared state).
#pragma once

#include <absl/status/status.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "codec/quantize.h"

namespace splitrans {

// Where a request's model runs (KServe parameter "placement"): split between edge and cloud
// (the default), all in the cloud (full offload: the input crosses the link), or all on the edge.
enum class Placement { kSplit, kOffload, kLocal };
inline constexpr const char* kPlacementNames[] = {"split", "offload", "local"};
bool ParsePlacement(const std::string& s, Placement* placement);
const char* PlacementName(Placement placement);

// How a split request's feature crosses the link (KServe parameter "feature_codec").
enum class FeatureWire { kSrns, kRaw, kZstd };
inline constexpr const char* kFeatureWireNames[] = {"srns", "raw", "zstd"};
// "srns" | "raw" | "zstd"; false for anything else.
bool ParseFeatureWire(const std::string& s, FeatureWire* wire);
const char* FeatureWireName(FeatureWire wire);

// What a packet's bytes hold (proto Payload, same order): a split's feature as an .srns bitstream,
// raw float32 or zstd'd AIQ symbols; or, for full offload, the model input as encoded images or
// float32 or uint8 pixels, as the request brought it, or a token model's ids.
enum class PayloadKind { kSrns, kRawF32, kZstdAiq, kInputImages, kInputF32, kInputU8, kInputTokens };
// True for the full-offload payloads (the unsplit model runs on them).
inline bool IsFullOffload(PayloadKind k) {
  return k == PayloadKind::kInputImages || k == PayloadKind::kInputF32 || k == PayloadKind::kInputU8 ||
         k == PayloadKind::kInputTokens;
}

// zstd's level for FeatureWire::kZstd.
inline constexpr int kFeatureZstdLevel = 3;

// out = x[0, n) as little-endian float32 bytes.
void EncodeRawFloat32(const float* x, size_t n, std::vector<uint8_t>* out);
// x[0, n) from exactly n * 4 bytes. INVALID_ARGUMENT for another size or a value that is not
// finite.
absl::Status DecodeRawFloat32(const uint8_t* data, size_t size, size_t n, float* out);

// out = ids[0, n) as little-endian int32 bytes (PAYLOAD_INPUT_TOKENS). REQUIRES: every id in [0, 2^31).
void EncodeTokensInt32(const int64_t* ids, size_t n, std::vector<uint8_t>* out);
// ids[0, n) from exactly n * 4 bytes of little-endian int32. INVALID_ARGUMENT for another size
// or an id outside [0, vocab) (the message names its position and value).
absl::Status DecodeTokensInt32(const uint8_t* data, size_t size, size_t n, int64_t vocab, int64_t* ids);

// Quantizes x[0, n) at q bits into *params (AIQ's range, or the clipped one: codec::Quantizer)
// and compresses the symbols into *out.
// INVALID_ARGUMENT for q outside codec::kMinQ..kMaxQ, NaN/Inf, or a range float32 cannot grid.
absl::Status EncodeZstdAiq(const float* x, size_t n, int q, std::vector<uint8_t>* out, codec::QuantParams* params,
                           codec::Quantizer quantizer = codec::Quantizer::kMinMax);
// Decompresses exactly n symbols (each < 2^q) and dequantizes them into out[0, n).
// INVALID_ARGUMENT for bad parameters, DATA_LOSS for a frame that is damaged or holds another
// number of bytes (its declared size is checked before anything is decompressed).
absl::Status DecodeZstdAiq(const uint8_t* data, size_t size, size_t n, int q, const codec::QuantParams& params,
                           float* out);

}  // namespace splitrans

#include "common/feature_payload.h"

#include <absl/strings/str_cat.h>
#include <zstd.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <vector>

#include "codec/codec.h"

namespace splitrans {

bool ParsePlacement(const std::string& s, Placement* placement) {
  for (size_t i = 0; i < std::size(kPlacementNames); ++i) {
    if (s == kPlacementNames[i]) {
      *placement = static_cast<Placement>(i);
      return true;
    }
  }
  return false;
}

const char* PlacementName(Placement placement) { return kPlacementNames[static_cast<int>(placement)]; }

bool ParseFeatureWire(const std::string& s, FeatureWire* wire) {
  for (size_t i = 0; i < std::size(kFeatureWireNames); ++i) {
    if (s == kFeatureWireNames[i]) {
      *wire = static_cast<FeatureWire>(i);
      return true;
    }
  }
  return false;
}

const char* FeatureWireName(FeatureWire wire) { return kFeatureWireNames[static_cast<int>(wire)]; }

void EncodeRawFloat32(const float* x, size_t n, std::vector<uint8_t>* out) {
  static_assert(sizeof(float) == 4, "float32");
  // Hosts are little-endian (x86-64, aarch64): the bytes are the values' own.
  const auto* bytes = reinterpret_cast<const uint8_t*>(x);
  out->assign(bytes, bytes + n * sizeof(float));
}

absl::Status DecodeRawFloat32(const uint8_t* data, size_t size, size_t n, float* out) {
  if (size != n * sizeof(float)) {
    return absl::InvalidArgumentError(
        absl::StrCat("raw float32 payload has ", size, " bytes, the shape needs ", n * sizeof(float)));
  }
  if (n > 0) std::memcpy(out, data, size);
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(out[i])) {
      return absl::InvalidArgumentError(absl::StrCat("raw float32 payload: element ", i, " is not finite"));
    }
  }
  return absl::OkStatus();
}

void EncodeTokensInt32(const int64_t* ids, size_t n, std::vector<uint8_t>* out) {
  out->resize(n * 4);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t v = static_cast<uint32_t>(ids[i]);
    for (int b = 0; b < 4; ++b) (*out)[i * 4 + b] = static_cast<uint8_t>(v >> (8 * b));
  }
}

absl::Status DecodeTokensInt32(const uint8_t* data, size_t size, size_t n, int64_t vocab, int64_t* ids) {
  if (size != n * 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("token payload has ", size, " bytes, the shape needs ", n * 4, " (", n, " int32 ids)"));
  }
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* p = data + i * 4;
    const int32_t v = static_cast<int32_t>(uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 |
                                           uint32_t{p[3]} << 24);
    if (v < 0 || v >= vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("token payload: id ", v, " at position ", i, " is outside the vocabulary [0, ", vocab, ")"));
    }
    ids[i] = v;
  }
  return absl::OkStatus();
}

namespace {

struct CCtxDeleter {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxDeleter {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

absl::Status CheckQ(int q) {
  if (q < codec::kMinQ || q > codec::kMaxQ) {
    return absl::InvalidArgumentError(absl::StrCat("q must be in [", codec::kMinQ, ", ", codec::kMaxQ, "], got ", q));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status EncodeZstdAiq(const float* x, size_t n, int q, std::vector<uint8_t>* out, codec::QuantParams* params,
                           codec::Quantizer quantizer) {
  if (auto st = CheckQ(q); !st.ok()) return st;
  const codec::Status qs = quantizer == codec::Quantizer::kClip ? codec::ComputeClippedQuantParams(x, n, q, params)
                                                                : codec::ComputeQuantParams(x, n, q, params);
  if (!qs.ok()) return absl::InvalidArgumentError(qs.message());
  out->clear();
  if (params->constant || n == 0) return absl::OkStatus();  // no symbols: the parameters say it all
  thread_local std::vector<uint8_t> symbols;
  thread_local std::unique_ptr<ZSTD_CCtx, CCtxDeleter> cctx(ZSTD_createCCtx());
  symbols.resize(n);
  codec::Quantize(x, n, *params, q, symbols.data());
  out->resize(ZSTD_compressBound(n));
  const size_t z = ZSTD_compressCCtx(cctx.get(), out->data(), out->size(), symbols.data(), n, kFeatureZstdLevel);
  if (ZSTD_isError(z)) return absl::InternalError(absl::StrCat("zstd: ", ZSTD_getErrorName(z)));
  out->resize(z);
  return absl::OkStatus();
}

absl::Status DecodeZstdAiq(const uint8_t* data, size_t size, size_t n, int q, const codec::QuantParams& params,
                           float* out) {
  if (auto st = CheckQ(q); !st.ok()) return st;
  if (params.constant || n == 0) {
    if (size != 0) return absl::DataLossError("zstd payload: a constant feature carries no symbols");
    if (!std::isfinite(params.constant_value)) {
      return absl::InvalidArgumentError("zstd payload: constant value is not finite");
    }
    for (size_t i = 0; i < n; ++i) out[i] = params.constant_value;
    return absl::OkStatus();
  }
  if (!std::isfinite(params.scale) || !(params.scale > 0)) {
    return absl::InvalidArgumentError("zstd payload: AIQ scale must be finite and positive");
  }
  const unsigned long long declared = ZSTD_getFrameContentSize(data, size);
  if (declared == ZSTD_CONTENTSIZE_ERROR) return absl::DataLossError("zstd payload: not a zstd frame");
  if (declared != n) {  // ZSTD_CONTENTSIZE_UNKNOWN too: our encoder always writes the size
    return absl::DataLossError(absl::StrCat("zstd payload declares ",
                                            declared == ZSTD_CONTENTSIZE_UNKNOWN ? std::string("no") : absl::StrCat(declared),
                                            " bytes of symbols, the shape needs ", n));
  }
  thread_local std::vector<uint8_t> symbols;
  thread_local std::unique_ptr<ZSTD_DCtx, DCtxDeleter> dctx(ZSTD_createDCtx());
  symbols.resize(n);
  const size_t got = ZSTD_decompressDCtx(dctx.get(), symbols.data(), n, data, size);
  if (ZSTD_isError(got)) return absl::DataLossError(absl::StrCat("zstd payload: ", ZSTD_getErrorName(got)));
  if (got != n) return absl::DataLossError(absl::StrCat("zstd payload holds ", got, " symbols, the shape needs ", n));
  const uint32_t max_symbol = (1u << q) - 1;
  for (size_t i = 0; i < n; ++i) {
    if (symbols[i] > max_symbol) {
      return absl::DataLossError(absl::StrCat("zstd payload: symbol ", int{symbols[i]}, " at ", i,
                                              " does not fit in q = ", q, " bits"));
    }
  }
  codec::Dequantize(symbols.data(), n, params, q, out);
  return absl::OkStatus();
}

}  // namespace splitrans

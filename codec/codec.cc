// Encoder / Decoder: header, layout selection and validation (FORMAT.md). The layouts live in
// rans_stream.cc (dense), csr.cc (sparse, paper) and context_model.cc (context).
#include "codec/codec.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "codec/context_model.h"
#include "codec/cpu_features.h"
#include "codec/crc32c.h"
#include "codec/header.h"
#include "codec/csr.h"
#include "codec/format.h"
#include "codec/quantize.h"
#include "codec/rans_stream.h"

namespace splitrans::codec {

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk: return "OK";
    case ErrorCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case ErrorCode::kTruncated: return "TRUNCATED";
    case ErrorCode::kBadMagic: return "BAD_MAGIC";
    case ErrorCode::kUnsupportedVersion: return "UNSUPPORTED_VERSION";
    case ErrorCode::kReservedBits: return "RESERVED_BITS";
    case ErrorCode::kBadHeaderField: return "BAD_HEADER_FIELD";
    case ErrorCode::kLimitExceeded: return "LIMIT_EXCEEDED";
    case ErrorCode::kChecksumMismatch: return "CHECKSUM_MISMATCH";
    case ErrorCode::kTrailingBytes: return "TRAILING_BYTES";
    case ErrorCode::kCorruptPayload: return "CORRUPT_PAYLOAD";
    case ErrorCode::kInternal: return "INTERNAL";
    case ErrorCode::kUnavailable: return "UNAVAILABLE";
  }
  return "UNKNOWN";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(ErrorCodeName(code_)) + ": " + message_;
}

const char* LayoutName(Layout layout) {
  switch (layout) {
    case Layout::kConstant: return "constant";
    case Layout::kDense: return "dense";
    case Layout::kSparse: return "sparse";
    case Layout::kPaper: return "paper";
    case Layout::kContext: return "context";
  }
  return "unknown";
}

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kAuto: return "auto";
    case Mode::kPaper: return "paper";
    case Mode::kDense: return "dense";
    case Mode::kSparse: return "sparse";
    case Mode::kContext: return "context";
  }
  return "unknown";
}

namespace {
constexpr Mode kModes[] = {Mode::kAuto, Mode::kPaper, Mode::kDense, Mode::kSparse, Mode::kContext};
}  // namespace

bool ParseMode(const std::string& s, Mode* mode) {
  for (Mode m : kModes) {
    if (s == ModeName(m)) {
      *mode = m;
      return true;
    }
  }
  return false;
}

std::vector<std::string> ModeNames() {
  std::vector<std::string> names;
  for (Mode m : kModes) names.push_back(ModeName(m));
  return names;
}

const char* QuantizerName(Quantizer quantizer) {
  switch (quantizer) {
    case Quantizer::kMinMax: return "aiq";
    case Quantizer::kClip: return "clip";
  }
  return "unknown";
}

bool ParseQuantizer(const std::string& s, Quantizer* quantizer) {
  for (Quantizer x : {Quantizer::kMinMax, Quantizer::kClip}) {
    if (s == QuantizerName(x)) {
      *quantizer = x;
      return true;
    }
  }
  return false;
}

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while (!(mant & 0x400));
      bits = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | mant << 13;
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t FloatToHalf(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0);  // Inf/NaN
  if (absx >= 0x477ff000u) return sign | 0x7c00;  // rounds to >= 65520: overflow to Inf
  if (absx < 0x38800000u) {  // subnormal half (or zero)
    if (absx < 0x33000000u) return sign;
    const uint32_t e = absx >> 23;
    const uint32_t m = (absx & 0x7fffff) | 0x800000;
    const uint32_t shift = 126 - e;  // 14..24
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;
    return sign | static_cast<uint16_t>(r);
  }
  uint32_t r = ((absx - 0x38000000u) >> 13);
  const uint32_t rem = absx & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) ++r;
  return sign | static_cast<uint16_t>(r);
}

// float16 -> float32 for a whole tensor: F16C when ActiveSimdLevel() allows (the conversion is exact, as
// HalfToFloat's; NaN payloads may differ, but the encoder rejects NaN either way).
#if defined(__x86_64__)
__attribute__((target("avx,f16c"))) static void HalvesToFloatsF16c(const uint16_t* h, uint64_t n, float* out) {
  uint64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i));
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(v));
  }
  for (; i < n; ++i) out[i] = HalfToFloat(h[i]);
}
#endif

void HalvesToFloats(const uint16_t* h, uint64_t n, float* out) {
#if defined(__x86_64__)
  if (ActiveSimdLevel() >= SimdLevel::kAvx2) return HalvesToFloatsF16c(h, n, out);  // the level includes F16C
#endif
  for (uint64_t i = 0; i < n; ++i) out[i] = HalfToFloat(h[i]);
}

// ---------------------------------------------------------------------------------------------
// Encoder

struct Encoder::Impl {
  std::vector<float> floats;     // float16 input converted
  std::vector<uint8_t> q;        // quantized symbols
  std::vector<uint8_t> candidate;
  Csr csr;
  std::vector<uint16_t> d;
  BoundsScratch bounds;  // auto's lower-bound scratch
  ContextScratch context;
};

Encoder::Encoder() : impl_(new Impl) {}
Encoder::~Encoder() = default;

namespace {

uint64_t ElementCount(const std::vector<int64_t>& shape) {
  uint64_t t = 1;
  for (int64_t d : shape) t *= static_cast<uint64_t>(d);
  return t;
}

Status ValidateTensor(const TensorView& tensor, uint64_t* t) {
  SPLITRANS_RETURN_IF_ERROR(SimdEnvironmentStatus());  // a bad SPLITRANS_SIMD is refused, not ignored
  if (tensor.shape.empty() || tensor.shape.size() > static_cast<size_t>(kMaxRank)) {
    return InvalidArgument("tensor rank must be 1.." + std::to_string(kMaxRank) + ", got " +
                           std::to_string(tensor.shape.size()));
  }
  if (tensor.dtype != DType::kFloat32 && tensor.dtype != DType::kFloat16) {
    return InvalidArgument("dtype must be float32 or float16");
  }
  uint64_t prod = 1;
  for (int64_t d : tensor.shape) {
    if (d < 0 || d > 0xFFFFFFFFll) return InvalidArgument("dimension " + std::to_string(d) + " out of range");
    if (d != 0 && prod > (uint64_t{1} << 32) / static_cast<uint64_t>(d)) {
      return InvalidArgument("tensor has more than 2^32 elements");
    }
    prod *= static_cast<uint64_t>(d);
  }
  if (prod >= (uint64_t{1} << 32)) return InvalidArgument("tensor has more than 2^32 - 1 elements");
  if (prod > 0 && tensor.data == nullptr) return InvalidArgument("tensor data is null");
  *t = prod;
  return Status::Ok();
}

void WriteHeader(const TensorView& tensor, int q, Layout layout, const QuantParams& qp, std::vector<uint8_t>* out) {
  FixedHeader h;
  std::memcpy(h.magic, kMagic, 4);
  h.version = kFormatVersion;
  h.flags = 0;
  h.dtype = static_cast<uint8_t>(tensor.dtype);
  h.rank = static_cast<uint8_t>(tensor.shape.size());
  h.q = static_cast<uint8_t>(q);
  h.layout = static_cast<uint8_t>(layout);
  h.reserved = 0;
  h.scale = qp.constant ? 0.f : qp.scale;
  h.zero_point = qp.constant ? 0 : qp.zero_point;
  h.body_size = 0;  // patched by Finish
  out->resize(sizeof(h));
  std::memcpy(out->data(), &h, sizeof(h));
  ByteWriter w(out);
  for (int64_t d : tensor.shape) w.U32(static_cast<uint32_t>(d));
}

void Finish(std::vector<uint8_t>* out) {
  const uint32_t body = static_cast<uint32_t>(out->size() - kFixedHeaderBytes);
  std::memcpy(out->data() + offsetof(FixedHeader, body_size), &body, 4);
  const uint32_t crc = Crc32c(out->data(), out->size());
  ByteWriter(out).U32(crc);
}

// Layout bodies (everything after the shape).
void DenseBody(const uint8_t* q, uint64_t t, int qbits, std::vector<uint8_t>* out) {
  uint32_t counts[256];
  Histogram256(q, t, counts, qbits);
  EncodeStream<uint8_t>(q, static_cast<uint32_t>(t), counts, 1u << qbits, StreamParams(), out);
}

void Histogram16(const std::vector<uint16_t>& s, uint32_t alphabet, std::vector<uint32_t>* counts) {
  counts->assign(alphabet, 0);
  for (uint16_t v : s) (*counts)[v]++;
}

void SparseBody(const Csr& csr, uint32_t n, uint32_t k, int qbits, std::vector<uint8_t>* out) {
  ByteWriter w(out);
  w.U32(n);
  w.U32(k);
  std::vector<uint32_t> counts;
  Histogram16(csr.v, 1u << qbits, &counts);
  EncodeStream<uint16_t>(csr.v.data(), static_cast<uint32_t>(csr.v.size()), counts.data(), 1u << qbits,
                         StreamParams(), out);
  Histogram16(csr.c, k, &counts);
  EncodeStream<uint16_t>(csr.c.data(), static_cast<uint32_t>(csr.c.size()), counts.data(), k, StreamParams(), out);
  Histogram16(csr.r, k + 1, &counts);
  EncodeStream<uint16_t>(csr.r.data(), static_cast<uint32_t>(csr.r.size()), counts.data(), k + 1, StreamParams(),
                         out);
}

void PaperBody(const Csr& csr, uint32_t n, uint32_t k, int qbits, std::vector<uint16_t>* d,
               std::vector<uint8_t>* out) {
  ByteWriter w(out);
  w.U32(n);
  w.U32(k);
  d->clear();
  d->insert(d->end(), csr.v.begin(), csr.v.end());
  d->insert(d->end(), csr.c.begin(), csr.c.end());
  d->insert(d->end(), csr.r.begin(), csr.r.end());
  const uint32_t alphabet = std::max<uint32_t>(1u << qbits, k + 1);
  std::vector<uint32_t> counts;
  Histogram16(*d, alphabet, &counts);
  EncodeStream<uint16_t>(d->data(), static_cast<uint32_t>(d->size()), counts.data(), alphabet, StreamParams(), out);
}

}  // namespace

Result<std::vector<NCandidate>> Encoder::PaperCandidates(const TensorView& tensor, int q) {
  EncodeOptions opts;
  opts.q = q;
  opts.mode = Mode::kPaper;
  std::vector<uint8_t> scratch;
  SPLITRANS_RETURN_IF_ERROR(Encode(tensor, opts, &scratch));  // validates and fills impl_->q
  Impl& m = *impl_;
  const uint64_t t = ElementCount(tensor.shape);
  std::vector<NCandidate> out;
  if (scratch.size() > kFixedHeaderBytes && scratch[9] == static_cast<uint8_t>(Layout::kConstant)) return out;
  std::vector<uint32_t> domain = PaperDomain(t, q);
  std::vector<double> costs;
  for (uint32_t n : domain) {
    NCandidate c;
    c.n = n;
    c.k = static_cast<uint32_t>(t / n);
    PaperCost(m.q.data(), t, n, &c.len_d, &c.entropy);
    c.cost = static_cast<double>(c.len_d) * c.entropy;
    costs.push_back(c.cost);
    BuildCsr(m.q.data(), n, c.k, &m.csr);
    m.candidate.clear();
    PaperBody(m.csr, n, c.k, q, &m.d, &m.candidate);
    c.coded_bytes = kFixedHeaderBytes + 4 * tensor.shape.size() + m.candidate.size() + kChecksumBytes;
    out.push_back(c);
  }
  if (!out.empty()) {
    size_t visited = 0;
    Algorithm1Choice(costs, &visited);
    for (size_t i = 0; i < visited; ++i) out[i].visited_by_algorithm1 = true;
  }
  return out;
}

Status Encoder::Encode(const TensorView& tensor, const EncodeOptions& opt, std::vector<uint8_t>* out) {
  Impl& m = *impl_;
  uint64_t t = 0;
  SPLITRANS_RETURN_IF_ERROR(ValidateTensor(tensor, &t));
  if (opt.q < kMinQ || opt.q > kMaxQ) {
    return InvalidArgument("q must be in " + std::to_string(kMinQ) + ".." + std::to_string(kMaxQ) + ", got " +
                           std::to_string(opt.q));
  }
  if (static_cast<uint8_t>(opt.mode) > static_cast<uint8_t>(Mode::kContext)) return InvalidArgument("unknown mode");
  if (opt.quantizer != Quantizer::kMinMax && opt.quantizer != Quantizer::kClip) {
    return InvalidArgument("unknown quantizer");
  }
  if (opt.quantizer == Quantizer::kClip && opt.mode == Mode::kPaper) {
    return InvalidArgument("paper mode quantizes as the paper does (AIQ over [min, max]): quantizer clip needs "
                           "another mode");
  }
  const float* x = static_cast<const float*>(tensor.data);
  if (tensor.dtype == DType::kFloat16) {
    m.floats.resize(t);
    const uint16_t* h = static_cast<const uint16_t*>(tensor.data);
    HalvesToFloats(h, t, m.floats.data());
    x = m.floats.data();
  }
  QuantParams qp;
  if (opt.quantizer == Quantizer::kClip) {
    SPLITRANS_RETURN_IF_ERROR(ComputeClippedQuantParams(x, t, opt.q, &qp));
  } else {
    SPLITRANS_RETURN_IF_ERROR(ComputeQuantParams(x, t, opt.q, &qp));
  }
  if (qp.constant) {
    WriteHeader(tensor, opt.q, Layout::kConstant, qp, out);
    ByteWriter(out).F32(qp.constant_value);
    Finish(out);
    return Status::Ok();
  }
  m.q.resize(t);
  Quantize(x, t, qp, opt.q, m.q.data());

  auto write_layout = [&](Layout layout, std::vector<uint8_t>* dst) {
    WriteHeader(tensor, opt.q, layout, qp, dst);
    switch (layout) {
      case Layout::kDense:
        DenseBody(m.q.data(), t, opt.q, dst);
        break;
      case Layout::kSparse: {
        std::vector<uint32_t> domain = PaperDomain(t, opt.q);
        // One table per stream: pick N by the estimated size of the three streams.
        size_t best_size = SIZE_MAX;
        uint32_t best_n = domain.front();
        std::vector<uint32_t> counts;
        for (uint32_t n : domain) {
          const uint32_t k = static_cast<uint32_t>(t / n);
          BuildCsr(m.q.data(), n, k, &m.csr);
          size_t size = 0;
          Histogram16(m.csr.v, 1u << opt.q, &counts);
          size += StreamSizeEstimate(static_cast<uint32_t>(m.csr.v.size()), counts.data(), 1u << opt.q);
          Histogram16(m.csr.c, k, &counts);
          size += StreamSizeEstimate(static_cast<uint32_t>(m.csr.c.size()), counts.data(), k);
          Histogram16(m.csr.r, k + 1, &counts);
          size += StreamSizeEstimate(static_cast<uint32_t>(m.csr.r.size()), counts.data(), k + 1);
          if (size < best_size) best_size = size, best_n = n;
        }
        const uint32_t k = static_cast<uint32_t>(t / best_n);
        BuildCsr(m.q.data(), best_n, k, &m.csr);
        SparseBody(m.csr, best_n, k, opt.q, dst);
        break;
      }
      case Layout::kPaper: {
        std::vector<uint32_t> domain = PaperDomain(t, opt.q);
        std::vector<double> costs;
        size_t visited_limit = opt.search == NSearch::kAlgorithm1 ? domain.size() : domain.size();
        costs.reserve(domain.size());
        // Algorithm 1 stops early: evaluate lazily so it does no more work than the paper's.
        double prev = INFINITY;
        for (size_t i = 0; i < visited_limit; ++i) {
          uint64_t len_d;
          double h;
          PaperCost(m.q.data(), t, domain[i], &len_d, &h);
          costs.push_back(static_cast<double>(len_d) * h);
          if (opt.search == NSearch::kAlgorithm1 && costs.back() > prev) break;
          prev = costs.back();
        }
        const size_t pick = opt.search == NSearch::kAlgorithm1 ? Algorithm1Choice(costs, nullptr)
                                                               : ExhaustiveChoice(costs);
        const uint32_t n = domain[pick];
        const uint32_t k = static_cast<uint32_t>(t / n);
        BuildCsr(m.q.data(), n, k, &m.csr);
        PaperBody(m.csr, n, k, opt.q, &m.d, dst);
        break;
      }
      case Layout::kContext:
        EncodeContextBody(m.q.data(), tensor.shape, opt.q, qp.zero_point, &m.context, dst);
        break;
      case Layout::kConstant:
        break;
    }
    Finish(dst);
  };

  switch (opt.mode) {
    case Mode::kDense: write_layout(Layout::kDense, out); break;
    case Mode::kSparse: write_layout(Layout::kSparse, out); break;
    case Mode::kPaper: write_layout(Layout::kPaper, out); break;
    case Mode::kContext: write_layout(Layout::kContext, out); break;
    case Mode::kAuto: {
      // The exhaustive choice (dense, then context, then sparse, each replacing the best only
      // when strictly smaller) without paying for every layout: context first (usually the
      // smallest), then dense and sparse only when their lower bound can still win.
      write_layout(Layout::kContext, out);
      const AutoBounds b = LayoutLowerBounds(m.q.data(), t, opt.q, tensor.shape.size(), out->size(), &m.bounds);
      if (b.dense <= out->size()) {
        write_layout(Layout::kDense, &m.candidate);
        if (m.candidate.size() <= out->size()) out->swap(m.candidate);  // ties go to dense
      }
      if (b.sparse < out->size()) {
        write_layout(Layout::kSparse, &m.candidate);
        if (m.candidate.size() < out->size()) out->swap(m.candidate);
      }
      break;
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Decoder
//
// Decoder scratch: the layout decoders read the payload in place and hand the tensor to a
// SymbolSink a chunk or a few rows at a time, so what they hold does not grow with the tensor:
// a stream's table (<= 256 KiB, three for sparse), the paper layout's kept block heads
// (<= 2 x 128 KiB), a chunk of CSR rows (<= 64 KiB), the context model's rows and tables
// (<= about 1.1 MiB). A decode needs its output plus at most about 1.1 MiB, whatever the shape;
// a Decoder keeps its buffers for the next call (after several layouts: about 2.2 MiB at most).

struct Decoder::Impl {
  DecodeLimits limits;
  ParsedStream streams[3];        // dense: the stream; sparse: v, c, r; paper: D
  std::vector<uint16_t> keep[2];  // paper: leading symbols of the blocks where c and r begin
  std::vector<uint8_t> rows;      // sparse, paper: rows on their way to the output
  ContextScratch context;
};

Decoder::Decoder(DecodeLimits limits) : impl_(new Impl) { impl_->limits = std::move(limits); }
void Decoder::SetLimits(DecodeLimits limits) { impl_->limits = std::move(limits); }
Decoder::~Decoder() = default;

namespace {

struct Parsed {
  FixedHeader h;
  std::vector<int64_t> shape;
  uint64_t t = 0;
  const uint8_t* body = nullptr;  // after the shape
  size_t body_bytes = 0;          // up to the checksum
};

// Validation in the fixed order of FORMAT.md "Decoding", up to the shape limits (codec/header.h).
Status ParseHeader(const uint8_t* data, size_t size, const DecodeLimits& limits, Parsed* p) {
  SPLITRANS_RETURN_IF_ERROR(SimdEnvironmentStatus());  // a bad SPLITRANS_SIMD is refused, not ignored
  CheckedHeader c;
  SPLITRANS_RETURN_IF_ERROR(CheckHeader(data, size, limits, nullptr, &c));
  p->h = c.h;
  p->shape = std::move(c.shape);
  p->t = c.elements;
  p->body = data + c.body_offset;
  p->body_bytes = c.body_end - c.body_offset;
  return Status::Ok();
}

struct BodyResult {
  std::vector<BitstreamInfo::Section> sections;
  uint32_t n = 0, k = 0;
};

}  // namespace

// Decodes the layout body of p into sink (or a constant). Fills info when non-null (then sink
// holds symbols: the entropies are computed from them).
static Status DecodeBody(Decoder::Impl& m, const Parsed& p, BodyResult* info, const SymbolSink& sink, bool* constant,
                         float* constant_value) {
  ByteReader rd(p.body, p.body_bytes);
  const FixedHeader& h = p.h;
  const uint64_t t = p.t;
  const uint32_t maxq = (1u << h.q) - 1;
  *constant = false;
  auto section = [&](const char* name, uint64_t symbols, const ParsedStream& s, double entropy_bits) {
    if (info) info->sections.push_back({name, symbols, s.table_bytes, s.payload_bytes, entropy_bits});
  };
  // Counts of a stream's symbols while they are decoded (Inspect only).
  auto counts_for = [&](const ParsedStream& s, std::vector<uint32_t>* counts) -> uint32_t* {
    if (!info || s.kind != StreamKind::kRans) return nullptr;
    counts->assign(s.alphabet, 0);
    return counts->data();
  };
  auto entropy = [](const ParsedStream& s, const std::vector<uint32_t>& counts) {
    return counts.empty() ? 0.0 : EntropyBits(counts.data(), s.alphabet);
  };
  switch (static_cast<Layout>(h.layout)) {
    case Layout::kConstant: {
      SPLITRANS_RETURN_IF_ERROR(rd.F32(constant_value, "constant value"));
      if (!std::isfinite(*constant_value)) return Corrupt("constant value is not finite");
      *constant = true;
      break;
    }
    case Layout::kDense: {
      ParsedStream& s = m.streams[0];
      SPLITRANS_RETURN_IF_ERROR(ParseStream(&rd, static_cast<uint32_t>(t), maxq, /*byte_symbols=*/true, &s));
      if (s.n != t) return Corrupt("dense stream has " + std::to_string(s.n) + " symbols, expected " + std::to_string(t));
      if (s.kind == StreamKind::kConstant) sink.Fill(0, s.symbol, t);
      if (s.kind == StreamKind::kRans) SPLITRANS_RETURN_IF_ERROR(DecodeByteStream(s, 0, sink));
      if (info) {
        uint32_t counts[256];
        Histogram256(sink.symbols, t, counts);
        section("q", t, s, s.kind == StreamKind::kRans ? EntropyBits(counts, 256) : 0.0);
      }
      break;
    }
    case Layout::kSparse:
    case Layout::kPaper: {
      uint32_t n, k;
      SPLITRANS_RETURN_IF_ERROR(rd.U32(&n, "N"));
      SPLITRANS_RETURN_IF_ERROR(rd.U32(&k, "K"));
      if (n == 0 || k == 0 || uint64_t{n} * k != t) {
        return Corrupt("N x K = " + std::to_string(n) + " x " + std::to_string(k) + " does not match " + std::to_string(t) + " elements");
      }
      if (k > 65535) return Corrupt("K " + std::to_string(k) + " too large");
      if (info) info->n = n, info->k = k;
      StreamCursor cur[3];  // v, c, r
      std::vector<uint32_t> counts[3];
      if (h.layout == static_cast<uint8_t>(Layout::kSparse)) {
        // The three streams' headers first, then their payloads together, row by row.
        ParsedStream &v = m.streams[0], &c = m.streams[1], &r = m.streams[2];
        SPLITRANS_RETURN_IF_ERROR(ParseStream(&rd, static_cast<uint32_t>(t), maxq, false, &v));
        SPLITRANS_RETURN_IF_ERROR(ParseStream(&rd, static_cast<uint32_t>(t), k - 1, false, &c));
        SPLITRANS_RETURN_IF_ERROR(ParseStream(&rd, n, k, false, &r));
        if (c.n != v.n || r.n != n) return Corrupt("CSR stream lengths disagree");
        const ParsedStream* streams[3] = {&v, &c, &r};
        for (int i = 0; i < 3; ++i) {
          cur[i].CountInto(counts_for(*streams[i], &counts[i]));
          SPLITRANS_RETURN_IF_ERROR(cur[i].Open(streams[i], 0, streams[i]->n, nullptr, 0, nullptr, 0, nullptr));
        }
        SPLITRANS_RETURN_IF_ERROR(ExpandCsrStreams(&cur[0], &cur[1], &cur[2], v.n, n, k, maxq, &m.rows, sink));
        section("v", v.n, v, entropy(v, counts[0]));
        section("c", c.n, c, entropy(c, counts[1]));
        section("r", r.n, r, entropy(r, counts[2]));
      } else {
        ParsedStream& d = m.streams[0];
        const uint32_t max_sym = std::max<uint32_t>(maxq, k);
        const uint64_t max_len = 2 * t + n;
        SPLITRANS_RETURN_IF_ERROR(
            ParseStream(&rd, static_cast<uint32_t>(std::min<uint64_t>(max_len, 0xFFFFFFFFu)), max_sym, false, &d));
        if (d.n < n || (d.n - n) % 2) return Corrupt("paper stream length inconsistent with N");
        const uint32_t nnz = (d.n - n) / 2;
        uint32_t* dc = counts_for(d, &counts[0]);
        for (StreamCursor& c : cur) c.CountInto(dc);
        SPLITRANS_RETURN_IF_ERROR(OpenPaperCursors(d, nnz, m.keep, cur));
        SPLITRANS_RETURN_IF_ERROR(ExpandCsrStreams(&cur[0], &cur[1], &cur[2], nnz, n, k, maxq, &m.rows, sink));
        section("D", d.n, d, entropy(d, counts[0]));
      }
      break;
    }
    case Layout::kContext: {
      ContextStats cs;
      SPLITRANS_RETURN_IF_ERROR(DecodeContextBody(&rd, p.shape, h.q, h.zero_point, &m.context, sink, &cs));
      if (info) {
        // The decoder does not track code lengths; the encoder is deterministic, so coding the
        // decoded values again yields the same model and its ideal code length.
        ContextStats es;
        std::vector<uint8_t> again;
        EncodeContextBody(sink.symbols, p.shape, h.q, h.zero_point, &m.context, &again, &es);
        info->sections.push_back({"context", cs.steps, cs.param_bytes, cs.payload_bytes, es.model_bits});
      }
      break;
    }
  }
  if (rd.remaining() != 0) return Corrupt(std::to_string(rd.remaining()) + " unused bytes at the end of the body");
  return Status::Ok();
}

// Decodes the body of a validated header into out (p.t floats) and sets *shape.
static Status DecodeValues(Decoder::Impl& m, const Parsed& p, float* out, std::vector<int64_t>* shape) {
  QuantParams qp;
  qp.scale = p.h.scale;
  qp.zero_point = p.h.zero_point;
  float lut[256];
  FillDequantTable(qp, lut);
  SymbolSink sink;
  sink.values = out;
  sink.lut = lut;
  sink.q_bits = p.h.q;
  bool constant;
  float value = 0;
  SPLITRANS_RETURN_IF_ERROR(DecodeBody(m, p, nullptr, sink, &constant, &value));
  if (constant) std::fill(out, out + p.t, value);
  if (shape) *shape = p.shape;
  return Status::Ok();
}

Status Decoder::DecodeInto(const uint8_t* data, size_t size, float* out, size_t capacity, std::vector<int64_t>* shape) {
  Impl& m = *impl_;
  Parsed p;
  SPLITRANS_RETURN_IF_ERROR(ParseHeader(data, size, m.limits, &p));
  if (capacity < p.t) return InvalidArgument("output holds " + std::to_string(capacity) + " floats, tensor has " + std::to_string(p.t));
  return DecodeValues(m, p, out, shape);
}

Status Decoder::Decode(const uint8_t* data, size_t size, DecodedTensor* out) {
  Impl& m = *impl_;
  Parsed p;
  SPLITRANS_RETURN_IF_ERROR(ParseHeader(data, size, m.limits, &p));
  out->values.resize(p.t);
  out->dtype = static_cast<DType>(p.h.dtype);
  return DecodeValues(m, p, out->values.data(), &out->shape);
}

Result<std::vector<uint8_t>> Encode(const TensorView& tensor, const EncodeOptions& options) {
  Encoder enc;
  std::vector<uint8_t> out;
  Status s = enc.Encode(tensor, options, &out);
  if (!s.ok()) return s;
  return out;
}

Result<DecodedTensor> Decode(const uint8_t* data, size_t size, const DecodeLimits& limits) {
  Decoder dec(limits);
  DecodedTensor out;
  Status s = dec.Decode(data, size, &out);
  if (!s.ok()) return s;
  return out;
}

Status PeekShape(const uint8_t* data, size_t size, std::vector<int64_t>* shape, const DecodeLimits& limits) {
  Parsed p;
  SPLITRANS_RETURN_IF_ERROR(ParseHeader(data, size, limits, &p));
  *shape = p.shape;
  return Status::Ok();
}

Result<BitstreamInfo> Inspect(const uint8_t* data, size_t size, const DecodeLimits& limits) {
  Decoder::Impl m;
  Parsed p;
  SPLITRANS_RETURN_IF_ERROR(ParseHeader(data, size, limits, &p));
  // The symbols (T bytes), from which the sections' entropies are computed.
  std::vector<uint8_t> q(p.h.layout == static_cast<uint8_t>(Layout::kConstant) ? 0 : p.t);
  SymbolSink sink;
  sink.symbols = q.data();
  BodyResult body;
  bool constant;
  float value;
  SPLITRANS_RETURN_IF_ERROR(DecodeBody(m, p, &body, sink, &constant, &value));
  BitstreamInfo info;
  info.version = p.h.version;
  info.dtype = static_cast<DType>(p.h.dtype);
  info.shape = p.shape;
  info.q = p.h.q;
  info.scale = p.h.scale;
  info.zero_point = p.h.zero_point;
  info.layout = static_cast<Layout>(p.h.layout);
  info.n = body.n;
  info.k = body.k;
  info.total_bytes = size;
  info.sections = body.sections;
  size_t section_bytes = 0;
  for (const auto& s : info.sections) section_bytes += s.table_bytes + s.payload_bytes;
  info.header_bytes = size - section_bytes;
  return info;
}

}  // namespace splitrans::codec

// Decoder, PeekShape and Inspect: the validation order of FORMAT.md "Decoding" (the header by
// ValidateHeader, codec/header.h, shared with the CUDA decoder), then the layout bodies into a
// SymbolSink.
#include "codec/codec.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "codec/byte_io.h"
#include "codec/context_model.h"
#include "codec/cpu_features.h"
#include "codec/crc32c.h"
#include "codec/csr.h"
#include "codec/header.h"
#include "codec/quantize.h"
#include "codec/rans_stream.h"
#include "codec/wire.h"

namespace splitrans::codec {

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

// Validation in the fixed order of FORMAT.md "Decoding", up to the shape limits (codec/header.h).
Status ParseHeader(const uint8_t* data, size_t size, const DecodeLimits& limits, ValidatedHeader* p) {
  SPLITRANS_RETURN_IF_ERROR(SimdEnvironmentStatus());  // a bad SPLITRANS_SIMD is refused, not ignored
  return ValidateHeader(data, size, limits, nullptr, p);
}

struct BodyResult {
  std::vector<BitstreamInfo::Section> sections;
  uint32_t n = 0, k = 0;
};

}  // namespace

// Decodes the layout body of p into sink (or a constant). Fills info when non-null (then sink
// holds symbols: the entropies are computed from them).
static Status DecodeBody(Decoder::Impl& m, const uint8_t* data, const ValidatedHeader& p, BodyResult* info,
                         const SymbolSink& sink, bool* constant, float* constant_value) {
  ByteReader rd(data + p.body_offset, p.body_bytes());
  const FixedHeader& h = p.h;
  const uint64_t t = p.elements;
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

// Decodes the body of a validated header into out (p.elements floats) and sets *shape.
static Status DecodeValues(Decoder::Impl& m, const uint8_t* data, const ValidatedHeader& p, float* out,
                           std::vector<int64_t>* shape) {
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
  SPLITRANS_RETURN_IF_ERROR(DecodeBody(m, data, p, nullptr, sink, &constant, &value));
  if (constant) std::fill(out, out + p.elements, value);
  if (shape) *shape = p.shape;
  return Status::Ok();
}

Status Decoder::DecodeInto(const uint8_t* data, size_t size, float* out, size_t capacity, std::vector<int64_t>* shape) {
  Impl& m = *impl_;
  ValidatedHeader p;
  SPLITRANS_RETURN_IF_ERROR(ParseHeader(data, size, m.limits, &p));
  if (capacity < p.elements) {
    return InvalidArgument("output holds " + std::to_string(capacity) + " floats, tensor has " +
                           std::to_string(p.elements));
  }
  return DecodeValues(m, data, p, out, shape);
}

Status Decoder::Decode(const uint8_t* data, size_t size, DecodedTensor* out) {
  Impl& m = *impl_;
  ValidatedHeader p;
  SPLITRANS_RETURN_IF_ERROR(ParseHeader(data, size, m.limits, &p));
  out->values.resize(p.elements);
  out->dtype = static_cast<DType>(p.h.dtype);
  return DecodeValues(m, data, p, out->values.data(), &out->shape);
}

Result<DecodedTensor> Decode(const uint8_t* data, size_t size, const DecodeLimits& limits) {
  Decoder dec(limits);
  DecodedTensor out;
  Status s = dec.Decode(data, size, &out);
  if (!s.ok()) return s;
  return out;
}

Status PeekShape(const uint8_t* data, size_t size, std::vector<int64_t>* shape, const DecodeLimits& limits) {
  ValidatedHeader p;
  SPLITRANS_RETURN_IF_ERROR(ParseHeader(data, size, limits, &p));
  *shape = p.shape;
  return Status::Ok();
}

Result<BitstreamInfo> Inspect(const uint8_t* data, size_t size, const DecodeLimits& limits) {
  Decoder::Impl m;
  ValidatedHeader p;
  SPLITRANS_RETURN_IF_ERROR(ParseHeader(data, size, limits, &p));
  // The symbols (T bytes), from which the sections' entropies are computed.
  std::vector<uint8_t> q(p.layout() == Layout::kConstant ? 0 : p.elements);
  SymbolSink sink;
  sink.symbols = q.data();
  BodyResult body;
  bool constant;
  float value;
  SPLITRANS_RETURN_IF_ERROR(DecodeBody(m, data, p, &body, sink, &constant, &value));
  BitstreamInfo info;
  info.version = p.h.version;
  info.dtype = static_cast<DType>(p.h.dtype);
  info.shape = p.shape;
  info.q = p.h.q;
  info.scale = p.h.scale;
  info.zero_point = p.h.zero_point;
  info.layout = p.layout();
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

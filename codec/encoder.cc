// Encoder: validation of the input tensor, quantization, layout selection (auto, paper's N
// search) and the bitstream's header and checksum (FORMAT.md "Quantization (AIQ)", "Layouts").
// The layouts live in rans_stream.cc (dense), csr.cc (sparse, paper) and context_model.cc
// (context); the header is written by WriteHeaderAndShape (codec/wire.h).
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
  uint32_t shape[kMaxRank];
  const uint32_t rank = static_cast<uint32_t>(tensor.shape.size());
  for (uint32_t i = 0; i < rank; ++i) shape[i] = static_cast<uint32_t>(tensor.shape[i]);
  out->resize(kFixedHeaderBytes + 4 * size_t{rank});
  // body_size is patched by Finish.
  WriteHeaderAndShape(out->data(), static_cast<uint32_t>(tensor.dtype), rank, static_cast<uint32_t>(q),
                      static_cast<uint32_t>(layout), qp.constant ? 0.f : qp.scale, qp.constant ? 0 : qp.zero_point,
                      /*body_size=*/0, shape);
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
  if (scratch.size() > kFixedHeaderBytes &&
      scratch[offsetof(FixedHeader, layout)] == static_cast<uint8_t>(Layout::kConstant)) {
    return out;
  }
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

Result<std::vector<uint8_t>> Encode(const TensorView& tensor, const EncodeOptions& options) {
  Encoder enc;
  std::vector<uint8_t> out;
  Status s = enc.Encode(tensor, options, &out);
  if (!s.ok()) return s;
  return out;
}

}  // namespace splitrans::codec

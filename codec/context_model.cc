// Context layout: adaptive binary context model + interleaved rANS. The element loop is one
// template shared by encoder and decoder, so both sides derive identical contexts and
// probabilities by construction (FORMAT.md "Context layout" specifies it).
#include "codec/context_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "codec/rans_stream.h"

namespace splitrans::codec {
namespace {

constexpr int kCtxProbBits = 12;
constexpr uint32_t kCtxOne = 1u << kCtxProbBits;
constexpr uint64_t kSegmentTargetElements = uint64_t{1} << 17;
constexpr int kPadLeft = 2, kPadRight = 1, kPadTop = 2;

// Adaptive probability of a 1 bit, 16-bit precision, adapting fast at first then slower.
struct Prob {
  uint16_t p = 32768;
  uint16_t n = 0;
};

constexpr uint8_t kRate[32] = {1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4,
                               5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5};

inline uint32_t Freq1(const Prob& s) {
  uint32_t f = s.p >> (16 - kCtxProbBits);
  return f < 1 ? 1 : (f > kCtxOne - 1 ? kCtxOne - 1 : f);
}

inline void Update(Prob& s, int bit) {
  const int rate = kRate[s.n];
  s.n += s.n < 31;
  if (bit) s.p = static_cast<uint16_t>(s.p + ((65536u - s.p) >> rate));
  else s.p = static_cast<uint16_t>(s.p - (s.p >> rate));
}

// Bit length of v (0 for 0).
inline int BitLen(uint32_t v) { return v ? 32 - __builtin_clz(v) : 0; }

constexpr int kZeroCtx = 16 * 2 * 4;
constexpr int kActBuckets = 12;
constexpr int kMaxExp = 8;

struct Model {
  Prob zero[kZeroCtx];
  Prob sign[9];
  Prob exp[kActBuckets][kMaxExp];
  Prob mant_first[kActBuckets][kMaxExp];
  Prob mant[kMaxExp][kMaxExp];
};

// Encoder side: records each decision as a rANS event.
struct EventSink {
  RansEncSymbol* ev;
  const uint32_t* rcp;
  size_t n = 0;
  bool ok = true;  // unused: symmetry with the decoder
  int Bit(Prob& s, int bit) {
    const uint32_t f1 = Freq1(s);
    RansEncSymbol& e = ev[n++];
    if (bit) {
      e.rcp = rcp[f1];
      e.freq = static_cast<uint16_t>(f1);
      e.start = 0;
    } else {
      e.rcp = rcp[kCtxOne - f1];
      e.freq = static_cast<uint16_t>(kCtxOne - f1);
      e.start = static_cast<uint16_t>(f1);
    }
    Update(s, bit);
    return bit;
  }
};

// Decoder side: decodes each decision.
struct EventSource {
  InterleavedDecoder* d;
  size_t n = 0;
  bool ok = true;
  int Bit(Prob& s, int) {
    const uint32_t f1 = Freq1(s);
    const int bit = d->Peek(kCtxProbBits) < f1;
    ok &= bit ? d->Advance(0, f1, kCtxProbBits) : d->Advance(f1, kCtxOne - f1, kCtxProbBits);
    ++n;
    Update(s, bit);
    return bit;
  }
};

struct Geometry {
  uint64_t maps = 1;
  uint32_t h = 1, w = 1;
};

Geometry MapGeometry(const std::vector<int64_t>& shape) {
  Geometry g;
  const size_t r = shape.size();
  g.w = static_cast<uint32_t>(shape[r - 1]);
  if (r >= 2) g.h = static_cast<uint32_t>(shape[r - 2]);
  for (size_t i = 0; i + 2 < r; ++i) g.maps *= static_cast<uint64_t>(shape[i]);
  return g;
}

// Codes one map. kEncode: q is read; otherwise q is written. plane: padded signed plane.
// Returns false on a decoded value outside the quantizer's range.
template <bool kEncode, typename Coder>
bool CodeMap(Coder& c, Model& m, int16_t* plane, uint32_t stride, const Geometry& g, uint8_t* q, int base, int maxq,
             bool has_sign) {
  const int pos_max = maxq - base, neg_max = base;
  bool ok = true;
  for (int64_t y = 0; y < g.h; ++y) {
    int16_t* row = plane + (y + kPadTop) * stride + kPadLeft;
    const int16_t* up = row - stride;
    const int16_t* up2 = up - stride;
    uint8_t* qrow = q + static_cast<uint64_t>(y) * g.w;
    for (int64_t x = 0; x < g.w; ++x) {
      const int a = std::abs(row[x - 1]), b = std::abs(up[x]), cc = std::abs(up[x - 1]), d = std::abs(up[x + 1]);
      const int far = (row[x - 2] != 0) | (up2[x] != 0);
      const int act = 2 * a + 2 * b + cc + d;
      const int zctx = (a > 0) | (b > 0) << 1 | (cc > 0) << 2 | (d > 0) << 3 | far << 4 |
                       std::min(BitLen(static_cast<uint32_t>(act)) >> 1, 3) << 5;
      int e = kEncode ? static_cast<int>(qrow[x]) - base : 0;
      if (!c.Bit(m.zero[zctx], e != 0)) {
        row[x] = 0;
        if (!kEncode) qrow[x] = static_cast<uint8_t>(base);
        continue;
      }
      int neg = 0;
      if (has_sign) {
        const int sw = row[x - 1] > 0 ? 2 : (row[x - 1] < 0 ? 1 : 0);
        const int sn = up[x] > 0 ? 2 : (up[x] < 0 ? 1 : 0);
        neg = c.Bit(m.sign[sw * 3 + sn], e < 0);
      }
      const int mag_max = neg ? neg_max : pos_max;
      const int k = std::min(BitLen(static_cast<uint32_t>(act)), kActBuckets - 1);
      const int emax = mag_max > 0 ? BitLen(static_cast<uint32_t>(mag_max)) - 1 : 0;
      const int mag = kEncode ? std::abs(e) : 0;
      const int ebits = kEncode ? BitLen(static_cast<uint32_t>(mag)) - 1 : 0;
      int ex = 0;
      while (ex < emax && c.Bit(m.exp[k][ex], ebits > ex)) ++ex;
      int v = 1;
      for (int i = ex - 1; i >= 0; --i) {
        Prob& p = (i == ex - 1) ? m.mant_first[k][ex] : m.mant[ex][i];
        v = (v << 1) | c.Bit(p, (mag >> i) & 1);
      }
      if (!kEncode) {
        if (v > mag_max) {
          ok = false;
          v = mag_max > 0 ? mag_max : 0;
        }
        e = neg ? -v : v;
        qrow[x] = static_cast<uint8_t>(base + e);
      }
      row[x] = static_cast<int16_t>(e);
    }
  }
  return ok;
}

const uint32_t* ReciprocalTable() {
  static const auto* table = [] {
    auto* t = new uint32_t[kCtxOne];
    for (uint32_t f = 0; f < kCtxOne; ++f) t[f] = RansReciprocal(f);
    return t;
  }();
  return table;
}

struct Params {
  Geometry g;
  int base = 0, maxq = 0;
  bool has_sign = false;
  uint32_t stride = 0;
};

Params MakeParams(const std::vector<int64_t>& shape, int qbits, int32_t zero_point) {
  Params p;
  p.g = MapGeometry(shape);
  p.maxq = (1 << qbits) - 1;
  p.base = std::clamp<int64_t>(zero_point, 0, p.maxq);
  p.has_sign = p.base > 0;
  p.stride = p.g.w + kPadLeft + kPadRight;
  return p;
}

}  // namespace

void EncodeContextBody(const uint8_t* q, const std::vector<int64_t>& shape, int qbits, int32_t zero_point,
                       ContextScratch* s, std::vector<uint8_t>* out, ContextStats* stats) {
  const Params p = MakeParams(shape, qbits, zero_point);
  const uint64_t map_elems = uint64_t{p.g.h} * p.g.w;
  const uint64_t maps_per_segment =
      std::max<uint64_t>(1, std::min<uint64_t>(p.g.maps, kSegmentTargetElements / std::max<uint64_t>(map_elems, 1)));
  const size_t begin = out->size();
  ByteWriter w(out);
  const uint64_t steps_per_elem = 2 + 2 * static_cast<uint64_t>(qbits);
  const int lanes_log2 = 2;
  w.U8(static_cast<uint8_t>(lanes_log2));
  w.U32(static_cast<uint32_t>(maps_per_segment));
  const size_t param_bytes = out->size() - begin;
  s->plane.assign(static_cast<size_t>(p.stride) * (p.g.h + kPadTop), 0);
  const uint32_t* rcp = ReciprocalTable();
  uint64_t total_steps = 0;
  Model* model = new Model;
  for (uint64_t m0 = 0; m0 < p.g.maps; m0 += maps_per_segment) {
    const uint64_t m1 = std::min<uint64_t>(p.g.maps, m0 + maps_per_segment);
    const size_t need = static_cast<size_t>((m1 - m0) * map_elems * steps_per_elem);
    if (s->events.size() < need) s->events.resize(need);
    *model = Model();
    EventSink sink{s->events.data(), rcp};
    for (uint64_t mi = m0; mi < m1; ++mi) {
      CodeMap<true>(sink, *model, s->plane.data(), p.stride, p.g, const_cast<uint8_t*>(q + mi * map_elems), p.base,
                    p.maxq, p.has_sign);
    }
    EncodeInterleaved(s->events.data(), sink.n, lanes_log2, kCtxProbBits, &s->words, out);
    if (stats) {
      for (size_t i = 0; i < sink.n; ++i) stats->model_bits += kCtxProbBits - std::log2(s->events[i].freq);
    }
    total_steps += sink.n;
  }
  delete model;
  if (stats) {
    stats->steps = total_steps;
    stats->param_bytes = param_bytes;
    stats->payload_bytes = out->size() - begin - param_bytes;
  }
}

Status DecodeContextBody(ByteReader* r, const std::vector<int64_t>& shape, int qbits, int32_t zero_point,
                         ContextScratch* s, uint8_t* q, ContextStats* stats) {
  const Params p = MakeParams(shape, qbits, zero_point);
  const uint64_t map_elems = uint64_t{p.g.h} * p.g.w;
  const uint8_t* begin = r->pos();
  uint8_t lanes_log2;
  uint32_t maps_per_segment;
  SPLITRANS_RETURN_IF_ERROR(r->U8(&lanes_log2, "context lanes"));
  if (lanes_log2 > kMaxLanesLog2) return Corrupt("context lanes_log2 " + std::to_string(lanes_log2) + " out of range");
  SPLITRANS_RETURN_IF_ERROR(r->U32(&maps_per_segment, "context maps per segment"));
  if (maps_per_segment == 0) return Corrupt("context maps per segment is 0");
  const size_t param_bytes = static_cast<size_t>(r->pos() - begin);
  if (map_elems == 0 || p.g.maps == 0) return Corrupt("context layout for an empty tensor");
  s->plane.assign(static_cast<size_t>(p.stride) * (p.g.h + kPadTop), 0);
  Model* model = new Model;
  uint64_t total_steps = 0;
  Status status;
  for (uint64_t m0 = 0; m0 < p.g.maps && status.ok(); m0 += maps_per_segment) {
    const uint64_t m1 = std::min<uint64_t>(p.g.maps, m0 + maps_per_segment);
    InterleavedDecoder dec;
    const uint64_t max_words = (m1 - m0) * map_elems * (2 + 2 * static_cast<uint64_t>(qbits));
    status = dec.Init(r, lanes_log2, static_cast<size_t>(std::min<uint64_t>(max_words, 0xFFFFFFFFu)));
    if (!status.ok()) break;
    *model = Model();
    EventSource src{&dec};
    bool ok = true;
    for (uint64_t mi = m0; mi < m1 && ok; ++mi) {
      ok = CodeMap<false>(src, *model, s->plane.data(), p.stride, p.g, q + mi * map_elems, p.base, p.maxq,
                          p.has_sign) &&
           src.ok;
    }
    if (!ok) status = Corrupt("context segment at map " + std::to_string(m0) + " decodes to invalid data");
    else if (!dec.Finished()) status = Corrupt("context segment at map " + std::to_string(m0) + " does not end cleanly");
    total_steps += src.n;
  }
  delete model;
  if (!status.ok()) return status;
  if (stats) {
    stats->steps = total_steps;
    stats->param_bytes = param_bytes;
    stats->payload_bytes = static_cast<size_t>(r->pos() - begin) - param_bytes;
  }
  return Status::Ok();
}

}  // namespace splitrans::codec

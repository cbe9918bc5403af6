// Context layout, adaptive binary model (FORMAT.md "Context layout", model 1): for small
// tensors, where table bytes would dominate. Every decision is a binary event with an adaptive
// probability; no tables are sent. Slower per element than the semi-static model
// (context_model.cc), so the encoder only tries it up to kAdaptiveMaxElements.
#include <cmath>
#include <memory>

#include "codec/context_internal.h"
#include "codec/rans_stream.h"

namespace splitrans::codec::context_internal {
namespace {

// ---------------------------------------------------------------------------------------------
// Adaptive binary model: for small tensors, where table bytes would dominate. Every decision is
// a binary event with an adaptive probability; no tables are sent. Slower per element than the
// semi-static model, so the encoder only tries it up to kAdaptiveMaxElements.

constexpr int kBinProbBits = 12;
constexpr uint32_t kBinOne = 1u << kBinProbBits;

// Probability of a 1 bit in 1/65536, adapting fast at first, then slower.
struct Prob {
  uint16_t p = 32768;
  uint16_t n = 0;
};

constexpr uint8_t kRate[32] = {1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4,
                               5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5};

inline uint32_t Freq1(const Prob& s) {
  const uint32_t f = s.p >> (16 - kBinProbBits);
  return f < 1 ? 1 : (f > kBinOne - 1 ? kBinOne - 1 : f);
}

inline void Update(Prob& s, int bit) {
  const int rate = kRate[s.n];
  s.n += s.n < 31;
  if (bit) s.p = static_cast<uint16_t>(s.p + ((65536u - s.p) >> rate));
  else s.p = static_cast<uint16_t>(s.p - (s.p >> rate));
}

constexpr int kZeroCtx = 16 * 2 * 4;
constexpr int kActBuckets = 12;
constexpr int kMaxExp = 8;

struct BinModel {
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
  int Bit(Prob& s, int bit) {
    const uint32_t f1 = Freq1(s);
    RansEncSymbol& e = ev[n++];
    if (bit) e.rcp = rcp[f1], e.freq = static_cast<uint16_t>(f1), e.start = 0;
    else e.rcp = rcp[kBinOne - f1], e.freq = static_cast<uint16_t>(kBinOne - f1), e.start = static_cast<uint16_t>(f1);
    Update(s, bit);
    return bit;
  }
};

// Decoder side: decodes each decision.
struct EventSource {
  InterleavedDecoder* d;
  bool ok = true;
  int Bit(Prob& s, int) {
    const uint32_t f1 = Freq1(s);
    const int bit = d->Peek(kBinProbBits) < f1;
    ok &= bit ? d->Advance(0, f1, kBinProbBits) : d->Advance(f1, kBinOne - f1, kBinProbBits);
    Update(s, bit);
    return bit;
  }
};

const uint32_t* ReciprocalTable() {
  static const auto* table = [] {
    auto* t = new uint32_t[kBinOne];
    for (uint32_t f = 0; f < kBinOne; ++f) t[f] = RansReciprocal(f);
    return t;
  }();
  return table;
}

// Codes one map in raster order. planes: padded plane of values (qp) and of residuals (ep).
// kEncode: q is read; otherwise q is written. Returns false on an out-of-range decoded value.
template <bool kEncode, typename M, typename Coder>
bool CodeMapAdaptive(Coder& c, BinModel& m, uint16_t* qp, int16_t* ep, const Params& p, uint8_t* q) {
  const int maxq = static_cast<int>(p.qmask);
  bool ok = true;
  for (int64_t y = 0; y < p.g.h; ++y) {
    uint16_t* qrow = qp + (y + kPadTop) * p.stride + kPadLeft;
    int16_t* row = ep + (y + kPadTop) * p.stride + kPadLeft;
    const int16_t* up = row - p.stride;
    const int16_t* up2 = up - p.stride;
    uint8_t* out = q + static_cast<uint64_t>(y) * p.g.w;
    for (int64_t x = 0; x < p.g.w; ++x) {
      const int pred = static_cast<int>(M::PredictValue(qrow[x - 1], qrow - p.stride, x, p.base));
      const int a = std::abs(row[x - 1]), b = std::abs(up[x]), cc = std::abs(up[x - 1]), d = std::abs(up[x + 1]);
      const int far = (row[x - 2] != 0) | (up2[x] != 0);
      const int act = 2 * a + 2 * b + cc + d;
      const int zctx = (a > 0) | (b > 0) << 1 | (cc > 0) << 2 | (d > 0) << 3 | far << 4 |
                       std::min(BitLen(static_cast<uint32_t>(act)) >> 1, 3) << 5;
      int e = kEncode ? static_cast<int>(out[x]) - pred : 0;
      if (!c.Bit(m.zero[zctx], e != 0)) {
        row[x] = 0;
        qrow[x] = static_cast<uint16_t>(pred);
        if (!kEncode) out[x] = static_cast<uint8_t>(pred);
        continue;
      }
      const int pos_max = maxq - pred, neg_max = pred;
      int neg = 0;
      if (pos_max > 0 && neg_max > 0) {
        const int sw = row[x - 1] > 0 ? 2 : (row[x - 1] < 0 ? 1 : 0);
        const int sn = up[x] > 0 ? 2 : (up[x] < 0 ? 1 : 0);
        neg = c.Bit(m.sign[sw * 3 + sn], e < 0);
      } else {
        neg = neg_max > 0;
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
        Prob& pr = (i == ex - 1) ? m.mant_first[k][ex] : m.mant[ex][i];
        v = (v << 1) | c.Bit(pr, (mag >> i) & 1);
      }
      if (!kEncode) {
        if (v > mag_max || mag_max == 0) {
          ok = false;
          v = 0;
        }
        e = neg ? -v : v;
        out[x] = static_cast<uint8_t>(pred + e);
      }
      row[x] = static_cast<int16_t>(e);
      qrow[x] = static_cast<uint16_t>(pred + e);
    }
  }
  return ok;
}

// Returns the ideal code length of the decisions in bits when want_bits (else 0: the log2 per
// decision would cost about a third of the encode time).
template <typename M>
double EncodeAdaptive(const uint8_t* q, const Params& p, ContextScratch* s, std::vector<uint8_t>* out,
                      bool want_bits) {
  const uint64_t map_elems = uint64_t{p.g.h} * p.g.w;
  const uint64_t t = map_elems * p.g.maps;
  const size_t need = static_cast<size_t>(t * (2 + 2 * (BitLen(p.qmask))));
  if (s->events.size() < need) s->events.resize(need);
  s->planes.assign(p.plane_size, 0);
  s->eplane.assign(p.plane_size, 0);
  auto model = std::make_unique<BinModel>();
  EventSink sink{s->events.data(), ReciprocalTable()};
  for (uint64_t mi = 0; mi < p.g.maps; ++mi) {
    CodeMapAdaptive<true, M>(sink, *model, s->planes.data(), s->eplane.data(), p,
                             const_cast<uint8_t*>(q + mi * map_elems));
  }
  EncodeInterleaved(s->events.data(), sink.n, kLanesLog2, kBinProbBits, &s->words, out);
  double bits = 0;
  if (want_bits) {
    for (size_t i = 0; i < sink.n; ++i) bits += kBinProbBits - std::log2(static_cast<double>(s->events[i].freq));
  }
  return bits;
}

template <typename M>
Status DecodeAdaptive(ByteReader* r, const Params& p, ContextScratch* s, uint8_t* q) {
  const uint64_t map_elems = uint64_t{p.g.h} * p.g.w;
  const uint64_t t = map_elems * p.g.maps;
  InterleavedDecoder dec;
  const uint64_t max_words = t * (2 + 2 * static_cast<uint64_t>(BitLen(p.qmask)));
  SPLITRANS_RETURN_IF_ERROR(dec.Init(r, kLanesLog2, static_cast<size_t>(std::min<uint64_t>(max_words, 0xFFFFFFFFu))));
  s->planes.assign(p.plane_size, 0);
  s->eplane.assign(p.plane_size, 0);
  auto model = std::make_unique<BinModel>();
  EventSource src{&dec};
  bool ok = true;
  for (uint64_t mi = 0; mi < p.g.maps && ok; ++mi) {
    ok = CodeMapAdaptive<false, M>(src, *model, s->planes.data(), s->eplane.data(), p, q + mi * map_elems) && src.ok;
  }
  if (!ok) return Corrupt("adaptive context model decodes to invalid data");
  if (!dec.Finished()) return Corrupt("adaptive context model does not end cleanly");
  return Status::Ok();
}

}  // namespace

double EncodeAdaptiveModel(int predictor, const uint8_t* q, const Params& p, ContextScratch* s,
                           std::vector<uint8_t>* out, bool want_bits) {
  return predictor == 0 ? EncodeAdaptive<LevelModel>(q, p, s, out, want_bits)
                        : EncodeAdaptive<MedModel>(q, p, s, out, want_bits);
}

Status DecodeAdaptiveModel(int predictor, ByteReader* r, const Params& p, ContextScratch* s, uint8_t* q) {
  return predictor == 0 ? DecodeAdaptive<LevelModel>(r, p, s, q) : DecodeAdaptive<MedModel>(r, p, s, q);
}

}  // namespace splitrans::codec::context_internal

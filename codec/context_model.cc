// Context layout: context models over 2-D maps (FORMAT.md "Context layout").
//
// Each element is predicted from its already-coded neighbours: "level" predicts the zero point
// with contexts from neighbour magnitudes (sparse, noisy features), "med" is LOCO-I's median
// edge detector with contexts from local gradients (smooth maps, constant backgrounds). Two
// models code the residual symbols:
// - semi-static (any size): the encoder measures per-context histograms, sends the tables and
//   codes with table lookups only. Maps are interleaved 4 at a time (lane g = map g of the
//   group) so the decoder runs 4 independent dependency chains at once.
// - adaptive (up to 2^16 elements, where tables would dominate): binary decisions with
//   adaptive probabilities, no tables.
// The encoder tries the candidates and keeps the smallest. On large tensors (>= 2^15 elements,
// >= 16 maps) it first compares the two predictors' conditional entropies on every 4th map and
// analyses only the winner when they differ by more than 2% (otherwise both, exactly as before).
// Encoder analysis computes a whole map's contexts at once (vectorized); the decoders are
// specialized per model, table precision and lane count, with a table-driven fast path for
// post-ReLU maps (zero point 0) with Q <= 4.
// This file: the semi-static model and the layout's entry points. The adaptive model is in
// context_adaptive.cc; what both share (tokens, predictors, geometry) in context_internal.h.
#include "codec/context_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>

#include "codec/context_internal.h"
#include "codec/cpu_features.h"
#include "codec/rans_stream.h"

namespace splitrans::codec {
using namespace context_internal;  // NOLINT(build/namespaces): this file's half of the layout
namespace {

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) v >>= 7, ++n;
  return n;
}

// log2(f) for table frequencies f in [1, 2^kMaxCtxProbBits].
const float* Log2Table() {
  static const float* table = [] {
    auto* t = new float[(1u << kMaxCtxProbBits) + 1];
    t[0] = 0;
    for (uint32_t f = 1; f <= (1u << kMaxCtxProbBits); ++f) t[f] = static_cast<float>(std::log2(f));
    return t;
  }();
  return table;
}

// Picks the table precision minimizing payload + table bytes; returns that cost in bits.
double ChooseTables(const std::vector<uint32_t>& hist, int contexts, int* best_pb, std::vector<uint32_t>* best_freqs) {
  std::vector<uint32_t> freqs(hist.size());
  const float* log2f = Log2Table();
  double best_cost = 0;
  *best_pb = 0;
  for (int pb = kMinProbBits; pb <= kMaxCtxProbBits; ++pb) {
    double bits = 0;
    size_t table_bytes = 0;
    for (int c = 0; c < contexts; ++c) {
      const uint32_t* h = &hist[c * kMaxTokens];
      uint32_t* f = &freqs[c * kMaxTokens];
      std::fill(f, f + kMaxTokens, 0);
      uint32_t a = 0, distinct = 0;
      for (int k = 0; k < kMaxTokens; ++k) {
        if (h[k]) a = k + 1, ++distinct;
        if (h[k] && k >= kDirectTokens) bits += static_cast<double>(h[k]) * RawBitsOfToken(k);
      }
      table_bytes += VarintSize(a);
      if (distinct == 0) continue;
      if (distinct == 1) {  // a - 1 zeros, then 2^pb: the token costs nothing
        f[a - 1] = 1u << pb;
        table_bytes += a - 1 + VarintSize(1u << pb);
        continue;
      }
      NormalizeFrequencies(h, a, pb, f);
      for (uint32_t k = 0; k < a; ++k) {
        table_bytes += VarintSize(f[k]);
        if (h[k]) bits += h[k] * (pb - static_cast<double>(log2f[f[k]]));
      }
    }
    const double cost = bits + 8.0 * table_bytes;
    if (*best_pb == 0 || cost < best_cost) *best_pb = pb, best_cost = cost, *best_freqs = freqs;
  }
  return best_cost;
}

// Everything the row decoder needs besides the states. A lane's rows hold their padding (2
// columns left, 1 right): the row decoder reads up to 2 symbols left of the row, and the row above
// from 1 left to 1 right.
struct RowTables {
  const uint32_t* dtab;  // per-context slot tables, entries as MakeDecEntry
  int pb;
  int cap;
  ptrdiff_t up, up2;  // the rows above and two above, relative to the row being decoded
  uint32_t qmask;
  uint32_t base;
  uint32_t* pre;  // scratch: G rows of Prep output
  size_t lane_stride;  // distance between the rows of consecutive lanes
  const uint32_t* level_lut;  // LevelZero fast path: FillLevelLut below
};

// LevelZero fast path (values <= 15): the context's offset in the decoder tables,
// lut[nz * 64 + act] = (nz == 0 ? 0 : 2 + 2 * ((nz - 1) * 5 + min(bitlen(act) >> 1, 4))) << PB;
// the decoder adds far << PB. act <= 15 + 15 + 15 < 64.
constexpr int kLevelLutSize = 5 * 64;
void FillLevelLut(int pb, uint32_t* lut) {
  for (int nz = 0; nz < 5; ++nz) {
    for (uint32_t act = 0; act < 64; ++act) {
      const int ctx = nz == 0 ? 0 : 2 + 2 * ((nz - 1) * kLevelBuckets + std::min(BitLen(act) >> 1, kLevelBuckets - 1));
      lut[nz * 64 + act] = static_cast<uint32_t>(ctx) << pb;
    }
  }
}

// Decoder table entry: bad << 31 | token << 25 | freq << 12 | bias. A context with a single
// token has freq = 2^PB and bias = slot (the step leaves the state unchanged: no rANS step); a
// context absent from the tables has the bad bit set.
inline uint32_t MakeDecEntry(uint32_t bad, uint32_t token, uint32_t freq, uint32_t bias) {
  return bad << 31 | token << 25 | freq << 12 | bias;
}

// Branch-free renormalization (the branch would be mispredicted often): reads the next 16-bit
// word (little-endian, unaligned) whether it is needed or not, so the caller guarantees that the
// words a row may read are readable (a zero-padded copy near a segment's end) and checks the
// position after each row.
inline void Refill(uint32_t& st, const uint8_t*& wp) {
  const uint32_t need = st < kRansL;
  uint16_t word;
  std::memcpy(&word, wp, 2);
  st = (st << (need << 4)) | (word & (0u - need));
  wp += need << 1;
}

// Decodes one element of one lane and returns its value (> qmask on corrupt input).
// PB: the tables' precision.
// kRaw: tokens with raw bits can occur (otherwise the tables mark them bad).
template <typename M, int PB, bool kRaw>
inline uint32_t DecodeOne(const RowTables& t, const Nbr& n, int64_t x, uint32_t& st, const uint8_t*& wp) {
  int ctx;
  const uint32_t pred = M::Predict(n, x, t.cap, t.base, &ctx);
  constexpr uint32_t mask = (1u << PB) - 1;
  const uint32_t e = t.dtab[(static_cast<size_t>(ctx) << PB) | (st & mask)];
  const uint32_t token = (e >> 25) & 31;
  st = ((e >> 12) & 0x1fff) * (st >> PB) + (e & 0xfff);
  Refill(st, wp);
  uint32_t sym = token;
  if (kRaw && token >= static_cast<uint32_t>(kDirectTokens)) {
    const int rb = RawBitsOfToken(token);
    if (rb > PB) return ~0u;
    const uint32_t slot = st & mask;
    const uint32_t f = 1u << (PB - rb);
    sym = TokenBase(token) | (slot >> (PB - rb));
    st = f * (st >> PB) + (slot & (f - 1));
    Refill(st, wp);
  }
  const int v = M::Value(sym, pred);
  return (e >> 31) ? ~0u : static_cast<uint32_t>(v);
}

// One row (or a tile of one) of L maps (L lanes): L independent chains. With L a compile-time
// constant the states and left neighbours stay in registers.
template <typename M, int L, int PB, bool kRaw>
inline uint32_t DecodeRowLanes(const RowTables& t, uint16_t* const* rows, uint32_t* states, const uint8_t*& wpr,
                               int64_t w) {
  // Lane l's row is rows[0] + l * lane_stride: one base pointer keeps registers for the states.
  uint16_t* const row = rows[0];
  const size_t ps = t.lane_stride;
  const uint8_t* wp = wpr;
  uint32_t st[L], left[L];
  uint32_t bad = 0;
#pragma GCC unroll 8
  for (int l = 0; l < L; ++l) st[l] = states[l], left[l] = row[l * ps - 1];  // 0: padding (or the previous tile)
  if constexpr (std::is_same_v<M, LevelZeroModel> && !kRaw) {
    // Post-ReLU maps with values <= 15: the value is the token, and the tables mark every
    // token above 2^Q - 1 bad (bit 31), so OR-ing the entries is the whole validity check.
    // The context comes from one small table: pre[x] = (nz of b, c, d) * 64 + b + ((c + d) >> 1)
    // | [bb != 0] << 16, so that nz * 64 + act = pre + a + [a != 0] * 64.
    constexpr uint32_t mask = (1u << PB) - 1;
#pragma GCC unroll 8
    for (int l = 0; l < L; ++l) {
      const uint16_t* up = row + l * ps + t.up;
      const uint16_t* up2 = row + l * ps + t.up2;
      uint32_t* pre = t.pre + l * w;
      for (int64_t x = 0; x < w; ++x) {
        const uint32_t b = up[x], c = up[x - 1], d = up[x + 1];
        pre[x] = (((b != 0) + (c != 0) + (d != 0)) << 6) + b + ((c + d) >> 1) + ((up2[x] != 0) << 16);
      }
    }
    const uint32_t* lut = t.level_lut;
    for (int64_t x = 0; x < w; ++x) {
#pragma GCC unroll 8
      for (int l = 0; l < L; ++l) {
        uint16_t* r = row + l * ps;
        const uint32_t a = left[l], pre = t.pre[l * w + x];
        const uint32_t far = (r[x - 2] != 0) | (pre >> 16);
        const uint32_t off = lut[(pre & 0xffff) + a + ((a != 0) << 6)] + (far << PB);
        const uint32_t e = t.dtab[off | (st[l] & mask)];
        st[l] = ((e >> 12) & 0x1fff) * (st[l] >> PB) + (e & 0xfff);
        Refill(st[l], wp);
        bad |= e;
        left[l] = (e >> 25) & t.qmask;  // = the token when valid; keeps lut indices in range
        r[x] = static_cast<uint16_t>(left[l]);
      }
    }
    bad >>= 31;
  } else {
#pragma GCC unroll 8
    for (int l = 0; l < L; ++l) {
      M::Prep(row + l * ps + t.up, row + l * ps + t.up2, w, t.base, t.pre + l * w);
    }
    for (int64_t x = 0; x < w; ++x) {
#pragma GCC unroll 8
      for (int l = 0; l < L; ++l) {
        uint16_t* r = row + l * ps;
        const uint32_t v = DecodeOne<M, PB, kRaw>(t, Nbr{left[l], r[x - 2], r + t.up, t.pre + l * w}, x, st[l], wp);
        bad |= v > t.qmask;
        left[l] = v & t.qmask;
        r[x] = static_cast<uint16_t>(left[l]);
      }
    }
  }
#pragma GCC unroll 8
  for (int l = 0; l < L; ++l) states[l] = st[l];
  wpr = wp;
  return bad;
}

// One row of a group of gl <= G maps.
template <typename M, int G, int PB, bool kRaw>
bool DecodeRow(const RowTables& t, uint16_t* const* rows, int gl, uint32_t* states, const uint8_t** wpp, int64_t w) {
  static_assert(G == 4, "the dispatch below covers 1..4 lanes");
  uint32_t bad;
  switch (gl) {
    case 4: bad = DecodeRowLanes<M, 4, PB, kRaw>(t, rows, states, *wpp, w); break;
    case 3: bad = DecodeRowLanes<M, 3, PB, kRaw>(t, rows, states, *wpp, w); break;
    case 2: bad = DecodeRowLanes<M, 2, PB, kRaw>(t, rows, states, *wpp, w); break;
    default: bad = DecodeRowLanes<M, 1, PB, kRaw>(t, rows, states, *wpp, w); break;
  }
  return bad == 0;
}

using RowDecoder = bool (*)(const RowTables&, uint16_t* const*, int, uint32_t*, const uint8_t**, int64_t);

template <typename M, bool kRaw>
RowDecoder PickRowDecoderPB(int pb) {
  constexpr int G = 1 << kLanesLog2;
  switch (pb) {
    case 8: return DecodeRow<M, G, 8, kRaw>;
    case 9: return DecodeRow<M, G, 9, kRaw>;
    case 10: return DecodeRow<M, G, 10, kRaw>;
    case 11: return DecodeRow<M, G, 11, kRaw>;
    default: return DecodeRow<M, G, 12, kRaw>;
  }
}

template <typename M>
RowDecoder PickRowDecoder(int pb, bool raw) {
  return raw ? PickRowDecoderPB<M, true>(pb) : PickRowDecoderPB<M, false>(pb);
}

// ---------------------------------------------------------------------------------------------
// Encoder analysis. The encoder knows every value, so the contexts of a whole map are computed
// at once over its padded plane, as one flat loop with no serial dependency (vectorized; the
// columns of the padding yield values that are ignored). Results are per plane position.

// Level: ctx and symbol for every position of rows 0..h-1 of the plane (index 0 = (0, 0)).
template <bool kBaseZero>
__attribute__((always_inline)) inline void LevelCtxBody(const uint16_t* r, int64_t n, int64_t stride, int base,
                                                        uint16_t* ctx, uint16_t* sym) {
  for (int64_t i = 0; i < n; ++i) {
    const int v = r[i], l = r[i - 1], l2 = r[i - 2], u = r[i - stride], ul = r[i - stride - 1],
              ur = r[i - stride + 1], uu = r[i - 2 * stride];
    int a, b, c, d;
    if (kBaseZero) {
      a = l, b = u, c = ul, d = ur;
    } else {
      a = l > base ? l - base : base - l;
      b = u > base ? u - base : base - u;
      c = ul > base ? ul - base : base - ul;
      d = ur > base ? ur - base : base - ur;
    }
    const int act = a + b + ((c + d) >> 1);
    const int nz = (a != 0) + (b != 0) + (c != 0) + (d != 0);
    const int far = (l2 != base) | (uu != base);
    const int bucket = (act >= 2) + (act >= 8) + (act >= 32) + (act >= 128);  // min(bitlen(act) >> 1, 4)
    const int cx = nz == 0 ? far : 2 + 2 * ((nz - 1) * kLevelBuckets + bucket) + far;
    ctx[i] = static_cast<uint16_t>(cx);
    if (kBaseZero) {
      sym[i] = static_cast<uint16_t>(v);
    } else {
      const int e = v - base;
      sym[i] = static_cast<uint16_t>(e >= 0 ? 2 * e : -2 * e - 1);
    }
  }
}

// Med: ctx and symbol. act <= 3 * 255 < 2^10, so bitlen(act) <= 10 < the cap (>= 40).
__attribute__((always_inline)) inline void MedCtxBody(const uint16_t* r, int64_t n, int64_t stride, uint16_t* ctx,
                                                      uint16_t* sym) {
  for (int64_t i = 0; i < n; ++i) {
    const int v = r[i], a = r[i - 1], l2 = r[i - 2], b = r[i - stride], c = r[i - stride - 1], d = r[i - stride + 1],
              uu = r[i - 2 * stride];
    const int lo = a < b ? a : b, hi = a < b ? b : a;
    const int pred = c >= hi ? lo : (c <= lo ? hi : a + b - c);
    const int ac = a > c ? a - c : c - a, bc = b > c ? b - c : c - b, db = d > b ? d - b : b - d;
    const int act = ac + bc + db;
    const int far = (l2 != a) | (uu != b);
    int bl = 0;
    for (int k = 0; k < 10; ++k) bl += act >= (1 << k);
    ctx[i] = static_cast<uint16_t>(act == 0 ? far : 1 + bl);
    const int e = v - pred;
    sym[i] = static_cast<uint16_t>(e >= 0 ? 2 * e : -2 * e - 1);
  }
}

void LevelCtxDefault(const uint16_t* r, int64_t n, int64_t stride, int base, uint16_t* ctx, uint16_t* sym) {
  if (base == 0) LevelCtxBody<true>(r, n, stride, base, ctx, sym);
  else LevelCtxBody<false>(r, n, stride, base, ctx, sym);
}
void MedCtxDefault(const uint16_t* r, int64_t n, int64_t stride, int, uint16_t* ctx, uint16_t* sym) {
  MedCtxBody(r, n, stride, ctx, sym);
}
#if defined(__x86_64__)
__attribute__((target("avx2"))) void LevelCtxAvx2(const uint16_t* r, int64_t n, int64_t stride, int base,
                                                  uint16_t* ctx, uint16_t* sym) {
  if (base == 0) LevelCtxBody<true>(r, n, stride, base, ctx, sym);
  else LevelCtxBody<false>(r, n, stride, base, ctx, sym);
}
__attribute__((target("avx2"))) void MedCtxAvx2(const uint16_t* r, int64_t n, int64_t stride, int, uint16_t* ctx,
                                                uint16_t* sym) {
  MedCtxBody(r, n, stride, ctx, sym);
}
#endif

using CtxFn = void (*)(const uint16_t*, int64_t, int64_t, int, uint16_t*, uint16_t*);

CtxFn PickCtxFn(int predictor) {
#if defined(__x86_64__)
  if (ActiveSimdLevel() >= SimdLevel::kAvx2) return predictor == 0 ? LevelCtxAvx2 : MedCtxAvx2;
#endif
  return predictor == 0 ? LevelCtxDefault : MedCtxDefault;
}

// Per-map analysis scratch: the padded plane and the per-position ctx / symbol arrays.
struct MapAnalyzer {
  const Params& p;
  std::vector<uint16_t>& plane;
  std::vector<uint16_t>& ctx;  // 2 * plane_size: ctx, then symbols
  int64_t n = 0;               // flat positions from (0, 0) to (h - 1, w - 1)

  MapAnalyzer(const Params& params, std::vector<uint16_t>* pl, std::vector<uint16_t>* cs)
      : p(params), plane(*pl), ctx(*cs) {
    plane.assign(p.plane_size, 0);
    ctx.resize(2 * p.plane_size);
    n = static_cast<int64_t>(p.g.h - 1) * p.stride + p.g.w;
  }
  // Computes ctx / symbol of every element of map qm with the predictor of fn.
  void Run(const uint8_t* qm, CtxFn fn) {
    uint16_t* r = plane.data() + kPadTop * p.stride + kPadLeft;
    for (int64_t y = 0; y < p.g.h; ++y) {
      uint16_t* row = r + y * p.stride;
      const uint8_t* src = qm + y * p.g.w;
      for (int64_t x = 0; x < p.g.w; ++x) row[x] = src[x];
    }
    fn(r, n, p.stride, static_cast<int>(p.base), ctx.data(), ctx.data() + p.plane_size);
  }
  const uint16_t* Ctx() const { return ctx.data(); }
  const uint16_t* Sym() const { return ctx.data() + p.plane_size; }
};

// Pass 1 for one predictor over the maps [m_begin, m_end) with step m_step: per-context token
// histograms (hist[ctx * kMaxTokens + token]) and, when coded is non-null, every element's
// (ctx * kMaxTokens + token) << 16 | raw bits in coding order (segment by segment, groups of
// G maps interleaved pixel by pixel). coded requires m_step = 1 and the whole tensor.
void AnalyzeMaps(const uint8_t* q, const Params& p, uint64_t maps_per_segment, int predictor, uint64_t m_step,
                 ContextScratch* s, uint32_t* coded, std::vector<uint32_t>* hist) {
  const uint64_t map_elems = uint64_t{p.g.h} * p.g.w;
  const int lanes = 1 << kLanesLog2;
  hist->assign(static_cast<size_t>(p.contexts) * kMaxTokens, 0);
  uint32_t* h = hist->data();
  MapAnalyzer an(p, &s->planes, &s->ctxbuf);
  const CtxFn fn = PickCtxFn(predictor);
  for (uint64_t mi = 0; mi < p.g.maps; mi += m_step) {
    an.Run(q + mi * map_elems, fn);
    const uint16_t* cx = an.Ctx();
    const uint16_t* sy = an.Sym();
    uint32_t* dst = nullptr;
    uint64_t gl = 1;
    if (coded) {
      const uint64_t seg0 = mi / maps_per_segment * maps_per_segment;
      const uint64_t seg1 = std::min<uint64_t>(p.g.maps, seg0 + maps_per_segment);
      const uint64_t g0 = seg0 + (mi - seg0) / lanes * lanes;
      gl = std::min<uint64_t>(lanes, seg1 - g0);
      dst = coded + g0 * map_elems + (mi - g0);
    }
    for (int64_t y = 0; y < p.g.h; ++y) {
      const uint16_t* cr = cx + y * p.stride;
      const uint16_t* sr = sy + y * p.stride;
      for (int64_t x = 0; x < p.g.w; ++x) {
        const uint32_t sv = sr[x];
        uint32_t token = sv, raw = 0;
        if (sv >= static_cast<uint32_t>(kDirectTokens)) Tokenize(sv, &token, &raw);
        const uint32_t idx = cr[x] * static_cast<uint32_t>(kMaxTokens) + token;
        h[idx]++;
        if (dst) {
          *dst = idx << 16 | raw;
          dst += gl;
        }
      }
    }
  }
}

// Ideal code length of a histogram under its own per-context empirical distributions (bits).
double ConditionalEntropyBits(const std::vector<uint32_t>& hist, int contexts) {
  double bits = 0;
  for (int c = 0; c < contexts; ++c) {
    const uint32_t* h = &hist[c * kMaxTokens];
    uint64_t n = 0;
    for (int k = 0; k < kMaxTokens; ++k) n += h[k];
    if (n == 0) continue;
    const double ln = std::log2(static_cast<double>(n));
    for (int k = 0; k < kMaxTokens; ++k) {
      if (!h[k]) continue;
      bits += h[k] * (ln - std::log2(static_cast<double>(h[k])));
      if (k >= kDirectTokens) bits += static_cast<double>(h[k]) * RawBitsOfToken(k);
    }
  }
  return bits;
}

// rANS-codes one group of gl lanes (elements in coding order, pixel-major) backwards.
template <int GL>
inline void EncodeGroup(const uint32_t* coded, uint64_t pixels, const CtxEncEntry* tab, int pb, uint32_t* x,
                        uint16_t** wpp) {
  uint32_t st[GL];
  for (int l = 0; l < GL; ++l) st[l] = x[l];
  uint16_t* wp = *wpp;
  const uint32_t* c = coded + pixels * GL;
  for (uint64_t px = pixels; px-- > 0;) {
    c -= GL;
#pragma GCC unroll 4
    for (int l = GL - 1; l >= 0; --l) {
      const uint32_t v = c[l];
      const CtxEncEntry& e = tab[v >> 16];
      uint32_t s = st[l];
      if (__builtin_expect(e.rb != 0, 0)) {  // raw bits are decoded after the token: encoded before
        const uint32_t f = 1u << (pb - e.rb);
        if (s >= (f << (32 - pb))) *--wp = static_cast<uint16_t>(s), s >>= 16;
        s = ((s >> (pb - e.rb)) << pb) + (s & (f - 1)) + ((v & 0xffff) << (pb - e.rb));
      }
      const bool need = s > e.xmax1;
      wp[-1] = static_cast<uint16_t>(s);
      wp -= need;
      s = need ? s >> 16 : s;
      uint32_t qq = MulHi32(s, e.rcp);
      uint32_t r = s - qq * e.freq;
      const bool fix = r >= e.freq;
      qq += fix;
      r -= fix ? e.freq : 0;
      st[l] = (qq << pb) + r + e.start;
    }
  }
  for (int l = 0; l < GL; ++l) x[l] = st[l];
  *wpp = wp;
}

// Decoder scratch of the semi-static model: rows up to kMaxRingWidth wide keep each lane's last
// three rows in a ring; wider rows are decoded in tiles of that width, with the map's rows staged
// in the output itself (SymbolSink::Stage) until the row two below is decoded. Either way, for
// 4 lanes: rows 96 KiB, Prep 64 KiB, row batches 16 KiB, the padded copy of a segment's last
// words < 128 KiB, plus the tables (contexts x 2^prob_bits x 4 <= 672 KiB): under 1 MiB. The
// adaptive model (at most 2^16 elements) needs its two planes and the symbols: about 1.1 MiB.
constexpr uint32_t kMaxRingWidth = 4096;
// Decoded rows go to the sink in batches of up to this many symbols per lane.
constexpr uint32_t kRowBatch = 4096;

// A segment's words, read in place from the input; once fewer than `need` words remain, from a
// zero-padded copy of the rest, so that a row (or tile) reading at most `need` words never reads
// past the input. The caller checks wp <= limit after each row.
struct SegmentWords {
  const uint8_t* wp;
  const uint8_t* limit;
  size_t need;  // words
  std::vector<uint8_t>* copy;
  bool copied = false;

  void Ensure() {
    const size_t rest = static_cast<size_t>(limit - wp);
    if (copied || rest >= 2 * need) return;
    copy->resize(rest + 2 * need);
    std::memcpy(copy->data(), wp, rest);
    std::memset(copy->data() + rest, 0, 2 * need);
    wp = copy->data();
    limit = wp + rest;
    copied = true;
  }
};

// Decodes one group of gl maps (first map g0) of a segment, rows that fit the ring.
bool DecodeGroupRing(const Params& p, RowTables rt, RowDecoder decode_row, uint64_t g0, int gl, uint32_t* x,
                     SegmentWords* words, ContextScratch* s, const SymbolSink& sink) {
  const uint64_t map_elems = uint64_t{p.g.h} * p.g.w;
  const size_t stride = p.stride, lane_stride = 3 * stride;
  const uint32_t w = p.g.w;
  const uint32_t batch_rows = std::max<uint32_t>(1, kRowBatch / w);
  uint16_t* const ring = s->rows.data();
  // Rows -1 and -2 are zero (the padding above the map), and so are every row's padding columns.
  std::fill(ring, ring + lane_stride * gl, uint16_t{0});
  rt.lane_stride = lane_stride;
  bool ok = true;
  for (uint32_t y = 0; y < p.g.h && ok; ++y) {
    words->Ensure();
    const uint32_t slot = y % 3;
    rt.up = (static_cast<ptrdiff_t>((y + 2) % 3) - slot) * static_cast<ptrdiff_t>(stride);
    rt.up2 = (static_cast<ptrdiff_t>((y + 1) % 3) - slot) * static_cast<ptrdiff_t>(stride);
    uint16_t* rows[1] = {ring + slot * stride + kPadLeft};
    ok &= decode_row(rt, rows, gl, x, &words->wp, w);
    ok &= words->wp <= words->limit;
    const uint32_t in_batch = y % batch_rows;
    for (int l = 0; l < gl; ++l) {
      const uint16_t* src = rows[0] + l * lane_stride;
      uint8_t* dst = s->batch.data() + static_cast<size_t>(l) * batch_rows * w + size_t{in_batch} * w;
      for (uint32_t i = 0; i < w; ++i) dst[i] = static_cast<uint8_t>(src[i]);
    }
    if (in_batch + 1 == batch_rows || y + 1 == p.g.h) {
      const uint32_t y0 = y - in_batch;
      for (int l = 0; l < gl; ++l) {
        sink.Put((g0 + l) * map_elems + uint64_t{y0} * w, s->batch.data() + static_cast<size_t>(l) * batch_rows * w,
                 size_t{in_batch + 1} * w);
      }
    }
  }
  return ok;
}

// The same for rows wider than the ring: tiles of kMaxRingWidth columns in a window per lane
// (rows two above, above and current: slots 0, 1, 2), the map's rows staged in the output until
// the row two below them is decoded.
bool DecodeGroupTiled(const Params& p, RowTables rt, RowDecoder decode_row, uint64_t g0, int gl, uint32_t* x,
                      SegmentWords* words, ContextScratch* s, const SymbolSink& sink) {
  const uint64_t map_elems = uint64_t{p.g.h} * p.g.w;
  const uint32_t w = p.g.w;
  const size_t wstride = kMaxRingWidth + kPadLeft + kPadRight, lane_stride = 3 * wstride;
  uint16_t* const window = s->rows.data();
  rt.lane_stride = lane_stride;
  rt.up = -static_cast<ptrdiff_t>(wstride);
  rt.up2 = -2 * static_cast<ptrdiff_t>(wstride);
  auto row_at = [&](int l, uint32_t y) { return (g0 + l) * map_elems + uint64_t{y} * w; };
  bool ok = true;
  for (uint32_t y = 0; y < p.g.h && ok; ++y) {
    for (uint32_t x0 = 0; x0 < w && ok; x0 += kMaxRingWidth) {
      const uint32_t cw = std::min(kMaxRingWidth, w - x0);
      words->Ensure();
      for (int l = 0; l < gl; ++l) {
        uint16_t* up2 = window + l * lane_stride + kPadLeft;
        uint16_t* up = up2 + wstride;
        uint16_t* cur = up + wstride;
        if (y >= 2) {
          const uint8_t* h = sink.Stage(row_at(l, y - 2), w) + x0;
          for (uint32_t i = 0; i < cw; ++i) up2[i] = h[i];
        } else {
          std::fill(up2, up2 + cw, uint16_t{0});
        }
        if (y >= 1) {
          const uint8_t* h = sink.Stage(row_at(l, y - 1), w) + x0;
          up[-1] = x0 > 0 ? h[-1] : 0;
          for (uint32_t i = 0; i < cw; ++i) up[i] = h[i];
          up[cw] = x0 + cw < w ? h[cw] : 0;
        } else {
          std::fill(up - 1, up + cw + 1, uint16_t{0});
        }
        const uint8_t* h = sink.Stage(row_at(l, y), w) + x0;
        cur[-2] = x0 > 0 ? h[-2] : 0;
        cur[-1] = x0 > 0 ? h[-1] : 0;
      }
      uint16_t* rows[1] = {window + 2 * wstride + kPadLeft};
      ok &= decode_row(rt, rows, gl, x, &words->wp, cw);
      ok &= words->wp <= words->limit;
      for (int l = 0; l < gl; ++l) {
        const uint16_t* cur = rows[0] + l * lane_stride;
        uint8_t* h = sink.Stage(row_at(l, y), w) + x0;
        for (uint32_t i = 0; i < cw; ++i) h[i] = static_cast<uint8_t>(cur[i]);
      }
    }
    if (ok && y >= 2) {
      for (int l = 0; l < gl; ++l) sink.Commit(row_at(l, y - 2), w);
    }
  }
  if (!ok) return false;
  for (uint32_t y = p.g.h >= 2 ? p.g.h - 2 : 0; y < p.g.h; ++y) {
    for (int l = 0; l < gl; ++l) sink.Commit(row_at(l, y), w);
  }
  return true;
}

}  // namespace

void EncodeContextBody(const uint8_t* q, const std::vector<int64_t>& shape, int qbits, int32_t zero_point,
                       ContextScratch* s, std::vector<uint8_t>* out, ContextStats* stats) {
  const Params p = MakeParams(shape, qbits, zero_point);
  const uint64_t map_elems = uint64_t{p.g.h} * p.g.w;
  const int lanes = 1 << kLanesLog2;
  uint64_t maps_per_segment = std::max<uint64_t>(1, kSegmentTargetElements / std::max<uint64_t>(map_elems, 1));
  maps_per_segment = std::min<uint64_t>(p.g.maps, (maps_per_segment + lanes - 1) / lanes * lanes);
  const uint64_t t = map_elems * p.g.maps;

  // Pass 1: choose the predictor. On large tensors a sample of the maps decides when the two
  // estimates are clearly apart (> 2%); otherwise both are analysed in full and the smaller
  // exact cost (payload + tables) wins.
  std::vector<uint32_t>& hist = s->hist;
  std::vector<uint32_t>& hist_alt = s->hist_alt;
  std::vector<uint32_t> freqs, freqs_alt;
  int pb = 0, pb_alt = 0;
  uint8_t predictor = 0;
  bool decided = false;
  if (t >= kSampleMinElements && p.g.maps >= 4 * kSampleStep) {
    AnalyzeMaps(q, p, maps_per_segment, 0, kSampleStep, s, nullptr, &hist);
    AnalyzeMaps(q, p, maps_per_segment, 1, kSampleStep, s, nullptr, &hist_alt);
    const double e0 = ConditionalEntropyBits(hist, p.contexts), e1 = ConditionalEntropyBits(hist_alt, p.contexts);
    if (std::abs(e0 - e1) > 0.02 * std::min(e0, e1)) {
      predictor = e1 < e0 ? 1 : 0;
      decided = true;
    }
  }
  s->coded.resize(t);
  if (decided) {
    AnalyzeMaps(q, p, maps_per_segment, predictor, 1, s, s->coded.data(), &hist);
    ChooseTables(hist, p.contexts, &pb, &freqs);
  } else {
    s->coded_alt.resize(t);
    AnalyzeMaps(q, p, maps_per_segment, 0, 1, s, s->coded.data(), &hist);
    const double cost = ChooseTables(hist, p.contexts, &pb, &freqs);
    AnalyzeMaps(q, p, maps_per_segment, 1, 1, s, s->coded_alt.data(), &hist_alt);
    const double cost_alt = ChooseTables(hist_alt, p.contexts, &pb_alt, &freqs_alt);
    if (cost_alt < cost) {
      predictor = 1;
      s->coded.swap(s->coded_alt);
      hist.swap(hist_alt);
      freqs.swap(freqs_alt);
      pb = pb_alt;
    }
  }

  const size_t begin = out->size();
  ByteWriter w(out);
  w.U8(kSemiStatic);
  w.U8(predictor);
  w.U8(static_cast<uint8_t>(kLanesLog2));
  w.U8(static_cast<uint8_t>(pb));
  w.U32(static_cast<uint32_t>(maps_per_segment));
  std::vector<CtxEncEntry>& enc = s->enc;
  enc.assign(hist.size(), CtxEncEntry{});
  double model_bits = 0;
  for (int c = 0; c < p.contexts; ++c) {
    const uint32_t* f = &freqs[c * kMaxTokens];
    uint32_t a = 0;
    for (int k = 0; k < kMaxTokens; ++k)
      if (hist[c * kMaxTokens + k]) a = k + 1;
    w.Varint(a);
    uint32_t start = 0;
    for (uint32_t k = 0; k < a; ++k) {
      w.Varint(f[k]);
      CtxEncEntry& e = enc[c * kMaxTokens + k];
      e.rb = static_cast<uint32_t>(RawBitsOfToken(k));
      if (f[k] == (1u << pb)) {  // the context's only token: costs nothing
        e.rcp = 1u << (32 - pb), e.xmax1 = 0xFFFFFFFFu, e.freq = static_cast<uint16_t>(f[k]), e.start = 0;
      } else if (f[k]) {
        e.rcp = RansReciprocal(f[k]), e.xmax1 = (f[k] << (32 - pb)) - 1;
        e.freq = static_cast<uint16_t>(f[k]), e.start = static_cast<uint16_t>(start);
        if (stats) model_bits += hist[c * kMaxTokens + k] * (pb - std::log2(static_cast<double>(f[k])));
      }
      if (stats) model_bits += static_cast<double>(hist[c * kMaxTokens + k]) * e.rb;
      start += f[k];
    }
  }
  const size_t param_bytes = out->size() - begin;

  // Pass 2: rANS in reverse coding order, one interleaved block per segment.
  for (uint64_t m0 = 0; m0 < p.g.maps; m0 += maps_per_segment) {
    const uint64_t m1 = std::min<uint64_t>(p.g.maps, m0 + maps_per_segment);
    const uint64_t seg_elems = (m1 - m0) * map_elems;
    if (s->words.size() < 2 * seg_elems + 16) s->words.resize(2 * seg_elems + 16);
    uint16_t* end = s->words.data() + s->words.size();
    uint16_t* wp = end;
    uint32_t x[1 << kLanesLog2];
    for (int l = 0; l < lanes; ++l) x[l] = kRansL;
    // Groups in reverse; element e of a group = pixel * gl + lane.
    for (uint64_t g0 = m0 + ((m1 - m0 - 1) / lanes) * lanes;; g0 -= lanes) {
      const int gl = static_cast<int>(std::min<uint64_t>(lanes, m1 - g0));
      const uint32_t* group = s->coded.data() + g0 * map_elems;
      switch (gl) {
        case 4: EncodeGroup<4>(group, map_elems, enc.data(), pb, x, &wp); break;
        case 3: EncodeGroup<3>(group, map_elems, enc.data(), pb, x, &wp); break;
        case 2: EncodeGroup<2>(group, map_elems, enc.data(), pb, x, &wp); break;
        default: EncodeGroup<1>(group, map_elems, enc.data(), pb, x, &wp); break;
      }
      if (g0 == m0) break;
    }
    for (int l = 0; l < lanes; ++l) w.U32(x[l]);
    w.Varint(static_cast<uint64_t>(end - wp));
    w.Raw(wp, 2 * static_cast<size_t>(end - wp));
  }
  if (stats) {
    stats->steps = t;
    stats->param_bytes = param_bytes;
    stats->payload_bytes = out->size() - begin - param_bytes;
    stats->model_bits = model_bits;
  }

  // Small tensors: the adaptive model sends no tables; keep it when it is smaller.
  if (t <= kAdaptiveMaxElements) {
    for (uint8_t pred = 0; pred < kNumPredictors; ++pred) {
      std::vector<uint8_t>& alt = s->alt;
      alt.clear();
      ByteWriter aw(&alt);
      aw.U8(kAdaptive);
      aw.U8(pred);
      aw.U8(static_cast<uint8_t>(kLanesLog2));
      const bool want_bits = stats != nullptr;
      const double bits = EncodeAdaptiveModel(pred, q, p, s, &alt, want_bits);
      if (alt.size() < out->size() - begin) {
        out->resize(begin);
        out->insert(out->end(), alt.begin(), alt.end());
        if (stats) *stats = ContextStats{t, 3, alt.size() - 3, bits};
      }
    }
  }
}

Status DecodeContextBody(ByteReader* r, const std::vector<int64_t>& shape, int qbits, int32_t zero_point,
                         ContextScratch* s, const SymbolSink& sink, ContextStats* stats) {
  const Params p = MakeParams(shape, qbits, zero_point);
  const uint64_t map_elems = uint64_t{p.g.h} * p.g.w;
  if (map_elems == 0 || p.g.maps == 0) return Corrupt("context layout for an empty tensor");
  const uint8_t* begin = r->pos();
  uint8_t kind_byte, predictor, lanes_log2, pb;
  uint32_t maps_per_segment;
  SPLITRANS_RETURN_IF_ERROR(r->U8(&kind_byte, "context model kind"));
  SPLITRANS_RETURN_IF_ERROR(r->U8(&predictor, "context predictor"));
  SPLITRANS_RETURN_IF_ERROR(r->U8(&lanes_log2, "context lanes"));
  if (kind_byte > kAdaptive) return Corrupt("context model kind " + std::to_string(kind_byte) + " unknown");
  if (predictor >= kNumPredictors) return Corrupt("context predictor " + std::to_string(predictor) + " unknown");
  if (lanes_log2 != kLanesLog2) return Corrupt("context lanes_log2 " + std::to_string(lanes_log2) + " is not 2");
  if (kind_byte == kAdaptive) {
    const uint64_t t = map_elems * p.g.maps;
    if (t > kAdaptiveMaxElements) return Corrupt("adaptive context model on a large tensor");
    // At most 2^16 elements: the planes and symbols (about 1.1 MiB at most) need no bound of their own.
    s->qbuf.resize(t);
    SPLITRANS_RETURN_IF_ERROR(DecodeAdaptiveModel(predictor, r, p, s, s->qbuf.data()));
    sink.Put(0, s->qbuf.data(), t);
    if (stats) *stats = ContextStats{t, 3, static_cast<size_t>(r->pos() - begin) - 3, 0};
    return Status::Ok();
  }
  SPLITRANS_RETURN_IF_ERROR(r->U8(&pb, "context prob_bits"));
  SPLITRANS_RETURN_IF_ERROR(r->U32(&maps_per_segment, "context maps per segment"));
  if (pb < kMinProbBits || pb > kMaxCtxProbBits) {
    return Corrupt("context prob_bits " + std::to_string(pb) + " out of range 8..12");
  }
  if (maps_per_segment == 0) return Corrupt("context maps per segment is 0");
  const int lanes = 1 << lanes_log2;

  // Symbols >= 16 (tokens with raw bits) are possible only when the largest valid symbol is.
  const uint32_t max_symbol = predictor == 0 && p.base == 0 ? p.qmask : 2 * p.qmask;
  const bool raw = max_symbol >= static_cast<uint32_t>(kDirectTokens);
  // Tables -> per-context decode tables (MakeDecEntry); contexts that never occur are "bad".
  const uint32_t one = 1u << pb;
  s->dtab.resize(static_cast<size_t>(p.contexts) << pb);
  for (int c = 0; c < p.contexts; ++c) {
    uint32_t* dt = &s->dtab[static_cast<size_t>(c) << pb];
    uint32_t a;
    SPLITRANS_RETURN_IF_ERROR(r->Varint(&a, kMaxTokens, "context table size"));
    if (a == 0) {
      for (uint32_t j = 0; j < one; ++j) dt[j] = MakeDecEntry(1, 0, one, j);
      continue;
    }
    uint32_t sum = 0;
    for (uint32_t k = 0; k < a; ++k) {
      uint32_t f;
      SPLITRANS_RETURN_IF_ERROR(r->Varint(&f, one, "context frequency"));
      if (sum + f > one) return Corrupt("context table frequencies exceed 2^prob_bits");
      // Without raw bits (small alphabets) tokens are symbols: one above max_symbol is invalid.
      const uint32_t bad = !raw && k > max_symbol;  // a symbol above the largest valid one
      for (uint32_t j = 0; j < f; ++j) dt[sum + j] = MakeDecEntry(bad, k, f, f == one ? sum + j : j);
      sum += f;
    }
    if (sum != one) return Corrupt("context table frequencies sum to " + std::to_string(sum));
  }
  const size_t param_bytes = static_cast<size_t>(r->pos() - begin);
  const RowDecoder decode_row = predictor == 1   ? PickRowDecoder<MedModel>(pb, raw)
                                : p.base == 0 ? PickRowDecoder<LevelZeroModel>(pb, raw)
                                              : PickRowDecoder<LevelModel>(pb, raw);
  const uint32_t w = p.g.w;
  const bool ring = w <= kMaxRingWidth;
  const uint32_t width = ring ? w : kMaxRingWidth;  // of a row or tile
  s->pre.resize(static_cast<size_t>(width) * lanes);
  s->rows.resize(3 * static_cast<size_t>(width + kPadLeft + kPadRight) * lanes);
  if (ring) s->batch.resize(static_cast<size_t>(lanes) * std::max<uint32_t>(1, kRowBatch / w) * w);
  uint32_t level_lut[kLevelLutSize];
  FillLevelLut(pb, level_lut);
  const RowTables rt{s->dtab.data(), pb, p.cap, 0, 0, p.qmask, p.base, s->pre.data(), 0, level_lut};

  for (uint64_t m0 = 0; m0 < p.g.maps; m0 += maps_per_segment) {
    const uint64_t m1 = std::min<uint64_t>(p.g.maps, m0 + maps_per_segment);
    uint32_t x[1 << kLanesLog2];
    for (int l = 0; l < lanes; ++l) {
      SPLITRANS_RETURN_IF_ERROR(r->U32(&x[l], "context state"));
      if (x[l] < kRansL) return Corrupt("context state below 2^16");
    }
    uint32_t words;
    const uint64_t max_words = 2 * (m1 - m0) * map_elems;  // at most two words per element
    SPLITRANS_RETURN_IF_ERROR(
        r->Varint(&words, static_cast<uint32_t>(std::min<uint64_t>(max_words, 0xFFFFFFFFu)), "context word count"));
    const uint8_t* wbytes;
    SPLITRANS_RETURN_IF_ERROR(r->Span(&wbytes, 2ull * words, "context words"));
    // A row (or tile) of a group reads at most two words per element and lane.
    SegmentWords sw{wbytes, wbytes + 2ull * words, 2 * static_cast<size_t>(width) * lanes, &s->wordbuf};
    bool ok = true;
    for (uint64_t g0 = m0; g0 < m1 && ok; g0 += lanes) {
      const int gl = static_cast<int>(std::min<uint64_t>(lanes, m1 - g0));
      ok = ring ? DecodeGroupRing(p, rt, decode_row, g0, gl, x, &sw, s, sink)
                : DecodeGroupTiled(p, rt, decode_row, g0, gl, x, &sw, s, sink);
    }
    if (!ok) return Corrupt("context segment at map " + std::to_string(m0) + " decodes to invalid data");
    if (sw.wp != sw.limit) return Corrupt("context segment at map " + std::to_string(m0) + " has unused words");
    for (int l = 0; l < lanes; ++l)
      if (x[l] != kRansL) return Corrupt("context segment at map " + std::to_string(m0) + " does not end cleanly");
  }
  if (stats) {
    stats->steps = map_elems * p.g.maps;
    stats->param_bytes = param_bytes;
    stats->payload_bytes = static_cast<size_t>(r->pos() - begin) - param_bytes;
  }
  return Status::Ok();
}

}  // namespace splitrans::codec

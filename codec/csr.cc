// Modified CSR and the paper's N search.
#include "codec/csr.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <numeric>
#include <string>

#include "codec/quantize.h"
#include "codec/rans_stream.h"
#include "codec/wire.h"

namespace splitrans::codec {

void BuildCsr(const uint8_t* q, uint32_t n, uint32_t k, Csr* csr) {
  csr->v.clear();
  csr->c.clear();
  csr->r.assign(n, 0);
  for (uint32_t row = 0; row < n; ++row) {
    const uint8_t* p = q + static_cast<uint64_t>(row) * k;
    uint16_t count = 0;
    for (uint32_t col = 0; col < k; ++col) {
      if (p[col]) {
        csr->v.push_back(p[col]);
        csr->c.push_back(static_cast<uint16_t>(col));
        ++count;
      }
    }
    csr->r[row] = count;
  }
}

Status ExpandCsr(const uint16_t* v, const uint16_t* c, const uint16_t* r, uint64_t nnz, uint32_t n, uint32_t k,
                 uint32_t max_value, uint8_t* q) {
  uint64_t pos = 0;
  for (uint32_t row = 0; row < n; ++row) {
    uint8_t* dst = q + static_cast<uint64_t>(row) * k;
    for (uint32_t col = 0; col < k; ++col) dst[col] = 0;
    if (r[row] > k) return Corrupt("CSR row " + std::to_string(row) + " claims " + std::to_string(r[row]) + " > K nonzeros");
    if (pos + r[row] > nnz) return Corrupt("CSR row counts exceed the number of values");
    int prev = -1;
    for (uint32_t e = 0; e < r[row]; ++e, ++pos) {
      if (c[pos] >= k || static_cast<int>(c[pos]) <= prev) {
        return Corrupt("CSR column index " + std::to_string(c[pos]) + " invalid in row " + std::to_string(row));
      }
      if (v[pos] == 0 || v[pos] > max_value) return Corrupt("CSR value " + std::to_string(v[pos]) + " out of range");
      prev = c[pos];
      dst[c[pos]] = static_cast<uint8_t>(v[pos]);
    }
  }
  if (pos != nnz) return Corrupt("CSR row counts sum to " + std::to_string(pos) + ", not " + std::to_string(nnz));
  return Status::Ok();
}

Status ExpandCsrStreams(StreamCursor* v, StreamCursor* c, StreamCursor* r, uint64_t nnz, uint32_t n, uint32_t k,
                        uint32_t max_value, std::vector<uint8_t>* rows, const SymbolSink& sink) {
  // Rows go to the sink a few at a time (short rows are the rule: K <= 2^Q in the encoder).
  constexpr uint32_t kChunkElements = 16384;
  const uint32_t rows_per_chunk = std::max<uint32_t>(1, kChunkElements / k);
  rows->resize(size_t{rows_per_chunk} * k);
  const uint16_t *vp = nullptr, *cp = nullptr, *rp = nullptr;
  uint32_t va = 0, ca = 0, ra = 0;  // symbols left in the runs vp, cp, rp
  uint64_t pos = 0;
  for (uint32_t row0 = 0; row0 < n; row0 += rows_per_chunk) {
    const uint32_t nr = std::min(rows_per_chunk, n - row0);
    uint8_t* chunk = rows->data();
    std::memset(chunk, 0, size_t{nr} * k);
    for (uint32_t i = 0; i < nr; ++i) {
      const uint32_t row = row0 + i;
      if (ra == 0) SPLITRANS_RETURN_IF_ERROR(r->Next(&rp, &ra));
      const uint32_t count = *rp++;
      --ra;
      if (count > k) return Corrupt("CSR row " + std::to_string(row) + " claims " + std::to_string(count) + " > K nonzeros");
      if (pos + count > nnz) return Corrupt("CSR row counts exceed the number of values");
      uint8_t* dst = chunk + size_t{i} * k;
      int prev = -1;
      for (uint32_t left = count; left > 0;) {
        if (va == 0) SPLITRANS_RETURN_IF_ERROR(v->Next(&vp, &va));
        if (ca == 0) SPLITRANS_RETURN_IF_ERROR(c->Next(&cp, &ca));
        const uint32_t m = std::min({left, va, ca});
        for (uint32_t e = 0; e < m; ++e) {
          const uint32_t col = cp[e], val = vp[e];
          if (col >= k || static_cast<int>(col) <= prev) {
            return Corrupt("CSR column index " + std::to_string(col) + " invalid in row " + std::to_string(row));
          }
          if (val == 0 || val > max_value) return Corrupt("CSR value " + std::to_string(val) + " out of range");
          prev = static_cast<int>(col);
          dst[col] = static_cast<uint8_t>(val);
        }
        vp += m, cp += m, va -= m, ca -= m, left -= m;
      }
      pos += count;
    }
    sink.Put(uint64_t{row0} * k, chunk, size_t{nr} * k);
  }
  if (pos != nnz) return Corrupt("CSR row counts sum to " + std::to_string(pos) + ", not " + std::to_string(nnz));
  return Status::Ok();
}

Status OpenPaperCursors(const ParsedStream& d, uint32_t nnz, std::vector<uint16_t> keep[2], StreamCursor cursors[3]) {
  const uint32_t begin[4] = {0, nnz, 2 * nnz, d.n};
  const uint16_t* tail = nullptr;
  uint32_t tail_lo = 0;
  for (int i = 2; i >= 0; --i) {
    uint32_t kept = 0;
    std::vector<uint16_t>* k = i > 0 ? &keep[i - 1] : nullptr;
    SPLITRANS_RETURN_IF_ERROR(cursors[i].Open(&d, begin[i], begin[i + 1], tail, tail_lo, k, kPaperKeep, &kept));
    if (kept) tail = k->data(), tail_lo = begin[i] - kept;
  }
  return Status::Ok();
}

std::vector<uint32_t> PaperDomain(uint64_t t, int q) {
  std::vector<uint32_t> out;
  if (t < 2) return out;
  const uint64_t sqrt_t = static_cast<uint64_t>(std::sqrt(static_cast<double>(t)));
  uint64_t s = sqrt_t;
  while (s * s > t) --s;
  while ((s + 1) * (s + 1) <= t) ++s;
  const uint64_t qmax = uint64_t{1} << q;
  const uint64_t n_min = std::max<uint64_t>(s + 1, (t + qmax - 1) / qmax);
  // Divisors come in pairs (d, t/d); N = t/d for small d = K covers N >= n_min fast.
  for (uint64_t k = 1; k <= qmax && k <= t; ++k) {
    if (t % k) continue;
    uint64_t n = t / k;
    if (n >= n_min && n <= 0xFFFFFFFFu) out.push_back(static_cast<uint32_t>(n));
  }
  return out;  // K ascending == N descending
}

void PaperCost(const uint8_t* q, uint64_t t, uint32_t n, uint64_t* len_d, double* entropy) {
  const uint32_t k = static_cast<uint32_t>(t / n);
  const uint32_t alphabet = std::max<uint32_t>(256, k + 1);
  std::vector<uint32_t> hist(alphabet, 0);
  uint64_t nnz = 0;
  for (uint32_t row = 0; row < n; ++row) {
    const uint8_t* p = q + static_cast<uint64_t>(row) * k;
    uint32_t count = 0;
    for (uint32_t col = 0; col < k; ++col) {
      if (p[col]) {
        hist[p[col]]++;
        hist[col]++;
        ++count;
      }
    }
    hist[count]++;
    nnz += count;
  }
  *len_d = 2 * nnz + n;
  *entropy = *len_d ? EntropyBits(hist.data(), alphabet) / static_cast<double>(*len_d) : 0.0;
}

size_t Algorithm1Choice(const std::vector<double>& costs, size_t* visited) {
  double best = INFINITY, prev = INFINITY;
  size_t best_i = 0, i = 0;
  for (; i < costs.size(); ++i) {
    if (costs[i] < best) {
      best = costs[i];
      best_i = i;
    }
    if (costs[i] > prev) {
      ++i;
      break;
    }
    prev = costs[i];
  }
  if (visited) *visited = i;
  return best_i;
}

size_t ExhaustiveChoice(const std::vector<double>& costs) {
  size_t best_i = 0;
  for (size_t i = 1; i < costs.size(); ++i)
    if (costs[i] < costs[best_i]) best_i = i;
  return best_i;
}

namespace {

// r[i] = number of nonzeros among q[i * F, (i + 1) * F).
template <int F>
void MaskRowCountsF(const uint8_t* q, uint64_t n, uint16_t* r) {
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t sum = 0;
    for (int j = 0; j < F; ++j) sum += q[i * F + j] != 0;
    r[i] = static_cast<uint16_t>(sum);
  }
}

void MaskRowCounts(const uint8_t* q, uint64_t n, uint64_t f, uint16_t* r) {
  switch (f) {
    case 2: return MaskRowCountsF<2>(q, n, r);
    case 3: return MaskRowCountsF<3>(q, n, r);
    case 4: return MaskRowCountsF<4>(q, n, r);
    case 5: return MaskRowCountsF<5>(q, n, r);
    case 7: return MaskRowCountsF<7>(q, n, r);
    case 8: return MaskRowCountsF<8>(q, n, r);
    default:
      for (uint64_t i = 0; i < n; ++i) {
        uint32_t sum = 0;
        for (uint64_t j = 0; j < f; ++j) sum += q[i * f + j] != 0;
        r[i] = static_cast<uint16_t>(sum);
      }
  }
}

uint32_t CountEqual(const uint16_t* r, uint64_t n, uint16_t v) {
  uint32_t c = 0;
  for (uint64_t i = 0; i < n; ++i) c += r[i] == v;
  return c;
}

}  // namespace

AutoBounds LayoutLowerBounds(const uint8_t* q, uint64_t t, int qbits, size_t rank, size_t best,
                             BoundsScratch* scratch) {
  // Every rANS stream codes its symbols with one order-0 table, so its payload is at least the
  // empirical order-0 entropy of what it codes (the cross-entropy under any table is at least
  // that); kBoundSlack leaves room for rANS's per-step rounding.
  constexpr double kBoundSlack = 0.995;
  const size_t fixed = kFixedHeaderBytes + 4 * rank + kChecksumBytes;
  AutoBounds b;
  uint32_t counts[256];
  Histogram256(q, t, counts, qbits);
  const uint32_t alphabet = 1u << qbits;
  b.dense = fixed + 1 + static_cast<size_t>(kBoundSlack * EntropyBits(counts, alphabet) / 8);
  // Sparse: v holds the nonzero values whatever N is; c's column histogram depends on K only.
  const uint64_t nnz = t - counts[0];
  counts[0] = 0;
  const double v_bits = EntropyBits(counts, alphabet);
  // v is one stream whatever N is. With two or more distinct values it is a rANS stream, which
  // spends besides its payload at least its count, 3 parameter bytes, its alphabet size and one
  // byte per frequency up to its largest symbol (FORMAT.md "rANS stream"): part of the bound too.
  // On dense, signed tensors at high Q that table is what keeps sparse from being tried in vain.
  uint32_t v_distinct = 0, v_last = 0;
  for (uint32_t s = 1; s < alphabet; ++s) {
    if (counts[s]) ++v_distinct, v_last = s;
  }
  auto varint_bytes = [](uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) v >>= 7, ++n;
    return n;
  };
  const size_t v_header = v_distinct >= 2 ? varint_bytes(nnz) + 3 + varint_bytes(v_last + 1) + (v_last + 1) : 0;
  const size_t sparse_fixed = fixed + 8 + 3 + v_header;
  b.sparse = sparse_fixed + static_cast<size_t>(kBoundSlack * v_bits / 8);
  if (b.sparse >= best || nnz == 0) return b;
  // Refined per N: c's column histogram and r's histogram of nonzeros per row. Column counts
  // for every K = T / N of the domain come from one pass (nonzeros per position modulo
  // L = lcm of the K, when L is small); row counts for K from those of the largest divisor of K
  // already done (rows of K / 2 in pairs, and so on; the mask itself for K' = 1).
  std::vector<uint32_t> domain = PaperDomain(t, qbits);
  if (domain.empty()) return b;
  uint64_t lcm = 1;
  for (uint32_t n : domain) {
    const uint64_t k = t / n;
    if (k > 65535) return b;
    lcm = lcm / std::gcd(lcm, k) * k;
    if (lcm > (uint64_t{1} << 16)) return b;
  }
  scratch->cnt.assign(lcm, 0);
  uint32_t* cnt = scratch->cnt.data();
  for (uint64_t i0 = 0; i0 < t; i0 += lcm) {
    const uint8_t* blk = q + i0;
    for (uint64_t j = 0; j < lcm; ++j) cnt[j] += blk[j] != 0;
  }
  std::sort(domain.begin(), domain.end(), std::greater<uint32_t>());  // ascending K
  if (scratch->rows.size() < domain.size()) scratch->rows.resize(domain.size());
  std::vector<uint64_t> done_k;
  const double need_bits = (static_cast<double>(best) - static_cast<double>(sparse_fixed)) * 8 / kBoundSlack;
  double min_bits = INFINITY;
  for (size_t di = 0; di < domain.size(); ++di) {
    const uint64_t n = domain[di], k = t / n;
    std::vector<uint32_t>& col = scratch->col;
    col.assign(k, 0);
    for (uint64_t j = 0; j < lcm; ++j) col[j % k] += cnt[j];
    double bits = EntropyBits(col.data(), static_cast<uint32_t>(k));
    std::vector<uint16_t>& r = scratch->rows[di];
    r.clear();
    done_k.push_back(k);
    if (k == 1) {  // r is the nonzero mask itself (c is all zeros): exact
      const uint32_t rc[2] = {static_cast<uint32_t>(t - nnz), static_cast<uint32_t>(nnz)};
      min_bits = std::min(min_bits, bits + EntropyBits(rc, 2));
      continue;
    }
    // r's entropy only where v and c alone do not already reach best (rows computed then).
    if (v_bits + bits < need_bits) {
      const uint16_t* src = nullptr;  // nullptr: the mask of q
      uint64_t kd = 1;
      for (size_t i = 0; i + 1 < done_k.size(); ++i) {
        if (k % done_k[i] == 0 && done_k[i] > kd && !scratch->rows[i].empty()) {
          kd = done_k[i];
          src = scratch->rows[i].data();
        }
      }
      const uint64_t f = k / kd;
      r.resize(n);
      if (src == nullptr) {
        MaskRowCounts(q, n, f, r.data());
      } else if (f == 2) {
        for (uint64_t i = 0; i < n; ++i) r[i] = static_cast<uint16_t>(src[2 * i] + src[2 * i + 1]);
      } else {
        for (uint64_t i = 0; i < n; ++i) {
          uint32_t sum = 0;
          for (uint64_t j = 0; j < f; ++j) sum += src[i * f + j];
          r[i] = static_cast<uint16_t>(sum);
        }
      }
      std::vector<uint32_t>& rh = scratch->hist;
      rh.assign(4 * (k + 1), 0);
      uint32_t* h = rh.data();
      if (k <= 16) {  // one counting pass per value (vectorized) beats scattered increments
        for (uint64_t v = 0; v <= k; ++v) h[v] = CountEqual(r.data(), n, static_cast<uint16_t>(v));
      } else {
        uint64_t i = 0;
        for (; i + 4 <= n; i += 4) {  // four histograms: no store-to-load chain on repeats
          h[r[i]]++;
          h[k + 1 + r[i + 1]]++;
          h[2 * (k + 1) + r[i + 2]]++;
          h[3 * (k + 1) + r[i + 3]]++;
        }
        for (; i < n; ++i) h[r[i]]++;
        for (uint64_t j = 0; j <= k; ++j) h[j] += h[k + 1 + j] + h[2 * (k + 1) + j] + h[3 * (k + 1) + j];
      }
      bits += EntropyBits(h, static_cast<uint32_t>(k + 1));
    }
    min_bits = std::min(min_bits, bits);
  }
  b.sparse = sparse_fixed + static_cast<size_t>(kBoundSlack * (v_bits + min_bits) / 8);
  return b;
}

}  // namespace splitrans::codec

// Modified CSR and the paper's N search.
#include "codec/csr.h"

#include <cmath>
#include <string>

#include "codec/rans_stream.h"

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

}  // namespace splitrans::codec

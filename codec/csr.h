// The paper's modified CSR (v, c, r with non-cumulative row counts) and its N search
// (Algorithm 1 and the exhaustive reference over the same domain).
#pragma once

#include <cstdint>
#include <vector>

#include "codec/codec.h"
#include "codec/status.h"

namespace splitrans::codec {

struct Csr {
  std::vector<uint16_t> v;  // nonzero quantized values, row-major order
  std::vector<uint16_t> c;  // their column indices (0..K-1)
  std::vector<uint16_t> r;  // nonzeros per row (0..K), N entries
};

// REQUIRES: n * k == number of elements of q (host), k <= 65535.
void BuildCsr(const uint8_t* q, uint32_t n, uint32_t k, Csr* csr);

// Rebuilds q (host, n * k entries) from v, c, r, validating every index.
Status ExpandCsr(const uint16_t* v, const uint16_t* c, const uint16_t* r, uint64_t nnz, uint32_t n, uint32_t k,
                 uint32_t max_value, uint8_t* q);

// The candidates Algorithm 1 may visit: divisors N of T with N > sqrt(T) and T/N <= 2^q,
// in descending order of N.
std::vector<uint32_t> PaperDomain(uint64_t t, int q);

// Algorithm 1's objective for one N: |D| and H(D) (merged table) in bits per symbol.
void PaperCost(const uint8_t* q, uint64_t t, uint32_t n, uint64_t* len_d, double* entropy);

// Indices into `costs` (aligned with PaperDomain order) chosen by Algorithm 1 (walk in order,
// keep the best, stop at the first cost above the previous one) and by exhaustive search.
// visited: how many candidates Algorithm 1 evaluated. REQUIRES: !costs.empty().
size_t Algorithm1Choice(const std::vector<double>& costs, size_t* visited);
size_t ExhaustiveChoice(const std::vector<double>& costs);

}  // namespace splitrans::codec

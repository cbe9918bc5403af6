// The paper's modified CSR (v, c, r with non-cumulative row counts) and its N search
// (Algorithm 1 and the exhaustive reference over the same domain).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "codec/codec.h"
#include "codec/quantize.h"
#include "codec/rans_stream.h"
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

// Expands the CSR that cursors v, c and r yield (nnz, nnz and n symbols) into sink elements
// [0, n * k), rows in order, with ExpandCsr's checks (same codes). rows: scratch, at most
// max(k, 16384) bytes.
Status ExpandCsrStreams(StreamCursor* v, StreamCursor* c, StreamCursor* r, uint64_t nnz, uint32_t n, uint32_t k,
                        uint32_t max_value, std::vector<uint8_t>* rows, const SymbolSink& sink);

// The paper layout's leading symbols of a block kept per cursor: at most this many.
constexpr uint32_t kPaperKeep = 1u << 16;

// Opens cursors over v = D[0, nnz), c = D[nnz, 2 nnz) and r = D[2 nnz, |D|) of the paper
// layout's stream d, last to first: a cursor that starts inside a block keeps the block's leading
// symbols in keep[] (2 x at most kPaperKeep symbols) for the cursor before it, so that no block
// is decoded twice (blocks of the encoder's 2^16 symbols never are). REQUIRES: 2 nnz < d.n.
Status OpenPaperCursors(const ParsedStream& d, uint32_t nnz, std::vector<uint16_t> keep[2], StreamCursor cursors[3]);

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

// Lower bounds on the encoded size (whole bitstream, bytes) of the dense and sparse layouts for
// q[0, T) with `rank` dimensions, from order-0 entropies: auto mode skips a layout whose bound
// cannot beat `best`, the size it already has. The sparse bound is refined (column entropies for
// every N of the domain) only when its first form does not already reach best.
struct AutoBounds {
  size_t dense = 0;
  size_t sparse = 0;
};
struct BoundsScratch {
  std::vector<uint32_t> cnt, col, hist;
  std::vector<std::vector<uint16_t>> rows;
};
AutoBounds LayoutLowerBounds(const uint8_t* q, uint64_t t, int qbits, size_t rank, size_t best,
                             BoundsScratch* scratch);

}  // namespace splitrans::codec

// Order-0 entropy of a bitstream's rANS sections recomputed from its quantized symbols, for the
// tools (splitrans-codec inspect, codec_bench) while codec::Inspect leaves entropy_bits at 0.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "codec/codec.h"

namespace splitrans::codec::tools {

// A section coded with rANS (payload bytes present) always has positive ideal length, so a
// zero there means the codec did not report it.
inline bool EntropyMissing(const BitstreamInfo::Section& s) { return s.payload_bytes > 0 && s.entropy_bits == 0; }

inline bool AnyEntropyMissing(const BitstreamInfo& info) {
  for (const auto& s : info.sections)
    if (EntropyMissing(s)) return true;
  return false;
}

// sum_s c_s * log2(total / c_s): the ideal order-0 code length of the counted symbols, in bits.
inline double EntropyBitsOf(const std::vector<uint64_t>& counts) {
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  if (total == 0) return 0;
  const double lt = std::log2(static_cast<double>(total));
  double bits = 0;
  for (uint64_t c : counts)
    if (c) bits += static_cast<double>(c) * (lt - std::log2(static_cast<double>(c)));
  return bits;
}

// Recovers the quantized symbols from dequantized values x[i] = (q[i] - z) * s. Returns false
// when some value is not exactly such a product (then nothing can be recomputed).
inline bool RecoverSymbols(const float* x, size_t n, const BitstreamInfo& info, std::vector<uint8_t>* q) {
  if (info.layout == Layout::kConstant || !(info.scale > 0.f)) return false;
  const int32_t max_q = (1 << info.q) - 1;
  q->resize(n);
  for (size_t i = 0; i < n; ++i) {
    const double r = std::nearbyint(static_cast<double>(x[i]) / static_cast<double>(info.scale));
    const double sym = r + static_cast<double>(info.zero_point);
    if (!(sym >= 0 && sym <= max_q)) return false;
    const int32_t s = static_cast<int32_t>(sym);
    if (static_cast<float>(s - info.zero_point) * info.scale != x[i]) return false;
    (*q)[i] = static_cast<uint8_t>(s);
  }
  return true;
}

// Fills the missing entropy_bits of dense ("q"), sparse ("v", "c", "r") and paper ("D") sections
// from the quantized symbols q[0, n) (C order), using the layout's own symbol streams: the
// paper's CSR over the N x K reshape (nonzero symbols, their columns, per-row counts). Context
// sections are left alone. Returns how many sections were filled.
inline int FillSectionEntropy(const uint8_t* q, size_t n, BitstreamInfo* info) {
  int filled = 0;
  auto set = [&](const char* name, double bits) {
    for (auto& s : info->sections) {
      if (s.name == name && EntropyMissing(s)) {
        s.entropy_bits = bits;
        ++filled;
      }
    }
  };
  if (info->layout == Layout::kDense) {
    std::vector<uint64_t> h(256, 0);
    for (size_t i = 0; i < n; ++i) h[q[i]]++;
    set("q", EntropyBitsOf(h));
  } else if (info->layout == Layout::kSparse || info->layout == Layout::kPaper) {
    const uint64_t rows = info->n, k = info->k;
    if (rows == 0 || k == 0 || rows * k != n) return 0;
    std::vector<uint64_t> hv(256, 0), hc(k, 0), hr(k + 1, 0);
    for (uint64_t row = 0; row < rows; ++row) {
      const uint8_t* p = q + row * k;
      uint64_t count = 0;
      for (uint64_t col = 0; col < k; ++col) {
        if (p[col]) {
          hv[p[col]]++;
          hc[col]++;
          ++count;
        }
      }
      hr[count]++;
    }
    if (info->layout == Layout::kSparse) {
      set("v", EntropyBitsOf(hv));
      set("c", EntropyBitsOf(hc));
      set("r", EntropyBitsOf(hr));
    } else {  // one merged table over v ++ c ++ r
      std::vector<uint64_t> hd(std::max<uint64_t>(256, k + 1), 0);
      for (size_t s = 0; s < hv.size(); ++s) hd[s] += hv[s];
      for (size_t s = 0; s < hc.size(); ++s) hd[s] += hc[s];
      for (size_t s = 0; s < hr.size(); ++s) hd[s] += hr[s];
      set("D", EntropyBitsOf(hd));
    }
  }
  return filled;
}

}  // namespace splitrans::codec::tools

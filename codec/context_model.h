// The context layout: an adaptive binary context model over the 2-D maps of the tensor, coded
// with interleaved rANS (FORMAT.md "Context layout"). The smallest layout on real features.
#pragma once

#include <cstdint>
#include <vector>

#include "codec/format.h"
#include "codec/rans.h"
#include "codec/status.h"

namespace splitrans::codec {

// Reusable buffers (one per Encoder/Decoder).
struct ContextScratch {
  std::vector<RansEncSymbol> events;
  std::vector<uint16_t> words;
  std::vector<int16_t> plane;  // padded map of signed symbols (q - base)
};

struct ContextStats {
  uint64_t steps = 0;         // binary decisions coded
  size_t param_bytes = 0;     // layout parameters
  size_t payload_bytes = 0;   // rANS states, word counts, words
  double model_bits = 0;      // ideal adaptive code length (sum of -log2 p of each decision)
};

// Appends the context layout body for q[0, T) (host) to *out.
void EncodeContextBody(const uint8_t* q, const std::vector<int64_t>& shape, int qbits, int32_t zero_point,
                       ContextScratch* scratch, std::vector<uint8_t>* out, ContextStats* stats = nullptr);

// Decodes a context layout body into q[0, T) (host). Never reads outside the body.
Status DecodeContextBody(ByteReader* reader, const std::vector<int64_t>& shape, int qbits, int32_t zero_point,
                         ContextScratch* scratch, uint8_t* q, ContextStats* stats = nullptr);

}  // namespace splitrans::codec

// The context layout: a semi-static context model over the 2-D maps of the tensor, coded
// with interleaved rANS (FORMAT.md "Context layout"). The smallest layout on real features.
#pragma once

#include <cstdint>
#include <vector>

#include "codec/byte_io.h"
#include "codec/quantize.h"
#include "codec/rans.h"
#include "codec/status.h"
#include "codec/wire.h"

namespace splitrans::codec {

// Encoder table entry of (ctx, token): the rANS step and the raw bits that follow the token.
// A context's only token has freq = 2^PB, start = 0: the step is then the identity and never
// flushes (xmax1 = 2^32 - 1), so it costs nothing, as FORMAT.md requires.
struct CtxEncEntry {
  uint32_t rcp = 0;
  uint32_t xmax1 = 0;  // flush when x > xmax1 = (freq << (32 - PB)) - 1
  uint16_t freq = 0;
  uint16_t start = 0;
  uint32_t rb = 0;     // raw bits after the token
};

// Reusable buffers (one per Encoder/Decoder).
struct ContextScratch {
  std::vector<uint32_t> coded;   // encoder: (ctx * tokens + token) << 16 | raw bits, coding order
  std::vector<uint32_t> coded_alt;  // encoder: the same for the other predictor
  std::vector<uint16_t> words;   // encoder: rANS words, written backwards
  std::vector<uint16_t> planes;  // padded map of symbols (encoder; decoder: adaptive model)
  std::vector<uint32_t> dtab;    // decoder: per-context slot tables
  std::vector<uint16_t> rows;    // decoder: each lane's last three padded rows (or tile windows)
  std::vector<uint8_t> batch;    // decoder: decoded rows on their way to the output
  std::vector<uint8_t> wordbuf;  // decoder: zero-padded copy of a segment's last words
  std::vector<uint8_t> qbuf;     // decoder: the adaptive model's symbols (<= 2^16)
  std::vector<uint32_t> pre;     // decoder: per-row context precomputation (one row per lane)
  std::vector<int16_t> eplane;   // adaptive model: padded plane of residuals
  std::vector<RansEncSymbol> events;  // adaptive model: encoder's binary events
  std::vector<uint8_t> alt;      // encoder: the candidate body being compared
  std::vector<uint16_t> ctxbuf;  // encoder: per-position contexts and symbols of one map
  std::vector<uint32_t> hist, hist_alt;  // encoder: per-context token histograms
  std::vector<CtxEncEntry> enc;  // encoder: per (context, token) coding steps
};

struct ContextStats {
  uint64_t steps = 0;         // elements coded
  size_t param_bytes = 0;     // layout parameters
  size_t payload_bytes = 0;   // rANS states, word counts, words
  double model_bits = 0;      // ideal code length under the transmitted tables (encoder only)
};

// Appends the context layout body for q[0, T) (host) to *out.
void EncodeContextBody(const uint8_t* q, const std::vector<int64_t>& shape, int qbits, int32_t zero_point,
                       ContextScratch* scratch, std::vector<uint8_t>* out, ContextStats* stats = nullptr);

// Decodes a context layout body into sink elements [0, T). Never reads outside the body. The
// scratch does not grow with the tensor: about 1.1 MiB at most (see kMaxRingWidth in
// context_model.cc).
Status DecodeContextBody(ByteReader* reader, const std::vector<int64_t>& shape, int qbits, int32_t zero_point,
                         ContextScratch* scratch, const SymbolSink& sink, ContextStats* stats = nullptr);

}  // namespace splitrans::codec

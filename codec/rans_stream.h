// rANS streams: a sequence of symbols coded with one static frequency table, split into
// independent interleaved blocks (FORMAT.md "Streams"). Also the raw interleaved block coder
// used by the adaptive context model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "codec/format.h"
#include "codec/rans.h"
#include "codec/status.h"

namespace splitrans::codec {

// Normalizes a histogram to frequencies summing to 2^prob_bits, deterministically (integers
// only; ties broken by symbol index). Every symbol with count > 0 gets freq >= 1.
// REQUIRES: at least two symbols have count > 0; alphabet <= 2^prob_bits.
void NormalizeFrequencies(const uint32_t* counts, uint32_t alphabet, int prob_bits, uint32_t* freqs);

// Ideal code length in bits of a histogram under its own empirical distribution.
double EntropyBits(const uint32_t* counts, uint32_t alphabet);

// Encoder parameters chosen per stream.
struct StreamParams {
  int prob_bits = 0;     // 0: choose from the alphabet size
  int lanes_log2 = -1;   // -1: choose from the symbol count
  int block_log2 = 16;
};

// Sizes reported by the encoder (for Inspect-like reports and benchmarks).
struct StreamStats {
  size_t table_bytes = 0;    // kind, count, parameters, frequency table, block index
  size_t payload_bytes = 0;  // states + words
  double entropy_bits = 0;   // order-0 entropy of the coded symbols
};

// Appends a stream coding symbols[0, n) to *out. counts: histogram of the symbols over
// [0, alphabet) (host, alphabet entries). Symbols must be < alphabet <= kMaxAlphabet.
template <typename Sym>
void EncodeStream(const Sym* symbols, uint32_t n, const uint32_t* counts, uint32_t alphabet,
                  const StreamParams& params, std::vector<uint8_t>* out, StreamStats* stats = nullptr);

// Exact byte size EncodeStream would produce, without coding (used by searches).
// Returns the size of table + index + states, and an estimate of words from the entropy
// when exact == false. With exact == true it codes into a scratch buffer.
size_t StreamSizeEstimate(uint32_t n, const uint32_t* counts, uint32_t alphabet);

// Decodes one stream from *reader into out (resized to the stream's symbol count).
// max_n: the most symbols the caller can accept; max_symbol: symbols must be <= it.
template <typename Sym>
Status DecodeStream(ByteReader* reader, uint32_t max_n, uint32_t max_symbol, std::vector<Sym>* out,
                    StreamStats* stats = nullptr);

// --- Raw interleaved block coder (no table): used by the context model. ---

// Encodes steps[0, n) (each a (start, freq) event at prob_bits) with 2^lanes_log2 interleaved
// states; appends [states (u32 each)][word count varint][words (u16 each)] to *out.
void EncodeInterleaved(const RansEncSymbol* steps, size_t n, int lanes_log2, int prob_bits,
                       std::vector<uint16_t>* scratch, std::vector<uint8_t>* out);

// Sequential decoder over one interleaved block written by EncodeInterleaved.
class InterleavedDecoder {
 public:
  // Parses states and the word count from *reader and takes a view of the words.
  Status Init(ByteReader* reader, int lanes_log2, size_t max_words);
  // Current slot for the next step: x mod 2^prob_bits of the active lane.
  uint32_t Peek(int prob_bits) const { return state_[lane_] & ((1u << prob_bits) - 1); }
  // Completes the step for the symbol [start, start+freq) and moves to the next lane.
  // Returns false when the stream ran out of words (corrupt input).
  bool Advance(uint32_t start, uint32_t freq, int prob_bits) {
    uint32_t x = RansDecStep(state_[lane_], start, freq, prob_bits);
    if (x < kRansL) {
      if (word_ == word_end_) return false;
      x = (x << 16) | (static_cast<uint32_t>(word_[0]) | static_cast<uint32_t>(word_[1]) << 8);
      word_ += 2;
    }
    state_[lane_] = x;
    lane_ = (lane_ + 1) & lane_mask_;
    return true;
  }
  // True when every word was consumed and every lane is back at its initial state.
  bool Finished() const;

 private:
  uint32_t state_[1 << kMaxLanesLog2] = {};
  uint32_t lanes_ = 1, lane_mask_ = 0, lane_ = 0;
  const uint8_t* word_ = nullptr;
  const uint8_t* word_end_ = nullptr;
};

}  // namespace splitrans::codec

// rANS streams: a sequence of symbols coded with one static frequency table, split into
// independent interleaved blocks (FORMAT.md "Streams"). Also the raw interleaved block coder
// used by the adaptive context model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "codec/byte_io.h"
#include "codec/quantize.h"
#include "codec/rans.h"
#include "codec/status.h"
#include "codec/wire.h"

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

// --- Streams decoded in place, with scratch that does not grow with the stream. ---

// A stream whose kind, count, parameters, table and block index were read and validated, and
// whose payload was not decoded yet: the decoders below read it from the input in place.
struct ParsedStream {
  StreamKind kind = StreamKind::kEmpty;
  uint32_t n = 0;          // symbols
  uint32_t symbol = 0;     // kConstant: the symbol
  int prob_bits = 0, lanes_log2 = 0, block_log2 = 0;
  uint32_t alphabet = 0;
  bool packed32 = false;   // table in dtab32 (prob_bits <= 12, alphabet <= 256), else dtab64
  bool simd = false;       // byte symbols decoded with the AVX-512 kernels (uses dtab32)
  const uint8_t* index = nullptr;    // block index: one validated varint per block
  const uint8_t* payload = nullptr;  // the blocks' payloads, in block order
  size_t table_bytes = 0, payload_bytes = 0;  // as StreamStats
  // Per slot: sym << 24 | freq << 12 | (slot - start(sym)), or sym | freq << 16 | (slot - start) << 32.
  std::vector<uint32_t> dtab32;
  std::vector<uint64_t> dtab64;
};

// Reads a stream up to and past its payload from *reader, with every check DecodeStream makes
// before decoding (same codes). byte_symbols: the payload will be decoded by DecodeByteStream
// (enables the AVX-512 kernels). *out keeps its tables' capacity across calls (2^prob_bits
// entries of 4 or 8 bytes: at most 256 KiB).
Status ParseStream(ByteReader* reader, uint32_t max_n, uint32_t max_symbol, bool byte_symbols, ParsedStream* out);

// A block of a parsed stream being decoded, and the walk over the block index and payloads.
struct StreamBlock {
  uint32_t b = 0, lo = 0, hi = 0, j = 0;  // block number; its symbols [lo, hi); the next one
  uint32_t x[1 << kMaxLanesLog2] = {};
  const uint8_t* wp = nullptr;  // its words [wp, wend)
  const uint8_t* wend = nullptr;
};
struct BlockWalk {
  uint32_t next = 0;                 // the next block to open
  const uint8_t* index = nullptr;    // its index entry
  const uint8_t* payload = nullptr;  // its payload
};

// Decodes a rANS stream parsed with byte_symbols into sink elements [offset, offset + s.n), 8 KiB
// of symbols per block at a time (two blocks at once with AVX-512), checking every block's end.
// Scratch: 16 KiB on the stack. REQUIRES: s.kind == kRans; symbols < 256 (max_symbol <= 255).
Status DecodeByteStream(const ParsedStream& s, uint64_t offset, const SymbolSink& sink);

// Sequential reader of the symbols [begin, end) of a parsed stream: decodes block by block (the
// rANS states carry over between calls) into a chunk of kChunk symbols. Several cursors may read
// one stream at once (the paper layout's v, c and r); a block is checked (words used up, final
// states) by the cursor that decodes its last symbol.
class StreamCursor {
 public:
  static constexpr uint32_t kChunk = 1024;

  // Positions the cursor at begin. REQUIRES: begin <= end <= s->n; *s outlives the cursor.
  // tail (nullable): symbols [tail_lo, ...) decoded ahead (by the cursor of the range that
  //   follows); the part of [begin, end) at or after tail_lo is read from it, not decoded.
  // keep (nullable): when begin falls inside a block, the block's leading symbols [lo, begin)
  //   are decoded to get there; they are kept in *keep when at most keep_cap, and *kept
  //   (nullable) is set to their count (0: nothing kept), else they are discarded (and decoded
  //   again by the cursor of the range before).
  Status Open(const ParsedStream* s, uint32_t begin, uint32_t end, const uint16_t* tail, uint32_t tail_lo,
              std::vector<uint16_t>* keep, uint32_t keep_cap, uint32_t* kept);
  // The next run of 1 .. end - position symbols, valid until the next call. REQUIRES: not at end.
  Status Next(const uint16_t** p, uint32_t* n);
  // Adds every symbol Next returns to counts (host, s->alphabet entries; nullable: off).
  void CountInto(uint32_t* counts) { counts_ = counts; }

 private:
  // Decodes the next m symbols of the current block (REQUIRES: m <= hi - j) into out.
  Status Decode(uint32_t m, uint16_t* out);

  const ParsedStream* s_ = nullptr;
  uint32_t pos_ = 0, live_end_ = 0, end_ = 0;  // [pos, live_end) decoded here, [live_end, end) from tail
  const uint16_t* tail_ = nullptr;
  uint32_t tail_lo_ = 0;
  uint32_t* counts_ = nullptr;
  StreamBlock blk_;
  BlockWalk walk_;
  uint16_t buf_[kChunk];
};

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

// Static-table rANS streams and the raw interleaved block coder (see rans.h, FORMAT.md).
#include "codec/rans_stream.h"

#include <type_traits>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "codec/rans_simd.h"

namespace splitrans::codec {
namespace {

int FloorLog2(uint64_t v) { return v == 0 ? -1 : 63 - __builtin_clzll(v); }

uint32_t GetU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}


size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

int ChooseLanesLog2(uint64_t n) {
  // About 2048 symbols per lane keeps the 4-byte final states under ~0.5% of the payload.
  int l = FloorLog2(std::max<uint64_t>(n / 2048, 1));
  return std::clamp(l, 0, kMaxLanesLog2);
}

// Ideal payload bits for counts coded with freqs at prob_bits.
double CodedBits(const uint32_t* counts, const uint32_t* freqs, uint32_t alphabet, int prob_bits) {
  double bits = 0;
  for (uint32_t s = 0; s < alphabet; ++s) {
    if (counts[s]) bits += counts[s] * (prob_bits - std::log2(static_cast<double>(freqs[s])));
  }
  return bits;
}

size_t TableBytes(const uint32_t* freqs, uint32_t alphabet) {
  size_t b = VarintSize(alphabet);
  for (uint32_t s = 0; s < alphabet; ++s) b += VarintSize(freqs[s]);
  return b;
}

// Chooses prob_bits minimizing ideal payload + table size (the table grows with precision).
int ChooseProbBits(uint32_t n, const uint32_t* counts, uint32_t alphabet, std::vector<uint32_t>* freqs) {
  int lo = std::max(kMinProbBits, FloorLog2(alphabet - 1) + 2);
  // 12 bits at most for alphabets up to 256: the SIMD decoder packs symbol, freq and bias in 32 bits.
  int hi = std::min(alphabet <= 256 ? 12 : kMaxProbBits - 1, std::max(lo, FloorLog2(n) + 2));
  if (lo > hi) lo = hi = std::min(kMaxProbBits, std::max(lo, kMinProbBits));
  int best = lo;
  double best_bits = 0;
  for (int pb = lo; pb <= hi; ++pb) {
    NormalizeFrequencies(counts, alphabet, pb, freqs->data());
    double bits = CodedBits(counts, freqs->data(), alphabet, pb) + 8.0 * TableBytes(freqs->data(), alphabet);
    if (pb == lo || bits < best_bits) {
      best = pb;
      best_bits = bits;
    }
  }
  return best;
}

}  // namespace

constexpr uint32_t kSmallAlphabet = 64;

void NormalizeFrequencies(const uint32_t* counts, uint32_t alphabet, int prob_bits, uint32_t* freqs) {
  const uint64_t target = uint64_t{1} << prob_bits;
  uint64_t total = 0;
  for (uint32_t s = 0; s < alphabet; ++s) total += counts[s];
  uint64_t sum = 0;
  for (uint32_t s = 0; s < alphabet; ++s) {
    if (counts[s] == 0) {
      freqs[s] = 0;
      continue;
    }
    uint64_t f = counts[s] * target / total;
    freqs[s] = static_cast<uint32_t>(std::max<uint64_t>(f, 1));
    sum += freqs[s];
  }
  if (sum == target || total == 0) return;
  // The symbols present, ordered by key (descending, ties: lower symbol first). The context
  // model normalizes hundreds of small tables per tensor: those sort on the stack.
  uint32_t small[kSmallAlphabet];
  std::vector<uint32_t> large;
  uint32_t* order = small;
  if (alphabet > kSmallAlphabet) {
    large.resize(alphabet);
    order = large.data();
  }
  size_t present = 0;
  for (uint32_t s = 0; s < alphabet; ++s)
    if (counts[s]) order[present++] = s;
  auto sort_by = [&](auto key) {
    if (present <= kSmallAlphabet) {
      for (size_t i = 1; i < present; ++i) {  // insertion sort: stable, no allocation
        const uint32_t v = order[i];
        const uint64_t kv = key(v);
        size_t j = i;
        for (; j > 0 && key(order[j - 1]) < kv; --j) order[j] = order[j - 1];
        order[j] = v;
      }
    } else {
      std::stable_sort(order, order + present, [&](uint32_t a, uint32_t b) { return key(a) > key(b); });
    }
  };
  if (sum < target) {
    // Hand out the missing units by largest remainder (ties: lower symbol first).
    sort_by([&](uint32_t s) { return counts[s] * target % total; });
    uint64_t missing = target - sum;
    for (size_t i = 0; missing > 0; i = (i + 1) % present, --missing) freqs[order[i]]++;
  } else {
    // Take the excess from the largest frequencies (ties: lower symbol first), never below 1.
    sort_by([&](uint32_t s) { return uint64_t{freqs[s]}; });
    uint64_t excess = sum - target;
    while (excess > 0) {
      for (size_t i = 0; i < present && excess > 0; ++i) {
        if (freqs[order[i]] > 1) {
          freqs[order[i]]--;
          excess--;
        }
      }
    }
  }
}

double EntropyBits(const uint32_t* counts, uint32_t alphabet) {
  uint64_t total = 0;
  for (uint32_t s = 0; s < alphabet; ++s) total += counts[s];
  if (total == 0) return 0;
  double bits = 0;
  const double lt = std::log2(static_cast<double>(total));
  for (uint32_t s = 0; s < alphabet; ++s) {
    if (counts[s]) bits += counts[s] * (lt - std::log2(static_cast<double>(counts[s])));
  }
  return bits;
}

size_t StreamSizeEstimate(uint32_t n, const uint32_t* counts, uint32_t alphabet) {
  if (n == 0) return 1;
  uint32_t distinct = 0, last = 0;
  for (uint32_t s = 0; s < alphabet; ++s)
    if (counts[s]) ++distinct, last = s;
  if (distinct == 1) return 1 + VarintSize(n) + VarintSize(last);
  std::vector<uint32_t> freqs(alphabet);
  int pb = ChooseProbBits(n, counts, alphabet, &freqs);
  NormalizeFrequencies(counts, alphabet, pb, freqs.data());
  uint32_t a = last + 1;
  size_t blocks = (n + (1u << 16) - 1) >> 16;
  size_t lanes = size_t{1} << ChooseLanesLog2(n);
  double bits = CodedBits(counts, freqs.data(), alphabet, pb);
  return 1 + VarintSize(n) + 3 + TableBytes(freqs.data(), a) + blocks * (2 + 4 * lanes) +
         static_cast<size_t>(std::ceil(bits / 8.0));
}

template <typename Sym>
void EncodeStream(const Sym* symbols, uint32_t n, const uint32_t* counts, uint32_t alphabet,
                  const StreamParams& params, std::vector<uint8_t>* out, StreamStats* stats) {
  ByteWriter w(out);
  const size_t begin = out->size();
  StreamStats local;
  if (stats == nullptr) stats = &local;
  *stats = StreamStats();
  if (n == 0) {
    w.U8(static_cast<uint8_t>(StreamKind::kEmpty));
    stats->table_bytes = out->size() - begin;
    return;
  }
  uint32_t distinct = 0, last = 0;
  for (uint32_t s = 0; s < alphabet; ++s)
    if (counts[s]) ++distinct, last = s;
  if (distinct == 1) {
    w.U8(static_cast<uint8_t>(StreamKind::kConstant));
    w.Varint(n);
    w.Varint(last);
    stats->table_bytes = out->size() - begin;
    return;
  }
  const uint32_t a = last + 1;
  std::vector<uint32_t> freqs(a);
  int pb = params.prob_bits;
  if (pb == 0) pb = ChooseProbBits(n, counts, a, &freqs);
  NormalizeFrequencies(counts, a, pb, freqs.data());
  const int lanes_log2 = params.lanes_log2 >= 0 ? params.lanes_log2 : ChooseLanesLog2(n);
  const int block_log2 = params.block_log2;
  const uint32_t lanes = 1u << lanes_log2;
  const uint32_t lane_mask = lanes - 1;
  const uint32_t block_size = 1u << block_log2;
  const uint32_t blocks = static_cast<uint32_t>((uint64_t{n} + block_size - 1) >> block_log2);
  stats->entropy_bits = EntropyBits(counts, a);

  std::vector<RansEncSymbol> table(a);
  for (uint32_t s = 0, start = 0; s < a; ++s) {
    table[s] = MakeRansEncSymbol(start, freqs[s]);
    start += freqs[s];
  }

  w.U8(static_cast<uint8_t>(StreamKind::kRans));
  w.Varint(n);
  w.U8(static_cast<uint8_t>(pb));
  w.U8(static_cast<uint8_t>(lanes_log2));
  w.U8(static_cast<uint8_t>(block_log2));
  w.Varint(a);
  for (uint32_t s = 0; s < a; ++s) w.Varint(freqs[s]);

  // Code every block into scratch (words written backwards), then emit index and payloads.
  std::vector<uint16_t> words(std::min<uint64_t>(n, block_size) * uint64_t{blocks});
  std::vector<uint32_t> states(size_t{lanes} * blocks);
  std::vector<uint32_t> word_counts(blocks);
  for (uint32_t b = 0; b < blocks; ++b) {
    const uint32_t lo = b * block_size;
    const uint32_t hi = std::min<uint64_t>(n, uint64_t{lo} + block_size);
    uint16_t* end = words.data() + static_cast<size_t>(b + 1) * std::min<uint64_t>(n, block_size);
    uint16_t* wp = end;
    uint32_t* x = &states[size_t{b} * lanes];
    for (uint32_t l = 0; l < lanes; ++l) x[l] = kRansL;
    // Fast path: the partial last step with the scalar coder, whole steps with AVX-512.
    uint32_t simd_end = lo;
    if (std::is_same_v<Sym, uint8_t> && lanes == 32 && pb <= 12 && HaveAvx512Rans()) simd_end = lo + (hi - lo) / 32 * 32;
    for (uint32_t j = hi; j-- > simd_end;) {
      const RansEncSymbol& sym = table[symbols[j]];
      uint32_t& st = x[(j - lo) & lane_mask];
      if (RansEncNeedsFlush(st, sym.freq, pb)) {
        *--wp = static_cast<uint16_t>(st);
        st >>= 16;
      }
      st = RansEncStep(st, sym, pb);
    }
    if (simd_end > lo) {
      uint32_t fs[256], rcp[256];
      for (uint32_t s = 0; s < 256; ++s) {
        fs[s] = s < a ? (table[s].freq | uint32_t{table[s].start} << 16) : 0;
        rcp[s] = s < a ? table[s].rcp : 0;
      }
      EncodeBlock32Avx512(reinterpret_cast<const uint8_t*>(symbols) + lo, simd_end - lo, fs, rcp, static_cast<int>(a),
                          pb, x, &wp);
    }
    word_counts[b] = static_cast<uint32_t>(end - wp);
  }
  for (uint32_t b = 0; b < blocks; ++b) w.Varint(word_counts[b]);
  stats->table_bytes = out->size() - begin;
  const size_t payload_begin = out->size();
  for (uint32_t b = 0; b < blocks; ++b) {
    for (uint32_t l = 0; l < lanes; ++l) w.U32(states[size_t{b} * lanes + l]);
    const uint16_t* end = words.data() + static_cast<size_t>(b + 1) * std::min<uint64_t>(n, block_size);
    w.Raw(end - word_counts[b], 2 * size_t{word_counts[b]});
  }
  stats->payload_bytes = out->size() - payload_begin;
}

namespace {

// A block index entry (validated by ParseStream: at most 5 bytes).
uint32_t ReadIndexEntry(const uint8_t** p) {
  uint32_t v = 0;
  for (int shift = 0;; shift += 7) {
    const uint8_t b = *(*p)++;
    v |= static_cast<uint32_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
}

void StartWalk(const ParsedStream& s, BlockWalk* w) {
  w->next = 0;
  w->index = s.index;
  w->payload = s.payload;
}

// Moves the walk to block b. REQUIRES: w->next <= b < the number of blocks.
void SkipBlocks(const ParsedStream& s, uint32_t b, BlockWalk* w) {
  const size_t states = 4u << s.lanes_log2;
  for (; w->next < b; ++w->next) w->payload += states + 2 * size_t{ReadIndexEntry(&w->index)};
}

// Opens the walk's next block: reads its states (each >= L) and locates its words.
Status OpenNextBlock(const ParsedStream& s, BlockWalk* w, StreamBlock* blk) {
  const uint32_t b = w->next++;
  const uint32_t words = ReadIndexEntry(&w->index);
  const uint32_t lanes = 1u << s.lanes_log2;
  blk->b = b;
  blk->lo = b << s.block_log2;
  blk->hi = static_cast<uint32_t>(std::min<uint64_t>(s.n, uint64_t{blk->lo} + (uint64_t{1} << s.block_log2)));
  blk->j = blk->lo;
  const uint8_t* p = w->payload;
  for (uint32_t l = 0; l < lanes; ++l) {
    blk->x[l] = GetU32(p + 4 * l);
    if (blk->x[l] < kRansL) return Corrupt("block " + std::to_string(b) + " has a state below 2^16");
  }
  blk->wp = p + 4 * lanes;
  blk->wend = blk->wp + 2 * size_t{words};
  w->payload = blk->wend;
  return Status::Ok();
}

// A finished block must have used every word and be back at L in every lane.
Status CheckBlockEnd(const ParsedStream& s, const StreamBlock& blk) {
  if (blk.wp != blk.wend) return Corrupt("block " + std::to_string(blk.b) + " has unused words");
  for (uint32_t l = 0; l < (1u << s.lanes_log2); ++l) {
    if (blk.x[l] != kRansL) return Corrupt("block " + std::to_string(blk.b) + " does not end on the initial state");
  }
  return Status::Ok();
}

Status RanOutOfWords(const StreamBlock& blk) {
  return Corrupt("block " + std::to_string(blk.b) + " ran out of words");
}

// Decodes symbols [j, j + m) of the block with the scalar coder into out[0, m). Returns false
// when the block runs out of words. REQUIRES: j + m <= hi.
template <bool kPacked32, typename Sym>
bool DecodeScalar(const ParsedStream& s, StreamBlock* blk, uint32_t m, Sym* out) {
  const int pb = s.prob_bits;
  const uint32_t mask = (1u << pb) - 1;
  const uint32_t lane_mask = (1u << s.lanes_log2) - 1;
  const uint32_t* const t32 = s.dtab32.data();
  const uint64_t* const t64 = s.dtab64.data();
  uint32_t* const x = blk->x;
  const uint8_t* wp = blk->wp;
  const uint8_t* const wend = blk->wend;
  const uint32_t lo = blk->lo;
  bool ok = true;
  uint32_t j = blk->j;
  for (const uint32_t e = j + m; j < e; ++j) {
    uint32_t& st = x[(j - lo) & lane_mask];
    const uint32_t slot = st & mask;
    uint32_t sym, freq, bias;
    if constexpr (kPacked32) {
      const uint32_t d = t32[slot];
      sym = d >> 24, freq = (d >> 12) & 0xfff, bias = d & 0xfff;
    } else {
      const uint64_t d = t64[slot];
      sym = static_cast<uint32_t>(d & 0xffff), freq = static_cast<uint32_t>(d >> 16) & 0xffff;
      bias = static_cast<uint32_t>(d >> 32);
    }
    st = freq * (st >> pb) + bias;
    if (st < kRansL) {
      if (wp == wend) {
        ok = false;
        break;
      }
      st = (st << 16) | (wp[0] | (uint32_t{wp[1]} << 8));
      wp += 2;
    }
    *out++ = static_cast<Sym>(sym);
  }
  blk->wp = wp;
  blk->j = j;
  return ok;
}

template <typename Sym>
bool DecodeScalarAny(const ParsedStream& s, StreamBlock* blk, uint32_t m, Sym* out) {
  return s.packed32 ? DecodeScalar<true>(s, blk, m, out) : DecodeScalar<false>(s, blk, m, out);
}

// DecodeByteStream's chunk: 8 KiB of symbols per block (two blocks at once), L1-resident.
constexpr uint32_t kByteChunk = 8192;

// Decodes the rest of a block chunk by chunk (AVX-512 while its words last, then scalar), hands
// every chunk to the sink and checks the block's end.
Status FinishByteBlock(const ParsedStream& s, StreamBlock* blk, uint8_t* buf, uint64_t offset, const SymbolSink& sink) {
  while (blk->j < blk->hi) {
    const uint32_t m = std::min(kByteChunk, blk->hi - blk->j);
    uint32_t d = 0;
    if (s.simd) {
      d = static_cast<uint32_t>(DecodeBlock32Avx512(s.dtab32.data(), s.prob_bits, m, blk->x, &blk->wp, blk->wend, buf));
      blk->j += d;
    }
    if (!DecodeScalarAny(s, blk, m - d, buf + d)) return RanOutOfWords(*blk);
    sink.Put(offset + blk->j - m, buf, m);
  }
  return CheckBlockEnd(s, *blk);
}

}  // namespace

Status ParseStream(ByteReader* r, uint32_t max_n, uint32_t max_symbol, bool byte_symbols, ParsedStream* out) {
  ParsedStream& s = *out;
  const uint8_t* begin = r->pos();
  s.n = 0;
  s.index = s.payload = nullptr;
  s.table_bytes = s.payload_bytes = 0;
  uint8_t kind;
  SPLITRANS_RETURN_IF_ERROR(r->U8(&kind, "stream kind"));
  if (kind == static_cast<uint8_t>(StreamKind::kEmpty)) {
    s.kind = StreamKind::kEmpty;
    s.table_bytes = static_cast<size_t>(r->pos() - begin);
    return Status::Ok();
  }
  uint32_t n;
  SPLITRANS_RETURN_IF_ERROR(r->Varint(&n, max_n, "stream symbol count"));
  if (n == 0) return Corrupt("stream of kind " + std::to_string(kind) + " declares 0 symbols");
  if (kind == static_cast<uint8_t>(StreamKind::kConstant)) {
    uint32_t sym;
    SPLITRANS_RETURN_IF_ERROR(r->Varint(&sym, max_symbol, "constant stream symbol"));
    s.kind = StreamKind::kConstant;
    s.n = n;
    s.symbol = sym;
    s.table_bytes = static_cast<size_t>(r->pos() - begin);
    return Status::Ok();
  }
  if (kind != static_cast<uint8_t>(StreamKind::kRans)) {
    return Corrupt("unknown stream kind " + std::to_string(kind));
  }
  uint8_t pb, lanes_log2, block_log2;
  SPLITRANS_RETURN_IF_ERROR(r->U8(&pb, "stream prob_bits"));
  SPLITRANS_RETURN_IF_ERROR(r->U8(&lanes_log2, "stream lanes"));
  SPLITRANS_RETURN_IF_ERROR(r->U8(&block_log2, "stream block size"));
  if (pb < kMinProbBits || pb > kMaxProbBits) return Corrupt("stream prob_bits " + std::to_string(pb) + " out of range");
  if (lanes_log2 > kMaxLanesLog2) return Corrupt("stream lanes_log2 " + std::to_string(lanes_log2) + " out of range");
  if (block_log2 < kMinBlockLog2 || block_log2 > kMaxBlockLog2) {
    return Corrupt("stream block_log2 " + std::to_string(block_log2) + " out of range");
  }
  uint32_t a;
  const uint32_t max_a = std::min<uint32_t>({kMaxAlphabet, max_symbol + 1, 1u << pb});
  SPLITRANS_RETURN_IF_ERROR(r->Varint(&a, max_a, "table alphabet size"));
  if (a < 2) return Corrupt("rANS table with alphabet size " + std::to_string(a));
  // The decoder table is filled while the frequencies are read (each range checked first).
  const uint32_t one = 1u << pb;
  s.packed32 = pb <= 12 && a <= 256;
  if (s.packed32) {
    s.dtab32.resize(one);
  } else {
    s.dtab64.resize(one);
  }
  uint32_t sum = 0, nonzero = 0;
  for (uint32_t sym = 0; sym < a; ++sym) {
    uint32_t f;
    SPLITRANS_RETURN_IF_ERROR(r->Varint(&f, one - 1, "table frequency"));
    if (sum + f > one) return Corrupt("table frequencies exceed 2^prob_bits");
    if (s.packed32) {
      for (uint32_t k = 0; k < f; ++k) s.dtab32[sum + k] = sym << 24 | f << 12 | k;
    } else {
      for (uint32_t k = 0; k < f; ++k) s.dtab64[sum + k] = sym | uint64_t{f} << 16 | uint64_t{k} << 32;
    }
    sum += f;
    nonzero += f != 0;
  }
  if (sum != one) return Corrupt("table frequencies sum to " + std::to_string(sum) + ", not 2^" + std::to_string(pb));
  if (nonzero < 2) return Corrupt("rANS table with fewer than two symbols");
  const uint32_t lanes = 1u << lanes_log2;
  const uint32_t block_size = 1u << block_log2;
  const uint32_t blocks = static_cast<uint32_t>((uint64_t{n} + block_size - 1) >> block_log2);
  // Each block index entry takes at least one byte.
  if (blocks > r->remaining()) return Truncated("block index of " + std::to_string(blocks) + " blocks exceeds the input");
  s.index = r->pos();
  uint64_t payload = 0;
  for (uint32_t b = 0; b < blocks; ++b) {
    const uint32_t syms = std::min<uint64_t>(block_size, n - uint64_t{b} * block_size);
    uint32_t words;
    SPLITRANS_RETURN_IF_ERROR(r->Varint(&words, syms, "block word count"));
    payload += 4ull * lanes + 2ull * words;
  }
  if (payload > r->remaining()) {
    return Truncated("stream payload needs " + std::to_string(payload) + " bytes, " + std::to_string(r->remaining()) +
                     " remain");
  }
  s.table_bytes = static_cast<size_t>(r->pos() - begin);
  SPLITRANS_RETURN_IF_ERROR(r->Span(&s.payload, static_cast<size_t>(payload), "stream payload"));
  s.payload_bytes = static_cast<size_t>(payload);
  s.kind = StreamKind::kRans;
  s.n = n;
  s.prob_bits = pb;
  s.lanes_log2 = lanes_log2;
  s.block_log2 = block_log2;
  s.alphabet = a;
  s.simd = byte_symbols && s.packed32 && lanes == 32 && HaveAvx512Rans();
  return Status::Ok();
}

Status DecodeByteStream(const ParsedStream& s, uint64_t offset, const SymbolSink& sink) {
  alignas(64) uint8_t buf[2][kByteChunk];
  const uint32_t blocks = static_cast<uint32_t>((uint64_t{s.n} + (uint64_t{1} << s.block_log2) - 1) >> s.block_log2);
  BlockWalk walk;
  StartWalk(s, &walk);
  for (uint32_t b = 0; b < blocks;) {
    StreamBlock b0;
    SPLITRANS_RETURN_IF_ERROR(OpenNextBlock(s, &walk, &b0));
    if (s.simd && b + 1 < blocks) {  // two blocks at once while both have words, then each one's rest
      StreamBlock b1;
      SPLITRANS_RETURN_IF_ERROR(OpenNextBlock(s, &walk, &b1));
      const uint32_t both = std::min(b0.hi - b0.lo, b1.hi - b1.lo);
      for (uint32_t j = 0; j < both;) {
        const uint32_t m = std::min(kByteChunk, both - j);
        const uint32_t d = static_cast<uint32_t>(DecodeBlocks32x2Avx512(s.dtab32.data(), s.prob_bits, m, b0.x, &b0.wp,
                                                                        b0.wend, buf[0], b1.x, &b1.wp, b1.wend, buf[1]));
        sink.Put(offset + b0.lo + j, buf[0], d);
        sink.Put(offset + b1.lo + j, buf[1], d);
        j += d;
        b0.j += d;
        b1.j += d;
        if (d < m) break;
      }
      SPLITRANS_RETURN_IF_ERROR(FinishByteBlock(s, &b0, buf[0], offset, sink));
      SPLITRANS_RETURN_IF_ERROR(FinishByteBlock(s, &b1, buf[1], offset, sink));
      b += 2;
    } else {
      SPLITRANS_RETURN_IF_ERROR(FinishByteBlock(s, &b0, buf[0], offset, sink));
      b += 1;
    }
  }
  return Status::Ok();
}

Status StreamCursor::Open(const ParsedStream* s, uint32_t begin, uint32_t end, const uint16_t* tail, uint32_t tail_lo,
                          std::vector<uint16_t>* keep, uint32_t keep_cap, uint32_t* kept) {
  s_ = s;
  pos_ = begin;
  end_ = end;
  live_end_ = end;
  tail_ = nullptr;
  if (kept) *kept = 0;
  if (s->kind == StreamKind::kConstant) {
    std::fill(buf_, buf_ + kChunk, static_cast<uint16_t>(s->symbol));
    return Status::Ok();
  }
  if (s->kind != StreamKind::kRans) return Status::Ok();
  if (tail && tail_lo < end) {
    tail_ = tail;
    tail_lo_ = tail_lo;
    live_end_ = std::max(begin, tail_lo);
  }
  if (begin >= live_end_) return Status::Ok();
  StartWalk(*s, &walk_);
  SkipBlocks(*s, begin >> s->block_log2, &walk_);
  SPLITRANS_RETURN_IF_ERROR(OpenNextBlock(*s, &walk_, &blk_));
  const uint32_t head = begin - blk_.lo;  // symbols of the block before begin
  if (head == 0) return Status::Ok();
  if (keep && head <= keep_cap) {
    keep->resize(head);
    SPLITRANS_RETURN_IF_ERROR(Decode(head, keep->data()));
    if (kept) *kept = head;
    return Status::Ok();
  }
  for (uint32_t left = head; left > 0;) {
    const uint32_t m = std::min(kChunk, left);
    SPLITRANS_RETURN_IF_ERROR(Decode(m, buf_));
    left -= m;
  }
  return Status::Ok();
}

Status StreamCursor::Decode(uint32_t m, uint16_t* out) {
  if (!DecodeScalarAny(*s_, &blk_, m, out)) return RanOutOfWords(blk_);
  if (blk_.j == blk_.hi) SPLITRANS_RETURN_IF_ERROR(CheckBlockEnd(*s_, blk_));
  return Status::Ok();
}

Status StreamCursor::Next(const uint16_t** p, uint32_t* n) {
  uint32_t m;
  if (pos_ >= live_end_) {  // decoded ahead
    m = end_ - pos_;
    *p = tail_ + (pos_ - tail_lo_);
  } else if (s_->kind == StreamKind::kConstant) {
    m = std::min(kChunk, live_end_ - pos_);
    *p = buf_;
  } else {
    if (blk_.j == blk_.hi) SPLITRANS_RETURN_IF_ERROR(OpenNextBlock(*s_, &walk_, &blk_));
    m = std::min({kChunk, live_end_ - pos_, blk_.hi - blk_.j});
    SPLITRANS_RETURN_IF_ERROR(Decode(m, buf_));
    *p = buf_;
  }
  if (counts_) {
    for (uint32_t i = 0; i < m; ++i) counts_[(*p)[i]]++;
  }
  pos_ += m;
  *n = m;
  return Status::Ok();
}

template <typename Sym>
Status DecodeStream(ByteReader* r, uint32_t max_n, uint32_t max_symbol, std::vector<Sym>* out,
                    StreamStats* stats) {
  // Byte streams with byte symbols go through the dense layout's decoder; the rest through a
  // cursor (symbols above the type's range are truncated, as the cast does).
  const bool bytes = std::is_same_v<Sym, uint8_t> && max_symbol <= 255;
  ParsedStream s;
  SPLITRANS_RETURN_IF_ERROR(ParseStream(r, max_n, max_symbol, bytes, &s));
  out->resize(s.n);
  std::vector<uint32_t> counts(s.alphabet, 0);
  if (s.kind == StreamKind::kConstant) {
    std::fill(out->begin(), out->end(), static_cast<Sym>(s.symbol));
  } else if (s.kind == StreamKind::kRans && bytes) {
    SymbolSink sink;
    sink.symbols = reinterpret_cast<uint8_t*>(out->data());
    SPLITRANS_RETURN_IF_ERROR(DecodeByteStream(s, 0, sink));
    for (Sym v : *out) counts[v]++;
  } else if (s.kind == StreamKind::kRans) {
    StreamCursor c;
    c.CountInto(counts.data());
    SPLITRANS_RETURN_IF_ERROR(c.Open(&s, 0, s.n, nullptr, 0, nullptr, 0, nullptr));
    for (uint32_t i = 0; i < s.n;) {
      const uint16_t* p;
      uint32_t m;
      SPLITRANS_RETURN_IF_ERROR(c.Next(&p, &m));
      for (uint32_t k = 0; k < m; ++k) (*out)[i + k] = static_cast<Sym>(p[k]);
      i += m;
    }
  }
  if (stats) {
    *stats = StreamStats{s.table_bytes, s.payload_bytes, 0};
    if (s.kind == StreamKind::kRans) stats->entropy_bits = EntropyBits(counts.data(), s.alphabet);
  }
  return Status::Ok();
}

template void EncodeStream<uint8_t>(const uint8_t*, uint32_t, const uint32_t*, uint32_t, const StreamParams&,
                                    std::vector<uint8_t>*, StreamStats*);
template void EncodeStream<uint16_t>(const uint16_t*, uint32_t, const uint32_t*, uint32_t, const StreamParams&,
                                     std::vector<uint8_t>*, StreamStats*);
template Status DecodeStream<uint8_t>(ByteReader*, uint32_t, uint32_t, std::vector<uint8_t>*, StreamStats*);
template Status DecodeStream<uint16_t>(ByteReader*, uint32_t, uint32_t, std::vector<uint16_t>*, StreamStats*);

void EncodeInterleaved(const RansEncSymbol* steps, size_t n, int lanes_log2, int prob_bits,
                       std::vector<uint16_t>* scratch, std::vector<uint8_t>* out) {
  const uint32_t lanes = 1u << lanes_log2;
  const uint32_t lane_mask = lanes - 1;
  if (scratch->size() < n) scratch->resize(n);
  uint16_t* end = scratch->data() + n;
  uint16_t* wp = end;
  uint32_t x[1 << kMaxLanesLog2];
  for (uint32_t l = 0; l < lanes; ++l) x[l] = kRansL;
  for (size_t j = n; j-- > 0;) {
    const RansEncSymbol& s = steps[j];
    uint32_t& st = x[j & lane_mask];
    if (RansEncNeedsFlush(st, s.freq, prob_bits)) {
      *--wp = static_cast<uint16_t>(st);
      st >>= 16;
    }
    st = RansEncStep(st, s, prob_bits);
  }
  ByteWriter w(out);
  for (uint32_t l = 0; l < lanes; ++l) w.U32(x[l]);
  w.Varint(static_cast<uint64_t>(end - wp));
  w.Raw(wp, 2 * static_cast<size_t>(end - wp));
}

Status InterleavedDecoder::Init(ByteReader* r, int lanes_log2, size_t max_words) {
  lanes_ = 1u << lanes_log2;
  lane_mask_ = lanes_ - 1;
  lane_ = 0;
  for (uint32_t l = 0; l < lanes_; ++l) {
    SPLITRANS_RETURN_IF_ERROR(r->U32(&state_[l], "interleaved state"));
    if (state_[l] < kRansL) return Corrupt("interleaved state below 2^16");
  }
  uint32_t words;
  SPLITRANS_RETURN_IF_ERROR(
      r->Varint(&words, static_cast<uint32_t>(std::min<size_t>(max_words, 0xFFFFFFFFu)), "interleaved word count"));
  const uint8_t* p;
  SPLITRANS_RETURN_IF_ERROR(r->Span(&p, 2ull * words, "interleaved words"));
  word_ = p;
  word_end_ = p + 2ull * words;
  return Status::Ok();
}

bool InterleavedDecoder::Finished() const {
  if (word_ != word_end_) return false;
  for (uint32_t l = 0; l < lanes_; ++l)
    if (state_[l] != kRansL) return false;
  return true;
}

}  // namespace splitrans::codec

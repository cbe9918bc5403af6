// Host side of the CUDA dense codec (see gpu_plan.h). The validation mirrors ParseHeader and
// DecodeStream of the CPU codec check for check; gpu_core_test.cc compares the error codes of
// both on malformed inputs.
#include "codec/cuda/gpu_plan.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "codec/byte_io.h"
#include "codec/crc32c.h"
#include "codec/rans_stream.h"

namespace splitrans::codec::gpu {
namespace {

size_t Align(size_t v, size_t a) { return (v + a - 1) / a * a; }

std::string ItemPrefix(size_t i) { return "item " + std::to_string(i) + ": "; }

}  // namespace

void FillLog2Table(double* log2_table) {
  log2_table[0] = 0;
  for (uint32_t f = 1; f < kLog2TableSize; ++f) log2_table[f] = std::log2(static_cast<double>(f));
}

uint64_t MaxDenseEncodedSize(uint64_t t, int rank) {
  const uint64_t blocks = (t + kDenseBlockSize - 1) / kDenseBlockSize;
  const uint64_t states = uint64_t{4} << kMaxLanesLog2;
  return kFixedHeaderBytes + 4ull * static_cast<uint64_t>(rank) + kMaxStreamHeaderBytes + blocks * (3 + states) +
         2 * t + kChecksumBytes;
}

Status PlanEncode(const EncodeRequest* requests, size_t count, int q, EncodeLayout* layout,
                  std::vector<uint8_t>* desc) {
  if (q < kMinQ || q > kMaxQ) {
    return InvalidArgument("q must be in " + std::to_string(kMinQ) + ".." + std::to_string(kMaxQ) + ", got " +
                           std::to_string(q));
  }
  if (count == 0) return InvalidArgument("empty batch");
  if (count > (1u << 24)) return InvalidArgument("batch of " + std::to_string(count) + " items is too large");
  if (requests == nullptr) return InvalidArgument("null batch");
  std::vector<EncItem> items(count);
  std::vector<uint32_t> tile_prefix(count + 1), block_prefix(count + 1), asm_prefix(count + 1);
  uint64_t tiles = 0, blocks = 0, ctas = 0, sym_bytes = 0, word_units = 0;
  for (size_t i = 0; i < count; ++i) {
    const EncodeRequest& r = requests[i];
    if (r.rank < 1 || r.rank > kMaxRank || r.shape == nullptr) {
      return InvalidArgument(ItemPrefix(i) + "tensor rank must be 1.." + std::to_string(kMaxRank) + ", got " +
                             std::to_string(r.rank));
    }
    if (r.dtype != DType::kFloat32 && r.dtype != DType::kFloat16) {
      return InvalidArgument(ItemPrefix(i) + "dtype must be float32 or float16");
    }
    uint64_t t = 1;
    for (int d = 0; d < r.rank; ++d) {
      const int64_t dim = r.shape[d];
      if (dim < 0 || dim > 0xFFFFFFFFll) {
        return InvalidArgument(ItemPrefix(i) + "dimension " + std::to_string(dim) + " out of range");
      }
      if (dim != 0 && t > (uint64_t{1} << 32) / static_cast<uint64_t>(dim)) {
        return InvalidArgument(ItemPrefix(i) + "tensor has more than 2^32 elements");
      }
      t *= static_cast<uint64_t>(dim);
    }
    if (t >= (uint64_t{1} << 32)) return InvalidArgument(ItemPrefix(i) + "tensor has more than 2^32 - 1 elements");
    if (t > 0 && r.in == nullptr) return InvalidArgument(ItemPrefix(i) + "tensor data is null");
    const uint64_t bound = MaxDenseEncodedSize(t, r.rank);
    if (bound - kFixedHeaderBytes - kChecksumBytes > 0xFFFFFFFFull) {
      return InvalidArgument(ItemPrefix(i) + "tensor too large for the GPU encoder (the body could exceed 4 GiB)");
    }
    if (r.out == nullptr) return InvalidArgument(ItemPrefix(i) + "output is null");
    if (r.out_capacity < bound) {
      return InvalidArgument(ItemPrefix(i) + "output holds " + std::to_string(r.out_capacity) +
                             " bytes, MaxCompressedSize is " + std::to_string(bound));
    }
    EncItem& it = items[i];
    std::memset(&it, 0, sizeof(it));
    it.in = r.in;
    it.out = r.out;
    it.t = static_cast<uint32_t>(t);
    it.num_blocks = static_cast<uint32_t>((t + kDenseBlockSize - 1) / kDenseBlockSize);
    it.block_words = static_cast<uint32_t>(std::min<uint64_t>(t, kDenseBlockSize));
    for (int d = 0; d < r.rank; ++d) it.shape[d] = static_cast<uint32_t>(r.shape[d]);
    it.rank = static_cast<uint8_t>(r.rank);
    it.dtype = static_cast<uint8_t>(r.dtype);
    it.q = static_cast<uint8_t>(q);
    it.vec_ok = (reinterpret_cast<uintptr_t>(r.in) % 16) == 0;
    it.sym_offset = sym_bytes;
    it.word_offset = word_units;
    sym_bytes += Align(t, 16);
    word_units += Align(uint64_t{it.num_blocks} * it.block_words, 8);
    tile_prefix[i] = static_cast<uint32_t>(tiles);
    block_prefix[i] = static_cast<uint32_t>(blocks);
    asm_prefix[i] = static_cast<uint32_t>(ctas);
    tiles += (t + kTileElems - 1) / kTileElems;
    blocks += it.num_blocks;
    ctas += std::max<uint32_t>(1, it.num_blocks);
    if (tiles > 0x7FFFFFFF || ctas > 0x7FFFFFFF) return InvalidArgument("batch too large for one launch");
  }
  tile_prefix[count] = static_cast<uint32_t>(tiles);
  block_prefix[count] = static_cast<uint32_t>(blocks);
  asm_prefix[count] = static_cast<uint32_t>(ctas);

  EncodeLayout& L = *layout;
  L = EncodeLayout();
  size_t off = 0;
  auto take = [&](size_t bytes) {
    const size_t at = off;
    off = Align(off + bytes, 256);
    return at;
  };
  L.items = take(count * sizeof(EncItem));
  L.tile_prefix = take((count + 1) * 4);
  L.block_prefix = take((count + 1) * 4);
  L.asm_prefix = take((count + 1) * 4);
  L.desc_bytes = off;
  L.accum = take(count * sizeof(EncAccum));
  L.accum_bytes = count * sizeof(EncAccum);
  L.state = take(count * sizeof(EncState));
  L.blocks = take(blocks * sizeof(EncBlockOut));
  L.symbols = take(sym_bytes);
  L.words = take(word_units * 2);
  L.total = off;
  L.total_tiles = static_cast<uint32_t>(tiles);
  L.total_blocks = static_cast<uint32_t>(blocks);
  L.total_asm = static_cast<uint32_t>(ctas);

  if (desc) {
    desc->assign(L.desc_bytes, 0);
    std::memcpy(desc->data() + L.items, items.data(), count * sizeof(EncItem));
    std::memcpy(desc->data() + L.tile_prefix, tile_prefix.data(), (count + 1) * 4);
    std::memcpy(desc->data() + L.block_prefix, block_prefix.data(), (count + 1) * 4);
    std::memcpy(desc->data() + L.asm_prefix, asm_prefix.data(), (count + 1) * 4);
  }
  return Status::Ok();
}

size_t DenseParsePrefixBound(uint64_t t, int rank) {
  // kind, n, three parameter bytes, alphabet, up to 256 frequencies, then one varint per
  // block with blocks <= ceil(t / 2^kMinBlockLog2); varints take at most 5 bytes.
  const uint64_t blocks = (t + (1u << kMinBlockLog2) - 1) >> kMinBlockLog2;
  const uint64_t b = kFixedHeaderBytes + 4ull * rank + 1 + 5 + 3 + 5 + 5ull * kMaxDenseAlphabet + 5 * blocks;
  return static_cast<size_t>(std::min<uint64_t>(b, SIZE_MAX));
}

Status ParseDenseBody(const uint8_t* data, const ValidatedHeader& hdr, DenseStreamInfo* out) {
  DenseStreamInfo& s = *out;
  s = DenseStreamInfo();
  ByteReader rd(data + hdr.body_offset, hdr.body_bytes());
  const uint64_t t = hdr.elements;
  auto count_mismatch = [&](uint64_t got) {
    return Corrupt("dense stream has " + std::to_string(got) + " symbols, expected " + std::to_string(t));
  };
  // The CPU decoder's own stream parser: every check DecodeStream makes before decoding, with
  // the same codes. It reads the table and the block index, never the payload (the device path
  // has fetched only DenseParsePrefixBound bytes of it).
  ParsedStream p;
  SPLITRANS_RETURN_IF_ERROR(ParseStream(&rd, static_cast<uint32_t>(t), (1u << hdr.h.q) - 1,
                                        /*byte_symbols=*/false, &p));
  s.kind = p.kind;
  s.n = p.n;
  if (p.kind == StreamKind::kRans) {
    s.symbol = 0;
    s.prob_bits = p.prob_bits;
    s.lanes_log2 = p.lanes_log2;
    s.block_log2 = p.block_log2;
    s.alphabet = p.alphabet;
    // Frequencies from the parsed slot table (a symbol's first slot has offset 0), starts as
    // their running sums in symbol order, as the table lists them.
    s.freq.assign(p.alphabet, 0);
    s.start.resize(p.alphabet);
    const uint32_t slots = 1u << p.prob_bits;
    for (uint32_t slot = 0; slot < slots; ++slot) {
      if (p.packed32) {
        const uint32_t e = p.dtab32[slot];
        if ((e & 0xFFF) == 0) s.freq[e >> 24] = (e >> 12) & 0xFFF;
      } else {
        const uint64_t e = p.dtab64[slot];
        if ((e >> 32) == 0) s.freq[e & 0xFFFF] = static_cast<uint32_t>((e >> 16) & 0xFFFF);
      }
    }
    uint32_t sum = 0;
    for (uint32_t k = 0; k < p.alphabet; ++k) s.start[k] = sum, sum += s.freq[k];
    // The block index ParseStream has validated: one varint per block.
    const uint32_t block_size = 1u << p.block_log2;
    const uint32_t blocks = static_cast<uint32_t>((uint64_t{p.n} + block_size - 1) >> p.block_log2);
    s.word_counts.resize(blocks);
    s.block_offsets.resize(blocks);
    ByteReader index(p.index, static_cast<size_t>(p.payload - p.index));
    uint64_t payload = 0;
    for (uint32_t b = 0; b < blocks; ++b) {
      const uint32_t syms = static_cast<uint32_t>(std::min<uint64_t>(block_size, p.n - uint64_t{b} * block_size));
      SPLITRANS_RETURN_IF_ERROR(index.Varint(&s.word_counts[b], syms, "block word count"));
      s.block_offsets[b] = payload;
      payload += 4ull * (1u << p.lanes_log2) + 2ull * s.word_counts[b];
    }
    s.payload_offset = static_cast<size_t>(p.payload - data);
    s.payload_bytes = p.payload_bytes;
  } else if (p.kind == StreamKind::kConstant) {
    s.symbol = p.symbol;
  }
  // The CPU decoder decodes here and then compares the count: a short stream is corrupt either
  // way.
  if (s.n != t) return count_mismatch(s.n);
  if (rd.remaining() != 0) return Corrupt(std::to_string(rd.remaining()) + " unused bytes at the end of the body");
  return Status::Ok();
}

size_t DecodeTableBytes(const DenseStreamInfo& s, size_t* fs_offset) {
  const size_t slots = size_t{1} << s.prob_bits;
  if (s.prob_bits <= kPackedMaxProbBits) {
    if (fs_offset) *fs_offset = 0;
    return 4 * slots;
  }
  const size_t fs = Align(slots, 16);
  if (fs_offset) *fs_offset = fs;
  return Align(fs + 4 * size_t{s.alphabet}, 16);
}

void BuildDecodeTable(const DenseStreamInfo& s, uint8_t* out) {
  size_t fs_offset;
  DecodeTableBytes(s, &fs_offset);
  if (s.prob_bits <= kPackedMaxProbBits) {
    uint32_t* packed = reinterpret_cast<uint32_t*>(out);
    for (uint32_t k = 0; k < s.alphabet; ++k) {
      for (uint32_t b = 0; b < s.freq[k]; ++b) packed[s.start[k] + b] = k << 24 | s.freq[k] << 12 | b;
    }
    return;
  }
  for (uint32_t k = 0; k < s.alphabet; ++k) {
    std::memset(out + s.start[k], static_cast<int>(k), s.freq[k]);
    const uint32_t fs = s.freq[k] | s.start[k] << 16;
    std::memcpy(out + fs_offset + 4 * size_t{k}, &fs, 4);
  }
}

}  // namespace splitrans::codec::gpu

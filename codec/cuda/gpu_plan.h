// Host side of the CUDA dense codec that needs no CUDA: size bounds, the workspace layout of an
// encode batch, and the validation of bitstreams that runs on the host before any decode kernel
// (FORMAT.md "Decoding and validation order", same checks and error codes as the CPU Decoder).
// Plain C++: gpu_core_test.cc exercises it on machines without a GPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "codec/codec.h"
#include "codec/cuda/gpu_core.h"
#include "codec/header.h"
#include "codec/status.h"
#include "codec/wire.h"

namespace splitrans::codec::gpu {

// Upper bound of the bytes the GPU encoder writes for a tensor of t elements and this rank
// (dense or constant layout): header, shape, stream header and table, block index, W = 32
// states per block, at most one 16-bit word per symbol, checksum.
uint64_t MaxDenseEncodedSize(uint64_t t, int rank);

// log2_table[f] = std::log2(double(f)) for f in [1, kLog2TableSize) (entry 0 unused): the same
// libm call as the CPU's ChooseProbBits, uploaded for the table kernel. REQUIRES: kLog2TableSize
// entries.
void FillLog2Table(double* log2_table);

// One tensor of an encode batch, as the host sees it.
struct EncodeRequest {
  const void* in = nullptr;       // device: product(shape) elements of dtype
  DType dtype = DType::kFloat32;
  const int64_t* shape = nullptr; // host: rank entries
  int rank = 0;
  uint8_t* out = nullptr;         // device: out_capacity bytes
  size_t out_capacity = 0;
};

// Where each part of an encode batch lives in the device workspace (byte offsets, 256-aligned).
struct EncodeLayout {
  size_t items = 0, tile_prefix = 0, block_prefix = 0, asm_prefix = 0;
  size_t desc_bytes = 0;   // [0, desc_bytes): descriptors uploaded from the host
  size_t accum = 0, accum_bytes = 0;  // zeroed before the kernels
  size_t state = 0, blocks = 0, symbols = 0, words = 0;
  size_t total = 0;        // workspace bytes needed
  uint32_t total_tiles = 0, total_blocks = 0, total_asm = 0;
};

// Validates the batch like Encoder::Encode validates one tensor (rank, dimensions, element
// count, null data, dtype, q) plus the output capacity, and lays it out. *desc receives the
// descriptor bytes to upload to workspace offset 0 (items with their offsets, and prefixes).
// Errors: INVALID_ARGUMENT naming the item.
Status PlanEncode(const EncodeRequest* requests, size_t count, int q, EncodeLayout* layout,
                  std::vector<uint8_t>* desc);

// The fixed header and shape are validated by ValidateHeader (codec/header.h), the CPU
// Decoder's own check, into the ValidatedHeader both decoders use; for device-resident
// bitstreams its ExternalCrc carries the checksum computed on the GPU.

// A dense body (layout 1) parsed without decoding its payload.
struct DenseStreamInfo {
  StreamKind kind = StreamKind::kEmpty;
  uint32_t n = 0;
  uint32_t symbol = 0;  // constant stream
  int prob_bits = 0, lanes_log2 = 0, block_log2 = 0;
  uint32_t alphabet = 0;
  std::vector<uint32_t> freq, start, word_counts;
  std::vector<uint64_t> block_offsets;  // of each block's payload from payload_offset
  size_t payload_offset = 0;            // from the start of the bitstream
  size_t payload_bytes = 0;
};

// Bytes at the start of a dense bitstream of t elements that ParseDenseBody may read (header,
// shape, stream parameters, table, block index): the device path fetches this prefix.
size_t DenseParsePrefixBound(uint64_t t, int rank);

// Step 10 for the dense layout up to the payload: the checks of DecodeStream before it decodes
// (same codes), the symbol count against T, and that the payload ends the body. data: host,
// readable up to min(hdr.body_end, DenseParsePrefixBound(...)). The payload's own checks
// (states, word counts, final states) run in the decode kernel.
Status ParseDenseBody(const uint8_t* data, const ValidatedHeader& hdr, DenseStreamInfo* out);

// Size of the decoder table of a parsed rANS stream: for prob_bits <= kPackedMaxProbBits
// u32 packed[2^P] = sym << 24 | freq << 12 | (slot - start); else u8 sym_of_slot[2^P] then
// u32 fs[alphabet] = freq | start << 16 at *fs_offset (nullable).
size_t DecodeTableBytes(const DenseStreamInfo& s, size_t* fs_offset);
// Writes it. REQUIRES: out holds DecodeTableBytes(s) bytes, 4-byte aligned.
void BuildDecodeTable(const DenseStreamInfo& s, uint8_t* out);

}  // namespace splitrans::codec::gpu

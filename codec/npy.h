// NumPy .npy files (format 1.0/2.0/3.0) holding little-endian float32 or float16 C-order arrays
// (and, for callers that ask, uint8). Used by the command-line tool, the benchmark and the
// client; not part of the codec proper.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "codec/status.h"

namespace splitrans::codec {

// A decoded .npy array: C order, little-endian element bytes, rank >= 1.
struct NpyArray {
  DType dtype = DType::kFloat32;  // for float arrays (not is_uint8)
  bool is_uint8 = false;          // '|u1' data: only when the caller accepts it
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;     // ElementCount() * item size bytes

  uint64_t ElementCount() const;
  // REQUIRES: !is_uint8.
  TensorView View() const { return TensorView{bytes.empty() ? nullptr : bytes.data(), dtype, shape}; }
};

// Bytes per element: 4 for float32, 2 for float16.
size_t NpyItemSize(DType dtype);

// Parses a whole .npy file held in memory. `name` prefixes error messages ("x.npy: ...").
// Accepts dtype '<f4' and '<f2', fortran_order False, shapes of rank 1..kMaxNpyRank; rejects
// everything else (and truncated data or trailing bytes) with a message naming the problem.
// Errors: BAD_MAGIC, UNSUPPORTED_VERSION, TRUNCATED, BAD_HEADER_FIELD (malformed header),
// INVALID_ARGUMENT (well-formed but unsupported: dtype, fortran_order, 0-d arrays, sizes).
// accept_uint8: also accept dtype '|u1' (is_uint8 set).
Result<NpyArray> ParseNpy(const uint8_t* data, size_t size, const std::string& name = "npy",
                          bool accept_uint8 = false);

// Reads path. Allocations are bounded by the file's actual size.
Result<NpyArray> ReadNpy(const std::string& path, bool accept_uint8 = false);

// Serializes an array as numpy.save does (format 1.0, header padded to a multiple of 64 bytes
// with numpy's spare space for growing the first axis; 2.0 when the header needs it).
// data holds product(shape) elements of dtype. Errors: INVALID_ARGUMENT on a bad shape or size.
Status SerializeNpy(DType dtype, const std::vector<int64_t>& shape, const void* data, size_t data_bytes,
                    std::vector<uint8_t>* out);

// Writes the serialized array to path (replacing it).
Status WriteNpy(const std::string& path, DType dtype, const std::vector<int64_t>& shape, const void* data,
                size_t data_bytes);
inline Status WriteNpy(const std::string& path, const NpyArray& array) {
  return WriteNpy(path, array.dtype, array.shape, array.bytes.data(), array.bytes.size());
}

constexpr int kMaxNpyRank = 32;  // numpy's own limit (NPY_MAXDIMS before 2.0)

}  // namespace splitrans::codec

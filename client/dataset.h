// Readers for client inputs: gzip'd IDX files (MNIST / Fashion-MNIST) and .npy arrays.
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace splitrans::client {

struct IdxImages {
  int64_t count = 0, rows = 0, cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols
};

// Reads an IDX image file (magic 0x803), gzip'd or not; at most `limit` images (0: all).
absl::StatusOr<IdxImages> ReadIdxImages(const std::string& path, int64_t limit = 0);
// Reads an IDX label file (magic 0x801).
absl::StatusOr<std::vector<uint8_t>> ReadIdxLabels(const std::string& path, int64_t limit = 0);

struct NpyArray {
  std::string dtype;             // "FP32" or "UINT8" (float64 is converted to FP32)
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;     // little-endian, C order
};
// Reads a .npy file (version 1/2, C order, <f4, <f8 or |u1).
absl::StatusOr<NpyArray> ReadNpy(const std::string& path);

}  // namespace splitrans::client

// Readers for client inputs: gzip'd IDX files (MNIST / Fashion-MNIST). (.npy: codec/npy.h.)
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

}  // namespace splitrans::client

// Readers for client inputs: gzip'd IDX files (MNIST / Fashion-MNIST) and directories of encoded
// images (JPEG/PNG, sent as they are). (.npy: codec/npy.h.)
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

struct EncodedImages {
  std::vector<std::string> names;  // file names (no directory), sorted
  std::vector<std::string> bytes;  // each file's bytes as stored
};

// Reads the .jpg/.jpeg/.png files (case-insensitive) of a directory, sorted by name; at most
// `limit` files (0: all). Nothing is decoded. INVALID_ARGUMENT for a directory with no such
// file or a file over kMaxEncodedImageBytes; NOT_FOUND for a missing directory.
absl::StatusOr<EncodedImages> ReadImageDir(const std::string& dir, int64_t limit = 0);

}  // namespace splitrans::client

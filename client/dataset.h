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

// A text as token ids of a character-level model: the UTF-8 text is cut into characters (code
// points), character c becomes the index of the label equal to c (labels: the manifest's, label i
// names token id i). INVALID_ARGUMENT for a label that is not one character, invalid UTF-8, or a
// character not in the vocabulary (the message names it, its position in characters and its line).
absl::StatusOr<std::vector<int64_t>> TextToTokens(const std::string& text, const std::vector<std::string>& labels);

// The file's bytes (at most max_bytes; INVALID_ARGUMENT for a larger file, NOT_FOUND for a missing one).
absl::StatusOr<std::string> ReadTextFile(const std::string& path, size_t max_bytes = size_t{64} << 20);

// Next-character windows over tokens: window w is tokens[w * stride, w * stride + length) and its
// label tokens[w * stride + length]. How many fit (at most limit; 0: no limit).
int64_t CountWindows(int64_t tokens, int64_t length, int64_t stride, int64_t limit = 0);

// A character shown in a message: printable ASCII as it is, the others as \n, \t or U+XXXX.
std::string ShowChar(const std::string& c);

}  // namespace splitrans::client

#include "client/dataset.h"

#include <absl/strings/str_cat.h>
#include <zlib.h>

#include <cstring>
#include <fstream>

namespace splitrans::client {
namespace {

absl::StatusOr<std::string> ReadGz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files too
  if (!f) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::string out;
  char buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof(buf))) > 0) out.append(buf, n);
  bool err = n < 0;
  gzclose(f);
  if (err) return absl::DataLossError(absl::StrCat(path, ": gzip read error"));
  return out;
}

uint32_t BigEndian32(const std::string& s, size_t pos) {
  return (uint32_t(uint8_t(s[pos])) << 24) | (uint32_t(uint8_t(s[pos + 1])) << 16) |
         (uint32_t(uint8_t(s[pos + 2])) << 8) | uint32_t(uint8_t(s[pos + 3]));
}

}  // namespace

absl::StatusOr<IdxImages> ReadIdxImages(const std::string& path, int64_t limit) {
  auto data = ReadGz(path);
  if (!data.ok()) return data.status();
  const std::string& s = *data;
  if (s.size() < 16 || BigEndian32(s, 0) != 0x803) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not an IDX image file"));
  }
  IdxImages img;
  img.count = BigEndian32(s, 4);
  img.rows = BigEndian32(s, 8);
  img.cols = BigEndian32(s, 12);
  if (img.rows <= 0 || img.cols <= 0 || img.rows > 4096 || img.cols > 4096 ||
      s.size() - 16 < static_cast<uint64_t>(img.count * img.rows * img.cols)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": truncated or bad IDX header"));
  }
  if (limit > 0 && limit < img.count) img.count = limit;
  img.pixels.assign(s.begin() + 16, s.begin() + 16 + img.count * img.rows * img.cols);
  return img;
}

absl::StatusOr<std::vector<uint8_t>> ReadIdxLabels(const std::string& path, int64_t limit) {
  auto data = ReadGz(path);
  if (!data.ok()) return data.status();
  const std::string& s = *data;
  if (s.size() < 8 || BigEndian32(s, 0) != 0x801) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not an IDX label file"));
  }
  int64_t count = BigEndian32(s, 4);
  if (s.size() - 8 < static_cast<uint64_t>(count)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": truncated"));
  }
  if (limit > 0 && limit < count) count = limit;
  return std::vector<uint8_t>(s.begin() + 8, s.begin() + 8 + count);
}

}  // namespace splitrans::client

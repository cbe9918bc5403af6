#include "client/dataset.h"

#include <absl/strings/ascii.h>
#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "common/limits.h"

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

absl::StatusOr<EncodedImages> ReadImageDir(const std::string& dir, int64_t limit) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return absl::NotFoundError(absl::StrCat(dir, ": not a directory"));
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string name = it->path().filename().string();
    const std::string lower = absl::AsciiStrToLower(name);
    if (absl::EndsWith(lower, ".jpg") || absl::EndsWith(lower, ".jpeg") || absl::EndsWith(lower, ".png")) {
      names.push_back(name);
    }
  }
  if (ec) return absl::InvalidArgumentError(absl::StrCat(dir, ": ", ec.message()));
  if (names.empty()) return absl::InvalidArgumentError(absl::StrCat(dir, ": no .jpg/.jpeg/.png files"));
  std::sort(names.begin(), names.end());
  if (limit > 0 && static_cast<size_t>(limit) < names.size()) names.resize(limit);
  EncodedImages out;
  for (const std::string& name : names) {
    const std::string path = (fs::path(dir) / name).string();
    const uintmax_t size = fs::file_size(path, ec);
    if (ec) return absl::InvalidArgumentError(absl::StrCat(path, ": ", ec.message()));
    if (size == 0 || size > kMaxEncodedImageBytes) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", size, " bytes (allowed 1..", kMaxEncodedImageBytes, ")"));
    }
    std::ifstream f(path, std::ios::binary);
    std::string bytes(size, '\0');
    if (!f.read(bytes.data(), static_cast<std::streamsize>(size))) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": read error"));
    }
    out.names.push_back(name);
    out.bytes.push_back(std::move(bytes));
  }
  return out;
}

}  // namespace splitrans::client

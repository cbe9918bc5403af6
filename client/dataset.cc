#include "client/dataset.h"

#include <absl/strings/ascii.h>
#include <absl/strings/match.h>
#include <absl/strings/str_cat.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
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

namespace {

// Length of the UTF-8 sequence starting at s[i] (0: invalid).
size_t Utf8Length(const std::string& s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (len == 0 || i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 0;
  }
  return len;
}

uint32_t CodePoint(const std::string& c) {
  const auto* p = reinterpret_cast<const unsigned char*>(c.data());
  switch (c.size()) {
    case 1: return p[0];
    case 2: return (p[0] & 0x1fu) << 6 | (p[1] & 0x3fu);
    case 3: return (p[0] & 0x0fu) << 12 | (p[1] & 0x3fu) << 6 | (p[2] & 0x3fu);
    case 4: return (p[0] & 0x07u) << 18 | (p[1] & 0x3fu) << 12 | (p[2] & 0x3fu) << 6 | (p[3] & 0x3fu);
    default: return 0;
  }
}

}  // namespace

std::string ShowChar(const std::string& c) {
  if (c == "\n") return "\\n";
  if (c == "\t") return "\\t";
  if (c.size() == 1 && c[0] >= 0x20 && c[0] < 0x7f) return c;
  char buf[16];
  std::snprintf(buf, sizeof(buf), "U+%04X", CodePoint(c));
  return buf;
}

absl::StatusOr<std::vector<int64_t>> TextToTokens(const std::string& text, const std::vector<std::string>& labels) {
  std::map<std::string, int64_t> ids;
  for (size_t i = 0; i < labels.size(); ++i) {
    const std::string& l = labels[i];
    if (l.empty() || Utf8Length(l, 0) != l.size()) {
      return absl::InvalidArgumentError(absl::StrCat("label ", i, " ('", l.substr(0, 16),
                                                     "') is not one character: not a character-level model"));
    }
    ids.emplace(l, static_cast<int64_t>(i));
  }
  std::vector<int64_t> out;
  out.reserve(text.size());
  int64_t line = 1;
  for (size_t i = 0; i < text.size();) {
    const size_t len = Utf8Length(text, i);
    if (len == 0) {
      return absl::InvalidArgumentError(absl::StrCat("invalid UTF-8 at byte ", i, " (line ", line, ")"));
    }
    const std::string c = text.substr(i, len);
    auto it = ids.find(c);
    if (it == ids.end()) {
      return absl::InvalidArgumentError(absl::StrCat("character '", ShowChar(c), "' at position ", out.size(),
                                                     " (line ", line, ") is not in the model's vocabulary"));
    }
    out.push_back(it->second);
    if (c == "\n") ++line;
    i += len;
  }
  return out;
}

absl::StatusOr<std::string> ReadTextFile(const std::string& path, size_t max_bytes) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError(absl::StrCat("cannot open '", path, "'"));
  std::string s;
  char buf[1 << 16];
  while (f.read(buf, sizeof(buf)) || f.gcount() > 0) {
    s.append(buf, static_cast<size_t>(f.gcount()));
    if (s.size() > max_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("'", path, "' is over ", max_bytes, " bytes"));
    }
  }
  return s;
}

int64_t CountWindows(int64_t tokens, int64_t length, int64_t stride, int64_t limit) {
  if (length < 1 || stride < 1 || tokens <= length) return 0;
  const int64_t n = (tokens - length - 1) / stride + 1;
  return limit > 0 ? std::min(n, limit) : n;
}

}  // namespace splitrans::client

#include "client/dataset.h"

#include <absl/strings/str_cat.h>
#include <zlib.h>

#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

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

absl::StatusOr<NpyArray> ReadNpy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string s = ss.str();
  if (s.size() < 10 || std::memcmp(s.data(), "\x93NUMPY", 6) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a .npy file"));
  }
  const int major = uint8_t(s[6]);
  size_t hlen = 0, hstart = 0;
  if (major == 1) {
    hlen = uint8_t(s[8]) | (uint8_t(s[9]) << 8);
    hstart = 10;
  } else if (s.size() >= 12) {
    hlen = uint8_t(s[8]) | (uint8_t(s[9]) << 8) | (uint8_t(s[10]) << 16) | (size_t(uint8_t(s[11])) << 24);
    hstart = 12;
  }
  if (hstart == 0 || s.size() < hstart + hlen) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": bad .npy header"));
  }
  const std::string header = s.substr(hstart, hlen);
  std::smatch m;
  std::string descr;
  if (std::regex_search(header, m, std::regex("'descr':\\s*'([^']+)'"))) descr = m[1];
  if (header.find("'fortran_order': True") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": Fortran order is not supported"));
  }
  NpyArray a;
  if (std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)"))) {
    std::string dims = m[1];
    std::regex num("\\d+");
    for (auto it = std::sregex_iterator(dims.begin(), dims.end(), num); it != std::sregex_iterator(); ++it) {
      a.shape.push_back(std::stoll(it->str()));
    }
  }
  int64_t n = 1;
  for (int64_t d : a.shape) n *= d;
  const char* body = s.data() + hstart + hlen;
  const size_t avail = s.size() - hstart - hlen;
  if (descr == "<f4" || descr == "<f8") {
    const size_t es = descr == "<f4" ? 4 : 8;
    if (avail < n * es) return absl::InvalidArgumentError(absl::StrCat(path, ": truncated"));
    a.dtype = "FP32";
    a.data.resize(n * 4);
    for (int64_t i = 0; i < n; ++i) {
      float v;
      if (es == 4) {
        std::memcpy(&v, body + i * 4, 4);
      } else {
        double d;
        std::memcpy(&d, body + i * 8, 8);
        v = static_cast<float>(d);
      }
      std::memcpy(a.data.data() + i * 4, &v, 4);
    }
  } else if (descr == "|u1") {
    if (avail < static_cast<size_t>(n)) return absl::InvalidArgumentError(absl::StrCat(path, ": truncated"));
    a.dtype = "UINT8";
    a.data.assign(body, body + n);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(path, ": dtype '", descr, "' not supported (<f4, <f8, |u1)"));
  }
  return a;
}

}  // namespace splitrans::client

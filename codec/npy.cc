// NumPy .npy reader and writer (float32/float16, and uint8 on request; C order), strict about everything else.
#include "codec/npy.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>

namespace splitrans::codec {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "npy.cc assumes a little-endian host");

constexpr uint8_t kNpyMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
constexpr size_t kMagicAndVersionBytes = 8;
constexpr size_t kArrayAlign = 64;
constexpr size_t kGrowthAxisMaxDigits = 21;  // numpy's spare space for growing the first axis

Status BadHeader(const std::string& name, const std::string& what) {
  return Status(ErrorCode::kBadHeaderField, name + ": malformed .npy header: " + what);
}

// Reads the 8-byte magic/version and the header length; *header_end is where the data starts.
Status ParsePreamble(const uint8_t* p, size_t avail, uint64_t file_size, const std::string& name,
                     size_t* header_end) {
  if (file_size < kMagicAndVersionBytes || avail < kMagicAndVersionBytes) {
    if (file_size >= sizeof(kNpyMagic) && std::memcmp(p, kNpyMagic, sizeof(kNpyMagic)) != 0) {
      return Status(ErrorCode::kBadMagic, name + ": not a .npy file (bad magic)");
    }
    return Truncated(name + ": file has " + std::to_string(file_size) + " bytes, too short for a .npy header");
  }
  if (std::memcmp(p, kNpyMagic, sizeof(kNpyMagic)) != 0) {
    return Status(ErrorCode::kBadMagic, name + ": not a .npy file (bad magic)");
  }
  const int major = p[6], minor = p[7];
  if (major < 1 || major > 3 || minor != 0) {
    return Status(ErrorCode::kUnsupportedVersion, name + ": .npy format version " + std::to_string(major) + "." +
                                                      std::to_string(minor) + " not supported (need 1.0, 2.0 or 3.0)");
  }
  const size_t len_bytes = major == 1 ? 2 : 4;
  const size_t preamble = kMagicAndVersionBytes + len_bytes;
  if (file_size < preamble || avail < preamble) {
    return Truncated(name + ": file has " + std::to_string(file_size) + " bytes, too short for a .npy header");
  }
  uint64_t hlen = p[8] | uint32_t{p[9]} << 8;
  if (major > 1) hlen |= uint32_t{p[10]} << 16 | uint32_t{p[11]} << 24;
  if (preamble + hlen > file_size) {
    return Truncated(name + ": .npy header declares " + std::to_string(hlen) + " bytes, file has only " +
                     std::to_string(file_size - preamble) + " after the preamble");
  }
  *header_end = static_cast<size_t>(preamble + hlen);
  return Status::Ok();
}

// A tiny parser for the header's Python dict literal, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class DictParser {
 public:
  DictParser(const char* s, size_t n, const std::string& name) : s_(s), n_(n), name_(name) {}

  Status Parse(bool accept_uint8, DType* dtype, bool* is_uint8, std::vector<int64_t>* shape) {
    std::string descr;
    bool fortran = false, have_descr = false, have_fortran = false, have_shape = false;
    SkipSpace();
    if (!Eat('{')) return BadHeader(name_, "expected '{'");
    while (true) {
      SkipSpace();
      if (Eat('}')) break;
      std::string key;
      SPLITRANS_RETURN_IF_ERROR(String(&key, "a quoted key"));
      SkipSpace();
      if (!Eat(':')) return BadHeader(name_, "expected ':' after '" + key + "'");
      SkipSpace();
      if (key == "descr") {
        if (have_descr) return BadHeader(name_, "duplicate key 'descr'");
        have_descr = true;
        if (Peek() == '[') return InvalidArgument(name_ + ": structured dtypes are not supported (need '<f4' or '<f2')");
        SPLITRANS_RETURN_IF_ERROR(String(&descr, "a dtype string"));
      } else if (key == "fortran_order") {
        if (have_fortran) return BadHeader(name_, "duplicate key 'fortran_order'");
        have_fortran = true;
        if (Word("True")) {
          fortran = true;
        } else if (Word("False")) {
          fortran = false;
        } else {
          return BadHeader(name_, "fortran_order must be True or False");
        }
      } else if (key == "shape") {
        if (have_shape) return BadHeader(name_, "duplicate key 'shape'");
        have_shape = true;
        SPLITRANS_RETURN_IF_ERROR(Tuple(shape));
      } else {
        return BadHeader(name_, "unexpected key '" + key + "'");
      }
      SkipSpace();
      if (Eat(',')) continue;
      if (Eat('}')) break;
      return BadHeader(name_, "expected ',' or '}' after '" + key + "'");
    }
    SkipSpace();
    if (pos_ != n_) return BadHeader(name_, "unexpected characters after the dict");
    if (!have_descr || !have_fortran || !have_shape) {
      return BadHeader(name_, "missing key '" +
                                  std::string(!have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape") + "'");
    }
    const std::string need = accept_uint8 ? "'<f4', '<f2' or '|u1'" : "'<f4' or '<f2'";
    *is_uint8 = false;
    if (descr == "<f4") {
      *dtype = DType::kFloat32;
    } else if (descr == "<f2") {
      *dtype = DType::kFloat16;
    } else if (accept_uint8 && (descr == "|u1" || descr == "<u1" || descr == "u1")) {
      *is_uint8 = true;
    } else if (!descr.empty() && descr[0] == '>') {
      return InvalidArgument(name_ + ": dtype '" + descr + "' is big-endian; not supported (need " + need + ")");
    } else {
      return InvalidArgument(name_ + ": dtype '" + descr + "' not supported (need " + need + ")");
    }
    if (fortran) {
      return InvalidArgument(name_ + ": fortran_order arrays are not supported (save a C-order array, e.g. "
                                     "numpy.ascontiguousarray)");
    }
    if (shape->empty()) {
      return InvalidArgument(name_ + ": 0-d (scalar) arrays are not supported (shape ()); save a 1-d array");
    }
    return Status::Ok();
  }

 private:
  char Peek() const { return pos_ < n_ ? s_[pos_] : '\0'; }
  bool Eat(char c) {
    if (Peek() != c || pos_ >= n_) return false;
    ++pos_;
    return true;
  }
  void SkipSpace() {
    while (pos_ < n_ && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool Word(const char* w) {
    const size_t len = std::strlen(w);
    if (n_ - pos_ < len || std::memcmp(s_ + pos_, w, len) != 0) return false;
    pos_ += len;
    return true;
  }
  Status String(std::string* out, const char* what) {
    const char quote = Peek();
    if (quote != '\'' && quote != '"') return BadHeader(name_, std::string("expected ") + what);
    ++pos_;
    const size_t start = pos_;
    while (pos_ < n_ && s_[pos_] != quote) {
      if (s_[pos_] == '\\') return BadHeader(name_, "escape sequences in strings are not supported");
      ++pos_;
    }
    if (pos_ >= n_) return BadHeader(name_, "unterminated string");
    out->assign(s_ + start, pos_ - start);
    ++pos_;
    return Status::Ok();
  }
  Status Tuple(std::vector<int64_t>* shape) {
    shape->clear();
    if (!Eat('(')) return BadHeader(name_, "shape must be a tuple");
    SkipSpace();
    if (Eat(')')) return Status::Ok();
    while (true) {
      SkipSpace();
      if (Peek() < '0' || Peek() > '9') return BadHeader(name_, "shape entries must be non-negative integers");
      uint64_t v = 0;
      while (Peek() >= '0' && Peek() <= '9') {
        const uint64_t digit = static_cast<uint64_t>(Peek() - '0');
        if (v > (static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) - digit) / 10) {
          return BadHeader(name_, "shape entry too large");
        }
        v = v * 10 + digit;
        ++pos_;
      }
      Eat('L');  // Python 2 long literal
      if (shape->size() >= static_cast<size_t>(kMaxNpyRank)) {
        return InvalidArgument(name_ + ": arrays of rank > " + std::to_string(kMaxNpyRank) + " are not supported");
      }
      shape->push_back(static_cast<int64_t>(v));
      SkipSpace();
      if (Eat(')')) {
        if (shape->size() == 1) return BadHeader(name_, "a 1-tuple shape needs a trailing comma");
        return Status::Ok();
      }
      if (!Eat(',')) return BadHeader(name_, "expected ',' or ')' in shape");
      SkipSpace();
      if (Eat(')')) return Status::Ok();
    }
  }

  const char* s_;
  size_t n_;
  size_t pos_ = 0;
  const std::string& name_;
};

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// Checks that data_avail bytes hold exactly the array; *data_bytes receives that size.
Status CheckDataSize(const std::vector<int64_t>& shape, size_t item_size, uint64_t data_avail, const std::string& name,
                     size_t* data_bytes) {
  uint64_t need = item_size;
  bool zero = false;
  for (int64_t d : shape) zero |= d == 0;
  if (zero) {
    need = 0;
  } else {
    for (int64_t d : shape) {
      const uint64_t u = static_cast<uint64_t>(d);
      if (need > data_avail / u) {  // need * u > data_avail, without overflow
        return Truncated(name + ": shape " + ShapeString(shape) + " needs more than the " +
                         std::to_string(data_avail) + " data bytes in the file (truncated?)");
      }
      need *= u;
    }
  }
  if (need < data_avail) {
    return Status(ErrorCode::kTrailingBytes, name + ": " + std::to_string(data_avail - need) +
                                                 " unexpected bytes after the array data of shape " + ShapeString(shape));
  }
  *data_bytes = static_cast<size_t>(need);
  return Status::Ok();
}

// Parses the header block [0, header_end) (preamble already validated).
Status ParseHeaderBlock(const uint8_t* p, size_t header_end, const std::string& name, bool accept_uint8,
                        NpyArray* out) {
  const size_t preamble = p[6] == 1 ? 10 : 12;
  return DictParser(reinterpret_cast<const char*>(p) + preamble, header_end - preamble, name)
      .Parse(accept_uint8, &out->dtype, &out->is_uint8, &out->shape);
}

size_t ItemSize(const NpyArray& a) { return a.is_uint8 ? 1 : NpyItemSize(a.dtype); }

}  // namespace

uint64_t NpyArray::ElementCount() const {
  uint64_t t = 1;
  for (int64_t d : shape) t *= static_cast<uint64_t>(d);
  return t;
}

size_t NpyItemSize(DType dtype) { return dtype == DType::kFloat16 ? 2 : 4; }

Result<NpyArray> ParseNpy(const uint8_t* data, size_t size, const std::string& name, bool accept_uint8) {
  if (data == nullptr && size > 0) return InvalidArgument(name + ": null input");
  size_t header_end = 0;
  SPLITRANS_RETURN_IF_ERROR(ParsePreamble(data, size, size, name, &header_end));
  NpyArray out;
  SPLITRANS_RETURN_IF_ERROR(ParseHeaderBlock(data, header_end, name, accept_uint8, &out));
  size_t data_bytes = 0;
  SPLITRANS_RETURN_IF_ERROR(CheckDataSize(out.shape, ItemSize(out), size - header_end, name, &data_bytes));
  out.bytes.assign(data + header_end, data + header_end + data_bytes);
  return out;
}

Result<NpyArray> ReadNpy(const std::string& path, bool accept_uint8) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("cannot open " + path + ": " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff end = in.tellg();
  in.seekg(0, std::ios::beg);
  if (end < 0 || !in) return InvalidArgument("cannot read " + path + ": not a seekable file");
  const uint64_t file_size = static_cast<uint64_t>(end);
  // Preamble, then the header block it declares (bounded by the file size), then the data.
  std::vector<uint8_t> head(static_cast<size_t>(std::min<uint64_t>(file_size, 12)));
  if (!in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()))) {
    return InvalidArgument("cannot read " + path);
  }
  size_t header_end = 0;
  SPLITRANS_RETURN_IF_ERROR(ParsePreamble(head.data(), head.size(), file_size, path, &header_end));
  const size_t have = head.size();
  head.resize(header_end);
  if (header_end > have &&
      !in.read(reinterpret_cast<char*>(head.data() + have), static_cast<std::streamsize>(header_end - have))) {
    return InvalidArgument("cannot read " + path);
  }
  NpyArray out;
  SPLITRANS_RETURN_IF_ERROR(ParseHeaderBlock(head.data(), header_end, path, accept_uint8, &out));
  size_t data_bytes = 0;
  SPLITRANS_RETURN_IF_ERROR(CheckDataSize(out.shape, ItemSize(out), file_size - header_end, path, &data_bytes));
  in.seekg(static_cast<std::streamoff>(header_end), std::ios::beg);
  out.bytes.resize(data_bytes);
  if (data_bytes > 0 && !in.read(reinterpret_cast<char*>(out.bytes.data()), static_cast<std::streamsize>(data_bytes))) {
    return InvalidArgument("cannot read " + path + ": short read");
  }
  return out;
}

Status SerializeNpy(DType dtype, const std::vector<int64_t>& shape, const void* data, size_t data_bytes,
                    std::vector<uint8_t>* out) {
  if (dtype != DType::kFloat32 && dtype != DType::kFloat16) return InvalidArgument("npy: dtype must be float32 or float16");
  if (shape.empty() || shape.size() > static_cast<size_t>(kMaxNpyRank)) {
    return InvalidArgument("npy: rank must be 1.." + std::to_string(kMaxNpyRank) + ", got " +
                           std::to_string(shape.size()));
  }
  uint64_t need = NpyItemSize(dtype);
  bool zero = false;
  for (int64_t d : shape) {
    if (d < 0) return InvalidArgument("npy: negative dimension " + std::to_string(d));
    zero |= d == 0;
  }
  if (zero) {
    need = 0;
  } else {
    for (int64_t d : shape) {
      if (need > data_bytes / static_cast<uint64_t>(d)) need = data_bytes + 1;  // mismatch, no overflow
      else need *= static_cast<uint64_t>(d);
    }
  }
  if (need != data_bytes) {
    return InvalidArgument("npy: shape " + ShapeString(shape) + " does not match " + std::to_string(data_bytes) +
                           " data bytes");
  }
  if (data_bytes > 0 && data == nullptr) return InvalidArgument("npy: data is null");
  // Exactly numpy.lib.format._write_array_header (numpy 1.24): sorted keys, repr values, spare
  // space for the first axis to grow, then padding so that the data starts 64-byte aligned.
  std::string header = "{'descr': '";
  header += dtype == DType::kFloat16 ? "<f2" : "<f4";
  header += "', 'fortran_order': False, 'shape': " + ShapeString(shape) + ", }";
  const size_t first = std::to_string(shape[0]).size();
  header.append(kGrowthAxisMaxDigits > first ? kGrowthAxisMaxDigits - first : 0, ' ');
  int major = 1;
  size_t hlen = header.size() + 1;  // + '\n'
  size_t pad = kArrayAlign - (kMagicAndVersionBytes + 2 + hlen) % kArrayAlign;
  if (hlen + pad > 0xFFFF) {
    major = 2;
    pad = kArrayAlign - (kMagicAndVersionBytes + 4 + hlen) % kArrayAlign;
  }
  header.append(pad, ' ');
  header += '\n';
  out->assign(kNpyMagic, kNpyMagic + sizeof(kNpyMagic));
  out->push_back(static_cast<uint8_t>(major));
  out->push_back(0);
  const uint32_t len = static_cast<uint32_t>(header.size());
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i) out->push_back(static_cast<uint8_t>(len >> (8 * i)));
  out->insert(out->end(), header.begin(), header.end());
  const uint8_t* d = static_cast<const uint8_t*>(data);
  if (data_bytes > 0) out->insert(out->end(), d, d + data_bytes);
  return Status::Ok();
}

Status WriteNpy(const std::string& path, DType dtype, const std::vector<int64_t>& shape, const void* data,
                size_t data_bytes) {
  std::vector<uint8_t> bytes;
  SPLITRANS_RETURN_IF_ERROR(SerializeNpy(dtype, shape, data, data_bytes, &bytes));
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return InvalidArgument("cannot create " + path + ": " + std::strerror(errno));
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return InvalidArgument("cannot write " + path + ": " + std::strerror(errno));
  return Status::Ok();
}

}  // namespace splitrans::codec

// splitrans-codec: encode/decode/inspect .npy tensors as .srns bitstreams and explore paper mode's N search.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <system_error>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#if defined(SPLITRANS_HAVE_NLOHMANN_JSON)
#include <nlohmann/json.hpp>
#endif

#include "codec/codec.h"
#include "codec/npy.h"
#include "codec/status.h"

#ifndef SPLITRANS_VERSION
#define SPLITRANS_VERSION "unknown"
#endif

namespace splitrans::codec {
namespace {

constexpr const char* kProgram = "splitrans-codec";
constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

using Clock = std::chrono::steady_clock;

double MillisSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// "x.srns: CRC32C mismatch: the bitstream is corrupt (CHECKSUM_MISMATCH)"
Status WithPath(const std::string& path, const Status& s) {
  if (s.ok()) return s;
  return Status(s.code(), path + ": " + s.message());
}

Result<std::vector<uint8_t>> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument("cannot open " + path + ": " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff end = in.tellg();
  in.seekg(0, std::ios::beg);
  if (end < 0 || !in) return InvalidArgument("cannot read " + path + ": not a seekable file");
  std::vector<uint8_t> bytes(static_cast<size_t>(end));
  if (!bytes.empty() && !in.read(reinterpret_cast<char*>(bytes.data()), end)) {
    return InvalidArgument("cannot read " + path);
  }
  return bytes;
}

Status WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return InvalidArgument("cannot create " + path + ": " + std::strerror(errno));
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return InvalidArgument("cannot write " + path + ": " + std::strerror(errno));
  return Status::Ok();
}

const char* DTypeName(DType dtype) { return dtype == DType::kFloat16 ? "float16" : "float32"; }

// numpy's repr: (3,) for rank 1, (2, 3) otherwise.
std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

uint64_t ElementCount(const std::vector<int64_t>& shape) {
  uint64_t t = 1;
  for (int64_t d : shape) t *= static_cast<uint64_t>(d);
  return t;
}

bool HasReshape(Layout layout) { return layout == Layout::kPaper || layout == Layout::kSparse; }

std::string Format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

// The float scale as the shortest decimal that reads back as the same float, as a double.
double ScaleAsDouble(float scale) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", static_cast<double>(scale));
  for (int digits = 1; digits <= 9; ++digits) {
    char shorter[32];
    std::snprintf(shorter, sizeof(shorter), "%.*g", digits, static_cast<double>(scale));
    if (std::strtof(shorter, nullptr) == scale) return std::strtod(shorter, nullptr);
  }
  return std::strtod(buf, nullptr);
}

// ---------------------------------------------------------------------------------------------
// encode

struct EncodeArgs {
  std::string input, output;
  int q = 4;
  std::string mode = "auto";
  std::string search = "alg1";
  std::string quantizer = "aiq";
};

Status RunEncode(const EncodeArgs& a) {
  auto array = ReadNpy(a.input);
  if (!array.ok()) return array.status();
  EncodeOptions opt;
  opt.q = a.q;
  if (!ParseMode(a.mode, &opt.mode)) return InvalidArgument("unknown mode '" + a.mode + "'");
  opt.search = a.search == "exhaustive" ? NSearch::kExhaustive : NSearch::kAlgorithm1;
  if (!ParseQuantizer(a.quantizer, &opt.quantizer)) return InvalidArgument("unknown quantizer '" + a.quantizer + "'");
  Encoder encoder;
  std::vector<uint8_t> out;
  const auto start = Clock::now();
  Status s = encoder.Encode(array->View(), opt, &out);
  const double ms = MillisSince(start);
  if (!s.ok()) return WithPath(a.input, s);
  auto info = Inspect(out.data(), out.size());  // also validates what we are about to write
  if (!info.ok()) return Status(ErrorCode::kInternal, "encoded bitstream does not inspect: " + info.status().message());
  SPLITRANS_RETURN_IF_ERROR(WriteFile(a.output, out));
  const size_t in_bytes = array->bytes.size();
  std::string layout = LayoutName(info->layout);
  if (HasReshape(info->layout)) layout += " (N " + std::to_string(info->n) + ", K " + std::to_string(info->k) + ")";
  std::printf("%s -> %s: %zu -> %zu bytes, ratio %s, layout %s, q %d, encode %.3f ms\n", a.input.c_str(),
              a.output.c_str(), in_bytes, out.size(),
              in_bytes ? Format("%.2fx", static_cast<double>(in_bytes) / static_cast<double>(out.size())).c_str()
                       : "n/a",
              layout.c_str(), a.q, ms);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// decode

// --max-elements and --max-shape of decode and inspect (DecodeLimits).
struct LimitArgs {
  uint64_t max_elements = DecodeLimits().max_elements;
  std::string max_shape;  // "D0,D1,..."; empty: none
};

// "1,64,56,56" -> {1, 64, 56, 56}: one or more non-negative decimal integers.
bool ParseShapeList(const std::string& s, std::vector<int64_t>* out) {
  out->clear();
  const char* p = s.data();
  const char* end = p + s.size();
  while (true) {
    int64_t d = 0;
    const auto r = std::from_chars(p, end, d);
    if (r.ec != std::errc() || d < 0) return false;
    out->push_back(d);
    if (r.ptr == end) return true;
    if (*r.ptr != ',') return false;
    p = r.ptr + 1;
  }
}

void AddLimitOptions(CLI::App* app, LimitArgs* a) {
  app->add_option("--max-elements", a->max_elements,
                  "Refuse a bitstream whose tensor has more elements, before allocating for it")
      ->check(CLI::Validator(
          [](std::string& v) {
            uint64_t n;
            const auto r = std::from_chars(v.data(), v.data() + v.size(), n);
            return r.ec == std::errc() && r.ptr == v.data() + v.size() ? std::string()
                                                                       : "expected a non-negative integer below 2^64";
          },
          "N"))
      ->capture_default_str();
  app->add_option("--max-shape", a->max_shape,
                  "Refuse a bitstream whose shape has another rank or a dimension above the one given, "
                  "e.g. 256,1024,64,64 (default: no limit besides --max-elements)")
      ->check(CLI::Validator(
          [](std::string& v) {
            std::vector<int64_t> dims;
            return ParseShapeList(v, &dims) ? std::string() : "expected comma-separated dimensions, e.g. 1,64,56,56";
          },
          "D0,D1,..."));
}

DecodeLimits ToLimits(const LimitArgs& a) {
  DecodeLimits limits;
  limits.max_elements = a.max_elements;
  if (!a.max_shape.empty()) ParseShapeList(a.max_shape, &limits.max_shape);  // validated by the option
  return limits;
}

struct DecodeArgs {
  std::string input, output;
  LimitArgs limits;
};

Status RunDecode(const DecodeArgs& a) {
  auto bytes = ReadFile(a.input);
  if (!bytes.ok()) return bytes.status();
  Decoder decoder(ToLimits(a.limits));
  DecodedTensor t;
  const auto start = Clock::now();
  Status s = decoder.Decode(bytes->data(), bytes->size(), &t);
  const double ms = MillisSince(start);
  if (!s.ok()) return WithPath(a.input, s);
  if (t.dtype == DType::kFloat16) {
    std::vector<uint16_t> half(t.values.size());
    for (size_t i = 0; i < half.size(); ++i) half[i] = FloatToHalf(t.values[i]);
    SPLITRANS_RETURN_IF_ERROR(WriteNpy(a.output, DType::kFloat16, t.shape, half.data(), half.size() * 2));
  } else {
    SPLITRANS_RETURN_IF_ERROR(WriteNpy(a.output, DType::kFloat32, t.shape, t.values.data(), t.values.size() * 4));
  }
  std::printf("%s -> %s: %s %s, %zu elements, %zu -> %zu bytes, decode %.3f ms\n", a.input.c_str(), a.output.c_str(),
              DTypeName(t.dtype), ShapeString(t.shape).c_str(), t.values.size(), bytes->size(),
              t.values.size() * NpyItemSize(t.dtype), ms);
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// inspect

struct InspectArgs {
  std::string input;
  bool json = false;
  LimitArgs limits;
};

double BitsPerSymbol(const BitstreamInfo::Section& s) {
  return s.symbols ? s.entropy_bits / static_cast<double>(s.symbols) : 0.0;
}

#if defined(SPLITRANS_HAVE_NLOHMANN_JSON)
std::string InspectJson(const std::string& path, const BitstreamInfo& info) {
  nlohmann::ordered_json j;
  const uint64_t t = ElementCount(info.shape);
  j["file"] = path;
  j["version"] = info.version;
  j["dtype"] = DTypeName(info.dtype);
  j["shape"] = info.shape;
  j["elements"] = t;
  j["q"] = info.q;
  j["scale"] = ScaleAsDouble(info.scale);
  j["zero_point"] = info.zero_point;
  j["layout"] = LayoutName(info.layout);
  if (HasReshape(info.layout)) {
    j["n"] = info.n;
    j["k"] = info.k;
  }
  j["total_bytes"] = info.total_bytes;
  j["header_bytes"] = info.header_bytes;
  j["bits_per_element"] = t ? 8.0 * static_cast<double>(info.total_bytes) / static_cast<double>(t) : 0.0;
  j["sections"] = nlohmann::ordered_json::array();
  for (size_t i = 0; i < info.sections.size(); ++i) {
    const auto& s = info.sections[i];
    nlohmann::ordered_json js;
    js["name"] = s.name;
    js["symbols"] = s.symbols;
    js["table_bytes"] = s.table_bytes;
    js["payload_bytes"] = s.payload_bytes;
    js["entropy_bits"] = s.entropy_bits;
    js["entropy_bits_per_symbol"] = BitsPerSymbol(s);
    js["entropy_bytes"] = s.entropy_bits / 8.0;
    j["sections"].push_back(std::move(js));
  }
  return j.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}
#else
// Hand-written JSON with the same structure as the nlohmann-json version.
class JsonWriter {
 public:
  void Key(const char* k) {
    Sep();
    Quote(k);
    out_ += ": ";
    after_key_ = true;
  }
  void Str(const std::string& s) {
    Sep();
    Quote(s);
  }
  void Int(int64_t v) { Raw(std::to_string(v)); }
  void Uint(uint64_t v) { Raw(std::to_string(v)); }
  void Double(double v) {
    if (!std::isfinite(v)) return Raw("null");
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof(buf), v);
    std::string s(buf, r.ptr);
    if (s.find_first_of(".eE") == std::string::npos) s += ".0";
    Raw(s);
  }
  void Open(char c) {
    Sep();
    out_ += c;
    ++depth_;
    first_ = true;
  }
  void Close(char c) {
    --depth_;
    if (!first_) Newline();
    out_ += c;
    first_ = false;
  }
  std::string Take() { return std::move(out_); }

 private:
  void Quote(const std::string& s) {
    out_ += '"';
    for (unsigned char c : s) {
      if (c == '"' || c == '\\') {
        out_ += '\\';
        out_ += static_cast<char>(c);
      } else if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        out_ += buf;
      } else {
        out_ += static_cast<char>(c);
      }
    }
    out_ += '"';
  }
  void Raw(const std::string& s) {
    Sep();
    out_ += s;
  }
  // Before a value or key: a comma after a sibling and a new indented line (not after "key": ).
  void Sep() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (depth_ == 0) return;
    if (!first_) out_ += ',';
    Newline();
    first_ = false;
  }
  void Newline() {
    out_ += '\n';
    out_.append(2 * static_cast<size_t>(depth_), ' ');
  }
  std::string out_;
  int depth_ = 0;
  bool first_ = true;
  bool after_key_ = false;
};

std::string InspectJson(const std::string& path, const BitstreamInfo& info) {
  JsonWriter w;
  const uint64_t t = ElementCount(info.shape);
  w.Open('{');
  w.Key("file"), w.Str(path);
  w.Key("version"), w.Int(info.version);
  w.Key("dtype"), w.Str(DTypeName(info.dtype));
  w.Key("shape"), w.Open('[');
  for (int64_t d : info.shape) w.Int(d);
  w.Close(']');
  w.Key("elements"), w.Uint(t);
  w.Key("q"), w.Int(info.q);
  w.Key("scale"), w.Double(ScaleAsDouble(info.scale));
  w.Key("zero_point"), w.Int(info.zero_point);
  w.Key("layout"), w.Str(LayoutName(info.layout));
  if (HasReshape(info.layout)) {
    w.Key("n"), w.Uint(info.n);
    w.Key("k"), w.Uint(info.k);
  }
  w.Key("total_bytes"), w.Uint(info.total_bytes);
  w.Key("header_bytes"), w.Uint(info.header_bytes);
  w.Key("bits_per_element"), w.Double(t ? 8.0 * static_cast<double>(info.total_bytes) / static_cast<double>(t) : 0.0);
  w.Key("sections"), w.Open('[');
  for (size_t i = 0; i < info.sections.size(); ++i) {
    const auto& s = info.sections[i];
    w.Open('{');
    w.Key("name"), w.Str(s.name);
    w.Key("symbols"), w.Uint(s.symbols);
    w.Key("table_bytes"), w.Uint(s.table_bytes);
    w.Key("payload_bytes"), w.Uint(s.payload_bytes);
    w.Key("entropy_bits"), w.Double(s.entropy_bits);
    w.Key("entropy_bits_per_symbol"), w.Double(BitsPerSymbol(s));
    w.Key("entropy_bytes"), w.Double(s.entropy_bits / 8.0);
    w.Close('}');
  }
  w.Close(']');
  w.Close('}');
  return w.Take();
}
#endif

Status RunInspect(const InspectArgs& a) {
  auto bytes = ReadFile(a.input);
  if (!bytes.ok()) return bytes.status();
  auto r = Inspect(bytes->data(), bytes->size(), ToLimits(a.limits));
  if (!r.ok()) return WithPath(a.input, r.status());
  BitstreamInfo& info = *r;
  if (a.json) {
    std::printf("%s\n", InspectJson(a.input, info).c_str());
    return Status::Ok();
  }
  const uint64_t t = ElementCount(info.shape);
  std::printf("file            %s\n", a.input.c_str());
  std::printf("version         %d\n", info.version);
  std::printf("dtype           %s\n", DTypeName(info.dtype));
  std::printf("shape           %s\n", ShapeString(info.shape).c_str());
  std::printf("elements        %llu\n", static_cast<unsigned long long>(t));
  std::printf("q               %d\n", info.q);
  std::printf("scale           %.9g\n", static_cast<double>(info.scale));
  std::printf("zero point      %d\n", info.zero_point);
  std::printf("layout          %s\n", LayoutName(info.layout));
  if (HasReshape(info.layout)) std::printf("N x K           %u x %u\n", info.n, info.k);
  std::printf("total bytes     %zu", info.total_bytes);
  if (t) std::printf(" (%.4f bits/element)", 8.0 * static_cast<double>(info.total_bytes) / static_cast<double>(t));
  std::printf("\nheader bytes    %zu (fixed header, shape, layout parameters, checksum)\n", info.header_bytes);
  if (info.sections.empty()) {
    std::printf("sections        none (%s layout)\n", LayoutName(info.layout));
    return Status::Ok();
  }
  std::printf("\n%-8s %12s %10s %12s %10s %14s\n", "section", "symbols", "table B", "payload B", "bits/sym",
              "entropy B");
  for (const auto& s : info.sections) {
    std::printf("%-8s %12llu %10zu %12zu %10.4f %14.1f\n", s.name.c_str(), static_cast<unsigned long long>(s.symbols),
                s.table_bytes, s.payload_bytes, BitsPerSymbol(s), s.entropy_bits / 8.0);
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// search

struct SearchArgs {
  std::string input;
  int q = 4;
  bool csv = false;
};

// Index of the first minimum of key over [0, end).
template <typename Key>
size_t ArgMin(const std::vector<NCandidate>& c, size_t end, Key key) {
  size_t best = 0;
  for (size_t i = 1; i < end; ++i)
    if (key(c[i]) < key(c[best])) best = i;
  return best;
}

Status RunSearch(const SearchArgs& a) {
  auto array = ReadNpy(a.input);
  if (!array.ok()) return array.status();
  Encoder encoder;
  auto r = encoder.PaperCandidates(array->View(), a.q);
  if (!r.ok()) return WithPath(a.input, r.status());
  const std::vector<NCandidate>& c = *r;
  const uint64_t t = array->ElementCount();
  if (c.empty()) {
    if (a.csv) {
      std::printf("n,k,len_d,entropy_bits_per_symbol,cost_bits,coded_bytes,visited_by_algorithm1,algorithm1_choice,"
                  "exhaustive_choice,smallest_coded\n");
    } else {
      std::printf("%s: %s %s, %llu elements, q %d: no candidates (the quantized tensor is constant, so paper mode "
                  "writes the constant layout)\n",
                  a.input.c_str(), DTypeName(array->dtype), ShapeString(array->shape).c_str(),
                  static_cast<unsigned long long>(t), a.q);
    }
    return Status::Ok();
  }
  size_t visited = 0;
  while (visited < c.size() && c[visited].visited_by_algorithm1) ++visited;
  const size_t alg1 = ArgMin(c, std::max<size_t>(visited, 1), [](const NCandidate& x) { return x.cost; });
  const size_t exhaustive = ArgMin(c, c.size(), [](const NCandidate& x) { return x.cost; });
  const size_t smallest = ArgMin(c, c.size(), [](const NCandidate& x) { return x.coded_bytes; });
  if (a.csv) {
    std::printf("n,k,len_d,entropy_bits_per_symbol,cost_bits,coded_bytes,visited_by_algorithm1,algorithm1_choice,"
                "exhaustive_choice,smallest_coded\n");
    for (size_t i = 0; i < c.size(); ++i) {
      std::printf("%u,%u,%llu,%.6f,%.1f,%llu,%d,%d,%d,%d\n", c[i].n, c[i].k,
                  static_cast<unsigned long long>(c[i].len_d), c[i].entropy, c[i].cost,
                  static_cast<unsigned long long>(c[i].coded_bytes), c[i].visited_by_algorithm1 ? 1 : 0,
                  i == alg1 ? 1 : 0, i == exhaustive ? 1 : 0, i == smallest ? 1 : 0);
    }
    return Status::Ok();
  }
  std::printf("%s: %s %s, %llu elements, q %d: %zu candidates N (N | T, N > sqrt(T), T/N <= 2^q), "
              "Algorithm 1 visited %zu\n\n",
              a.input.c_str(), DTypeName(array->dtype), ShapeString(array->shape).c_str(),
              static_cast<unsigned long long>(t), a.q, c.size(), visited);
  std::printf("%10s %6s %12s %10s %14s %12s %8s  %s\n", "N", "K", "len_D", "H(D) b/s", "cost bits", "coded B",
              "visited", "choice");
  for (size_t i = 0; i < c.size(); ++i) {
    std::string marks;
    if (i == alg1) marks += " algorithm1";
    if (i == exhaustive) marks += " exhaustive";
    if (i == smallest) marks += " smallest";
    std::printf("%10u %6u %12llu %10.4f %14.1f %12llu %8s %s\n", c[i].n, c[i].k,
                static_cast<unsigned long long>(c[i].len_d), c[i].entropy, c[i].cost,
                static_cast<unsigned long long>(c[i].coded_bytes), c[i].visited_by_algorithm1 ? "yes" : "no",
                marks.c_str());
  }
  std::printf("\nalgorithm1: N %u (%llu bytes); exhaustive (min cost): N %u (%llu bytes); %s\n", c[alg1].n,
              static_cast<unsigned long long>(c[alg1].coded_bytes), c[exhaustive].n,
              static_cast<unsigned long long>(c[exhaustive].coded_bytes),
              alg1 == exhaustive ? "they agree" : "they differ");
  std::printf("smallest exact size: N %u (%llu bytes)\n", c[smallest].n,
              static_cast<unsigned long long>(c[smallest].coded_bytes));
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------

int Fail(const Status& s) {
  std::fflush(stdout);
  std::fprintf(stderr, "%s: %s (%s)\n", kProgram, s.message().c_str(), ErrorCodeName(s.code()));
  return kExitError;
}

int Main(int argc, char** argv) {
  CLI::App app("splitrans-codec " SPLITRANS_VERSION
               ": compress float32/float16 .npy tensors into .srns bitstreams (AIQ quantization + rANS) and back.",
               kProgram);
  app.set_version_flag("--version", SPLITRANS_VERSION, "Print the version and exit");
  app.require_subcommand(1);
  app.footer(
      "Run 'splitrans-codec SUBCOMMAND --help' for the options of each subcommand.\n"
      "Exit status: 0 on success, 1 on a runtime error (unreadable or corrupt file, unsupported input),\n"
      "2 on a usage error. Errors are printed to stderr as 'splitrans-codec: <message> (<CODE>)'.");
  const std::vector<std::string> kModes = ModeNames();
  const std::vector<std::string> kSearches = {"alg1", "exhaustive"};

  EncodeArgs enc;
  CLI::App* encode = app.add_subcommand("encode", "Quantize and entropy-code a .npy tensor into a .srns bitstream");
  encode->add_option("input", enc.input, "Input .npy file: dtype '<f4' or '<f2', C order, rank 1..8, finite values")
      ->required();
  encode->add_option("output", enc.output, "Output .srns bitstream (overwritten)")->required();
  encode->add_option("--q", enc.q, "Bits per quantized value")->check(CLI::Range(kMinQ, kMaxQ))->capture_default_str();
  encode->add_option("--mode", enc.mode,
                     "Layout choice: auto = smallest exact size among dense, sparse and context; paper = the paper's "
                     "merged-table CSR with N chosen by --search; dense, sparse, context = force that layout")
      ->check(CLI::IsMember(kModes))
      ->capture_default_str();
  encode->add_option("--search", enc.search,
                     "How paper mode picks N (ignored by other modes): alg1 = the paper's Algorithm 1 (descending "
                     "N, stops at the first cost increase); exhaustive = minimum cost over every candidate")
      ->check(CLI::IsMember(kSearches))
      ->capture_default_str();
  encode->add_option("--quantizer", enc.quantizer,
                     "Quantization range: aiq = the paper's AIQ over [min, max]; clip = AIQ over a range clipped to "
                     "minimise the squared reconstruction error (outliers are clamped; not with --mode paper). The "
                     "decoder is the same for both")
      ->check(CLI::IsMember({"aiq", "clip"}))
      ->capture_default_str();
  encode->footer(
      "Prints one line: input tensor bytes (elements x 4 or 2) -> output file bytes, the ratio of the two,\n"
      "the layout chosen (with N and K for paper/sparse), q, and the encode time (single call, wall clock).\n"
      "A float16 input is recorded as float16 and decodes back to a float16 .npy.");

  DecodeArgs dec;
  CLI::App* decode = app.add_subcommand("decode", "Decode a .srns bitstream into a .npy file");
  decode->add_option("input", dec.input, "Input .srns bitstream")->required();
  decode->add_option("output", dec.output, "Output .npy file (overwritten)")->required();
  AddLimitOptions(decode, &dec.limits);
  decode->footer(
      "Writes '<f4' (float32), or '<f2' when the encoded tensor was float16, with the encoded shape.\n"
      "The whole bitstream is validated (checksum included) first. Prints one line: dtype, shape,\n"
      "elements, bitstream bytes -> array bytes, and the decode time (single call, wall clock).\n"
      "A shape over --max-elements or --max-shape fails with LIMIT_EXCEEDED before any allocation for\n"
      "the tensor; the decoder needs the tensor's memory and about 1 MiB more.");

  InspectArgs ins;
  CLI::App* inspect = app.add_subcommand("inspect", "Validate a .srns bitstream and print its header and sections");
  inspect->add_option("input", ins.input, "Input .srns bitstream")->required();
  inspect->add_flag("--json", ins.json, "Print one JSON object instead of text");
  AddLimitOptions(inspect, &ins.limits);
  inspect->footer(
      "Prints version, dtype, shape, q, scale, zero point, layout (N x K for paper/sparse), total bytes\n"
      "and header bytes (fixed header + shape + layout parameters + checksum), then per section\n"
      "(q: dense; v, c, r: sparse; D: paper; context: context model): coded symbols (binary decisions\n"
      "for the context model), table bytes, payload bytes, and the entropy of the model coded in\n"
      "bits/symbol and as the total bytes it implies (ideal code length: payload bytes minus this is\n"
      "the coder's overhead): order-0 entropy for the q/v/c/r/D streams, the ideal code length under\n"
      "the coded tables or adaptive probabilities for the context model. The bitstream is fully\n"
      "decoded to validate it.");

  SearchArgs sea;
  CLI::App* search = app.add_subcommand("search", "Print every candidate N of paper mode's search for a .npy tensor");
  search->add_option("input", sea.input, "Input .npy file: dtype '<f4' or '<f2', C order, rank 1..8")->required();
  search->add_option("--q", sea.q, "Bits per quantized value")->check(CLI::Range(kMinQ, kMaxQ))->capture_default_str();
  search->add_flag("--csv", sea.csv, "Print a CSV header row and one row per candidate (for plotting)");
  search->footer(
      "Candidates are the N with N | T, N > sqrt(T) and K = T/N <= 2^q, in the order Algorithm 1 walks\n"
      "them (descending N). Columns: N, K, len_D = |v|+|c|+|r|, H(D) in bits/symbol (one merged table),\n"
      "cost = len_D x H(D) (Algorithm 1's objective, bits), the exact size of the whole bitstream with\n"
      "that N, and whether Algorithm 1 evaluated it. Marks: algorithm1 = Algorithm 1's choice,\n"
      "exhaustive = minimum cost over all candidates (--search exhaustive), smallest = smallest exact\n"
      "size. CSV columns: n,k,len_d,entropy_bits_per_symbol,cost_bits,coded_bytes,visited_by_algorithm1,\n"
      "algorithm1_choice,exhaustive_choice,smallest_coded (flags are 0/1).");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    std::string usage = kProgram;
    for (const CLI::App* sub : {encode, decode, inspect, search})
      if (sub->parsed()) usage += " " + sub->get_name();
    std::fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", kProgram, e.what(), usage.c_str());
    return kExitUsage;
  }

  Status s;
  if (encode->parsed()) s = RunEncode(enc);
  else if (decode->parsed()) s = RunDecode(dec);
  else if (inspect->parsed()) s = RunInspect(ins);
  else if (search->parsed()) s = RunSearch(sea);
  return s.ok() ? 0 : Fail(s);
}

}  // namespace
}  // namespace splitrans::codec

int main(int argc, char** argv) {
  try {
    return splitrans::codec::Main(argc, argv);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "splitrans-codec: out of memory\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "splitrans-codec: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "splitrans-codec: internal error\n");
  }
  return 1;
}

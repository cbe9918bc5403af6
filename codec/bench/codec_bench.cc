// codec_bench: sizes and single-thread speeds of every codec layout against zstd and lz4 on .npy features.
#include <lz4.h>
#include <zstd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "codec/codec.h"
#include "codec/cpu_features.h"
#include "codec/rans_stream.h"  // EntropyBits
#include "codec/npy.h"

#ifndef SPLITRANS_SOURCE_DIR
#define SPLITRANS_SOURCE_DIR "."
#endif
#ifndef SPLITRANS_BUILD_TYPE
#define SPLITRANS_BUILD_TYPE "unknown"
#endif

namespace splitrans::codec {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr const char* kDefaultFeatureDir = SPLITRANS_SOURCE_DIR "/tests/data/features";
constexpr int kDefaultRuns = 50;
constexpr int kDefaultWarmup = 3;
constexpr int kZstdFast = 3;
constexpr int kZstdMax = 19;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

enum class Format { kText, kCsv, kMarkdown };

struct Options {
  std::vector<std::string> inputs;
  std::vector<int> qs = {2, 3, 4, 6, 8};
  int runs = kDefaultRuns;
  int warmup = kDefaultWarmup;
  bool timing = true;
  Format format = Format::kText;
};

// One (feature, Q) measurement. Sizes in bytes, times in microseconds (NaN: not measured).
struct Row {
  std::string feature;
  int q = 0;
  uint64_t elements = 0;
  size_t raw_bytes = 0, quant_bytes = 0;
  size_t paper_alg1 = 0, paper_exh = 0;
  uint32_t n_alg1 = 0, n_exh = 0;
  size_t dense = 0, sparse = 0, context = 0, automatic = 0;
  std::string auto_layout;
  bool has_negative = false;     // some element < 0: a signed feature (else post-ReLU)
  double h0_bytes = 0;           // order-0 entropy bound of q
  double auto_entropy_bytes = 0; // ideal code length of the model coded by auto (NaN: unknown)
  size_t auto_header = 0, auto_tables = 0;
  size_t zstd3 = 0, zstd19 = 0, lz4 = 0;
  double t_enc_dense = kNaN, t_dec_dense = kNaN, t_enc_context = kNaN, t_dec_context = kNaN;
  double t_enc_auto = kNaN, t_dec_auto = kNaN, t_enc_paper = kNaN, t_dec_paper = kNaN, t_dec_sparse = kNaN;
  double t_zstd3_c = kNaN, t_zstd3_d = kNaN, t_zstd19_c = kNaN, t_lz4_c = kNaN, t_lz4_d = kNaN;
};

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "codec_bench: %s\n", message.c_str());
  std::exit(1);
}

void Check(const Status& s, const std::string& what) {
  if (!s.ok()) Die(what + ": " + s.ToString());
}

const char* kUsage =
    "Usage: codec_bench [options] [FILE.npy | DIR]...\n"
    "Compresses each float32/float16 .npy feature at every Q with each codec layout and with zstd/lz4\n"
    "(on the same quantized byte array) and prints sizes and single-thread times.\n"
    "Default input: every .npy in " SPLITRANS_SOURCE_DIR "/tests/data/features (a DIR argument means\n"
    "every .npy in it).\n"
    "Options:\n"
    "  --q LIST      comma-separated Q values (default 2,3,4,6,8)\n"
    "  --runs N      timed runs per measurement, median reported (default 50)\n"
    "  --warmup N    untimed runs before each measurement (default 3)\n"
    "  --no-timing   sizes only (fast)\n"
    "  --csv         one CSV row per (feature, Q) with every column\n"
    "  --markdown    Markdown tables (for results files)\n"
    "  -h, --help    this help\n"
    "Summary: post-ReLU (no element < 0) and signed features are summarized apart.\n"
    "Environment: SPLITRANS_SIMD=scalar|sse42|avx2|avx512|native caps the codec's SIMD level (the\n"
    "\"simd:\" line of the preamble says which one ran).\n";

bool ParseInt(const std::string& s, int lo, int hi, int* out) {
  char* end = nullptr;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < lo || v > hi) return false;
  *out = static_cast<int>(v);
  return true;
}

Options ParseArgs(int argc, char** argv) {
  Options o;
  auto usage_error = [](const std::string& m) {
    std::fprintf(stderr, "codec_bench: %s\n%s", m.c_str(), kUsage);
    std::exit(2);
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::printf("%s", kUsage);
      std::exit(0);
    } else if (a == "--q") {
      o.qs.clear();
      std::string list = value();
      size_t pos = 0;
      while (pos <= list.size()) {
        const size_t comma = std::min(list.find(',', pos), list.size());
        int q;
        if (!ParseInt(list.substr(pos, comma - pos), kMinQ, kMaxQ, &q)) usage_error("bad --q list '" + list + "'");
        o.qs.push_back(q);
        pos = comma + 1;
      }
    } else if (a == "--runs") {
      if (!ParseInt(value(), 1, 1000000, &o.runs)) usage_error("--runs needs a positive integer");
    } else if (a == "--warmup") {
      if (!ParseInt(value(), 0, 1000000, &o.warmup)) usage_error("--warmup needs a non-negative integer");
    } else if (a == "--no-timing") {
      o.timing = false;
    } else if (a == "--csv") {
      o.format = Format::kCsv;
    } else if (a == "--markdown") {
      o.format = Format::kMarkdown;
    } else if (!a.empty() && a[0] == '-') {
      usage_error("unknown option " + a);
    } else {
      o.inputs.push_back(a);
    }
  }
  return o;
}

std::vector<std::string> NpyFilesIn(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file() && e.path().extension() == ".npy") out.push_back(e.path().string());
  }
  if (ec) Die("cannot list " + dir + ": " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> ResolveInputs(const Options& o) {
  std::vector<std::string> files;
  if (o.inputs.empty()) {
    files = NpyFilesIn(kDefaultFeatureDir);
    if (files.empty()) Die(std::string("no .npy files in ") + kDefaultFeatureDir + "; pass files or directories");
    return files;
  }
  for (const auto& in : o.inputs) {
    if (fs::is_directory(in)) {
      auto more = NpyFilesIn(in);
      if (more.empty()) Die("no .npy files in " + in);
      files.insert(files.end(), more.begin(), more.end());
    } else {
      files.push_back(in);
    }
  }
  return files;
}

// ---------------------------------------------------------------------------------------------
// Machine description

std::string CpuModel() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  }
  return "unknown";
}

std::string Compiler() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("GCC ") + __VERSION__;
#else
  return "unknown";
#endif
}

std::string UtcNow() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Quantization (the codec's AIQ formula, reimplemented) and reference compressors

struct Aiq {
  bool constant = false;
  float scale = 0;
  int32_t zero_point = 0;
};

// s = (max - min) / (2^Q - 1) (in double, rounded to float), z = round(-min / s) (ties to even),
// q = clamp(rint(x / s + z), 0, 2^Q - 1) in float arithmetic: exactly codec/quantize.cc.
Aiq Quantize(const std::vector<float>& x, int q, std::vector<uint8_t>* out) {
  Aiq p;
  out->assign(x.size(), 0);
  if (x.empty()) {
    p.constant = true;
    return p;
  }
  const auto [lo_it, hi_it] = std::minmax_element(x.begin(), x.end());
  const double lo = *lo_it, hi = *hi_it;
  const float s = static_cast<float>((hi - lo) / static_cast<double>((1 << q) - 1));
  if (hi == lo || !(s > 0.f)) {
    p.constant = true;
    return p;
  }
  p.scale = s;
  p.zero_point = static_cast<int32_t>(std::fmin(std::fmax(std::nearbyint(-lo / static_cast<double>(s)), -2147483647.0),
                                                2147483647.0));
  const float zf = static_cast<float>(p.zero_point), maxq = static_cast<float>((1 << q) - 1);
  for (size_t i = 0; i < x.size(); ++i) {
    float v = std::nearbyintf(x[i] / s + zf);
    v = v < 0.f ? 0.f : v;
    v = v > maxq ? maxq : v;
    (*out)[i] = static_cast<uint8_t>(v);
  }
  return p;
}

double EntropyBytes(const std::vector<uint8_t>& q) {
  uint32_t h[256] = {};
  for (uint8_t v : q) h[v]++;
  return EntropyBits(h, 256) / 8.0;
}

// Median wall time of runs calls to f after warmup untimed calls, in microseconds.
template <typename F>
double MedianUs(const Options& o, F&& f) {
  for (int i = 0; i < o.warmup; ++i) f();
  std::vector<double> t(static_cast<size_t>(o.runs));
  for (auto& v : t) {
    const auto start = Clock::now();
    f();
    v = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
  }
  std::nth_element(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(t.size() / 2), t.end());
  double median = t[t.size() / 2];
  if (t.size() % 2 == 0) median = (median + *std::max_element(t.begin(), t.begin() + t.size() / 2)) / 2;
  return median;
}

// ---------------------------------------------------------------------------------------------
// Measurement

struct Bench {
  Encoder encoder;
  Decoder decoder{DecodeLimits{uint64_t{1} << 32}};
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  std::vector<uint8_t> scratch, zbuf, restored;
  std::vector<float> values, reference;
  std::vector<int64_t> shape;
  int mismatches = 0;

  ~Bench() {
    ZSTD_freeCCtx(cctx);
    ZSTD_freeDCtx(dctx);
  }

  std::vector<uint8_t> Encode(const TensorView& view, int q, Mode mode, NSearch search = NSearch::kAlgorithm1) {
    EncodeOptions opt;
    opt.q = q;
    opt.mode = mode;
    opt.search = search;
    std::vector<uint8_t> out;
    Check(encoder.Encode(view, opt, &out), "encode");
    return out;
  }

  BitstreamInfo InspectOrDie(const std::vector<uint8_t>& bits) {
    auto r = Inspect(bits.data(), bits.size(), DecodeLimits{uint64_t{1} << 32});
    Check(r.status(), "inspect");
    return *r;
  }

  void DecodeTo(const std::vector<uint8_t>& bits, std::vector<float>* out) {
    Check(decoder.DecodeInto(bits.data(), bits.size(), out->data(), out->size(), &shape), "decode");
  }

  size_t Zstd(const std::vector<uint8_t>& src, int level) {
    zbuf.resize(ZSTD_compressBound(src.size()));
    const size_t n = ZSTD_compressCCtx(cctx, zbuf.data(), zbuf.size(), src.data(), src.size(), level);
    if (ZSTD_isError(n)) Die(std::string("zstd: ") + ZSTD_getErrorName(n));
    return n;
  }
  void Unzstd(size_t n, size_t raw) {
    restored.resize(raw);
    const size_t r = ZSTD_decompressDCtx(dctx, restored.data(), raw, zbuf.data(), n);
    if (ZSTD_isError(r) || r != raw) Die("zstd decompression failed");
  }
  size_t Lz4(const std::vector<uint8_t>& src) {
    zbuf.resize(static_cast<size_t>(LZ4_compressBound(static_cast<int>(src.size()))));
    const int n = LZ4_compress_default(reinterpret_cast<const char*>(src.data()), reinterpret_cast<char*>(zbuf.data()),
                                       static_cast<int>(src.size()), static_cast<int>(zbuf.size()));
    if (n <= 0 && !src.empty()) Die("lz4 compression failed");
    return static_cast<size_t>(n);
  }
  void Unlz4(size_t n, size_t raw) {
    restored.resize(raw);
    const int r = LZ4_decompress_safe(reinterpret_cast<const char*>(zbuf.data()), reinterpret_cast<char*>(restored.data()),
                                      static_cast<int>(n), static_cast<int>(raw));
    if (r != static_cast<int>(raw)) Die("lz4 decompression failed");
  }

  Row Measure(const std::string& name, const NpyArray& array, const std::vector<float>& x, int q, const Options& o) {
    Row r;
    r.feature = name;
    for (float v : x) r.has_negative = r.has_negative || v < 0.0f;
    r.q = q;
    r.elements = x.size();
    r.raw_bytes = array.bytes.size();
    r.quant_bytes = x.size();
    const TensorView view = array.View();

    std::vector<uint8_t> qs;
    const Aiq aiq = Quantize(x, q, &qs);
    r.h0_bytes = EntropyBytes(qs);

    const auto dense = Encode(view, q, Mode::kDense);
    const auto sparse = Encode(view, q, Mode::kSparse);
    const auto context = Encode(view, q, Mode::kContext);
    const auto automatic = Encode(view, q, Mode::kAuto);
    const auto paper = Encode(view, q, Mode::kPaper, NSearch::kAlgorithm1);
    const auto paper_exh = Encode(view, q, Mode::kPaper, NSearch::kExhaustive);
    r.dense = dense.size();
    r.sparse = sparse.size();
    r.context = context.size();
    r.automatic = automatic.size();
    r.paper_alg1 = paper.size();
    r.paper_exh = paper_exh.size();
    r.n_alg1 = InspectOrDie(paper).n;
    r.n_exh = InspectOrDie(paper_exh).n;

    // The reimplemented quantizer must match the codec: dense decodes to (q - z) * s exactly,
    // and every layout decodes to the same values.
    BitstreamInfo dense_info = InspectOrDie(dense);
    values.resize(x.size());
    reference.resize(x.size());
    DecodeTo(dense, &reference);
    bool same = aiq.constant == (dense_info.layout == Layout::kConstant);
    if (same && !aiq.constant) {
      same = dense_info.scale == aiq.scale && dense_info.zero_point == aiq.zero_point;
      for (size_t i = 0; same && i < x.size(); ++i)
        same = reference[i] == static_cast<float>(static_cast<int32_t>(qs[i]) - aiq.zero_point) * aiq.scale;
    }
    for (const auto* bits : {&sparse, &context, &automatic, &paper, &paper_exh}) {
      DecodeTo(*bits, &values);
      same = same && std::memcmp(values.data(), reference.data(), x.size() * sizeof(float)) == 0;
    }
    if (!same) {
      ++mismatches;
      std::fprintf(stderr, "codec_bench: WARNING %s Q=%d: quantized symbols or decoded values disagree\n",
                   name.c_str(), q);
    }

    BitstreamInfo auto_info = InspectOrDie(automatic);
    r.auto_layout = LayoutName(auto_info.layout);
    r.auto_header = auto_info.header_bytes;
    r.auto_entropy_bytes = 0;
    for (const auto& s : auto_info.sections) {
      r.auto_tables += s.table_bytes;
      r.auto_entropy_bytes += s.entropy_bits / 8.0;
    }

    r.zstd3 = Zstd(qs, kZstdFast);
    Unzstd(r.zstd3, qs.size());
    if (restored != qs) Die("zstd round trip differs");
    r.zstd19 = Zstd(qs, kZstdMax);
    Unzstd(r.zstd19, qs.size());
    if (restored != qs) Die("zstd round trip differs");
    r.lz4 = Lz4(qs);
    Unlz4(r.lz4, qs.size());
    if (restored != qs) Die("lz4 round trip differs");

    if (!o.timing) return r;
    EncodeOptions opt;
    opt.q = q;
    auto enc_us = [&](Mode mode) {
      opt.mode = mode;
      opt.search = NSearch::kAlgorithm1;
      return MedianUs(o, [&] { Check(encoder.Encode(view, opt, &scratch), "encode"); });
    };
    auto dec_us = [&](const std::vector<uint8_t>& bits) { return MedianUs(o, [&] { DecodeTo(bits, &values); }); };
    r.t_enc_dense = enc_us(Mode::kDense);
    r.t_dec_dense = dec_us(dense);
    r.t_dec_sparse = dec_us(sparse);
    r.t_enc_context = enc_us(Mode::kContext);
    r.t_dec_context = dec_us(context);
    r.t_enc_auto = enc_us(Mode::kAuto);
    r.t_dec_auto = dec_us(automatic);
    r.t_enc_paper = enc_us(Mode::kPaper);
    r.t_dec_paper = dec_us(paper);
    r.t_zstd3_c = MedianUs(o, [&] { Zstd(qs, kZstdFast); });
    const size_t z3 = Zstd(qs, kZstdFast);
    r.t_zstd3_d = MedianUs(o, [&] { Unzstd(z3, qs.size()); });
    r.t_zstd19_c = MedianUs(o, [&] { Zstd(qs, kZstdMax); });
    r.t_lz4_c = MedianUs(o, [&] { Lz4(qs); });
    const size_t l4 = Lz4(qs);
    r.t_lz4_d = MedianUs(o, [&] { Unlz4(l4, qs.size()); });
    return r;
  }
};

// ---------------------------------------------------------------------------------------------
// Output

std::string Fmt(const char* fmt, double v) {
  if (std::isnan(v)) return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}
std::string Int(uint64_t v) { return std::to_string(v); }
double Ratio(double a, double b) { return b > 0 ? a / b : kNaN; }

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;

  void Print(Format f) const {
    if (f == Format::kMarkdown) {
      auto line = [](const std::vector<std::string>& cells) {
        std::string s = "|";
        for (const auto& c : cells) s += " " + c + " |";
        std::printf("%s\n", s.c_str());
      };
      line(header);
      std::string sep = "|";
      for (size_t i = 0; i < header.size(); ++i) sep += i == 0 ? " :--- |" : " ---: |";
      std::printf("%s\n", sep.c_str());
      for (const auto& r : rows) line(r);
      return;
    }
    std::vector<size_t> w(header.size(), 0);
    for (size_t i = 0; i < header.size(); ++i) w[i] = header[i].size();
    for (const auto& r : rows)
      for (size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], r[i].size());
    auto line = [&](const std::vector<std::string>& cells) {
      std::string s;
      for (size_t i = 0; i < cells.size(); ++i) {
        const std::string pad(w[i] - cells[i].size(), ' ');
        s += i == 0 ? cells[i] + pad : "  " + pad + cells[i];
      }
      std::printf("%s\n", s.c_str());
    };
    line(header);
    for (const auto& r : rows) line(r);
  }
};

Table SizeTable(const std::vector<Row>& rows) {
  Table t;
  t.header = {"feature", "Q", "elems", "raw B", "quant B", "paper-A1 B (N)", "paper-ex B (N)", "A1=ex",
              "dense B", "sparse B", "context B", "auto B (layout)", "H0(q) B", "auto H B", "auto hdr B",
              "auto tbl B", "zstd-3 B", "zstd-19 B", "lz4 B", "auto/zstd19", "auto/paper"};
  for (const Row& r : rows) {
    t.rows.push_back({r.feature, Int(r.q), Int(r.elements), Int(r.raw_bytes), Int(r.quant_bytes),
                      Int(r.paper_alg1) + " (" + Int(r.n_alg1) + ")", Int(r.paper_exh) + " (" + Int(r.n_exh) + ")",
                      r.n_alg1 == r.n_exh ? "yes" : "no", Int(r.dense), Int(r.sparse), Int(r.context),
                      Int(r.automatic) + " (" + r.auto_layout + ")", Fmt("%.0f", r.h0_bytes),
                      Fmt("%.0f", r.auto_entropy_bytes), Int(r.auto_header), Int(r.auto_tables), Int(r.zstd3),
                      Int(r.zstd19), Int(r.lz4), Fmt("%.3f", Ratio(r.automatic, r.zstd19)),
                      Fmt("%.3f", Ratio(r.automatic, r.paper_alg1))});
  }
  return t;
}

Table TimeTable(const std::vector<Row>& rows) {
  Table t;
  t.header = {"feature", "Q", "dense enc", "dense dec", "sparse dec", "context enc", "context dec", "auto enc",
              "auto dec", "paper-A1 enc", "paper-A1 dec", "zstd-3 c", "zstd-3 d", "zstd-19 c", "lz4 c", "lz4 d"};
  for (const Row& r : rows) {
    t.rows.push_back({r.feature, Int(r.q), Fmt("%.1f", r.t_enc_dense), Fmt("%.1f", r.t_dec_dense),
                      Fmt("%.1f", r.t_dec_sparse),
                      Fmt("%.1f", r.t_enc_context), Fmt("%.1f", r.t_dec_context), Fmt("%.1f", r.t_enc_auto),
                      Fmt("%.1f", r.t_dec_auto), Fmt("%.1f", r.t_enc_paper), Fmt("%.1f", r.t_dec_paper),
                      Fmt("%.1f", r.t_zstd3_c), Fmt("%.1f", r.t_zstd3_d), Fmt("%.1f", r.t_zstd19_c),
                      Fmt("%.1f", r.t_lz4_c), Fmt("%.1f", r.t_lz4_d)});
  }
  return t;
}

void PrintCsv(const std::vector<Row>& rows) {
  std::printf(
      "feature,q,elements,raw_bytes,quant_bytes,paper_alg1_bytes,paper_alg1_n,paper_exhaustive_bytes,"
      "paper_exhaustive_n,alg1_equals_exhaustive,dense_bytes,sparse_bytes,context_bytes,auto_bytes,auto_layout,"
      "h0_bytes,auto_entropy_bytes,auto_header_bytes,auto_table_bytes,zstd3_bytes,zstd19_bytes,lz4_bytes,"
      "auto_over_zstd19,auto_over_paper,dense_enc_us,dense_dec_us,context_enc_us,context_dec_us,auto_enc_us,"
      "auto_dec_us,paper_alg1_enc_us,paper_alg1_dec_us,zstd3_comp_us,zstd3_decomp_us,zstd19_comp_us,lz4_comp_us,"
      "lz4_decomp_us,sparse_dec_us\n");
  auto num = [](double v) { return std::isnan(v) ? std::string() : Fmt("%.6g", v); };
  for (const Row& r : rows) {
    std::printf("%s,%d,%llu,%zu,%zu,%zu,%u,%zu,%u,%d,%zu,%zu,%zu,%zu,%s,%s,%s,%zu,%zu,%zu,%zu,%zu,%s,%s,%s,%s,%s,%s,%s,"
                "%s,%s,%s,%s,%s,%s,%s,%s,%s\n",
                r.feature.c_str(), r.q, static_cast<unsigned long long>(r.elements), r.raw_bytes, r.quant_bytes,
                r.paper_alg1, r.n_alg1, r.paper_exh, r.n_exh, r.n_alg1 == r.n_exh ? 1 : 0, r.dense, r.sparse,
                r.context, r.automatic, r.auto_layout.c_str(), num(r.h0_bytes).c_str(),
                num(r.auto_entropy_bytes).c_str(), r.auto_header, r.auto_tables, r.zstd3, r.zstd19, r.lz4,
                num(Ratio(r.automatic, r.zstd19)).c_str(), num(Ratio(r.automatic, r.paper_alg1)).c_str(),
                num(r.t_enc_dense).c_str(), num(r.t_dec_dense).c_str(), num(r.t_enc_context).c_str(),
                num(r.t_dec_context).c_str(), num(r.t_enc_auto).c_str(), num(r.t_dec_auto).c_str(),
                num(r.t_enc_paper).c_str(), num(r.t_dec_paper).c_str(), num(r.t_zstd3_c).c_str(),
                num(r.t_zstd3_d).c_str(), num(r.t_zstd19_c).c_str(), num(r.t_lz4_c).c_str(), num(r.t_lz4_d).c_str(),
                num(r.t_dec_sparse).c_str());
  }
}

struct MinMax {
  double lo = INFINITY, hi = -INFINITY;
  std::string lo_at, hi_at;
  void Add(double v, const std::string& at) {
    if (std::isnan(v)) return;
    if (v < lo) lo = v, lo_at = at;
    if (v > hi) hi = v, hi_at = at;
  }
  std::string ToString() const {
    if (lo > hi) return "n/a";
    return Fmt("%.3f", lo) + " (" + lo_at + ") .. " + Fmt("%.3f", hi) + " (" + hi_at + ")";
  }
};

std::vector<std::string> Summary(const std::vector<Row>& rows) {
  // Post-ReLU (no element < 0) and signed features (pre-activation, transformer residual
  // streams) are summarized apart: the targets differ (issue #11).
  struct Group {
    MinMax auto_zstd, auto_paper;
    double auto_zstd_sum = 0;
    int rows = 0;
    std::map<std::string, int> layouts;
  } groups[2];  // [0] post-ReLU, [1] signed
  int n_total = 0, n_equal = 0, bytes_equal = 0, paper_rows = 0;
  for (const Row& r : rows) {
    ++n_total;
    if (r.n_alg1 == r.n_exh) ++n_equal;
    if (r.paper_alg1 == r.paper_exh) ++bytes_equal;
    if (r.n_alg1 != 0) ++paper_rows;
    if (r.q < 3 || r.q > 8) continue;
    Group& g = groups[r.has_negative ? 1 : 0];
    ++g.rows;
    const std::string at = r.feature + " Q" + Int(r.q);
    g.auto_zstd.Add(Ratio(r.automatic, r.zstd19), at);
    g.auto_zstd_sum += Ratio(r.automatic, r.zstd19);
    g.auto_paper.Add(Ratio(r.automatic, r.paper_alg1), at);
    g.layouts[r.auto_layout]++;
  }
  auto pct = [](int a, int b) { return Int(a) + "/" + Int(b) + (b ? Fmt(" (%.1f%%)", 100.0 * a / b) : ""); };
  std::vector<std::string> out;
  const char* titles[2] = {"post-ReLU features (no element < 0), Q 3..8: ", "signed features (some element < 0), Q 3..8: "};
  for (int k = 0; k < 2; ++k) {
    const Group& g = groups[k];
    std::string layouts;
    for (const auto& [name, count] : g.layouts) layouts += (layouts.empty() ? "" : ", ") + name + " " + Int(count);
    out.push_back(titles[k] + Int(g.rows) + " (feature, Q) rows");
    if (g.rows == 0) continue;
    out.push_back("  auto / zstd-19 bytes: " + g.auto_zstd.ToString() + Fmt(", mean %.3f", g.auto_zstd_sum / g.rows));
    out.push_back("  auto / paper(Algorithm 1) bytes: " + g.auto_paper.ToString());
    out.push_back("  auto picked: " + (layouts.empty() ? std::string("n/a") : layouts));
  }
  out.push_back("all (feature, Q): Algorithm 1 N == exhaustive N in " + pct(n_equal, n_total) + "; same bytes in " +
                pct(bytes_equal, n_total) +
                (n_total > paper_rows ? " (" + Int(n_total - paper_rows) + " constant-layout rows count as equal)" : ""));
  return out;
}

int Main(int argc, char** argv) {
  const Options o = ParseArgs(argc, argv);
  if (!SimdEnvironmentStatus().ok()) Die(SimdEnvironmentStatus().ToString());
  const std::vector<std::string> files = ResolveInputs(o);
  const char* simd_env = std::getenv("SPLITRANS_SIMD");
  std::vector<std::string> preamble = {
      "date: " + UtcNow(),
      "machine: " + CpuModel() + ", " + Int(std::thread::hardware_concurrency()) + " logical cores (benchmark is single-thread)",
      std::string("simd: ") + SimdLevelName(ActiveSimdLevel()) + " (host " + SimdLevelName(HostSimdLevel()) +
          ", SPLITRANS_SIMD" + (simd_env && *simd_env ? std::string("=") + simd_env : std::string(" unset")) + ")",
      "compiler: " + Compiler() + ", build type " + SPLITRANS_BUILD_TYPE,
      std::string("libraries: zstd ") + ZSTD_versionString() + ", lz4 " + LZ4_versionString(),
      "timing: median of " + Int(o.runs) + " runs after " + Int(o.warmup) + " warm-up runs, steady_clock, " +
          "Encoder/Decoder/ZSTD contexts reused; microseconds per call",
      "codec encode times include AIQ quantization of the float input; zstd/lz4 compress the quantized byte "
      "array (1 byte/element), so their times exclude quantization",
      "sizes in bytes; H0(q) = order-0 entropy of q; auto H = ideal code length of the model auto coded "
      "(order-0 for q/v/c/r/D streams, the tables' or adaptive model's ideal code length for context), auto hdr/tbl = its header and table bytes; ratios < 1: auto is smaller",
  };

  Bench bench;
  std::vector<Row> rows;
  const bool progress = isatty(STDERR_FILENO) != 0;
  for (const auto& path : files) {
    auto array = ReadNpy(path);
    Check(array.status(), "read");
    std::vector<float> x(array->ElementCount());
    if (array->dtype == DType::kFloat16) {
      for (size_t i = 0; i < x.size(); ++i) {
        uint16_t h;
        std::memcpy(&h, array->bytes.data() + 2 * i, 2);
        x[i] = HalfToFloat(h);
      }
    } else if (!x.empty()) {
      std::memcpy(x.data(), array->bytes.data(), x.size() * 4);
    }
    const std::string name = fs::path(path).stem().string();
    for (int q : o.qs) {
      rows.push_back(bench.Measure(name, *array, x, q, o));
      if (progress) std::fprintf(stderr, "\r%zu/%zu rows", rows.size(), files.size() * o.qs.size());
    }
  }
  if (progress) std::fprintf(stderr, "\n");

  const std::vector<std::string> summary = Summary(rows);
  if (o.format == Format::kCsv) {
    for (const auto& l : preamble) std::fprintf(stderr, "# %s\n", l.c_str());
    PrintCsv(rows);
  } else if (o.format == Format::kMarkdown) {
    std::printf("## codec_bench\n\n");
    for (const auto& l : preamble) std::printf("- %s\n", l.c_str());
    std::printf("\n### Sizes\n\n");
    SizeTable(rows).Print(o.format);
    if (o.timing) {
      std::printf("\n### Single-thread times (µs per call, median)\n\n");
      TimeTable(rows).Print(o.format);
    }
    std::printf("\n### Summary\n\n");
    for (const auto& l : summary) {
      const bool sub = l.rfind("  ", 0) == 0;  // indented lines are sub-items
      std::printf("%s%s\n", sub ? "  - " : "- ", l.c_str() + (sub ? 2 : 0));
    }
  } else {
    for (const auto& l : preamble) std::printf("# %s\n", l.c_str());
    std::printf("\nSizes\n");
    SizeTable(rows).Print(o.format);
    if (o.timing) {
      std::printf("\nSingle-thread times (µs per call, median)\n");
      TimeTable(rows).Print(o.format);
    }
    std::printf("\nSummary\n");
    for (const auto& l : summary) std::printf("%s\n", l.c_str());
  }
  if (bench.mismatches) {
    std::fprintf(stderr, "codec_bench: %d (feature, Q) rows had quantizer or decode mismatches\n", bench.mismatches);
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace splitrans::codec

int main(int argc, char** argv) {
  try {
    return splitrans::codec::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "codec_bench: %s\n", e.what());
  }
  return 1;
}

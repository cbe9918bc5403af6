// splitrans codec public API: float tensors in, one self-describing byte string out, and back.
// Knows nothing of Torch or gRPC. Encoder and Decoder objects are not thread-safe (one per
// thread); they keep scratch buffers so that steady-state calls do not allocate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "codec/status.h"
#include "codec/wire.h"

namespace splitrans::codec {

// DType, Layout and the rank and q limits are the wire format's (codec/wire.h).

// What the encoder may choose.
enum class Mode : uint8_t {
  kAuto = 0,     // smallest exact coded size among dense, sparse and context (context is coded
                 // first; dense and sparse only when their entropy lower bound can still win)
  kPaper = 1,    // faithful to the paper (N from Algorithm 1 or exhaustive search)
  kDense = 2,    // force a layout (benchmarks, tests, latency-critical callers)
  kSparse = 3,
  kContext = 4,
};

// How paper mode chooses N (rows of the N x K reshape).
enum class NSearch : uint8_t {
  kAlgorithm1 = 0,  // the paper's Algorithm 1: descending N, early stop
  kExhaustive = 1,  // every candidate in the same domain
};

// How the encoder picks the quantization range (the bitstream and the decoder are the same).
enum class Quantizer : uint8_t {
  kMinMax = 0,  // "aiq": the paper's AIQ over [min, max], the default (and paper mode's only one)
  kClip = 1,    // "clip": AIQ over a clipped range chosen by squared reconstruction error; values
                // beyond it are clamped (outliers lose, the bulk gets a finer grid)
};

struct EncodeOptions {
  int q = 4;  // bits per quantized value, kMinQ..kMaxQ
  Mode mode = Mode::kAuto;
  NSearch search = NSearch::kAlgorithm1;
  Quantizer quantizer = Quantizer::kMinMax;  // kClip with kPaper is INVALID_ARGUMENT
};

// A host tensor to encode. data: host memory holding product(shape) elements of dtype,
// C order; nullable only when the tensor has no elements.
struct TensorView {
  const void* data = nullptr;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
};

// What a decoder accepts. The shape checks run after the header and checksum checks and before
// anything is allocated for the output, in Decode, DecodeInto, PeekShape and Inspect alike (a
// GpuDecoder checks them too); a refused shape costs no allocation beyond the header's.
struct DecodeLimits {
  DecodeLimits() = default;
  explicit DecodeLimits(uint64_t elements) : max_elements(elements) {}  // keeps DecodeLimits{n} working

  uint64_t max_elements = uint64_t{1} << 28;  // 1 GiB of float32
  // Empty: no limit beyond max_elements. Otherwise the declared rank must equal its size and
  // every dimension must be <= its entry (LIMIT_EXCEEDED otherwise).
  std::vector<int64_t> max_shape;
  // Null: accept. Otherwise called once per decode with the declared shape, after the checks
  // above; a non-OK status is returned unchanged (a server uses it to require its exact shape).
  std::function<Status(const std::vector<int64_t>& shape)> accept_shape;
};

struct DecodedTensor {
  std::vector<float> values;   // dequantized, C order (float16 inputs decode to float32 too)
  std::vector<int64_t> shape;
  DType dtype = DType::kFloat32;  // dtype of the tensor that was encoded
};

// Header fields and section sizes, read without decoding the payload.
struct BitstreamInfo {
  int version = 0;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;
  int q = 0;
  float scale = 0;
  int32_t zero_point = 0;
  Layout layout = Layout::kConstant;
  uint32_t n = 0, k = 0;        // paper/sparse reshape; 0 otherwise
  size_t total_bytes = 0;
  size_t header_bytes = 0;      // fixed header + shape + layout parameters + checksum
  struct Section {
    std::string name;           // "q", "v", "c", "r", "D", "context"
    uint64_t symbols = 0;       // coded symbols (binary decisions for the context model)
    size_t table_bytes = 0;     // frequency table and stream parameters
    size_t payload_bytes = 0;   // rANS states + words (+ block index)
    double entropy_bits = 0;    // ideal code length of the model coded (order-0 or adaptive)
  };
  std::vector<Section> sections;
};

// One candidate of the paper's N search.
struct NCandidate {
  uint32_t n = 0, k = 0;
  uint64_t len_d = 0;          // |v| + |c| + |r|
  double entropy = 0;          // H(D) in bits per symbol (merged table)
  double cost = 0;             // len_d * entropy: Algorithm 1's objective (bits)
  uint64_t coded_bytes = 0;    // exact encoded size of the whole bitstream with this N
  bool visited_by_algorithm1 = false;
};

class Encoder {
 public:
  Encoder();
  ~Encoder();
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  // Encodes tensor into *out (replacing its contents). Errors: INVALID_ARGUMENT for bad options,
  // bad shape, null data or non-finite values.
  Status Encode(const TensorView& tensor, const EncodeOptions& options, std::vector<uint8_t>* out);

  // Paper mode's search space: every N in the domain (N > sqrt(T), T/N <= 2^Q, N | T), in the
  // order Algorithm 1 walks it, with cost and exact coded size. For plots and the CLI.
  Result<std::vector<NCandidate>> PaperCandidates(const TensorView& tensor, int q);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

class Decoder {
 public:
  explicit Decoder(DecodeLimits limits = {});
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // Validates and decodes a whole bitstream (the header is parsed and checksummed once). *out
  // keeps its capacity across calls. The heap the decode needs besides *out does not grow with
  // the tensor (about 1.1 MiB at most: decoder.cc, "Decoder scratch").
  Status Decode(const uint8_t* data, size_t size, DecodedTensor* out);
  // Decodes into caller memory. REQUIRES: out holds capacity floats (host memory). On an error
  // the first T floats of out may have been written.
  Status DecodeInto(const uint8_t* data, size_t size, float* out, size_t capacity,
                    std::vector<int64_t>* shape);
  // Replaces the limits for the following calls (a server sets per-request shape limits on a
  // decoder it reuses).
  void SetLimits(DecodeLimits limits);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Convenience wrappers (allocate per call).
Result<std::vector<uint8_t>> Encode(const TensorView& tensor, const EncodeOptions& options);
Result<DecodedTensor> Decode(const uint8_t* data, size_t size, const DecodeLimits& limits = {});
// Validates the header and the checksum and returns the tensor's shape without decoding the
// payload or allocating for it: lets a server check the shape it expects first.
Status PeekShape(const uint8_t* data, size_t size, std::vector<int64_t>* shape, const DecodeLimits& limits = {});
// Validates the whole bitstream (checksum included) and describes it. Decodes the tensor's
// symbols (T bytes, held while it runs) to compute the sections' entropies.
Result<BitstreamInfo> Inspect(const uint8_t* data, size_t size, const DecodeLimits& limits = {});

const char* LayoutName(Layout layout);
const char* ModeName(Mode mode);
bool ParseMode(const std::string& s, Mode* mode);
// The names ParseMode accepts, in Mode order: auto, paper, dense, sparse, context.
std::vector<std::string> ModeNames();
const char* QuantizerName(Quantizer quantizer);  // "aiq", "clip"
bool ParseQuantizer(const std::string& s, Quantizer* quantizer);

// IEEE half <-> float (round to nearest even), for float16 tensors.
float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);
// HalfToFloat over n values (vectorized where the CPU allows; same results for non-NaN inputs).
void HalvesToFloats(const uint16_t* h, uint64_t n, float* out);

}  // namespace splitrans::codec

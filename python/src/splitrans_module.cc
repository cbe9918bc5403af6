// splitrans._splitrans: the codec (codec/codec.h) for Python, with pybind11.
// Thread-safety: every function may be called from several threads at once; each thread codes with
// its own Encoder/Decoder and the GIL is released while the codec runs.
#include <pybind11/pybind11.h>
#include <pybind11/numpy.h>
#include <pybind11/eval.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "codec/codec.h"
#include "codec/status.h"

#ifndef SPLITRANS_VERSION
#define SPLITRANS_VERSION "unknown"
#endif

namespace py = pybind11;
namespace codec = splitrans::codec;

namespace {

// splitrans.CodecError, created at import (a new reference kept for the process's lifetime).
PyObject* g_codec_error = nullptr;

constexpr const char* kCodecErrorSource = R"PY(
class CodecError(ValueError):
    """An error reported by the splitrans codec.

    Attributes:
        code: the codec's stable numeric error code (codec/status.h), e.g. 2.
        name: its stable name, e.g. "TRUNCATED".
        message: the codec's message without the name.

    str(error) is "NAME: message". A subclass of ValueError.
    """

    def __init__(self, message, code, name):
        super().__init__("%s: %s" % (name, message))
        self.message = message
        self.code = code
        self.name = name

    def __reduce__(self):
        return (type(self), (self.message, self.code, self.name))
)PY";

// REQUIRES: the GIL is held and !s.ok().
[[noreturn]] void ThrowStatus(const codec::Status& s) {
  py::object type = py::reinterpret_borrow<py::object>(g_codec_error);
  py::object err = type(s.message(), static_cast<int>(s.code()), codec::ErrorCodeName(s.code()));
  PyErr_SetObject(g_codec_error, err.ptr());
  throw py::error_already_set();
}

// Tensors up to this size reuse the thread's Encoder (its scratch grows to the largest tensor coded);
// larger ones get a fresh Encoder, so that a thread does not keep hundreds of MiB of scratch.
constexpr uint64_t kReuseEncoderElements = uint64_t{1} << 22;

codec::Encoder& ThreadEncoder() {
  thread_local codec::Encoder encoder;
  return encoder;
}

// The decoder's scratch is bounded (about 1.1 MiB), so every thread keeps one.
codec::Decoder& ThreadDecoder() {
  thread_local codec::Decoder decoder;
  return decoder;
}

// An array-like converted to what the codec reads: C order, aligned, native float32 or float16.
struct Input {
  py::array array;  // owns (or keeps alive) the memory view.data points into
  codec::TensorView view;
  bool copied = false;
};

// Accepts NumPy arrays, PyTorch CPU tensors (detached; read through tensor.numpy(), no copy),
// objects with the buffer protocol or __array__, and DLPack producers (numpy.from_dlpack).
// float32 and float16 are read in place when C-contiguous, aligned and native-endian; otherwise
// (float64, strides, byte order) one converted C-order copy is made.
Input ToInput(py::handle obj, const char* fn) {
  py::module_ np = py::module_::import("numpy");
  py::object o = py::reinterpret_borrow<py::object>(obj);
  py::dict modules = py::module_::import("sys").attr("modules");
  if (modules.contains("torch")) {  // torch is never imported here: a tensor implies it is loaded
    py::object torch = modules["torch"];
    if (py::isinstance(o, torch.attr("Tensor"))) {
      const std::string device = py::str(o.attr("device").attr("type"));
      if (device != "cpu") {
        throw py::type_error(std::string(fn) + ": expected a CPU tensor, got one on device '" + device +
                             "' (move it with .cpu())");
      }
      py::object dt = o.attr("dtype");
      if (!dt.is(torch.attr("float32")) && !dt.is(torch.attr("float16")) && !dt.is(torch.attr("float64"))) {
        throw py::type_error(std::string(fn) + ": expected a float32, float16 or float64 tensor, got " +
                             std::string(py::str(dt)));
      }
      o = o.attr("detach")().attr("numpy")();  // a view of the tensor's memory
    }
  }
  if (!py::isinstance<py::array>(o)) {
    const bool array_like = PyObject_CheckBuffer(o.ptr()) || py::hasattr(o, "__array__") ||
                            py::hasattr(o, "__array_interface__");
    if (!array_like && py::hasattr(o, "__dlpack__")) {
      o = np.attr("from_dlpack")(o);
    } else {
      o = np.attr("asarray")(o);
    }
  }
  Input in;
  in.array = o.cast<py::array>();
  py::dtype dt = in.array.dtype();
  if (dt.kind() != 'f' || (dt.itemsize() != 2 && dt.itemsize() != 4 && dt.itemsize() != 8)) {
    throw py::type_error(std::string(fn) + ": expected a float32, float16 or float64 array, got dtype " +
                         std::string(py::str(dt)));
  }
  const bool half = dt.itemsize() == 2;
  py::dtype target = half ? py::dtype("float16") : py::dtype::of<float>();
  const bool in_place = dt.equal(target) && (in.array.flags() & py::array::c_style) &&
                        in.array.attr("flags").attr("aligned").cast<bool>();
  if (!in_place) {
    // np.array(copy=True) keeps 0-d arrays 0-d (ascontiguousarray would make them 1-d).
    in.array = np.attr("array")(in.array, py::arg("dtype") = target, py::arg("order") = "C",
                                py::arg("copy") = true)
                   .cast<py::array>();
    in.copied = true;
  }
  in.view.data = in.array.size() ? in.array.data() : nullptr;
  in.view.dtype = half ? codec::DType::kFloat16 : codec::DType::kFloat32;
  in.view.shape.assign(in.array.shape(), in.array.shape() + in.array.ndim());
  return in;
}

// A contiguous byte buffer held for the duration of a call (PyBUF_SIMPLE: bytes, bytearray,
// memoryview, uint8 arrays; the exporter cannot resize it while held).
class ByteView {
 public:
  explicit ByteView(py::handle obj, const char* fn) {
    if (PyUnicode_Check(obj.ptr()) || PyObject_GetBuffer(obj.ptr(), &view_, PyBUF_SIMPLE) != 0) {
      PyErr_Clear();
      throw py::type_error(std::string(fn) + ": expected a bytes-like object (bytes, bytearray, memoryview), got " +
                           std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
    }
    held_ = true;
  }
  ~ByteView() {
    if (held_) PyBuffer_Release(&view_);
  }
  ByteView(const ByteView&) = delete;
  ByteView& operator=(const ByteView&) = delete;
  const uint8_t* data() const { return static_cast<const uint8_t*>(view_.buf); }
  size_t size() const { return static_cast<size_t>(view_.len); }

 private:
  Py_buffer view_{};
  bool held_ = false;
};

codec::DecodeLimits ToLimits(uint64_t max_elements, const std::optional<std::vector<int64_t>>& max_shape) {
  codec::DecodeLimits limits;
  limits.max_elements = max_elements;
  if (max_shape) limits.max_shape = *max_shape;
  return limits;
}

const char* DTypeName(codec::DType dtype) { return dtype == codec::DType::kFloat16 ? "float16" : "float32"; }

bool HasReshape(codec::Layout layout) { return layout == codec::Layout::kPaper || layout == codec::Layout::kSparse; }

codec::EncodeOptions ToOptions(int q, const std::string& mode, const std::string& search,
                               const std::string& quantizer = "aiq") {
  codec::EncodeOptions opt;
  if (!codec::ParseQuantizer(quantizer, &opt.quantizer)) {
    ThrowStatus(codec::InvalidArgument("unknown quantizer '" + quantizer + "' (expected aiq or clip)"));
  }
  opt.q = q;
  if (!codec::ParseMode(mode, &opt.mode)) {
    std::string names;
    for (const auto& m : codec::ModeNames()) names += (names.empty() ? "" : ", ") + m;
    ThrowStatus(codec::InvalidArgument("unknown mode '" + mode + "' (expected one of " + names + ")"));
  }
  if (search == "alg1") {
    opt.search = codec::NSearch::kAlgorithm1;
  } else if (search == "exhaustive") {
    opt.search = codec::NSearch::kExhaustive;
  } else {
    ThrowStatus(codec::InvalidArgument("unknown search '" + search + "' (expected alg1 or exhaustive)"));
  }
  return opt;
}

py::bytes Encode(py::object array, int q, const std::string& mode, const std::string& search,
                 const std::string& quantizer) {
  const codec::EncodeOptions opt = ToOptions(q, mode, search, quantizer);
  Input in = ToInput(array, "encode");
  std::vector<uint8_t> out;
  codec::Status s;
  {
    py::gil_scoped_release nogil;
    uint64_t t = 1;
    for (int64_t d : in.view.shape) t *= static_cast<uint64_t>(d);
    if (t <= kReuseEncoderElements) {
      s = ThreadEncoder().Encode(in.view, opt, &out);
    } else {
      codec::Encoder encoder;
      s = encoder.Encode(in.view, opt, &out);
    }
  }
  if (!s.ok()) ThrowStatus(s);
  return py::bytes(reinterpret_cast<const char*>(out.data()), out.size());
}

// Moves v into a NumPy array of the given shape without copying (the array owns the vector).
template <typename T>
py::array VectorToArray(std::vector<T>&& v, py::dtype dtype, const std::vector<int64_t>& shape) {
  auto* owned = new std::vector<T>(std::move(v));
  py::capsule owner(owned, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  return py::array(dtype, dims, {}, owned->data(), owner);
}

py::array Decode(py::object data, py::object dtype, uint64_t max_elements,
                 const std::optional<std::vector<int64_t>>& max_shape) {
  int want = 0;  // 0: as encoded, 2: float16, 4: float32
  if (!dtype.is_none()) {
    py::dtype dt = py::dtype::from_args(dtype);
    if (dt.equal(py::dtype::of<float>())) want = 4;
    else if (dt.equal(py::dtype("float16"))) want = 2;
    else throw py::type_error("decode: dtype must be None, numpy.float32 or numpy.float16, got " + std::string(py::str(dt)));
  }
  ByteView bytes(data, "decode");
  codec::DecodeLimits limits = ToLimits(max_elements, max_shape);
  codec::DecodedTensor t;
  std::vector<uint16_t> halves;
  codec::Status s;
  {
    py::gil_scoped_release nogil;
    codec::Decoder& decoder = ThreadDecoder();
    decoder.SetLimits(std::move(limits));
    s = decoder.Decode(bytes.data(), bytes.size(), &t);
    if (s.ok() && (want == 2 || (want == 0 && t.dtype == codec::DType::kFloat16))) {
      halves.resize(t.values.size());
      for (size_t i = 0; i < halves.size(); ++i) halves[i] = codec::FloatToHalf(t.values[i]);
      t.values = {};
      want = 2;
    }
  }
  if (!s.ok()) ThrowStatus(s);
  if (want == 2) return VectorToArray(std::move(halves), py::dtype("float16"), t.shape);
  return VectorToArray(std::move(t.values), py::dtype::of<float>(), t.shape);
}

py::dict Inspect(py::object data, uint64_t max_elements, const std::optional<std::vector<int64_t>>& max_shape) {
  ByteView bytes(data, "inspect");
  const codec::DecodeLimits limits = ToLimits(max_elements, max_shape);
  std::optional<codec::Result<codec::BitstreamInfo>> r;
  {
    py::gil_scoped_release nogil;
    r.emplace(codec::Inspect(bytes.data(), bytes.size(), limits));
  }
  if (!r->ok()) ThrowStatus(r->status());
  const codec::BitstreamInfo& info = r->value();
  uint64_t elements = 1;
  for (int64_t d : info.shape) elements *= static_cast<uint64_t>(d);
  // The keys and their order are those of `splitrans-codec inspect --json` (less "file").
  py::dict d;
  d["version"] = info.version;
  d["dtype"] = DTypeName(info.dtype);
  d["shape"] = py::tuple(py::cast(info.shape));
  d["elements"] = elements;
  d["q"] = info.q;
  d["scale"] = static_cast<double>(info.scale);
  d["zero_point"] = info.zero_point;
  d["layout"] = codec::LayoutName(info.layout);
  if (HasReshape(info.layout)) {
    d["n"] = info.n;
    d["k"] = info.k;
  }
  d["total_bytes"] = info.total_bytes;
  d["header_bytes"] = info.header_bytes;
  d["bits_per_element"] =
      elements ? 8.0 * static_cast<double>(info.total_bytes) / static_cast<double>(elements) : 0.0;
  py::list sections;
  for (const auto& s : info.sections) {
    py::dict sd;
    sd["name"] = s.name;
    sd["symbols"] = s.symbols;
    sd["table_bytes"] = s.table_bytes;
    sd["payload_bytes"] = s.payload_bytes;
    sd["entropy_bits"] = s.entropy_bits;
    sd["entropy_bits_per_symbol"] = s.symbols ? s.entropy_bits / static_cast<double>(s.symbols) : 0.0;
    sd["entropy_bytes"] = s.entropy_bits / 8.0;
    sections.append(sd);
  }
  d["sections"] = sections;
  return d;
}

// Index of the first minimum of key over [0, end) (as `splitrans-codec search`).
template <typename Key>
size_t ArgMin(const std::vector<codec::NCandidate>& c, size_t end, Key key) {
  size_t best = 0;
  for (size_t i = 1; i < end; ++i)
    if (key(c[i]) < key(c[best])) best = i;
  return best;
}

py::list Search(py::object array, int q) {
  Input in = ToInput(array, "search");
  std::optional<codec::Result<std::vector<codec::NCandidate>>> r;
  {
    py::gil_scoped_release nogil;
    codec::Encoder encoder;
    r.emplace(encoder.PaperCandidates(in.view, q));
  }
  if (!r->ok()) ThrowStatus(r->status());
  const std::vector<codec::NCandidate>& c = r->value();
  py::list rows;
  if (c.empty()) return rows;
  size_t visited = 0;
  while (visited < c.size() && c[visited].visited_by_algorithm1) ++visited;
  const size_t alg1 = ArgMin(c, std::max<size_t>(visited, 1), [](const codec::NCandidate& x) { return x.cost; });
  const size_t exhaustive = ArgMin(c, c.size(), [](const codec::NCandidate& x) { return x.cost; });
  const size_t smallest = ArgMin(c, c.size(), [](const codec::NCandidate& x) { return x.coded_bytes; });
  for (size_t i = 0; i < c.size(); ++i) {
    // The columns of `splitrans-codec search --csv`.
    py::dict row;
    row["n"] = c[i].n;
    row["k"] = c[i].k;
    row["len_d"] = c[i].len_d;
    row["entropy_bits_per_symbol"] = c[i].entropy;
    row["cost_bits"] = c[i].cost;
    row["coded_bytes"] = c[i].coded_bytes;
    row["visited_by_algorithm1"] = c[i].visited_by_algorithm1;
    row["algorithm1_choice"] = i == alg1;
    row["exhaustive_choice"] = i == exhaustive;
    row["smallest_coded"] = i == smallest;
    rows.append(row);
  }
  return rows;
}

py::dict InputInfo(py::object array) {
  Input in = ToInput(array, "_input_info");
  py::dict d;
  d["dtype"] = DTypeName(in.view.dtype);
  d["shape"] = py::tuple(py::cast(in.view.shape));
  d["copied"] = in.copied;
  d["data"] = reinterpret_cast<uintptr_t>(in.view.data);
  return d;
}

}  // namespace

PYBIND11_MODULE(_splitrans, m) {
  m.doc() = "Native bindings of the splitrans feature codec (codec/codec.h); use the splitrans package.";

  py::dict scope;
  scope["__name__"] = "splitrans";
  scope["__builtins__"] = py::module_::import("builtins");
  py::exec(kCodecErrorSource, scope);
  g_codec_error = scope["CodecError"].ptr();
  Py_INCREF(g_codec_error);
  m.attr("CodecError") = py::reinterpret_borrow<py::object>(g_codec_error);

  const uint64_t kDefaultMaxElements = codec::DecodeLimits().max_elements;
  m.attr("__version__") = SPLITRANS_VERSION;
  m.attr("MIN_Q") = codec::kMinQ;
  m.attr("MAX_Q") = codec::kMaxQ;
  m.attr("MAX_RANK") = codec::kMaxRank;
  m.attr("MODES") = py::tuple(py::cast(codec::ModeNames()));
  m.attr("DEFAULT_MAX_ELEMENTS") = kDefaultMaxElements;
  py::dict codes;
  for (int c = 0; c <= static_cast<int>(codec::ErrorCode::kUnavailable); ++c) {
    codes[codec::ErrorCodeName(static_cast<codec::ErrorCode>(c))] = c;
  }
  m.attr("ERROR_CODES") = codes;

  m.def("encode", &Encode, py::arg("array"), py::arg("q") = 4, py::arg("mode") = "auto", py::arg("search") = "alg1",
        py::arg("quantizer") = "aiq",
        R"doc(Quantize a float tensor to q bits and entropy-code it; returns the bitstream.

array: a NumPy array, a PyTorch CPU tensor (detached first), a DLPack producer or anything
    numpy.asarray accepts; float32, float16 or float64, rank 1..8, finite values.
    float32 and float16 are read in place when C-contiguous, aligned and native-endian;
    anything else (float64, non-contiguous strides, big-endian) is first copied once into a
    C-order float32 (float16 stays float16) array. float16 input is coded as float16 (the
    bitstream records it and decode returns float16); float64 is converted to float32.
q: bits per quantized value, 1..8.
mode: "auto" (smallest exact size among dense, sparse and context), "paper" (the paper's
    merged-table CSR), or "dense", "sparse", "context" to force that layout.
search: how paper mode picks N: "alg1" (the paper's Algorithm 1) or "exhaustive" (minimum
    cost over every candidate); other modes ignore it.
quantizer: "aiq" (the paper's AIQ over [min, max]) or "clip" (AIQ over a clipped range chosen
    by squared reconstruction error, outliers clamped; not with mode "paper"). Decoding is the
    same for both.

The bytes are those `splitrans-codec encode --q Q --mode M --search S --quantizer X` writes for the same
array. The GIL is released while coding (do not modify the array meanwhile).
Raises CodecError (INVALID_ARGUMENT) for a bad q, mode, search, quantizer or shape, or NaN/Inf values;
TypeError for another dtype, a non-CPU tensor or an object that is not array-like.)doc");

  m.def("decode", &Decode, py::arg("data"), py::arg("dtype") = py::none(),
        py::arg("max_elements") = kDefaultMaxElements, py::arg("max_shape") = py::none(),
        R"doc(Decode a bitstream into a new NumPy array of the encoded shape (C order, writable).

data: bytes, bytearray, memoryview or any contiguous buffer holding exactly one bitstream.
dtype: None (default) for the dtype that was encoded (float32, or float16 for float16 input),
    or numpy.float32 / numpy.float16 to choose.
max_elements: refuse (CodecError LIMIT_EXCEEDED) a bitstream whose tensor has more elements,
    before anything is allocated for it; the default is the codec's, 2**28 (1 GiB of float32).
max_shape: None, or a sequence of dimensions: the declared rank must equal its length and
    every dimension must be <= its entry (LIMIT_EXCEEDED otherwise).

The whole bitstream is validated (checksum included). The GIL is released while decoding.
Raises CodecError with the codec's code (TRUNCATED, BAD_MAGIC, CHECKSUM_MISMATCH, ...) for bad
bytes; TypeError when data is not bytes-like or dtype is not one of the above.)doc");

  m.def("inspect", &Inspect, py::arg("data"), py::arg("max_elements") = kDefaultMaxElements,
        py::arg("max_shape") = py::none(),
        R"doc(Validate a bitstream (checksum included) and describe its header and sections.

Returns a dict with the keys of `splitrans-codec inspect --json` (less "file"): version,
dtype ("float32"/"float16"), shape (tuple), elements, q, scale (the float32 header value),
zero_point, layout ("constant", "dense", "sparse", "paper", "context"), n and k (only for the
paper and sparse layouts), total_bytes, header_bytes, bits_per_element, and sections: a list
of dicts with name, symbols, table_bytes, payload_bytes, entropy_bits,
entropy_bits_per_symbol and entropy_bytes. The symbols are decoded (elements bytes held while
it runs) to compute the entropies. max_elements and max_shape as for decode.
Raises CodecError for bad bytes or exceeded limits.)doc");

  m.def("search", &Search, py::arg("array"), py::arg("q") = 4,
        R"doc(Paper mode's search space for N (rows of the N x K reshape), as `splitrans-codec search --csv`.

Returns one dict per candidate N (N | T, N > sqrt(T), K = T/N <= 2**q), in the order the
paper's Algorithm 1 walks them (descending N), with the keys n, k, len_d (|v|+|c|+|r|),
entropy_bits_per_symbol (H(D), one merged table), cost_bits (len_d * H(D): Algorithm 1's
objective), coded_bytes (exact size of the whole bitstream with that N),
visited_by_algorithm1, and the flags algorithm1_choice (mode="paper", search="alg1"),
exhaustive_choice (search="exhaustive": minimum cost) and smallest_coded. An empty list when
the quantized tensor is constant (paper mode then writes the constant layout).
array as for encode. Raises CodecError (INVALID_ARGUMENT) for a bad q, shape or values.)doc");

  m.def("_input_info", &InputInfo, py::arg("array"),
        "For tests: how encode would read array (dtype, shape, whether it copies, data address).");
}

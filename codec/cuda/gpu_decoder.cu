// GpuDecoder: validates every bitstream on the host (gpu_plan.cc; device-resident ones are first
// checksummed by ProbeKernel and their prefix copied back), then decodes the dense rANS streams
// with one warp per block and fills constant tensors (decode_kernels.cuh). Other layouts fall
// back to the CPU Decoder and are copied to the device.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "codec/byte_io.h"
#include "codec/cuda/cuda_status.h"
#include "codec/cuda/decode_kernels.cuh"
#include "codec/cuda/gpu_codec.h"
#include "codec/cuda/gpu_plan.h"

namespace splitrans::codec::gpu {
namespace {

size_t Align(size_t v, size_t a) { return (v + a - 1) / a * a; }

class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    if (cudaGetDevice(&prev_) == cudaSuccess && prev_ != device) switched_ = cudaSetDevice(device) == cudaSuccess;
  }
  ~DeviceGuard() {
    if (switched_) cudaSetDevice(prev_);
  }

 private:
  int prev_ = 0;
  bool switched_ = false;
};

enum class Route { kFailed, kNothing, kFill, kRans, kCpu };

struct Job {
  Route route = Route::kFailed;
  ValidatedHeader hdr;
  DenseStreamInfo ds;
  float value = 0;            // kFill
  const uint8_t* host = nullptr;  // host view of the bitstream (input, or its copy)
  size_t fetched = 0;         // device input: bytes of the copy that are valid
  size_t copy_index = 0;      // device input: which of Impl::copies holds the copy
  ExternalCrc crc;            // device input
};

}  // namespace

struct GpuDecoder::Impl {
  int device = 0;
  DecodeLimits limits;
  CrcTables crc_host;
  CrcTables* crc_dev = nullptr;
  uint8_t* ws = nullptr;      // device: descriptors, tables, payloads, results
  size_t ws_cap = 0;
  uint8_t* pinned = nullptr;  // host mirror for uploads and downloads
  size_t pinned_cap = 0;
  // Device input: host copies of each bitstream's first `fetched` bytes. They hold only what the
  // host parses (header, table, block index; everything for layouts decoded on the CPU), so a
  // batch of large device bitstreams does not allocate their size on the host.
  std::vector<std::unique_ptr<uint8_t[]>> copies;
  std::vector<size_t> copy_caps;
  std::unique_ptr<Decoder> cpu;
  std::vector<float> cpu_out;
  std::vector<Job> jobs;

  ~Impl() {
    DeviceGuard guard(device);
    if (crc_dev) cudaFree(crc_dev);
    if (ws) cudaFree(ws);
    if (pinned) cudaFreeHost(pinned);
  }

  Status EnsureDevice(size_t bytes) {
    if (ws_cap >= bytes) return Status::Ok();
    if (ws) cudaFree(ws);
    ws = nullptr;
    ws_cap = 0;
    CUDA_RETURN_IF_ERROR(cudaMalloc(&ws, bytes));
    ws_cap = bytes;
    return Status::Ok();
  }
  Status EnsurePinned(size_t bytes) {
    if (pinned_cap >= bytes) return Status::Ok();
    if (pinned) cudaFreeHost(pinned);
    pinned = nullptr;
    pinned_cap = 0;
    CUDA_RETURN_IF_ERROR(cudaMallocHost(&pinned, bytes));
    pinned_cap = bytes;
    return Status::Ok();
  }

  // Device input: checksums every bitstream on the GPU and copies its first bytes to copies[i].
  Status Probe(const GpuDecodeItem* items, size_t count, cudaStream_t stream) {
    std::vector<ProbeItem> probe(count);
    std::vector<uint32_t> chunk_prefix(count + 1);
    uint64_t chunks = 0, prefix_total = 0;
    for (size_t i = 0; i < count; ++i) {
      const GpuDecodeItem& it = items[i];
      ProbeItem& p = probe[i];
      std::memset(&p, 0, sizeof(p));
      chunk_prefix[i] = static_cast<uint32_t>(chunks);
      if (it.data == nullptr || it.size == 0) continue;
      p.data = it.data;
      p.size = it.size;
      p.prefix_bytes = static_cast<uint32_t>(std::min<size_t>(it.size, kProbePrefix));
      p.prefix_offset = prefix_total;
      prefix_total += Align(p.prefix_bytes, 16);
      chunks += (it.size + kProbeChunk - 1) / kProbeChunk;
      if (chunks > 0x7FFFFFFF) return InvalidArgument("batch too large for one launch");
    }
    chunk_prefix[count] = static_cast<uint32_t>(chunks);
    const size_t items_off = 0;
    const size_t prefix_off = Align(count * sizeof(ProbeItem), 256);
    const size_t upload = prefix_off + (count + 1) * 4;
    const size_t res_off = Align(upload, 256);
    const size_t stage_off = Align(res_off + count * sizeof(ProbeResult), 256);
    const size_t total = stage_off + prefix_total;
    SPLITRANS_RETURN_IF_ERROR(EnsureDevice(total));
    SPLITRANS_RETURN_IF_ERROR(EnsurePinned(total));
    std::memcpy(pinned + items_off, probe.data(), count * sizeof(ProbeItem));
    std::memcpy(pinned + prefix_off, chunk_prefix.data(), (count + 1) * 4);
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(ws, pinned, upload, cudaMemcpyHostToDevice, stream));
    CUDA_RETURN_IF_ERROR(cudaMemsetAsync(ws + res_off, 0, count * sizeof(ProbeResult), stream));
    if (chunks > 0) {
      ProbeBatch B;
      B.items = reinterpret_cast<const ProbeItem*>(ws + items_off);
      B.count = static_cast<uint32_t>(count);
      B.chunk_prefix = reinterpret_cast<const uint32_t*>(ws + prefix_off);
      B.staging = ws + stage_off;
      B.results = reinterpret_cast<ProbeResult*>(ws + res_off);
      B.crc = crc_dev;
      ProbeKernel<<<static_cast<uint32_t>(chunks), kProbeThreads, 0, stream>>>(B);
      CUDA_RETURN_IF_LAUNCH_FAILED(ProbeKernel);
    }
    CUDA_RETURN_IF_ERROR(
        cudaMemcpyAsync(pinned + res_off, ws + res_off, total - res_off, cudaMemcpyDeviceToHost, stream));
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    if (copies.size() < count) {
      copies.resize(count);
      copy_caps.resize(count, 0);
    }
    const ProbeResult* results = reinterpret_cast<const ProbeResult*>(pinned + res_off);
    for (size_t i = 0; i < count; ++i) {
      Job& job = jobs[i];
      const GpuDecodeItem& it = items[i];
      const size_t prefix = probe[i].prefix_bytes;
      if (copy_caps[i] < prefix) {
        copies[i].reset(new uint8_t[prefix]);  // uninitialized: only the fetched prefix is ever read
        copy_caps[i] = prefix;
      }
      job.host = copies[i].get();
      job.copy_index = i;
      job.fetched = prefix;
      if (job.fetched) std::memcpy(copies[i].get(), pinned + stage_off + probe[i].prefix_offset, job.fetched);
      if (job.fetched >= kFixedHeaderBytes) {  // else the header check fails before the checksum
        uint32_t body;
        std::memcpy(&body, job.host + 20, 4);
        job.crc.computed = CrcFinish(results[i].crc_xor, kFixedHeaderBytes + uint64_t{body}, crc_host.x2n);
        job.crc.stored = results[i].stored;
      }
    }
    return Status::Ok();
  }

  // Device input: makes bytes [0, upto) of copies[i] valid.
  Status Fetch(const GpuDecodeItem& it, Job& job, size_t upto, cudaStream_t stream) {
    upto = std::min(upto, it.size);
    if (upto <= job.fetched) return Status::Ok();
    const size_t i = job.copy_index;
    if (copy_caps[i] < upto) {  // grow, keeping the bytes fetched so far
      std::unique_ptr<uint8_t[]> grown(new uint8_t[upto]);
      if (job.fetched) std::memcpy(grown.get(), copies[i].get(), job.fetched);
      copies[i] = std::move(grown);
      copy_caps[i] = upto;
      job.host = copies[i].get();
    }
    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(const_cast<uint8_t*>(job.host) + job.fetched, it.data + job.fetched,
                                         upto - job.fetched, cudaMemcpyDeviceToHost, stream));
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    job.fetched = upto;
    return Status::Ok();
  }

  // Host-side validation and routing of item i (FORMAT.md order, the CPU Decoder's codes).
  Status Validate(const GpuDecodeItem& it, MemorySpace input, Job& job, cudaStream_t stream) {
    if (input == MemorySpace::kHost) job.host = it.data;
    if (input == MemorySpace::kDevice && it.data == nullptr && it.size > 0) return InvalidArgument("null input");
    SPLITRANS_RETURN_IF_ERROR(ValidateHeader(job.host, it.size, limits,
                                                input == MemorySpace::kDevice ? &job.crc : nullptr, &job.hdr));
    const ValidatedHeader& h = job.hdr;
    if (it.capacity < h.elements) {
      return InvalidArgument("output holds " + std::to_string(it.capacity) + " floats, tensor has " +
                             std::to_string(h.elements));
    }
    if (h.elements > 0 && it.out_dev == nullptr) return InvalidArgument("output is null");
    switch (static_cast<Layout>(h.h.layout)) {
      case Layout::kConstant: {
        ByteReader rd(job.host + h.body_offset, h.body_end - h.body_offset);
        float v;
        SPLITRANS_RETURN_IF_ERROR(rd.F32(&v, "constant value"));
        if (!std::isfinite(v)) return Corrupt("constant value is not finite");
        if (rd.remaining() != 0) return Corrupt(std::to_string(rd.remaining()) + " unused bytes at the end of the body");
        job.value = v;
        job.route = h.elements > 0 ? Route::kFill : Route::kNothing;
        return Status::Ok();
      }
      case Layout::kDense: {
        if (input == MemorySpace::kDevice) {
          SPLITRANS_RETURN_IF_ERROR(
              Fetch(it, job, std::min(h.body_end, DenseParsePrefixBound(h.elements, h.h.rank)), stream));
        }
        SPLITRANS_RETURN_IF_ERROR(ParseDenseBody(job.host, h, &job.ds));
        switch (job.ds.kind) {
          case StreamKind::kEmpty:
            job.route = Route::kNothing;
            break;
          case StreamKind::kConstant:
            job.value = DequantizeOne(job.ds.symbol, h.h.zero_point, h.h.scale);
            job.route = Route::kFill;
            break;
          case StreamKind::kRans:
            job.route = Route::kRans;
            break;
        }
        return Status::Ok();
      }
      default: {  // sparse, paper, context: the CPU decoder
        if (input == MemorySpace::kDevice) SPLITRANS_RETURN_IF_ERROR(Fetch(it, job, it.size, stream));
        job.route = Route::kCpu;
        return Status::Ok();
      }
    }
  }

  Status DecodeOnCpu(const GpuDecodeItem& it, Job& job, cudaStream_t stream) {
    if (!cpu) cpu = std::make_unique<Decoder>();
    DecodeLimits cpu_limits = limits;  // the current ones (SetLimits may have changed them)
    cpu_limits.accept_shape = nullptr;  // Validate already asked the caller's about this item: once is enough
    cpu->SetLimits(std::move(cpu_limits));
    cpu_out.resize(job.hdr.elements);
    std::vector<int64_t> shape;
    SPLITRANS_RETURN_IF_ERROR(cpu->DecodeInto(job.host, it.size, cpu_out.data(), cpu_out.size(), &shape));
    if (!cpu_out.empty()) {
      CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(it.out_dev, cpu_out.data(), cpu_out.size() * sizeof(float),
                                           cudaMemcpyHostToDevice, stream));
      CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    }
    return Status::Ok();
  }

  // Uploads descriptors, tables (and host payloads) of the GPU jobs in one copy, launches the
  // decode and fill kernels and copies the per-item results back once.
  Status RunKernels(const GpuDecodeItem* items, size_t count, MemorySpace input, cudaStream_t stream,
                    std::vector<Status>* statuses) {
    std::vector<size_t> rans, fill;
    for (size_t i = 0; i < count; ++i) {
      if (jobs[i].route == Route::kRans) rans.push_back(i);
      if (jobs[i].route == Route::kFill) fill.push_back(i);
    }
    if (rans.empty() && fill.empty()) return Status::Ok();
    const size_t nr = rans.size(), nf = fill.size();
    uint64_t total_blocks = 0, ctas = 0, tiles = 0;
    size_t table_bytes = 0, payload_bytes = 0;
    for (size_t i : rans) {
      const DenseStreamInfo& ds = jobs[i].ds;
      total_blocks += ds.word_counts.size();
      ctas += (ds.word_counts.size() + kDecWarpsPerCta - 1) / kDecWarpsPerCta;
      table_bytes += DecodeTableBytes(ds, nullptr);
      if (input == MemorySpace::kHost) payload_bytes += Align(ds.payload_bytes, 16);
    }
    for (size_t i : fill) tiles += (jobs[i].hdr.elements + kTileElems - 1) / kTileElems;
    if (ctas > 0x7FFFFFFF || tiles > 0x7FFFFFFF || total_blocks > 0xFFFFFFFF) {
      return InvalidArgument("batch too large for one launch");
    }
    size_t off = 0;
    auto take = [&](size_t bytes) {
      const size_t at = off;
      off = Align(off + bytes, 256);
      return at;
    };
    const size_t items_off = take(nr * sizeof(DecItem));
    const size_t blocks_off = take(total_blocks * sizeof(DecBlock));
    const size_t cta_off = take((nr + 1) * 4);
    const size_t fill_off = take(nf * sizeof(FillItem));
    const size_t tile_off = take((nf + 1) * 4);
    const size_t tables_off = take(table_bytes);
    const size_t payload_off = take(payload_bytes);
    const size_t upload = off;
    const size_t res_off = take(nr * sizeof(ItemResult));
    const size_t total = off;
    SPLITRANS_RETURN_IF_ERROR(EnsureDevice(total));
    SPLITRANS_RETURN_IF_ERROR(EnsurePinned(total));

    DecItem* ditems = reinterpret_cast<DecItem*>(pinned + items_off);
    DecBlock* dblocks = reinterpret_cast<DecBlock*>(pinned + blocks_off);
    uint32_t* cta_prefix = reinterpret_cast<uint32_t*>(pinned + cta_off);
    size_t table_at = tables_off, payload_at = payload_off;
    uint32_t block_at = 0, cta_at = 0;
    for (size_t k = 0; k < nr; ++k) {
      const Job& job = jobs[rans[k]];
      const DenseStreamInfo& ds = job.ds;
      DecItem& d = ditems[k];
      std::memset(&d, 0, sizeof(d));
      if (input == MemorySpace::kHost) {
        std::memcpy(pinned + payload_at, job.host + ds.payload_offset, ds.payload_bytes);
        d.payload = ws + payload_at;
        payload_at += Align(ds.payload_bytes, 16);
      } else {
        d.payload = items[rans[k]].data + ds.payload_offset;
      }
      size_t fs_offset;
      const size_t tb = DecodeTableBytes(ds, &fs_offset);
      BuildDecodeTable(ds, pinned + table_at);
      d.table = ws + table_at;
      d.table_fs_offset = static_cast<uint32_t>(fs_offset);
      table_at += tb;
      d.out = items[rans[k]].out_dev;
      d.n = ds.n;
      d.alphabet = ds.alphabet;
      d.scale = job.hdr.h.scale;
      d.zero_point = job.hdr.h.zero_point;
      d.block_begin = block_at;
      d.num_blocks = static_cast<uint32_t>(ds.word_counts.size());
      d.prob_bits = static_cast<uint8_t>(ds.prob_bits);
      d.lanes_log2 = static_cast<uint8_t>(ds.lanes_log2);
      d.block_log2 = static_cast<uint8_t>(ds.block_log2);
      for (size_t b = 0; b < ds.word_counts.size(); ++b) {
        DecBlock& db = dblocks[block_at + b];
        db.offset = ds.block_offsets[b];
        db.word_count = ds.word_counts[b];
        db.pad = 0;
      }
      block_at += d.num_blocks;
      cta_prefix[k] = cta_at;
      cta_at += (d.num_blocks + kDecWarpsPerCta - 1) / kDecWarpsPerCta;
    }
    cta_prefix[nr] = cta_at;
    FillItem* fitems = reinterpret_cast<FillItem*>(pinned + fill_off);
    uint32_t* tile_prefix = reinterpret_cast<uint32_t*>(pinned + tile_off);
    uint32_t tile_at = 0;
    for (size_t k = 0; k < nf; ++k) {
      const Job& job = jobs[fill[k]];
      fitems[k] = FillItem{items[fill[k]].out_dev, job.hdr.elements, job.value, 0};
      tile_prefix[k] = tile_at;
      tile_at += static_cast<uint32_t>((job.hdr.elements + kTileElems - 1) / kTileElems);
    }
    tile_prefix[nf] = tile_at;

    CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(ws, pinned, upload, cudaMemcpyHostToDevice, stream));
    if (nr > 0) {
      CUDA_RETURN_IF_ERROR(cudaMemsetAsync(ws + res_off, 0, nr * sizeof(ItemResult), stream));
      DecBatch B;
      B.items = reinterpret_cast<const DecItem*>(ws + items_off);
      B.count = static_cast<uint32_t>(nr);
      B.cta_prefix = reinterpret_cast<const uint32_t*>(ws + cta_off);
      B.blocks = reinterpret_cast<const DecBlock*>(ws + blocks_off);
      B.results = reinterpret_cast<ItemResult*>(ws + res_off);
      if (cta_at > 0) {
        RansDecodeKernel<<<cta_at, kDecWarpsPerCta * 32, 0, stream>>>(B);
        CUDA_RETURN_IF_LAUNCH_FAILED(RansDecodeKernel);
      }
    }
    if (tile_at > 0) {
      FillBatch F;
      F.items = reinterpret_cast<const FillItem*>(ws + fill_off);
      F.count = static_cast<uint32_t>(nf);
      F.tile_prefix = reinterpret_cast<const uint32_t*>(ws + tile_off);
      FillKernel<<<tile_at, kTileThreads, 0, stream>>>(F);
      CUDA_RETURN_IF_LAUNCH_FAILED(FillKernel);
    }
    if (nr > 0) {
      CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(pinned + res_off, ws + res_off, nr * sizeof(ItemResult),
                                           cudaMemcpyDeviceToHost, stream));
    }
    CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    const ItemResult* res = reinterpret_cast<const ItemResult*>(pinned + res_off);
    for (size_t k = 0; k < nr; ++k) {
      if (res[k].code != kCodeOk) {
        (*statuses)[rans[k]] =
            Corrupt("rANS block " + std::to_string(~res[k].detail) +
                    " failed its payload checks on the GPU (initial state, word count or final state)");
      }
    }
    return Status::Ok();
  }
};

GpuDecoder::GpuDecoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GpuDecoder::~GpuDecoder() = default;

void GpuDecoder::SetLimits(const DecodeLimits& limits) { impl_->limits = limits; }

Result<std::unique_ptr<GpuDecoder>> GpuDecoder::Create(const DecodeLimits& limits) {
  std::string why;
  if (!GpuAvailable(&why)) return Status(ErrorCode::kUnavailable, "no usable GPU: " + why);
  auto impl = std::make_unique<Impl>();
  impl->limits = limits;
  CUDA_RETURN_IF_ERROR(cudaGetDevice(&impl->device));
  FillCrcTables(&impl->crc_host);
  CUDA_RETURN_IF_ERROR(cudaMalloc(&impl->crc_dev, sizeof(CrcTables)));
  CUDA_RETURN_IF_ERROR(cudaMemcpy(impl->crc_dev, &impl->crc_host, sizeof(CrcTables), cudaMemcpyHostToDevice));
  return std::unique_ptr<GpuDecoder>(new GpuDecoder(std::move(impl)));
}

Status GpuDecoder::DecodeBatch(const GpuDecodeItem* items, size_t count, MemorySpace input, cudaStream_t stream,
                               std::vector<Status>* statuses, std::vector<std::vector<int64_t>>* shapes) {
  Impl& m = *impl_;
  DeviceGuard guard(m.device);
  if (items == nullptr && count > 0) return InvalidArgument("null batch");
  std::vector<Status> local;
  if (statuses == nullptr) statuses = &local;
  statuses->assign(count, Status::Ok());
  if (shapes) shapes->assign(count, {});
  m.jobs.assign(count, Job());
  // On a CUDA error, drain the stream before returning: copies from the pinned buffer may still be
  // in flight, and the next call rewrites it.
  auto drained = [stream](Status st) {
    if (!st.ok()) {
      cudaStreamSynchronize(stream);
      cudaGetLastError();
    }
    return st;
  };
  if (input == MemorySpace::kDevice && count > 0) SPLITRANS_RETURN_IF_ERROR(drained(m.Probe(items, count, stream)));
  for (size_t i = 0; i < count; ++i) {
    Job& job = m.jobs[i];
    Status st = m.Validate(items[i], input, job, stream);
    if (!st.ok()) {
      job.route = Route::kFailed;
      (*statuses)[i] = st;
      continue;
    }
    if (shapes) (*shapes)[i] = job.hdr.shape;
    if (job.route == Route::kCpu) {
      st = m.DecodeOnCpu(items[i], job, stream);
      if (!st.ok()) (*statuses)[i] = st;
    }
  }
  SPLITRANS_RETURN_IF_ERROR(drained(m.RunKernels(items, count, input, stream, statuses)));
  for (size_t i = 0; i < count; ++i) {
    const Status& st = (*statuses)[i];
    if (!st.ok()) return Status(st.code(), "item " + std::to_string(i) + ": " + st.message());
  }
  return Status::Ok();
}

Status GpuDecoder::Decode(const GpuDecodeItem& item, MemorySpace input, cudaStream_t stream,
                          std::vector<int64_t>* shape) {
  std::vector<Status> statuses;
  std::vector<std::vector<int64_t>> shapes;
  Status st = DecodeBatch(&item, 1, input, stream, &statuses, shape ? &shapes : nullptr);
  if (shape && st.ok()) *shape = shapes[0];
  if (st.ok() || statuses.empty() || statuses[0].ok()) return st;
  return statuses[0];
}

}  // namespace splitrans::codec::gpu

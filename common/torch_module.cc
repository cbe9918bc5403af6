#include "common/torch_module.h"

#include <absl/strings/str_cat.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <cstring>
#include <functional>
#include <mutex>
#include <numeric>

namespace splitrans {

struct TorchModule::Impl {
  torch::jit::Module module;
};

void ConfigureTorchThreads(int intra_op_threads) {
  static std::once_flag once;
  std::call_once(once, [&] {
    at::set_num_threads(intra_op_threads < 1 ? 1 : intra_op_threads);
    try {
      at::set_num_interop_threads(1);
    } catch (...) {
      // Already set (interop threads can be set only once per process).
    }
    // The models are small and shapes vary with the batch: skip the profiling executor's
    // re-specialization (latency spikes on the first calls of each new shape).
    torch::jit::getProfilingMode() = false;
    torch::jit::getExecutorMode() = false;
  });
}

TorchModule::~TorchModule() = default;

absl::StatusOr<std::unique_ptr<TorchModule>> TorchModule::Load(const std::string& path) {
  std::unique_ptr<TorchModule> m(new TorchModule());
  m->impl_ = std::make_unique<Impl>();
  m->path_ = path;
  try {
    m->impl_->module = torch::jit::load(path, torch::kCPU);
    m->impl_->module.eval();
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (what.size() > 300) what.resize(300);
    return absl::InvalidArgumentError(absl::StrCat("cannot load TorchScript '", path, "': ", what));
  }
  return m;
}

absl::StatusOr<std::unique_ptr<TorchModule>> TorchModule::LoadAndWarmUp(
    const std::string& path, const std::vector<int64_t>& input_shape,
    std::vector<int64_t>* output_shape) {
  return LoadAndWarmUp(path, input_shape, InputDType::kFloat32, output_shape);
}

absl::StatusOr<std::unique_ptr<TorchModule>> TorchModule::LoadAndWarmUp(
    const std::string& path, const std::vector<int64_t>& input_shape, InputDType dtype,
    std::vector<int64_t>* output_shape) {
  auto mod = Load(path);
  if (!mod.ok()) return mod.status();
  std::vector<int64_t> shape = {1};
  shape.insert(shape.end(), input_shape.begin(), input_shape.end());
  const int64_t n = std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>());
  std::vector<float> out;
  std::vector<int64_t> out_shape;
  absl::Status st;
  if (dtype == InputDType::kInt64) {
    std::vector<int64_t> zeros(n);
    st = (*mod)->Forward(zeros.data(), shape, &out, &out_shape);
  } else {
    std::vector<float> zeros(n);
    st = (*mod)->Forward(zeros.data(), shape, &out, &out_shape);
  }
  if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", st.message()));
  if (output_shape != nullptr) *output_shape = std::move(out_shape);
  return mod;
}

absl::Status TorchModule::Forward(const float* input, const std::vector<int64_t>& shape,
                                  std::vector<float>* output,
                                  std::vector<int64_t>* output_shape) const {
  return ForwardTensor(input, /*int64=*/false, shape, output, output_shape);
}

absl::Status TorchModule::Forward(const int64_t* input, const std::vector<int64_t>& shape,
                                  std::vector<float>* output,
                                  std::vector<int64_t>* output_shape) const {
  return ForwardTensor(input, /*int64=*/true, shape, output, output_shape);
}

absl::Status TorchModule::ForwardTensor(const void* input, bool int64, const std::vector<int64_t>& shape,
                                        std::vector<float>* output,
                                        std::vector<int64_t>* output_shape) const {
  try {
    c10::InferenceMode guard;
    // from_blob does not copy; the module does not modify its input.
    at::Tensor in = torch::from_blob(const_cast<void*>(input), shape, int64 ? torch::kInt64 : torch::kFloat32);
    torch::jit::IValue out_iv = impl_->module.forward({in});
    if (!out_iv.isTensor()) return absl::InternalError("model output is not a tensor");
    at::Tensor out = out_iv.toTensor().to(torch::kFloat32).contiguous();
    output_shape->assign(out.sizes().begin(), out.sizes().end());
    output->resize(out.numel());
    std::memcpy(output->data(), out.data_ptr<float>(), out.numel() * sizeof(float));
    return absl::OkStatus();
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (what.size() > 300) what.resize(300);
    return absl::InvalidArgumentError(absl::StrCat("forward failed: ", what));
  }
}

}  // namespace splitrans

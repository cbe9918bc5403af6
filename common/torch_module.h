// A loaded TorchScript module behind a Torch-free header (the only TU that includes Torch is
// torch_module.cc). Forward() is thread-safe (inference mode, no autograd).
#pragma once

#include <absl/status/statusor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace splitrans {

// Sets LibTorch intra-op threads (default 1 in the binaries) and inter-op threads; call once
// at startup before any Forward().
void ConfigureTorchThreads(int intra_op_threads);

// The element type of a module's input: float32 (images, features) or int64 (token ids).
enum class InputDType { kFloat32, kInt64 };

class TorchModule {
 public:
  static absl::StatusOr<std::unique_ptr<TorchModule>> Load(const std::string& path);
  // Load(), then one Forward() on zeros of shape [1, input_shape...]: the first TorchScript call
  // is much slower than the next ones. *output_shape (nullable) gets that call's output shape.
  // INVALID_ARGUMENT "<path>: <reason>" when the call fails.
  static absl::StatusOr<std::unique_ptr<TorchModule>> LoadAndWarmUp(
      const std::string& path, const std::vector<int64_t>& input_shape,
      std::vector<int64_t>* output_shape = nullptr);
  // The same with zeros of the given type (kInt64: token id 0).
  static absl::StatusOr<std::unique_ptr<TorchModule>> LoadAndWarmUp(
      const std::string& path, const std::vector<int64_t>& input_shape, InputDType dtype,
      std::vector<int64_t>* output_shape = nullptr);
  ~TorchModule();

  // Runs forward on one float32 tensor (C order, host memory holding product(shape) floats)
  // and returns the single float32 output tensor.
  absl::Status Forward(const float* input, const std::vector<int64_t>& shape,
                       std::vector<float>* output, std::vector<int64_t>* output_shape) const;
  // The same on one int64 tensor (token ids; the caller has checked them against the vocabulary).
  absl::Status Forward(const int64_t* input, const std::vector<int64_t>& shape,
                       std::vector<float>* output, std::vector<int64_t>* output_shape) const;
  const std::string& path() const { return path_; }

 private:
  struct Impl;
  TorchModule() = default;
  absl::Status ForwardTensor(const void* input, bool int64, const std::vector<int64_t>& shape,
                             std::vector<float>* output, std::vector<int64_t>* output_shape) const;
  std::unique_ptr<Impl> impl_;
  std::string path_;
};

}  // namespace splitrans

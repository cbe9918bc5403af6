// CUDA runtime errors as codec::Status, and the macros the CUDA codec uses after every runtime
// call and kernel launch. Internal to codec/cuda.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "codec/status.h"

namespace splitrans::codec::gpu {

// UNAVAILABLE for a missing or unusable device (no driver, no device, no kernel image, out of
// memory), INTERNAL for anything else (a failed launch or a fault is a bug).
inline Status CudaStatus(cudaError_t e, const char* what, const char* file, int line) {
  ErrorCode code = ErrorCode::kInternal;
  switch (e) {
    case cudaErrorInsufficientDriver:
    case cudaErrorNoDevice:
    case cudaErrorNoKernelImageForDevice:
    case cudaErrorDevicesUnavailable:
    case cudaErrorInitializationError:
    case cudaErrorMemoryAllocation:
    case cudaErrorStubLibrary:
      code = ErrorCode::kUnavailable;
      break;
    default:
      break;
  }
  return Status(code, std::string(what) + " failed: " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) +
                          ") at " + file + ":" + std::to_string(line));
}

}  // namespace splitrans::codec::gpu

// Returns a Status from the enclosing function when a CUDA runtime call fails.
#define CUDA_RETURN_IF_ERROR(expr)                                                           \
  do {                                                                                       \
    const cudaError_t _splitrans_cuda_e = (expr);                                            \
    if (_splitrans_cuda_e != cudaSuccess) {                                                  \
      return ::splitrans::codec::gpu::CudaStatus(_splitrans_cuda_e, #expr, __FILE__, __LINE__); \
    }                                                                                        \
  } while (0)

// After a kernel launch: configuration errors surface here, faults at the next synchronization.
#define CUDA_RETURN_IF_LAUNCH_FAILED(kernel)                                                          \
  do {                                                                                                \
    const cudaError_t _splitrans_cuda_e = cudaGetLastError();                                         \
    if (_splitrans_cuda_e != cudaSuccess) {                                                           \
      return ::splitrans::codec::gpu::CudaStatus(_splitrans_cuda_e, "launch of " #kernel, __FILE__, __LINE__); \
    }                                                                                                 \
  } while (0)

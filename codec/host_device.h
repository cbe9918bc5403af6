// SPLITRANS_HD marks the functions compiled for both the host and, under nvcc, the device
// (the rANS core, the wire header writer): inline on the host, __host__ __device__ under CUDA.
#pragma once

#if defined(__CUDACC__)
#define SPLITRANS_HD __host__ __device__ __forceinline__
#else
#define SPLITRANS_HD inline
#endif

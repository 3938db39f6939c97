// Shared pieces of the CUDA backend (ops/cuda): error checks, a growable
// device scratch buffer, warp/block reductions, weight loads by dtype, and
// the host-side launchers each .cu file defines. Everything here runs on the
// backend's one stream; nothing synchronizes unless it says so.
#pragma once

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "base/dtype.h"
#include "dllm/error.h"
#include "ops/ops.h"

namespace dllm::ops::cuda {

// Fails with the CUDA error string and what was being done.
inline void CheckCuda(cudaError_t e, const char* what, const char* file,
                      int line) {
  if (e != cudaSuccess)
    Fail("cuda: ", what, ": ", cudaGetErrorName(e), " (", cudaGetErrorString(e),
         ") at ", file, ":", line);
}
inline void CheckCublas(cublasStatus_t s, const char* what, const char* file,
                        int line) {
  if (s != CUBLAS_STATUS_SUCCESS)
    Fail("cuda: cuBLASLt ", what, ": status ", int(s), " at ", file, ":", line);
}
#define DLLM_CUDA_CHECK(call, what) \
  ::dllm::ops::cuda::CheckCuda((call), (what), __FILE__, __LINE__)
#define DLLM_CUBLAS_CHECK(call, what) \
  ::dllm::ops::cuda::CheckCublas((call), (what), __FILE__, __LINE__)
// After a kernel launch: catches bad launch configurations at once (faults
// inside the kernel surface at the next synchronizing call).
#define DLLM_CUDA_LAUNCHED(what) DLLM_CUDA_CHECK(cudaGetLastError(), (what))

// Dtype names for messages (DTypeName lives in the base library, which this
// archive does not link).
inline const char* CudaDTypeName(DType t) {
  switch (t) {
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kQ8_0:
      return "Q8_0";
    case DType::kQ4_0:
      return "Q4_0";
    case DType::kQ4_K:
      return "Q4_K";
    case DType::kQ6_K:
      return "Q6_K";
    default:
      return "a non-float dtype";
  }
}

// A device buffer that only grows. Growing waits for the stream first, so
// work still queued on the old buffer finishes before it is freed.
class DeviceScratch {
 public:
  DeviceScratch() = default;
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
  ~DeviceScratch() {
    if (p_) cudaFree(p_);
  }
  void* Get(size_t bytes, cudaStream_t stream) {
    if (bytes > size_) {
      if (p_) {
        DLLM_CUDA_CHECK(cudaStreamSynchronize(stream), "growing a scratch");
        DLLM_CUDA_CHECK(cudaFree(p_), "freeing a scratch");
        p_ = nullptr;
        size_ = 0;
      }
      const size_t want = bytes < 4096 ? 4096 : bytes + bytes / 4;
      DLLM_CUDA_CHECK(cudaMalloc(&p_, want), "allocating a scratch");
      size_ = want;
    }
    return p_;
  }

 private:
  void* p_ = nullptr;
  size_t size_ = 0;
};

// Blocks of 1-D launches over n elements, capped (kernels grid-stride).
inline unsigned GridFor(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  if (b > (1 << 20)) b = 1 << 20;
  return unsigned(b < 1 ? 1 : b);
}

// ---------------------------------------------------------------------------
// Device helpers.

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over a block of blockDim.x threads (a multiple of 32, at most 1024);
// every thread gets the result. `shared` holds 32 floats.
__device__ __forceinline__ float BlockSum(float v, float* shared) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int n_warps = blockDim.x >> 5;
  v = WarpSum(v);
  __syncthreads();  // `shared` may still be read from an earlier call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < n_warps ? shared[lane] : 0.0f;
  return WarpSum(v);
}

__device__ __forceinline__ float Bf16Bits(uint16_t h) {
  return __uint_as_float(uint32_t(h) << 16);
}
__device__ __forceinline__ float F16Bits(uint16_t h) {
  return __half2float(__ushort_as_half(h));
}

// Value c of one stored row (F32, BF16, F16, Q8_0, Q4_0) as fp32, computed
// as the CPU's dequantizers do (d * q in fp32).
__device__ __forceinline__ float LoadStored(DType t, const uint8_t* row,
                                            int64_t c) {
  switch (t) {
    case DType::kF32:
      return reinterpret_cast<const float*>(row)[c];
    case DType::kBF16:
      return Bf16Bits(reinterpret_cast<const uint16_t*>(row)[c]);
    case DType::kF16:
      return F16Bits(reinterpret_cast<const uint16_t*>(row)[c]);
    case DType::kQ8_0: {
      const uint8_t* b = row + (c / 32) * 34;
      const float d = F16Bits(*reinterpret_cast<const uint16_t*>(b));
      return d * float(int8_t(b[2 + c % 32]));
    }
    case DType::kQ4_0: {
      const uint8_t* b = row + (c / 32) * 18;
      const float d = F16Bits(*reinterpret_cast<const uint16_t*>(b));
      const int j = int(c % 32);
      const int nib = j < 16 ? (b[2 + j] & 0xf) : (b[2 + j - 16] >> 4);
      return float(nib - 8) * d;
    }
    default:
      return 0.0f;
  }
}

// ---------------------------------------------------------------------------
// Launchers (host). Pointers are device memory unless named host_.

// elementwise.cu
void LaunchRmsNorm(cudaStream_t st, const float* x, const float* w, int64_t M,
                   int64_t C, float eps, float* y);
void LaunchRope(cudaStream_t st, float* x, int64_t T, int64_t n_heads,
                int64_t head_dim, int64_t row_stride, const float* cos,
                const float* sin);
void LaunchSwiGLU(cudaStream_t st, const float* gate, const float* up,
                  int64_t n, float* out);
void LaunchAdd(cudaStream_t st, float* y, const float* x, int64_t n);
// x (n, table.cols) = rows ids[0, n) of the (device) table, as fp32.
void LaunchEmbed(cudaStream_t st, const Matrix& table, const int32_t* ids,
                 int64_t n, float* x);
void LaunchGatherRows(cudaStream_t st, const float* x, int64_t width,
                      const int32_t* rows, int64_t n, float* out);
// x[r * width + cols[i]] = value for rows r < n (cols: device indices).
void LaunchFillColumns(cudaStream_t st, float* x, int64_t n, int64_t width,
                       const int32_t* cols, int64_t n_cols, float value);
// out (n) = x rounded to t (BF16 or F16), round to nearest even.
void LaunchCast(cudaStream_t st, const float* x, int64_t n, DType t, void* out);
// y (M, N) += bias (N) on every row.
void LaunchAddBias(cudaStream_t st, float* y, const float* bias, int64_t M,
                   int64_t N);

// row_stats.cu: out (n) device RowStats.
void LaunchRowStats(cudaStream_t st, const float* logits, int64_t n, int64_t V,
                    RowStats* out);

// attention.cu: key_mask is device memory (B, keys()) or nullptr; `partial`
// is scratch for split-key partial results; n_sms sizes the split.
void LaunchAttention(cudaStream_t st, const float* q, const float* k,
                     const float* v, const AttentionShape& s,
                     const uint8_t* key_mask, float* out,
                     DeviceScratch* partial, int n_sms);

// gemm.cu: y (M, N) = x (M, K) w^T (+ bias), w placed on the device.
class Gemm {
 public:
  // mode: "auto" (default), "lt" (cuBLASLt whenever it has an algorithm) or
  // "kernel" (own kernels only), from DLLM_CUDA_GEMM.
  Gemm(cudaStream_t stream, const char* mode);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;
  void MatMulWT(const float* x, int64_t M, const Matrix& w, float* y,
                const float* bias);

 private:
  struct Plan;
  const Plan& GetPlan(DType t, int64_t M, int64_t N, int64_t K, unsigned al_a,
                      unsigned al_b, unsigned al_c);
  cudaStream_t stream_;
  cublasLtHandle_t lt_ = nullptr;
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
  int mode_ = 0;  // 0 auto, 1 lt, 2 kernel
  DeviceScratch cast_;
  struct Plans;
  Plans* plans_;
};

}  // namespace dllm::ops::cuda

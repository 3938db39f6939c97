// Row and element kernels of the CUDA backend: RmsNorm (a block per row),
// Rope (rotate-half), SwiGLU, add, embedding lookup, row gather, the fp32 ->
// bf16/f16 cast in front of cuBLASLt and the bias add after it. All fp32.
#include <cmath>

#include "ops/cuda/cuda_common.cuh"

namespace dllm::ops::cuda {
namespace {

constexpr int kThreads = 256;

// y (M, C) = x / sqrt(mean(x^2) + eps) * w. One block per row; y may alias
// x (each thread reads its elements again before writing them, after the
// reduction's barrier).
__global__ void RmsNormKernel(const float* x, const float* __restrict__ w,
                              int64_t C, float eps, float* y) {
  __shared__ float red[32];
  const float* xr = x + int64_t(blockIdx.x) * C;
  float* yr = y + int64_t(blockIdx.x) * C;
  float ss = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) ss += xr[c] * xr[c];
  ss = BlockSum(ss, red);
  const float r = float(1.0 / sqrt(double(ss) / double(C) + double(eps)));
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
    yr[c] = xr[c] * r * w[c];
}

// Rotate-half RoPE, as ops/ref: pairs (i, i + half) of each head of each
// row. One thread per (row, head, i < half).
__global__ void RopeKernel(float* x, int64_t T, int64_t n_heads, int64_t half,
                           int64_t head_dim, int64_t row_stride,
                           const float* __restrict__ cos,
                           const float* __restrict__ sin) {
  const int64_t total = T * n_heads * half;
  for (int64_t idx = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
       idx < total; idx += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = idx % half, h = (idx / half) % n_heads,
                  t = idx / (half * n_heads);
    float* v = x + t * row_stride + h * head_dim;
    const float a = v[i], b = v[i + half];
    const float c = cos[t * half + i], s = sin[t * half + i];
    v[i] = a * c - b * s;
    v[i + half] = b * c + a * s;
  }
}

__global__ void SwiGLUKernel(const float* gate, const float* up, int64_t n,
                             float* out) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    out[i] = g / (1.0f + expf(-g)) * up[i];
  }
}

__global__ void AddKernel(float* y, const float* x, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] += x[i];
}

// x (n, C): row r = table row ids[r]. Block per row.
__global__ void EmbedKernel(DType t, const uint8_t* __restrict__ table,
                            size_t row_bytes, int64_t C,
                            const int32_t* __restrict__ ids, float* x) {
  const uint8_t* row = table + size_t(ids[blockIdx.x]) * row_bytes;
  float* xr = x + int64_t(blockIdx.x) * C;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
    xr[c] = LoadStored(t, row, c);
}

__global__ void GatherRowsKernel(const float* __restrict__ x, int64_t width,
                                 const int32_t* __restrict__ rows,
                                 float* __restrict__ out) {
  const float* src = x + int64_t(rows[blockIdx.x]) * width;
  float* dst = out + int64_t(blockIdx.x) * width;
  for (int64_t c = threadIdx.x; c < width; c += blockDim.x) dst[c] = src[c];
}

__global__ void FillColumnsKernel(float* __restrict__ x, int64_t width,
                                  const int32_t* __restrict__ cols,
                                  int64_t n_cols, float value) {
  float* row = x + int64_t(blockIdx.x) * width;
  for (int64_t i = threadIdx.x; i < n_cols; i += blockDim.x)
    row[cols[i]] = value;
}

__global__ void CastBf16Kernel(const float* __restrict__ x, int64_t n,
                               __nv_bfloat16* __restrict__ out) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16_rn(x[i]);
}

__global__ void CastF16Kernel(const float* __restrict__ x, int64_t n,
                              __half* __restrict__ out) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __float2half_rn(x[i]);
}

__global__ void AddBiasKernel(float* y, const float* __restrict__ bias,
                              int64_t M, int64_t N) {
  const int64_t total = M * N;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] += bias[i % N];
}

unsigned RowThreads(int64_t width) {
  return width >= 1024 ? 1024 : width >= 256 ? 256 : 64;
}

}  // namespace

void LaunchRmsNorm(cudaStream_t st, const float* x, const float* w, int64_t M,
                   int64_t C, float eps, float* y) {
  if (M <= 0) return;
  RmsNormKernel<<<unsigned(M), RowThreads(C), 0, st>>>(x, w, C, eps, y);
  DLLM_CUDA_LAUNCHED("rmsnorm launch");
}

void LaunchRope(cudaStream_t st, float* x, int64_t T, int64_t n_heads,
                int64_t head_dim, int64_t row_stride, const float* cos,
                const float* sin) {
  const int64_t half = head_dim / 2, total = T * n_heads * half;
  if (total <= 0) return;
  RopeKernel<<<GridFor(total, kThreads), kThreads, 0, st>>>(
      x, T, n_heads, half, head_dim, row_stride, cos, sin);
  DLLM_CUDA_LAUNCHED("rope launch");
}

void LaunchSwiGLU(cudaStream_t st, const float* gate, const float* up,
                  int64_t n, float* out) {
  if (n <= 0) return;
  SwiGLUKernel<<<GridFor(n, kThreads), kThreads, 0, st>>>(gate, up, n, out);
  DLLM_CUDA_LAUNCHED("swiglu launch");
}

void LaunchAdd(cudaStream_t st, float* y, const float* x, int64_t n) {
  if (n <= 0) return;
  AddKernel<<<GridFor(n, kThreads), kThreads, 0, st>>>(y, x, n);
  DLLM_CUDA_LAUNCHED("add launch");
}

void LaunchEmbed(cudaStream_t st, const Matrix& table, const int32_t* ids,
                 int64_t n, float* x) {
  if (n <= 0) return;
  EmbedKernel<<<unsigned(n), RowThreads(table.cols), 0, st>>>(
      table.dtype, static_cast<const uint8_t*>(table.data),
      DTypeBytes(table.dtype, table.cols), table.cols, ids, x);
  DLLM_CUDA_LAUNCHED("embed launch");
}

void LaunchGatherRows(cudaStream_t st, const float* x, int64_t width,
                      const int32_t* rows, int64_t n, float* out) {
  if (n <= 0 || width <= 0) return;
  GatherRowsKernel<<<unsigned(n), RowThreads(width), 0, st>>>(x, width, rows,
                                                              out);
  DLLM_CUDA_LAUNCHED("gather launch");
}

void LaunchFillColumns(cudaStream_t st, float* x, int64_t n, int64_t width,
                       const int32_t* cols, int64_t n_cols, float value) {
  if (n <= 0 || n_cols <= 0) return;
  FillColumnsKernel<<<unsigned(n), RowThreads(n_cols), 0, st>>>(x, width, cols,
                                                                n_cols, value);
  DLLM_CUDA_LAUNCHED("fill columns launch");
}

void LaunchCast(cudaStream_t st, const float* x, int64_t n, DType t,
                void* out) {
  if (n <= 0) return;
  if (t == DType::kBF16)
    CastBf16Kernel<<<GridFor(n, kThreads), kThreads, 0, st>>>(
        x, n, static_cast<__nv_bfloat16*>(out));
  else
    CastF16Kernel<<<GridFor(n, kThreads), kThreads, 0, st>>>(
        x, n, static_cast<__half*>(out));
  DLLM_CUDA_LAUNCHED("cast launch");
}

void LaunchAddBias(cudaStream_t st, float* y, const float* bias, int64_t M,
                   int64_t N) {
  if (M * N <= 0) return;
  AddBiasKernel<<<GridFor(M * N, kThreads), kThreads, 0, st>>>(y, bias, M, N);
  DLLM_CUDA_LAUNCHED("bias launch");
}

}  // namespace dllm::ops::cuda

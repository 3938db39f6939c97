// The sampling reductions of ComputeRowStats (ops.h) on the GPU: one block
// per row of logits, two passes over the row (the second from L2).
//   pass 1: max and the first index holding it;
//   pass 2: how many entries equal the max, the largest entry below it, and
//           z = sum e^(x - max), zl = sum e^(x - max) (x - max).
// "second" is what ops/cpu and ops/ref give: the max again when the max
// occurs twice or more (ties counts them), else the largest value below it
// (-inf for a row of one). -inf entries (banned tokens) add nothing to z and zl
// (the CPU clamps x - max at -104, whose exp is below fp32's smallest value, so
// the same).
#include <cmath>

#include "ops/cuda/cuda_common.cuh"

namespace dllm::ops::cuda {
namespace {

constexpr int kThreads = 1024;

__device__ __forceinline__ double WarpSumD(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__global__ void __launch_bounds__(kThreads)
    RowStatsKernel(const float* __restrict__ logits, int64_t V,
                   RowStats* __restrict__ out) {
  __shared__ float s_val[32];
  __shared__ int64_t s_idx[32];
  __shared__ double s_z[32], s_zl[32];
  __shared__ float s_second[32];
  __shared__ int s_ties[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int n_warps = blockDim.x >> 5;
  const float* x = logits + int64_t(blockIdx.x) * V;

  // Pass 1: (max, first index). Each thread walks its indices in increasing
  // order, so a strict > keeps its first; merges prefer the lower index.
  float mv = -INFINITY;
  int64_t mi = V;  // "none yet": larger than any index
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
    const float v = x[i];
    if (v > mv || (mi == V && v == -INFINITY)) mv = v, mi = i;
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, mv, o);
    const int64_t oi = __shfl_xor_sync(0xffffffffu, mi, o);
    if (ov > mv || (ov == mv && oi < mi)) mv = ov, mi = oi;
  }
  if (lane == 0) s_val[warp] = mv, s_idx[warp] = mi;
  __syncthreads();
  if (warp == 0) {
    mv = lane < n_warps ? s_val[lane] : -INFINITY;
    mi = lane < n_warps ? s_idx[lane] : V;
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, mv, o);
      const int64_t oi = __shfl_xor_sync(0xffffffffu, mi, o);
      if (ov > mv || (ov == mv && oi < mi)) mv = ov, mi = oi;
    }
    if (lane == 0) s_val[0] = mv, s_idx[0] = mi;
  }
  __syncthreads();
  const float mx = s_val[0];
  const int64_t am = s_idx[0] < V ? s_idx[0] : 0;

  // Pass 2.
  int ties = 0;
  float below = -INFINITY;
  double z = 0, zl = 0;
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
    const float v = x[i];
    if (v == mx)
      ++ties;
    else
      below = fmaxf(below, v);
    if (v == -INFINITY) continue;
    const float d = fmaxf(v - mx, -104.0f);
    const float e = expf(d);
    z += e;
    zl += double(e) * d;
  }
  below = WarpMax(below);
  z = WarpSumD(z);
  zl = WarpSumD(zl);
#pragma unroll
  for (int o = 16; o > 0; o >>= 1)
    ties += __shfl_xor_sync(0xffffffffu, ties, o);
  if (lane == 0)
    s_second[warp] = below, s_ties[warp] = ties, s_z[warp] = z, s_zl[warp] = zl;
  __syncthreads();
  if (warp == 0) {
    below = lane < n_warps ? s_second[lane] : -INFINITY;
    ties = lane < n_warps ? s_ties[lane] : 0;
    z = lane < n_warps ? s_z[lane] : 0.0;
    zl = lane < n_warps ? s_zl[lane] : 0.0;
    below = WarpMax(below);
    z = WarpSumD(z);
    zl = WarpSumD(zl);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
      ties += __shfl_xor_sync(0xffffffffu, ties, o);
    if (lane == 0) {
      RowStats s;
      s.argmax = int32_t(am);
      s.max = mx;
      s.second = ties >= 2 ? mx : below;
      s.log_norm = float(double(mx) + log(z));
      s.entropy = float(log(z) - zl / z);
      s.ties = int32_t(ties);
      out[blockIdx.x] = s;
    }
  }
}

}  // namespace

void LaunchRowStats(cudaStream_t st, const float* logits, int64_t n, int64_t V,
                    RowStats* out) {
  if (n <= 0) return;
  const int threads = V >= 4096 ? kThreads : V >= 256 ? 256 : 32;
  RowStatsKernel<<<unsigned(n), threads, 0, st>>>(logits, V, out);
  DLLM_CUDA_LAUNCHED("row stats launch");
}

}  // namespace dllm::ops::cuda

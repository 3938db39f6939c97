// Matmuls of the CUDA backend: y (M, N) = x (M, K) w^T (+ bias), x and y
// fp32 row-major, w (N, K) row-major in its stored dtype.
//
// Three paths:
//  - cuBLASLt for F32 (fp32 compute, no TF32) and BF16/F16 weights (x cast
//    to the weight type in a scratch buffer, fp32 accumulation and output),
//    used for M > 8 (prefill, blocks of a diffusion step);
//  - MatVecKernel, our own, for block-quantized weights (Q8_0, Q4_0) at any
//    M and for float weights at M <= 8 (decoding): each weight value is read
//    from memory once per group of up to 8 rows of x and used against all of
//    them, dequantized in registers, fp32 accumulation, x kept in fp32;
//  - ScalarMatMulKernel, a plain warp-per-output loop for what neither
//    takes (K not a multiple of 4 when cuBLASLt has no algorithm).
// DLLM_CUDA_GEMM=lt or =kernel forces the first or the other two (tests
// check every path against the CPU).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <tuple>

#include "ops/cuda/cuda_common.cuh"

namespace dllm::ops::cuda {
namespace {

// ---------------------------------------------------------------------------
// MatVecKernel. A block of 4 warps owns 8 consecutive output features (2 per
// warp) and loops over the rows of x in groups of ROWS. For each group it
// walks K in tiles of 256: the block stages x (ROWS, 256) in shared memory,
// then each lane takes 4 consecutive weight values at tile offsets lane*4
// and 128 + lane*4 (so a warp reads 256 contiguous values of a weight row,
// and the float4 reads of the staged x are free of bank conflicts), and
// accumulates them against the ROWS staged rows. The warp's partial sums are
// reduced with shuffles at the end. Weights of one block's 8 features are
// re-read for every group of rows, from L2 (they are 8 * K values).

constexpr int kTileK = 256;
constexpr int kMvWarps = 4;
constexpr int kMvFeatPerWarp = 2;
constexpr int kMvFeatPerBlock = kMvWarps * kMvFeatPerWarp;

// Four consecutive values v .. v+3 (v a multiple of 4) of a stored row.
template <DType T>
__device__ __forceinline__ void Load4(const uint8_t* row, int64_t v,
                                      float out[4]) {
  if constexpr (T == DType::kF32) {
    const float4 f = *reinterpret_cast<const float4*>(row + v * 4);
    out[0] = f.x, out[1] = f.y, out[2] = f.z, out[3] = f.w;
  } else if constexpr (T == DType::kBF16 || T == DType::kF16) {
    const uint2 u = *reinterpret_cast<const uint2*>(row + v * 2);
    if constexpr (T == DType::kBF16) {  // bf16 = the top half of an fp32
      out[0] = __uint_as_float(u.x << 16),
      out[1] = __uint_as_float(u.x & 0xffff0000u);
      out[2] = __uint_as_float(u.y << 16),
      out[3] = __uint_as_float(u.y & 0xffff0000u);
    } else {
      out[0] = F16Bits(uint16_t(u.x)), out[1] = F16Bits(uint16_t(u.x >> 16));
      out[2] = F16Bits(uint16_t(u.y)), out[3] = F16Bits(uint16_t(u.y >> 16));
    }
  } else if constexpr (T == DType::kQ8_0) {
    // Block of 34 bytes: f16 d, int8 q[32]; only 2-byte alignment holds.
    const uint8_t* b = row + (v / 32) * 34;
    const float d = F16Bits(*reinterpret_cast<const uint16_t*>(b));
    const uint16_t* q = reinterpret_cast<const uint16_t*>(b + 2 + v % 32);
    const uint16_t lo = q[0], hi = q[1];
    out[0] = d * float(int8_t(lo & 0xff));
    out[1] = d * float(int8_t(lo >> 8));
    out[2] = d * float(int8_t(hi & 0xff));
    out[3] = d * float(int8_t(hi >> 8));
  } else {  // kQ4_0: f16 d, 16 bytes; value j < 16 low nibble of q[j],
            // j + 16 its high nibble.
    const uint8_t* b = row + (v / 32) * 18;
    const float d = F16Bits(*reinterpret_cast<const uint16_t*>(b));
    const int j = int(v % 32);
    const uint16_t* q = reinterpret_cast<const uint16_t*>(b + 2 + (j & 15));
    const uint32_t bytes = uint32_t(q[0]) | (uint32_t(q[1]) << 16);
    const int shift = j < 16 ? 0 : 4;
#pragma unroll
    for (int i = 0; i < 4; ++i)
      out[i] = float(int((bytes >> (8 * i + shift)) & 0xf) - 8) * d;
  }
}

template <DType T, int ROWS>
__global__ void __launch_bounds__(kMvWarps * 32)
    MatVecKernel(const float* __restrict__ x, int64_t M,
                 const uint8_t* __restrict__ w, size_t row_bytes, int64_t N,
                 int64_t K, const float* __restrict__ bias,
                 float* __restrict__ y) {
  __shared__ __align__(16) float xs[ROWS][kTileK];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t n0 = int64_t(blockIdx.x) * kMvFeatPerBlock +
                     warp * kMvFeatPerWarp;  // this warp's first feature
  for (int64_t m0 = 0; m0 < M; m0 += ROWS) {
    float acc[kMvFeatPerWarp][ROWS];
#pragma unroll
    for (int f = 0; f < kMvFeatPerWarp; ++f)
#pragma unroll
      for (int r = 0; r < ROWS; ++r) acc[f][r] = 0.0f;
    for (int64_t k0 = 0; k0 < K; k0 += kTileK) {
      __syncthreads();  // the previous tile has been used
      for (int i = threadIdx.x; i < ROWS * kTileK; i += blockDim.x) {
        const int r = i / kTileK, c = i % kTileK;
        xs[r][c] = (m0 + r < M && k0 + c < K) ? x[(m0 + r) * K + k0 + c] : 0.0f;
      }
      __syncthreads();
#pragma unroll
      for (int f = 0; f < kMvFeatPerWarp; ++f) {
        const int64_t n = n0 + f;
        if (n >= N) break;  // the same for the whole warp
        const uint8_t* wr = w + size_t(n) * row_bytes;
#pragma unroll
        for (int part = 0; part < 2; ++part) {
          const int c = part * 128 + lane * 4;
          if (k0 + c >= K) continue;  // K % 4 == 0: all 4 values or none
          float wv[4];
          Load4<T>(wr, k0 + c, wv);
#pragma unroll
          for (int r = 0; r < ROWS; ++r) {
            const float4 xv = *reinterpret_cast<const float4*>(&xs[r][c]);
            acc[f][r] +=
                wv[0] * xv.x + wv[1] * xv.y + wv[2] * xv.z + wv[3] * xv.w;
          }
        }
      }
    }
#pragma unroll
    for (int f = 0; f < kMvFeatPerWarp; ++f) {
      const int64_t n = n0 + f;
#pragma unroll
      for (int r = 0; r < ROWS; ++r) {
        const float s = WarpSum(acc[f][r]);
        if (lane == 0 && n < N && m0 + r < M)
          y[(m0 + r) * N + n] = s + (bias ? bias[n] : 0.0f);
      }
    }
  }
}

template <DType T>
void LaunchMatVecRows(cudaStream_t st, const float* x, int64_t M,
                      const Matrix& w, size_t row_bytes, float* y,
                      const float* bias) {
  const int64_t N = w.rows, K = w.cols;
  const unsigned blocks = unsigned((N + kMvFeatPerBlock - 1) / kMvFeatPerBlock);
  const uint8_t* wd = static_cast<const uint8_t*>(w.data);
  const dim3 grid(blocks), block(kMvWarps * 32);
  if (M == 1)
    MatVecKernel<T, 1>
        <<<grid, block, 0, st>>>(x, M, wd, row_bytes, N, K, bias, y);
  else if (M == 2)
    MatVecKernel<T, 2>
        <<<grid, block, 0, st>>>(x, M, wd, row_bytes, N, K, bias, y);
  else if (M <= 4)
    MatVecKernel<T, 4>
        <<<grid, block, 0, st>>>(x, M, wd, row_bytes, N, K, bias, y);
  else
    MatVecKernel<T, 8>
        <<<grid, block, 0, st>>>(x, M, wd, row_bytes, N, K, bias, y);
  DLLM_CUDA_LAUNCHED("matvec kernel launch");
}

void LaunchMatVec(cudaStream_t st, const float* x, int64_t M, const Matrix& w,
                  float* y, const float* bias) {
  const size_t row_bytes = DTypeBytes(w.dtype, w.cols);
  switch (w.dtype) {
    case DType::kF32:
      return LaunchMatVecRows<DType::kF32>(st, x, M, w, row_bytes, y, bias);
    case DType::kBF16:
      return LaunchMatVecRows<DType::kBF16>(st, x, M, w, row_bytes, y, bias);
    case DType::kF16:
      return LaunchMatVecRows<DType::kF16>(st, x, M, w, row_bytes, y, bias);
    case DType::kQ8_0:
      return LaunchMatVecRows<DType::kQ8_0>(st, x, M, w, row_bytes, y, bias);
    case DType::kQ4_0:
      return LaunchMatVecRows<DType::kQ4_0>(st, x, M, w, row_bytes, y, bias);
    default:
      Fail("cuda: matmul: no kernel for weights of dtype ",
           CudaDTypeName(w.dtype));
  }
}

// ---------------------------------------------------------------------------
// ScalarMatMulKernel: a warp per (output feature, group of 8 rows); lanes
// stride over K. Any K, any alignment; only for float weights.
constexpr int kScalarRows = 8;

__global__ void ScalarMatMulKernel(const float* __restrict__ x, int64_t M,
                                   DType t, const uint8_t* __restrict__ w,
                                   size_t row_bytes, int64_t N, int64_t K,
                                   const float* __restrict__ bias,
                                   float* __restrict__ y) {
  const int lane = threadIdx.x & 31;
  const int64_t n = int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int64_t m0 = int64_t(blockIdx.y) * kScalarRows;
  if (n >= N) return;
  const uint8_t* wr = w + size_t(n) * row_bytes;
  float acc[kScalarRows] = {};
  for (int64_t k = lane; k < K; k += 32) {
    const float wv = LoadStored(t, wr, k);
#pragma unroll
    for (int r = 0; r < kScalarRows; ++r)
      if (m0 + r < M) acc[r] += wv * x[(m0 + r) * K + k];
  }
#pragma unroll
  for (int r = 0; r < kScalarRows; ++r) {
    const float s = WarpSum(acc[r]);
    if (lane == 0 && m0 + r < M)
      y[(m0 + r) * N + n] = s + (bias ? bias[n] : 0.0f);
  }
}

unsigned Alignment(const void* p) {
  const uintptr_t u = reinterpret_cast<uintptr_t>(p);
  unsigned a = 256;
  while (a > 1 && u % a != 0) a >>= 1;
  return a;
}

cudaDataType_t CudaType(DType t) {
  return t == DType::kBF16  ? CUDA_R_16BF
         : t == DType::kF16 ? CUDA_R_16F
                            : CUDA_R_32F;
}

}  // namespace

// ---------------------------------------------------------------------------
// cuBLASLt plans, one per (dtype, M, N, K, pointer alignments), made once.
//
// Layouts. cuBLASLt is column-major: a row-major (R, C) array with leading
// dimension C is the column-major (C, R) array, i.e. its transpose. So the
// row-major y (M, N) = x (M, K) w^T (w row-major (N, K)) is, read as
// column-major, y^T (N, M) = w (N, K) x^T (K, M), where
//  - A = w's bytes read column-major are (K, N) with ld K, i.e. w^T, so
//    op(A) = transpose (TRANSA = T) gives w (N, K): m = N, k = K;
//  - B = x's bytes read column-major are (K, M) with ld K = x^T, used as is
//    (TRANSB = N): n = M;
//  - C = D = y's bytes column-major (N, M) with ld N.
// This "TN" form (both operands K-contiguous) is the one tensor cores like.
struct Gemm::Plan {
  bool ok = false;
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

struct Gemm::Plans {
  std::map<
      std::tuple<int, int64_t, int64_t, int64_t, unsigned, unsigned, unsigned>,
      Plan>
      map;
};

Gemm::Gemm(cudaStream_t stream, const char* mode) : stream_(stream) {
  if (mode && std::strcmp(mode, "lt") == 0) mode_ = 1;
  if (mode && std::strcmp(mode, "kernel") == 0) mode_ = 2;
  plans_ = new Plans;
  DLLM_CUBLAS_CHECK(cublasLtCreate(&lt_), "creating a handle");
  workspace_bytes_ = size_t(32) << 20;  // NVIDIA's suggestion for Hopper
  DLLM_CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_),
                  "allocating the cuBLASLt workspace");
}

Gemm::~Gemm() {
  for (auto& [key, p] : plans_->map) {
    if (p.a) cublasLtMatrixLayoutDestroy(p.a);
    if (p.b) cublasLtMatrixLayoutDestroy(p.b);
    if (p.c) cublasLtMatrixLayoutDestroy(p.c);
    if (p.desc) cublasLtMatmulDescDestroy(p.desc);
  }
  delete plans_;
  if (workspace_) cudaFree(workspace_);
  if (lt_) cublasLtDestroy(lt_);
}

const Gemm::Plan& Gemm::GetPlan(DType t, int64_t M, int64_t N, int64_t K,
                                unsigned al_a, unsigned al_b, unsigned al_c) {
  const auto key = std::make_tuple(int(t), M, N, K, al_a, al_b, al_c);
  auto it = plans_->map.find(key);
  if (it != plans_->map.end()) return it->second;
  Plan& p = plans_->map[key];
  const cudaDataType_t ab = CudaType(t);
  DLLM_CUBLAS_CHECK(
      cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F),
      "creating a matmul descriptor");
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  DLLM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
                        p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)),
                    "setting TRANSA");
  DLLM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(
                        p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)),
                    "setting TRANSB");
  DLLM_CUBLAS_CHECK(
      cublasLtMatrixLayoutCreate(&p.a, ab, uint64_t(K), uint64_t(N), K),
      "creating layout A");
  DLLM_CUBLAS_CHECK(
      cublasLtMatrixLayoutCreate(&p.b, ab, uint64_t(K), uint64_t(M), K),
      "creating layout B");
  DLLM_CUBLAS_CHECK(
      cublasLtMatrixLayoutCreate(&p.c, CUDA_R_32F, uint64_t(N), uint64_t(M), N),
      "creating layout C");
  cublasLtMatmulPreference_t pref;
  DLLM_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref),
                    "creating a preference");
  const uint64_t ws = workspace_bytes_;
  DLLM_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(
          pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)),
      "setting the workspace size");
  // Alignments of the actual pointers (cuBLASLt assumes 256 otherwise).
  const uint32_t aa = al_a, ab_ = al_b, ac = al_c;
  DLLM_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(
          pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &aa, sizeof(aa)),
      "setting the alignment of A");
  DLLM_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(
          pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &ab_, sizeof(ab_)),
      "setting the alignment of B");
  DLLM_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(
          pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &ac, sizeof(ac)),
      "setting the alignment of C");
  DLLM_CUBLAS_CHECK(
      cublasLtMatmulPreferenceSetAttribute(
          pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ac, sizeof(ac)),
      "setting the alignment of D");
  cublasLtMatmulHeuristicResult_t res{};
  int found = 0;
  const cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(
      lt_, p.desc, p.a, p.b, p.c, p.c, pref, 1, &res, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  p.ok = s == CUBLAS_STATUS_SUCCESS && found > 0;
  if (p.ok) p.algo = res.algo;
  // NOT_SUPPORTED (no algorithm for these sizes/alignments) is the expected
  // way to fall back to our kernels; anything else means a bad descriptor
  // and would otherwise only show as a slow matmul.
  if (s != CUBLAS_STATUS_SUCCESS && s != CUBLAS_STATUS_NOT_SUPPORTED)
    std::fprintf(stderr,
                 "dllm cuda: cuBLASLt heuristic failed (status %d) for %s "
                 "M=%lld N=%lld K=%lld; using the fallback kernels\n",
                 int(s), CudaDTypeName(t), (long long)M, (long long)N,
                 (long long)K);
  return p;
}

void Gemm::MatMulWT(const float* x, int64_t M, const Matrix& w, float* y,
                    const float* bias) {
  const int64_t N = w.rows, K = w.cols;
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {  // an empty sum: y = bias or 0
    DLLM_CUDA_CHECK(
        cudaMemsetAsync(y, 0, size_t(M) * size_t(N) * sizeof(float), stream_),
        "matmul: clearing y");
    if (bias) LaunchAddBias(stream_, y, bias, M, N);
    return;
  }
  if (IsQuantized(w.dtype)) {
    DLLM_CHECK(
        w.dtype == DType::kQ8_0 || w.dtype == DType::kQ4_0,
        "cuda: matmul: no kernel for ", CudaDTypeName(w.dtype),
        " weights (convert the model: dllm convert --outtype bf16|q8_0)");
    DLLM_CHECK(K % 32 == 0, "cuda: matmul: ", CudaDTypeName(w.dtype),
               " weights with ", K, " columns, not whole blocks of 32");
    return LaunchMatVec(stream_, x, M, w, y, bias);
  }
  DLLM_CHECK(w.dtype == DType::kF32 || w.dtype == DType::kBF16 ||
                 w.dtype == DType::kF16,
             "cuda: matmul: no kernel for weights of dtype ",
             CudaDTypeName(w.dtype));
  // The own kernel's vector loads need K % 4 == 0 and an aligned w.
  const bool matvec_ok = K % 4 == 0 && Alignment(w.data) >= 16;
  const bool want_lt = mode_ == 1 || (mode_ == 0 && !(M <= 8 && matvec_ok));
  if (want_lt) {
    const void* b = x;
    if (w.dtype != DType::kF32) {  // x rounded to the weights' type
      void* xs = cast_.Get(size_t(M) * size_t(K) * 2, stream_);
      LaunchCast(stream_, x, M * K, w.dtype, xs);
      b = xs;
    }
    const Plan& p = GetPlan(w.dtype, M, N, K, Alignment(w.data), Alignment(b),
                            Alignment(y));
    if (p.ok) {
      const float alpha = 1.0f, beta = 0.0f;
      DLLM_CUBLAS_CHECK(cublasLtMatmul(lt_, p.desc, &alpha, w.data, p.a, b, p.b,
                                       &beta, y, p.c, y, p.c, &p.algo,
                                       workspace_, workspace_bytes_, stream_),
                        "matmul");
      if (bias) LaunchAddBias(stream_, y, bias, M, N);
      return;
    }
  }
  if (matvec_ok) return LaunchMatVec(stream_, x, M, w, y, bias);
  const int warps = 8;
  const dim3 grid(unsigned((N + warps - 1) / warps),
                  unsigned((M + kScalarRows - 1) / kScalarRows));
  DLLM_CHECK(grid.y <= 65535, "cuda: matmul: M = ", M, " too large");
  ScalarMatMulKernel<<<grid, warps * 32, 0, stream_>>>(
      x, M, w.dtype, static_cast<const uint8_t*>(w.data),
      DTypeBytes(w.dtype, K), N, K, bias, y);
  DLLM_CUDA_LAUNCHED("scalar matmul launch");
}

}  // namespace dllm::ops::cuda

// The CPU backend of ops/ops.h: matmuls through single-threaded OpenBLAS
// sgemm calls, one per thread of our pool (so BLAS threads never nest with
// ours), and Highway row kernels (simd.cc) for everything else.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/thread_pool.h"
#include "dllm/error.h"
#include "ops/cpu/matmul.h"
#include "ops/cpu/simd.h"
#include "ops/cpu/weight_slices.h"
#include "ops/ops.h"
#include "ops/quant.h"

namespace dllm::ops {

namespace {

// OpenBLAS must not start its own threads: every call below already runs on
// one of the pool's threads.
struct BlasSingleThreaded {
  BlasSingleThreaded() { openblas_set_num_threads(1); }
};
void EnsureBlasSingleThreaded() { static BlasSingleThreaded once; }

// Per-thread scratch that only grows.
float* Scratch(std::vector<float>& buf, size_t n) {
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// Work below this many elements runs on the calling thread.
constexpr int64_t kSerialElems = 1 << 14;

// Scores (qn, kn) of the queries at key indices p0, p0 + 1, ... against keys
// k0..k0+kn-1 become attention probabilities: keys hidden by key_mask or
// not visible to the query (causal, block-causal, bd_half) excluded, softmax
// of scale * score; a query with no visible key gets a row of zeros.
void MaskedSoftmaxRows(float* S, int64_t qn, int64_t k0, int64_t kn, int64_t p0,
                       const uint8_t* km, const AttentionShape& s,
                       float scale) {
  for (int64_t r = 0; r < qn; ++r) {
    float* row = S + r * kn;
    if (km)
      for (int64_t j = 0; j < kn; ++j)
        if (!km[k0 + j]) row[j] = -INFINITY;
    if (s.bd_half > 0) {  // not a prefix: the full rule per key
      for (int64_t j = 0; j < kn; ++j)
        if (!s.Visible(p0 + r, k0 + j)) row[j] = -INFINITY;
    } else {
      for (int64_t j = std::max<int64_t>(s.VisibleEnd(p0 + r) - k0, 0); j < kn;
           ++j)
        row[j] = -INFINITY;
    }
    if (cpu::ScaledSoftmax(row, kn, scale) == -INFINITY)
      std::fill_n(row, kn, 0.0f);
  }
}

// The keys [*k0, *k1) that some query at key index p0..p0+qn-1 may see.
void KeyWindow(const AttentionShape& s, int64_t p0, int64_t qn, int64_t* k0,
               int64_t* k1) {
  *k0 = s.VisibleBegin(p0);  // non-decreasing in p
  *k1 = 0;
  // The end is not monotone for bd_half (the last noisy block sees further
  // than the first clean one), so take the largest.
  for (int64_t r = 0; r < qn; ++r) *k1 = std::max(*k1, s.VisibleEnd(p0 + r));
}

void CheckBdShape(const AttentionShape& s) {
  if (s.bd_half <= 0) return;
  DLLM_CHECK(s.block > 0 && !s.causal && s.T == 2 * s.bd_half &&
                 s.keys() == s.T && s.q_offset == 0,
             "attention: the bd_half mask needs T = keys = 2 * bd_half, a "
             "block size, no causal flag and no query offset");
}

}  // namespace

void ToF32(DType dtype, const void* src, int64_t n, float* dst) {
  if (IsQuantized(dtype)) {  // block formats: ops/quant.h
    CheckWholeBlocks(dtype, n, "ToF32");
    return DequantizeRow(dtype, src, n, dst);
  }
  switch (dtype) {
    case DType::kF32:
      std::copy_n(static_cast<const float*>(src), n, dst);
      return;
    case DType::kBF16:
      cpu::Bf16ToF32(static_cast<const uint16_t*>(src), n, dst);
      return;
    case DType::kF16:
      cpu::F16ToF32(static_cast<const uint16_t*>(src), n, dst);
      return;
    default:
      Fail("ToF32: unsupported dtype ", DTypeName(dtype));
  }
}

namespace {

// Which float matmul runs: ours (matmul.h) below kBlasMinRows rows of x,
// OpenBLAS sgemm (weights widened to fp32 panels first) from there on, where
// its packed kernels measured 10-25% faster than ours on 512-row prefills
// and training batches. DLLM_MATMUL=own or =blas forces one path for every
// shape (side-by-side benchmarks).
constexpr int64_t kBlasMinRows = 256;

bool UseBlasMatMul(int64_t M) {
  static const int forced = [] {
    const char* e = std::getenv("DLLM_MATMUL");
    if (e && std::string(e) == "blas") return 1;
    if (e && std::string(e) == "own") return 2;
    return 0;
  }();
  return forced == 1 || (forced == 0 && M >= kBlasMinRows);
}

void MatMulWTBlas(const float* x, int64_t M, const Matrix& w, float* y,
                  const float* bias) {
  EnsureBlasSingleThreaded();
  const int64_t N = w.rows, K = w.cols;
  // Split the output features into one contiguous slice per thread (aligned
  // to 16 rows); each slice is one sgemm (or a few, for converted panels).
  const int64_t nt = Pool().size();
  const int64_t chunks =
      std::max<int64_t>(1, std::min<int64_t>(nt, (N + 15) / 16));
  const int64_t per = ((N + chunks - 1) / chunks + 15) / 16 * 16;
  const size_t esize = DTypeSize(w.dtype);
  // Panel of converted rows: about 512 KB, so it stays in L2.
  const int64_t panel = std::clamp<int64_t>(
      (131072 / std::max<int64_t>(K, 1)) / 16 * 16, 16, 1024);
  Pool().Run(size_t(chunks), [&](size_t c, int) {
    const int64_t n0 = int64_t(c) * per, n1 = std::min(N, n0 + per);
    if (n0 >= n1) return;
    if (w.dtype == DType::kF32) {
      const float* W = static_cast<const float*>(w.data) + n0 * K;
      if (M == 1) {
        cblas_sgemv(CblasRowMajor, CblasNoTrans, int(n1 - n0), int(K), 1.0f, W,
                    int(K), x, 1, 0.0f, y + n0, 1);
      } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(M),
                    int(n1 - n0), int(K), 1.0f, x, int(K), W, int(K), 0.0f,
                    y + n0, int(N));
      }
    } else {
      thread_local std::vector<float> buf;
      float* tmp = Scratch(buf, size_t(panel * K));
      for (int64_t p0 = n0; p0 < n1; p0 += panel) {
        const int64_t pn = std::min(panel, n1 - p0);
        ToF32(w.dtype,
              static_cast<const uint8_t*>(w.data) + size_t(p0 * K) * esize,
              pn * K, tmp);
        if (M == 1) {
          cblas_sgemv(CblasRowMajor, CblasNoTrans, int(pn), int(K), 1.0f, tmp,
                      int(K), x, 1, 0.0f, y + p0, 1);
        } else {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(M), int(pn),
                      int(K), 1.0f, x, int(K), tmp, int(K), 0.0f, y + p0,
                      int(N));
        }
      }
    }
    if (bias)
      for (int64_t m = 0; m < M; ++m)
        cpu::Add(y + m * N + n0, bias + n0, n1 - n0);
  });
}

}  // namespace

namespace {

// Slices of w's rows: contiguous, in whole 6-row tiles, at least 48 rows
// (the slices of small matrices stay tile-aligned), and several per thread:
// threads take them as they finish, so one slowed down (a VM's vCPU taken
// away, a busier memory channel) does not keep the other waiting. With one
// slice each, a decoding step spent 12% of its time waiting.
struct Slicing {
  int64_t chunks, per;
};
Slicing SliceRows(int64_t N) {
  const int64_t nt = Pool().size();
  const int64_t want = nt == 1 ? 1 : 4 * nt;
  const int64_t chunks =
      std::max<int64_t>(1, std::min<int64_t>(want, (N + 47) / 48));
  return {chunks, ((N + chunks - 1) / chunks + 5) / 6 * 6};
}

// Whether our float GEMM (x packed as x^T, matmul.h) runs this product.
bool UsesPackedGemm(int64_t M, const Matrix& w) {
  return !IsQuantized(w.dtype) && !UseBlasMatMul(M) && M > cpu::kGemvMaxRows;
}

void CheckFloatWeights(const Matrix& w) {
  DLLM_CHECK(w.dtype == DType::kF32 || w.dtype == DType::kF16 ||
                 w.dtype == DType::kBF16,
             "matmul: unsupported weight dtype ", DTypeName(w.dtype));
}

// x^T, packed once on the calling thread's buffer and shared by all.
const float* PackX(const float* x, int64_t M, int64_t K) {
  const int64_t Mp = cpu::GemmPaddedRows(M);
  thread_local std::vector<float> xt_buf;
  // 64-byte aligned, so that a panel's row of 16 floats is one cache line.
  float* buf = Scratch(xt_buf, size_t(Mp * K + 16));
  float* xT = buf + (16 - reinterpret_cast<uintptr_t>(buf) / 4 % 16) % 16;
  if (M * K < kSerialElems) {
    cpu::PackTransposed(x, M, K, 0, K, Mp, xT);
  } else {
    const int64_t nt = Pool().size(), kper = (K + nt - 1) / nt;
    Pool().Run(size_t(nt), [&](size_t c, int) {
      const int64_t k0 = int64_t(c) * kper, k1 = std::min(K, k0 + kper);
      if (k0 < k1) cpu::PackTransposed(x, M, K, k0, k1, Mp, xT);
    });
  }
  return xT;
}

}  // namespace

void MatMulWT(const float* x, int64_t M, const Matrix& w, float* y,
              const float* bias) {
  // Block formats: integer kernels of their own (ops/cpu/quant_*.cc).
  if (IsQuantized(w.dtype)) return MatMulWTQuantized(x, M, w, y, bias);
  const int64_t N = w.rows, K = w.cols;
  if (M == 0 || N == 0) return;
  CheckFloatWeights(w);
  if (UseBlasMatMul(M)) return MatMulWTBlas(x, M, w, y, bias);
  const Slicing sl = SliceRows(N);
  if (M <= cpu::kGemvMaxRows) {
    Pool().Run(size_t(sl.chunks), [&](size_t c, int) {
      const int64_t n0 = int64_t(c) * sl.per, n1 = std::min(N, n0 + sl.per);
      if (n0 < n1) cpu::GemvSlice(x, M, K, w.dtype, w.data, n0, n1, y, N, bias);
    });
    return;
  }
  MatMulOut out{&w, y, bias};
  MatMulWTGroup(x, M, &out, 1);
}

void MatMulWTGroup(const float* x, int64_t M, const MatMulOut* outs, int n) {
  if (M == 0 || n == 0) return;
  bool packed = true, same_blocks = IsQuantized(outs[0].w->dtype);
  for (int i = 0; i < n; ++i) {
    DLLM_CHECK(outs[i].w->cols == outs[0].w->cols,
               "matmul group: weights of different widths");
    packed = packed && UsesPackedGemm(M, *outs[i].w);
    same_blocks = same_blocks && outs[i].w->dtype == outs[0].w->dtype;
  }
  if (same_blocks) return MatMulWTQuantizedGroup(x, M, outs, n);
  if (!packed) {
    for (int i = 0; i < n; ++i)
      MatMulWT(x, M, *outs[i].w, outs[i].y, outs[i].bias);
    return;
  }
  const int64_t K = outs[0].w->cols, Mp = cpu::GemmPaddedRows(M);
  for (int i = 0; i < n; ++i) CheckFloatWeights(*outs[i].w);
  const float* xT = PackX(x, M, K);
  // Every weight's slices in one pass.
  std::vector<WeightSlice>& tasks = CallerSliceList();
  for (int i = 0; i < n; ++i) {
    const int64_t N = outs[i].w->rows;
    const Slicing sl = SliceRows(N);
    for (int64_t c = 0; c < sl.chunks; ++c) {
      const int64_t n0 = c * sl.per, n1 = std::min(N, n0 + sl.per);
      if (n0 < n1) tasks.push_back({i, n0, n1});
    }
  }
  Pool().Run(tasks.size(), [&](size_t t, int) {
    const WeightSlice& k = tasks[t];
    const MatMulOut& o = outs[k.i];
    cpu::GemmSlice(xT, M, Mp, K, o.w->dtype, o.w->data, k.n0, k.n1, o.y,
                   o.w->rows, o.bias);
  });
}

void RmsNorm(const float* x, const float* weight, int64_t M, int64_t C,
             float eps, float* y) {
  auto rows = [&](size_t b, size_t e, int) {
    for (size_t m = b; m < e; ++m)
      cpu::RmsNormRow(x + m * C, weight, C, eps, y + m * C);
  };
  if (M * C < kSerialElems) return rows(0, size_t(M), 0);
  ParallelFor(size_t(M), std::max<size_t>(1, size_t(kSerialElems / C)), rows);
}

void Rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim,
          int64_t row_stride, const float* cos, const float* sin) {
  const int64_t half = head_dim / 2;
  auto rows = [&](size_t b, size_t e, int) {
    for (size_t t = b; t < e; ++t)
      for (int64_t h = 0; h < n_heads; ++h)
        cpu::RopeRow(x + t * row_stride + h * head_dim, half, cos + t * half,
                     sin + t * half);
  };
  if (T * n_heads * head_dim < kSerialElems) return rows(0, size_t(T), 0);
  ParallelFor(size_t(T), 8, rows);
}

void SwiGLU(const float* gate, const float* up, int64_t n, float* out) {
  if (n < kSerialElems) return cpu::SwiGLU(gate, up, n, out);
  ParallelFor(size_t(n), size_t(kSerialElems), [&](size_t b, size_t e, int) {
    cpu::SwiGLU(gate + b, up + b, int64_t(e - b), out + b);
  });
}

void AddInPlace(float* y, const float* x, int64_t n) {
  if (n < kSerialElems) return cpu::Add(y, x, n);
  ParallelFor(size_t(n), size_t(kSerialElems), [&](size_t b, size_t e, int) {
    cpu::Add(y + b, x + b, int64_t(e - b));
  });
}

RowStats ComputeRowStats(const float* x, int64_t n) {
  RowStats s;
  float out[4];
  cpu::RowStats(x, n, &s.argmax, &s.ties, out);
  s.max = out[0], s.second = out[1], s.log_norm = out[2], s.entropy = out[3];
  return s;
}

float SoftmaxInPlace(float* x, int64_t n) {
  return cpu::ScaledSoftmax(x, n, 1.0f);
}

// Queries per block below which attention takes dot products, not BLAS.
constexpr int64_t kFewQueries = 4;

void Attention(const float* q, const float* k, const float* v,
               const AttentionShape& s, const uint8_t* key_mask, float* out) {
  EnsureBlasSingleThreaded();
  CheckBdShape(s);
  const int64_t T = s.T, Tk = s.keys(), hd = s.head_dim,
                group = s.n_heads / s.n_kv_heads;
  const int64_t qs = s.n_heads * hd, kvs = s.n_kv_heads * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  // Tasks: (sequence, head, block of queries). Scores for a block of QB
  // queries against all keys live in per-thread scratch: QB x Tk floats.
  constexpr int64_t QB = 64;
  const int64_t n_qb = (T + QB - 1) / QB;
  const size_t n_tasks = size_t(s.B * s.n_heads * n_qb);
  Pool().Run(n_tasks, [&](size_t task, int) {
    const int64_t qb = int64_t(task) % n_qb;
    const int64_t h = (int64_t(task) / n_qb) % s.n_heads;
    const int64_t b = int64_t(task) / (n_qb * s.n_heads);
    const int64_t kh = h / group;
    const int64_t i0 = qb * QB, qn = std::min(QB, T - i0);
    // Only the keys some query of the block may see take part.
    const int64_t p0 = s.q_offset + i0;
    int64_t k0, k1;
    KeyWindow(s, p0, qn, &k0, &k1);
    const int64_t kn = k1 - k0;
    thread_local std::vector<float> buf;
    float* S = Scratch(buf, size_t(QB * Tk));
    const float* Q = q + (b * T + i0) * qs + h * hd;
    const float* Kh = k + (b * Tk + k0) * kvs + kh * hd;
    const float* Vh = v + (b * Tk + k0) * kvs + kh * hd;
    float* O = out + (b * T + i0) * qs + h * hd;
    if (kn <= 0) {
      for (int64_t r = 0; r < qn; ++r) std::fill_n(O + r * qs, hd, 0.0f);
      return;
    }
    const uint8_t* km = key_mask ? key_mask + b * Tk : nullptr;
    // A few queries (decoding) take dot products: OpenBLAS packs both
    // operands of every call, 6.5% of a Q8_0 decoding run on a Zen 3 host.
    if (qn <= kFewQueries) {
      for (int64_t r = 0; r < qn; ++r)
        cpu::DotRows(Q + r * qs, Kh, kvs, kn, hd, S + r * kn);
      MaskedSoftmaxRows(S, qn, k0, kn, p0, km, s, scale);
      for (int64_t r = 0; r < qn; ++r)
        cpu::WeightedRowSum(S + r * kn, Vh, kvs, kn, hd, O + r * qs);
      return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(qn), int(kn),
                int(hd), 1.0f, Q, int(qs), Kh, int(kvs), 0.0f, S, int(kn));
    MaskedSoftmaxRows(S, qn, k0, kn, p0, km, s, scale);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(qn), int(hd),
                int(kn), 1.0f, S, int(kn), Vh, int(kvs), 0.0f, O, int(qs));
  });
}

// ---- Backward passes -------------------------------------------------------

void MatMulBackward(const float* x, int64_t M, const Matrix& w, const float* dy,
                    float* dx, float* dw, float* db) {
  EnsureBlasSingleThreaded();
  DLLM_CHECK(w.dtype == DType::kF32, "training needs F32 weights, got ",
             DTypeName(w.dtype));
  const int64_t N = w.rows, K = w.cols;
  if (M == 0) return;
  const float* W = static_cast<const float*>(w.data);
  const int64_t nt = Pool().size();
  // dw/db split over rows of w, dx over its columns: no two tasks write the
  // same memory.
  const int64_t nchunks =
      std::max<int64_t>(1, std::min<int64_t>(nt, (N + 15) / 16));
  const int64_t nper = ((N + nchunks - 1) / nchunks + 15) / 16 * 16;
  const int64_t kchunks =
      std::max<int64_t>(1, std::min<int64_t>(nt, (K + 15) / 16));
  const int64_t kper = ((K + kchunks - 1) / kchunks + 15) / 16 * 16;
  const bool do_w = dw || db;
  const size_t tasks = size_t((do_w ? nchunks : 0) + (dx ? kchunks : 0));
  Pool().Run(tasks, [&](size_t t, int) {
    int64_t c = int64_t(t);
    if (do_w && c < nchunks) {
      const int64_t n0 = c * nper, n1 = std::min(N, n0 + nper);
      if (n0 >= n1) return;
      if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(n1 - n0),
                    int(K), int(M), 1.0f, dy + n0, int(N), x, int(K), 1.0f,
                    dw + n0 * K, int(K));
      if (db)
        for (int64_t m = 0; m < M; ++m)
          cpu::Add(db + n0, dy + m * N + n0, n1 - n0);
      return;
    }
    if (do_w) c -= nchunks;
    const int64_t k0 = c * kper, k1 = std::min(K, k0 + kper);
    if (k0 >= k1) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(M), int(k1 - k0),
                int(N), 1.0f, dy, int(N), W + k0, int(K), 1.0f, dx + k0,
                int(K));
  });
}

void RmsNormBackward(const float* x, const float* weight, int64_t M, int64_t C,
                     float eps, const float* dy, float* dx, float* dweight) {
  const int nt = Pool().size();
  // Per-thread partial sums of dweight, added up at the end.
  std::vector<float> partial(size_t(nt) * size_t(C), 0.0f);
  ParallelFor(size_t(M), 4, [&](size_t b, size_t e, int thread) {
    float* pw = partial.data() + size_t(thread) * size_t(C);
    for (size_t m = b; m < e; ++m) {
      const float* xr = x + m * C;
      const float* g = dy + m * C;
      float ss = 0, dot = 0;
      for (int64_t c = 0; c < C; ++c)
        ss += xr[c] * xr[c], dot += g[c] * weight[c] * xr[c];
      const float r = 1.0f / std::sqrt(ss / float(C) + eps);
      const float k = r * r * r / float(C) * dot;
      for (int64_t c = 0; c < C; ++c) {
        pw[c] += g[c] * xr[c] * r;
        if (dx) dx[m * C + c] += r * g[c] * weight[c] - k * xr[c];
      }
    }
  });
  if (dweight)
    for (int t = 0; t < nt; ++t)
      cpu::Add(dweight, partial.data() + size_t(t) * size_t(C), C);
}

void AttentionBackward(const float* q, const float* k, const float* v,
                       const AttentionShape& s, const uint8_t* key_mask,
                       const float* dout, float* dq, float* dk, float* dv) {
  EnsureBlasSingleThreaded();
  DLLM_CHECK(s.keys() == s.T && s.q_offset == 0,
             "attention backward: queries must be the keys");
  CheckBdShape(s);
  const int64_t T = s.T, hd = s.head_dim, group = s.n_heads / s.n_kv_heads;
  const int64_t qs = s.n_heads * hd, kvs = s.n_kv_heads * hd;
  const float scale = 1.0f / std::sqrt(float(hd));
  constexpr int64_t QB = 64;
  // One task per (sequence, kv head): the query heads sharing a kv head add
  // into the same dk/dv, so they run in one task.
  Pool().Run(size_t(s.B * s.n_kv_heads), [&](size_t task, int) {
    const int64_t b = int64_t(task) / s.n_kv_heads,
                  kh = int64_t(task) % s.n_kv_heads;
    thread_local std::vector<float> pbuf, dpbuf;
    float* P = Scratch(pbuf, size_t(QB * T));
    float* dP = Scratch(dpbuf, size_t(QB * T));
    const float* Kh = k + b * T * kvs + kh * hd;
    const float* Vh = v + b * T * kvs + kh * hd;
    float* dKh = dk + b * T * kvs + kh * hd;
    float* dVh = dv + b * T * kvs + kh * hd;
    const uint8_t* km = key_mask ? key_mask + b * T : nullptr;
    for (int64_t h = kh * group; h < (kh + 1) * group; ++h)
      for (int64_t i0 = 0; i0 < T; i0 += QB) {
        const int64_t qn = std::min(QB, T - i0);
        int64_t k0, k1;
        KeyWindow(s, i0, qn, &k0, &k1);
        const int64_t kn = k1 - k0;
        if (kn <= 0) continue;  // no visible key: the output was zero
        const float* Q = q + (b * T + i0) * qs + h * hd;
        const float* dO = dout + (b * T + i0) * qs + h * hd;
        float* dQ = dq + (b * T + i0) * qs + h * hd;
        const float* Kw = Kh + k0 * kvs;  // (kn, hd) rows of the window
        const float* Vw = Vh + k0 * kvs;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(qn), int(kn),
                    int(hd), 1.0f, Q, int(qs), Kw, int(kvs), 0.0f, P, int(kn));
        MaskedSoftmaxRows(P, qn, k0, kn, i0, km, s, scale);
        // dP = dO V^T; dS = P (dP - rowsum(P dP)) * scale, stored in dP.
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(qn), int(kn),
                    int(hd), 1.0f, dO, int(qs), Vw, int(kvs), 0.0f, dP,
                    int(kn));
        for (int64_t r = 0; r < qn; ++r) {
          const float* pr = P + r * kn;
          float* dr = dP + r * kn;
          float sum = 0;
          for (int64_t j = 0; j < kn; ++j) sum += pr[j] * dr[j];
          for (int64_t j = 0; j < kn; ++j)
            dr[j] = pr[j] * (dr[j] - sum) * scale;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(qn), int(hd),
                    int(kn), 1.0f, dP, int(kn), Kw, int(kvs), 1.0f, dQ,
                    int(qs));
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(kn), int(hd),
                    int(qn), 1.0f, dP, int(kn), Q, int(qs), 1.0f,
                    dKh + k0 * kvs, int(kvs));
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(kn), int(hd),
                    int(qn), 1.0f, P, int(kn), dO, int(qs), 1.0f,
                    dVh + k0 * kvs, int(kvs));
      }
  });
}

void SwiGLUBackward(const float* gate, const float* up, const float* dout,
                    int64_t n, float* dgate, float* dup) {
  ParallelFor(size_t(n), size_t(kSerialElems), [&](size_t b, size_t e, int) {
    for (size_t i = b; i < e; ++i) {
      const float g = gate[i], sg = 1.0f / (1.0f + std::exp(-g));
      dup[i] += dout[i] * g * sg;
      dgate[i] += dout[i] * up[i] * sg * (1.0f + g * (1.0f - sg));
    }
  });
}

double CrossEntropyForwardBackward(float* logits, int64_t rows, int64_t V,
                                   const int32_t* targets,
                                   const float* weights) {
  const int nt = Pool().size();
  std::vector<double> partial(size_t(nt), 0.0);
  ParallelFor(size_t(rows), 1, [&](size_t b, size_t e, int thread) {
    for (size_t r = b; r < e; ++r) {
      float* x = logits + r * V;
      const float w = weights ? weights[r] : 1.0f;
      const float target_logit = x[targets[r]];
      const float lse = cpu::ScaledSoftmax(x, V, 1.0f);  // x becomes softmax
      partial[size_t(thread)] += double(w) * (double(lse) - target_logit);
      for (int64_t v = 0; v < V; ++v) x[v] *= w;
      x[targets[r]] -= w;
    }
  });
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace dllm::ops

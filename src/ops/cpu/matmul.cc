// Highway matmul kernels (matmul.h), compiled once per SIMD target (this
// file includes itself through foreach_target.h) and dispatched at runtime.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/cpu/matmul.cc"
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// clang-format on
#include "ops/cpu/matmul.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "base/half.h"
#include "dllm/timer.h"

HWY_BEFORE_NAMESPACE();
namespace dllm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Weight rows per tile, and the most x^T vectors a tile spans: 6 x 4
// accumulators + 4 loads + 1 broadcast fit AVX-512's 32 registers; targets
// with 16 registers take 6 x 2. Few rows of x (x^T at most kWideVecs
// vectors wide) take tiles of 12 weight rows instead, so that a tile still
// has 24 (12) accumulators and each x^T load serves 12 FMAs.
constexpr int64_t kTileRows = 6, kWideTileRows = 12;
#if HWY_TARGET <= HWY_AVX3
constexpr int64_t kMaxVecs = 4, kWideVecs = 2;
#else
constexpr int64_t kMaxVecs = 2, kWideVecs = 1;
#endif
// Depth of one pass over k: a tile's converted weight rows (6 x kc floats,
// 24 KB) stay in L1, its x^T slice (kc x 64 floats, 256 KB) in L2. Models
// up to d_model 1024 take one pass.
constexpr int64_t kDepth = 1024;
// Rows of x per pass, so that the x^T slice a tile reads (kDepth x 192
// floats, 384 KB) stays in L2 however large M is (training batches).
constexpr int64_t kRowBlock = 192;
// x^T is stored as panels of kPanel columns (matmul.h), so a tile's loads of
// x^T walk memory in order, one cache line per k step on AVX2: the hardware
// prefetcher follows that. Rows Mp floats apart in a buffer aligned to 16
// bytes only (each k step touching two lines) ran 1.06-1.39x slower on a
// Zen 3 host, the most at K = 768 and 2048.
constexpr int64_t kPanel = cpu::kGemmPanel;

// Asks for the cache line at p: locality 3 into L1, 2 into L2 only.
template <int kLocality>
HWY_INLINE void Prefetch(const void* p) {
#if defined(__GNUC__) || defined(__clang__)
  __builtin_prefetch(p, /*rw=*/0, kLocality);
#else
  (void)p;
#endif
}

// Loads lanes k.. of a weight row of each stored type, as fp32.
struct F32Row {
  static constexpr int64_t kBytes = 4;
  static VF Load(DF d, const void* row, int64_t k) {
    return hn::LoadU(d, static_cast<const float*>(row) + k);
  }
  static float At(const void* row, int64_t k) {
    return static_cast<const float*>(row)[k];
  }
};
struct F16Row {
  static constexpr int64_t kBytes = 2;
  static VF Load(DF d, const void* row, int64_t k) {
    const hn::Rebind<hwy::float16_t, DF> dh;
    return hn::PromoteTo(
        d, hn::LoadU(dh, static_cast<const hwy::float16_t*>(row) + k));
  }
  static float At(const void* row, int64_t k) {
    return F16ToF32(static_cast<const uint16_t*>(row)[k]);
  }
};
struct BF16Row {
  static constexpr int64_t kBytes = 2;
  static VF Load(DF d, const void* row, int64_t k) {
    const hn::Rebind<uint16_t, DF> du16;
    const hn::Rebind<uint32_t, DF> du32;
    auto w = hn::PromoteTo(
        du32, hn::LoadU(du16, static_cast<const uint16_t*>(row) + k));
    return hn::BitCast(d, hn::ShiftLeft<16>(w));
  }
  static float At(const void* row, int64_t k) {
    return Bf16ToF32(static_cast<const uint16_t*>(row)[k]);
  }
};

#if HWY_TARGET != HWY_SCALAR
// 4 x 4 transposes in 128-bit registers (every target but scalar has them).
using V4 = hn::Vec<hn::Full128<float>>;

// The columns of the 4 x 4 block at x (rows `stride` floats apart):
// col[c] = {x[0][c], x[1][c], x[2][c], x[3][c]}.
HWY_INLINE void LoadTransposed4x4(const float* x, int64_t stride, V4* col) {
  const hn::Full128<float> d4;
  const V4 r0 = hn::LoadU(d4, x), r1 = hn::LoadU(d4, x + stride),
           r2 = hn::LoadU(d4, x + 2 * stride),
           r3 = hn::LoadU(d4, x + 3 * stride);
  const V4 t0 = hn::InterleaveLower(d4, r0, r1);  // a0 b0 a1 b1
  const V4 t1 = hn::InterleaveLower(d4, r2, r3);  // c0 d0 c1 d1
  const V4 t2 = hn::InterleaveUpper(d4, r0, r1);  // a2 b2 a3 b3
  const V4 t3 = hn::InterleaveUpper(d4, r2, r3);  // c2 d2 c3 d3
  col[0] = hn::ConcatLowerLower(d4, t1, t0);
  col[1] = hn::ConcatUpperUpper(d4, t1, t0);
  col[2] = hn::ConcatLowerLower(d4, t3, t2);
  col[3] = hn::ConcatUpperUpper(d4, t3, t2);
}

// x^T rows k..k+3 at columns m..m+3 of a panel (rows kPanel floats apart)
// from x rows m..m+3 at columns k..k+3.
HWY_INLINE void Transpose4x4(const float* x, int64_t K, float* panel) {
  const hn::Full128<float> d4;
  V4 col[4];
  LoadTransposed4x4(x, K, col);
  for (int64_t c = 0; c < 4; ++c) hn::StoreU(col[c], d4, panel + c * kPanel);
}
#endif

void PackTransposedImpl(const float* x, int64_t M, int64_t K, int64_t k0,
                        int64_t k1, int64_t Mp, float* xT) {
  // Bands of B columns of x: each row's cache line is read whole once
  // (rows a power of two apart share a cache set, so a line revisited later
  // is gone), in 4 x 4 blocks; the edges go one by one.
  constexpr int64_t B = 16;
  auto at = [&](int64_t k, int64_t m) {
    return xT + (m / kPanel) * K * kPanel + k * kPanel + m % kPanel;
  };
  for (int64_t kb = k0; kb < k1; kb += B) {
    const int64_t ke = std::min(k1, kb + B);
    int64_t m = 0;
#if HWY_TARGET != HWY_SCALAR
    const int64_t k4 = kb + (ke - kb) / 4 * 4;
    for (; m + 4 <= M; m += 4)
      for (int64_t k = kb; k < k4; k += 4)
        Transpose4x4(x + m * K + k, K, at(k, m));
    for (int64_t k = k4; k < ke; ++k)
      for (int64_t r = 0; r < m; ++r) *at(k, r) = x[r * K + k];
#endif
    for (; m < M; ++m)
      for (int64_t k = kb; k < ke; ++k) *at(k, m) = x[m * K + k];
    for (int64_t k = kb; k < ke; ++k)
      for (int64_t r = M; r < Mp; ++r) *at(k, r) = 0.0f;
  }
}

// out (R, NV lanes-vectors) = w rows . x^T columns over kc steps.
// xp[v]: vector v's columns of x^T at k0 (in a panel: rows kPanel floats
// apart); w[r]: fp32 weight row r at k0.
template <int64_t R, int64_t NV>
HWY_INLINE void Tile(const float* const* xp, const float* const* w, int64_t kc,
                     float* HWY_RESTRICT out) {
  const DF d;
  const int64_t L = hn::Lanes(d);
  VF acc[R][NV];
  for (int64_t r = 0; r < R; ++r)
    for (int64_t v = 0; v < NV; ++v) acc[r][v] = hn::Zero(d);
  const float* wl[R];
  for (int64_t r = 0; r < R; ++r) wl[r] = w[r];
  const float* xl[NV];
  for (int64_t v = 0; v < NV; ++v) xl[v] = xp[v];
  for (int64_t k = 0; k < kc; ++k) {
    VF xv[NV];
    for (int64_t v = 0; v < NV; ++v) xv[v] = hn::LoadU(d, xl[v] + k * kPanel);
    for (int64_t r = 0; r < R; ++r) {
      const VF b = hn::Set(d, wl[r][k]);
      for (int64_t v = 0; v < NV; ++v)
        acc[r][v] = hn::MulAdd(b, xv[v], acc[r][v]);
    }
  }
  for (int64_t r = 0; r < R; ++r)
    for (int64_t v = 0; v < NV; ++v)
      hn::StoreU(acc[r][v], d, out + (r * NV + v) * L);
}

// Tiles of R weight rows by up to V vectors of x^T.
template <int64_t R, int64_t V>
HWY_INLINE void TileUpTo(int64_t nv, const float* const* xp,
                         const float* const* w, int64_t kc, float* out) {
  if constexpr (V > 1) {
    if (nv >= V) return Tile<R, V>(xp, w, kc, out);
    return TileUpTo<R, V - 1>(nv, xp, w, kc, out);
  } else {
    return Tile<R, 1>(xp, w, kc, out);
  }
}

enum StoreMode { kStore, kBias, kAccumulate };

// y[j][r] (rows ldy apart) = t[r * step + j] for r < rows, j < mn: the
// tile's sums, transposed. Whole 4 x 4 blocks go through 128-bit registers
// (a scalar store per sum would fill the store queue: 6% of a K=256 matmul);
// two leftover rows go as pairs; the edges one by one.
template <int64_t R>
HWY_INLINE void StoreTile(const float* HWY_RESTRICT t, int64_t step, int64_t mn,
                          int64_t rows, float* HWY_RESTRICT y, int64_t ldy,
                          StoreMode mode, const float* HWY_RESTRICT bias) {
  auto scalar = [&](int64_t j0, int64_t j1, int64_t r0, int64_t r1) {
    for (int64_t j = j0; j < j1; ++j) {
      float* yr = y + j * ldy;
      for (int64_t r = r0; r < r1; ++r) {
        const float v = t[r * step + j];
        yr[r] = mode == kAccumulate ? yr[r] + v
                : mode == kBias     ? v + bias[r]
                                    : v;
      }
    }
  };
#if HWY_TARGET != HWY_SCALAR
  const hn::Full128<float> d4;
  const hn::Half<decltype(d4)> d2;
  const int64_t j4 = mn / 4 * 4;
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const auto b = mode == kBias ? hn::LoadU(d4, bias + r) : hn::Zero(d4);
    for (int64_t j = 0; j < j4; j += 4) {
      V4 col[4];
      LoadTransposed4x4(t + r * step + j, step, col);
      for (int64_t c = 0; c < 4; ++c) {
        float* o = y + (j + c) * ldy + r;
        if (mode == kStore)
          hn::StoreU(col[c], d4, o);
        else
          hn::StoreU(hn::Add(col[c], mode == kBias ? b : hn::LoadU(d4, o)), d4,
                     o);
      }
    }
  }
  if (r + 2 <= rows) {
    const auto b = mode == kBias ? hn::LoadU(d2, bias + r) : hn::Zero(d2);
    for (int64_t j = 0; j < j4; j += 4) {
      const float* s = t + r * step + j;
      const auto a = hn::LoadU(d4, s), c = hn::LoadU(d4, s + step);
      const auto lo = hn::InterleaveLower(d4, a, c);  // j: a0 c0, j+1: a1 c1
      const auto hi = hn::InterleaveUpper(d4, a, c);
      const decltype(b) pair[4] = {hn::LowerHalf(d2, lo), hn::UpperHalf(d2, lo),
                                   hn::LowerHalf(d2, hi),
                                   hn::UpperHalf(d2, hi)};
      for (int64_t q = 0; q < 4; ++q) {
        float* o = y + (j + q) * ldy + r;
        if (mode == kStore)
          hn::StoreU(pair[q], d2, o);
        else
          hn::StoreU(hn::Add(pair[q], mode == kBias ? b : hn::LoadU(d2, o)), d2,
                     o);
      }
    }
    r += 2;
  }
  scalar(0, j4, r, rows);
  scalar(j4, mn, 0, rows);
#else
  scalar(0, mn, 0, rows);
#endif
}

template <class Row, int64_t R, int64_t V>
void GemmSliceR(const float* xT, int64_t M, int64_t Mp, int64_t K,
                const uint8_t* w, size_t row_bytes, int64_t n0, int64_t n1,
                float* y, int64_t ldy, const float* bias) {
  const DF d;
  const int64_t L = hn::Lanes(d);
  const bool in_place = std::is_same<Row, F32Row>::value;
  thread_local std::vector<float> wbuf;
  if (!in_place && wbuf.size() < size_t(R * kDepth))
    wbuf.resize(size_t(R * kDepth));
  alignas(64) float tile[R * V * 16];
  for (int64_t k0 = 0; k0 < K; k0 += kDepth) {
    const int64_t kc = std::min(kDepth, K - k0);
    for (int64_t mb = 0; mb < Mp; mb += kRowBlock) {
      const int64_t me = std::min(Mp, mb + kRowBlock);
      for (int64_t nb = n0; nb < n1; nb += R) {
        const int64_t rows = std::min(R, n1 - nb);
        // The weights two tiles ahead, into L2, while this one computes: a
        // tile reads its weights once, so past L2's size they come from
        // memory, and the conversion below would wait on each line (the LM
        // head's 64 x 256 x 32000 measured 0.67 of the FMA peak without
        // this, 0.76 with it, and 0.80 with its weights already in L2).
        if (!in_place && nb + 2 * R < n1) {
          const int64_t ahead = std::min(R, n1 - nb - 2 * R);
          const uint8_t* p =
              w + size_t(nb + 2 * R) * row_bytes + size_t(k0) * 2;  // 16-bit
          for (int64_t r = 0; r < ahead; ++r, p += row_bytes)
            for (int64_t b = 0; b < kc * 2; b += 64) Prefetch<2>(p + b);
        }
        const float* wp[R];
        for (int64_t r = 0; r < R; ++r) {
          // Rows past the slice repeat the last one; their sums are dropped.
          const uint8_t* src =
              w + size_t(nb + std::min(r, rows - 1)) * row_bytes;
          if (in_place) {
            wp[r] = reinterpret_cast<const float*>(src) + k0;
            continue;
          }
          float* dst = wbuf.data() + r * kDepth;
          int64_t k = 0;
          for (; k + L <= kc; k += L)
            hn::StoreU(Row::Load(d, src, k0 + k), d, dst + k);
          for (; k < kc; ++k) dst[k] = Row::At(src, k0 + k);
          wp[r] = dst;
        }
        for (int64_t m0 = mb; m0 < me; m0 += V * L) {
          const int64_t nv = std::min(V, (me - m0) / L);
          const float* xp[V];
          for (int64_t v = 0; v < V; ++v) {
            const int64_t c = m0 + std::min(v, nv - 1) * L;
            xp[v] = xT + (c / kPanel) * K * kPanel + k0 * kPanel + c % kPanel;
          }
          TileUpTo<R, V>(nv, xp, wp, kc, tile);
          // tile[r * nv * L + j]: weight row nb + r, x row m0 + j.
          const int64_t mn = std::min(nv * L, M - m0);
          StoreTile<R>(tile, nv * L, mn, rows, y + m0 * ldy + nb, ldy,
                       k0 > 0 ? kAccumulate
                       : bias ? kBias
                              : kStore,
                       bias ? bias + nb : nullptr);
        }
      }
    }
  }
}

template <class Row>
void GemmSliceT(const float* xT, int64_t M, int64_t Mp, int64_t K,
                const uint8_t* w, size_t row_bytes, int64_t n0, int64_t n1,
                float* y, int64_t ldy, const float* bias) {
  const int64_t L = hn::Lanes(DF());
  if (Mp <= kWideVecs * L)
    GemmSliceR<Row, kWideTileRows, kWideVecs>(xT, M, Mp, K, w, row_bytes, n0,
                                              n1, y, ldy, bias);
  else
    GemmSliceR<Row, kTileRows, kMaxVecs>(xT, M, Mp, K, w, row_bytes, n0, n1, y,
                                         ldy, bias);
}

// How far ahead of GemvT's weight loads to prefetch.
constexpr int64_t kGemvAheadBytes = 4096;

// MR rows of x against one weight row at a time, in memory order: reading
// several rows side by side measured a third of the bandwidth (the hardware
// prefetcher follows one stream per row poorly). Four accumulators per row
// of x over k hide the FMA latency.
template <class Row, int64_t MR>
void GemvT(const float* x, int64_t K, const uint8_t* w, size_t row_bytes,
           int64_t n0, int64_t n1, float* y, int64_t ldy, const float* bias) {
  const DF d;
  const int64_t L = hn::Lanes(d);
  constexpr int64_t U = 4;
  for (int64_t n = n0; n < n1; ++n) {
    const uint8_t* wr = w + size_t(n) * row_bytes;
    VF acc[MR][U];
    for (int64_t m = 0; m < MR; ++m)
      for (int64_t u = 0; u < U; ++u) acc[m][u] = hn::Zero(d);
    int64_t k = 0;
    for (; k + U * L <= K; k += U * L) {
      // The rows of a slice are one stream: the lines kGemvAheadBytes on,
      // into L2. On an Intel Xeon host (AVX-512, 2 threads) the 12 x 768
      // F16 decoding step went from 11.2 to 8.0 ms.
      const uint8_t* ahead = wr + k * Row::kBytes + kGemvAheadBytes;
      for (int64_t b = 0; b < U * L * Row::kBytes; b += 64)
        Prefetch<2>(ahead + b);
      VF wv[U];
      for (int64_t u = 0; u < U; ++u) wv[u] = Row::Load(d, wr, k + u * L);
      for (int64_t m = 0; m < MR; ++m)
        for (int64_t u = 0; u < U; ++u)
          acc[m][u] =
              hn::MulAdd(hn::LoadU(d, x + m * K + k + u * L), wv[u], acc[m][u]);
    }
    for (; k + L <= K; k += L) {
      const VF wv = Row::Load(d, wr, k);
      for (int64_t m = 0; m < MR; ++m)
        acc[m][0] = hn::MulAdd(hn::LoadU(d, x + m * K + k), wv, acc[m][0]);
    }
    for (int64_t m = 0; m < MR; ++m) {
      const VF sum =
          hn::Add(hn::Add(acc[m][0], acc[m][1]), hn::Add(acc[m][2], acc[m][3]));
      float s = hn::GetLane(hn::SumOfLanes(d, sum));
      for (int64_t kk = k; kk < K; ++kk) s += x[m * K + kk] * Row::At(wr, kk);
      y[m * ldy + n] = bias ? s + bias[n] : s;
    }
  }
}

template <class Row>
void GemvDispatch(const float* x, int64_t M, int64_t K, const uint8_t* w,
                  size_t rb, int64_t n0, int64_t n1, float* y, int64_t ldy,
                  const float* bias) {
  switch (M) {
    case 1:
      return GemvT<Row, 1>(x, K, w, rb, n0, n1, y, ldy, bias);
    case 2:
      return GemvT<Row, 2>(x, K, w, rb, n0, n1, y, ldy, bias);
    case 3:
      return GemvT<Row, 3>(x, K, w, rb, n0, n1, y, ldy, bias);
    default:
      return GemvT<Row, 4>(x, K, w, rb, n0, n1, y, ldy, bias);
  }
}

void GemmSliceImpl(const float* xT, int64_t M, int64_t Mp, int64_t K, DType dt,
                   const void* w, int64_t n0, int64_t n1, float* y, int64_t ldy,
                   const float* bias) {
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  const size_t rb = DTypeBytes(dt, K);
  if (dt == DType::kF32)
    GemmSliceT<F32Row>(xT, M, Mp, K, wb, rb, n0, n1, y, ldy, bias);
  else if (dt == DType::kF16)
    GemmSliceT<F16Row>(xT, M, Mp, K, wb, rb, n0, n1, y, ldy, bias);
  else
    GemmSliceT<BF16Row>(xT, M, Mp, K, wb, rb, n0, n1, y, ldy, bias);
}

void GemvSliceImpl(const float* x, int64_t M, int64_t K, DType dt,
                   const void* w, int64_t n0, int64_t n1, float* y, int64_t ldy,
                   const float* bias) {
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  const size_t rb = DTypeBytes(dt, K);
  if (dt == DType::kF32)
    GemvDispatch<F32Row>(x, M, K, wb, rb, n0, n1, y, ldy, bias);
  else if (dt == DType::kF16)
    GemvDispatch<F16Row>(x, M, K, wb, rb, n0, n1, y, ldy, bias);
  else
    GemvDispatch<BF16Row>(x, M, K, wb, rb, n0, n1, y, ldy, bias);
}

double MeasureFmaGflopsImpl(double seconds) {
  const DF d;
  // 12 independent chains hide the FMA latency on every target. They start
  // apart: identical chains would be folded into one by the compiler.
  VF a0 = hn::Set(d, 1.00f), a1 = hn::Set(d, 1.01f), a2 = hn::Set(d, 1.02f),
     a3 = hn::Set(d, 1.03f), a4 = hn::Set(d, 1.04f), a5 = hn::Set(d, 1.05f),
     a6 = hn::Set(d, 1.06f), a7 = hn::Set(d, 1.07f), a8 = hn::Set(d, 1.08f),
     a9 = hn::Set(d, 1.09f), a10 = hn::Set(d, 1.10f), a11 = hn::Set(d, 1.11f);
  const VF m = hn::Set(d, 0.999999f), c = hn::Set(d, 1e-6f);
  int64_t iters = 0;
  Timer t;
  do {
    for (int i = 0; i < 4096; ++i) {
      a0 = hn::MulAdd(a0, m, c), a1 = hn::MulAdd(a1, m, c);
      a2 = hn::MulAdd(a2, m, c), a3 = hn::MulAdd(a3, m, c);
      a4 = hn::MulAdd(a4, m, c), a5 = hn::MulAdd(a5, m, c);
      a6 = hn::MulAdd(a6, m, c), a7 = hn::MulAdd(a7, m, c);
      a8 = hn::MulAdd(a8, m, c), a9 = hn::MulAdd(a9, m, c);
      a10 = hn::MulAdd(a10, m, c), a11 = hn::MulAdd(a11, m, c);
    }
    iters += 4096;
  } while (t.Seconds() < seconds);
  const double secs = t.Seconds();
  // Keep the chains alive.
  VF s = hn::Add(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)),
                 hn::Add(hn::Add(a4, a5), hn::Add(a6, a7)));
  s = hn::Add(s, hn::Add(hn::Add(a8, a9), hn::Add(a10, a11)));
  volatile float sink = hn::GetLane(s);
  (void)sink;
  return double(iters) * 12 * double(hn::Lanes(d)) * 2 / secs / 1e9;
}

}  // namespace HWY_NAMESPACE
}  // namespace dllm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace dllm::cpu {

HWY_EXPORT(PackTransposedImpl);
HWY_EXPORT(GemmSliceImpl);
HWY_EXPORT(GemvSliceImpl);
HWY_EXPORT(MeasureFmaGflopsImpl);

void PackTransposed(const float* x, int64_t M, int64_t K, int64_t k0,
                    int64_t k1, int64_t Mp, float* xT) {
  HWY_DYNAMIC_DISPATCH(PackTransposedImpl)(x, M, K, k0, k1, Mp, xT);
}
void GemmSlice(const float* xT, int64_t M, int64_t Mp, int64_t K, DType dt,
               const void* w, int64_t n0, int64_t n1, float* y, int64_t ldy,
               const float* bias) {
  HWY_DYNAMIC_DISPATCH(GemmSliceImpl)
  (xT, M, Mp, K, dt, w, n0, n1, y, ldy, bias);
}
void GemvSlice(const float* x, int64_t M, int64_t K, DType dt, const void* w,
               int64_t n0, int64_t n1, float* y, int64_t ldy,
               const float* bias) {
  HWY_DYNAMIC_DISPATCH(GemvSliceImpl)(x, M, K, dt, w, n0, n1, y, ldy, bias);
}
double MeasureFmaGflops(double seconds) {
  return HWY_DYNAMIC_DISPATCH(MeasureFmaGflopsImpl)(seconds);
}

}  // namespace dllm::cpu
#endif  // HWY_ONCE

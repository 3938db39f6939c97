// Highway kernels, compiled once per SIMD target (this file includes itself
// through foreach_target.h) and dispatched at runtime.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/cpu/simd.cc"
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"
// clang-format on
#include "ops/cpu/simd.h"

#include "base/half.h"

HWY_BEFORE_NAMESPACE();
namespace dllm {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

void RmsNormRowImpl(const float* x, const float* w, int64_t C, float eps,
                    float* y) {
  const hn::ScalableTag<float> d;
  const int64_t N = hn::Lanes(d);
  auto acc0 = hn::Zero(d), acc1 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * N <= C; i += 2 * N) {
    auto a = hn::LoadU(d, x + i), b = hn::LoadU(d, x + i + N);
    acc0 = hn::MulAdd(a, a, acc0);
    acc1 = hn::MulAdd(b, b, acc1);
  }
  for (; i + N <= C; i += N) {
    auto a = hn::LoadU(d, x + i);
    acc0 = hn::MulAdd(a, a, acc0);
  }
  float ss = hn::GetLane(hn::SumOfLanes(d, hn::Add(acc0, acc1)));
  for (; i < C; ++i) ss += x[i] * x[i];
  const float r = 1.0f / std::sqrt(ss / float(C) + eps);
  const auto vr = hn::Set(d, r);
  i = 0;
  for (; i + N <= C; i += N)
    hn::StoreU(hn::Mul(hn::Mul(hn::LoadU(d, x + i), vr), hn::LoadU(d, w + i)),
               d, y + i);
  for (; i < C; ++i) y[i] = x[i] * r * w[i];
}

void RopeRowImpl(float* v, int64_t half, const float* cos, const float* sin) {
  const hn::ScalableTag<float> d;
  const int64_t N = hn::Lanes(d);
  int64_t i = 0;
  for (; i + N <= half; i += N) {
    auto a = hn::LoadU(d, v + i), b = hn::LoadU(d, v + half + i);
    auto c = hn::LoadU(d, cos + i), s = hn::LoadU(d, sin + i);
    hn::StoreU(hn::NegMulAdd(b, s, hn::Mul(a, c)), d, v + i);
    hn::StoreU(hn::MulAdd(a, s, hn::Mul(b, c)), d, v + half + i);
  }
  for (; i < half; ++i) {
    float a = v[i], b = v[half + i];
    v[i] = a * cos[i] - b * sin[i];
    v[half + i] = b * cos[i] + a * sin[i];
  }
}

void SwiGLUImpl(const float* gate, const float* up, int64_t n, float* out) {
  const hn::ScalableTag<float> d;
  const int64_t N = hn::Lanes(d);
  const auto one = hn::Set(d, 1.0f);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    auto g = hn::LoadU(d, gate + i);
    auto sig = hn::Div(one, hn::Add(one, hn::Exp(d, hn::Neg(g))));
    hn::StoreU(hn::Mul(hn::Mul(g, sig), hn::LoadU(d, up + i)), d, out + i);
  }
  for (; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

// out[j] = dot(q, keys + j * stride) over d, for j < n.
void DotRowsImpl(const float* q, const float* keys, int64_t stride, int64_t n,
                 int64_t d_len, float* out) {
  const hn::ScalableTag<float> d;
  const int64_t N = hn::Lanes(d);
  for (int64_t j = 0; j < n; ++j) {
    const float* kr = keys + j * stride;
    auto a0 = hn::Zero(d), a1 = hn::Zero(d);
    int64_t i = 0;
    for (; i + 2 * N <= d_len; i += 2 * N) {
      a0 = hn::MulAdd(hn::LoadU(d, q + i), hn::LoadU(d, kr + i), a0);
      a1 = hn::MulAdd(hn::LoadU(d, q + i + N), hn::LoadU(d, kr + i + N), a1);
    }
    for (; i + N <= d_len; i += N)
      a0 = hn::MulAdd(hn::LoadU(d, q + i), hn::LoadU(d, kr + i), a0);
    float sum = hn::GetLane(hn::SumOfLanes(d, hn::Add(a0, a1)));
    for (; i < d_len; ++i) sum += q[i] * kr[i];
    out[j] = sum;
  }
}

// out[0, d) = sum over j < n of p[j] * (values + j * stride), in blocks of
// up to 4 vectors of out held in registers across all j.
void WeightedRowSumImpl(const float* p, const float* values, int64_t stride,
                        int64_t n, int64_t d_len, float* out) {
  const hn::ScalableTag<float> d;
  const int64_t N = hn::Lanes(d);
  int64_t i = 0;
  for (; i + 4 * N <= d_len; i += 4 * N) {
    auto a0 = hn::Zero(d), a1 = hn::Zero(d), a2 = hn::Zero(d), a3 = hn::Zero(d);
    for (int64_t j = 0; j < n; ++j) {
      const float* v = values + j * stride + i;
      const auto w = hn::Set(d, p[j]);
      a0 = hn::MulAdd(w, hn::LoadU(d, v), a0);
      a1 = hn::MulAdd(w, hn::LoadU(d, v + N), a1);
      a2 = hn::MulAdd(w, hn::LoadU(d, v + 2 * N), a2);
      a3 = hn::MulAdd(w, hn::LoadU(d, v + 3 * N), a3);
    }
    hn::StoreU(a0, d, out + i);
    hn::StoreU(a1, d, out + i + N);
    hn::StoreU(a2, d, out + i + 2 * N);
    hn::StoreU(a3, d, out + i + 3 * N);
  }
  for (; i + N <= d_len; i += N) {
    auto a = hn::Zero(d);
    for (int64_t j = 0; j < n; ++j)
      a = hn::MulAdd(hn::Set(d, p[j]), hn::LoadU(d, values + j * stride + i),
                     a);
    hn::StoreU(a, d, out + i);
  }
  for (; i < d_len; ++i) {
    float a = 0.0f;
    for (int64_t j = 0; j < n; ++j) a += p[j] * values[j * stride + i];
    out[i] = a;
  }
}

void AddImpl(float* y, const float* x, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t N = hn::Lanes(d);
  int64_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::Add(hn::LoadU(d, y + i), hn::LoadU(d, x + i)), d, y + i);
  for (; i < n; ++i) y[i] += x[i];
}

void Bf16ToF32Impl(const uint16_t* src, int64_t n, float* dst) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<uint16_t, decltype(df)> du16;
  const hn::Rebind<uint32_t, decltype(df)> du32;
  const int64_t N = hn::Lanes(df);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    auto w = hn::PromoteTo(du32, hn::LoadU(du16, src + i));
    hn::StoreU(hn::BitCast(df, hn::ShiftLeft<16>(w)), df, dst + i);
  }
  for (; i < n; ++i) {
    uint32_t u = uint32_t(src[i]) << 16;
    float f;
    __builtin_memcpy(&f, &u, 4);
    dst[i] = f;
  }
}

void F16ToF32Impl(const uint16_t* src, int64_t n, float* dst) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const int64_t N = hn::Lanes(df);
  int64_t i = 0;
  const hwy::float16_t* h = reinterpret_cast<const hwy::float16_t*>(src);
  for (; i + N <= n; i += N)
    hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, h + i)), df, dst + i);
  for (; i < n; ++i) dst[i] = F16ToF32(src[i]);
}

float ScaledSoftmaxImpl(float* row, int64_t n, float scale) {
  const hn::ScalableTag<float> d;
  const int64_t N = hn::Lanes(d);
  const auto vs = hn::Set(d, scale);
  auto vmax = hn::Set(d, -INFINITY);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    auto x = hn::Mul(hn::LoadU(d, row + i), vs);
    hn::StoreU(x, d, row + i);
    vmax = hn::Max(vmax, x);
  }
  float mx = hn::GetLane(hn::MaxOfLanes(d, vmax));
  for (; i < n; ++i) {
    row[i] *= scale;
    mx = std::max(mx, row[i]);
  }
  if (mx == -INFINITY) return -INFINITY;  // every entry masked
  const auto vm = hn::Set(d, mx);
  auto vsum = hn::Zero(d);
  i = 0;
  for (; i + N <= n; i += N) {
    auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, row + i), vm));
    hn::StoreU(e, d, row + i);
    vsum = hn::Add(vsum, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(d, vsum));
  for (; i < n; ++i) sum += (row[i] = std::exp(row[i] - mx));
  const auto vinv = hn::Set(d, 1.0f / sum);
  i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::Mul(hn::LoadU(d, row + i), vinv), d, row + i);
  for (; i < n; ++i) row[i] /= sum;
  return mx + std::log(sum);
}

void RowStatsImpl(const float* x, int64_t n, int32_t* argmax, int32_t* n_ties,
                  float* out /* max, second, log_norm, entropy */) {
  const hn::ScalableTag<float> d;
  const int64_t N = hn::Lanes(d);
  const auto ninf = hn::Set(d, -INFINITY);
  // One pass for the selections: each lane keeps its largest value, how
  // often it came, and its largest value below that.
  const hn::RebindToSigned<decltype(d)> di;
  auto vmax = ninf, vbelow = ninf;
  auto vcount = hn::Zero(di);
  const auto one = hn::Set(di, 1);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto v = hn::LoadU(d, x + i);
    const auto gt = hn::Gt(v, vmax), eq = hn::Eq(v, vmax);
    vbelow = hn::IfThenElse(gt, vmax,
                            hn::IfThenElse(eq, vbelow, hn::Max(vbelow, v)));
    vcount = hn::IfThenElse(
        hn::RebindMask(di, gt), one,
        hn::IfThenElse(hn::RebindMask(di, eq), hn::Add(vcount, one), vcount));
    vmax = hn::Max(vmax, v);
  }
  alignas(64) float lmax[hn::MaxLanes(d)], lbelow[hn::MaxLanes(d)];
  alignas(64) int32_t lcount[hn::MaxLanes(d)];
  hn::Store(vmax, d, lmax);
  hn::Store(vbelow, d, lbelow);
  hn::Store(vcount, di, lcount);
  float mx = -INFINITY;
  for (int64_t l = 0; l < N; ++l) mx = std::max(mx, lmax[l]);
  for (int64_t j = i; j < n; ++j) mx = std::max(mx, x[j]);
  size_t ties = 0;
  float second = -INFINITY;
  for (int64_t l = 0; l < N; ++l) {
    if (lmax[l] == mx) {
      ties += size_t(lcount[l]);
      second = std::max(second, lbelow[l]);
    } else {
      second = std::max(second, lmax[l]);
    }
  }
  for (int64_t j = i; j < n; ++j) {
    if (x[j] == mx)
      ++ties;
    else
      second = std::max(second, x[j]);
  }
  if (ties >= 2) second = mx;
  // The first index of the max.
  const auto vm = hn::Set(d, mx);
  int64_t am = -1;
  for (int64_t j = 0; am < 0 && j + N <= n; j += N) {
    const intptr_t f = hn::FindFirstTrue(d, hn::Eq(hn::LoadU(d, x + j), vm));
    if (f >= 0) am = j + f;
  }
  for (int64_t j = n / N * N; am < 0 && j < n; ++j)
    if (x[j] == mx) am = j;
  if (am < 0) am = 0;  // a row of NaN
  // Third pass: z = sum e^(x - max) and sum e^(x - max) (x - max), for the
  // normaliser and the entropy. Differences are clamped so that -inf
  // entries (banned tokens) add exactly nothing.
  const auto lo = hn::Set(d, -104.0f);
  auto vz = hn::Zero(d), vzl = hn::Zero(d);
  i = 0;
  for (; i + N <= n; i += N) {
    auto dd = hn::Max(hn::Sub(hn::LoadU(d, x + i), vm), lo);
    auto e = hn::Exp(d, dd);
    vz = hn::Add(vz, e);
    vzl = hn::MulAdd(e, dd, vzl);
  }
  double z = hn::GetLane(hn::SumOfLanes(d, vz)),
         zl = hn::GetLane(hn::SumOfLanes(d, vzl));
  for (; i < n; ++i) {
    float dd = std::max(x[i] - mx, -104.0f);
    float e = std::exp(dd);
    z += e;
    zl += double(e) * dd;
  }
  *argmax = int32_t(am);
  *n_ties = int32_t(ties);
  out[0] = mx;
  out[1] = second;
  out[2] = float(mx + std::log(z));
  out[3] = float(std::log(z) - zl / z);
}

}  // namespace HWY_NAMESPACE
}  // namespace dllm
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace dllm::cpu {

HWY_EXPORT(RmsNormRowImpl);
HWY_EXPORT(RopeRowImpl);
HWY_EXPORT(SwiGLUImpl);
HWY_EXPORT(AddImpl);
HWY_EXPORT(DotRowsImpl);
HWY_EXPORT(WeightedRowSumImpl);
HWY_EXPORT(Bf16ToF32Impl);
HWY_EXPORT(F16ToF32Impl);
HWY_EXPORT(ScaledSoftmaxImpl);
HWY_EXPORT(RowStatsImpl);

void RmsNormRow(const float* x, const float* w, int64_t C, float eps,
                float* y) {
  HWY_DYNAMIC_DISPATCH(RmsNormRowImpl)(x, w, C, eps, y);
}
void RopeRow(float* v, int64_t half, const float* cos, const float* sin) {
  HWY_DYNAMIC_DISPATCH(RopeRowImpl)(v, half, cos, sin);
}
void SwiGLU(const float* gate, const float* up, int64_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(SwiGLUImpl)(gate, up, n, out);
}
void Add(float* y, const float* x, int64_t n) {
  HWY_DYNAMIC_DISPATCH(AddImpl)(y, x, n);
}
void DotRows(const float* q, const float* keys, int64_t stride, int64_t n,
             int64_t d, float* out) {
  HWY_DYNAMIC_DISPATCH(DotRowsImpl)(q, keys, stride, n, d, out);
}
void WeightedRowSum(const float* p, const float* values, int64_t stride,
                    int64_t n, int64_t d, float* out) {
  HWY_DYNAMIC_DISPATCH(WeightedRowSumImpl)(p, values, stride, n, d, out);
}
void Bf16ToF32(const uint16_t* src, int64_t n, float* dst) {
  HWY_DYNAMIC_DISPATCH(Bf16ToF32Impl)(src, n, dst);
}
void F16ToF32(const uint16_t* src, int64_t n, float* dst) {
  HWY_DYNAMIC_DISPATCH(F16ToF32Impl)(src, n, dst);
}
float ScaledSoftmax(float* row, int64_t n, float scale) {
  return HWY_DYNAMIC_DISPATCH(ScaledSoftmaxImpl)(row, n, scale);
}

void RowStats(const float* x, int64_t n, int32_t* argmax, int32_t* ties,
              float* out) {
  HWY_DYNAMIC_DISPATCH(RowStatsImpl)(x, n, argmax, ties, out);
}

std::vector<int64_t> SimdTargets() {
  return hwy::SupportedAndGeneratedTargets();
}
void ForceSimdTarget(int64_t target) {
  hwy::SetSupportedTargetsForTest(target);
}
const char* SimdTargetName(int64_t target) { return hwy::TargetName(target); }

}  // namespace dllm::cpu
#endif  // HWY_ONCE

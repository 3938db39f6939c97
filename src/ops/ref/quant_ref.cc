// The block quantizers and dequantizers of ops/quant.h, written from the
// algorithms of ggml's reference code (ggml-quants.c: quantize_row_*_ref,
// make_qx_quants, make_qkx2_quants, dequantize_row_*), with the same float
// operations in the same order so that the bytes match llama.cpp's bit for
// bit (tests/ops/quant_test.cc checks them against golden bytes made by
// llama.cpp itself, scripts/make_quant_golden.py).
//
// Bit-exactness needs every a * b + c rounded twice, as ggml's portable
// build does: no fused multiply-add contraction in this file, whatever
// -march the build uses.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <cmath>
#include <cstring>

#include "base/half.h"
#include "dllm/error.h"
#include "ops/quant.h"

namespace dllm::ops {

namespace {

// ggml's nearest_int: round to nearest, ties to even, through the float
// mantissa (exact for |x| < 2^22; garbage but no UB outside, as in ggml).
inline int NearestInt(float x) {
  float v = x + 12582912.f;
  int32_t i;
  std::memcpy(&i, &v, 4);
  return (i & 0x007fffff) - 0x00400000;
}

constexpr float kGroupMaxEps = 1e-15f;

template <typename T>
inline T Min(T a, T b) {
  return a < b ? a : b;
}
template <typename T>
inline T Max(T a, T b) {
  return a > b ? a : b;
}

inline void PutF16(uint8_t* p, float f) {
  const uint16_t h = F32ToF16(f);
  std::memcpy(p, &h, 2);
}
inline float GetF16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return F16ToF32(h);
}

// ---- Q8_0 ---------------------------------------------------------------

void QuantizeQ8_0(const float* x, int64_t nb, uint8_t* y) {
  for (int64_t i = 0; i < nb; ++i, x += 32, y += 34) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = Max(amax, std::fabs(x[j]));
    const float d = amax / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    PutF16(y, d);
    for (int j = 0; j < 32; ++j)
      y[2 + j] = uint8_t(int8_t(std::round(x[j] * id)));
  }
}

void DequantizeQ8_0(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 34, y += 32) {
    const float d = GetF16(x);
    for (int j = 0; j < 32; ++j) y[j] = float(int8_t(x[2 + j])) * d;
  }
}

// ---- Q4_0 ---------------------------------------------------------------

void QuantizeQ4_0(const float* x, int64_t nb, uint8_t* y) {
  for (int64_t i = 0; i < nb; ++i, x += 32, y += 18) {
    float amax = 0.0f, max = 0.0f;  // the value of largest magnitude
    for (int j = 0; j < 32; ++j)
      if (amax < std::fabs(x[j])) amax = std::fabs(x[j]), max = x[j];
    const float d = max / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    PutF16(y, d);
    for (int j = 0; j < 16; ++j) {
      // As ggml: truncated to int8, then capped at 15 (as an int).
      const uint8_t lo = uint8_t(Min<int>(15, int8_t(x[j] * id + 8.5f)));
      const uint8_t hi = uint8_t(Min<int>(15, int8_t(x[16 + j] * id + 8.5f)));
      y[2 + j] = uint8_t(lo | (hi << 4));
    }
  }
}

void DequantizeQ4_0(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 18, y += 32) {
    const float d = GetF16(x);
    for (int j = 0; j < 16; ++j) {
      y[j] = float((x[2 + j] & 0x0F) - 8) * d;
      y[16 + j] = float((x[2 + j] >> 4) - 8) * d;
    }
  }
}

// ---- Q4_K ---------------------------------------------------------------

// ggml's make_qkx2_quants: a scale and a min (returned as -min >= 0) for
// values L in [0, nmax], fitted by weighted least squares over a sweep of
// nstep + 1 candidate scales, keeping the one of least weighted error.
float MakeQkx2Quants(int n, int nmax, const float* x, const float* weights,
                     uint8_t* L, float* the_min, uint8_t* Laux, float rmin,
                     float rdelta, int nstep) {
  float min = x[0], max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.f;
  }
  float iscale = float(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = NearestInt(iscale * (x[i] - min));
    L[i] = uint8_t(Max(0, Min(nmax, l)));
    float diff = scale * float(L[i]) + min - x[i];
    diff = diff * diff;
    best_error += weights[i] * diff;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * float(is) + float(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = NearestInt(iscale * (x[i] - min));
      l = Max(0, Min(nmax, l));
      Laux[i] = uint8_t(l);
      const float w = weights[i];
      sum_l += w * float(l);
      sum_l2 += w * float(l) * float(l);
      sum_xl += w * float(l) * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float cur_error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = this_scale * float(Laux[i]) + this_min - x[i];
        diff = diff * diff;
        cur_error += weights[i] * diff;
      }
      if (cur_error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// The 6-bit scale and min of sub-block j from the 12 packed bytes q.
inline void ScaleMinK4(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = uint8_t((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = uint8_t((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Block layout: f16 d at 0, f16 dmin at 2, scales[12] at 4, q[128] at 16.
void QuantizeQ4_K(const float* x, int64_t nb, uint8_t* y) {
  uint8_t L[256], Laux[32];
  float weights[32], mins[8], scales[8];
  for (int64_t i = 0; i < nb; ++i, x += 256, y += 144) {
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
      scales[j] = MakeQkx2Quants(32, 15, x + 32 * j, weights, L + 32 * j,
                                 &mins[j], Laux, -1.f, 0.1f, 20);
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    uint8_t* sc = y + 4;
    for (int j = 0; j < 8; ++j) {
      // As ggml: the int is truncated to a byte first, then capped.
      const uint8_t ls =
          Min<uint8_t>(63, uint8_t(NearestInt(inv_scale * scales[j])));
      const uint8_t lm =
          Min<uint8_t>(63, uint8_t(NearestInt(inv_min * mins[j])));
      if (j < 4) {
        sc[j] = ls;
        sc[j + 4] = lm;
      } else {
        sc[j + 4] = uint8_t((ls & 0xF) | ((lm & 0xF) << 4));
        sc[j - 4] |= uint8_t((ls >> 4) << 6);
        sc[j] |= uint8_t((lm >> 4) << 6);
      }
    }
    PutF16(y, max_scale / 63.f);
    PutF16(y + 2, max_min / 63.f);
    const float d_all = GetF16(y), dmin_all = GetF16(y + 2);
    for (int j = 0; j < 8; ++j) {
      uint8_t s, m;
      ScaleMinK4(j, sc, &s, &m);
      const float d = d_all * float(s);
      if (d == 0.0f) continue;  // keeps make_qkx2_quants' values, as ggml
      const float dm = dmin_all * float(m);
      for (int ii = 0; ii < 32; ++ii) {
        const int l = NearestInt((x[32 * j + ii] + dm) / d);
        L[32 * j + ii] = uint8_t(Max(0, Min(15, l)));
      }
    }
    uint8_t* q = y + 16;
    for (int j = 0; j < 256; j += 64, q += 32)
      for (int l = 0; l < 32; ++l)
        q[l] = uint8_t(L[j + l] | (L[j + l + 32] << 4));
  }
}

void DequantizeQ4_K(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 144) {
    const float d = GetF16(x), min = GetF16(x + 2);
    const uint8_t* sc = x + 4;
    const uint8_t* q = x + 16;
    for (int j = 0, is = 0; j < 256; j += 64, q += 32, is += 2) {
      uint8_t s, m;
      ScaleMinK4(is, sc, &s, &m);
      const float d1 = d * float(s), m1 = min * float(m);
      ScaleMinK4(is + 1, sc, &s, &m);
      const float d2 = d * float(s), m2 = min * float(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * float(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * float(q[l] >> 4) - m2;
    }
  }
}

// ---- Q6_K ---------------------------------------------------------------

// ggml's make_qx_quants with rmse_type 1 and no importance weights: values
// L in [0, 2 nmax) for a signed scale, the x^2-weighted least-squares fit
// over 18 candidate scales around nmax / max.
float MakeQxQuants(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) amax = ax, max = x[i];
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.f;
  }
  float iscale = float(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = NearestInt(iscale * x[i]);
    l = Max(-nmax, Min(nmax - 1, l));
    L[i] = int8_t(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * float(l);
    suml2 += w * float(l) * float(l);
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(float(nmax) + 0.1f * float(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = NearestInt(iscale * x[i]);
      l = Max(-nmax, Min(nmax - 1, l));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * float(l);
      suml2 += w * float(l) * float(l);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        const int l = NearestInt(iscale * x[i]);
        L[i] = int8_t(nmax + Max(-nmax, Min(nmax - 1, l)));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Block layout: ql[128] at 0, qh[64] at 128, int8 scales[16] at 192, f16 d
// at 208.
void QuantizeQ6_K(const float* x, int64_t nb, uint8_t* y) {
  int8_t L[256];
  float scales[16];
  for (int64_t i = 0; i < nb; ++i, x += 256, y += 210) {
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < 16; ++ib) {
      const float scale = MakeQxQuants(16, 32, x + 16 * ib, L + 16 * ib);
      scales[ib] = scale;
      const float abs_scale = std::fabs(scale);
      if (abs_scale > max_abs_scale) {
        max_abs_scale = abs_scale;
        max_scale = scale;
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(y, 0, 210);
      continue;
    }
    int8_t* sc = reinterpret_cast<int8_t*>(y + 192);
    const float iscale = -128.f / max_scale;
    PutF16(y + 208, 1 / iscale);
    for (int ib = 0; ib < 16; ++ib)
      sc[ib] = int8_t(Min(127, NearestInt(iscale * scales[ib])));
    const float d_all = GetF16(y + 208);
    for (int j = 0; j < 16; ++j) {
      const float d = d_all * float(sc[j]);
      if (d == 0.0f) continue;
      for (int ii = 0; ii < 16; ++ii) {
        int l = NearestInt(x[16 * j + ii] / d);
        l = Max(-32, Min(31, l));
        L[16 * j + ii] = int8_t(l + 32);
      }
    }
    uint8_t* ql = y;
    uint8_t* qh = y + 128;
    for (int j = 0; j < 256; j += 128, ql += 64, qh += 32)
      for (int l = 0; l < 32; ++l) {
        const uint8_t q1 = L[j + l + 0] & 0xF, q2 = L[j + l + 32] & 0xF;
        const uint8_t q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
        ql[l + 0] = uint8_t(q1 | (q3 << 4));
        ql[l + 32] = uint8_t(q2 | (q4 << 4));
        qh[l] =
            uint8_t((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                    ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
      }
  }
}

void DequantizeQ6_K(const uint8_t* x, int64_t nb, float* y) {
  for (int64_t i = 0; i < nb; ++i, x += 210) {
    const float d = GetF16(x + 208);
    const uint8_t* ql = x;
    const uint8_t* qh = x + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(x + 192);
    for (int n = 0; n < 256; n += 128, y += 128, ql += 64, qh += 32, sc += 8)
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l + 0] = d * float(sc[is + 0]) * float(q1);
        y[l + 32] = d * float(sc[is + 2]) * float(q2);
        y[l + 64] = d * float(sc[is + 4]) * float(q3);
        y[l + 96] = d * float(sc[is + 6]) * float(q4);
      }
  }
}

}  // namespace

void CheckWholeBlocks(DType t, int64_t n, const char* what) {
  const int64_t b = DTypeBlock(t);
  DLLM_CHECK(n >= 0 && n % b == 0, what, ": ", n, " values of ", DTypeName(t),
             " are not whole blocks (", DTypeName(t), " packs ", b,
             " values per block; a row's length must be a multiple of ", b,
             ")");
}

void QuantizeRow(DType t, const float* x, int64_t n, void* dst) {
  DLLM_CHECK(IsQuantized(t), "QuantizeRow: ", DTypeName(t),
             " is not a block format");
  CheckWholeBlocks(t, n, "QuantizeRow");
  uint8_t* y = static_cast<uint8_t*>(dst);
  const int64_t nb = n / DTypeBlock(t);
  switch (t) {
    case DType::kQ8_0:
      return QuantizeQ8_0(x, nb, y);
    case DType::kQ4_0:
      return QuantizeQ4_0(x, nb, y);
    case DType::kQ4_K:
      return QuantizeQ4_K(x, nb, y);
    case DType::kQ6_K:
      return QuantizeQ6_K(x, nb, y);
    default:
      break;
  }
}

void DequantizeRow(DType t, const void* src, int64_t n, float* dst) {
  DLLM_CHECK(IsQuantized(t), "DequantizeRow: ", DTypeName(t),
             " is not a block format");
  CheckWholeBlocks(t, n, "DequantizeRow");
  const uint8_t* x = static_cast<const uint8_t*>(src);
  const int64_t nb = n / DTypeBlock(t);
  switch (t) {
    case DType::kQ8_0:
      return DequantizeQ8_0(x, nb, dst);
    case DType::kQ4_0:
      return DequantizeQ4_0(x, nb, dst);
    case DType::kQ4_K:
      return DequantizeQ4_K(x, nb, dst);
    case DType::kQ6_K:
      return DequantizeQ6_K(x, nb, dst);
    default:
      break;
  }
}

}  // namespace dllm::ops

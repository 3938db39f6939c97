// The portable kernel of the quantized matmul (quant_kernels.h): the
// activation quantizer every target matches byte for byte, and plain integer
// dot products per block, the twin the SIMD kernels are tested against.
#include <cmath>
#include <cstring>

#include "base/half.h"
#include "ops/cpu/quant_kernels.h"

namespace dllm::cpu::quant {

namespace {

inline float F16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return F16ToF32(h);
}

// Round to nearest even of |v| <= 127 through the float mantissa (what
// cvtps2dq does under the default rounding mode); v already clamped.
inline int8_t RoundToI8(float v) {
  float f = v + 12582912.f;
  int32_t i;
  std::memcpy(&i, &f, 4);
  return int8_t((i & 0x007fffff) - 0x00400000);
}

// The 8 six-bit scales and 8 mins of a Q4_K block from its 12 bytes.
inline void UnpackQ4KScales(const uint8_t* s, uint8_t* sc, uint8_t* m) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = s[j] & 63;
    m[j] = s[j + 4] & 63;
  }
  for (int j = 4; j < 8; ++j) {
    sc[j] = uint8_t((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
    m[j] = uint8_t((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

float DotQ8_0(const uint8_t* w, const Act& a, int64_t m) {
  const int8_t* q = a.Q(m);
  const float* d = a.D(m);
  float sum = 0;
  for (int64_t b = 0; b < a.K / 32; ++b, w += 34, q += 32) {
    int32_t s = 0;
    for (int i = 0; i < 32; ++i) s += int32_t(int8_t(w[2 + i])) * q[i];
    sum += F16(w) * d[b] * float(s);
  }
  return sum;
}

float DotQ4_0(const uint8_t* w, const Act& a, int64_t m) {
  const int8_t* q = a.Q(m);
  const float* d = a.D(m);
  float sum = 0;
  int8_t v[32];
  for (int64_t b = 0; b < a.K / 32; ++b, w += 18, q += 32) {
    for (int i = 0; i < 16; ++i) {
      v[i] = int8_t((w[2 + i] & 0xF) - 8);
      v[16 + i] = int8_t((w[2 + i] >> 4) - 8);
    }
    int32_t s = 0;
    for (int i = 0; i < 32; ++i) s += v[i] * q[i];
    sum += F16(w) * d[b] * float(s);
  }
  return sum;
}

// Q4_K: sum_j sc_j * (nib . q over sub-block j) and, for the mins,
// sum_j m_j * (the sub-block's sum of q, from the sums of 16).
float DotQ4_K(const uint8_t* w, const Act& a, int64_t m) {
  const int8_t* q = a.Q(m);
  const float* d = a.D(m);
  const int16_t* bs = a.BSums(m);
  float sum = 0;
  for (int64_t b = 0; b < a.K / 256; ++b, w += 144, q += 256, bs += 16) {
    uint8_t sc[8], mn[8];
    UnpackQ4KScales(w + 4, sc, mn);
    const uint8_t* nib = w + 16;
    int32_t sumi = 0, summ = 0;
    uint8_t v[32];
    for (int j = 0; j < 8; ++j) {
      const uint8_t* c = nib + 32 * (j / 2);
      const int shift = (j % 2) * 4;
      for (int i = 0; i < 32; ++i) v[i] = uint8_t((c[i] >> shift) & 0xF);
      int32_t s = 0;
      for (int i = 0; i < 32; ++i) s += v[i] * q[32 * j + i];
      sumi += sc[j] * s;
      summ += mn[j] * (bs[2 * j] + bs[2 * j + 1]);
    }
    sum += F16(w) * d[b] * float(sumi) - F16(w + 2) * d[b] * float(summ);
  }
  return sum;
}

// Q6_K: sum_j sc_j * (q6 . q - 32 * sum of q) over the 16 sub-blocks of 16.
float DotQ6_K(const uint8_t* w, const Act& a, int64_t m) {
  const int8_t* q = a.Q(m);
  const float* d = a.D(m);
  const int16_t* bs = a.BSums(m);
  float sum = 0;
  int8_t v[256];
  for (int64_t b = 0; b < a.K / 256; ++b, w += 210, q += 256, bs += 16) {
    const uint8_t* ql = w;
    const uint8_t* qh = w + 128;
    for (int h = 0; h < 2; ++h, ql += 64, qh += 32)
      for (int l = 0; l < 32; ++l) {
        int8_t* o = v + 128 * h + l;
        o[0] = int8_t((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4));
        o[32] = int8_t((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
        o[64] = int8_t((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
        o[96] = int8_t((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
      }
    const int8_t* sc = reinterpret_cast<const int8_t*>(w + 192);
    int32_t sumi = 0;
    for (int j = 0; j < 16; ++j) {
      int32_t s = 0;
      for (int i = 0; i < 16; ++i) s += v[16 * j + i] * q[16 * j + i];
      sumi += sc[j] * (s - 32 * bs[j]);
    }
    sum += F16(w + 208) * d[b] * float(sumi);
  }
  return sum;
}

void TileScalar(DType t, const Tile& tile) {
  float (*dot)(const uint8_t*, const Act&, int64_t) = nullptr;
  switch (t) {
    case DType::kQ8_0:
      dot = DotQ8_0;
      break;
    case DType::kQ4_0:
      dot = DotQ4_0;
      break;
    case DType::kQ4_K:
      dot = DotQ4_K;
      break;
    case DType::kQ6_K:
      dot = DotQ6_K;
      break;
    default:
      return;
  }
  for (int r = 0; r < tile.R; ++r)
    for (int c = 0; c < tile.C; ++c)
      tile.y[r * tile.ldy + c] =
          dot(tile.w + size_t(c) * tile.w_stride, *tile.act, tile.m0 + r);
}

TileShape ShapeScalar(DType) { return {1, 1, 1}; }

}  // namespace

void QuantizeActScalar(const float* x, const Act& a, int64_t m) {
  const int64_t K = a.K, B = a.B;
  int8_t* q = a.q + m * K;
  float* d = a.d + m * (K / B);
  for (int64_t b = 0; b < K / B; ++b, x += B, q += B) {
    float amax = 0;
    for (int64_t i = 0; i < B; ++i) amax = std::fmax(amax, std::fabs(x[i]));
    const float db = amax / 127.f;
    const float id = db != 0.0f ? 1.0f / db : 0.0f;
    d[b] = db;
    for (int64_t i = 0; i < B; ++i) {
      float v = x[i] * id;
      v = v < -127.f ? -127.f : v > 127.f ? 127.f : v;
      q[i] = RoundToI8(v);
    }
    if (B == 32) {
      float* d8 = a.d8 + m * (K / 4) + b * 8;
      for (int i = 0; i < 8; ++i) d8[i] = db;
      int32_t* corr = a.corr + m * (K / 4) + b * 8;
      for (int g = 0; g < 8; ++g)
        corr[g] = -a.corr_off *
                  (q[4 * g] + q[4 * g + 1] + q[4 * g + 2] + q[4 * g + 3]);
    } else {
      int16_t* bs = a.bsums + m * (K / 16) + b * 16;
      for (int j = 0; j < 16; ++j) {
        int s = 0;
        for (int i = 0; i < 16; ++i) s += q[16 * j + i];
        bs[j] = int16_t(s);
      }
    }
  }
}

const Kernel& ScalarKernel() {
  static const Kernel k{QuantTarget::kScalar, QuantizeActScalar, TileScalar,
                        ShapeScalar};
  return k;
}

}  // namespace dllm::cpu::quant

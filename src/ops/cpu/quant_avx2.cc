// The AVX2 kernel of the quantized matmul (quant_kernels.h): 32 values per
// 256-bit vector, maddubs (u8 x s8 pairs into i16) and madd (i16 pairs into
// i32). Q8_0's signed x signed products go through the sign trick, |w| x (a
// with w's sign), as ggml does; Q4_0's stored nibbles and the K types'
// values are unsigned already, their offsets (8, 32, the mins) removed with
// the activation's sums. Compiled with function-level target attributes, called
// only when the CPU has AVX2, FMA and F16C.
#include "ops/cpu/quant_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include <cstring>

#define QK_TARGET "avx2,fma,f16c"
#define QK_INLINE \
  static inline __attribute__((target(QK_TARGET), always_inline))
#define QK_FN __attribute__((target(QK_TARGET)))

namespace dllm::cpu::quant {
namespace {

QK_INLINE float F16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

QK_INLINE float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

QK_INLINE float HMax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Same bytes as QuantizeActScalar: max |x| (exact), d = amax / 127,
// q = round-to-even(clamp(x * (1 / d))).
QK_FN void QuantizeActImpl(const float* x, const Act& a, int64_t m) {
  const int64_t K = a.K, B = a.B;
  int8_t* q = a.q + m * K;
  float* d = a.d + m * (K / B);
  const __m256 sign = _mm256_set1_ps(-0.0f), lo = _mm256_set1_ps(-127.f),
               hi = _mm256_set1_ps(127.f);
  const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < K / B; ++b, x += B, q += B) {
    __m256 mx = _mm256_setzero_ps();
    for (int64_t i = 0; i < B; i += 8)
      mx = _mm256_max_ps(mx, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
    const float amax = HMax(mx);
    const float db = amax / 127.f;
    const float id = db != 0.0f ? 1.0f / db : 0.0f;
    d[b] = db;
    const __m256 vid = _mm256_set1_ps(id);
    for (int64_t i = 0; i < B; i += 32) {
      __m256i v[4];
      for (int j = 0; j < 4; ++j)
        v[j] = _mm256_cvtps_epi32(_mm256_min_ps(
            _mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * j), vid),
                          lo),
            hi));
      const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]),
                                           _mm256_packs_epi32(v[2], v[3]));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i),
                          _mm256_permutevar8x32_epi32(p, perm));
    }
    if (B == 32) {
      _mm256_storeu_ps(a.d8 + m * (K / 4) + b * 8, _mm256_set1_ps(db));
      // Sums of 4 (maddubs by ones, then madd by ones), times -corr_off.
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
      const __m256i s4 = _mm256_madd_epi16(
          _mm256_maddubs_epi16(_mm256_set1_epi8(1), v), _mm256_set1_epi16(1));
      _mm256_storeu_si256(
          reinterpret_cast<__m256i*>(a.corr + m * (K / 4) + b * 8),
          _mm256_mullo_epi32(s4, _mm256_set1_epi32(-a.corr_off)));
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

// ---- Q8_0 / Q4_0: one block of 32 per vector ------------------------------

// Q8_0: the int8 values; Q4_0: the stored nibbles (unsigned, 0..15).
template <DType T>
QK_INLINE __m256i LoadW32(const uint8_t* blk) {
  if constexpr (T == DType::kQ8_0) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
  } else {
    const __m128i x =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(x, 4), x),
                            _mm256_set1_epi8(0x0F));
  }
}

template <DType T, int R, int C>
QK_FN void TileQ32(const Tile& t) {
  constexpr size_t BB = T == DType::kQ8_0 ? 34 : 18;
  const int64_t nb = t.act->K / 32;
  const __m256i ones = _mm256_set1_epi16(1);
  const int8_t* aq[R];
  const float* ad[R];
  const int32_t* ac[R];
  for (int r = 0; r < R; ++r)
    aq[r] = t.act->Q(t.m0 + r), ad[r] = t.act->D(t.m0 + r),
    ac[r] = t.act->Corr(t.m0 + r);
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    if constexpr (C == 1) PrefetchDecodeAhead(t.w + size_t(b) * BB, BB);
    __m256i w[C], aw[C];
    float dw[C];
    for (int c = 0; c < C; ++c) {
      const uint8_t* blk = t.w + size_t(c) * t.w_stride + size_t(b) * BB;
      w[c] = LoadW32<T>(blk);
      if constexpr (T == DType::kQ8_0) aw[c] = _mm256_sign_epi8(w[c], w[c]);
      dw[c] = F16(blk);
    }
    for (int r = 0; r < R; ++r) {
      const __m256i a =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(aq[r] + 32 * b));
      const float da = ad[r][b];
      for (int c = 0; c < C; ++c) {
        __m256i s;
        if constexpr (T == DType::kQ8_0) {
          // The sign trick: |w| x (a with w's sign).
          s = _mm256_madd_epi16(
              _mm256_maddubs_epi16(aw[c], _mm256_sign_epi8(a, w[c])), ones);
        } else {
          // nibble x a, then corr = -8 * sums of 4 of a.
          s = _mm256_add_epi32(
              _mm256_madd_epi16(_mm256_maddubs_epi16(w[c], a), ones),
              _mm256_loadu_si256(
                  reinterpret_cast<const __m256i*>(ac[r] + 8 * b)));
        }
        acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s),
                                    _mm256_set1_ps(dw[c] * da), acc[r][c]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) t.y[r * t.ldy + c] = HSum(acc[r][c]);
}

// ---- Q4_K -----------------------------------------------------------------

// The 12 packed bytes of a Q4_K block's scales as 8 scale bytes then 8 min
// bytes (ggml's utmp shuffle).
QK_INLINE void UnpackQ4K(const uint8_t* s, uint32_t u[4]) {
  std::memcpy(u, s, 12);
  const uint32_t k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
  u[3] = ((u[2] >> 4) & k2) | (((u[1] >> 6) & k3) << 4);
  const uint32_t aux = u[1] & k1;
  u[1] = (u[2] & k2) | (((u[0] >> 6) & k3) << 4);
  u[2] = aux;
  u[0] &= k1;
}

template <int R, int C>
QK_FN void TileQ4K(const Tile& t) {
  const int64_t nsb = t.act->K / 256;
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  const int8_t* aq[R];
  const float* ad[R];
  const int16_t* ab[R];
  for (int r = 0; r < R; ++r)
    aq[r] = t.act->Q(t.m0 + r), ad[r] = t.act->D(t.m0 + r),
    ab[r] = t.act->BSums(t.m0 + r);
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  for (int64_t sb = 0; sb < nsb; ++sb) {
    if constexpr (C == 1) PrefetchDecodeAhead(t.w + size_t(sb) * 144, 144);
    const uint8_t* blk[C];
    float dd[C], dm[C];
    uint32_t u[C][4];
    __m256i mdup[C];
    for (int c = 0; c < C; ++c) {
      blk[c] = t.w + size_t(c) * t.w_stride + size_t(sb) * 144;
      dd[c] = F16(blk[c]);
      dm[c] = F16(blk[c] + 2);
      UnpackQ4K(blk[c] + 4, u[c]);
      const __m256i m32 =
          _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(
              reinterpret_cast<uint8_t*>(u[c]) + 8)));
      mdup[c] = _mm256_or_si256(m32, _mm256_slli_epi32(m32, 16));
    }
    __m256i sumi[R][C];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) sumi[r][c] = _mm256_setzero_si256();
    for (int j = 0; j < 8; ++j) {
      __m256i wq[C], sv[C];
      for (int c = 0; c < C; ++c) {
        const __m256i y = _mm256_loadu_si256(
            reinterpret_cast<const __m256i*>(blk[c] + 16 + 32 * (j / 2)));
        wq[c] = (j & 1) ? _mm256_and_si256(_mm256_srli_epi16(y, 4), m4)
                        : _mm256_and_si256(y, m4);
        sv[c] = _mm256_set1_epi16(reinterpret_cast<const uint8_t*>(u[c])[j]);
      }
      for (int r = 0; r < R; ++r) {
        const __m256i a = _mm256_loadu_si256(
            reinterpret_cast<const __m256i*>(aq[r] + 256 * sb + 32 * j));
        for (int c = 0; c < C; ++c)
          sumi[r][c] = _mm256_add_epi32(
              sumi[r][c],
              _mm256_madd_epi16(_mm256_maddubs_epi16(wq[c], a), sv[c]));
      }
    }
    for (int r = 0; r < R; ++r) {
      const float da = ad[r][sb];
      const __m256i bs =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab[r] + 16 * sb));
      for (int c = 0; c < C; ++c) {
        const __m256i summ = _mm256_madd_epi16(bs, mdup[c]);
        acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[r][c]),
                                    _mm256_set1_ps(dd[c] * da), acc[r][c]);
        acc[r][c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(summ),
                                     _mm256_set1_ps(dm[c] * da), acc[r][c]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) t.y[r * t.ldy + c] = HSum(acc[r][c]);
}

// ---- Q6_K -----------------------------------------------------------------

template <int R, int C>
QK_FN void TileQ6K(const Tile& t) {
  const int64_t nsb = t.act->K / 256;
  const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
  const int8_t* aq[R];
  const float* ad[R];
  const int16_t* ab[R];
  for (int r = 0; r < R; ++r)
    aq[r] = t.act->Q(t.m0 + r), ad[r] = t.act->D(t.m0 + r),
    ab[r] = t.act->BSums(t.m0 + r);
  __m256 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  for (int64_t sb = 0; sb < nsb; ++sb) {
    if constexpr (C == 1) PrefetchDecodeAhead(t.w + size_t(sb) * 210, 210);
    const uint8_t* blk[C];
    const int8_t* sc[C];
    float dd[C];
    for (int c = 0; c < C; ++c) {
      blk[c] = t.w + size_t(c) * t.w_stride + size_t(sb) * 210;
      sc[c] = reinterpret_cast<const int8_t*>(blk[c] + 192);
      dd[c] = F16(blk[c] + 208);
    }
    __m256i sumi[R][C];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c) sumi[r][c] = _mm256_setzero_si256();
    // Vector i of half h holds values 128 h + 32 i ...: the low (i < 2) or
    // high nibbles of ql[64 h + 32 (i & 1) ...] and bits 2i, 2i+1 of qh.
    for (int h = 0; h < 2; ++h)
      for (int i = 0; i < 4; ++i) {
        __m256i wq[C], sv[C];
        for (int c = 0; c < C; ++c) {
          const __m256i ql = _mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(blk[c] + 64 * h + 32 * (i & 1)));
          const __m256i qh = _mm256_loadu_si256(
              reinterpret_cast<const __m256i*>(blk[c] + 128 + 32 * h));
          const __m256i low =
              i < 2 ? _mm256_and_si256(ql, m4)
                    : _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4);
          const __m256i high = _mm256_and_si256(
              _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * i)), m3);
          wq[c] = _mm256_or_si256(low, _mm256_slli_epi16(high, 4));
          const int k = 8 * h + 2 * i;  // the vector's two sub-blocks of 16
          sv[c] = _mm256_set_m128i(_mm_set1_epi16(sc[c][k + 1]),
                                   _mm_set1_epi16(sc[c][k]));
        }
        for (int r = 0; r < R; ++r) {
          const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
              aq[r] + 256 * sb + 128 * h + 32 * i));
          for (int c = 0; c < C; ++c)
            sumi[r][c] = _mm256_add_epi32(
                sumi[r][c],
                _mm256_madd_epi16(_mm256_maddubs_epi16(wq[c], a), sv[c]));
        }
      }
    for (int r = 0; r < R; ++r) {
      const float da = ad[r][sb];
      const __m256i bs =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab[r] + 16 * sb));
      for (int c = 0; c < C; ++c) {
        const __m256i sc16 = _mm256_cvtepi8_epi16(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(sc[c])));
        const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(sc16, bs), 5);
        acc[r][c] = _mm256_fmadd_ps(
            _mm256_cvtepi32_ps(_mm256_sub_epi32(sumi[r][c], corr)),
            _mm256_set1_ps(dd[c] * da), acc[r][c]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) t.y[r * t.ldy + c] = HSum(acc[r][c]);
}

// ---- Dispatch ---------------------------------------------------------------

constexpr TileShape kShapeQ32{4, 2, 1};
constexpr TileShape kShapeK{2, 2, 1};

template <int R, int C>
QK_FN void TileQ8_0(const Tile& t) {
  TileQ32<DType::kQ8_0, R, C>(t);
}
template <int R, int C>
QK_FN void TileQ4_0(const Tile& t) {
  TileQ32<DType::kQ4_0, R, C>(t);
}

#define QK_DISPATCH(FN, SH)                                              \
  do {                                                                   \
    if (tile.R == SH.rows && tile.C == SH.cols)                          \
      return FN<SH.rows, SH.cols>(tile);                                 \
    if (tile.R == SH.rows && tile.C == 1) return FN<SH.rows, 1>(tile);   \
    if (tile.R == 1 && tile.C == SH.cols1) return FN<1, SH.cols1>(tile); \
    for (int r = 0; r < tile.R; ++r)                                     \
      for (int c = 0; c < tile.C; ++c) {                                 \
        Tile one = tile;                                                 \
        one.w = tile.w + size_t(c) * tile.w_stride;                      \
        one.m0 = tile.m0 + r, one.R = 1, one.C = 1;                      \
        one.y = tile.y + r * tile.ldy + c;                               \
        FN<1, 1>(one);                                                   \
      }                                                                  \
    return;                                                              \
  } while (0)

void TileAvx2(DType t, const Tile& tile) {
  switch (t) {
    case DType::kQ8_0:
      QK_DISPATCH(TileQ8_0, kShapeQ32);
    case DType::kQ4_0:
      QK_DISPATCH(TileQ4_0, kShapeQ32);
    case DType::kQ4_K:
      QK_DISPATCH(TileQ4K, kShapeK);
    case DType::kQ6_K:
      QK_DISPATCH(TileQ6K, kShapeK);
    default:
      return;
  }
}

TileShape ShapeAvx2(DType t) {
  return DTypeBlock(t) == 256 ? kShapeK : kShapeQ32;
}

}  // namespace

void QuantizeActAvx2(const float* x, const Act& a, int64_t m) {
  QuantizeActImpl(x, a, m);
}

const Kernel& Avx2Kernel() {
  static const Kernel k{QuantTarget::kAvx2, QuantizeActAvx2, TileAvx2,
                        ShapeAvx2};
  return k;
}

}  // namespace dllm::cpu::quant

#endif  // x86

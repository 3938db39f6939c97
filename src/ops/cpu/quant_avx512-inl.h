// The AVX-512 kernels of the quantized matmul (quant_kernels.h), 64 values
// per 512-bit vector. Included twice, by quant_avx512.cc (QK_VNNI 0:
// AVX-512 F/BW/VL, maddubs + madd) and quant_avx512vnni.cc (QK_VNNI 1:
// vpdpbusd / vpdpwssd), each defining QK_TARGET (the target attribute), QK_VNNI
// and QK_NAME (the namespace) first. No include guard, on purpose.
//
// Q8_0 / Q4_0 (two blocks of 32 per vector):
//   VNNI: vpdpbusd multiplies unsigned by signed bytes, so the weights go in
//   unsigned (Q8_0: w + 128, a flip of the top bit; Q4_0: its stored
//   nibbles, w + 8) against the signed activation, starting from the
//   activation's corr = -offset * (sums of 4 values), computed once per row
//   and shared by every weight row: the i32 lanes are the exact a . w.
//   BW: Q8_0 through the sign trick, |w| x (a negated where w < 0), maddubs
//   then madd; Q4_0 as nibble x a (maddubs cannot overflow: 15 * 127 * 2)
//   plus corr.
//   A block's scale product multiplies its 8 lanes (d8 holds the activation
//   scales 8 times, so a vector of 16 covers both blocks).
// Q4_K / Q6_K (super-blocks of 256, unsigned 4/6-bit values x signed a):
//   maddubs gives i16 pair sums, which vpdpwssd (VNNI) or madd + add (BW)
//   multiplies by the sub-block scales into i32; the mins (Q4_K) and the
//   -32 offset (Q6_K) come from the activation's sums of 16 times the
//   scales; one fp32 multiply-add per super-block.

#include "ops/cpu/quant_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() as the unused merge
// source, which -Wuninitialized flags once inlined here: not our bug.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstring>

#define QK_INLINE \
  static inline __attribute__((target(QK_TARGET), always_inline))
#define QK_FN __attribute__((target(QK_TARGET)))

namespace dllm::cpu::quant {
namespace QK_NAME {
namespace {

QK_INLINE float F16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

QK_INLINE __m512i Zext(__m256i v) {
  return _mm512_inserti64x4(_mm512_setzero_si512(), v, 0);
}

QK_INLINE float HSum(__m512 v) {
  const __m512 t = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E));
  const __m256 h = _mm512_castps512_ps256(t);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// {a x 8, b x 8}
QK_INLINE __m512 Splat2(float a, float b) {
  return _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(a), _mm512_set1_ps(b));
}

// acc + (i16 pairs of p) * (i16 pairs of s), summed into i32 lanes.
QK_INLINE __m512i DotI16(__m512i acc, __m512i p, __m512i s) {
#if QK_VNNI
  return _mm512_dpwssd_epi32(acc, p, s);
#else
  return _mm512_add_epi32(acc, _mm512_madd_epi16(p, s));
#endif
}

// ---- Q8_0 / Q4_0 ------------------------------------------------------------

// Two weight blocks (the second absent at an odd tail: zeros).
struct WQ32 {
  __m512i u;      // the operand of the integer dot (see MacQ32)
  __mmask64 neg;  // BW Q8_0: lanes where w < 0
  __m512 dw;      // scales, 8 lanes per block
};

// Both blocks' fp16 scales to {d0 x 8, d1 x 8}.
template <bool kTwo>
QK_INLINE __m512 Scales2(const uint8_t* blk, size_t bb) {
  uint16_t h0, h1 = 0;
  std::memcpy(&h0, blk, 2);
  if (kTwo) std::memcpy(&h1, blk + bb, 2);
  const __m128 f = _mm_cvtph_ps(_mm_insert_epi16(_mm_cvtsi32_si128(h0), h1, 1));
  const __m512i idx =
      _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(f));
}

// Q8_0: u = w + 128 (VNNI: unsigned, the activation's corr removes the 128
// again) or |w| with the sign mask (BW). Q4_0: u = the stored nibbles
// (unsigned; corr removes the 8).
template <DType T, bool kTwo>
QK_INLINE void DecodeQ32(const uint8_t* blk, WQ32* o) {
  constexpr size_t BB = T == DType::kQ8_0 ? 34 : 18;
  if constexpr (T == DType::kQ8_0) {
    const __m256i lo =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    const __m256i hi =
        kTwo
            ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + BB + 2))
            : _mm256_setzero_si256();
    const __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
#if QK_VNNI
    o->u = _mm512_xor_si512(w, _mm512_set1_epi8(char(0x80)));
    o->neg = 0;
#else
    o->u = _mm512_abs_epi8(w);
    o->neg = _mm512_movepi8_mask(w);
#endif
  } else {
    const __m128i x0 =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    const __m128i x1 =
        kTwo ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + BB + 2))
             : _mm_setzero_si128();
    const __m256i y =
        _mm256_inserti128_si256(_mm256_castsi128_si256(x0), x1, 1);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i lo = _mm256_and_si256(y, m4);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(y, 4), m4);
    // {block 0 low nibbles, its high nibbles, block 1 low, high}.
    const __m512i idx = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
    o->u = _mm512_permutex2var_epi64(_mm512_castsi256_si512(lo), idx,
                                     _mm512_castsi256_si512(hi));
    o->neg = 0;
  }
  o->dw = Scales2<kTwo>(blk, BB);
}

// One row of activations for a step of two blocks.
struct AQ32 {
  __m512i a;     // int8
  __m512i corr;  // -corr_off * sums of 4
  __m512 da;     // scales, 8 lanes per block
};

template <bool kTwo>
QK_INLINE void LoadAQ32(const Act& act, int64_t m, int64_t b, AQ32* o) {
  const int8_t* q = act.Q(m) + 32 * b;
  const float* d8 = act.D8(m) + 8 * b;
  const int32_t* corr = act.Corr(m) + 8 * b;
  if (kTwo) {
    o->a = _mm512_loadu_si512(q);
    o->corr = _mm512_loadu_si512(corr);
    o->da = _mm512_loadu_ps(d8);
  } else {
    o->a = _mm512_maskz_loadu_epi8(0xFFFFFFFFull, q);
    o->corr = _mm512_maskz_loadu_epi32(0x00FF, corr);
    o->da = _mm512_maskz_loadu_ps(0x00FF, d8);
  }
}

// The exact i32 dot products of 4 values per lane, times the two scales,
// added to acc.
template <DType T>
QK_INLINE __m512 MacQ32(__m512 acc, const WQ32& w, const AQ32& a) {
#if QK_VNNI
  const __m512i s = _mm512_dpbusd_epi32(a.corr, w.u, a.a);
#else
  const __m512i ones = _mm512_set1_epi16(1);
  __m512i s;
  if constexpr (T == DType::kQ8_0) {
    const __m512i sa =
        _mm512_mask_sub_epi8(a.a, w.neg, _mm512_setzero_si512(), a.a);
    s = _mm512_madd_epi16(_mm512_maddubs_epi16(w.u, sa), ones);
  } else {
    s = _mm512_add_epi32(
        _mm512_madd_epi16(_mm512_maddubs_epi16(w.u, a.a), ones), a.corr);
  }
#endif
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(w.dw, a.da), acc);
}

// Accumulators per output: two when a tile has one output, so that the
// fma chain of one does not wait on the other.
template <int R, int C>
constexpr int kAccs = R* C == 1 ? 2 : 1;

template <DType T, int R, int C, bool kTwo>
QK_INLINE void StepQ32(const Tile& t, int64_t b, int j,
                       __m512 (&acc)[R][C][kAccs<R, C>]) {
  constexpr size_t BB = T == DType::kQ8_0 ? 34 : 18;
  if constexpr (C == 1) PrefetchDecodeAhead(t.w + size_t(b) * BB, 2 * BB);
  WQ32 w[C];
  for (int c = 0; c < C; ++c)
    DecodeQ32<T, kTwo>(t.w + size_t(c) * t.w_stride + size_t(b) * BB, &w[c]);
  for (int r = 0; r < R; ++r) {
    AQ32 a;
    LoadAQ32<kTwo>(*t.act, t.m0 + r, b, &a);
    for (int c = 0; c < C; ++c) acc[r][c][j] = MacQ32<T>(acc[r][c][j], w[c], a);
  }
}

template <DType T, int R, int C>
QK_FN void TileQ32(const Tile& t) {
  constexpr int NA = kAccs<R, C>;
  const int64_t nb = t.act->K / 32;
  __m512 acc[R][C][NA];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c)
      for (int j = 0; j < NA; ++j) acc[r][c][j] = _mm512_setzero_ps();
  int64_t b = 0;
  if constexpr (NA == 2) {
    for (; b + 4 <= nb; b += 4) {
      StepQ32<T, R, C, true>(t, b, 0, acc);
      StepQ32<T, R, C, true>(t, b + 2, 1, acc);
    }
  }
  for (; b + 2 <= nb; b += 2) StepQ32<T, R, C, true>(t, b, 0, acc);
  if (b < nb) StepQ32<T, R, C, false>(t, b, 0, acc);
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) {
      __m512 v = acc[r][c][0];
      for (int j = 1; j < NA; ++j) v = _mm512_add_ps(v, acc[r][c][j]);
      t.y[r * t.ldy + c] = HSum(v);
    }
}

// ---- Q4_K -------------------------------------------------------------------

// i16 lane i of a vector of values 64 s ... 64 s + 63 (after maddubs) lies
// in Q4_K sub-block 2 s + i / 16, Q6_K sub-block 4 s + i / 8.
struct ScaleIndex {
  alignas(64) int16_t q4k[4][32] = {};
  alignas(64) int16_t q6k[4][32] = {};
  constexpr ScaleIndex() {
    for (int s = 0; s < 4; ++s)
      for (int i = 0; i < 32; ++i) {
        q4k[s][i] = int16_t(2 * s + i / 16);
        q6k[s][i] = int16_t(4 * s + i / 8);
      }
  }
};
constexpr ScaleIndex kScaleIndex;

// The 12 packed bytes of a Q4_K block's scales as 8 scale bytes then 8 min
// bytes (ggml's utmp shuffle).
QK_INLINE __m128i UnpackQ4K(const uint8_t* s) {
  uint32_t u[4];
  std::memcpy(u, s, 12);
  const uint32_t k1 = 0x3f3f3f3f, k2 = 0x0f0f0f0f, k3 = 0x03030303;
  u[3] = ((u[2] >> 4) & k2) | (((u[1] >> 6) & k3) << 4);
  const uint32_t aux = u[1] & k1;
  u[1] = (u[2] & k2) | (((u[0] >> 6) & k3) << 4);
  u[2] = aux;
  u[0] &= k1;
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(u));
}

// Integer accumulators per output: more when a tile has few outputs, so
// that vpdpwssd's accumulate chains overlap.
template <int R, int C>
constexpr int kIntAccs = R* C == 1   ? 4
                         : R* C == 2 ? 2
                                     : 1;

template <int R, int C>
QK_FN void TileQ4K(const Tile& t) {
  constexpr int NI = kIntAccs<R, C>;
  const int64_t nsb = t.act->K / 256;
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  __m512i idx[4];
  for (int s = 0; s < 4; ++s) idx[s] = _mm512_load_si512(kScaleIndex.q4k[s]);
  const int8_t* aq[R];
  const float* ad[R];
  const int16_t* ab[R];
  for (int r = 0; r < R; ++r)
    aq[r] = t.act->Q(t.m0 + r), ad[r] = t.act->D(t.m0 + r),
    ab[r] = t.act->BSums(t.m0 + r);
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t sb = 0; sb < nsb; ++sb) {
    if constexpr (C == 1) PrefetchDecodeAhead(t.w + size_t(sb) * 144, 144);
    const uint8_t* blk[C];
    float dd[C], dm[C];
    __m512i scz[C];
    __m256i mdup[C];
    for (int c = 0; c < C; ++c) {
      blk[c] = t.w + size_t(c) * t.w_stride + size_t(sb) * 144;
      dd[c] = F16(blk[c]);
      dm[c] = F16(blk[c] + 2);
      const __m128i sm = UnpackQ4K(blk[c] + 4);
      scz[c] = Zext(_mm256_cvtepu8_epi16(sm));  // lanes 0-7: the scales
      const __m256i m32 = _mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8));
      mdup[c] = _mm256_or_si256(m32, _mm256_slli_epi32(m32, 16));
    }
    __m512i sumi[R][C][NI];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c)
        for (int j = 0; j < NI; ++j) sumi[r][c][j] = _mm512_setzero_si512();
    for (int s = 0; s < 4; ++s) {
      __m512i wq[C], sv[C];
      for (int c = 0; c < C; ++c) {
        const __m256i y = _mm256_loadu_si256(
            reinterpret_cast<const __m256i*>(blk[c] + 16 + 32 * s));
        wq[c] = _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_and_si256(y, m4)),
            _mm256_and_si256(_mm256_srli_epi16(y, 4), m4), 1);
        sv[c] = _mm512_permutexvar_epi16(idx[s], scz[c]);
      }
      for (int r = 0; r < R; ++r) {
        const __m512i a = _mm512_loadu_si512(aq[r] + 256 * sb + 64 * s);
        for (int c = 0; c < C; ++c)
          sumi[r][c][s % NI] =
              DotI16(sumi[r][c][s % NI], _mm512_maddubs_epi16(wq[c], a), sv[c]);
      }
    }
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c)
        for (int j = 1; j < NI; ++j)
          sumi[r][c][0] = _mm512_add_epi32(sumi[r][c][0], sumi[r][c][j]);
    for (int r = 0; r < R; ++r) {
      const float da = ad[r][sb];
      const __m256i bs =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab[r] + 16 * sb));
      for (int c = 0; c < C; ++c) {
        const __m256i summ = _mm256_madd_epi16(bs, mdup[c]);
        acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi[r][c][0]),
                                    _mm512_set1_ps(dd[c] * da), acc[r][c]);
        acc[r][c] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(Zext(summ)),
                                     _mm512_set1_ps(dm[c] * da), acc[r][c]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) t.y[r * t.ldy + c] = HSum(acc[r][c]);
}

// ---- Q6_K -------------------------------------------------------------------

template <int R, int C>
QK_FN void TileQ6K(const Tile& t) {
  constexpr int NI = kIntAccs<R, C>;
  const int64_t nsb = t.act->K / 256;
  const __m512i m4 = _mm512_set1_epi8(0x0F), m3 = _mm512_set1_epi8(3);
  __m512i idx[4];
  for (int s = 0; s < 4; ++s) idx[s] = _mm512_load_si512(kScaleIndex.q6k[s]);
  const int8_t* aq[R];
  const float* ad[R];
  const int16_t* ab[R];
  for (int r = 0; r < R; ++r)
    aq[r] = t.act->Q(t.m0 + r), ad[r] = t.act->D(t.m0 + r),
    ab[r] = t.act->BSums(t.m0 + r);
  __m512 acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  for (int64_t sb = 0; sb < nsb; ++sb) {
    if constexpr (C == 1) PrefetchDecodeAhead(t.w + size_t(sb) * 210, 210);
    const uint8_t* blk[C];
    float dd[C];
    __m256i sc16[C];
    for (int c = 0; c < C; ++c) {
      blk[c] = t.w + size_t(c) * t.w_stride + size_t(sb) * 210;
      dd[c] = F16(blk[c] + 208);
      sc16[c] = _mm256_cvtepi8_epi16(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[c] + 192)));
    }
    __m512i sumi[R][C][NI];
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c)
        for (int j = 0; j < NI; ++j) sumi[r][c][j] = _mm512_setzero_si512();
    // Half h (values 128 h ...): ql[64 h ...] low nibbles with qh bits 0-1
    // (first 32) and 2-3 (next 32) are values 0-63 of the half, the high
    // nibbles with bits 4-5 and 6-7 values 64-127.
    for (int h = 0; h < 2; ++h) {
      __m512i lo[C], hi[C], s0[C], s1[C];
      for (int c = 0; c < C; ++c) {
        const __m512i ql = _mm512_loadu_si512(blk[c] + 64 * h);
        const __m256i qh = _mm256_loadu_si256(
            reinterpret_cast<const __m256i*>(blk[c] + 128 + 32 * h));
        const __m512i qhz = _mm512_inserti64x4(_mm512_castsi256_si512(qh),
                                               _mm256_srli_epi16(qh, 2), 1);
        lo[c] =
            _mm512_or_si512(_mm512_and_si512(ql, m4),
                            _mm512_slli_epi16(_mm512_and_si512(qhz, m3), 4));
        hi[c] = _mm512_or_si512(
            _mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
            _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qhz, 4), m3),
                              4));
        const __m512i scz = Zext(sc16[c]);
        s0[c] = _mm512_permutexvar_epi16(idx[2 * h], scz);
        s1[c] = _mm512_permutexvar_epi16(idx[2 * h + 1], scz);
      }
      for (int r = 0; r < R; ++r) {
        const int8_t* a = aq[r] + 256 * sb + 128 * h;
        const __m512i a0 = _mm512_loadu_si512(a),
                      a1 = _mm512_loadu_si512(a + 64);
        for (int c = 0; c < C; ++c) {
          __m512i& s0i = sumi[r][c][(2 * h) % NI];
          s0i = DotI16(s0i, _mm512_maddubs_epi16(lo[c], a0), s0[c]);
          __m512i& s1i = sumi[r][c][(2 * h + 1) % NI];
          s1i = DotI16(s1i, _mm512_maddubs_epi16(hi[c], a1), s1[c]);
        }
      }
    }
    for (int r = 0; r < R; ++r)
      for (int c = 0; c < C; ++c)
        for (int j = 1; j < NI; ++j)
          sumi[r][c][0] = _mm512_add_epi32(sumi[r][c][0], sumi[r][c][j]);
    for (int r = 0; r < R; ++r) {
      const float da = ad[r][sb];
      const __m256i bs =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ab[r] + 16 * sb));
      for (int c = 0; c < C; ++c) {
        const __m256i corr =
            _mm256_slli_epi32(_mm256_madd_epi16(sc16[c], bs), 5);
        acc[r][c] = _mm512_fmadd_ps(
            _mm512_cvtepi32_ps(_mm512_sub_epi32(sumi[r][c][0], Zext(corr))),
            _mm512_set1_ps(dd[c] * da), acc[r][c]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) t.y[r * t.ldy + c] = HSum(acc[r][c]);
}

// ---- Dispatch ---------------------------------------------------------------

constexpr TileShape kShapeQ32{4, 4, 1};
constexpr TileShape kShapeQ4K{3, 3, 1};
constexpr TileShape kShapeQ6K{3, 2, 1};

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

void TileAll(DType t, const Tile& tile) {
  switch (t) {
    case DType::kQ8_0:
      QK_DISPATCH(TileQ8_0, kShapeQ32);
    case DType::kQ4_0:
      QK_DISPATCH(TileQ4_0, kShapeQ32);
    case DType::kQ4_K:
      QK_DISPATCH(TileQ4K, kShapeQ4K);
    case DType::kQ6_K:
      QK_DISPATCH(TileQ6K, kShapeQ6K);
    default:
      return;
  }
}

#undef QK_DISPATCH

TileShape Shape(DType t) {
  switch (t) {
    case DType::kQ4_K:
      return kShapeQ4K;
    case DType::kQ6_K:
      return kShapeQ6K;
    default:
      return kShapeQ32;
  }
}

}  // namespace
}  // namespace QK_NAME
}  // namespace dllm::cpu::quant

#undef QK_INLINE
#undef QK_FN

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif  // x86

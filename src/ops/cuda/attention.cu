// Softmax attention of the CUDA backend, flash style, all fp32.
//
// A block (4 warps) takes kBQ = 16 queries of one head of one sequence (4 per
// warp) and walks the keys they can see in tiles of kBK = 32, held in shared
// memory with the values. For each tile and query, lane j computes the score
// of key j in full (a dot over head_dim from shared memory: no shuffles),
// then the warp updates the query's running max m, normaliser l and output
// accumulator (lane owns dims lane, lane + 32, ...) the online-softmax way:
// acc = acc * e^(m_old - m_new) + sum_j e^(s_j - m_new) v_j.
//
// When there are too few (query block, head, sequence) triples to fill the
// GPU (a block of 32 queries against a long cache), the key range is split
// into S parts run by different blocks, which write (m, l, acc) partials;
// a second kernel merges them (flash-decoding).
//
// Masks: AttentionShape's VisibleBegin/VisibleEnd/Visible are host-only
// member functions, so the same logic is written again below as __device__
// functions (kept line for line with ops/ops.h).
#include <cmath>

#include "ops/cuda/cuda_common.cuh"

namespace dllm::ops::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kQPW = 4;             // queries per warp
constexpr int kBQ = kWarps * kQPW;  // queries per block
constexpr int kBK = 32;             // keys per tile: one per lane
constexpr int kMaxHeadDim = 256;

// ops.h AttentionShape::VisibleBegin / VisibleEnd / Visible, on the device.
__device__ int64_t VisibleBegin(const AttentionShape& s, int64_t p) {
  if (s.bd_half <= 0) return 0;
  return p < s.bd_half ? p / s.block * s.block : s.bd_half;
}
__device__ int64_t VisibleEnd(const AttentionShape& s, int64_t p) {
  if (s.bd_half > 0) {
    const int64_t H = s.bd_half;
    if (p >= H) return H + min(((p - H) / s.block + 1) * s.block, H);
    const int64_t b = p / s.block;
    return b > 0 ? H + b * s.block : min(s.block, H);
  }
  int64_t end = s.Tk > 0 ? s.Tk : s.T;
  if (s.causal && p + 1 < end) end = p + 1;
  if (s.block > 0 && (p / s.block + 1) * s.block < end)
    end = (p / s.block + 1) * s.block;
  return end;
}
// Only called for bd_half > 0 (otherwise visible = inside [begin, end)).
__device__ bool VisibleBd(const AttentionShape& s, int64_t p, int64_t j) {
  const int64_t H = s.bd_half;
  if (p >= H) return j >= H && (j - H) / s.block <= (p - H) / s.block;
  return j < H ? j / s.block == p / s.block : (j - H) / s.block < p / s.block;
}

// DC = dims per lane (head_dim <= 32 * DC). n_split > 1: this block does key
// part blockIdx.x % n_split and writes partials (m, l) to part_ml and the
// unnormalised accumulator to part_acc, indexed ((b*T + i)*H + h)*S + s.
template <int DC>
__global__ void __launch_bounds__(kWarps * 32)
    AttentionKernel(const float* __restrict__ q, const float* __restrict__ k,
                    const float* __restrict__ v, AttentionShape s,
                    const uint8_t* __restrict__ key_mask,
                    float* __restrict__ out, int n_split,
                    float* __restrict__ part_ml, float* __restrict__ part_acc) {
  extern __shared__ __align__(16) float smem[];
  const int hd = int(s.head_dim);
  const int ld = hd + 1;      // odd for even head_dim: lane-per-key reads of ks
                              // hit 32 different banks
  float* qs = smem;           // (kBQ, hd), pre-scaled
  float* ks = qs + kBQ * hd;  // (kBK, ld)
  float* vs = ks + kBK * ld;  // (kBK, ld)
  float* ms = vs + kBK * ld;  // (kBK): key_mask of the tile
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t T = s.T, Tk = s.Tk > 0 ? s.Tk : s.T;
  const int64_t H = s.n_heads, group = s.n_heads / s.n_kv_heads;
  const int64_t b = blockIdx.z, h = blockIdx.y;
  const int64_t i0 = int64_t(blockIdx.x / n_split) * kBQ;
  const int split = int(blockIdx.x % n_split);
  const int64_t kh = h / group;
  const int64_t qstride = H * hd, kvstride = s.n_kv_heads * hd;
  const float scale = 1.0f / sqrtf(float(hd));

  for (int idx = threadIdx.x; idx < kBQ * hd; idx += blockDim.x) {
    const int qi = idx / hd, d = idx % hd;
    const int64_t i = i0 + qi;
    qs[idx] = i < T ? q[(b * T + i) * qstride + h * hd + d] * scale : 0.0f;
  }
  // Keys any query of the block sees, then this split's part of them.
  int64_t jb = Tk, je = 0;
  for (int qi = 0; qi < kBQ && i0 + qi < T; ++qi) {
    const int64_t p = s.q_offset + i0 + qi;
    jb = min(jb, VisibleBegin(s, p));
    je = max(je, min(VisibleEnd(s, p), Tk));
  }
  if (n_split > 1 && je > jb) {
    const int64_t tiles = (je - jb + kBK - 1) / kBK;
    const int64_t per = (tiles + n_split - 1) / n_split;
    const int64_t nb = jb + split * per * kBK;
    je = min(je, nb + per * kBK);
    jb = nb;
  }

  // This warp's queries.
  int64_t vb[kQPW], ve[kQPW], pos[kQPW];
  bool live[kQPW];
  float m[kQPW], l[kQPW], acc[kQPW][DC];
#pragma unroll
  for (int r = 0; r < kQPW; ++r) {
    const int64_t i = i0 + warp * kQPW + r;
    live[r] = i < T;
    pos[r] = s.q_offset + i;
    vb[r] = live[r] ? VisibleBegin(s, pos[r]) : 0;
    ve[r] = live[r] ? min(VisibleEnd(s, pos[r]), Tk) : 0;
    m[r] = -INFINITY, l[r] = 0.0f;
#pragma unroll
    for (int c = 0; c < DC; ++c) acc[r][c] = 0.0f;
  }

  for (int64_t j0 = jb; j0 < je; j0 += kBK) {
    __syncthreads();  // the previous tile has been used (and qs written)
    for (int idx = threadIdx.x; idx < kBK * hd; idx += blockDim.x) {
      const int jj = idx / hd, d = idx % hd;
      const int64_t j = j0 + jj;
      // Keys the mask hides are never read (their v is multiplied by 0 in
      // the shared p v loop below, so it must not be garbage).
      const bool in = j < je && (!key_mask || key_mask[b * Tk + j]);
      const size_t off = size_t((b * Tk + j) * kvstride + kh * hd + d);
      ks[jj * ld + d] = in ? k[off] : 0.0f;
      vs[jj * ld + d] = in ? v[off] : 0.0f;
    }
    if (threadIdx.x < kBK) {
      const int64_t j = j0 + threadIdx.x;
      ms[threadIdx.x] =
          (j < je && (!key_mask || key_mask[b * Tk + j])) ? 1.0f : 0.0f;
    }
    __syncthreads();
    // A warp past the last query has nothing to do (live[0] is false only
    // when all its queries are); it still meets every barrier.
    if (!live[0]) continue;
    const int64_t j = j0 + lane;
    // Scores of this lane's key against all of the warp's queries in one
    // pass, so each k value read from shared memory serves kQPW queries (and
    // q is read 4 values at a time, a broadcast, when head_dim % 4 == 0):
    // with a loop per query, shared-memory traffic made this kernel the
    // slowest part of a cached-prefix forward.
    bool vis[kQPW];
    float sc[kQPW];
#pragma unroll
    for (int r = 0; r < kQPW; ++r) {
      vis[r] = live[r] && ms[lane] != 0.0f && j >= vb[r] && j < ve[r];
      if (vis[r] && s.bd_half > 0) vis[r] = VisibleBd(s, pos[r], j);
      sc[r] = 0.0f;
    }
    {
      const float* qw = qs + warp * kQPW * hd;  // the warp's kQPW rows of q
      const float* kr = ks + lane * ld;
      if ((hd & 3) == 0) {  // q rows 16-byte aligned
        for (int d = 0; d < hd; d += 4) {
          const float k0 = kr[d], k1 = kr[d + 1], k2 = kr[d + 2],
                      k3 = kr[d + 3];
#pragma unroll
          for (int r = 0; r < kQPW; ++r) {
            const float4 qv = *reinterpret_cast<const float4*>(qw + r * hd + d);
            sc[r] += qv.x * k0 + qv.y * k1 + qv.z * k2 + qv.w * k3;
          }
        }
      } else {
        for (int d = 0; d < hd; ++d) {
          const float kv = kr[d];
#pragma unroll
          for (int r = 0; r < kQPW; ++r) sc[r] += qw[r * hd + d] * kv;
        }
      }
    }
    // Online-softmax update per query; pj[r] = 0 where nothing changes (a
    // dead query, or no key of this tile visible to it).
    float pj[kQPW];
#pragma unroll
    for (int r = 0; r < kQPW; ++r) {
      pj[r] = 0.0f;
      if (!live[r]) continue;  // the same for the whole warp
      if (!vis[r]) sc[r] = -INFINITY;
      const float tmax = WarpMax(sc[r]);
      if (tmax == -INFINITY) continue;  // nothing visible in this tile
      const float m_new = fmaxf(m[r], tmax);
      const float alpha = expf(m[r] - m_new);  // 0 while m was -inf
      pj[r] = vis[r] ? expf(sc[r] - m_new) : 0.0f;
      l[r] = l[r] * alpha + WarpSum(pj[r]);
#pragma unroll
      for (int c = 0; c < DC; ++c) acc[r][c] *= alpha;
      m[r] = m_new;
    }
    // acc += p v, each v value read once for all the warp's queries.
#pragma unroll 4
    for (int jj = 0; jj < kBK; ++jj) {
      float pk[kQPW];
      bool any = false;
#pragma unroll
      for (int r = 0; r < kQPW; ++r) {
        pk[r] = __shfl_sync(0xffffffffu, pj[r], jj);
        any |= pk[r] != 0.0f;
      }
      if (!any) continue;  // the same for the whole warp
      const float* vr = vs + jj * ld;
#pragma unroll
      for (int c = 0; c < DC; ++c) {
        const int d = lane + 32 * c;
        if (d < hd) {
          const float vv = vr[d];
#pragma unroll
          for (int r = 0; r < kQPW; ++r) acc[r][c] += pk[r] * vv;
        }
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kQPW; ++r) {
    if (!live[r]) continue;
    const int64_t i = i0 + warp * kQPW + r;
    if (n_split == 1) {
      // A query with no visible key gets zeros.
      const float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
      float* o = out + (b * T + i) * qstride + h * hd;
#pragma unroll
      for (int c = 0; c < DC; ++c) {
        const int d = lane + 32 * c;
        if (d < hd) o[d] = acc[r][c] * inv;
      }
    } else {
      const int64_t slot = ((b * T + i) * H + h) * n_split + split;
      if (lane == 0) part_ml[slot * 2] = m[r], part_ml[slot * 2 + 1] = l[r];
      float* o = part_acc + slot * hd;
#pragma unroll
      for (int c = 0; c < DC; ++c) {
        const int d = lane + 32 * c;
        if (d < hd) o[d] = acc[r][c];
      }
    }
  }
}

// out = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s, M = max_s m_s; zeros
// when no part saw a key. One warp per (b, i, h).
__global__ void MergeKernel(const float* __restrict__ part_ml,
                            const float* __restrict__ part_acc, int64_t rows,
                            int64_t H, int n_split, int hd,
                            float* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const int64_t row =
      int64_t(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (row >= rows) return;  // row = (b*T + i)*H + h
  const float* ml = part_ml + row * n_split * 2;
  float M = -INFINITY;
  for (int s = 0; s < n_split; ++s) M = fmaxf(M, ml[2 * s]);
  float L = 0.0f;
  for (int s = 0; s < n_split; ++s)
    if (ml[2 * s] != -INFINITY) L += expf(ml[2 * s] - M) * ml[2 * s + 1];
  const float inv = L > 0.0f ? 1.0f / L : 0.0f;
  // out row (b*T + i) has H heads of hd: the same flat index row * hd.
  float* o = out + row * hd;
  for (int d = lane; d < hd; d += 32) {
    float a = 0.0f;
    for (int s = 0; s < n_split; ++s)
      if (ml[2 * s] != -INFINITY)
        a += expf(ml[2 * s] - M) * part_acc[(row * n_split + s) * hd + d];
    o[d] = a * inv;
  }
}

template <int DC>
void Launch(cudaStream_t st, const float* q, const float* k, const float* v,
            const AttentionShape& s, const uint8_t* key_mask, float* out,
            int n_split, float* part_ml, float* part_acc, size_t smem) {
  const int64_t q_blocks = (s.T + kBQ - 1) / kBQ;
  const dim3 grid(unsigned(q_blocks * n_split), unsigned(s.n_heads),
                  unsigned(s.B));
  if (smem > 48 * 1024)
    DLLM_CUDA_CHECK(cudaFuncSetAttribute(
                        AttentionKernel<DC>,
                        cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)),
                    "attention: raising the shared memory limit");
  AttentionKernel<DC><<<grid, kWarps * 32, smem, st>>>(
      q, k, v, s, key_mask, out, n_split, part_ml, part_acc);
  DLLM_CUDA_LAUNCHED("attention launch");
}

}  // namespace

void LaunchAttention(cudaStream_t st, const float* q, const float* k,
                     const float* v, const AttentionShape& s,
                     const uint8_t* key_mask, float* out,
                     DeviceScratch* partial, int n_sms) {
  const int64_t hd = s.head_dim, Tk = s.keys();
  DLLM_CHECK(hd >= 1 && hd <= kMaxHeadDim, "cuda: attention: head_dim ", hd,
             " not supported (at most ", kMaxHeadDim, ")");
  DLLM_CHECK(s.n_kv_heads >= 1 && s.n_heads % s.n_kv_heads == 0,
             "cuda: attention: ", s.n_heads, " heads are not a multiple of ",
             s.n_kv_heads, " kv heads");
  DLLM_CHECK(
      s.bd_half <= 0 || (s.block > 0 && !s.causal && s.T == 2 * s.bd_half &&
                         Tk == s.T && s.q_offset == 0),
      "cuda: attention: bad bd_half shape");
  DLLM_CHECK(s.n_heads <= 65535 && s.B <= 65535,
             "cuda: attention: too many heads or sequences");
  if (s.B <= 0 || s.T <= 0) return;
  const int64_t q_blocks = (s.T + kBQ - 1) / kBQ;
  const int64_t blocks = q_blocks * s.n_heads * s.B;
  // Split the keys when the blocks would not fill the GPU twice over, into
  // parts of at least 4 tiles.
  int n_split = 1;
  const int64_t want = 2 * int64_t(n_sms);
  if (blocks < want) {
    const int64_t by_fill = (want + blocks - 1) / blocks;
    const int64_t by_keys = Tk / (4 * kBK);
    n_split = int(std::max<int64_t>(1, std::min(by_fill, by_keys)));
  }
  float *part_ml = nullptr, *part_acc = nullptr;
  if (n_split > 1) {
    const size_t rows = size_t(s.B * s.T * s.n_heads);
    float* p = static_cast<float*>(
        partial->Get(rows * n_split * (2 + size_t(hd)) * sizeof(float), st));
    part_ml = p;
    part_acc = p + rows * n_split * 2;
  }
  const size_t smem =
      (size_t(kBQ) * hd + 2 * size_t(kBK) * (hd + 1) + kBK) * sizeof(float);
  const int dc = int((hd + 31) / 32);
  if (dc <= 1)
    Launch<1>(st, q, k, v, s, key_mask, out, n_split, part_ml, part_acc, smem);
  else if (dc <= 2)
    Launch<2>(st, q, k, v, s, key_mask, out, n_split, part_ml, part_acc, smem);
  else if (dc <= 4)
    Launch<4>(st, q, k, v, s, key_mask, out, n_split, part_ml, part_acc, smem);
  else
    Launch<8>(st, q, k, v, s, key_mask, out, n_split, part_ml, part_acc, smem);
  if (n_split > 1) {
    const int64_t rows = s.B * s.T * s.n_heads;
    const int warps = 4;
    MergeKernel<<<unsigned((rows + warps - 1) / warps), warps * 32, 0, st>>>(
        part_ml, part_acc, rows, s.n_heads, n_split, int(hd), out);
    DLLM_CUDA_LAUNCHED("attention merge launch");
  }
}

}  // namespace dllm::ops::cuda

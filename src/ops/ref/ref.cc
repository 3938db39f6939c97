#include "ops/ref/ref.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "base/half.h"
#include "dllm/error.h"
#include "ops/quant.h"

namespace dllm::ops::ref {

namespace {
float Load(DType t, const void* p, int64_t i) {
  switch (t) {
    case DType::kF32:
      return static_cast<const float*>(p)[i];
    case DType::kBF16:
      return Bf16ToF32(static_cast<const uint16_t*>(p)[i]);
    case DType::kF16:
      return F16ToF32(static_cast<const uint16_t*>(p)[i]);
    default:
      Fail("ToF32: unsupported dtype ", DTypeName(t));
  }
}
}  // namespace

void ToF32(DType dtype, const void* src, int64_t n, float* dst) {
  if (IsQuantized(dtype)) {  // block formats: the scalar dequantizer
    CheckWholeBlocks(dtype, n, "ToF32");
    return DequantizeRow(dtype, src, n, dst);
  }
  for (int64_t i = 0; i < n; ++i) dst[i] = Load(dtype, src, i);
}

void MatMulWT(const float* x, int64_t M, const Matrix& w, float* y,
              const float* bias) {
  const int64_t N = w.rows, K = w.cols;
  if (IsQuantized(w.dtype)) {  // dequantize each row, then the plain loop
    CheckWholeBlocks(w.dtype, K, "matmul");
    std::vector<float> row(static_cast<size_t>(K));
    const size_t row_bytes = DTypeBytes(w.dtype, K);
    for (int64_t n = 0; n < N; ++n) {
      DequantizeRow(w.dtype,
                    static_cast<const uint8_t*>(w.data) + n * row_bytes, K,
                    row.data());
      for (int64_t m = 0; m < M; ++m) {
        double acc = bias ? bias[n] : 0.0;
        for (int64_t k = 0; k < K; ++k) acc += double(x[m * K + k]) * row[k];
        y[m * N + n] = float(acc);
      }
    }
    return;
  }
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double acc = bias ? bias[n] : 0.0;
      for (int64_t k = 0; k < K; ++k)
        acc += double(x[m * K + k]) * Load(w.dtype, w.data, n * K + k);
      y[m * N + n] = float(acc);
    }
}

void RmsNorm(const float* x, const float* weight, int64_t M, int64_t C,
             float eps, float* y) {
  for (int64_t m = 0; m < M; ++m) {
    double ss = 0;
    for (int64_t c = 0; c < C; ++c) ss += double(x[m * C + c]) * x[m * C + c];
    float r = float(1.0 / std::sqrt(ss / C + eps));
    for (int64_t c = 0; c < C; ++c) y[m * C + c] = x[m * C + c] * r * weight[c];
  }
}

void Rope(float* x, int64_t T, int64_t n_heads, int64_t head_dim,
          int64_t row_stride, const float* cos, const float* sin) {
  const int64_t half = head_dim / 2;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + t * row_stride + h * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        float a = v[i], b = v[i + half];
        float c = cos[t * half + i], s = sin[t * half + i];
        v[i] = a * c - b * s;
        v[i + half] = b * c + a * s;
      }
    }
}

// Whether the query at key index p sees key j, written from the definition
// (not through VisibleEnd, so that the fast kernel's prefix logic is tested
// against it).
// Written out from the rule in ops.h, not through AttentionShape's helpers,
// so that it checks them.
static bool Visible(const AttentionShape& s, int64_t p, int64_t j) {
  if (s.bd_half > 0) {
    DLLM_CHECK(s.block > 0 && !s.causal && s.T == 2 * s.bd_half &&
                   s.keys() == s.T && s.q_offset == 0,
               "attention: bad bd_half shape");
    const int64_t H = s.bd_half;
    const bool q_noisy = p < H, k_noisy = j < H;
    const int64_t qb = (q_noisy ? p : p - H) / s.block;
    const int64_t kb = (k_noisy ? j : j - H) / s.block;
    if (q_noisy) return k_noisy ? kb == qb : kb < qb;
    return !k_noisy && kb <= qb;
  }
  if (s.causal && j > p) return false;
  if (s.block > 0 && j / s.block > p / s.block) return false;
  return true;
}

void Attention(const float* q, const float* k, const float* v,
               const AttentionShape& s, const uint8_t* key_mask, float* out) {
  const int64_t T = s.T, Tk = s.keys(), hd = s.head_dim,
                group = s.n_heads / s.n_kv_heads;
  const int64_t qs = s.n_heads * hd, kvs = s.n_kv_heads * hd;
  const double scale = 1.0 / std::sqrt(double(hd));
  std::vector<double> w(Tk);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.n_heads; ++h) {
      const int64_t kh = h / group;
      for (int64_t i = 0; i < T; ++i) {
        const float* qi = q + (b * T + i) * qs + h * hd;
        double mx = -INFINITY;
        for (int64_t j = 0; j < Tk; ++j) {
          bool visible = (!key_mask || key_mask[b * Tk + j]) &&
                         Visible(s, s.q_offset + i, j);
          if (!visible) {
            w[j] = -INFINITY;
            continue;
          }
          const float* kj = k + (b * Tk + j) * kvs + kh * hd;
          double dot = 0;
          for (int64_t d = 0; d < hd; ++d) dot += double(qi[d]) * kj[d];
          w[j] = dot * scale;
          mx = std::max(mx, w[j]);
        }
        float* o = out + (b * T + i) * qs + h * hd;
        if (mx == -INFINITY) {
          for (int64_t d = 0; d < hd; ++d) o[d] = 0;
          continue;
        }
        double sum = 0;
        for (int64_t j = 0; j < Tk; ++j) sum += (w[j] = std::exp(w[j] - mx));
        for (int64_t d = 0; d < hd; ++d) {
          double acc = 0;
          for (int64_t j = 0; j < Tk; ++j)
            if (w[j] > 0) acc += w[j] * v[(b * Tk + j) * kvs + kh * hd + d];
          o[d] = float(acc / sum);
        }
      }
    }
}

void SwiGLU(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    double g = gate[i];
    out[i] = float(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

void AddInPlace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

float SoftmaxInPlace(float* x, int64_t n) {
  double mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, double(x[i]));
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::exp(double(x[i]) - mx);
  for (int64_t i = 0; i < n; ++i)
    x[i] = float(std::exp(double(x[i]) - mx) / sum);
  return float(mx + std::log(sum));
}

}  // namespace dllm::ops::ref

namespace dllm::ops::ref {

RowStats ComputeRowStats(const float* x, int64_t n) {
  RowStats s;
  s.max = -INFINITY;
  s.second = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] > s.max) {
      s.second = s.max;
      s.max = x[i];
      s.argmax = int32_t(i);
    } else if (x[i] > s.second) {
      s.second = x[i];
    }
  }
  s.ties = 0;
  for (int64_t i = 0; i < n; ++i) s.ties += x[i] == s.max;
  if (s.ties >= 2) s.second = s.max;
  double z = 0, zl = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (x[i] == -INFINITY) continue;
    double d = double(x[i]) - s.max;
    double e = std::exp(d);
    z += e;
    zl += e * d;
  }
  s.log_norm = float(s.max + std::log(z));
  s.entropy = float(std::log(z) - zl / z);
  return s;
}

}  // namespace dllm::ops::ref

namespace dllm::ops::ref {

void MatMulBackward(const float* x, int64_t M, const Matrix& w, const float* dy,
                    float* dx, float* dw, float* db) {
  const int64_t N = w.rows, K = w.cols;
  const float* W = static_cast<const float*>(w.data);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      const double g = dy[m * N + n];
      if (db) db[n] += float(g);
      for (int64_t k = 0; k < K; ++k) {
        if (dx) dx[m * K + k] += float(g * W[n * K + k]);
        if (dw) dw[n * K + k] += float(g * x[m * K + k]);
      }
    }
}

void RmsNormBackward(const float* x, const float* weight, int64_t M, int64_t C,
                     float eps, const float* dy, float* dx, float* dweight) {
  for (int64_t m = 0; m < M; ++m) {
    const float* xr = x + m * C;
    const float* g = dy + m * C;
    double ss = 0;
    for (int64_t c = 0; c < C; ++c) ss += double(xr[c]) * xr[c];
    const double r = 1.0 / std::sqrt(ss / C + eps);
    double dot = 0;  // sum of dy * w * x
    for (int64_t c = 0; c < C; ++c) dot += double(g[c]) * weight[c] * xr[c];
    for (int64_t c = 0; c < C; ++c) {
      if (dweight) dweight[c] += float(double(g[c]) * xr[c] * r);
      if (dx)
        dx[m * C + c] +=
            float(r * g[c] * weight[c] - r * r * r / C * xr[c] * dot);
    }
  }
}

void AttentionBackward(const float* q, const float* k, const float* v,
                       const AttentionShape& s, const uint8_t* key_mask,
                       const float* dout, float* dq, float* dk, float* dv) {
  DLLM_CHECK(s.keys() == s.T && s.q_offset == 0,
             "attention backward: queries must be the keys");
  const int64_t T = s.T, hd = s.head_dim, group = s.n_heads / s.n_kv_heads;
  const int64_t qs = s.n_heads * hd, kvs = s.n_kv_heads * hd;
  const double scale = 1.0 / std::sqrt(double(hd));
  std::vector<double> p(T), dp(T);
  for (int64_t b = 0; b < s.B; ++b)
    for (int64_t h = 0; h < s.n_heads; ++h) {
      const int64_t kh = h / group;
      for (int64_t i = 0; i < T; ++i) {
        const float* qi = q + (b * T + i) * qs + h * hd;
        const float* go = dout + (b * T + i) * qs + h * hd;
        double mx = -INFINITY;
        for (int64_t j = 0; j < T; ++j) {
          bool visible = (!key_mask || key_mask[b * T + j]) && Visible(s, i, j);
          if (!visible) {
            p[j] = -INFINITY;
            continue;
          }
          double dot = 0;
          for (int64_t d = 0; d < hd; ++d)
            dot += double(qi[d]) * k[(b * T + j) * kvs + kh * hd + d];
          p[j] = dot * scale;
          mx = std::max(mx, p[j]);
        }
        if (mx == -INFINITY) continue;  // no visible key: output was zero
        double sum = 0;
        for (int64_t j = 0; j < T; ++j) sum += (p[j] = std::exp(p[j] - mx));
        double pdp = 0;
        for (int64_t j = 0; j < T; ++j) {
          p[j] /= sum;
          double acc = 0;
          for (int64_t d = 0; d < hd; ++d)
            acc += double(go[d]) * v[(b * T + j) * kvs + kh * hd + d];
          dp[j] = acc;
          pdp += p[j] * acc;
        }
        for (int64_t j = 0; j < T; ++j) {
          if (p[j] == 0) continue;
          const double ds = p[j] * (dp[j] - pdp) * scale;
          for (int64_t d = 0; d < hd; ++d) {
            dq[(b * T + i) * qs + h * hd + d] +=
                float(ds * k[(b * T + j) * kvs + kh * hd + d]);
            dk[(b * T + j) * kvs + kh * hd + d] += float(ds * qi[d]);
            dv[(b * T + j) * kvs + kh * hd + d] += float(p[j] * go[d]);
          }
        }
      }
    }
}

void SwiGLUBackward(const float* gate, const float* up, const float* dout,
                    int64_t n, float* dgate, float* dup) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i], sg = 1.0 / (1.0 + std::exp(-g));
    dup[i] += float(dout[i] * g * sg);
    dgate[i] += float(dout[i] * up[i] * sg * (1.0 + g * (1.0 - sg)));
  }
}

double CrossEntropyForwardBackward(float* logits, int64_t rows, int64_t V,
                                   const int32_t* targets,
                                   const float* weights) {
  double total = 0;
  for (int64_t r = 0; r < rows; ++r) {
    float* x = logits + r * V;
    const double w = weights ? weights[r] : 1.0;
    double mx = -INFINITY;
    for (int64_t v = 0; v < V; ++v) mx = std::max(mx, double(x[v]));
    double z = 0;
    for (int64_t v = 0; v < V; ++v) z += std::exp(x[v] - mx);
    const double lse = mx + std::log(z);
    total += w * (lse - x[targets[r]]);
    for (int64_t v = 0; v < V; ++v)
      x[v] = float(w * (std::exp(x[v] - lse) - (v == targets[r] ? 1.0 : 0.0)));
  }
  return total;
}

}  // namespace dllm::ops::ref

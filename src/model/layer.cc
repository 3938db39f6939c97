#include "model/layer.h"

namespace dllm {

void LayerQKV(const ModelConfig& c, const LayerWeights& L, int64_t BT,
              const float* cos, const float* sin, const float* x,
              const LayerActivations& a) {
  const int64_t C = c.d_model, Q = int64_t(c.n_heads) * c.head_dim,
                KV = int64_t(c.n_kv_heads) * c.head_dim;
  auto bias = [](const Tensor& t) { return t.empty() ? nullptr : t.f32(); };
  ops::RmsNorm(x, L.attn_norm.f32(), BT, C, c.rms_eps, a.xn1);
  ops::MatMulWT(a.xn1, BT, L.wq.matrix(), a.q, bias(L.bq));
  ops::MatMulWT(a.xn1, BT, L.wk.matrix(), a.k, bias(L.bk));
  ops::MatMulWT(a.xn1, BT, L.wv.matrix(), a.v, bias(L.bv));
  ops::Rope(a.q, BT, c.n_heads, c.head_dim, Q, cos, sin);
  ops::Rope(a.k, BT, c.n_kv_heads, c.head_dim, KV, cos, sin);
}

void LayerAfterAttention(const ModelConfig& c, const LayerWeights& L,
                         int64_t BT, const float* x, const LayerActivations& a,
                         float* out) {
  const int64_t C = c.d_model, F = c.d_ff;
  ops::MatMulWT(a.att, BT, L.wo.matrix(), a.xmid);
  ops::AddInPlace(a.xmid, x, BT * C);
  ops::RmsNorm(a.xmid, L.ffn_norm.f32(), BT, C, c.rms_eps, a.xn2);
  ops::MatMulWT(a.xn2, BT, L.w_gate.matrix(), a.gate);
  ops::MatMulWT(a.xn2, BT, L.w_up.matrix(), a.up);
  ops::SwiGLU(a.gate, a.up, BT * F, a.h);
  ops::MatMulWT(a.h, BT, L.w_down.matrix(), out);
  ops::AddInPlace(out, a.xmid, BT * C);
}

void LayerForward(const ModelConfig& c, const LayerWeights& L,
                  const ops::AttentionShape& shape, const uint8_t* key_mask,
                  const float* cos, const float* sin, const float* x,
                  const LayerActivations& a, float* out) {
  const int64_t BT = shape.B * shape.T;
  LayerQKV(c, L, BT, cos, sin, x, a);
  ops::Attention(a.q, a.k, a.v, shape, key_mask, a.att);
  LayerAfterAttention(c, L, BT, x, a, out);
}

}  // namespace dllm

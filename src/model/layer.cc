#include "model/layer.h"

namespace dllm {

void LayerQKV(ops::Backend& be, const ModelConfig& c, const LayerWeights& L,
              int64_t BT, const float* cos, const float* sin, const float* x,
              const LayerActivations& a) {
  const int64_t C = c.d_model, Q = int64_t(c.n_heads) * c.head_dim,
                KV = int64_t(c.n_kv_heads) * c.head_dim;
  auto bias = [](const Tensor& t) { return t.empty() ? nullptr : t.f32(); };
  be.RmsNorm(x, L.attn_norm.f32(), BT, C, c.rms_eps, a.xn1);
  const ops::Matrix wq = L.wq.matrix(), wk = L.wk.matrix(), wv = L.wv.matrix();
  const ops::MatMulOut qkv[3] = {
      {&wq, a.q, bias(L.bq)}, {&wk, a.k, bias(L.bk)}, {&wv, a.v, bias(L.bv)}};
  be.MatMulWTGroup(a.xn1, BT, qkv, 3);
  be.Rope(a.q, BT, c.n_heads, c.head_dim, Q, cos, sin);
  be.Rope(a.k, BT, c.n_kv_heads, c.head_dim, KV, cos, sin);
}

void LayerAfterAttention(ops::Backend& be, const ModelConfig& c,
                         const LayerWeights& L, int64_t BT, const float* x,
                         const LayerActivations& a, float* out) {
  const int64_t C = c.d_model, F = c.d_ff;
  be.MatMulWT(a.att, BT, L.wo.matrix(), a.xmid, nullptr);
  be.AddInPlace(a.xmid, x, BT * C);
  be.RmsNorm(a.xmid, L.ffn_norm.f32(), BT, C, c.rms_eps, a.xn2);
  const ops::Matrix wg = L.w_gate.matrix(), wu = L.w_up.matrix();
  const ops::MatMulOut gate_up[2] = {{&wg, a.gate, nullptr},
                                     {&wu, a.up, nullptr}};
  be.MatMulWTGroup(a.xn2, BT, gate_up, 2);
  be.SwiGLU(a.gate, a.up, BT * F, a.h);
  be.MatMulWT(a.h, BT, L.w_down.matrix(), out, nullptr);
  be.AddInPlace(out, a.xmid, BT * C);
}

void LayerForward(ops::Backend& be, const ModelConfig& c, const LayerWeights& L,
                  const ops::AttentionShape& shape, const uint8_t* key_mask,
                  const float* cos, const float* sin, const float* x,
                  const LayerActivations& a, float* out) {
  const int64_t BT = shape.B * shape.T;
  LayerQKV(be, c, L, BT, cos, sin, x, a);
  be.Attention(a.q, a.k, a.v, shape, key_mask, a.att);
  LayerAfterAttention(be, c, L, BT, x, a, out);
}

}  // namespace dllm

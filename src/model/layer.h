// One transformer block, shared by inference (model.cc, buffers reused from
// layer to layer) and training (trainable.cc, buffers kept per layer for the
// backward pass).
#pragma once

#include <cstdint>

#include "dllm/config.h"
#include "model/weights.h"
#include "ops/backend.h"
#include "ops/ops.h"

namespace dllm {

// Where a block writes its intermediate values; each is (BT, width). h may
// alias gate, and xn2 may alias xn1, when nothing reads them afterwards.
struct LayerActivations {
  float* xn1;   // (BT, C) attention norm output
  float* q;     // (BT, Q) after RoPE
  float* k;     // (BT, KV) after RoPE
  float* v;     // (BT, KV)
  float* att;   // (BT, Q) attention output before wo
  float* xmid;  // (BT, C) residual after attention
  float* xn2;   // (BT, C) FFN norm output
  float* gate;  // (BT, F)
  float* up;    // (BT, F)
  float* h;     // (BT, F) silu(gate) * up
};

// Every pointer is a buffer of `be` (ops/backend.h), and so are L's weights
// (placed on it); key_mask is host memory.

// out (BT, C) = block(x). cos/sin: (BT, head_dim/2) RoPE tables per row.
// out must not alias x or any activation.
void LayerForward(ops::Backend& be, const ModelConfig& c, const LayerWeights& L,
                  const ops::AttentionShape& shape, const uint8_t* key_mask,
                  const float* cos, const float* sin, const float* x,
                  const LayerActivations& a, float* out);

// The two halves of LayerForward around the attention, for callers that
// attend elsewhere (the KV-cached forward attends over cached keys):
// xn1, q, k (both after RoPE) and v from x; then xmid ... out from a.att.
void LayerQKV(ops::Backend& be, const ModelConfig& c, const LayerWeights& L,
              int64_t BT, const float* cos, const float* sin, const float* x,
              const LayerActivations& a);
void LayerAfterAttention(ops::Backend& be, const ModelConfig& c,
                         const LayerWeights& L, int64_t BT, const float* x,
                         const LayerActivations& a, float* out);

}  // namespace dllm

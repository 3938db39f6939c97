// Training forward and hand-written backward of the transformer, llm.c
// style: the forward saves exactly what the backward reads, every gradient is
// accumulated with +=, and shapes are in the comments (B, T, C, V; Q and KV
// are the query and key/value widths, F the SwiGLU width).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "base/rng.h"
#include "dllm/error.h"
#include "dllm/model.h"
#include "dllm/train.h"
#include "formats/safetensors.h"
#include "model/check_store.h"
#include "model/layer.h"
#include "model/rope.h"
#include "model/save.h"
#include "model/weights.h"
#include "ops/ops.h"

namespace dllm {

const char* ObjectiveName(Objective o) {
  switch (o) {
    case Objective::kMDM:
      return "mdm";
    case Objective::kMDMSFT:
      return "mdm-sft";
    case Objective::kAR:
      return "ar";
    case Objective::kBD:
      return "bd";
  }
  return "?";
}

Objective ParseObjective(const std::string& name) {
  if (name == "mdm") return Objective::kMDM;
  if (name == "mdm-sft") return Objective::kMDMSFT;
  if (name == "ar") return Objective::kAR;
  if (name == "bd") return Objective::kBD;
  Fail("unknown objective '", name, "' (expected mdm, mdm-sft, ar or bd)");
}

// What the forward keeps for the backward, per layer l.
// BT counts the tokens the network runs on: B * T, or B * 2T for the bd
// objective (each sequence is [x_t ; x_0]).
struct TrainableModel::Activations {
  std::vector<float> x;  // (L+1, BT, C): residual stream entering each layer,
                         // and the final one
  std::vector<float> xn1, xn2;  // (L, BT, C): attention / FFN norm outputs
  std::vector<float> q;         // (L, BT, Q) after RoPE
  std::vector<float> k, v;      // (L, BT, KV), k after RoPE
  std::vector<float> att;       // (L, BT, Q): attention output before wo
  std::vector<float> xmid;      // (L, BT, C): residual after attention
  std::vector<float> gate, up;  // (L, BT, F): SwiGLU inputs
  std::vector<float> h;         // (L, BT, F): SwiGLU output
  std::vector<float> rows_in, rows_norm,
      logits;                         // loss rows: (R, C), (R, C), (R, V)
  std::vector<float> cos, sin, nsin;  // (BT, hd/2) RoPE tables, nsin = -sin
  // Backward scratch.
  std::vector<float> dx, dxn, dq, dk, dv, datt, dgate, dup, dh, drows;
};

namespace {

float* Sized(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

float* Zeroed(std::vector<float>& v, size_t n) {
  float* p = Sized(v, n);
  std::memset(p, 0, n * sizeof(float));
  return p;
}

}  // namespace

TrainableModel::TrainableModel(const ModelConfig& config, uint64_t seed,
                               float init_std)
    : config_(config), w_(new Weights), g_(new Weights), act_(new Activations) {
  const std::vector<TensorSpec> specs = ListTensors(config_);
  int64_t total = 0;
  for (const TensorSpec& t : specs) {
    slots_.push_back(
        {t.name, t.shape, total, t.numel(), t.role == TensorRole::kMatrix});
    total += t.numel();
  }
  params_.assign(size_t(total), 0.0f);
  grads_.assign(size_t(total), 0.0f);
  // Matrices and embeddings random, norms one, biases zero (as `dllm init`).
  for (size_t i = 0; i < specs.size(); ++i) {
    float* p = params_.data() + slots_[i].offset;
    for (int64_t j = 0; j < slots_[i].numel; ++j)
      p[j] = specs[i].role == TensorRole::kNorm ? 1.0f
             : specs[i].role == TensorRole::kBias
                 ? 0.0f
                 : float(init_std * RandomNormal(seed, i, uint64_t(j)));
  }
  BindWeights();
}

TrainableModel::~TrainableModel() = default;

void TrainableModel::BindWeights() {
  size_t i = 0;
  auto bind = [&](Weights& w, std::vector<float>& buf) {
    i = 0;
    ForEachTensor(config_, w,
                  [&](const std::string&, const std::vector<int64_t>& shape,
                      TensorRole, Tensor& t) {
                    t.dtype = DType::kF32;
                    t.shape = shape;
                    t.data = buf.data() + slots_[i++].offset;
                  });
  };
  bind(*w_, params_);
  bind(*g_, grads_);
  // Which gradients each stage of the backward pass finishes: a layer's
  // tensors, the final norm and head, the embedding (ListTensors' order
  // keeps each group contiguous).
  const int64_t L = config_.n_layers;
  ready_ranges_.assign(size_t(L + 2), {INT64_MAX, 0});
  i = 0;
  ForEachTensor(config_, *g_,
                [&](const std::string&, const std::vector<int64_t>&, TensorRole,
                    Tensor& t) {
                  const Slot& s = slots_[i++];
                  const auto at = reinterpret_cast<uintptr_t>(&t);
                  int64_t group = L;  // final norm, head
                  if (&t == &g_->embed) group = L + 1;
                  for (int64_t l = 0; l < L; ++l) {
                    const auto lo =
                        reinterpret_cast<uintptr_t>(&g_->layers[size_t(l)]);
                    if (at >= lo && at < lo + sizeof(LayerWeights)) group = l;
                  }
                  auto& r = ready_ranges_[size_t(group)];
                  r.first = std::min(r.first, s.offset);
                  r.second += s.numel;
                });
  for (auto& r : ready_ranges_) {
    if (r.first == INT64_MAX) r.first = 0;  // an empty group
  }
  int64_t covered = 0;
  for (const auto& r : ready_ranges_) covered += r.second;
  DLLM_ASSERT(covered == int64_t(params_.size()));
}

std::unique_ptr<TrainableModel> TrainableModel::Load(const std::string& dir) {
  ModelConfig c = LoadModelConfig(dir + "/config.json");
  auto store = TensorStore::Open(dir);
  MatchStoredSwitches(c, *store);
  CheckStoredTensors(c, *store);  // as inference does: no half-accepted files
  auto m = std::make_unique<TrainableModel>(c, 0);
  for (const Slot& s : m->slots_) {
    const TensorView* v = store->Find(s.name);
    DLLM_CHECK(v != nullptr, store->origin(), ": tensor '", s.name,
               "' is missing");
    DLLM_CHECK(v->shape == s.shape, store->origin(), ": tensor '", s.name,
               "' has the wrong shape for config.json");
    ops::ToF32(v->dtype, v->data, s.numel, m->params_.data() + s.offset);
  }
  return m;
}

void TrainableModel::ConvertToBlockDiffusion(int block_size,
                                             int32_t mask_token_id) {
  DLLM_CHECK(block_size >= 1,
             "block diffusion: the block size must be at "
             "least 1, got ",
             block_size);
  DLLM_CHECK(mask_token_id >= 0 && mask_token_id < config_.vocab_size,
             "block diffusion: mask token ", mask_token_id,
             " is not in the vocabulary of ", config_.vocab_size,
             " (the tokenizer needs a mask token)");
  // Attention switches only: the tensor list, hence the bound weights, stays.
  config_.causal = false;
  config_.block_size = block_size;
  config_.mask_token_id = mask_token_id;
}

void TrainableModel::ZeroGrads() {
  std::fill(grads_.begin(), grads_.end(), 0.0f);
}

double TrainableModel::ForwardBackward(const TrainBatch& batch,
                                       Objective objective, float grad_scale) {
  return Run(batch, objective, true, grad_scale);
}

double TrainableModel::Loss(const TrainBatch& batch, Objective objective) {
  return Run(batch, objective, false, 0.0f);
}

double TrainableModel::Run(const TrainBatch& in, Objective objective,
                           bool backward, float grad_scale) {
  const ModelConfig& c = config_;
  const Weights& W = *w_;
  Weights& G = *g_;
  Activations& a = *act_;
  const bool bd = objective == Objective::kBD;
  // T: tokens per sequence of the data; TS: per sequence of the network
  // ([x_t ; x_0] for bd); BT: all tokens the network runs on.
  const int64_t B = in.B, T = in.T, TS = bd ? 2 * T : T, BT = B * TS,
                C = c.d_model, F = c.d_ff, V = c.vocab_size;
  const int64_t Q = int64_t(c.n_heads) * c.head_dim,
                KV = int64_t(c.n_kv_heads) * c.head_dim;
  const int64_t L = c.n_layers, half = c.head_dim / 2;
  const bool causal = objective == Objective::kAR;
  DLLM_CHECK(B >= 1 && T >= 2 && int64_t(in.ids.size()) == B * T,
             "train batch: bad shape");
  DLLM_CHECK(causal == c.causal, "objective ", ObjectiveName(objective),
             " needs a ", causal ? "causal" : "bidirectional",
             " model (config.json \"causal\")");
  // The bd objective and block-diffusion models go together: the mask
  // objectives would train a full-attention model, bd a block-causal one.
  DLLM_CHECK(bd == (c.block_size > 0), "objective ", ObjectiveName(objective),
             bd ? " needs a block-diffusion model (config.json \"block_size\")"
                : " does not train block-diffusion models (config.json "
                  "\"block_size\"); use the bd objective");
  const int64_t n_blocks = bd ? (T + c.block_size - 1) / c.block_size : 0;
  if (bd) {
    DLLM_CHECK(int64_t(in.mask.size()) == B * T &&
                   int64_t(in.block_p.size()) == B * n_blocks,
               "train batch: the bd objective needs a mask and p per block");
  } else if (!causal) {
    DLLM_CHECK(int64_t(in.mask.size()) == B * T && int64_t(in.p.size()) == B,
               "train batch: MDM objectives need a mask and p per sequence");
  }
  if (objective == Objective::kMDMSFT)
    DLLM_CHECK(int64_t(in.prompt_len.size()) == B,
               "train batch: SFT needs prompt lengths");

  // Input tokens (B, TS): masked positions become [MASK] for the mask
  // objectives; bd runs each sequence as [x_t ; x_0].
  std::vector<int32_t> xt(static_cast<size_t>(BT));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const size_t i = size_t(b * T + t);
      DLLM_CHECK(in.ids[i] >= 0 && in.ids[i] < V, "train batch: token id ",
                 in.ids[i], " is outside the vocabulary of ", V);
      xt[size_t(b * TS + t)] =
          !causal && in.mask[i] ? c.mask_token_id : in.ids[i];
      if (bd) xt[size_t(b * TS + T + t)] = in.ids[i];
    }

  // Loss rows, their targets and weights (each objective's normalisation).
  std::vector<int32_t> rows, targets;
  std::vector<float> weights;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const int64_t i = b * T + t;  // in the data; b * TS + t in the network
      if (bd) {
        // BD3-LM: the masked tokens of x_t, CE / p of their block, over B*T.
        if (in.mask[size_t(i)]) {
          rows.push_back(int32_t(b * TS + t));
          targets.push_back(in.ids[size_t(i)]);
          const double p = in.block_p[size_t(b * n_blocks + t / c.block_size)];
          weights.push_back(float(1.0 / (p * double(B * T))));
        }
      } else if (objective == Objective::kAR) {
        if (t + 1 < T) {
          rows.push_back(int32_t(i));
          targets.push_back(in.ids[size_t(i + 1)]);
          weights.push_back(float(1.0 / double(B * (T - 1))));
        }
      } else if (in.mask[size_t(i)]) {
        rows.push_back(int32_t(i));
        targets.push_back(in.ids[size_t(i)]);
        const double p = in.p[size_t(b)];
        if (objective == Objective::kMDM) {
          weights.push_back(float(1.0 / (p * double(BT))));
        } else {
          const double answer = double(T - in.prompt_len[size_t(b)]);
          weights.push_back(float(1.0 / (p * answer * double(B))));
        }
      }
    }
  const int64_t R = int64_t(rows.size());

  // RoPE tables for positions 0..T-1 of every sequence (float32 angles as
  // the Hugging Face code computes them); both copies of a bd sequence use
  // positions 0..T-1, so that x_t[i] and x_0[i] sit at the same place.
  float* cs = Sized(a.cos, size_t(BT * half));
  float* sn = Sized(a.sin, size_t(BT * half));
  float* nsn = Sized(a.nsin, size_t(BT * half));
  FillRopeTable(c, 0, T, cs, sn);
  for (int64_t r = 1; r < BT / T; ++r) {
    std::memcpy(cs + r * T * half, cs, size_t(T * half) * sizeof(float));
    std::memcpy(sn + r * T * half, sn, size_t(T * half) * sizeof(float));
  }
  for (int64_t i = 0; i < BT * half; ++i) nsn[i] = -sn[i];

  // ---- forward ----
  float* X = Sized(a.x, size_t((L + 1) * BT * C));
  float* XN1 = Sized(a.xn1, size_t(L * BT * C));
  float* XN2 = Sized(a.xn2, size_t(L * BT * C));
  float* QQ = Sized(a.q, size_t(L * BT * Q));
  float* KK = Sized(a.k, size_t(L * BT * KV));
  float* VV = Sized(a.v, size_t(L * BT * KV));
  float* ATT = Sized(a.att, size_t(L * BT * Q));
  float* XMID = Sized(a.xmid, size_t(L * BT * C));
  float* GATE = Sized(a.gate, size_t(L * BT * F));
  float* UP = Sized(a.up, size_t(L * BT * F));
  float* H = Sized(a.h, size_t(L * BT * F));
  for (int64_t i = 0; i < BT; ++i)
    std::memcpy(X + i * C, W.embed.f32() + int64_t(xt[size_t(i)]) * C,
                size_t(C) * 4);
  ops::AttentionShape as{B, TS, c.n_heads, c.n_kv_heads, c.head_dim, causal};
  if (bd) as.block = c.block_size, as.bd_half = T;
  for (int64_t l = 0; l < L; ++l) {
    const LayerActivations act{XN1 + l * BT * C, QQ + l * BT * Q,
                               KK + l * BT * KV, VV + l * BT * KV,
                               ATT + l * BT * Q, XMID + l * BT * C,
                               XN2 + l * BT * C, GATE + l * BT * F,
                               UP + l * BT * F,  H + l * BT * F};
    LayerForward(ops::CpuBackend(), c, W.layers[size_t(l)], as, nullptr, cs, sn,
                 X + l * BT * C, act, X + (l + 1) * BT * C);
  }
  const float* xfin = X + L * BT * C;
  float* rin = Sized(a.rows_in, size_t(R * C));
  float* rnorm = Sized(a.rows_norm, size_t(R * C));
  float* logits = Sized(a.logits, size_t(R * V));
  for (int64_t r = 0; r < R; ++r)
    std::memcpy(rin + r * C, xfin + int64_t(rows[size_t(r)]) * C,
                size_t(C) * 4);
  ops::RmsNorm(rin, W.final_norm.f32(), R, C, c.rms_eps, rnorm);
  const Tensor& head = W.lm_head.empty() ? W.embed : W.lm_head;
  Tensor& dhead = W.lm_head.empty() ? G.embed : G.lm_head;
  ops::MatMulWT(rnorm, R, head.matrix(), logits);
  if (!backward) {
    // Loss only: the same fused kernel, its gradient output discarded.
    return R ? ops::CrossEntropyForwardBackward(logits, R, V, targets.data(),
                                                weights.data())
             : 0.0;
  }
  // Weights carry the loss normalisation; the gradient also carries grad_scale.
  std::vector<float> gw(weights);
  for (float& x : gw) x *= grad_scale;
  double loss = 0;
  if (R) {
    const double scaled = ops::CrossEntropyForwardBackward(
        logits, R, V, targets.data(), gw.data());
    loss = grad_scale != 0 ? scaled / grad_scale : 0.0;
  }

  // ---- backward ----  (logits now hold dlogits)
  float* dx = Zeroed(a.dx, size_t(BT * C));  // gradient of the residual stream
  float* drows = Zeroed(a.drows, size_t(R * C));
  ops::MatMulBackward(rnorm, R, head.matrix(), logits, nullptr,
                      static_cast<float*>(dhead.data), nullptr);
  float* drnorm = Zeroed(a.dxn, size_t(std::max(R, BT) * C));
  ops::MatMulBackward(rnorm, R, head.matrix(), logits, drnorm, nullptr,
                      nullptr);
  ops::RmsNormBackward(rin, W.final_norm.f32(), R, C, c.rms_eps, drnorm, drows,
                       static_cast<float*>(G.final_norm.data));
  for (int64_t r = 0; r < R; ++r)
    ops::AddInPlace(dx + int64_t(rows[size_t(r)]) * C, drows + r * C, C);
  auto ready = [&](int64_t group) {
    if (!grads_ready_) return;
    const auto& r = ready_ranges_[size_t(group)];
    if (r.second > 0) grads_ready_(r.first, r.second);
  };
  ready(L);  // final norm and head (a tied head is the embedding: last)

  float* dxn = Sized(a.dxn, size_t(BT * C));
  float* dq = Sized(a.dq, size_t(BT * Q));
  float* dk = Sized(a.dk, size_t(BT * KV));
  float* dv = Sized(a.dv, size_t(BT * KV));
  float* datt = Sized(a.datt, size_t(BT * Q));
  float* dgate = Sized(a.dgate, size_t(BT * F));
  float* dup = Sized(a.dup, size_t(BT * F));
  float* dh = Sized(a.dh, size_t(BT * F));
  for (int64_t l = L - 1; l >= 0; --l) {
    const LayerWeights& Lw = W.layers[size_t(l)];
    LayerWeights& Lg = G.layers[size_t(l)];
    const float* x = X + l * BT * C;
    const float* xn1 = XN1 + l * BT * C;
    const float* q = QQ + l * BT * Q;
    const float* k = KK + l * BT * KV;
    const float* v = VV + l * BT * KV;
    const float* att = ATT + l * BT * Q;
    const float* xmid = XMID + l * BT * C;
    const float* xn2 = XN2 + l * BT * C;
    const float* gate = GATE + l * BT * F;
    const float* up = UP + l * BT * F;
    const float* h = H + l * BT * F;
    auto g = [](Tensor& t) { return static_cast<float*>(t.data); };
    // xout = xmid + h w_down^T: dx flows to xmid unchanged (dx is reused as
    // dxmid).
    std::memset(dh, 0, size_t(BT * F) * 4);
    ops::MatMulBackward(h, BT, Lw.w_down.matrix(), dx, dh, g(Lg.w_down),
                        nullptr);
    std::memset(dgate, 0, size_t(BT * F) * 4);
    std::memset(dup, 0, size_t(BT * F) * 4);
    ops::SwiGLUBackward(gate, up, dh, BT * F, dgate, dup);
    std::memset(dxn, 0, size_t(BT * C) * 4);
    ops::MatMulBackward(xn2, BT, Lw.w_gate.matrix(), dgate, dxn, g(Lg.w_gate),
                        nullptr);
    ops::MatMulBackward(xn2, BT, Lw.w_up.matrix(), dup, dxn, g(Lg.w_up),
                        nullptr);
    ops::RmsNormBackward(xmid, Lw.ffn_norm.f32(), BT, C, c.rms_eps, dxn, dx,
                         g(Lg.ffn_norm));
    // xmid = x + att wo^T.
    std::memset(datt, 0, size_t(BT * Q) * 4);
    ops::MatMulBackward(att, BT, Lw.wo.matrix(), dx, datt, g(Lg.wo), nullptr);
    std::memset(dq, 0, size_t(BT * Q) * 4);
    std::memset(dk, 0, size_t(BT * KV) * 4);
    std::memset(dv, 0, size_t(BT * KV) * 4);
    ops::AttentionBackward(q, k, v, as, nullptr, datt, dq, dk, dv);
    // RoPE is a rotation: its backward rotates by the opposite angle.
    ops::Rope(dq, BT, c.n_heads, c.head_dim, Q, cs, nsn);
    ops::Rope(dk, BT, c.n_kv_heads, c.head_dim, KV, cs, nsn);
    std::memset(dxn, 0, size_t(BT * C) * 4);
    ops::MatMulBackward(xn1, BT, Lw.wq.matrix(), dq, dxn, g(Lg.wq),
                        Lg.bq.empty() ? nullptr : g(Lg.bq));
    ops::MatMulBackward(xn1, BT, Lw.wk.matrix(), dk, dxn, g(Lg.wk),
                        Lg.bk.empty() ? nullptr : g(Lg.bk));
    ops::MatMulBackward(xn1, BT, Lw.wv.matrix(), dv, dxn, g(Lg.wv),
                        Lg.bv.empty() ? nullptr : g(Lg.bv));
    ops::RmsNormBackward(x, Lw.attn_norm.f32(), BT, C, c.rms_eps, dxn, dx,
                         g(Lg.attn_norm));
    ready(l);
  }
  // Embedding rows (serial: ids repeat, so rows collide).
  float* dE = static_cast<float*>(G.embed.data);
  for (int64_t i = 0; i < BT; ++i)
    ops::AddInPlace(dE + int64_t(xt[size_t(i)]) * C, dx + i * C, C);
  ready(L + 1);
  return loss;
}

void TrainableModel::SaveModel(const std::string& dir,
                               const std::string& dtype_name) const {
  // The same writer as `dllm init`: values come from this model's parameters.
  DType dtype;
  DLLM_CHECK(ParseDType(dtype_name, &dtype) &&
                 (dtype == DType::kF32 || dtype == DType::kBF16),
             "save: dtype must be F32 or BF16, got '", dtype_name, "'");
  WriteModelFolder(config_, dir, dtype, [&](size_t i, float* dst) {
    std::memcpy(dst, params_.data() + slots_[i].offset,
                size_t(slots_[i].numel) * 4);
  });
}

}  // namespace dllm

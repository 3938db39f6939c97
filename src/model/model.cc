// Model loading (tensor list against the stored files) and the forward pass.
#include "dllm/model.h"

#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/mmap_file.h"
#include "formats/safetensors.h"
#include "model/layer.h"
#include "model/weights.h"
#include "ops/ops.h"

namespace dllm {

// Activation buffers, reused across calls (grown when a call needs more).
struct Model::Scratch {
  std::vector<float> x, x2, xn, q, k, v, att, proj, gate, up, rope_cos,
      rope_sin, rows;
  std::vector<float> cos_table, sin_table;  // (positions, head_dim/2)
  int64_t table_positions = 0;
  size_t bytes = 0;
};

Model::Model() : weights_(new Weights), scratch_(new Scratch) {}
Model::~Model() = default;

namespace {

std::string ShapeStr(const std::vector<int64_t>& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i)
    out += (i ? ", " : "") + std::to_string(s[i]);
  return out + ")";
}

}  // namespace

std::unique_ptr<Model> Model::Load(const std::string& dir) {
  std::unique_ptr<Model> m(new Model);
  m->dir_ = dir;
  m->config_ = LoadModelConfig(dir + "/config.json");
  m->store_ = TensorStore::Open(dir);
  TensorStore& store = *m->store_;
  ModelConfig& c = m->config_;
  // Qwen2 (Dream) always has q/k/v biases, but checkpoints derived from it
  // may not: follow the files.
  if (c.arch == Arch::kDream)
    c.qkv_bias = store.Find("model.layers.0.self_attn.q_proj.bias") != nullptr;
  // A tied model may still ship an output head; an untied one must.
  ForEachTensor(
      c, *m->weights_,
      [&](const std::string& name, const std::vector<int64_t>& shape,
          TensorRole role, Tensor& t) {
        const TensorView* v = store.Find(name);
        DLLM_CHECK(v != nullptr, store.origin(), ": tensor '", name,
                   "' is missing (config.json wants ", ShapeStr(shape),
                   "): is config.json from another model?");
        DLLM_CHECK(v->shape == shape, store.origin(), ": tensor '", name,
                   "' has shape ", ShapeStr(v->shape), ", config.json wants ",
                   ShapeStr(shape), ": is config.json from another model?");
        DLLM_CHECK(v->dtype == DType::kF32 || v->dtype == DType::kBF16 ||
                       v->dtype == DType::kF16,
                   store.origin(), ": tensor '", name, "' has dtype ",
                   DTypeName(v->dtype), " (expected F32, BF16 or F16)");
        t.shape = shape;
        if (role == TensorRole::kNorm || role == TensorRole::kBias) {
          // Small vectors: keep an fp32 copy so kernels read one type.
          m->owned_.emplace_back(size_t(v->numel()));
          ops::ToF32(v->dtype, v->data, v->numel(), m->owned_.back().data());
          t.dtype = DType::kF32;
          t.data = m->owned_.back().data();
        } else {
          t.dtype = v->dtype;
          t.data = const_cast<uint8_t*>(v->data);
        }
      });
  return m;
}

std::vector<TensorInfo> Model::Tensors() const {
  std::vector<TensorInfo> out;
  for (const TensorView* v : store_->all())
    out.push_back({v->name, DTypeName(v->dtype), v->shape});
  return out;
}

size_t Model::file_bytes() const { return store_->total_file_bytes(); }

std::string Model::weights_dtype() const {
  return DTypeName(weights_->layers[0].wq.dtype);
}

size_t Model::activation_bytes() const { return scratch_->bytes; }

namespace {

float* Grow(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

// RoPE angles as the Hugging Face code computes them (float32 inverse
// frequencies and products), so long positions round the same way.
void FillRopeTable(const ModelConfig& c, int64_t from, int64_t to, float* cos_t,
                   float* sin_t) {
  const int64_t half = c.head_dim / 2;
  const float theta = float(c.rope_theta);
  for (int64_t i = 0; i < half; ++i) {
    float inv = 1.0f / std::pow(theta, float(2 * i) / float(c.head_dim));
    for (int64_t p = from; p < to; ++p) {
      float a = float(p) * inv;
      cos_t[p * half + i] = std::cos(a);
      sin_t[p * half + i] = std::sin(a);
    }
  }
}

}  // namespace

void Model::Forward(const ForwardBatch& in, float* logits) {
  const ModelConfig& c = config_;
  const Weights& w = *weights_;
  Scratch& s = *scratch_;
  const int64_t B = in.B, T = in.T, BT = B * T, C = c.d_model, F = c.d_ff;
  const int64_t Q = int64_t(c.n_heads) * c.head_dim,
                KV = int64_t(c.n_kv_heads) * c.head_dim;
  const int64_t half = c.head_dim / 2, V = c.vocab_size;
  DLLM_CHECK(B >= 1 && T >= 1, "forward: empty batch (B=", B, ", T=", T, ")");
  DLLM_CHECK(in.ids != nullptr, "forward: no token ids");
  const int64_t n_rows = in.n_rows < 0 ? BT : in.n_rows;
  for (int64_t i = 0; i < BT; ++i)
    DLLM_CHECK(in.ids[i] >= 0 && in.ids[i] < V, "token id ", in.ids[i],
               " at position ", i % T, " of sequence ", i / T,
               " is outside the vocabulary [0, ", V, ")");
  if (in.rows)
    for (int64_t r = 0; r < n_rows; ++r)
      DLLM_CHECK(in.rows[r] >= 0 && in.rows[r] < BT, "forward: output row ",
                 in.rows[r], " is outside the batch of ", BT, " tokens");

  // RoPE tables cover every position used, grown on demand.
  int64_t max_pos = T - 1;
  if (in.positions)
    for (int64_t i = 0; i < BT; ++i) {
      DLLM_CHECK(in.positions[i] >= 0, "forward: negative position ",
                 in.positions[i]);
      max_pos = std::max<int64_t>(max_pos, in.positions[i]);
    }
  if (max_pos + 1 > s.table_positions) {
    int64_t n = std::max<int64_t>(max_pos + 1, 2 * s.table_positions);
    Grow(s.cos_table, size_t(n * half));
    Grow(s.sin_table, size_t(n * half));
    FillRopeTable(c, s.table_positions, n, s.cos_table.data(),
                  s.sin_table.data());
    s.table_positions = n;
  }
  float* rc = Grow(s.rope_cos, size_t(BT * half));
  float* rs = Grow(s.rope_sin, size_t(BT * half));
  for (int64_t i = 0; i < BT; ++i) {
    int64_t p = in.positions ? in.positions[i] : i % T;
    std::memcpy(rc + i * half, s.cos_table.data() + p * half, size_t(half) * 4);
    std::memcpy(rs + i * half, s.sin_table.data() + p * half, size_t(half) * 4);
  }

  float* x = Grow(s.x, size_t(BT * C));
  float* xn = Grow(s.xn, size_t(BT * C));
  float* q = Grow(s.q, size_t(BT * Q));
  float* k = Grow(s.k, size_t(BT * KV));
  float* v = Grow(s.v, size_t(BT * KV));
  float* att = Grow(s.att, size_t(BT * Q));
  float* proj = Grow(s.proj, size_t(BT * C));
  float* gate = Grow(s.gate, size_t(BT * F));
  float* up = Grow(s.up, size_t(BT * F));

  // Embedding rows, converted to fp32.
  const size_t esize = DTypeSize(w.embed.dtype);
  for (int64_t i = 0; i < BT; ++i)
    ops::ToF32(w.embed.dtype,
               static_cast<const uint8_t*>(w.embed.data) +
                   size_t(in.ids[i] * C) * esize,
               C, x + i * C);

  // Blocks ping-pong between x and x2; intermediate buffers are reused.
  ops::AttentionShape as{B, T, c.n_heads, c.n_kv_heads, c.head_dim, c.causal};
  float* x2 = Grow(s.x2, size_t(BT * C));
  const LayerActivations act{xn, q, k, v, att, proj, xn, gate, up, gate};
  for (const LayerWeights& L : w.layers) {
    LayerForward(c, L, as, in.key_mask, rc, rs, x, act, x2);
    std::swap(x, x2);
  }

  // Output head only for the rows asked for.
  float* rows = Grow(s.rows, size_t(n_rows * C));
  for (int64_t r = 0; r < n_rows; ++r) {
    int64_t src = in.rows ? in.rows[r] : r;
    std::memcpy(rows + r * C, x + src * C, size_t(C) * 4);
  }
  ops::RmsNorm(rows, w.final_norm.f32(), n_rows, C, c.rms_eps, rows);
  const Tensor& head = w.lm_head.empty() ? w.embed : w.lm_head;
  ops::MatMulWT(rows, n_rows, head.matrix(), logits);

  s.bytes = 0;
  for (auto* vec :
       {&s.x, &s.x2, &s.xn, &s.q, &s.k, &s.v, &s.att, &s.proj, &s.gate, &s.up,
        &s.rope_cos, &s.rope_sin, &s.rows, &s.cos_table, &s.sin_table})
    s.bytes += vec->capacity() * sizeof(float);
}

}  // namespace dllm

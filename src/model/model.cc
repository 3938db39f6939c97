// Model loading (tensor list against the stored files) and the forward pass.
#include "dllm/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/mmap_file.h"
#include "dllm/error.h"
#include "formats/gguf.h"
#include "formats/tensor_store.h"
#include "model/check_store.h"
#include "model/gguf_model.h"
#include "model/layer.h"
#include "model/rope.h"
#include "model/weights.h"
#include "ops/backend.h"
#include "ops/ops.h"

namespace dllm {

// Activation buffers on the model's backend, reused across calls (grown when
// a call needs more), and the RoPE tables on the host.
struct Model::Scratch {
  ops::Buffer x, x2, xn, q, k, v, att, proj, gate, up, rope_cos, rope_sin, rows,
      logits;
  std::vector<float> cos_table, sin_table;  // (positions, head_dim/2)
  std::vector<float> host_cos, host_sin;    // gathered per row, then uploaded
  int64_t table_positions = 0;
  int64_t stats_rows = 0;  // rows of `logits` the last stats call left
  size_t bytes = 0;

  // The block's buffers for n rows (xn is reused for both norms, gate for
  // silu(gate) * up); x and x2 are grown apart.
  LayerActivations Layer(ops::Backend& be, const ModelConfig& c, int64_t n) {
    const size_t C = size_t(c.d_model), F = size_t(c.d_ff),
                 Q = size_t(c.n_heads) * size_t(c.head_dim),
                 KV = size_t(c.n_kv_heads) * size_t(c.head_dim), N = size_t(n);
    float* n1 = xn.Grow(be, N * C);
    float* g = gate.Grow(be, N * F);
    return {n1,
            q.Grow(be, N * Q),
            k.Grow(be, N * KV),
            v.Grow(be, N * KV),
            att.Grow(be, N * Q),
            proj.Grow(be, N * C),
            n1,
            g,
            up.Grow(be, N * F),
            g};
  }
};

Model::Model() : weights_(new Weights), scratch_(new Scratch) {}
// The buffers go back to the backend before it goes.
Model::~Model() { scratch_.reset(); }

namespace {

std::string ShapeStr(const std::vector<int64_t>& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i)
    out += (i ? ", " : "") + std::to_string(s[i]);
  return out + ")";
}

}  // namespace

std::unique_ptr<Model> Model::Load(const std::string& dir,
                                   const LoadOptions& options) {
  std::unique_ptr<Model> m(new Model);
  m->dir_ = dir;
  // A GGUF file carries its config as metadata and llama.cpp's names; a
  // folder has config.json and the architecture's Hugging Face names.
  const bool gguf = IsGgufPath(dir);
  const NameTable names = gguf ? NameTable::kGguf : NameTable::kHf;
  if (!gguf) m->config_ = LoadModelConfig(dir + "/config.json");
  m->store_ = TensorStore::Open(dir);
  TensorStore& store = *m->store_;
  if (gguf) m->config_ = ConfigFromGguf(*store.gguf());
  ModelConfig& c = m->config_;
  MatchStoredSwitches(c, store, names);
  const std::string cfg_name = gguf ? "the GGUF metadata" : "config.json";
  // llama.cpp's llada and llama files hold wq/wk rows in its interleaved
  // RoPE order (model/gguf_model.h): undo that on an owned copy.
  const bool unpermute =
      gguf &&
      GgufArchPermutesQK(store.gguf()->GetString("general.architecture"));
  // An untied model must ship an output head; a tied one may still ship a
  // copy of the embedding (CheckStoredTensors below).
  const std::string head = OutputHeadName(c, names);
  ForEachTensor(
      c, *m->weights_,
      [&](const std::string& name, const std::vector<int64_t>& shape,
          TensorRole role, Tensor& t) {
        const TensorView* v = store.Find(name);
        DLLM_CHECK(
            v != nullptr || name != head, store.origin(), ": tensor '", name,
            "' (the output head) is missing, but ", cfg_name,
            " says the head is untied (",
            c.arch == Arch::kLLaDA ? "weight_tying" : "tie_word_embeddings",
            " false): is the checkpoint tied, or is ", cfg_name,
            " from another model?");
        DLLM_CHECK(v != nullptr, store.origin(), ": tensor '", name,
                   "' is missing (", cfg_name, " wants ", ShapeStr(shape),
                   "): is ", cfg_name, " from another model?");
        DLLM_CHECK(v->shape == shape, store.origin(), ": tensor '", name,
                   "' has shape ", ShapeStr(v->shape), ", ", cfg_name,
                   " wants ", ShapeStr(shape), ": is ", cfg_name,
                   " from another model?");
        DLLM_CHECK(v->dtype == DType::kF32 || v->dtype == DType::kBF16 ||
                       v->dtype == DType::kF16 || IsQuantized(v->dtype),
                   store.origin(), ": tensor '", name, "' has dtype ",
                   DTypeName(v->dtype),
                   " (expected F32, BF16, F16, Q8_0, Q4_0, Q4_K or Q6_K)");
        const int rope_heads = unpermute ? RopeHeads(c, *m->weights_, t) : 0;
        t.shape = shape;
        if (role == TensorRole::kNorm || role == TensorRole::kBias) {
          // Small vectors: keep an fp32 copy so kernels read one type.
          m->owned_.emplace_back(size_t(v->numel()));
          float* f32 = m->owned_.back().data();
          ops::ToF32(v->dtype, v->data, v->numel(), f32);
          if (rope_heads > 0) {
            std::vector<float> tmp(f32, f32 + v->numel());
            PermuteRopeRows(tmp.data(), f32, v->numel(), sizeof(float),
                            rope_heads, /*to_gguf=*/false);
          }
          t.dtype = DType::kF32;
          t.data = f32;
        } else if (rope_heads > 0) {
          // Rows are whole blocks in every dtype, so a row shuffle works on
          // the stored bytes.
          m->owned_bytes_.emplace_back(v->nbytes);
          uint8_t* dst = m->owned_bytes_.back().data();
          PermuteRopeRows(v->data, dst, shape[0], v->nbytes / size_t(shape[0]),
                          rope_heads, /*to_gguf=*/false);
          t.dtype = v->dtype;
          t.data = dst;
        } else {
          t.dtype = v->dtype;
          t.data = const_cast<uint8_t*>(v->data);
        }
      },
      names);
  CheckStoredTensors(c, store, names);
  m->PlaceWeights(options.device);
  return m;
}

// Walks the tensor list once more to give the backend its copy of every
// weight (on the CPU the same pointers).
void Model::PlaceWeights(const std::string& device) {
  backend_ = ops::MakeBackend(device);
  run_weights_ = std::make_unique<Weights>(*weights_);
  if (backend_->host_memory()) return;
  ForEachTensor(
      config_, *run_weights_,
      [&](const std::string& name, const std::vector<int64_t>&, TensorRole role,
          Tensor& t) {
        if (t.empty()) return;
        if (role == TensorRole::kNorm || role == TensorRole::kBias) {
          t.data =
              const_cast<float*>(backend_->PlaceVector(t.f32(), t.numel()));
        } else {
          t.data =
              const_cast<void*>(backend_->PlaceMatrix(t.matrix(), name).data);
        }
      });
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

std::string Model::device() const { return backend_->name(); }
std::string Model::device_description() const {
  return backend_->description();
}
std::vector<std::string> CompiledDevices() {
  std::vector<std::string> d{"cpu"};
  if (ops::HaveCudaBackend()) d.push_back("cuda");
  return d;
}

size_t Model::weight_bytes_per_forward() const {
  size_t n = 0;
  auto add = [&](const Tensor& t) {
    if (!t.empty()) n += DTypeBytes(t.dtype, t.numel());
  };
  for (const LayerWeights& L : weights_->layers)
    for (const Tensor* t :
         {&L.attn_norm, &L.wq, &L.wk, &L.wv, &L.bq, &L.bk, &L.bv, &L.wo,
          &L.ffn_norm, &L.w_gate, &L.w_up, &L.w_down})
      add(*t);
  add(weights_->final_norm);
  add(weights_->lm_head.empty() ? weights_->embed : weights_->lm_head);
  return n;
}

size_t Model::device_weight_bytes() const { return backend_->placed_bytes(); }
double Model::MeasureDeviceBandwidth() {
  return backend_->MeasureBandwidthGBs();
}

namespace {

float* Grow(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

// Index of the first NaN or Inf in x[0, n), or -1. Bit tests rather than
// std::isfinite, which -ffast-math builds would fold to true; a branch-free
// max over blocks keeps the check a small fraction of the output head.
int64_t FirstNonFiniteF32(const float* x, int64_t n) {
  constexpr int64_t kBlock = 1024;
  constexpr uint32_t kExp = 0x7F800000u;
  for (int64_t b = 0; b < n; b += kBlock) {
    const int64_t e = std::min(n, b + kBlock);
    uint32_t hi = 0;
    for (int64_t i = b; i < e; ++i) {
      uint32_t u;
      std::memcpy(&u, x + i, 4);
      hi = std::max(hi, u & 0x7FFFFFFFu);
    }
    if (hi < kExp) continue;
    for (int64_t i = b; i < e; ++i) {
      uint32_t u;
      std::memcpy(&u, x + i, 4);
      if ((u & 0x7FFFFFFFu) >= kExp) return i;
    }
  }
  return -1;
}

// "position P of sequence S" for a flat row index of a (., T) batch; "row
// R" when T is 0 (the runs of a cached forward).
std::string RowName(int64_t src, int64_t T) {
  return T > 0 ? "position " + std::to_string(src % T) + " of sequence " +
                     std::to_string(src / T)
               : "row " + std::to_string(src);
}

}  // namespace

KVCache::KVCache(const ModelConfig& c, int64_t capacity)
    : capacity_(capacity),
      width_(int64_t(c.n_kv_heads) * c.head_dim),
      n_layers_(c.n_layers) {
  DLLM_CHECK(capacity >= 1, "kv cache: capacity ", capacity,
             " (expected at least one position)");
}

// Gives a cache its memory on this model's device the first time it is used
// (and again should it move to a model on another device: the contents are
// then stale, which only a caller mixing devices could observe). Host
// caches come from the process's CPU backend, which outlives every model.
void Model::BindCache(KVCache& cache) const {
  ops::Backend* be =
      backend_->host_memory() ? &ops::CpuBackend() : backend_.get();
  if (cache.data_ && cache.device_ == be) return;
  const size_t n = cache.bytes() / sizeof(float);
  cache.data_ = {be->Alloc(n), [be](float* p) { be->Free(p); }};
  cache.device_ = be;
}

void Model::CheckIds(const int32_t* ids, int64_t n, int64_t T) const {
  const int64_t V = config_.vocab_size;
  for (int64_t i = 0; i < n; ++i)
    DLLM_CHECK(ids[i] >= 0 && ids[i] < V, "token id ", ids[i], " at position ",
               i % T, " of sequence ", i / T, " is outside the vocabulary [0, ",
               V, ")");
}

// RoPE tables cover every position up to max_pos, grown on demand.
void Model::GrowRope(int64_t max_pos) {
  Scratch& s = *scratch_;
  const int64_t half = config_.head_dim / 2;
  if (max_pos + 1 <= s.table_positions) return;
  int64_t n = std::max<int64_t>(max_pos + 1, 2 * s.table_positions);
  Grow(s.cos_table, size_t(n * half));
  Grow(s.sin_table, size_t(n * half));
  FillRopeTable(config_, s.table_positions, n, s.cos_table.data(),
                s.sin_table.data());
  s.table_positions = n;
}

// The RoPE rows of n positions (position(i) for row i) into the backend's
// rope_cos/rope_sin buffers: (n, head_dim/2) each.
template <typename PositionOf>
void Model::GatherRope(int64_t n, PositionOf position) {
  Scratch& s = *scratch_;
  ops::Backend& be = *backend_;
  const int64_t half = config_.head_dim / 2;
  float* hc = Grow(s.host_cos, size_t(n * half));
  float* hs = Grow(s.host_sin, size_t(n * half));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t p = position(i);
    std::memcpy(hc + i * half, s.cos_table.data() + p * half, size_t(half) * 4);
    std::memcpy(hs + i * half, s.sin_table.data() + p * half, size_t(half) * 4);
  }
  be.Upload(s.rope_cos.Grow(be, size_t(n * half)), hc, size_t(n * half));
  be.Upload(s.rope_sin.Grow(be, size_t(n * half)), hs, size_t(n * half));
}

// Embedding rows of n tokens, converted to fp32: x (n, C).
void Model::Embed(const int32_t* ids, int64_t n, float* x) {
  backend_->Embed(run_weights_->embed.matrix(), ids, n, x);
}

// Final norm and output head for the rows asked for: raw logits into
// out.logits, or (out.stats) statistics after out.banned. T names a row's
// position and sequence in errors (row / T, row % T); 0 = just the row.
void Model::Head(const float* x, const int32_t* rows_in, int64_t n_rows,
                 int64_t T, const HeadOut& out) {
  const ModelConfig& c = config_;
  const Weights& w = *run_weights_;
  ops::Backend& be = *backend_;
  const int64_t C = c.d_model, V = c.vocab_size;
  scratch_->stats_rows = 0;
  if (n_rows == 0) return;
  float* rows = scratch_->rows.Grow(be, size_t(n_rows * C));
  if (rows_in) {
    be.GatherRows(x, C, rows_in, n_rows, rows);
  } else {
    be.Copy(rows, x, size_t(n_rows * C));
  }
  be.RmsNorm(rows, w.final_norm.f32(), n_rows, C, c.rms_eps, rows);
  const Tensor& head = w.lm_head.empty() ? w.embed : w.lm_head;
  if (out.stats) {
    float* logits = scratch_->logits.Grow(be, size_t(n_rows * V));
    be.MatMulWT(rows, n_rows, head.matrix(), logits, nullptr);
    const std::vector<int32_t>& banned = *out.banned;
    for (int32_t id : banned)
      DLLM_CHECK(id >= 0 && id < V, "forward: banned token ", id,
                 " is outside the vocabulary [0, ", V, ")");
    if (!banned.empty())
      be.FillColumns(logits, n_rows, V, banned.data(), int64_t(banned.size()),
                     -INFINITY);
    be.RowStatsRows(logits, n_rows, V, out.stats);
    scratch_->stats_rows = n_rows;
    CheckStats(out.stats, rows_in, n_rows, T);
    return;
  }
  float* logits = out.logits;
  if (be.host_memory()) {
    be.MatMulWT(rows, n_rows, head.matrix(), logits, nullptr);
  } else {
    float* dev = scratch_->logits.Grow(be, size_t(n_rows * V));
    be.MatMulWT(rows, n_rows, head.matrix(), dev, nullptr);
    be.Download(logits, dev, size_t(n_rows * V));
  }
  // Weights are finite (checked at load), so non-finite logits mean the
  // activations overflowed: fail here rather than let a sampler turn NaN
  // into an arbitrary token id.
  const int64_t bad = FirstNonFiniteF32(logits, n_rows * V);
  if (bad >= 0) {
    const int64_t r = bad / V, src = rows_in ? rows_in[r] : r;
    uint32_t u;
    std::memcpy(&u, logits + bad, 4);
    const bool is_nan = (u & 0x7FFFFFFFu) > 0x7F800000u;
    Fail("forward: the logits of ", RowName(src, T), " hold ",
         is_nan ? "NaN" : "Inf", " (token ", bad % V,
         "): the activations overflowed; are the weights of ", dir_,
         " from a diverged training run or too large?");
  }
}

// The statistics see a NaN or an Inf anywhere in a row: the normaliser
// then is not finite (banned -inf entries add nothing).
void Model::CheckStats(const RowStats* stats, const int32_t* rows_in, int64_t n,
                       int64_t T) const {
  for (int64_t r = 0; r < n; ++r) {
    if (std::isfinite(stats[r].log_norm) && std::isfinite(stats[r].max))
      continue;
    const int64_t src = rows_in ? rows_in[r] : r;
    Fail("forward: the logits of ", RowName(src, T),
         " are not finite (or every token is banned): the activations "
         "overflowed; are the weights of ",
         dir_, " from a diverged training run or too large?");
  }
}

void Model::ForwardStats(const ForwardBatch& batch,
                         const std::vector<int32_t>& banned, RowStats* stats) {
  RunForward(batch, HeadOut{nullptr, &banned, stats});
}

void Model::ForwardCachedStats(const CachedRun* runs, int64_t n_runs,
                               const int32_t* rows, int64_t n_rows,
                               const std::vector<int32_t>& banned,
                               RowStats* stats) {
  RunForwardCached(runs, n_runs, rows, n_rows,
                   HeadOut{nullptr, &banned, stats});
}

void Model::RestatRows(const int32_t* which, int64_t n,
                       const std::vector<int32_t>& more, RowStats* stats) {
  Scratch& s = *scratch_;
  ops::Backend& be = *backend_;
  const int64_t V = config_.vocab_size;
  if (n == 0) return;
  DLLM_CHECK(s.stats_rows > 0, "forward: RestatRows without a stats forward");
  for (int32_t id : more)
    DLLM_CHECK(id >= 0 && id < V, "forward: banned token ", id,
               " is outside the vocabulary [0, ", V, ")");
  // Gather the rows, ban, reduce: rows of the kept logits stay as they were
  // for any later RestatRows of other rows.
  std::vector<int32_t> idx(which, which + n);
  for (int32_t i : idx)
    DLLM_CHECK(i >= 0 && i < s.stats_rows, "forward: RestatRows row ", i,
               " is outside the last call's ", s.stats_rows, " rows");
  float* tmp = s.rows.Grow(be, size_t(n * V));
  be.GatherRows(s.logits.data(), V, idx.data(), n, tmp);
  if (!more.empty())
    be.FillColumns(tmp, n, V, more.data(), int64_t(more.size()), -INFINITY);
  be.RowStatsRows(tmp, n, V, stats);
}

void Model::CountBytes() {
  Scratch& s = *scratch_;
  s.bytes = 0;
  for (const ops::Buffer* b :
       {&s.x, &s.x2, &s.xn, &s.q, &s.k, &s.v, &s.att, &s.proj, &s.gate, &s.up,
        &s.rope_cos, &s.rope_sin, &s.rows, &s.logits})
    s.bytes += b->size() * sizeof(float);
  for (const std::vector<float>* v :
       {&s.cos_table, &s.sin_table, &s.host_cos, &s.host_sin})
    s.bytes += v->capacity() * sizeof(float);
}

void Model::Forward(const ForwardBatch& batch, float* logits) {
  RunForward(batch, HeadOut{logits});
}

void Model::ForwardCached(const CachedRun* runs, int64_t n_runs,
                          const int32_t* rows, int64_t n_rows, float* logits) {
  RunForwardCached(runs, n_runs, rows, n_rows, HeadOut{logits});
}

void Model::RunForward(const ForwardBatch& in, const HeadOut& out) {
  const ModelConfig& c = config_;
  const Weights& w = *run_weights_;
  Scratch& s = *scratch_;
  ops::Backend& be = *backend_;
  const int64_t B = in.B, T = in.T, BT = B * T, C = c.d_model;
  DLLM_CHECK(B >= 1 && T >= 1, "forward: empty batch (B=", B, ", T=", T, ")");
  DLLM_CHECK(in.ids != nullptr, "forward: no token ids");
  const int64_t n_rows = in.n_rows < 0 ? BT : in.n_rows;
  CheckIds(in.ids, BT, T);
  if (in.rows)
    for (int64_t r = 0; r < n_rows; ++r)
      DLLM_CHECK(in.rows[r] >= 0 && in.rows[r] < BT, "forward: output row ",
                 in.rows[r], " is outside the batch of ", BT, " tokens");

  int64_t max_pos = T - 1;
  if (in.positions)
    for (int64_t i = 0; i < BT; ++i) {
      DLLM_CHECK(in.positions[i] >= 0, "forward: negative position ",
                 in.positions[i]);
      max_pos = std::max<int64_t>(max_pos, in.positions[i]);
    }
  GrowRope(max_pos);
  GatherRope(BT, [&](int64_t i) {
    return in.positions ? int64_t(in.positions[i]) : i % T;
  });

  float* x = s.x.Grow(be, size_t(BT * C));
  Embed(in.ids, BT, x);

  // Blocks ping-pong between x and x2; intermediate buffers are reused.
  ops::AttentionShape as{B,          T,        c.n_heads,   c.n_kv_heads,
                         c.head_dim, c.causal, c.block_size};
  float* x2 = s.x2.Grow(be, size_t(BT * C));
  const float* rc = s.rope_cos.data();
  const float* rs = s.rope_sin.data();
  const LayerActivations act = s.Layer(be, c, BT);
  for (const LayerWeights& L : w.layers) {
    LayerForward(be, c, L, as, in.key_mask, rc, rs, x, act, x2);
    std::swap(x, x2);
  }
  Head(x, in.rows, n_rows, T, out);
  CountBytes();
}

void Model::RunForwardCached(const CachedRun* runs, int64_t n_runs,
                             const int32_t* rows, int64_t n_rows,
                             const HeadOut& out) {
  const ModelConfig& c = config_;
  const Weights& w = *run_weights_;
  Scratch& s = *scratch_;
  ops::Backend& be = *backend_;
  const int64_t C = c.d_model;
  const int64_t Q = int64_t(c.n_heads) * c.head_dim,
                KV = int64_t(c.n_kv_heads) * c.head_dim;
  DLLM_CHECK(n_runs >= 1, "forward: no runs");
  // N: the rows of all runs end to end; start[r]: run r's first row.
  std::vector<int64_t> start(size_t(n_runs) + 1, 0);
  int64_t max_pos = 0;
  for (int64_t r = 0; r < n_runs; ++r) {
    const CachedRun& run = runs[r];
    DLLM_CHECK(run.cache != nullptr && run.ids != nullptr && run.n >= 1,
               "forward: run ", r, " has no cache, no ids or no positions");
    DLLM_CHECK(run.p0 >= 0 && run.p0 + run.n <= run.cache->capacity(),
               "forward: run ", r, " covers positions [", run.p0, ", ",
               run.p0 + run.n, "), outside its cache of ",
               run.cache->capacity());
    DLLM_CHECK(run.cache->n_layers_ == c.n_layers && run.cache->width_ == KV,
               "forward: run ", r, "'s cache was made for another model");
    const int64_t key_end = run.key_end > 0 ? run.key_end : run.p0 + run.n;
    DLLM_CHECK(key_end >= run.p0 + run.n && key_end <= run.cache->capacity(),
               "forward: run ", r, " attends to keys [0, ", key_end,
               "), which must cover its positions [", run.p0, ", ",
               run.p0 + run.n, ") and fit its cache of ",
               run.cache->capacity());
    CheckIds(run.ids, run.n, run.n);
    start[size_t(r) + 1] = start[size_t(r)] + run.n;
    max_pos = std::max(max_pos, run.p0 + run.n - 1);
  }
  const int64_t N = start[size_t(n_runs)];
  if (n_rows < 0) n_rows = N;
  if (rows)
    for (int64_t i = 0; i < n_rows; ++i)
      DLLM_CHECK(rows[i] >= 0 && rows[i] < N, "forward: output row ", rows[i],
                 " is outside the runs' ", N, " rows");
  for (int64_t r = 0; r < n_runs; ++r) BindCache(*runs[r].cache);

  GrowRope(max_pos);
  // Row i of the batch: run r = the last with start[r] <= i.
  {
    int64_t r = 0;
    GatherRope(N, [&](int64_t i) {
      while (i >= start[size_t(r) + 1]) ++r;
      return runs[r].p0 + (i - start[size_t(r)]);
    });
  }
  float* x = s.x.Grow(be, size_t(N * C));  // (N, C)
  for (int64_t r = 0; r < n_runs; ++r)
    Embed(runs[r].ids, runs[r].n, x + start[size_t(r)] * C);

  float* x2 = s.x2.Grow(be, size_t(N * C));
  const float* rc = s.rope_cos.data();
  const float* rs = s.rope_sin.data();
  // k and v (N, KV) are copied into the caches after each LayerQKV.
  const LayerActivations act = s.Layer(be, c, N);
  for (int l = 0; l < c.n_layers; ++l) {
    const LayerWeights& L = w.layers[size_t(l)];
    LayerQKV(be, c, L, N, rc, rs, x, act);
    for (int64_t r = 0; r < n_runs; ++r) {
      const CachedRun& run = runs[r];
      const int64_t i0 = start[size_t(r)];
      float* ck = run.cache->keys(l);  // (capacity, KV)
      float* cv = run.cache->values(l);
      be.Copy(ck + run.p0 * KV, act.k + i0 * KV, size_t(run.n * KV));
      be.Copy(cv + run.p0 * KV, act.v + i0 * KV, size_t(run.n * KV));
      // The run's queries over the cached keys [0, key_end).
      ops::AttentionShape as{1,          run.n,   c.n_heads, c.n_kv_heads,
                             c.head_dim, c.causal};
      as.block = c.block_size;  // block-causal models: exact, like causal
      as.Tk = run.key_end > 0 ? run.key_end : run.p0 + run.n;
      as.q_offset = run.p0;
      be.Attention(act.q + i0 * Q, ck, cv, as, nullptr, act.att + i0 * Q);
    }
    LayerAfterAttention(be, c, L, N, x, act, x2);
    std::swap(x, x2);
  }
  Head(x, rows, n_rows, 0, out);
  CountBytes();
}

}  // namespace dllm

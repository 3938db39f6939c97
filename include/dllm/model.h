// Public API: load a model and run the transformer forward.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dllm/config.h"
#include "dllm/row_stats.h"

namespace dllm {

struct Weights;
class TensorStore;
namespace ops {
class Backend;
}

// One forward call over B sequences of T tokens each (right-padded).
struct ForwardBatch {
  int64_t B = 1, T = 0;
  const int32_t* ids = nullptr;  // (B, T)
  const uint8_t* key_mask =
      nullptr;  // (B, T): 1 = real token; nullptr = all real
  const int32_t* positions =
      nullptr;  // (B, T) RoPE positions; nullptr = 0..T-1
  // Flat indices b*T + t of the rows whose logits are wanted, in output
  // order; nullptr with n_rows < 0 means every row.
  const int32_t* rows = nullptr;
  int64_t n_rows = -1;
};

// Keys and values of every layer (after RoPE) at the positions of one
// sequence that Model::ForwardCached has computed, so that a later call runs
// only some positions and attends to the rest from here (AR decoding;
// Fast-dLLM's prefix and dual caches). One allocation, sized to the context
// once, in the memory of the device the model runs on (taken at the first
// ForwardCached that uses it); the caller keeps track of which positions
// hold current values. A cache on a GPU must not outlive its model.
class KVCache {
 public:
  KVCache() = default;
  // Room for positions [0, capacity) of a model with config `c`.
  KVCache(const ModelConfig& c, int64_t capacity);
  KVCache(KVCache&&) = default;
  KVCache& operator=(KVCache&&) = default;

  int64_t capacity() const { return capacity_; }
  bool empty() const { return capacity_ == 0; }
  size_t bytes() const {
    return size_t(n_layers_) * 2 * size_t(capacity_) * size_t(width_) *
           sizeof(float);
  }

 private:
  friend class Model;
  // Layer l's keys or values: (capacity, n_kv_heads*head_dim).
  float* keys(int layer) { return data_.get() + Offset(layer, 0); }
  float* values(int layer) { return data_.get() + Offset(layer, 1); }
  size_t Offset(int layer, int kv) const {
    return (size_t(layer) * 2 + size_t(kv)) * size_t(capacity_) *
           size_t(width_);
  }
  int64_t capacity_ = 0, width_ = 0;
  int n_layers_ = 0;
  // (n_layers, 2, capacity, n_kv_heads*head_dim) on device_, freed there.
  std::unique_ptr<float, std::function<void(float*)>> data_;
  const void* device_ = nullptr;
};

// One contiguous range of positions [p0, p0 + n) of one sequence for
// Model::ForwardCached. RoPE uses the absolute positions; the range's keys
// and values are written into `cache` at those positions, and its queries
// attend to the cache's keys [0, key_end): the ones written now and those
// of earlier calls the caller declares valid. Causal models see keys up to
// the query itself and block-causal ones (block_size) up to the end of the
// query's block, as ever; for them the cache is exact when each run ends at
// a block boundary (or at the sequence's end).
struct CachedRun {
  KVCache* cache = nullptr;
  const int32_t* ids = nullptr;  // (n) the tokens at positions p0 ...
  int64_t p0 = 0, n = 0;
  int64_t key_end = 0;  // 0 = p0 + n; never less than p0 + n
};

// Summary of one stored tensor, for `dllm info`.
struct TensorInfo {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
};

// How to load a model: the device it runs on ("cpu", "cuda", "cuda:N";
// `--device` in the CLI). On a GPU the weights are uploaded once (F32,
// BF16, F16, Q8_0) and activations and KV caches live in device memory.
struct LoadOptions {
  std::string device = "cpu";
};

class Model {
 public:
  // Loads a Hugging Face folder (config.json + model.safetensors, or shards
  // with model.safetensors.index.json) or a GGUF file (a path ending in
  // .gguf, or any file starting with the GGUF magic: the config from its
  // metadata, llama.cpp's tensor names). Weights stay mmapped; matrices are
  // used in their stored dtype (F32, BF16, F16, or the block types Q8_0,
  // Q4_0, Q4_K, Q6_K). Every tensor's presence and shape is checked against
  // the config.
  static std::unique_ptr<Model> Load(const std::string& dir,
                                     const LoadOptions& options = {});
  ~Model();

  const ModelConfig& config() const { return config_; }
  const std::string& dir() const { return dir_; }  // folder or .gguf file
  std::vector<TensorInfo> Tensors() const;
  size_t file_bytes() const;          // bytes of the weight files
  std::string weights_dtype() const;  // dtype of the matrices ("BF16", ...)
  // The device it runs on ("cpu", "cuda:0") and a line describing it.
  std::string device() const;
  std::string device_description() const;
  // Bytes of weights one forward reads: every matrix once and, of the
  // embedding table, only its rows (unless it is also the head).
  size_t weight_bytes_per_forward() const;
  // Weight bytes copied into device memory at load (0 on the CPU, where
  // they stay mmapped).
  size_t device_weight_bytes() const;
  // The device's memory bandwidth in GB/s, measured now; 0 on the CPU
  // (benchmarks measure the host's with dllm/ceiling.h).
  double MeasureDeviceBandwidth();

  // Writes raw logits (no shift) of the requested rows: (n_rows, vocab).
  // Token ids are checked against the vocabulary. Not thread-safe: one
  // forward at a time per Model (it reuses its activation buffers).
  void Forward(const ForwardBatch& batch, float* logits);

  // Forward over ranges of positions of several sequences, each with its own
  // KV cache (see CachedRun). The matmuls run over the rows of all runs at
  // once; attention per run. rows: flat indices into the runs' rows laid end
  // to end (run 0's n rows, then run 1's, ...), nullptr with n_rows < 0 =
  // every row. Writes raw logits (n_rows, vocab). With the keys of every
  // position current, a run gives the rows Forward would give for the whole
  // sequence (to rounding).
  void ForwardCached(const CachedRun* runs, int64_t n_runs, const int32_t* rows,
                     int64_t n_rows, float* logits);

  // Forward and ForwardCached for deterministic samplers: instead of the
  // logits, the RowStats (dllm/row_stats.h) of each requested row after
  // the columns `banned` (the same for every row) are set to -inf. On a
  // GPU only these come back to the host. The logits stay in the model
  // until its next forward, for RestatRows.
  void ForwardStats(const ForwardBatch& batch,
                    const std::vector<int32_t>& banned, RowStats* stats);
  void ForwardCachedStats(const CachedRun* runs, int64_t n_runs,
                          const int32_t* rows, int64_t n_rows,
                          const std::vector<int32_t>& banned, RowStats* stats);
  // Bans the columns `more` as well in the rows `which` (indices into the
  // last stats call's rows) and gives their new statistics.
  void RestatRows(const int32_t* which, int64_t n,
                  const std::vector<int32_t>& more, RowStats* stats);

  // Bytes of activation buffers the last Forward used.
  size_t activation_bytes() const;

 private:
  Model();
  struct Scratch;
  void CheckIds(const int32_t* ids, int64_t n, int64_t T) const;
  void GrowRope(int64_t max_pos);
  template <typename PositionOf>
  void GatherRope(int64_t n, PositionOf position);
  void PlaceWeights(const std::string& device);
  void Embed(const int32_t* ids, int64_t n, float* x);
  // Where the head's output goes: the caller's logits (host), or the
  // model's own buffer, reduced to statistics.
  struct HeadOut {
    float* logits = nullptr;
    const std::vector<int32_t>* banned = nullptr;
    RowStats* stats = nullptr;
  };
  void Head(const float* x, const int32_t* rows, int64_t n_rows, int64_t T,
            const HeadOut& out);
  void RunForward(const ForwardBatch& batch, const HeadOut& out);
  void RunForwardCached(const CachedRun* runs, int64_t n_runs,
                        const int32_t* rows, int64_t n_rows,
                        const HeadOut& out);
  void CheckStats(const RowStats* stats, const int32_t* rows, int64_t n,
                  int64_t T) const;
  void CountBytes();
  void BindCache(KVCache& cache) const;
  ModelConfig config_;
  std::string dir_;
  std::unique_ptr<TensorStore> store_;
  std::unique_ptr<Weights> weights_;  // as stored (host, mmapped)
  std::unique_ptr<ops::Backend> backend_;
  // What the forward reads: weights_ itself on the CPU, device copies on a
  // GPU (placed once at load by walking the tensor list).
  std::unique_ptr<Weights> run_weights_;
  std::vector<std::vector<float>> owned_;  // norms and biases converted to f32
  // wq/wk of llama.cpp's llada/llama GGUF files, rows back in our order.
  std::vector<std::vector<uint8_t>> owned_bytes_;
  std::unique_ptr<Scratch> scratch_;
};

// The devices this build can run a model on: "cpu", and "cuda" in a build
// configured with -DDLLM_CUDA=ON (whether a GPU is present is found out at
// load).
std::vector<std::string> CompiledDevices();

// `dllm init`: writes a random-weight model folder (config.json +
// model.safetensors) for tests and benchmarks. dtype: "F32", "BF16" or "F16".
void InitRandomModel(const ModelConfig& config, const std::string& dir,
                     const std::string& dtype, uint64_t seed,
                     float init_std = 0.02f);

}  // namespace dllm

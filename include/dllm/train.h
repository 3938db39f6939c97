// Public API: training masked-diffusion models (and AR baselines of the same
// shape) with hand-written backward passes on the inference kernels.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dllm/config.h"

namespace dllm {

struct Weights;

enum class Objective {
  kMDM,     // LLaDA pre-training: masked positions, CE / p, over B*T
  kMDMSFT,  // LLaDA SFT: prompt never masked, per-sequence / answer length
  kAR,      // causal next-token prediction
  kBD,      // BD3-LM block diffusion: one forward over [x_t ; x_0], masked
            // positions of x_t, CE / p of their block, over B*T
};
const char* ObjectiveName(Objective o);
// "mdm", "mdm-sft", "ar", "bd"
Objective ParseObjective(const std::string& name);

// One batch of B sequences of T tokens.
struct TrainBatch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> ids;         // (B, T): the clean tokens x0
  std::vector<uint8_t> mask;        // (B, T): 1 = masked (MDM objectives)
  std::vector<float> p;             // (B): masking probability of each sequence
  std::vector<float> block_p;       // (B, ceil(T / block_size)): bd: masking
                                    // probability of each block
  std::vector<int32_t> prompt_len;  // (B): SFT prompt lengths
};

// A model whose parameters live in one fp32 allocation, with gradients of
// the same layout (llm.c's "one allocation per parameter set").
class TrainableModel {
 public:
  // Random initialisation (normal(0, init_std) matrices, unit norms, zero
  // biases) from a counter-based RNG keyed by `seed`.
  TrainableModel(const ModelConfig& config, uint64_t seed,
                 float init_std = 0.02f);
  // Loads weights (any stored float dtype) from a model folder.
  static std::unique_ptr<TrainableModel> Load(const std::string& dir);
  ~TrainableModel();

  const ModelConfig& config() const { return config_; }
  // AR-to-block-diffusion adaptation (Fast-dLLM v2, SDAR start so): the same
  // weights, attention switched from causal (or full) to block-causal with
  // blocks of `block_size`; the mask token must be in the vocabulary.
  void ConvertToBlockDiffusion(int block_size, int32_t mask_token_id);
  int64_t num_params() const { return int64_t(params_.size()); }
  float* params() { return params_.data(); }
  float* grads() { return grads_.data(); }
  const std::vector<float>& param_vector() const { return params_; }

  // Every tensor: name, offset into params/grads, element count, and whether
  // weight decay applies (matrices yes; norms, biases and embeddings no).
  struct Slot {
    std::string name;
    std::vector<int64_t> shape;
    int64_t offset, numel;
    bool decay;
  };
  const std::vector<Slot>& slots() const { return slots_; }

  void ZeroGrads();
  // Forward and backward of one batch; gradients are accumulated (+=) scaled
  // by `grad_scale` (1/accumulation steps). Returns the loss (already in the
  // objective's normalisation, before grad_scale).
  double ForwardBackward(const TrainBatch& batch, Objective objective,
                         float grad_scale = 1.0f);
  // Data-parallel training: called during ForwardBackward as ranges
  // [offset, offset + count) of the gradients become final for the batch, in
  // falling address order (final norm and output head, each layer from the
  // last, the embedding), so that their all-reduce overlaps the rest of the
  // backward pass. Every gradient lies in exactly one range. Empty: none.
  using GradsReady = std::function<void(int64_t offset, int64_t count)>;
  void set_grads_ready(GradsReady f) { grads_ready_ = std::move(f); }

  // Loss only (no gradients), for validation.
  double Loss(const TrainBatch& batch, Objective objective);

  // Writes config.json + model.safetensors (LLaDA layout) into `dir`.
  // dtype "F32" or "BF16".
  void SaveModel(const std::string& dir,
                 const std::string& dtype = "F32") const;

 private:
  double Run(const TrainBatch& batch, Objective objective, bool backward,
             float grad_scale);
  void BindWeights();
  struct Activations;
  ModelConfig config_;
  std::vector<float> params_, grads_;
  std::vector<Slot> slots_;
  std::unique_ptr<Weights> w_, g_;
  std::unique_ptr<Activations> act_;
  GradsReady grads_ready_;
  // The ranges reported to grads_ready_: layers 0..L-1, then the final norm
  // and head, then the embedding.
  std::vector<std::pair<int64_t, int64_t>> ready_ranges_;
};

// AdamW with bias correction and decoupled weight decay.
struct AdamWOptions {
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f;
};

class AdamW {
 public:
  AdamW(int64_t n, AdamWOptions opt)
      : m_(size_t(n), 0.0f), v_(size_t(n), 0.0f), opt_(opt) {}
  // One update of all parameters; `step` counts from 1.
  void Update(TrainableModel& model, float lr, int64_t step);
  std::vector<float>& m() { return m_; }
  std::vector<float>& v() { return v_; }

 private:
  std::vector<float> m_, v_;
  AdamWOptions opt_;
};

// L2 norm of all gradients; scales them down to max_norm if larger (and
// max_norm > 0). Returns the norm before clipping.
double ClipGradNorm(TrainableModel& model, double max_norm);

// Learning rate: linear warmup to `lr`, then cosine decay to `min_lr` at
// `total` steps (step counts from 1).
double ScheduledLR(int64_t step, int64_t warmup, int64_t total, double lr,
                   double min_lr);

}  // namespace dllm

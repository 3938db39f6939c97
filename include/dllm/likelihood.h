// Public API: how likely a model finds an answer after a prompt, for
// multiple-choice benchmarks (the choice with the lowest negative
// log-likelihood wins) and perplexities.
#pragma once

#include <cstdint>
#include <vector>

namespace dllm {

class Model;

struct LikelihoodOptions {
  int draws = 64;  // diffusion: Monte-Carlo mask draws (the LLaDA paper: 128)
  int batch = 16;  // sequences per forward pass
  uint64_t seed = 0;
};

struct Likelihood {
  // -log p(answer | prompt) in nats. Causal models: exact. Diffusion models:
  // an unbiased estimate of the NELBO, the bound -log p <= NELBO that they
  // are trained on (LLaDA's eq. 6: l ~ U{1..L} answer tokens masked at
  // random, their cross-entropy weighted by L / l; block-diffusion models:
  // the sum of one such bound per model block, each given the clean tokens
  // before it).
  double nll = 0;
  double std_error = 0;  // of the estimate; 0 when exact
  int64_t forward_passes = 0;
  bool exact = false;
};

// Throws dllm::Error for an empty answer, ids outside the vocabulary, a
// sequence longer than the model's context, or a causal model without a
// prompt token to predict the first answer token from.
Likelihood AnswerLikelihood(Model& model, const std::vector<int32_t>& prompt,
                            const std::vector<int32_t>& answer,
                            const LikelihoodOptions& opt = {});

// The value AnswerLikelihood estimates for diffusion models, by enumerating
// every mask of the answer (2^L - 1 forward passes per block, so for tests
// and answers of at most 16 tokens per block); the exact nll for causal ones.
double ExactAnswerNelbo(Model& model, const std::vector<int32_t>& prompt,
                        const std::vector<int32_t>& answer);

}  // namespace dllm

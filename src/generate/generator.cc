// The stepper's bookkeeping: sequences in and out, accessors, timing. The
// steps themselves are in diffusion_step.cc and autoregressive.cc.
#include "dllm/generator.h"

#include <algorithm>

#include "dllm/error.h"
#include "dllm/model.h"
#include "dllm/timer.h"
#include "generate/state.h"

namespace dllm {

namespace gen {

bool IsEos(int32_t t, const std::vector<int32_t>& eos) {
  return std::find(eos.begin(), eos.end(), t) != eos.end();
}

GenerateResult ResultOf(const Canvas& c, const std::vector<int32_t>& eos) {
  GenerateResult r;
  r.canvas = c.ids;
  r.steps = c.steps_done;
  for (int i = c.prompt_len; i < c.gen_end && !c.masked[size_t(i)]; ++i) {
    if (IsEos(c.ids[size_t(i)], eos)) {
      r.hit_eos = true;
      break;
    }
    r.tokens.push_back(c.ids[size_t(i)]);
  }
  return r;
}

namespace {

Sequence& Find(GeneratorState& g, int id) {
  auto it = g.seqs.find(id);
  DLLM_CHECK(it != g.seqs.end(), "generator: no sequence with id ", id,
             " (never added, or already taken)");
  return it->second;
}

}  // namespace
}  // namespace gen

Generator::Generator(Model& model)
    : state_(std::make_unique<gen::GeneratorState>(model)) {}

Generator::~Generator() = default;

int Generator::Add(std::vector<int32_t> prompt, const GenerateOptions& opt) {
  const ModelConfig& cfg = state_->model.config();
  gen::CheckRequest(cfg, prompt, opt);
  gen::Sequence s;
  s.opt = opt;
  s.eos = opt.eos_ids;
  if (s.eos.empty() && cfg.eos_token_id >= 0) s.eos.push_back(cfg.eos_token_id);
  if (cfg.causal)
    gen::StartCausal(s, std::move(prompt), cfg);
  else
    gen::StartDiffusion(s, std::move(prompt), cfg);
  const int id = state_->next_id++;
  state_->seqs.emplace(id, std::move(s));
  return id;
}

void Generator::Cancel(int id) {
  gen::Sequence& s = gen::Find(*state_, id);
  s.canvas.done = true;
}

bool Generator::Step() {
  Timer t;
  gen::GeneratorState& g = *state_;
  const bool ran =
      g.model.config().causal ? gen::StepCausal(g) : gen::StepDiffusion(g);
  g.stats.seconds += t.Seconds();
  return ran;
}

bool Generator::Done(int id) const {
  return gen::Find(*state_, id).canvas.done;
}

const Canvas& Generator::canvas(int id) const {
  return gen::Find(*state_, id).canvas;
}

const std::vector<int32_t>& Generator::committed(int id) const {
  return gen::Find(*state_, id).committed;
}

int Generator::total_steps(int id) const {
  return gen::Find(*state_, id).total_steps;
}

GenerateResult Generator::Result(int id) const {
  const gen::Sequence& s = gen::Find(*state_, id);
  return gen::ResultOf(s.canvas, s.eos);
}

GenerateResult Generator::Take(int id) {
  GenerateResult r = Result(id);
  state_->seqs.erase(id);
  return r;
}

void Generator::Remove(int id) {
  gen::Find(*state_, id);  // unknown ids are an error, as everywhere else
  state_->seqs.erase(id);
}

std::vector<int> Generator::live() const {
  std::vector<int> out;
  for (const auto& [id, s] : state_->seqs)
    if (!s.canvas.done) out.push_back(id);
  return out;
}

std::vector<int> Generator::ids() const {
  std::vector<int> out;
  for (const auto& [id, s] : state_->seqs) out.push_back(id);
  return out;
}

const GenerateStats& Generator::stats() const { return state_->stats; }

}  // namespace dllm

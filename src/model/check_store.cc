#include "model/check_store.h"

#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "dllm/error.h"
#include "formats/safetensors.h"
#include "model/save.h"
#include "model/weights.h"
#include "ops/ops.h"

namespace dllm {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Buffers some exporters save beside the weights; we compute RoPE ourselves.
bool IsDerivedBuffer(const std::string& name) {
  return EndsWith(name, ".rotary_emb.inv_freq");
}

// Which config.json field most likely explains an unused tensor, as
// " (field value)", or "" when none does.
std::string UnusedHint(const ModelConfig& c, const std::string& name,
                       NameTable names) {
  const bool llada = c.arch == Arch::kLLaDA;
  const bool gguf = names == NameTable::kGguf;
  for (const char* key : {".blocks.", ".layers.", "blk."}) {
    size_t p = name.find(key);
    if (p == std::string::npos || (gguf && p != 0)) continue;
    const char* digits = name.c_str() + p + std::strlen(key);
    char* end = nullptr;
    long layer = std::strtol(digits, &end, 10);
    if (end != digits && layer >= c.n_layers)
      return StrCat(" (",
                    gguf    ? "block_count"
                    : llada ? "n_layers"
                            : "num_hidden_layers",
                    " ", c.n_layers, ")");
  }
  if (!c.qkv_bias && EndsWith(name, ".bias"))
    return llada && !gguf ? " (include_qkv_bias false)"
                          : " (layer 0 has no q/k/v biases, so none are used)";
  return "";
}

// Whether two stored tensors hold the same values (bitwise when they share
// a dtype, else after conversion to fp32).
bool SameValues(const TensorView& a, const TensorView& b) {
  if (a.shape != b.shape) return false;
  if (a.dtype == b.dtype) return std::memcmp(a.data, b.data, a.nbytes) == 0;
  const int64_t cols = a.shape.empty() ? 1 : a.shape.back();
  const int64_t rows = cols ? a.numel() / cols : 0;
  std::vector<float> ra(static_cast<size_t>(cols)),
      rb(static_cast<size_t>(cols));
  const size_t sa = DTypeSize(a.dtype), sb = DTypeSize(b.dtype);
  for (int64_t r = 0; r < rows; ++r) {
    ops::ToF32(a.dtype, a.data + size_t(r * cols) * sa, cols, ra.data());
    ops::ToF32(b.dtype, b.data + size_t(r * cols) * sb, cols, rb.data());
    if (ra != rb) return false;
  }
  return true;
}

}  // namespace

void CheckStoredTensors(const ModelConfig& c, const TensorStore& store,
                        NameTable names) {
  const std::string head = OutputHeadName(c, names);
  const char* cfg_name =
      names == NameTable::kGguf ? "the GGUF metadata" : "config.json";
  std::set<std::string> used;
  for (const TensorSpec& s : ListTensors(c, names)) used.insert(s.name);
  if (c.tie_embeddings && names == NameTable::kHf) {
    const TensorView* h = store.Find(head);
    const TensorView* e = store.Find(EmbeddingName(c, names));
    if (h && e && !SameValues(*h, *e))
      Fail(store.origin(), ": tensor '", head,
           "' (an output head) differs from ", "the embedding '", e->name,
           "', but config.json ties them (",
           c.arch == Arch::kLLaDA ? "weight_tying" : "tie_word_embeddings",
           " true): set it to false to use the stored head, or is config.json "
           "from another model?");
    used.insert(head);  // the same values: a duplicate some exporters write
  }

  std::vector<const TensorView*> unused;
  for (const TensorView* t : store.all())
    if (!used.count(t->name) && !IsDerivedBuffer(t->name)) unused.push_back(t);
  if (!unused.empty()) {
    const std::string more =
        unused.size() > 1
            ? StrCat("; ", unused.size(), " unused tensors in all")
            : std::string();
    std::string hint = UnusedHint(c, unused[0]->name, names);
    if (!more.empty())
      hint = hint.empty() ? " (" + more.substr(2) + ")"
                          : hint.substr(0, hint.size() - 1) + more + ")";
    Fail(store.origin(), ": tensor '", unused[0]->name, "' is not used by ",
         cfg_name, hint, ": is ", cfg_name, " from another model?");
  }

  store.CheckFinite();
}

}  // namespace dllm

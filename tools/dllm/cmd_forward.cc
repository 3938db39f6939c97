// dllm forward: raw logits for scripting and checks.
#include <cstdio>
#include <vector>

#include "args.h"
#include "command.h"
#include "dllm/error.h"
#include "dllm/files.h"
#include "dllm/model.h"
#include "dllm/runtime.h"
#include "parse_ids.h"

namespace dllm::cli {
namespace {

int RunForward(int argc, char** argv) {
  Args a(
      "dllm forward -m DIR --ids \"1 2 3\" [--positions \"0 2\"] "
      "[--dump-logits FILE]",
      "Runs one forward pass and writes the raw output rows (no logit shift: "
      "Dream's shift\n"
      "belongs to the sampler) at the chosen positions as little-endian "
      "float32, row-major\n"
      "[positions x vocab]. Prints the top token of each row on stdout.");
  a.Option("-m,--model", "DIR", "model folder");
  a.Option("--ids", "IDS", "input token ids, space or comma separated");
  a.Option("--positions", "POS",
           "positions whose logits to output (default: all)");
  a.Option("--dump-logits", "FILE", "write the logits here");
  AddThreadsOption(a);
  AddDeviceOption(a);
  if (!a.Parse(argc, argv)) return a.exit_code();
  a.Require("--model");
  a.Require("--ids");
  ApplyThreadsOption(a);
  std::vector<int32_t> ids = ParseIdList(a.Get("--ids"), "--ids");
  DLLM_USAGE_CHECK(!ids.empty(), "forward: --ids is empty");
  auto model = Model::Load(a.Get("--model"), {DeviceOption(a)});
  const ModelConfig& c = model->config();
  DLLM_CHECK(int64_t(ids.size()) <= c.max_seq_len, "forward: ", ids.size(),
             " tokens exceed the model's context of ", c.max_seq_len);
  std::vector<int32_t> rows;
  if (a.Has("--positions")) {
    rows = ParseIdList(a.Get("--positions"), "--positions");
    for (int32_t r : rows)
      DLLM_USAGE_CHECK(r >= 0 && r < int32_t(ids.size()),
                       "forward: --positions value ", r, " is outside the ",
                       ids.size(), " input tokens");
  } else {
    for (size_t i = 0; i < ids.size(); ++i) rows.push_back(int32_t(i));
  }
  ForwardBatch b;
  b.T = int64_t(ids.size());
  b.ids = ids.data();
  b.rows = rows.data();
  b.n_rows = int64_t(rows.size());
  std::vector<float> logits(rows.size() * size_t(c.vocab_size));
  model->Forward(b, logits.data());
  if (a.Has("--dump-logits")) {
    std::string path = a.Get("--dump-logits");
    WriteFileAtomic(path, logits.data(), logits.size() * sizeof(float));
    std::fprintf(stderr, "forward: wrote %zu x %d float32 logits to %s\n",
                 rows.size(), c.vocab_size, path.c_str());
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    const float* row = logits.data() + r * size_t(c.vocab_size);
    int best = 0;
    for (int v = 1; v < c.vocab_size; ++v)
      if (row[v] > row[best]) best = v;
    std::printf("position %d: top token %d (logit %.4f)\n", rows[r], best,
                row[best]);
  }
  return 0;
}

}  // namespace

DLLM_COMMAND("forward", "run one forward pass and dump logits", RunForward);

}  // namespace dllm::cli

// The training loop: batches, accumulation, clipping, AdamW, validation,
// checkpoints (atomic, every N steps and at Ctrl-C) and logs.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/mmap_file.h"
#include "dllm/error.h"
#include "dllm/timer.h"
#include "dllm/train_run.h"
#include "train/checkpoint.h"
#include "train/comm.h"
#include "train/data.h"
#include "train/grad_sync.h"
#include "train/run_files.h"

namespace dllm {

namespace {

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

struct DataMeta {
  int64_t vocab_size = 0, train_tokens = 0, val_tokens = 0, train_bytes = 0,
          val_bytes = 0;
};

DataMeta ReadDataMeta(const std::string& dir) {
  const std::string path = dir + "/meta.json";
  auto j = nlohmann::json::parse(ReadFileToString(path), nullptr, false);
  DLLM_CHECK(!j.is_discarded() && j.is_object(), path,
             ": not valid JSON (run `dllm data prepare`)");
  DataMeta m;
  auto get = [&](const char* k) {
    DLLM_CHECK(j.contains(k) && j[k].is_number_integer(), path,
               ": missing integer '", k, "'");
    return j[k].get<int64_t>();
  };
  m.vocab_size = get("vocab_size");
  m.train_tokens = get("train_tokens");
  m.val_tokens = get("val_tokens");
  m.train_bytes = get("train_bytes");
  m.val_bytes = get("val_bytes");
  return m;
}

std::string Duration(double s) {
  char buf[32];
  if (s < 60)
    std::snprintf(buf, sizeof(buf), "%.0fs", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof(buf), "%dm%02ds", int(s) / 60, int(s) % 60);
  else
    std::snprintf(buf, sizeof(buf), "%dh%02dm", int(s) / 3600,
                  (int(s) / 60) % 60);
  return buf;
}

void CopyFileIfExists(const std::string& from, const std::string& to) {
  if (!FileExists(from)) return;
  std::string s = ReadFileToString(from);
  WriteFileAtomic(to, s.data(), s.size());
}

template <typename... A>
void OptionCheck(bool ok, const A&... a) {
  if (!ok) throw TrainOptionError(StrCat("train: ", a...));
}

// Every option value on its own, before anything is read or written: a bad
// one found after hours of training (or never) is worse than none.
void ValidateOptions(const TrainRunOptions& o) {
  OptionCheck(o.batch >= 1, "--batch must be at least 1, got ", o.batch);
  OptionCheck(o.context >= 2, "--context must be at least 2, got ", o.context);
  OptionCheck(o.steps >= 1, "--steps must be at least 1, got ", o.steps);
  OptionCheck(o.accum >= 1, "--accum must be at least 1, got ", o.accum);
  OptionCheck(o.warmup >= 0, "--warmup must be 0 or more, got ", o.warmup);
  OptionCheck(std::isfinite(o.lr) && o.lr > 0,
              "--lr must be a positive number, got ", o.lr);
  OptionCheck(std::isfinite(o.min_lr) && o.min_lr >= 0 && o.min_lr <= o.lr,
              "--min-lr must be in [0, --lr = ", o.lr, "], got ", o.min_lr);
  OptionCheck(std::isfinite(o.weight_decay) && o.weight_decay >= 0,
              "--weight-decay must be 0 or more, got ", o.weight_decay);
  OptionCheck(std::isfinite(o.clip) && o.clip >= 0,
              "--clip must be 0 (off) or more, got ", o.clip);
  OptionCheck(std::isfinite(o.init_std) && o.init_std >= 0,
              "--init-std must be 0 or more, got ", o.init_std);
  OptionCheck(o.eps > 0 && o.eps < 1,
              "the minimum masking probability must be in (0, 1), got ", o.eps);
  OptionCheck(o.block_size >= 0 && o.block_size <= o.context,
              "--block-size must be in [1, --context = ", o.context, "], got ",
              o.block_size);
  OptionCheck(o.block_size == 0 || o.objective == Objective::kBD,
              "--block-size is for --objective bd (block diffusion)");
  OptionCheck(o.objective != Objective::kBD || o.block_size > 0 ||
                  !o.init_from.empty() || o.resume,
              "--objective bd needs --block-size for a fresh model");
  OptionCheck(o.eval_every >= 0, "--eval-every must be 0 (never) or more, got ",
              o.eval_every);
  OptionCheck(
      o.eval_windows >= 1 && o.eval_grid >= 1 && o.eval_draws >= 1,
      "--eval-windows, --eval-grid and --eval-draws must be at least 1");
  OptionCheck(o.ckpt_every >= 0, "--ckpt-every must be 0 or more, got ",
              o.ckpt_every);
  OptionCheck(o.log_every >= 1, "--log-every must be at least 1, got ",
              o.log_every);
  OptionCheck(o.stop_after >= 0, "--stop-after must be 0 (never) or more, got ",
              o.stop_after);
  OptionCheck(std::isfinite(o.bucket_mb) && o.bucket_mb >= 0,
              "--bucket-mb must be 0 (no overlap) or more, got ", o.bucket_mb);
  // Checked here rather than when the model is written, after all the steps.
  OptionCheck(o.save_dtype == "F32" || o.save_dtype == "BF16",
              "--save-dtype must be F32 or BF16, got '", o.save_dtype, "'");
}

// The shape options a loaded model or checkpoint must agree with.
struct ShapeOption {
  const char* option;
  const char* field;  // as in the error message
  std::string (*value)(const ModelConfig&);
};
const ShapeOption kShapeOptions[] = {
    {"--layers", "n_layers",
     [](const ModelConfig& c) { return std::to_string(c.n_layers); }},
    {"--d-model", "d_model",
     [](const ModelConfig& c) { return std::to_string(c.d_model); }},
    {"--heads", "n_heads",
     [](const ModelConfig& c) { return std::to_string(c.n_heads); }},
    {"--kv-heads", "n_kv_heads",
     [](const ModelConfig& c) { return std::to_string(c.n_kv_heads); }},
    {"--ffn", "d_ff",
     [](const ModelConfig& c) { return std::to_string(c.d_ff); }},
    {"--rope-theta", "rope_theta",
     [](const ModelConfig& c) { return StrCat(c.rope_theta); }},
    {"--tied", "tie_embeddings",
     [](const ModelConfig& c) {
       return std::string(c.tie_embeddings ? "true" : "false");
     }},
    {"--qkv-bias", "qkv_bias",
     [](const ModelConfig& c) {
       return std::string(c.qkv_bias ? "true" : "false");
     }},
};

void CheckShapeOptions(const TrainRunOptions& o, const ModelConfig& loaded,
                       const std::string& origin) {
  for (const std::string& name : o.shape_options) {
    const ShapeOption* s = nullptr;
    for (const ShapeOption& k : kShapeOptions)
      if (name == k.option) s = &k;
    DLLM_ASSERT(s != nullptr);
    const std::string want = s->value(o.config), have = s->value(loaded);
    OptionCheck(want == have, name, " ", want, " disagrees with ", origin, " (",
                s->field, " ", have, "): the shape comes from there, leave ",
                name, " out");
  }
}

// The settings that differ between a checkpoint and this run, by option,
// with both values. `steps` may differ: a resume may train longer or stop.
std::string RunDifferences(const nlohmann::json& saved,
                           const nlohmann::json& now) {
  std::string out;
  auto name = [](const std::string& key) {
    if (key == "train_tokens") return std::string("train_tokens (the data)");
    if (key == "eps") return key;
    std::string flag = "--" + key;
    for (char& ch : flag)
      if (ch == '_') ch = '-';
    return flag;
  };
  auto add = [&](const std::string& key, const std::string& a,
                 const std::string& b) {
    out += StrCat(out.empty() ? "" : "; ", name(key), ": checkpoint ", a,
                  ", now ", b);
  };
  for (const auto& [k, v] : saved.items()) {
    if (k == "steps") continue;
    if (!now.contains(k))
      add(k, v.dump(), "(none)");
    else if (now[k] != v)
      add(k, v.dump(), now[k].dump());
  }
  for (const auto& [k, v] : now.items())
    if (k != "steps" && !saved.contains(k)) add(k, "(none)", v.dump());
  return out;
}

constexpr const char* kLogHeader =
    "step,loss,lr,grad_norm,ms,tokens_per_s,val_nats_per_token,"
    "val_bits_per_byte\n";

}  // namespace

namespace {

// The validation estimate; with several ranks each computes every size-th
// piece (a batch of windows at one t and draw) and the sums are added up.
EvalResult EvaluateModelOn(Comm& comm, TrainableModel& model,
                           const std::string& data_dir, int64_t context,
                           int64_t windows, int64_t grid, int64_t draws,
                           uint64_t seed) {
  DLLM_CHECK(context >= 2 && windows >= 1 && grid >= 1 && draws >= 1,
             "evaluation needs context >= 2 and at least one window, t value "
             "and mask draw");
  const DataMeta meta = ReadDataMeta(data_dir);
  TokenFile val(data_dir + "/val.bin", model.config().vocab_size);
  DLLM_CHECK(val.size() >= 2, data_dir, "/val.bin has ", val.size(),
             " tokens: too few to validate on (prepare the data with a larger "
             "--val-fraction)");
  const bool ar = model.config().causal;
  const int64_t block = model.config().block_size;
  const int64_t T = std::min<int64_t>(context, val.size());
  const int64_t per_batch = std::min<int64_t>(8, windows);
  double sum = 0, n = 0;
  int64_t piece = 0;
  auto mine = [&] { return piece++ % comm.size() == comm.rank(); };
  for (int64_t w0 = 0; w0 < windows; w0 += per_batch) {
    const int64_t B = std::min(per_batch, windows - w0);
    TrainBatch b;
    FixedWindows(val, B, T, w0, windows, &b);
    if (ar) {
      if (!mine()) continue;
      sum += model.Loss(b, Objective::kAR) * double(B);
      n += double(B);
      continue;
    }
    // NELBO: a fixed midpoint grid over t, several mask draws at each. For
    // block diffusion the bound is a sum of one ELBO per block (each given
    // the clean blocks before it); the same t in every block puts each of
    // them on the grid.
    for (int64_t g = 0; g < grid; ++g)
      for (int64_t d = 0; d < draws; ++d) {
        if (!mine()) continue;
        MaskAtT(&b, (double(g) + 0.5) / double(grid), seed,
                g * draws + d + 1000 * w0, block);
        sum += model.Loss(b, block > 0 ? Objective::kBD : Objective::kMDM) *
               double(B);
        n += double(B);
      }
  }
  double both[2] = {sum, n};
  comm.AllReduceSum(both, 2);
  EvalResult r;
  r.nats_per_token = both[0] / std::max(both[1], 1.0);
  r.tokens = windows * T;
  const double bytes_per_token =
      double(meta.val_bytes) / double(std::max<int64_t>(meta.val_tokens, 1));
  r.bits_per_byte = r.nats_per_token / bytes_per_token / std::log(2.0);
  return r;
}

}  // namespace

EvalResult EvaluateModel(TrainableModel& model, const std::string& data_dir,
                         int64_t context, int64_t windows, int64_t grid,
                         int64_t draws, uint64_t seed) {
  return EvaluateModelOn(*MakeSingleProcessComm(), model, data_dir, context,
                         windows, grid, draws, seed);
}

namespace {

// FNV-1a over the parameters' bytes: ranks that applied the same updates to
// the same start hold the same bits.
uint64_t ParamsHash(const TrainableModel& m) {
  uint64_t h = 1469598103934665603ull;
  const auto* p =
      reinterpret_cast<const unsigned char*>(m.param_vector().data());
  for (size_t i = 0; i < m.param_vector().size() * 4; ++i)
    h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// Rank 0's model, moments and step on every rank. The others build the
// model from rank 0's config.json (so only rank 0 reads checkpoints and
// initial models: they need not be on every machine).
void ShareStart(Comm& comm, std::unique_ptr<TrainableModel>* model,
                std::unique_ptr<AdamW>* opt, int64_t* start,
                const TrainRunOptions& o) {
  std::string config =
      comm.rank() == 0 ? ModelConfigToJson((*model)->config()) : std::string();
  int64_t head[2] = {int64_t(config.size()), *start};
  comm.Broadcast(head, sizeof(head), 0);
  config.resize(size_t(head[0]));
  comm.Broadcast(config.data(), head[0], 0);
  *start = head[1];
  if (comm.rank() != 0) {
    *model = std::make_unique<TrainableModel>(
        ParseModelConfig(config, "rank 0's model"), o.seed);
    *opt = std::make_unique<AdamW>(
        (*model)->num_params(),
        AdamWOptions{0.9f, 0.95f, 1e-8f, float(o.weight_decay)});
  }
  const int64_t n = (*model)->num_params();
  comm.Broadcast((*model)->params(), n * 4, 0);
  comm.Broadcast((*opt)->m().data(), n * 4, 0);
  comm.Broadcast((*opt)->v().data(), n * 4, 0);
}

int RunTrainingOn(Comm& comm, const TrainRunOptions& o);

}  // namespace

bool HaveMpi() {
#ifdef DLLM_HAVE_MPI
  return true;
#else
  return false;
#endif
}

int RunTraining(const TrainRunOptions& o) {
  if (!LaunchedByMpiLauncher())
    return RunTrainingOn(*MakeSingleProcessComm(), o);
  std::unique_ptr<Comm> comm = MakeMpiComm();
  try {
    return RunTrainingOn(*comm, o);
  } catch (const std::exception& e) {
    // One rank's error ends the job: the others would wait for it in the
    // next collective forever.
    std::fprintf(stderr, "error: train (rank %d of %d): %s\n", comm->rank(),
                 comm->size(), e.what());
    std::fflush(stderr);
    comm->Abort(dynamic_cast<const TrainOptionError*>(&e) ? 2 : 1);
  }
  return 1;  // not reached: Abort ends the process
}

namespace {

int RunTrainingOn(Comm& comm, const TrainRunOptions& o) {
  ValidateOptions(o);
  const int nranks = comm.size(), rank = comm.rank();
  const bool lead = rank == 0;  // logs, validates, writes every file
  OptionCheck(o.batch >= nranks, "--batch ", o.batch, " is smaller than the ",
              nranks, " processes: each needs at least one sequence");
  const DataMeta meta = ReadDataMeta(o.data_dir);
  if (lead && mkdir(o.out_dir.c_str(), 0755) != 0 && errno != EEXIST)
    Fail(o.out_dir, ": cannot create folder: ", std::strerror(errno));
  if (lead)
    for (const std::string& name : RemoveStaleTempFiles(o.out_dir))
      std::fprintf(stderr, "train: removed %s/%s, left by a killed save\n",
                   o.out_dir.c_str(), name.c_str());
  const std::string ckpt = o.out_dir + "/checkpoint.safetensors";
  const std::string csv = o.out_dir + "/train_log.csv";
  const nlohmann::json run = {{"objective", ObjectiveName(o.objective)},
                              {"batch", o.batch},
                              {"context", o.context},
                              {"steps", o.steps},
                              {"accum", o.accum},
                              {"warmup", o.warmup},
                              {"lr", o.lr},
                              {"min_lr", o.min_lr},
                              {"weight_decay", o.weight_decay},
                              {"clip", o.clip},
                              {"eps", o.eps},
                              {"seed", o.seed},
                              {"train_tokens", meta.train_tokens}};

  // The model: from a checkpoint, a model folder, or fresh.
  std::unique_ptr<TrainableModel> model;
  int64_t start = 0;
  std::unique_ptr<AdamW> opt;
  if (!lead) {
    // Everything comes from rank 0 (ShareStart, below).
  } else if (o.resume) {
    DLLM_CHECK(FileExists(ckpt), ckpt, ": no checkpoint to resume from");
    CheckpointMeta cm = ReadCheckpointMeta(ckpt);
    auto saved = nlohmann::json::parse(cm.run_json, nullptr, false);
    DLLM_CHECK(saved.is_object(), ckpt, ": its run settings are not JSON");
    const std::string diff = RunDifferences(saved, run);
    OptionCheck(diff.empty(), ckpt, " was written with other settings: ", diff,
                "; resume with the same options");
    const ModelConfig saved_config = ParseModelConfig(cm.config_json, ckpt);
    CheckShapeOptions(o, saved_config, ckpt);
    OptionCheck(o.block_size == 0 || o.block_size == saved_config.block_size,
                "--block-size ", o.block_size, " disagrees with ", ckpt,
                " (block_size ", saved_config.block_size, ")");
    CheckSameTokenizer(o.data_dir, o.out_dir);
    model = std::make_unique<TrainableModel>(saved_config, o.seed);
    opt = std::make_unique<AdamW>(
        model->num_params(),
        AdamWOptions{0.9f, 0.95f, 1e-8f, float(o.weight_decay)});
    start = LoadCheckpoint(ckpt, *model, *opt).step;
    std::fprintf(stderr, "train: resuming from %s at step %lld\n", ckpt.c_str(),
                 (long long)start);
  } else {
    if (!o.init_from.empty()) {
      CheckSameTokenizer(o.data_dir, o.init_from);
      CheckShapeOptions(o, LoadModelConfig(o.init_from + "/config.json"),
                        o.init_from);
      model = TrainableModel::Load(o.init_from);
      const ModelConfig& lc = model->config();
      if (o.objective == Objective::kBD &&
          (lc.block_size == 0 ||
           (o.block_size > 0 && o.block_size != lc.block_size))) {
        // AR (or full-attention) to block diffusion: same weights, new mask.
        OptionCheck(o.block_size > 0, "--objective bd from ", o.init_from,
                    ", which is not a block-diffusion model, needs "
                    "--block-size");
        const int32_t mask =
            lc.mask_token_id >= 0 && lc.mask_token_id < lc.vocab_size
                ? lc.mask_token_id
                : o.config.mask_token_id;
        std::fprintf(stderr,
                     "train: adapting %s (%s) to block diffusion with blocks "
                     "of %lld, mask token %d\n",
                     o.init_from.c_str(),
                     lc.causal           ? "causal"
                     : lc.block_size > 0 ? "block diffusion"
                                         : "full attention",
                     (long long)o.block_size, int(mask));
        model->ConvertToBlockDiffusion(int(o.block_size), mask);
      }
    } else {
      ModelConfig fresh = o.config;
      if (o.objective == Objective::kBD) {
        OptionCheck(o.block_size > 0,
                    "--objective bd needs --block-size for a fresh model");
        fresh.causal = false;
        fresh.block_size = int(o.block_size);
      }
      // The same checks as a config.json read from disk.
      model = std::make_unique<TrainableModel>(
          ParseModelConfig(ModelConfigToJson(fresh), "the model shape"), o.seed,
          float(o.init_std));
    }
    opt = std::make_unique<AdamW>(
        model->num_params(),
        AdamWOptions{0.9f, 0.95f, 1e-8f, float(o.weight_decay)});
  }
  if (nranks > 1) ShareStart(comm, &model, &opt, &start, o);
  const ModelConfig& c = model->config();
  DLLM_CHECK(c.vocab_size >= meta.vocab_size, o.data_dir,
             ": the data's vocabulary (", meta.vocab_size,
             ") is larger than the model's (", c.vocab_size, ")");
  DLLM_CHECK((o.objective == Objective::kAR) == c.causal, "objective ",
             ObjectiveName(o.objective), " needs a ",
             c.causal ? "bidirectional" : "causal", " model");
  DLLM_CHECK((o.objective == Objective::kBD) == (c.block_size > 0),
             "objective ", ObjectiveName(o.objective),
             c.block_size > 0
                 ? " does not train block-diffusion models (config.json "
                   "\"block_size\"); use --objective bd"
                 : " needs a block-diffusion model (give --block-size)");
  DLLM_CHECK(o.context <= c.max_seq_len, "train: context ", o.context,
             " exceeds the model's ", c.max_seq_len);

  std::unique_ptr<TokenFile> train;
  std::unique_ptr<SftData> sft;
  if (o.objective == Objective::kMDMSFT) {
    sft = std::make_unique<SftData>(o.data_dir, c.vocab_size);
    // A prompt that fills the whole window would leave no answer to learn.
    int64_t too_long = 0;
    for (const SftRecord& r : sft->records())
      too_long += r.prompt_len >= o.context;
    DLLM_CHECK(too_long == 0, o.data_dir, ": ", too_long,
               " conversations have prompts of --context (", o.context,
               ") tokens or more; raise --context or shorten them");
  } else
    train =
        std::make_unique<TokenFile>(o.data_dir + "/train.bin", c.vocab_size);
  // Validation needs a split of at least 2 tokens (a one-line corpus can
  // leave it empty); without one, training runs without validation.
  const bool have_val = o.objective != Objective::kMDMSFT &&
                        meta.val_tokens >= 2 &&
                        FileExists(o.data_dir + "/val.bin");
  if (lead && !have_val && o.objective != Objective::kMDMSFT &&
      o.eval_every > 0)
    std::fprintf(
        stderr,
        "train: %s has no validation split; training without validation\n",
        o.data_dir.c_str());

  // The log holds the steps up to the checkpoint: the ones after it (run
  // before a kill) are about to be run again.
  std::FILE* log = nullptr;
  if (lead) {
    if (start > 0) TruncateLog(csv, start, kLogHeader);
    log = std::fopen(csv.c_str(), start > 0 ? "a" : "w");
    DLLM_CHECK(log != nullptr, csv, ": cannot open for writing");
    if (start == 0) std::fputs(kLogHeader, log);
    // The tokenizer beside the weights, so that the folder loads as a model
    // from the first checkpoint on (the data's, or the initial model's).
    for (const char* name : {"tokenizer.json", "tokenizer_config.json"}) {
      const std::string from = o.data_dir + "/" + name;
      if (FileExists(from))
        CopyFileIfExists(from, o.out_dir + "/" + name);
      else if (!o.init_from.empty() && !o.resume)
        CopyFileIfExists(o.init_from + "/" + name, o.out_dir + "/" + name);
    }
    if (start >= o.steps)
      std::fprintf(stderr,
                   "train: the checkpoint is at step %lld, already at --steps "
                   "%lld; writing the model\n",
                   (long long)start, (long long)o.steps);
    std::fprintf(stderr,
                 "train: %s, %s %d layers d=%d heads %d ffn %d vocab %d: %.2fM "
                 "params | batch %lld x %lld "
                 "tokens x %lld accum | %lld steps\n",
                 ObjectiveName(o.objective), ArchName(c.arch), c.n_layers,
                 c.d_model, c.n_heads, c.d_ff, c.vocab_size,
                 double(model->num_params()) / 1e6, (long long)o.batch,
                 (long long)o.context, (long long)o.accum, (long long)o.steps);
    if (nranks > 1)
      std::fprintf(stderr,
                   "train: data parallel over %d processes (%s): %lld-%lld "
                   "sequences of each batch per process, gradient buckets of "
                   "%.3g MiB\n",
                   nranks, comm.name(), (long long)(o.batch / nranks),
                   (long long)((o.batch + nranks - 1) / nranks), o.bucket_mb);
  }
  // This rank's rows of every batch: [row0, row0 + rows).
  const int64_t row0 = o.batch * rank / nranks,
                rows = o.batch * (rank + 1) / nranks - row0;
  // Its share of the loss's normalisation (each objective's loss is a mean
  // over the sequences of the batch, every sequence weighing the same).
  const double share = double(rows) / double(o.batch);
  g_stop = 0;
  auto old_int = std::signal(SIGINT, OnSignal);
  auto old_term = std::signal(SIGTERM, OnSignal);
  const bool tty = lead && isatty(fileno(stderr));
  Timer wall;
  int64_t step = start;
  double comm_seconds = 0, step_seconds = 0;
  // The checkpoint, then the model it holds: each file is replaced
  // atomically and config.json never changes within a run, so a kill at any
  // moment leaves a folder that loads (the model at this checkpoint or the
  // one before) and a checkpoint that resumes.
  int64_t saved_step = -1;
  auto save = [&] {
    if (saved_step == step) return;  // --ckpt-every and the stop coincide
    saved_step = step;
    if (nranks > 1) {
      // Every rank must hold rank 0's parameters: a divergence (a bug, or
      // a machine computing other bits) would make the checkpoint a lie.
      uint64_t h = ParamsHash(*model), h0 = h;
      comm.Broadcast(&h0, sizeof(h0), 0);
      DLLM_CHECK(h == h0, "train: at step ", step, " the parameters of rank ",
                 rank, " differ from rank 0's");
    }
    if (!lead) return;
    SaveCheckpoint(
        ckpt, *model, *opt,
        {step, ObjectiveName(o.objective), ModelConfigToJson(c), run.dump()});
    model->SaveModel(o.out_dir, o.save_dtype);
  };
  const int64_t bucket_bytes = int64_t(o.bucket_mb * 1024 * 1024);
  int code = 0;
  while (step < o.steps) {
    ++step;
    Timer t;
    model->ZeroGrads();
    GradSync sync(comm, model->grads(), model->num_params(), bucket_bytes);
    double loss = 0;
    for (int64_t micro = 0; micro < o.accum; ++micro) {
      TrainBatch b;
      const int64_t key = (step - 1) * o.accum + micro;
      if (sft) {
        SampleSft(*sft, rows, o.context, c.eos_token_id, o.seed, key, &b, row0);
        MaskForMDM(&b, o.seed, key, o.eps, false, row0);
      } else {
        SampleWindows(*train, rows, o.context, o.seed, key, &b, row0);
        if (o.objective == Objective::kMDM)
          MaskForMDM(&b, o.seed, key, o.eps, o.random_length, row0);
        else if (o.objective == Objective::kBD)
          MaskForBD(&b, c.block_size, o.seed, key, o.eps, row0);
      }
      // The last micro-batch finishes the gradients: its backward pass
      // hands them to the all-reduce as they become final.
      if (nranks > 1 && micro + 1 == o.accum)
        model->set_grads_ready(
            [&sync](int64_t at, int64_t n) { sync.Ready(at, n); });
      const double scale = share / double(o.accum);
      loss += model->ForwardBackward(b, o.objective, float(scale)) * scale;
      model->set_grads_ready(nullptr);
    }
    double step_comm = 0;
    // Decided once per step for all ranks: a signal that lands later in the
    // step (on one rank only) counts at the next.
    bool stop = false;
    if (nranks > 1) {
      sync.Finish();
      // The whole batch's loss, and whether any rank was asked to stop (so
      // that all stop after the same step).
      Timer tr;
      double both[2] = {loss, g_stop ? 1.0 : 0.0};
      comm.AllReduceSum(both, 2);
      loss = both[0];
      stop = both[1] > 0;
      step_comm = sync.seconds() + tr.Seconds();
    } else {
      stop = g_stop;
    }
    const double norm = ClipGradNorm(*model, o.clip);
    const double lr = ScheduledLR(step, o.warmup, o.steps, o.lr, o.min_lr);
    opt->Update(*model, float(lr), step);
    const double ms = t.Millis();
    comm_seconds += step_comm, step_seconds += ms * 1e-3;
    const double tps = double(o.batch * o.context * o.accum) / (ms * 1e-3);
    double val = NAN, bpb = NAN;
    const bool eval_now = have_val && o.eval_every > 0 &&
                          (step % o.eval_every == 0 || step == o.steps);
    if (eval_now) {
      EvalResult r =
          EvaluateModelOn(comm, *model, o.data_dir, o.context, o.eval_windows,
                          o.eval_grid, o.eval_draws, o.seed);
      val = r.nats_per_token, bpb = r.bits_per_byte;
    }
    const double eta =
        wall.Seconds() / double(step - start) * double(o.steps - step);
    std::string comm_note;
    if (nranks > 1)
      comm_note =
          StrCat(" | comm ", int(100 * step_comm / (ms * 1e-3) + 0.5), "%");
    if (!lead) {
      // Nothing to print or write.
    } else if (step % o.log_every == 0 || step == o.steps || eval_now) {
      if (tty) std::fputs("\r\x1b[K", stderr);  // clear the progress bar
      std::fprintf(stderr,
                   "step %lld/%lld | loss %.4f | lr %.1e | norm %.3f | %.1f ms "
                   "| %.0f tok/s%s | eta %s%s",
                   (long long)step, (long long)o.steps, loss, lr, norm, ms, tps,
                   comm_note.c_str(), Duration(eta).c_str(),
                   eval_now ? "" : "\n");
      if (eval_now)
        std::fprintf(stderr, " | val %.4f nats/tok, %.4f bits/byte\n", val,
                     bpb);
    } else if (tty) {
      // Between log lines, a progress bar with the ETA on the same line.
      const int width = 30, done = int(width * step / o.steps);
      std::fprintf(stderr, "\r[%s%s] %lld/%lld | loss %.4f | eta %s\x1b[K",
                   std::string(size_t(done), '=').c_str(),
                   std::string(size_t(width - done), ' ').c_str(),
                   (long long)step, (long long)o.steps, loss,
                   Duration(eta).c_str());
      std::fflush(stderr);
    }
    if (lead) {
      std::fprintf(log, "%lld,%.6f,%.6e,%.6f,%.3f,%.1f,", (long long)step, loss,
                   lr, norm, ms, tps);
      if (eval_now)
        std::fprintf(log, "%.6f,%.6f\n", val, bpb);
      else
        std::fprintf(log, ",\n");
      std::fflush(log);
    }
    if (!std::isfinite(loss)) {
      if (log) std::fclose(log);
      Fail("train: the loss became ", loss, " at step ", step,
           ": lower --lr (the last checkpoint is intact)");
    }
    if (o.ckpt_every > 0 && step % o.ckpt_every == 0) save();
    if (o.stop_after > 0 && step - start >= o.stop_after) stop = true;
    if (stop) {
      save();
      if (lead)
        std::fprintf(stderr,
                     "train: interrupted at step %lld; checkpoint saved to %s "
                     "(continue with --resume), model of this step in %s\n",
                     (long long)step, ckpt.c_str(), o.out_dir.c_str());
      code = 130;
      break;
    }
  }
  if (log) std::fclose(log);
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  if (code == 0) {
    save();
    if (lead)
      std::fprintf(stderr, "train: done in %s; model written to %s\n",
                   Duration(wall.Seconds()).c_str(), o.out_dir.c_str());
  }
  if (lead && nranks > 1 && step_seconds > 0)
    std::fprintf(
        stderr,
        "train: %d processes; communication took %.1f%% of the step "
        "time (%.1f ms per step)\n",
        nranks, 100 * comm_seconds / step_seconds,
        1e3 * comm_seconds / double(std::max<int64_t>(1, step - start)));
  return code;
}

}  // namespace

}  // namespace dllm

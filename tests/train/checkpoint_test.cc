// Checkpoints: resuming reproduces an uninterrupted run's losses, a kill -9
// during a save leaves the previous checkpoint intact, and corrupt or
// mismatched checkpoints are refused with a clear error.
#include "train/checkpoint.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/mmap_file.h"
#include "base/rng.h"
#include "dllm/train_run.h"
#include "formats/safetensors.h"
#include "test_util.h"
#include "train/run_files.h"

namespace dllm {
namespace {

// A small data folder: random tokens with some structure.
void MakeData(const std::string& dir, int vocab) {
  std::vector<int32_t> train, val;
  for (int i = 0; i < 4000; ++i)
    train.push_back(int32_t(
        2 + (i * 7 + int(RandomBits(1, 0, uint64_t(i)) % 3)) % (vocab - 2)));
  for (int i = 0; i < 600; ++i)
    val.push_back(int32_t(2 + (i * 7) % (vocab - 2)));
  WriteTokenFile(dir + "/train.bin", train);
  WriteTokenFile(dir + "/val.bin", val);
  std::string meta = "{\"vocab_size\": " + std::to_string(vocab) +
                     ", \"mask_token_id\": 1, \"eos_token_id\": 0, "
                     "\"train_tokens\": 4000, \"val_tokens\": 600,"
                     " \"train_bytes\": 12000, \"val_bytes\": 1800}";
  WriteFileAtomic(dir + "/meta.json", meta.data(), meta.size());
}

TrainRunOptions Options(const std::string& data, const std::string& out,
                        Objective obj) {
  TrainRunOptions o;
  o.data_dir = data, o.out_dir = out, o.objective = obj;
  ModelConfig& c = o.config;
  c.arch = Arch::kLLaDA, c.n_layers = 2, c.d_model = 32, c.n_heads = 4,
  c.n_kv_heads = 4, c.head_dim = 8;
  c.d_ff = 64, c.vocab_size = 64, c.max_seq_len = 64, c.rope_theta = 10000;
  c.mask_token_id = 1, c.eos_token_id = 0, c.causal = obj == Objective::kAR;
  o.batch = 4, o.context = 16, o.steps = 8, o.warmup = 2, o.lr = 3e-3,
  o.eval_every = 4, o.eval_windows = 4;
  o.ckpt_every = 0;
  return o;
}

// "step,loss,..." lines of a train_log.csv, keyed by step.
std::vector<std::string> LossColumn(const std::string& csv) {
  std::vector<std::string> out;
  std::istringstream in(ReadFileToString(csv));
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line))
    out.push_back(line.substr(0, line.find(',', line.find(',') + 1)));
  return out;
}

TEST(Checkpoint, ResumeReproducesTheUninterruptedRun) {
  for (Objective obj : {Objective::kMDM, Objective::kAR}) {
    test::TempDir dir;
    MakeData(dir.path(), 64);
    TrainRunOptions a = Options(dir.path(), dir / "a", obj);
    ASSERT_EQ(RunTraining(a), 0);
    TrainRunOptions b = Options(dir.path(), dir / "b", obj);
    b.stop_after = 3;
    ASSERT_EQ(RunTraining(b), 130);  // stopped as at Ctrl-C, checkpoint saved
    EXPECT_EQ(ReadCheckpointMeta(dir / "b/checkpoint.safetensors").step, 3);
    b.stop_after = 0;
    b.resume = true;
    ASSERT_EQ(RunTraining(b), 0);
    auto la = LossColumn(dir / "a/train_log.csv"),
         lb = LossColumn(dir / "b/train_log.csv");
    ASSERT_EQ(la.size(), 8u);
    EXPECT_EQ(la, lb) << ObjectiveName(
        obj);  // step and loss, as printed, identical
    // The final models are identical too.
    EXPECT_EQ(ReadFileToString(dir / "a/model.safetensors"),
              ReadFileToString(dir / "b/model.safetensors"));
  }
}

// Ctrl-C (here --stop-after) leaves a model folder that loads, holding the
// checkpoint's weights; a resume to fewer steps than done writes the model
// and stops, one to more steps continues.
TEST(Checkpoint, StoppedRunLeavesALoadableModel) {
  test::TempDir dir;
  MakeData(dir.path(), 64);
  std::string tok = "{\"model\": {\"type\": \"BPE\"}}";  // copied, not parsed
  WriteFileAtomic(dir / "tokenizer.json", tok.data(), tok.size());
  TrainRunOptions o = Options(dir.path(), dir / "m", Objective::kMDM);
  o.stop_after = 3;
  ASSERT_EQ(RunTraining(o), 130);
  auto model = TrainableModel::Load(dir / "m");
  TrainableModel from_ckpt(model->config(), 7);
  AdamW opt(from_ckpt.num_params(), AdamWOptions{});
  EXPECT_EQ(
      LoadCheckpoint(dir / "m/checkpoint.safetensors", from_ckpt, opt).step, 3);
  EXPECT_EQ(model->param_vector(), from_ckpt.param_vector());
  EXPECT_EQ(ReadFileToString(dir / "m/tokenizer.json"), tok);
  EvalResult r = EvaluateModel(*model, dir.path(), 16, 2, 2, 1, 1);
  EXPECT_GT(r.nats_per_token, 0.0);

  // Fewer steps than the checkpoint's 3: the model is written, nothing run.
  o.stop_after = 0;
  o.resume = true;
  o.steps = 2;
  ASSERT_EQ(RunTraining(o), 0);
  EXPECT_EQ(ReadCheckpointMeta(dir / "m/checkpoint.safetensors").step, 3);
  EXPECT_EQ(TrainableModel::Load(dir / "m")->param_vector(),
            from_ckpt.param_vector());
  // More steps: continues from 3 to 5, the log one row per step.
  o.steps = 5;
  ASSERT_EQ(RunTraining(o), 0);
  EXPECT_EQ(ReadCheckpointMeta(dir / "m/checkpoint.safetensors").step, 5);
  auto steps = LossColumn(dir / "m/train_log.csv");
  ASSERT_EQ(steps.size(), 5u);
  for (size_t i = 0; i < steps.size(); ++i)
    EXPECT_EQ(steps[i].substr(0, steps[i].find(',')), std::to_string(i + 1));
}

// A kill after the checkpoint leaves log rows of steps that the resume runs
// again: they are cut, so the log is the uninterrupted run's.
TEST(Checkpoint, ResumeCutsTheLogBackToTheCheckpoint) {
  test::TempDir dir;
  MakeData(dir.path(), 64);
  TrainRunOptions a = Options(dir.path(), dir / "a", Objective::kMDM);
  ASSERT_EQ(RunTraining(a), 0);
  TrainRunOptions b = Options(dir.path(), dir / "b", Objective::kMDM);
  b.stop_after = 2;
  ASSERT_EQ(RunTraining(b), 130);
  const std::string at2 = ReadFileToString(dir / "b/checkpoint.safetensors");
  b.resume = true;
  ASSERT_EQ(RunTraining(b), 130);  // steps 3 and 4 logged...
  // ...then killed before its checkpoint: the one of step 2 is on disk, and
  // half a row.
  WriteFileAtomic(dir / "b/checkpoint.safetensors", at2.data(), at2.size());
  {
    std::ofstream torn(dir / "b/train_log.csv", std::ios::app);
    torn << "5,3.9";
  }
  b.stop_after = 0;
  ASSERT_EQ(RunTraining(b), 0);
  EXPECT_EQ(LossColumn(dir / "a/train_log.csv"),
            LossColumn(dir / "b/train_log.csv"));
  EXPECT_EQ(ReadFileToString(dir / "a/model.safetensors"),
            ReadFileToString(dir / "b/model.safetensors"));
}

// A kill -9 during a save leaves NAME.tmp.PID; the next run removes those of
// dead processes and keeps those of live ones (a save in progress).
TEST(Checkpoint, StaleTempFilesAreRemoved) {
  test::TempDir dir;
  MakeData(dir.path(), 64);
  pid_t dead = fork();
  ASSERT_GE(dead, 0);
  if (dead == 0) _exit(0);
  waitpid(dead, nullptr, 0);
  ASSERT_EQ(mkdir((dir / "m").c_str(), 0755), 0);
  const std::string stale =
      dir / ("m/checkpoint.safetensors.tmp." + std::to_string(dead));
  const std::string live =
      dir / ("m/model.safetensors.tmp." + std::to_string(getppid()));
  const std::string other = dir / "m/notes.tmp.txt";
  for (const std::string& f : {stale, live, other}) WriteFileAtomic(f, "x", 1);
  TrainRunOptions o = Options(dir.path(), dir / "m", Objective::kMDM);
  o.steps = 1;
  ASSERT_EQ(RunTraining(o), 0);
  EXPECT_FALSE(FileExists(stale));
  EXPECT_TRUE(FileExists(live));
  EXPECT_TRUE(FileExists(other));
  EXPECT_TRUE(RemoveStaleTempFiles(dir / "m").empty());
}

// Bad values are refused before anything runs, naming the option; shape
// options that disagree with the model continued from are refused, not
// ignored.
TEST(Checkpoint, BadOptionsAreRefusedByName) {
  test::TempDir dir;
  MakeData(dir.path(), 64);
  struct Case {
    void (*set)(TrainRunOptions&);
    const char* option;
  };
  const Case cases[] = {
      {[](TrainRunOptions& o) { o.lr = -1; }, "--lr"},
      {[](TrainRunOptions& o) { o.warmup = -1; }, "--warmup"},
      {[](TrainRunOptions& o) { o.clip = -1; }, "--clip"},
      {[](TrainRunOptions& o) { o.weight_decay = -1; }, "--weight-decay"},
      {[](TrainRunOptions& o) { o.min_lr = 2 * o.lr; }, "--min-lr"},
      {[](TrainRunOptions& o) { o.ckpt_every = -1; }, "--ckpt-every"},
      {[](TrainRunOptions& o) { o.init_std = -1; }, "--init-std"},
      {[](TrainRunOptions& o) { o.save_dtype = "F16"; }, "--save-dtype"},
      {[](TrainRunOptions& o) { o.batch = 0; }, "--batch"},
  };
  for (const Case& c : cases) {
    TrainRunOptions o = Options(dir.path(), dir / "m", Objective::kMDM);
    c.set(o);
    try {
      RunTraining(o);
      ADD_FAILURE() << c.option << " accepted";
    } catch (const TrainOptionError& e) {
      EXPECT_NE(std::string(e.what()).find(c.option), std::string::npos)
          << e.what();
    }
    // Refused before the output folder (and its log) was made.
    EXPECT_FALSE(FileExists(dir / "m/train_log.csv")) << c.option;
  }

  TrainRunOptions o = Options(dir.path(), dir / "m", Objective::kMDM);
  o.stop_after = 1;
  ASSERT_EQ(RunTraining(o), 130);
  for (bool resume : {true, false}) {
    TrainRunOptions r = Options(dir.path(), dir / "r", Objective::kMDM);
    if (resume)
      r.out_dir = dir / "m", r.resume = true;
    else
      r.init_from = dir / "m";
    r.config.n_layers = 3;
    r.shape_options = {"--layers"};
    EXPECT_THROW(
        {
          try {
            RunTraining(r);
          } catch (const TrainOptionError& e) {
            EXPECT_NE(
                std::string(e.what()).find(
                    "--layers 3 disagrees with " +
                    (resume ? dir / "m/checkpoint.safetensors" : dir / "m") +
                    " (n_layers 2)"),
                std::string::npos)
                << e.what();
            throw;
          }
        },
        TrainOptionError);
    // Options that agree are fine.
    r.config.n_layers = 2;
    r.shape_options = {"--layers", "--d-model"};
    r.steps = 2;
    EXPECT_EQ(RunTraining(r), 0);
  }
}

TEST(Checkpoint, CorruptOrMismatchedIsRefused) {
  test::TempDir dir;
  MakeData(dir.path(), 64);
  TrainRunOptions o = Options(dir.path(), dir / "m", Objective::kMDM);
  o.stop_after = 2;
  ASSERT_EQ(RunTraining(o), 130);
  const std::string ckpt = dir / "m/checkpoint.safetensors";
  const std::string good = ReadFileToString(ckpt);
  o.stop_after = 0;
  o.resume = true;
  // Other settings than the checkpoint's.
  // Other settings than the checkpoint's: each one named with both values.
  TrainRunOptions other = o;
  other.batch = 8;
  other.lr = 2e-3;
  try {
    RunTraining(other);
    ADD_FAILURE() << "resumed with other settings";
  } catch (const TrainOptionError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("written with other settings: --batch: checkpoint 4, "
                       "now 8; --lr: checkpoint 0.003, now 0.002"),
              std::string::npos)
        << msg;
    EXPECT_EQ(msg.find("\"seed\""), std::string::npos) << msg;  // not the JSON
  }
  // A flipped byte in the data: the checksum catches it.
  std::string bad = good;
  bad[bad.size() - 100] ^= 0x40;
  WriteFileAtomic(ckpt, bad.data(), bad.size());
  EXPECT_DLLM_ERROR(RunTraining(o), "checksum mismatch");
  // Truncated.
  WriteFileAtomic(ckpt, good.data(), good.size() / 2);
  EXPECT_DLLM_ERROR(RunTraining(o), "checkpoint.safetensors");
  // Not a checkpoint at all (a model file).
  std::string model =
      ReadFileToString(std::string(DLLM_SOURCE_DIR) +
                       "/tests/golden/llada_untied_f32/model.safetensors");
  WriteFileAtomic(ckpt, model.data(), model.size());
  EXPECT_DLLM_ERROR(RunTraining(o), "not a dllm checkpoint");
  // Intact again: resumes.
  WriteFileAtomic(ckpt, good.data(), good.size());
  EXPECT_EQ(RunTraining(o), 0);
}

TEST(Checkpoint, BadDataAndShapesAreClearErrors) {
  test::TempDir dir;
  MakeData(dir.path(), 64);
  // No validation split: training runs without validation.
  WriteTokenFile(dir / "val.bin", {});
  std::string meta =
      "{\"vocab_size\": 64, \"train_tokens\": 4000, \"val_tokens\": 0, "
      "\"train_bytes\": 1, \"val_bytes\": 0}";
  WriteFileAtomic(dir / "meta.json", meta.data(), meta.size());
  TrainRunOptions o = Options(dir.path(), dir / "m", Objective::kMDM);
  o.steps = 2;
  EXPECT_EQ(RunTraining(o), 0);
  o.eval_windows = 0;
  EXPECT_DLLM_ERROR(RunTraining(o), "--eval-windows");
  // A mask id outside the vocabulary is refused before any training.
  o = Options(dir.path(), dir / "m2", Objective::kMDM);
  o.config.mask_token_id = 64;
  EXPECT_DLLM_ERROR(RunTraining(o),
                    "mask_token_id 64 is outside the vocabulary");
  // SFT records that point outside sft.bin, even by overflowing.
  WriteTokenFile(dir / "sft.bin", {1, 2, 3, 4});
  std::string sft = "{\"records\": [[9223372036854775000, 1000, 0]]}";
  WriteFileAtomic(dir / "sft.json", sft.data(), sft.size());
  o = Options(dir.path(), dir / "s", Objective::kMDMSFT);
  EXPECT_DLLM_ERROR(RunTraining(o), "is outside sft.bin");
  sft = "{\"records\": [[0, \"x\", 0]]}";
  WriteFileAtomic(dir / "sft.json", sft.data(), sft.size());
  EXPECT_DLLM_ERROR(RunTraining(o), "bad record");
}

TEST(Checkpoint, KillDuringSaveLeavesThePreviousIntact) {
  test::TempDir dir;
  const std::string path = dir / "ckpt.safetensors";
  std::vector<float> a(1000, 1.0f);
  WriteSafetensors(path, {{"x", DType::kF32, {1000}, a.data(), nullptr}});
  const std::string before = ReadFileToString(path);
  // A child process dies (SIGKILL) in the middle of writing the next version.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::vector<float> b(1000, 2.0f);
    WriteSafetensors(
        path,
        {{"x", DType::kF32, {1000}, b.data(), nullptr},
         {"y", DType::kF32, {1000}, nullptr, [](void*) { raise(SIGKILL); }}});
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(ReadFileToString(path), before);
  SafetensorsFile f(path);  // still loads
  EXPECT_EQ(f.tensors().size(), 1u);
}

// End to end: `dllm train` killed with SIGKILL at arbitrary moments while
// checkpointing every step; every time, --resume picks up a valid checkpoint.
TEST(Checkpoint, KilledTrainingAlwaysResumes) {
  test::TempDir dir;
  MakeData(dir.path(), 64);
  const std::string cli = DLLM_CLI_PATH;
  const std::string args =
      " train --data " + dir.path() + " -o " + (dir / "m") +
      " --layers 2 --d-model 64 --heads 4 --batch 8 --context 32 --steps 400"
      " --warmup 2 --eval-every 0 --ckpt-every 1 --log-every 100 -t 1";
  for (int round = 0; round < 4; ++round) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::string cmd =
          cli + args + (round ? " --resume" : "") + " >/dev/null 2>&1";
      execl("/bin/sh", "sh", "-c", ("exec " + cmd).c_str(), (char*)nullptr);
      _exit(127);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300 + 137 * round));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    // Whatever the moment, the checkpoint on disk is whole.
    if (round > 0 || std::ifstream(dir / "m/checkpoint.safetensors")) {
      CheckpointMeta meta =
          ReadCheckpointMeta(dir / "m/checkpoint.safetensors");
      EXPECT_GE(meta.step, 1);
    }
  }
  int code = std::system(
      (cli + args + " --resume --stop-after 1 >/dev/null 2>&1").c_str());
  EXPECT_EQ(WEXITSTATUS(code), 130);
}

}  // namespace
}  // namespace dllm

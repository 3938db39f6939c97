// The command line's contract, run as a user would: exit status 2 for a bad
// command line and 1 for other errors, options checked before anything is
// written, suggestions for foreign spellings, --version, and warnings.
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "dllm/files.h"
#include "test_util.h"

namespace dllm {
namespace {

using test::RunDllm;

bool Contains(const std::string& s, const std::string& sub) {
  return s.find(sub) != std::string::npos;
}

TEST(CliOptions, Version) {
  for (const char* args : {"--version", "version"}) {
    test::CommandResult r = RunDllm(args);
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_EQ(r.out.rfind("dllm 0.2.0\n", 0), 0u) << r.out;
    EXPECT_TRUE(Contains(r.out, "simd   ")) << r.out;
    EXPECT_TRUE(Contains(r.out, "(compiled: ")) << r.out;
  }
}

// Bad option values and missing options are usage errors (2), each naming
// its option; nothing is written.
TEST(CliOptions, BadValuesExitTwoAndNameTheOption) {
  test::TempDir dir;
  struct Case {
    std::string args, message;
  };
  const Case cases[] = {
      {"init --std nan -o " + (dir / "m"),
       "option --std: expected a finite number, got 'nan'"},
      {"init --std -1 -o " + (dir / "m"), "option --std: -1 is out of range"},
      {"init --std 9000 --dtype F16 -o " + (dir / "m"),
       "option --std: 9000 is out of range"},
      {"init --rope-theta inf -o " + (dir / "m"),
       "option --rope-theta: expected a finite number, got 'inf'"},
      {"init --d-model 1000000000 -o " + (dir / "m"),
       "option --d-model: 1000000000 is out of range [2, 65536]"},
      {"init --d-model 30 --heads 4 -o " + (dir / "m"),
       "init: --d-model 30 must be divisible by --heads 4"},
      {"init --vocab 100 --mask-id 100 -o " + (dir / "m"),
       "option --mask-id: 100 is out of range [0, 99]"},
      {"init --dtype F64 -o " + (dir / "m"),
       "init: --dtype must be F32, BF16 or F16, got 'F64'"},
      {"init --preset huge -o " + (dir / "m"), "unknown preset 'huge'"},
      {"init --layers", "option '--layers' needs a value"},
      {"init", "init: -o/--out DIR is required"},
      {"info", "info: -m/--model DIR is required"},
      {"forward --ids 1", "forward: -m/--model DIR is required"},
      {"forward -m " + (dir / "m") + " --ids 1 --threads 4294967297",
       "option --threads: 4294967297 is out of range [0, 1024]"},
      {"forward -m " + (dir / "m") + " --ids 1 --threads two",
       "option --threads: expected an integer, got 'two'"},
      {"forward -m " + (dir / "m") + " --ids 1 --device gpu",
       "--device 'gpu': expected cpu, cuda or cuda:N"},
      {"generate -m " + (dir / "m") + " -p hi --device cuda:",
       "--device 'cuda:': expected cpu, cuda or cuda:N"},
  };
  for (const Case& c : cases) {
    test::CommandResult r = RunDllm(c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.out;
    EXPECT_TRUE(Contains(r.out, c.message)) << c.args << "\n" << r.out;
  }
  EXPECT_FALSE(FileExists(dir / "m"));
  // Errors that are not about the command line stay 1.
  test::CommandResult r = RunDllm("info -m " + (dir / "nothing"));
  EXPECT_EQ(r.code, 1) << r.out;
}

// --device cuda in a build without the CUDA backend is an error (1) that
// says how to get one; --version lists the devices compiled in.
TEST(CliOptions, DeviceCudaNeedsACudaBuild) {
  test::TempDir dir;
  ASSERT_EQ(RunDllm("init --preset tiny -o " + (dir / "m")).code, 0);
  const bool cuda = Contains(RunDllm("--version").out, "devices cpu cuda");
  test::CommandResult r =
      RunDllm("forward -m " + (dir / "m") + " --ids 1,2 --device cuda");
  if (cuda) GTEST_SKIP() << "a CUDA build: tests/cuda covers the device";
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(Contains(r.out, "built without the CUDA backend")) << r.out;
  EXPECT_TRUE(Contains(r.out, "-DDLLM_CUDA=ON")) << r.out;
  EXPECT_TRUE(Contains(RunDllm("--version").out, "devices cpu ")) << r.out;
  r = RunDllm("forward -m " + (dir / "m") + " --ids 1,2 --device cpu");
  EXPECT_EQ(r.code, 0) << r.out;
}

TEST(CliOptions, InitRefusesToOverwriteAModel) {
  test::TempDir dir;
  const std::string m = dir / "m";
  ASSERT_EQ(RunDllm("init --seed 1 -o " + m).code, 0);
  const std::string before = ReadFileToString(m + "/model.safetensors");
  test::CommandResult r = RunDllm("init --seed 2 -o " + m);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(Contains(r.out, "init: " + m +
                                  " already holds a model (config.json): "
                                  "pass --force to overwrite it"))
      << r.out;
  EXPECT_EQ(ReadFileToString(m + "/model.safetensors"), before);
  r = RunDllm("init --seed 2 --force -o " + m);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(ReadFileToString(m + "/model.safetensors"), before);
}

// A shape far beyond the disk is refused before any byte is written (it
// used to fail after minutes and gigabytes, or run out of memory).
TEST(CliOptions, InitChecksFreeSpaceUpFront) {
  test::TempDir dir;
  test::CommandResult r = RunDllm(
      "init --layers 1024 --d-model 65536 --heads 512 --ffn 262144 --vocab "
      "4000000 -o " +
      (dir / "m"));
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_TRUE(Contains(r.out, "model.safetensors needs ")) << r.out;
  EXPECT_TRUE(Contains(r.out, "GB free")) << r.out;
  EXPECT_FALSE(FileExists(dir / "m/model.safetensors"));
}

TEST(CliOptions, ThreadsBeyondTheCoresWarn) {
  test::TempDir dir;
  ASSERT_EQ(RunDllm("init -o " + (dir / "m")).code, 0);
  const unsigned cores = std::thread::hardware_concurrency();
  if (cores == 0) GTEST_SKIP() << "core count unknown";
  const std::string many = std::to_string(cores + 1);
  test::CommandResult r =
      RunDllm("forward -m " + (dir / "m") + " --ids '1 2' -t " + many);
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_TRUE(Contains(r.out, "warning: --threads " + many +
                                  " is more than the " + std::to_string(cores) +
                                  " cores"))
      << r.out;
  r = RunDllm("forward -m " + (dir / "m") + " --ids '1 2' -t 1");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_FALSE(Contains(r.out, "warning")) << r.out;
}

// llama.cpp and Hugging Face spellings, underscores, prefixes and typos get
// the dllm name; unrelated words get the help instead.
TEST(CliOptions, UnknownOptionsSuggestTheDllmName) {
  struct Case {
    std::string args, suggestion;
  };
  const Case cases[] = {
      {"generate -m x -n 5",
       "unknown option '-n' (did you mean --gen-length?)"},
      {"generate -m x --n-predict 5", "(did you mean --gen-length?)"},
      {"generate -m x --max_new_tokens 5", "(did you mean --gen-length?)"},
      {"generate -m x --max-new-tokens=5",
       "unknown option '--max-new-tokens' (did you mean --gen-length?)"},
      {"generate -m x --temp 0.5", "(did you mean --temperature?)"},
      {"generate -m x --temprature 0.5",
       "unknown option '--temprature' (did you mean --temperature?)"},
      {"generate -m x --top_p 0.9", "(did you mean --top-p?)"},
      {"generate -m x --n-threads 2", "(did you mean -t/--threads?)"},
      {"info -m x --tensor", "(did you mean --tensors?)"},
      {"init --hidden-size 64", "(did you mean --d-model?)"},
      {"init --num_hidden_layers 2", "(did you mean --layers?)"},
      {"forward --model_path x", "(did you mean -m/--model?)"},
  };
  for (const Case& c : cases) {
    test::CommandResult r = RunDllm(c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.out;
    EXPECT_TRUE(Contains(r.out, c.suggestion)) << c.args << "\n" << r.out;
  }
  test::CommandResult r = RunDllm("forward --frobnicate");
  EXPECT_EQ(r.code, 2);
  EXPECT_FALSE(Contains(r.out, "did you mean")) << r.out;
  EXPECT_TRUE(Contains(r.out, "options:")) << r.out;  // the help instead
}

}  // namespace
}  // namespace dllm
